"""One account's rebalance, and one household's: read the lots, cash and household restrictions
from a ledger, solve, commit. The nightly worker, the backtest and the service all run these steps,
over the Redis store or the in-memory ledger (``ledger.api.Ledger``); they differ only in what they
do with the outcomes.

``rebalance_account`` solves one account on the restrictions the ledger gives it now.
``rebalance_household`` solves a household's accounts together: it decides the household's side
per name first (a name a taxable account harvests is bought by no account; the IRAs keep off the
names the taxable accounts hold at a loss), then solves and commits each account with those sides,
the taxable accounts before the IRAs (issue 13).

A commit is idempotent by ``key`` (a re-run of the same run id replays what was booked); a commit
refused as a wash sale (another account of the household traded first) is solved again on fresh
restrictions, up to ``WASH_RETRIES`` times. One account's failure is an outcome, never an exception.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from ledger.api import AccountInfo, CommitResult, Ledger
from ledger.errors import CommitRejected, LedgerUnavailable
from solver.limits import PACED
from solver.problem import ProblemCache
from solver.snapshot import Snapshot, with_delisted
from solver.solve import solve_account
from solver.types import AccountSettings, SolveResult
from taxview.core.errors import TaxviewError
from taxview.core.money import cents_at
from taxview.core.records import Restrictions, Trade

from .settings import settings_with

WASH_RETRIES = 3
# ``rebalance_household``: the household's IRAs buy no name its taxable accounts hold a lot of at
# this fraction of its basis below it or more (unless the IRA's TE budget needs it: then noted).
PROTECT_LOSS = 0.05
# What an account's notes say when its TE budget overrode the household's sides.
PROTECT_NOTE = "household: bought names its taxable accounts hold at a loss (its TE budget needs them)"
SIDES_NOTE = "household: solved without the household's sides (its TE budget needs names others harvest)"
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
    ready = _prepare(ledger, snap, account, key, defaults, household, held, clock, call, meta)
    if isinstance(ready, Outcome):
        return ready
    if ready.status == "liquidate":
        return _liquidate(ledger, snap, ready.info, ready.lots, key, ready.settings, clock, call, ready.meta)
    return _solve_commit(ledger, snap, ready, cache, clock, call)


def rebalance_household(
    ledger: Ledger,
    snap: Snapshot,
    household: str,
    accounts: Sequence[str],
    key_prefix: str,
    defaults: AccountSettings,
    cache: ProblemCache,
    *,
    timings: dict[str, Any] | None = None,
    call: Callable[[Callable[[], Any]], Any] = direct,
    meta: dict[str, Any] | None = None,
    protect_loss: float | None = PROTECT_LOSS,
) -> list[Outcome]:
    """Rebalance the ``accounts`` of ``household`` together on ``snap.date``: one outcome per
    account, in the order given, each committed under ``f"{key_prefix}:{account}"`` (idempotent
    as ``rebalance_account``; a re-run replays the accounts already booked).

    The household's side per name is decided first (``household_sides``): a name a taxable
    account harvests tonight is bought by no account of the household, and the IRAs buy no name
    the taxable accounts hold at a loss of ``protect_loss`` or more (None: no such rule) unless
    their TE budget needs it. Then each account is solved with those sides added to the ledger's
    restrictions and committed: liquidations first, then the taxable accounts, then the IRAs,
    each on the restrictions the ones before it left (the ledger's commit still checks). The
    household's lots and its starting restrictions are read once. ``timings`` gets
    ``household_sides_s`` besides ``rebalance_account``'s stages (whose ``solve_s`` includes it).
    """
    clock = _Clock(timings)
    held: dict[str, list] = {}
    outcomes: dict[str, Outcome] = {}
    ready: dict[str, _Ready] = {}
    for account in accounts:
        key = f"{key_prefix}:{account}"
        got = _prepare(ledger, snap, account, key, defaults, household, held, clock, call, meta)
        if isinstance(got, Outcome):
            outcomes[account] = got
        else:
            ready[account] = got
    for r in ready.values():  # liquidations first: nothing bought tonight holds their loss sales back
        if r.status == "liquidate":
            outcomes[r.account] = _liquidate(ledger, snap, r.info, r.lots, r.key, r.settings, clock, call, r.meta)
    active = [r for r in ready.values() if r.status != "liquidate"]
    if not active:
        return [outcomes[a] for a in accounts]
    try:
        start = call(lambda: ledger.restrictions(household, snap.date))
    except LedgerUnavailable as exc:
        outcomes.update({r.account: Outcome(r.account, household, "error", str(exc)) for r in active})
        return [outcomes[a] for a in accounts]
    except TaxviewError as exc:
        outcomes.update({r.account: Outcome(r.account, household, "error", f"ledger: {exc}") for r in active})
        return [outcomes[a] for a in accounts]
    finally:
        clock.lap("ledger_read_s")
    taxable = {r.account: r.settings.taxable for r in ready.values()}
    taxable.update({o.account: o.info.account_type != "ira" for o in outcomes.values() if o.info is not None})
    held_lots = [held.get(a, []) for a, yes in taxable.items() if yes]  # paused accounts' too
    sides = household_sides(snap, active, start, cache, protect_loss, held_lots)
    clock.timings["household_sides_s"] = clock.timings.get("household_sides_s", 0.0) + time.perf_counter() - clock.t
    clock.lap("solve_s")
    for account in sides.order:
        r = ready[account]
        fallbacks = [(Restrictions(), SIDES_NOTE)]  # the mandate's TE budget first, then the sides
        if r.settings.taxable:
            extra = Restrictions(no_buy=sides.sell)
        else:  # an IRA: around the harvests, and around the losses still held when its budget allows
            extra = Restrictions(no_buy=sides.sell | sides.protect)
            if sides.protect:
                fallbacks.insert(0, (Restrictions(no_buy=sides.sell), PROTECT_NOTE))
        first = sides.first.get(account)
        outcomes[account] = _solve_commit(ledger, snap, r, cache, clock, call, extra, first, tuple(fallbacks))
    return [outcomes[a] for a in accounts]


@dataclass(slots=True)
class _Ready:
    """An account read and its cash flows booked: what its solve and commit need."""

    key: str
    info: AccountInfo
    lots: list
    settings: AccountSettings  # the mandate over the firm's defaults, the delisted names excluded
    status: str  # active | liquidate (a paused account is an outcome already)
    meta: dict[str, Any]  # stored with the commit

    @property
    def account(self) -> str:
        return self.info.account

    @property
    def household(self) -> str:
        return self.info.household


def _prepare(ledger, snap, account, key, defaults, household, held, clock, call, meta) -> Outcome | _Ready:
    """Read ``account`` (its lots from ``held`` when given) and book tonight's cash flows: an
    ``Outcome`` when there is nothing to solve (replayed, paused, unreadable, a refused
    withdrawal), else what the solve needs."""
    try:
        household = household or call(lambda: ledger.household_of(account))
        prior = call(lambda: ledger.committed(account, key))
        if prior is not None:  # done by an earlier (interrupted) run of this key
            clock.lap("ledger_read_s")
            return Outcome(account, household, "optimal", committed=prior)
        info = call(lambda: ledger.account(account))
        if info.household != household:  # its lots are not in ``held``: solving it would be wrong
            clock.lap("ledger_read_s")
            return Outcome(account, household, "error", f"ledger: {account!r} is in household {info.household!r}")
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
    if status == "paused":
        reason = "mandate: paused (no trades)" + (
            "; a withdrawal waits until it is active" if info.flows_due(snap.date) else ""
        )
        return Outcome(account, household, "paused", reason, info=info, settings=settings, cash_flow_cents=flowed)
    return _Ready(key, info, lots, settings, status, {**(meta or {}), "cash_flow_cents": flowed})


def _solve_commit(
    ledger: Ledger,
    snap: Snapshot,
    ready: _Ready,
    cache: ProblemCache,
    clock: _Clock,
    call: Callable[[Callable[[], Any]], Any],
    extra: Restrictions | None = None,
    first: SolveResult | None = None,
    fallbacks: Sequence[tuple[Restrictions, str]] = (),
) -> Outcome:
    """Solve ``ready`` on its household's restrictions as the ledger gives them now, ``extra``
    added (the household's sides), and commit; a wash conflict (another account moved first)
    re-reads them and solves again. ``first``: a solve made on restrictions no stricter, committed
    as it is when it keeps these (the same optimum, one solve saved). ``fallbacks``: (extra
    restrictions, note), each tried in turn instead of ``extra`` while the account is left
    unsolved or over its TE budget (the ledger's own restrictions always hold); the note goes in
    the result's notes."""
    account, household, info, settings = ready.account, ready.household, ready.info, ready.settings
    for attempt in range(1, WASH_RETRIES + 1):
        try:
            restrictions = call(lambda: ledger.restrictions(household, snap.date)).get(account, Restrictions())
        except LedgerUnavailable as exc:
            return Outcome(account, household, "error", str(exc))
        except TaxviewError as exc:
            return Outcome(account, household, "error", f"ledger: {exc}")
        finally:
            clock.lap("ledger_read_s")
        try:
            wanted = joined(restrictions, extra)
            if first is not None and attempt == 1 and keeps(first, wanted):
                result = first
            else:
                result = solve_account(snap, ready.lots, info.cash_cents, settings, wanted, cache)
            for relaxed, note in fallbacks:
                if within_budget(result, settings):
                    break
                kept = solve_account(snap, ready.lots, info.cash_cents, settings, joined(restrictions, relaxed), cache)
                if kept.ok:
                    result = replace(kept, notes=(*kept.notes, note))
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
            "tilts": {k: [got, t] for k, (got, t) in result.active_exposures.items() if t is not None} or None,
            "te_combined": result.te_combined,
            "tax_estimate_cents": result.tax_estimate_cents,
            "turnover": result.turnover,
            "solve_ms": result.solve_ms,
            "attempts": attempt,
            **ready.meta,
        }
        try:
            committed = call(
                partial(ledger.commit, account, snap.date, result.trades, ready.key, check_cash=True, meta=figures)
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


@dataclass(frozen=True, slots=True)
class Sides:
    """A household's side per name tonight (domain.md §3: loss sales or buys, never both).

    ``sell``: the names a taxable account harvests (sells at a loss) when solved alone on the
    household's restrictions: bought by no account tonight. ``protect``: the other names the
    taxable accounts hold at a loss of ``protect_loss`` or more: not bought by the IRAs (a
    purchase would forbid their harvest for 30 days). ``first``: those solves, committed as they
    are when the sides leave them unchanged. ``order``: the accounts to solve, the taxable ones
    by the loss each harvests (largest first), then the IRAs."""

    sell: frozenset[str]
    protect: frozenset[str]
    first: Mapping[str, SolveResult]
    order: tuple[str, ...]


def household_sides(
    snap: Snapshot,
    accounts: Sequence[_Ready],
    start: Mapping[str, Restrictions],
    cache: ProblemCache,
    protect_loss: float | None = PROTECT_LOSS,
    taxable_lots: Sequence[Sequence] | None = None,
) -> Sides:
    """The household's sides (``Sides``) from each taxable account solved alone on the
    restrictions the night starts with (``start``); pure, nothing committed. A name one account
    harvests and another would buy goes to the harvest: the loss is worth its tax rate on every
    dollar, the purchase only the tracking error a substitute leaves (the buyer is solved again
    without it). ``taxable_lots``: the lots ``protect`` looks at, each taxable account's (default
    those of ``accounts``; the household step adds its paused accounts')."""
    sell: set[str] = set()
    first: dict[str, SolveResult] = {}
    harvested: dict[str, int] = {}
    for r in accounts:
        if not r.settings.taxable:
            continue
        restrictions = start.get(r.account, Restrictions())
        try:
            result = solve_account(snap, r.lots, r.info.cash_cents, r.settings, restrictions, cache)
        except TaxviewError:
            continue  # bad data: its own solve says so
        if result.ok:
            first[r.account] = result
            sell |= loss_sales(result)
            harvested[r.account] = result.harvested_loss_cents
    protect: set[str] = set()
    if protect_loss is not None:
        if taxable_lots is None:
            taxable_lots = [r.lots for r in accounts if r.settings.taxable]
        for lots in taxable_lots:
            protect |= loss_names(snap, lots, protect_loss)
    taxable = sorted((r.account for r in accounts if r.settings.taxable), key=lambda a: (-harvested.get(a, 0), a))
    others = [r.account for r in accounts if not r.settings.taxable]
    return Sides(frozenset(sell), frozenset(protect - sell), first, (*taxable, *others))


def loss_sales(result: SolveResult) -> set[str]:
    """The names ``result`` sells at a loss."""
    return {t.symbol for t in result.trades if t.side == "sell" and t.realized_gain_cents < 0}


def loss_names(snap: Snapshot, lots: Sequence, fraction: float) -> set[str]:
    """The names of ``lots`` with a lot priced today at least ``fraction`` of its basis below it."""
    out = set()
    for lot in lots:
        i = snap.index.get(lot.symbol)
        if i is not None and cents_at(lot.quantity, snap.price_cents[i]) <= lot.basis_cents * (1 - fraction):
            out.add(lot.symbol)
    return out


def joined(a: Restrictions, b: Restrictions | None) -> Restrictions:
    """Both restrictions at once."""
    if b is None or (not b.no_buy and not b.no_loss_sale):
        return a
    return Restrictions(a.no_buy | b.no_buy, a.no_loss_sale | b.no_loss_sale)


def keeps(result: SolveResult, restrictions: Restrictions) -> bool:
    """Whether ``result`` buys nothing ``restrictions`` forbid buying and sells at a loss nothing
    they forbid selling at a loss."""
    for t in result.trades:
        if t.side == "buy" and t.symbol in restrictions.no_buy:
            return False
        if t.side == "sell" and t.realized_gain_cents < 0 and t.symbol in restrictions.no_loss_sale:
            return False
    return True


def within_budget(result: SolveResult, settings: AccountSettings) -> bool:
    """Solved, with the tracking error within the account's budget (the rounding's tolerance; with
    outside holdings ``complete``, the TE of the account and them together)."""
    te = result.te_ex_ante if result.te_combined is None else result.te_combined
    paced = any(PACED in note for note in result.notes)  # over it on purpose: the gain budget's pace
    return result.ok and (te <= settings.te_max * (1 + 1e-3) or paced)


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
        cents = int(budget * 100)
        settings = replace(settings, gain_allowance_cents=cents - info.realized_in(year), gain_budget_cents=cents)
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
