"""Slot layout: which solver variable (slot) sells each lot.

A name has ``L`` slots (1, 2 or 4: few problem shapes to compile); lots of one name sorted by tax
per dollar fill them in that order, and losses and gains never share a slot. The optimizer sells
the cheapest first anyway, so merging only coarsens names with more lots than slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SLOTS = 4  # lot slots per name; more lots in one name are merged by tax per dollar


@dataclass(frozen=True, slots=True)
class LotSlots:
    """The account's lots as arrays in one ordering (the input's), and their slots."""

    name: np.ndarray  # (N,) universe index
    weight: np.ndarray  # (N,) held weight (value / account value)
    tax: np.ndarray  # (N,) tax per unit weight sold (negative: a loss, i.e. a benefit)
    loss: np.ndarray  # (N,) bool
    slot: np.ndarray  # (N,) slot index in the layout: name · L + slot within the name
    L: int  # slots per name
    merged: int  # lots merged into a neighbour's slot

    @property
    def coarse_slot(self) -> np.ndarray:
        """(N,) slot in the two-slot layout of the side decision: a loss slot and a gain slot per name."""
        return self.name * 2 + ~self.loss


def assign_slots(
    name: np.ndarray, weight: np.ndarray, tax: np.ndarray, loss: np.ndarray, *, n: int, max_slots: int
) -> LotSlots:
    """Slots for lots given as (N,) columns: at most ``max_slots`` (≥ 2) per name of ``n`` names."""
    N = len(name)
    counts = np.bincount(name, minlength=n)
    most = int(counts.max()) if N else 1
    L = min(max_slots, 1 << max(most - 1, 0).bit_length())  # 1, 2, 4, ... (few shapes)
    order = np.lexsort((tax, ~loss, name))  # per name: losses first, then by tax
    starts = np.concatenate([[0], np.cumsum(counts)])
    rank = np.empty(N, dtype=np.int64)
    rank[order] = np.arange(N) - starts[name[order]]
    # Names with more lots than slots: split the losses and the gains (never mixed) into
    # contiguous runs of neighbouring tax per dollar, slots shared in proportion to lot counts.
    n_loss = np.bincount(name, weights=loss, minlength=len(counts)).astype(np.int64)
    n_gain = counts - n_loss
    L_loss = np.where(
        n_loss == 0,
        0,
        np.where(n_gain == 0, L, np.clip(np.rint(L * n_loss / np.maximum(counts, 1)), 1, L - 1)),
    ).astype(np.int64)
    L_gain = L - L_loss
    c, nl, ng, ll, lg = counts[name], n_loss[name], n_gain[name], L_loss[name], L_gain[name]
    squeezed = np.where(loss, rank * ll // np.maximum(nl, 1), ll + (rank - nl) * lg // np.maximum(ng, 1))
    slot = name * L + np.where(c > L, squeezed, rank)
    merged = N - len(np.unique(slot))
    return LotSlots(name, weight, tax, loss, slot, L, merged)
