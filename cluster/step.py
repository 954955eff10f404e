"""One account's rebalance: read its lots, cash and household restrictions from a ledger, solve,
commit. The nightly worker, the backtest and the service all run this step, over the Redis store
or the in-memory ledger (``ledger.api.Ledger``); they differ only in what they do with the outcome.

A commit is idempotent by ``key`` (a re-run of the same run id replays what was booked); a commit
refused as a wash sale (another account of the household traded first) is solved again on fresh
restrictions, up to ``WASH_RETRIES`` times. One account's failure is an outcome, never an exception.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from ledger.api import AccountInfo, CommitResult, Ledger
from ledger.errors import CommitRejected, LedgerUnavailable
from solver.problem import ProblemCache
from solver.snapshot import Snapshot, with_delisted
from solver.solve import solve_account
from solver.types import AccountSettings, SolveResult
from taxview.core.errors import TaxviewError
from taxview.core.money import cents_at
from taxview.core.records import Restrictions, Trade

from .settings import settings_with

WASH_RETRIES = 3
T = TypeVar("T")


def direct(call: Callable[[], T]) -> T:
    return call()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one account: ``committed`` when the ledger booked it (``replayed`` when an
    earlier run of the same key had), else ``status`` and ``reason`` say why not."""

    account: str
    household: str
    status: str  # optimal | paused | liquidated | infeasible | ... (the solver's) | rejected | error
    reason: str | None = None
    result: SolveResult | None = None  # None when replayed or failed before the solve
    committed: CommitResult | None = None
    solve_ms: float | None = None
    info: AccountInfo | None = None  # the account as read (None when replayed or unreadable)
    settings: AccountSettings | None = None  # what it was solved with
    cash_flow_cents: int = 0  # deposits (+) and withdrawals (-) booked tonight

    @property
    def ok(self) -> bool:
        return self.committed is not None


class _Clock:
    def __init__(self, timings: dict[str, Any] | None) -> None:
        self.timings = timings if timings is not None else {}
        self.t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.t
        self.t = now


