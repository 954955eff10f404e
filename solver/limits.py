"""The account's limits per name and per lot: exclusions, caps, household wash-sale restrictions,
and tonight's net realized-gain bound (``solver.budget``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxview.core.records import Restrictions

from .account import Account
from .budget import gain_bound

# In the note of a paced account traded to the least TE its gain allowance allows (solver.passes):
# over its TE budget on purpose, which the household step does not try to fix (cluster.step).
PACED = "a transition: the gain budget sets the pace"


@dataclass(frozen=True, slots=True)
class Limits:
    """What the account may hold, buy and sell on this date."""

    excluded: np.ndarray  # (n,) bool: the name must end at zero
    cap: np.ndarray  # (n,) largest weight after the rebalance
    no_buy: np.ndarray  # (n,) bool: excluded, or sold at a loss in the household within 30 days
    sellable: np.ndarray  # (N,) bool: lots the optimizer may sell (no loss sale in a wash window)
    buy_ub: np.ndarray  # (n,) largest weight bought (0 where no_buy)
    stuck: tuple[str, ...]  # excluded names holding loss lots that may not be sold
    gain_ub: float  # net realized gain tonight, weight (allowance / account value); GAIN_UNBOUND: none
    outside_universe: tuple[str, ...] = ()  # held names with benchmark weight 0, not excluded (legacy)
    transition: bool = False  # the settings' (``AccountSettings.transition``)

    @property
    def paced(self) -> bool:
        """Does the gain budget set the pace (a transition, or names outside the universe held)?"""
        return bool(self.outside_universe) or self.transition

    @property
    def stuck_reason(self) -> str:
        return (
            f"excluded names {list(self.stuck[:5])} keep loss lots until their wash-sale window "
            "passes (a household purchase within 30 days)"
        )


def account_limits(account: Account, restrictions: Restrictions) -> Limits:
    snap, settings, la, n = account.snap, account.settings, account.lot_slots, account.n
    excluded = np.fromiter(
        (
            sym in settings.exclude_symbols or sec in settings.exclude_sectors
            for sym, sec in zip(snap.symbols, snap.sectors)
        ),
        dtype=bool,
        count=n,
    )
    # The cap never forces a name below its benchmark weight (that alone would break any TE budget).
    cap = np.where(excluded, 0.0, np.maximum(settings.max_weight, snap.benchmark))
    # Names outside the universe (benchmark weight 0, not excluded: a legacy portfolio's): target 0,
    # never bought, never forced out (sold as the TE they cost and the gain budget allow); in a
    # transition, a name held over its cap likewise is trimmed over time, not at once.
    outside = ~excluded & (snap.benchmark <= 0) & (account.w0 > 0)
    keep = outside | (~excluded & settings.transition)
    cap = np.where(keep, np.maximum(cap, account.w0 * (1 + 1e-9)), cap)
    no_buy = excluded | (snap.benchmark <= 0)
    for sym in restrictions.no_buy:
        if sym in snap.index:
            no_buy[snap.index[sym]] = True
    allowed = np.ones(len(la.name), dtype=bool)
    if settings.taxable and restrictions.no_loss_sale:
        no_loss = np.zeros(n, dtype=bool)
        for sym in restrictions.no_loss_sale:
            if sym in snap.index:
                no_loss[snap.index[sym]] = True
        allowed &= ~(la.loss & no_loss[la.name])
    # A transition with no net gain to spend tonight (an allowance ≤ 0) or none in its year (a zero
    # annual budget): nothing with a gain is sold, not even against a loss (the losses go first;
    # the gains wait for a budget).
    paced = settings.transition or outside.any()
    allowance, budget = settings.gain_allowance_cents, settings.gain_budget_cents
    spent = (allowance is not None and allowance <= 0) or (budget is not None and budget <= 0)
    if paced and settings.taxable and spent:
        allowed &= ~((account.gain > 0) & ~excluded[la.name])
    # An excluded name whose loss lots may not be sold yet keeps just those lots (sold on a later
    # night, when the window has passed; a note says so); elsewhere the cap gives way to lots that
    # may not be sold (rather than making the account infeasible).
    stuck = tuple(sorted({snap.symbols[i] for i in la.name[~allowed & excluded[la.name]]}))
    unsellable = np.bincount(la.name, weights=la.weight * ~allowed, minlength=n) * (1 + 1e-9)
    cap = np.where(excluded, unsellable, np.maximum(cap, unsellable))
    return Limits(
        excluded,
        cap,
        no_buy,
        allowed,
        np.where(no_buy, 0.0, cap),
        stuck,
        gain_bound(account),
        tuple(snap.symbols[i] for i in np.flatnonzero(outside)),
        settings.transition,
    )
