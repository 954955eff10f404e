"""Retention without loss (issue 16): the policy, and what one household may give up to the
archive before a date (pure: no Redis; ``ledger.compaction`` reads, archives and trims).

What is archived before ``before`` (and trimmed from Redis):

* the journal's oldest entries: the prefix up to the last entry dated before ``before`` (commits,
  booked cash flows, corporate actions carry a date; account records, mandates, imports and
  year-end rolls between them go with them, so the archive then the live stream are the journal);
* idempotency records of commits dated before ``before`` (a commit dated before it is refused
  from then on: ``ARCHIVED``, so a trimmed key is never applied twice);
* closed sales the wash-sale engine can no longer need: not pending (a loss waiting for a
  replacement: the only sales a commit reads), dated before ``before`` and, for a recognized loss,
  more than ``WINDOW_DAYS`` before it (outside every window of a commit allowed from then on),
  and with no taxable replacement lot still open (its basis carries the sale's deferred loss).

The realized year to date of each account (the gain budget, the year-end roll) is kept as totals
in the account's record (``realized:<year>:st|lt``), never recomputed from sales: trimming sales
changes no total.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

from .codec import decode_sale
from .records import Sale
from .windows import WINDOW_DAYS

DEFAULT_KEEP_DAYS = 45  # more than the 30-day wash-sale window either side, with a margin


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The firm's retention: keep ``keep_days`` days of history in Redis (the rest is archived
    to Parquet under ``archive_dir``); ``nightly``: the nightly compacts after its night."""

    keep_days: int = DEFAULT_KEEP_DAYS
    archive_dir: str | Path | None = None
    nightly: bool = True

    def before(self, night: dt.date) -> dt.date:
        """The compaction date of a night: history dated before it is archived."""
        return night - dt.timedelta(days=self.keep_days)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: str  # the stream id, "<ms>-<seq>"
    key: str
    account: str
    date: str  # ISO, "" for undated entries
    entry: str  # JSON

    @property
    def order(self) -> tuple[int, int]:
        return stream_order(self.id)


@dataclass(slots=True)
class Cut:
    """What one household gives up: journal entries (a prefix), idempotency records (key ->
    stored value), sales (id -> stored record, ``ledger.codec``) with their dates."""

    household: str
    journal: list[JournalEntry] = field(default_factory=list)
    idempotency: dict[str, tuple[dt.date, str]] = field(default_factory=dict)
    sales: dict[str, tuple[dt.date, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.journal) + len(self.idempotency) + len(self.sales)


def stream_order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def journal_prefix(entries: Sequence[JournalEntry], before: dt.date) -> list[JournalEntry]:
    """The entries up to the last one dated before ``before`` (entries are in stream order)."""
    cut = before.isoformat()
    last = max((i for i, e in enumerate(entries) if e.date and e.date < cut), default=-1)
    return list(entries[: last + 1])


def idempotency_cut(records: Mapping[str, str], before: dt.date) -> dict[str, tuple[dt.date, str]]:
    """Stored commit results ("digest|result json") whose commit is dated before ``before``."""
    out = {}
    for key, stored in records.items():
        day = dt.date.fromisoformat(json.loads(stored.partition("|")[2])["date"])
        if day < before:
            out[key] = (day, stored)
    return out


def sale_candidates(sales: Mapping[str, str], pending: Set[str], before: dt.date) -> dict[str, Sale]:
    """Closed sales old enough to leave, before checking their replacement lots (decoded)."""
    out = {}
    limit = before.toordinal()
    for sale_id, text in sales.items():
        if sale_id in pending:
            continue
        s = decode_sale(text)
        day = s.date.toordinal()
        loss = s.recognized and s.proceeds_cents < s.basis_cents
        if day < limit and (not loss or day + WINDOW_DAYS < limit):
            out[sale_id] = s
    return out


def deferred_into(sale: Sale) -> list[tuple[str, str]]:
    """(lot id, account) of the taxable replacement lots carrying a sale's disallowed loss."""
    return [(x.lot_id, x.account) for x in sale.replacements if x.amount_cents and not x.permanent]


def cut_household(
    household: str,
    journal: Sequence[JournalEntry],
    idempotency: Mapping[str, str],
    sales: Mapping[str, str],
    pending: Set[str],
    open_lots: Set[str],
    before: dt.date,
) -> Cut:
    """What ``household`` gives up before ``before``; ``open_lots``: the ids of its open lots
    among those the candidate sales name (``deferred_into``)."""
    cut = Cut(household, journal_prefix(journal, before), idempotency_cut(idempotency, before))
    for sale_id, s in sale_candidates(sales, pending, before).items():
        if not any(lot_id in open_lots for lot_id, _ in deferred_into(s)):
            cut.sales[sale_id] = (s.date, sales[sale_id])
    return cut


def replacement_lots(candidates: Iterable[Sale]) -> set[str]:
    """Every lot id the candidate sales' deferred losses went to (to look up: still open?)."""
    return {lot_id for s in candidates for lot_id, _ in deferred_into(s)}


__all__ = [
    "DEFAULT_KEEP_DAYS",
    "Cut",
    "JournalEntry",
    "RetentionPolicy",
    "cut_household",
    "deferred_into",
    "idempotency_cut",
    "journal_prefix",
    "replacement_lots",
    "sale_candidates",
    "stream_order",
]
