"""The ledger in process memory, on the pure wash-sale engine: the backtest's ledger.

The same ``Ledger`` protocol as the Redis store and the same planner (``ledger.plan``): a commit is
planned on a copy of the household and replaces it only when the whole plan holds, so a refused
commit (a wash sale, an overdraft, bad input) changes nothing, as in Redis. Windows, restrictions
(the IRA rule included), idempotency keys, cash and the year-end roll of the carry-forward
(``ledger.yearend``) behave as the store's; there is no journal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from taxview.core.records import Lot, Restrictions, Trade

from .api import MAX_CASH_CENTS, AccountInfo, CommitResult, identity_names, with_mandate
from .cashflows import check_flow, flow_id
from .corporate import Action, ActionReport, HouseholdPlan, HouseholdState, check_identity, prepare
from .errors import CommitRejected, LedgerInputError, UnknownAccount
from .keys import check_id, piece_order
from .plan import commit_digest, plan_commit, wire_trades
from .records import Account, OpenLot, Sale
from .washsale import Household
from .windows import restrictions_from_windows
from .yearend import AccountYear, CarryBook, Planned, YearEnd, book_of, mandate_carry, plan_roll, roll_chain


class MemoryLedger:
    def __init__(self, identical: Mapping[str, str] | None = None) -> None:
        self.identical = dict(identical or {})
        self._accounts: dict[str, AccountInfo] = {}
        self._houses: dict[str, Household] = {}
        self._windows: dict[str, dict[str, list[int]]] = {}  # household -> key -> [last buy, last loss sale]
        self._done: dict[str, dict[str, tuple[str, CommitResult]]] = {}  # household -> key -> (digest, result)
        self._flows: dict[str, tuple] = {}  # flow id -> (account, date, cents, reason)
        self._flowed: dict[tuple[str, dt.date], int] = {}  # (account, night) -> cents booked
        self._actions: dict[str, dict[str, str]] = {}  # household -> corporate action id -> digest
        self._carry: dict[str, dict[str, str]] = {}  # household -> its carry fields, as the store's meta hash
        self._closed: dict[int, dict[str, Any]] = {}  # tax year -> summary: closed in every household
        self._version: dict[str, int] = {}  # household -> version, moved by every write (as the store's)

    # --- accounts and opening lots ------------------------------------------------------------

    def add_accounts(self, accounts: Iterable[AccountInfo]) -> int:
        accounts = list(accounts)
        for a in accounts:
            check_id(a.account, "account")
            check_id(a.household, "household")
            known = self._accounts.get(a.account)
            if known is not None and known.household != a.household:
                raise LedgerInputError("household", f"account {a.account!r} belongs to {known.household!r}")
        for a in accounts:
            house = self._houses.setdefault(a.household, Household(a.household, self.identical))
            house.register(a.account, a.account_type)
            self._windows.setdefault(a.household, {})
            self._done.setdefault(a.household, {})
            self._actions.setdefault(a.household, {})
            known = self._accounts.get(a.account)
            self._accounts[a.account] = replace(a, mandate_version=(known.mandate_version if known else 0) + 1)
            self._touch(a.household)
        return len(accounts)

    def _touch(self, household: str) -> None:
        self._version[household] = self._version.get(household, 0) + 1

    def household_version(self, household: str) -> int:
        """``LedgerStore.household_version``: moved by every write to the household."""
        return self._version.get(household, 0)

    def open_lot(self, account: str, lot: Lot) -> OpenLot:
        """An opening lot (a legacy portfolio): a new purchase, counted in the wash-sale window of
        its acquisition date as the store's import counts it."""
        hh = self.household_of(account)
        opened = self._houses[hh].open_lot(
            lot.lot_id, account, lot.symbol, lot.quantity, lot.basis_cents, lot.acquired, lot.holding_from
        )
        win = self._windows[hh].setdefault(self._houses[hh].key(lot.symbol), [0, 0])
        win[0] = max(win[0], lot.acquired.toordinal())
        self._touch(hh)
        return opened

    def set_mandate(self, account: str, changes: Mapping[str, Any], actor: str, at: str) -> AccountInfo:
        """``LedgerStore.set_mandate`` in memory (no journal)."""
        info = self.account(account)
        new = with_mandate(info, changes)
        if new.account_type != info.account_type:
            self._houses[info.household].accounts[account] = Account(account, info.household, new.account_type)
        self._accounts[account] = new
        self._touch(info.household)
        return new

    def add_cash_flow(
        self, account: str, cents: int, date: dt.date, reason: str, actor: str, at: str, flow: str | None = None
    ) -> bool:
        """``LedgerStore.add_cash_flow`` in memory."""
        check_flow(cents, reason, f"account {account}: ")
        info = self.account(account)
        flow = flow or flow_id(account, date, cents, reason)
        if flow in self._flows:
            if self._flows[flow] != (account, date, cents, reason):
                raise CommitRejected("KEY_REUSED", f"cash flow id {flow} was used for another flow")
            return False
        self._flows[flow] = (account, date, cents, reason)
        self._accounts[account] = replace(info, pending_flows=(*info.pending_flows, (date, cents)))
        self._touch(info.household)
        return True

    def apply_cash_flows(self, account: str, date: dt.date) -> int:
        """``LedgerStore.apply_cash_flows`` in memory."""
        info = self.account(account)
        due = info.flows_due(date)
        left = tuple(f for f in info.pending_flows if f[0] > date)
        self._accounts[account] = replace(info, cash_cents=info.cash_cents + due, pending_flows=left)
        self._flowed[(account, date)] = self._flowed.get((account, date), 0) + due
        self._touch(info.household)
        return self._flowed[(account, date)]

    def adjust_cash(self, account: str, cents: int) -> int:
        """Move the account's cash (a fee, a deposit): the new balance in cents."""
        info = self.account(account)
        cash = info.cash_cents + cents
        if abs(cash) > MAX_CASH_CENTS:
            raise LedgerInputError("cash", f"account {account!r}: cash would be {cash} cents, out of range")
        self._accounts[account] = _with_cash(info, cash)
        self._touch(info.household)
        return cash

    # --- reads (the Ledger protocol) ----------------------------------------------------------

    def household_of(self, account: str) -> str:
        info = self._accounts.get(account)
        if info is None:
            raise UnknownAccount(account)
        return info.household

    def account(self, account: str) -> AccountInfo:
        self.household_of(account)
        return self._accounts[account]

    def accounts(self) -> dict[str, str]:
        return {a: info.household for a, info in self._accounts.items()}

    def lots(self, account: str) -> list[OpenLot]:
        return self.household_lots(self.household_of(account)).get(account, [])

    def household_lots(self, household: str) -> dict[str, list[OpenLot]]:
        out: dict[str, list[OpenLot]] = {}
        for lot in self._houses[household].lots.values():
            out.setdefault(lot.account, []).append(lot.copy())  # copies: callers cannot reach the state
        for lots in out.values():
            lots.sort(key=lambda x: (x.symbol, x.acquired, x.seq, piece_order(x.lot_id)))
        return out

    def sales(self, household: str) -> list[Sale]:
        return sorted(self._houses[household].sales, key=lambda s: (s.date, int(s.sale_id.rsplit(":", 1)[1])))

    def restrictions(self, household: str, date: dt.date) -> dict[str, Restrictions]:
        house = self._houses[household]
        windows = ((k, b, l) for k, (b, l) in self._windows[household].items())
        types = {a: acct.account_type for a, acct in house.accounts.items()}
        return restrictions_from_windows(windows, date, types, identity_names(self.identical))

    def household_state(self, household: str, keys: Sequence[str]) -> dict[str, Any]:
        """``LedgerStore.household_state``: copies (a dry run cannot reach the state)."""
        house = self._houses.get(household)
        if house is None:
            return {"version": 0, "last_date": None, "seq": 0, "sale_seq": 0, "accounts": {}, "lots": [], "pending": []}
        return {
            "version": self.household_version(household),
            "last_date": house.last_date,
            "seq": house.seq,
            "sale_seq": house.sale_seq,
            "accounts": {a: x.account_type for a, x in house.accounts.items()},
            "lots": [x.copy() for key in keys for x in house.by_key.get(key, {}).values()],
            "pending": [
                replace(s, replacements=list(s.replacements))
                for key in keys
                for s in house.pending_by_key.get(key, [])
                if s.unmatched > 0
            ],
        }

    def windows_many(self, households: Sequence[str]) -> dict[str, tuple[list[tuple[str, int, int]], dict[str, str]]]:
        """``LedgerStore.windows_many``: per household its windows and its accounts' types (none: unknown)."""
        out = {}
        for hh in households:
            house = self._houses.get(hh)
            windows = [(k, b, l) for k, (b, l) in self._windows.get(hh, {}).items()]
            out[hh] = (windows, {a: x.account_type for a, x in house.accounts.items()} if house else {})
        return out

    def committed(self, account: str, idempotency_key: str) -> CommitResult | None:
        done = self._done[self.household_of(account)].get(idempotency_key)
        return None if done is None else _replayed(done[1])

    # --- commit -------------------------------------------------------------------------------

    def commit(
        self,
        account: str,
        date: dt.date,
        trades: Sequence[Trade],
        idempotency_key: str,
        allow_wash: bool = False,
        check_cash: bool = False,
        meta: Mapping[str, Any] | None = None,
        expect_version: int | None = None,
    ) -> CommitResult:
        """``LedgerStore.commit`` in memory: the same checks, the same results, nothing changed
        when it raises."""
        hh = self.household_of(account)
        if not idempotency_key:
            raise LedgerInputError("idempotency_key", "an idempotency key is required")
        request = wire_trades(account, hh, date, trades)
        digest = commit_digest(account, date, request, allow_wash)
        done = self._done[hh].get(idempotency_key)
        if done is not None:
            if done[0] != digest:
                raise CommitRejected(
                    "KEY_REUSED", f"idempotency key {idempotency_key!r} was used for a different commit"
                )
            return _replayed(done[1])
        if expect_version is not None and self.household_version(hh) != expect_version:
            now = self.household_version(hh)
            raise CommitRejected("CHANGED", f"household {hh!r} changed since version {expect_version} (now {now})")
        master = self._houses[hh]
        house = master.clone({master.key(t["symbol"]) for t in request})
        info = self._accounts[account]
        planned = plan_commit(house, account, info.account_type, date, request, allow_wash)
        cash = info.cash_cents + planned["cash_delta"]
        if check_cash and cash < 0:
            raise CommitRejected("OVERDRAFT", f"account {account!r} would have {cash} cents of cash")
        if abs(cash) > MAX_CASH_CENTS:
            raise CommitRejected("CASH_RANGE", f"account {account!r}: cash would be {cash} cents, out of range")
        # the plan holds: from here on nothing can fail
        self._houses[hh] = house
        realized = dict(info.realized)
        for term, cents in (("st", planned["realized"]["short"]), ("lt", planned["realized"]["long"])):
            if cents:
                realized[f"{date.year}:{term}"] = realized.get(f"{date.year}:{term}", 0) + cents
        self._accounts[account] = replace(info, cash_cents=cash, realized=realized)
        windows = self._windows[hh]
        for key, buy, loss in planned["writes"]["win"]:
            win = windows.setdefault(key, [0, 0])
            win[0], win[1] = buy or win[0], loss or win[1]
        result = CommitResult(
            account,
            date,
            False,
            planned["result"]["sales"],
            planned["result"]["new_lots"],
            1,
            request,
            dict(meta or {}),
        )
        self._done[hh][idempotency_key] = (digest, result)
        self._touch(hh)
        return result

    # --- the year-end roll (``ledger.yearend``: the store's planning) ----------------------------

    def close_year(
        self, household: str, year: int, actor: str, at: str, start_idle: bool = True, cap_cents: int | None = None
    ) -> list[YearEnd]:
        """``LedgerStore.close_year`` in memory (no journal)."""
        return roll_chain(
            lambda y, idle, cap: self._close_one(household, y, actor, at, idle, cap), year, start_idle, cap_cents
        )

    def _close_one(
        self, household: str, year: int, actor: str, at: str, start_idle: bool, cap_cents: int | None
    ) -> Planned:
        accounts = [
            AccountYear(
                a.account,
                a.mandate_version,
                a.realized.get(f"{year}:st", 0),
                a.realized.get(f"{year}:lt", 0),
                *mandate_carry(a.mandate),
            )
            for a in sorted(self._accounts.values(), key=lambda a: a.account)
            if a.household == household
        ]
        planned = plan_roll(household, year, self._carry.get(household, {}), accounts, actor, at, start_idle, cap_cents)
        if planned.writes:
            self._carry.setdefault(household, {}).update(planned.writes)
        return planned

    def carry_book(self, household: str) -> CarryBook:
        return book_of(self._carry.get(household, {}))

    def year_closed(self, year: int) -> bool:
        return year in self._closed

    def mark_year_closed(self, year: int, summary: Mapping[str, Any]) -> None:
        self._closed[year] = dict(summary)

    # --- corporate actions (``ledger.corporate``: the store's rules) -----------------------------

    def apply_action(self, action: Action) -> ActionReport:
        """``LedgerStore.apply_action`` in memory: checked against every household first
        (``LedgerInputError``: nothing changed), then applied household by household."""
        check_identity(action, self.identical)
        plans, replayed = prepare(action, [self._action_state(action, hh) for hh in sorted(self._houses)])
        report = ActionReport(action, replayed=replayed)
        for plan in plans:
            self._apply_plan(action, plan)
            report.add(plan)
        return report

    def _action_state(self, action: Action, hh: str) -> HouseholdState:
        house, windows = self._houses[hh], self._windows[hh]
        keys = sorted({house.key(s) for s in action.keys})
        lots = [x for key in keys for x in house.by_key.get(key, {}).values()]
        seen = {key: (windows[key][0], windows[key][1]) for key in keys if key in windows}
        return HouseholdState(hh, lots, house.pending, seen, house.last_date, self._actions[hh].get(action.action_id))

    def _apply_plan(self, action: Action, plan: HouseholdPlan) -> None:
        house, windows = self._houses[plan.household], self._windows[plan.household]
        for lot_id in plan.moved:  # a rename: out of OLD's lots (``load`` files them under NEW)
            del house.by_key[house.key(house.lots.pop(lot_id).symbol)][lot_id]
        for lot in plan.lots:
            house.load(lot)
        changed = {s.sale_id: s for s in plan.sales}
        house.pending = [changed.get(s.sale_id, s) for s in house.pending]
        house.sales = [changed.get(s.sale_id, s) for s in house.sales]
        for key in plan.dropped_windows:
            windows.pop(key, None)
        for key, (bought, lost) in plan.windows.items():
            windows[key] = [bought, lost]
        house.last_date = action.date
        self._actions[plan.household][action.action_id] = action.digest
        self._touch(plan.household)


def _with_cash(info: AccountInfo, cash: int) -> AccountInfo:
    return replace(info, cash_cents=cash)


def _replayed(r: CommitResult) -> CommitResult:
    return CommitResult(r.account, r.date, True, r.sales, r.new_lots, 0, r.trades, r.meta)


__all__ = ["MemoryLedger"]