def rebalance_account(
    ledger: Ledger,
    snap: Snapshot,
    account: str,
    key: str,
    defaults: AccountSettings,
    cache: ProblemCache,
    *,
    household: str | None = None,
    held: dict[str, list] | None = None,
    timings: dict[str, Any] | None = None,
    call: Callable[[Callable[[], Any]], Any] = direct,
    meta: dict[str, Any] | None = None,
) -> Outcome:
    """Rebalance ``account`` on ``snap.date`` and commit under ``key``.

    ``defaults``: the firm's settings; the account's type and tax rates come from the ledger.
    ``held``: the household's lots by account, filled on first use: a commit never touches another
    account's lots (wash sales are refused), so one read serves the household's accounts in turn;
    anything changed behind our back is caught by the commit's validation. ``timings``: seconds
    added to ``ledger_read_s``, ``solve_s``, ``commit_s``. ``call``: runs each ledger call (the
    worker retries through outages). ``meta``: stored with the commit, next to the solve's figures.
    """
    clock = _Clock(timings)
    try:
        household = household or call(lambda: ledger.household_of(account))
        prior = call(lambda: ledger.committed(account, key))
        if prior is not None:  # done by an earlier (interrupted) run of this key
            clock.lap("ledger_read_s")
            return Outcome(account, household, "optimal", committed=prior)
        info = call(lambda: ledger.account(account))
        if held is None:
            lots = call(lambda: ledger.lots(account))
        else:
            if not held:
                held.update(call(lambda: ledger.household_lots(household)))
                held.setdefault("", [])  # marks the household as read
            lots = held.get(account, [])
        settings = settings_for(defaults, info, snap.date.year)
    except LedgerUnavailable as exc:
        clock.lap("ledger_read_s")
        return Outcome(account, household or "", "error", str(exc))
    except TaxviewError as exc:
        clock.lap("ledger_read_s")
        return Outcome(account, household or "", "error", f"ledger: {exc}")
    clock.lap("ledger_read_s")
    status = info.mandate.get("status", "active")
    try:
        info, flowed, refused = _book_flows(ledger, snap, info, lots, status, call)
    except TaxviewError as exc:
        return Outcome(account, household, "error", f"cash flows: {exc}", info=info, settings=settings)
    finally:
        clock.lap("ledger_read_s")
    if refused:
        return Outcome(account, household, "rejected", refused, info=info, settings=settings)
    settings = with_delisted(settings_for(defaults, info, snap.date.year), snap)  # delisted: sold, never bought
    meta = {**(meta or {}), "cash_flow_cents": flowed}
    if status == "paused":
        reason = "mandate: paused (no trades)" + (
            "; a withdrawal waits until it is active" if info.flows_due(snap.date) else ""
        )
        return Outcome(account, household, "paused", reason, info=info, settings=settings, cash_flow_cents=flowed)
    if status == "liquidate":
        return _liquidate(ledger, snap, info, lots, key, settings, clock, call, meta)
    for attempt in range(1, WASH_RETRIES + 1):
        try:
            restrictions = call(lambda: ledger.restrictions(household, snap.date)).get(account)
        except LedgerUnavailable as exc:
            return Outcome(account, household, "error", str(exc))
        except TaxviewError as exc:
            return Outcome(account, household, "error", f"ledger: {exc}")
        finally:
            clock.lap("ledger_read_s")
        try:
            result = solve_account(snap, lots, info.cash_cents, settings, restrictions, cache)
        except TaxviewError as exc:
            return Outcome(account, household, "error", f"bad data: {exc}")
        finally:
            clock.lap("solve_s")
        if not result.ok:
            return Outcome(
                account,
                household,
                result.status,
                result.reason,
                result,
                solve_ms=result.solve_ms,
                info=info,
                settings=settings,
            )
        figures = {
            **described(info, settings),
            "notes": list(result.notes),
            "te_ex_ante": result.te_ex_ante,
            "tax_estimate_cents": result.tax_estimate_cents,
            "turnover": result.turnover,
            "solve_ms": result.solve_ms,
            "attempts": attempt,
            **(meta or {}),
        }
        try:
            committed = call(
                partial(ledger.commit, account, snap.date, result.trades, key, check_cash=True, meta=figures)
            )
        except CommitRejected as exc:
            if exc.code == "WASH_CONFLICT" and attempt < WASH_RETRIES:
                continue  # another account of the household moved first: fresh restrictions
            return Outcome(account, household, "rejected", str(exc), result, solve_ms=result.solve_ms)
        except LedgerUnavailable as exc:
            return Outcome(account, household, "error", str(exc), result, solve_ms=result.solve_ms)
        except TaxviewError as exc:
            return Outcome(account, household, "error", f"commit: {exc}", result, solve_ms=result.solve_ms)
        finally:
            clock.lap("commit_s")
        return Outcome(account, household, "optimal", None, result, committed, result.solve_ms, info, settings)
    raise AssertionError("unreachable")


def _book_flows(ledger, snap, info, lots, status, call) -> tuple[AccountInfo, int, str | None]:
    """Book the cash flows due tonight before the solve: (the account after, cents booked, why
    they were refused). A withdrawal larger than the account is refused (it stays pending); a
    paused account books deposits only (nothing would raise a withdrawal)."""
    due = info.flows_due(snap.date)
    if due == 0:
        return info, 0, None
    if due < 0:
        held = sum(cents_at(x.quantity, snap.price_cents[snap.index[x.symbol]]) for x in lots if x.symbol in snap.index)
        if info.cash_cents + due + held < 0:
            asked, has = -due / 100, (info.cash_cents + held) / 100
            return info, 0, f"withdrawal of ${asked:,.2f} is larger than the account (${has:,.2f}): not booked"
        if status == "paused":
            return info, 0, None
    flowed = call(lambda: ledger.apply_cash_flows(info.account, snap.date))
    return call(lambda: ledger.account(info.account)), flowed, None


