"""What a ledger is to the rest of taxview: its records and the ``Ledger`` protocol.

Two adapters implement it: ``ledger.store.LedgerStore`` (Redis, the firm's book of record) and
``ledger.memory.MemoryLedger`` (in process, on the pure wash-sale engine: the backtest's ledger).
Both plan every commit with ``ledger.plan`` and share one behaviour suite, so the nightly run, the
backtest and the service book a trade the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from taxview.core.records import Restrictions, Trade

if TYPE_CHECKING:
    from .yearend import CarryBook, YearEnd

MAX_CASH_CENTS = 10**15  # $10 trillion: any real account, and exact in Lua's doubles


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account as the ledger keeps it: type and rates, cash (cents), and its mandate — what it
    states beyond the firm's defaults (``taxview.core.mandate``), at ``mandate_version``."""

    account: str
    household: str
    account_type: str
    st_rate: float = 0.408
    lt_rate: float = 0.238
    cash_cents: int = 0
    mandate: Mapping[str, Any] = field(default_factory=dict, compare=False)
    mandate_version: int = 0
    pending_flows: tuple[tuple[dt.date, int], ...] = field(default=(), compare=False)  # (date, cents) not booked
    realized: Mapping[str, int] = field(default_factory=dict, compare=False)  # "2024:st" -> recognized cents

    def realized_in(self, year: int) -> int:
        """Net recognized gain of ``year`` so far, cents (short and long term together)."""
        return self.realized.get(f"{year}:st", 0) + self.realized.get(f"{year}:lt", 0)

    def flows_due(self, date: dt.date) -> int:
        """Cents of the pending cash flows the night of ``date`` books (negative: withdrawals)."""
        return sum(cents for day, cents in self.pending_flows if day <= date)


@dataclass(frozen=True, slots=True)
class CommitResult:
    """A commit as the ledger booked it: ``sales`` (one per lot sold: ``gain_cents``, ``term``,
    ``disallowed_cents``, ...), the ids of the lots bought, the trades in their wire form."""

    account: str
    date: dt.date
    replayed: bool
    sales: list[dict[str, Any]]
    new_lots: list[str]
    attempts: int
    trades: list[dict[str, Any]] = ()
    meta: dict[str, Any] | None = None


class Ledger(Protocol):
    """The calls one account's step makes (``cluster.step``); lots come back as the engine's
    ``OpenLot`` (the solver reads ``lot_id, symbol, quantity, basis_cents, acquired, holding_from``).
    And the year end: a household's carry-forward rolled by §2's netting (``ledger.yearend``)."""

    def household_of(self, account: str) -> str: ...

    def account(self, account: str) -> AccountInfo: ...

    def lots(self, account: str) -> list: ...

    def household_lots(self, household: str) -> dict[str, list]: ...

    def restrictions(self, household: str, date: dt.date) -> dict[str, Restrictions]: ...

    def committed(self, account: str, idempotency_key: str) -> CommitResult | None: ...

    def commit(
        self,
        account: str,
        date: dt.date,
        trades: Sequence[Trade],
        idempotency_key: str,
        allow_wash: bool = False,
        check_cash: bool = False,
        meta: Mapping[str, Any] | None = None,
    ) -> CommitResult: ...

    def accounts(self) -> dict[str, str]: ...

    def close_year(
        self, household: str, year: int, actor: str, at: str, start_idle: bool = True, cap_cents: int | None = None
    ) -> list[YearEnd]: ...

    def carry_book(self, household: str) -> CarryBook: ...

    def year_closed(self, year: int) -> bool: ...

    def mark_year_closed(self, year: int, summary: Mapping[str, Any]) -> None: ...


def identity_names(identical: Mapping[str, str]) -> dict[str, set[str]]:
    """Identity key -> the symbols sharing it (GOOG, GOOGL), for ``restrictions_from_windows``."""
    names: dict[str, set[str]] = {}
    for symbol, key in identical.items():
        names.setdefault(key, {key}).add(symbol)
    return names


ACCOUNT_FIELDS = ("account_type", "st_rate", "lt_rate")  # mandate keys kept as the account's own fields


def with_mandate(info: AccountInfo, changes: Mapping[str, Any]) -> AccountInfo:
    """``info`` with checked mandate ``changes`` applied (``taxview.core.mandate.check``; a key
    given as ``None`` goes back to the firm's default) and the next version. Type and rates are the
    account's own fields; the rest is its mandate."""
    mandate = dict(info.mandate)
    fields = {}
    for key, value in changes.items():
        if key in ACCOUNT_FIELDS:
            if value is not None:
                fields[key] = value
        elif value is None:
            mandate.pop(key, None)
        else:
            mandate[key] = value
    return replace(info, **fields, mandate=mandate, mandate_version=info.mandate_version + 1)