def described(info: AccountInfo, settings: AccountSettings) -> dict[str, Any]:
    """What the outputs say of the account beside its trades (stored with the commit, so a replay
    reports the same)."""
    return {
        "account_type": info.account_type,
        "te_budget": settings.te_max,
        "mandate_version": info.mandate_version,
        "gain_allowance_cents": settings.gain_allowance_cents,
    }


def settings_for(defaults: AccountSettings, info: AccountInfo, year: int | None = None) -> AccountSettings:
    """The firm's defaults with the account's type, rates and mandate over them; with ``year``,
    tonight's gain allowance: the mandate's annual gain budget less the year's net realized gain."""
    base = replace(
        defaults, account_id=info.account, account_type=info.account_type, st_rate=info.st_rate, lt_rate=info.lt_rate
    )
    settings = settings_with(base, info.mandate)
    budget = info.mandate.get("gain_budget")
    if budget is not None and year is not None:
        settings = replace(settings, gain_allowance_cents=int(budget * 100) - info.realized_in(year))
    return settings


def liquidation(snap: Snapshot, lots: list, restrictions: Restrictions | None = None) -> tuple[list[Trade], list[str]]:
    """Every lot sold at the day's price, by name, each name's losses first. Held back, with a
    note: names the market no longer prices, and loss lots of a name the household bought in the
    last 30 days (selling them would wash the loss: they go on a later night)."""
    washing = restrictions.no_loss_sale if restrictions else frozenset()
    priced, unpriced, held = [], Counter(), Counter()
    for lot in lots:
        i = snap.index.get(lot.symbol)
        if i is None:
            unpriced[lot.symbol] += 1
            continue
        gain = cents_at(lot.quantity, snap.price_cents[i]) - lot.basis_cents
        if gain < 0 and lot.symbol in washing:
            held[lot.symbol] += 1
            continue
        priced.append((lot.symbol, gain, lot.lot_id, lot.quantity, i))
    priced.sort()
    notes = [
        f"{why}: {', '.join(f'{s} ×{n}' for s, n in sorted(c.items()))} ({sum(c.values())} lots in {len(c)} names)"
        for why, c in (
            ("not in the market, not sold", unpriced),
            ("loss lots held back, a household purchase within 30 days would wash them", held),
        )
        if c
    ]
    return [Trade(s, "sell", q, Decimal(snap.price_cents[i]) / 100, lot_id) for s, _, lot_id, q, i in priced], notes


def _liquidate(ledger, snap, info, lots, key, settings, clock, call, meta) -> Outcome:
    """A ``liquidate`` mandate: sell everything tonight but what would wash a loss (held back
    until its window passes); re-read the restrictions when another account moved first."""
    who = {"info": info, "settings": settings}
    for attempt in range(1, WASH_RETRIES + 1):
        try:
            restrictions = call(lambda: ledger.restrictions(info.household, snap.date)).get(info.account)
            trades, notes = liquidation(snap, lots, restrictions)
            booked = {**described(info, settings), **meta, "status": "liquidated", "notes": notes}
            committed = call(partial(ledger.commit, info.account, snap.date, trades, key, meta=booked))
        except CommitRejected as exc:
            if exc.code == "WASH_CONFLICT" and attempt < WASH_RETRIES:
                continue
            return Outcome(info.account, info.household, "rejected", str(exc), **who)
        except LedgerUnavailable as exc:
            return Outcome(info.account, info.household, "error", str(exc), **who)
        except TaxviewError as exc:
            return Outcome(info.account, info.household, "error", f"liquidation: {exc}", **who)
        finally:
            clock.lap("commit_s")
        reason = "; ".join(notes) or None
        return Outcome(info.account, info.household, "liquidated", reason, None, committed, **who)
    raise AssertionError("unreachable")
