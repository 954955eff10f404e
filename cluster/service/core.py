"""The on-demand service's answers (issue 14), over any ledger with the service's reads: the Redis
store (``ledger.store``) or the in-memory ledger. No Ray and no web framework here: the FastAPI
app (``cluster.service.app``) and the console call these, Ray Serve (``cluster.serve``) runs them.

* ``propose``: an account solved now (``cluster.step``'s read → solve, with its mandate and this
  proposal's overrides), nothing written; the proposal is bound to the household's version.
* ``commit``: a proposal booked by the ledger's commit under the key ``proposal:<id>`` (a repeat
  replays it) if the household is still at that version, else ``CommitRejected('CHANGED')``.
* ``wash_check``: intended trades on the ledger's own wash-sale engine (``washcheck``).
* ``restrictions``, ``account``, ``household``, ``run`` and ``firm``: reads.

Money leaves as exact decimal strings of dollars; shares as decimal strings.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from cluster.step import described, direct, liquidation, settings_for
from cluster.summary import OK_STATUSES
from ledger.api import identity_names
from ledger.errors import CommitRejected, LedgerInputError
from ledger.keys import check_id, is_id, is_symbol
from ledger.windows import blocked_names, restrictions_from_windows
from solver.problem import ProblemCache
from solver.snapshot import Snapshot, with_delisted
from solver.solve import solve_account
from solver.tilts import TOLERANCE as TILT_TOLERANCE
from solver.tilts import exposures
from solver.types import AccountSettings
from taxview.core.errors import InputError, TaxviewError
from taxview.core.money import allocate_basis, cents_at, cents_of, dollars_to_cents
from taxview.core.orders import orders_of
from taxview.core.records import Lot, Restrictions, Trade
from taxview.core.tax import add_one_year, term_of

from .proposals import MemoryProposals, ProposalBook, new_proposal_id, nothing_to_book
from .washcheck import Intended, dollars, household_engine, wash_check

T = TypeVar("T")
_TRADE_NO = re.compile(r"^\w+: (?:row|trade) (\d+): ")
READ_TRIES = 5  # reads of a household retried while its version moves under them
MAX_CASH_TO_RAISE = Decimal(10) ** 12  # dollars: more is a typo (and beyond exact cents in a float)
AHEAD_DAYS = 366  # a wash-check's trade date: at most this long after the market day


class NotFound(TaxviewError):
    """An unknown account, household, proposal or run (HTTP 404)."""

    def __init__(self, what: str, name: str) -> None:
        self.what = what
        super().__init__(f"unknown {what} {name!r}")


@dataclass(frozen=True, slots=True)
class Overrides:
    """What one proposal changes of the account's mandate: dollars of cash to raise (exact),
    a TE budget (annualized), names excluded for this proposal only."""

    cash_to_raise: Decimal | None = None
    te_max: float | None = None
    exclude: tuple[str, ...] = ()


@dataclass
class Service:
    """One replica's service: the ledger, the day's snapshot, the firm's defaults, its own warm
    ``ProblemCache``, where proposals wait, the nightly runs' directory. ``call`` runs each ledger
    call (``cluster.serve`` retries through short outages, then ``LedgerUnavailable``)."""

    ledger: Any
    snap: Snapshot
    defaults: AccountSettings = field(default_factory=AccountSettings)
    proposals: ProposalBook = field(default_factory=MemoryProposals)
    cache: ProblemCache = field(default_factory=ProblemCache)
    runs_dir: Path | None = None
    call: Callable[[Callable[[], Any]], Any] = direct
    # where proposals are solved: here (None), or another process's ``propose`` (``cluster.serve``'s
    # solver replicas, so that a solve never holds up a wash-check in this process)
    proposer: Callable[[str, Overrides], dict[str, Any]] | None = None
    # one solve at a time: the cache's compiled CLARABEL problems are not thread safe
    _solving: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _c(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return self.call(partial(fn, *args, **kw))

    def ready(self) -> dict[str, Any]:
        """The ledger answers (a Redis ledger is pinged): the market day and the warm problems."""
        client = getattr(self.ledger, "r", None)
        if client is not None:
            self._c(client.ping)
        return {
            "ready": True,
            "date": self.snap.date.isoformat(),
            "names": len(self.snap.symbols),
            "problems_cached": len(self.cache),
            "cache_hits": self.cache.hits,
        }

    def warm(self, lots_per_name: Sequence[int] = (1, 2, 4, 8)) -> int:
        """Compile the problems accounts of the day will need before the first request: one
        synthetic account at benchmark weights per slot layout (a power of two of lots per name,
        half of them at a loss), solved and thrown away. Returns the problems now cached."""
        snap = self.snap
        acquired = snap.date - dt.timedelta(days=800)
        for per_name in lots_per_name:
            lots = []
            for i, s in enumerate(snap.symbols):
                shares = int(1_000_000 * snap.benchmark[i] / snap.prices[i] / per_name)
                for j in range(per_name if shares else 0):
                    worth = shares * snap.price_cents[i]
                    basis = round(worth * (1.25 if j % 2 else 0.8))
                    lots.append(Lot(f"warm-{i}-{j}", s, Decimal(shares), basis, acquired))
            with self._solving:
                solve_account(snap, lots, 2_000_000, with_delisted(self.defaults, snap), Restrictions(), self.cache)
        return len(self.cache)

    # --- identities ------------------------------------------------------------------------

    def household_of(self, account: str) -> str:
        if not is_id(account):
            check_id("account", account)
        try:
            return self._c(self.ledger.household_of, account)
        except LedgerInputError as exc:
            if getattr(exc, "field", None) == "account":
                raise NotFound("account", account) from None
            raise

    def members(self, household: str) -> dict[str, str]:
        """account -> type of ``household``'s accounts; ``NotFound`` when it has none."""
        check_id("household", household)
        _, types = self._c(self.ledger.windows_many, [household])[household]
        if not types:
            raise NotFound("household", household)
        return dict(types)

    # --- proposals ---------------------------------------------------------------------------

    def propose(self, account: str, overrides: Overrides | None = None) -> dict[str, Any]:
        """Solve ``account`` on the day's snapshot as the nightly would, with ``overrides``; nothing
        is written. A solved proposal gets an id bound to the household's version."""
        o = overrides or Overrides()
        snap = self.snap
        self._overridden(self.defaults, o)  # bad input refused before the ledger is read
        if self.proposer is not None:
            return self.proposer(account, o)
        household = self.household_of(account)
        for _ in range(READ_TRIES):  # one consistent read: the version did not move under it
            version = self._c(self.ledger.household_version, household)
            info = self._c(self.ledger.account, account)
            lots = self._c(self.ledger.lots, account)
            restrictions = self._c(self.ledger.restrictions, household, snap.date).get(account, Restrictions())
            if self._c(self.ledger.household_version, household) == version:
                break
        else:
            raise CommitRejected("BUSY", f"household {household!r} kept changing while it was read")
        settings = with_delisted(settings_for(self.defaults, info, snap.date.year), snap)
        settings = self._overridden(settings, o)
        raise_cents = 0 if o.cash_to_raise is None else dollars_to_cents(o.cash_to_raise)
        if raise_cents:
            worth = info.cash_cents + sum(
                cents_at(x.quantity, snap.price_cents[snap.index[x.symbol]]) for x in lots if x.symbol in snap.index
            )
            if raise_cents >= worth:
                raise InputError(
                    "cash_to_raise",
                    f"cash_to_raise {dollars(raise_cents)} is not less than what account {account!r} is worth: "
                    f"{dollars(worth)} (cash and holdings at the {snap.date} close)",
                )
        status = info.mandate.get("status", "active")
        base = {
            "account": account,
            "household": household,
            "date": snap.date.isoformat(),
            "ledger_version": version,
            "mandate_version": info.mandate_version,
            "cash_to_raise": dollars(raise_cents),
            "cash_before": dollars(info.cash_cents),
            "te_budget": settings.te_max,
            "pending_cash_flows": [{"date": d.isoformat(), "amount": dollars(c)} for d, c in info.pending_flows],
        }
        if status == "paused":
            return {**base, "proposal_id": None, "status": "paused", "reason": "mandate: paused (no trades)"}
        notes: list[str] = []
        if status == "liquidate":
            trades, notes = liquidation(snap, lots, restrictions)
            figures = {"status": "liquidated", "te_ex_ante": None, "tax_estimate_cents": None, "solve_ms": 0.0}
            if settings.taxable:
                figures["harvested_loss_cents"] = -sum(g for g, _ in self._gains(lots, trades).values() if g < 0)
        else:
            try:
                with self._solving:
                    cash = info.cash_cents - raise_cents
                    result = solve_account(snap, lots, cash, settings, restrictions, self.cache)
            except TaxviewError as exc:  # the request was checked above: this is the ledger's data (as nightly)
                return {**base, "proposal_id": None, "status": "error", "reason": f"bad data: {exc}"}
            if not result.ok:
                return {**base, "proposal_id": None, "status": result.status, "reason": result.reason}
            trades, notes = list(result.trades), list(result.notes)
            figures = {
                "status": "optimal",
                "te_ex_ante": result.te_ex_ante,
                "tax_estimate_cents": result.tax_estimate_cents,
                "solve_ms": result.solve_ms,
                "turnover": result.turnover,
                "harvested_loss_cents": result.harvested_loss_cents,
            }
        gains = self._gains(lots, trades)
        delta = sum((1 if t.side == "sell" else -1) * cents_of(Decimal(t.shares), Decimal(t.price)) for t in trades)
        tickets = self._tickets(account, trades, gains, settings)
        proposal_id = new_proposal_id()
        doc = {
            "account": account,
            "household": household,
            "date": snap.date.isoformat(),
            "version": version,
            "trades": [[t.symbol, t.side, str(t.shares), str(t.price), t.lot_id] for t in trades],
            "meta": {**described(info, settings), **figures, "notes": notes, "proposal": proposal_id},
        }
        self._c(self.proposals.put, proposal_id, doc)
        tax = figures.get("tax_estimate_cents")
        if tax is None:
            tax = sum(int(tk["tax_cents"]) for tk in tickets)
        return {
            **base,
            "proposal_id": proposal_id,
            "status": figures["status"],
            "reason": "; ".join(notes) or None,
            "notes": notes,
            "orders": [{k: v for k, v in tk.items() if k != "tax_cents"} for tk in tickets],
            "te_ex_ante": figures.get("te_ex_ante"),
            "tax_estimate": dollars(tax),
            "realized": {term: dollars(sum(g for g, tm in gains.values() if tm == term)) for term in ("short", "long")},
            "harvested_loss": dollars(figures.get("harvested_loss_cents", 0)),
            "turnover": figures.get("turnover"),
            "cash_after": dollars(info.cash_cents + delta),
            "solve_ms": figures.get("solve_ms"),
        }

    def _overridden(self, settings: AccountSettings, o: Overrides) -> AccountSettings:
        if o.te_max is not None:
            if not (math.isfinite(o.te_max) and 0 < o.te_max < 1):
                raise InputError("te_max", f"te_max must be in (0, 1) (annualized), got {o.te_max!r}")
            settings = replace(settings, te_max=float(o.te_max))
        if o.cash_to_raise is not None and not (
            o.cash_to_raise.is_finite() and 0 <= o.cash_to_raise <= MAX_CASH_TO_RAISE
        ):
            raise InputError("cash_to_raise", f"cash_to_raise must be dollars >= 0 and <= 10^12, got {o.cash_to_raise}")
        if o.cash_to_raise is not None and o.cash_to_raise != o.cash_to_raise.quantize(Decimal("0.01")):
            raise InputError("cash_to_raise", f"cash_to_raise must be whole cents, got {o.cash_to_raise}")
        for i, s in enumerate(o.exclude):
            if not is_symbol(s) or s not in self.snap.index:
                raise InputError("exclude", f"exclude[{i}]: {s!r} is not a name of the day's universe")
        if o.exclude:
            settings = replace(settings, exclude_symbols=settings.exclude_symbols | frozenset(o.exclude))
        return settings

    def _gains(self, lots: Sequence[Any], trades: Sequence[Trade]) -> dict[int, tuple[int, str]]:
        """Per sell (its index in ``trades``): realized gain in cents and term, the solver's where it
        priced them, else from the lot sold (a liquidation's)."""
        by_id = {x.lot_id: x for x in lots}
        out = {}
        for i, t in enumerate(trades):
            if t.side != "sell":
                continue
            lot = by_id.get(t.lot_id or "")
            if t.term is not None or lot is None:
                out[i] = (int(t.realized_gain_cents or 0), t.term or "short")
                continue
            basis = allocate_basis(lot.basis_cents, Decimal(t.shares), lot.quantity)
            out[i] = (cents_of(Decimal(t.shares), Decimal(t.price)) - basis, term_of(lot.holding_from, self.snap.date))
        return out

    def _tickets(
        self, account: str, trades: Sequence[Trade], gains: Mapping[int, tuple[int, str]], settings: AccountSettings
    ) -> list[dict[str, Any]]:
        """One ticket per symbol and side (``taxview.core.orders``) with its lots, realized gain and
        tax effect (gain × the account's rate for its term; negative: a saving)."""
        rate = {"short": settings.st_rate, "long": settings.lt_rate} if settings.taxable else {"short": 0, "long": 0}
        priced = [
            t._replace(realized_gain_cents=gains[i][0], term=gains[i][1]) if i in gains else t
            for i, t in enumerate(trades)
        ]
        out = []
        for order in orders_of(account, priced):
            allocations, tax = [], 0
            for a in order.allocations:
                row = {"lot_id": a.lot_id, "shares": str(a.shares)}
                if order.side == "sell" and a.gain_cents is not None:
                    effect = round(a.gain_cents * rate[a.term])
                    tax += effect
                    row.update(
                        basis=dollars(a.basis_cents),
                        gain=dollars(a.gain_cents),
                        term=a.term,
                        tax_effect=dollars(effect),
                    )
                allocations.append(row)
            out.append(
                {
                    "symbol": order.symbol,
                    "side": order.side,
                    "shares": str(order.shares),
                    "price": str(order.price),
                    "value": dollars(order.value_cents),
                    "gain": dollars(sum(a.gain_cents or 0 for a in order.allocations)),
                    "tax_effect": dollars(tax),
                    "tax_cents": tax,
                    "allocations": allocations,
                }
            )
        return out

    def commit(self, proposal_id: str) -> dict[str, Any]:
        """Book proposal ``proposal_id`` if its household has not changed since (``CHANGED``
        otherwise: propose again); a repeat returns what was booked (``replayed``). A proposal with
        no orders books nothing and leaves the version alone (``empty``)."""
        if not is_id(proposal_id):
            raise InputError("proposal_id", f"{proposal_id!r} is not a proposal id")
        doc = self._c(self.proposals.get, proposal_id)
        if doc is None:
            raise NotFound("proposal", proposal_id)
        if not doc["trades"]:  # nothing to book: no write, the version stays (other proposals stay valid)
            version = self._c(self.ledger.household_version, doc["household"])
            cash = dollars(self._c(self.ledger.account, doc["account"]).cash_cents)
            return nothing_to_book(proposal_id, doc, version, cash)
        trades = [Trade(s, side, Decimal(q), Decimal(p), lot) for s, side, q, p, lot in doc["trades"]]
        date = dt.date.fromisoformat(doc["date"])
        done = self._c(
            self.ledger.commit,
            doc["account"],
            date,
            trades,
            f"proposal:{proposal_id}",
            check_cash=True,
            meta=doc["meta"],
            expect_version=doc["version"],
        )
        return {
            "proposal_id": proposal_id,
            "account": doc["account"],
            "household": doc["household"],
            "date": doc["date"],
            "replayed": done.replayed,
            "empty": False,
            "proposed_on_version": doc["version"],
            "ledger_version": self._c(self.ledger.household_version, doc["household"]),
            "sales": [
                {
                    "lot_id": s["lot_id"],
                    "symbol": s["symbol"],
                    "shares": s["quantity"],
                    "proceeds": dollars(s["proceeds_cents"]),
                    "basis": dollars(s["basis_cents"]),
                    "gain": dollars(s["gain_cents"]),
                    "term": s["term"],
                    "disallowed": dollars(s["disallowed_cents"]),
                }
                for s in done.sales
            ],
            "new_lots": list(done.new_lots),
            "cash": dollars(self._c(self.ledger.account, doc["account"]).cash_cents),
        }

    # --- the household's wash-sale rule --------------------------------------------------------

    def wash_check(self, household: str, trades: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """What each intended trade would wash in ``household`` (``washcheck.wash_check``): rows of
        account, symbol, side, quantity (shares), optional price (default: the day's close),
        date (default: the day's), lot_id (a sell's lot)."""
        check_id("household", household)
        if not trades:
            raise InputError("trades", "give at least one trade")
        identical = getattr(self.ledger, "identical", None) or {}
        keys = sorted({identical.get(str(row.get("symbol")), str(row.get("symbol"))) for row in trades})
        state = self._c(self.ledger.household_state, household, keys if all(is_symbol(k) for k in keys) else [])
        types = state["accounts"]
        if not types:
            raise NotFound("household", household)
        intended = []
        for i, row in enumerate(trades):
            try:
                intended.append(self._intended(i, row, types))
            except InputError as exc:
                exc.index = i  # the trade's place in the request (the HTTP error's loc)
                raise
        house = household_engine(
            household,
            types,
            state["lots"],
            state["pending"],
            identical,
            state["seq"],
            state["sale_seq"],
            state["last_date"],
        )
        try:
            answers = wash_check(house, intended)
        except InputError as exc:  # the engine names the trade as "row i" / "trade i"
            found = _TRADE_NO.search(str(exc))
            if found:
                exc.index = int(found.group(1))
            raise
        return {"household": household, "ledger_version": state["version"], "trades": answers}

    def _intended(self, i: int, row: Mapping[str, Any], types: Mapping[str, str]) -> Intended:
        account = row.get("account")
        if account not in types:
            raise InputError("account", f"trades[{i}]: account {account!r} is not in the household")
        symbol = row.get("symbol")
        if not is_symbol(symbol):
            raise InputError("symbol", f"trades[{i}]: {symbol!r} is not a symbol")
        side = row.get("side")
        if side not in ("buy", "sell"):
            raise InputError("side", f"trades[{i}]: side must be buy or sell, got {side!r}")
        quantity = _decimal(row.get("quantity"), f"trades[{i}]", "quantity")
        if quantity <= 0:
            raise InputError("quantity", f"trades[{i}]: quantity must be > 0 shares, got {quantity}")
        price = row.get("price")
        if price is None:
            if symbol not in self.snap.index:
                raise InputError("price", f"trades[{i}]: {symbol} has no close on {self.snap.date}: give a price")
            price = Decimal(self.snap.price_cents[self.snap.index[symbol]]) / 100
        price = _decimal(price, f"trades[{i}]", "price")
        if price <= 0:
            raise InputError("price", f"trades[{i}]: price must be > 0 dollars, got {price}")
        date = _date(row.get("date"), f"trades[{i}]") or self.snap.date
        if date > self.snap.date + dt.timedelta(days=AHEAD_DAYS):
            raise InputError(
                "date", f"trades[{i}]: {date} is more than {AHEAD_DAYS} days after the market day {self.snap.date}"
            )
        lot_id = row.get("lot_id") or None
        return Intended(account, symbol, side, quantity, price, date, lot_id)

    def restrictions(self, household: str, date: dt.date | None = None) -> dict[str, Any]:
        """What the household's wash-sale windows block on ``date`` (default the day's): per account
        the names it may not buy and may not sell at a loss, and each name's block with its last day."""
        check_id("household", household)
        date = date or self.snap.date
        windows, types = self._c(self.ledger.windows_many, [household])[household]
        if not types:
            raise NotFound("household", household)
        names = identity_names(getattr(self.ledger, "identical", {}) or {})
        per = restrictions_from_windows(windows, date, types, names)
        blocked = [
            {"symbol": s, "what": what, "until": until.isoformat()}
            for key, what, until in blocked_names(windows, date)
            for s in sorted(names.get(key, {key}))
        ]
        blocked.sort(key=lambda b: (b["symbol"], b["what"]))
        return {
            "household": household,
            "date": date.isoformat(),
            "accounts": {
                a: {"account_type": types[a], "no_buy": sorted(r.no_buy), "no_loss_sale": sorted(r.no_loss_sale)}
                for a, r in sorted(per.items())
            },
            "blocked": blocked,
        }

    # --- reads ---------------------------------------------------------------------------------

    def account(self, account: str) -> dict[str, Any]:
        """The account now: its lots priced at the day's close (unrealized gain, term, the day it goes
        long-term), holdings against benchmark weights, TE of the holdings, mandate, YTD realized, cash."""
        household = self.household_of(account)
        info = self._c(self.ledger.account, account)
        lots = self._c(self.ledger.lots, account)
        snap = self.snap
        settings = with_delisted(settings_for(self.defaults, info, snap.date.year), snap)
        rows, value = [], {}
        for x in lots:
            i = snap.index.get(x.symbol)
            worth = cents_at(x.quantity, snap.price_cents[i]) if i is not None else None
            long_from = add_one_year(x.holding_from) + dt.timedelta(days=1)
            rows.append(
                {
                    "lot_id": x.lot_id,
                    "symbol": x.symbol,
                    "shares": str(x.quantity),
                    "basis": dollars(x.basis_cents),
                    "acquired": x.acquired.isoformat(),
                    "holding_from": x.holding_from.isoformat(),
                    "value": None if worth is None else dollars(worth),
                    "unrealized": None if worth is None else dollars(worth - x.basis_cents),
                    "unrealized_cents": None if worth is None else worth - x.basis_cents,
                    "term": term_of(x.holding_from, snap.date),
                    "long_term_from": long_from.isoformat(),
                }
            )
            if worth is not None:
                value[x.symbol] = value.get(x.symbol, 0) + worth
        total = info.cash_cents + sum(value.values())
        holdings = []
        w = np.zeros(len(snap.symbols))
        for s in sorted(set(value) | {snap.symbols[i] for i in np.flatnonzero(snap.benchmark)}):
            i = snap.index[s]
            w[i] = value.get(s, 0) / total if total > 0 else 0.0
            holdings.append(
                {
                    "symbol": s,
                    "sector": snap.sectors[i],
                    "value": dollars(value.get(s, 0)),
                    "weight": w[i],
                    "benchmark": float(snap.benchmark[i]),
                    "active": w[i] - float(snap.benchmark[i]),
                }
            )
        year = snap.date.year
        unrealized = sum(r["unrealized_cents"] or 0 for r in rows)
        return {
            "account": account,
            "household": household,
            "date": snap.date.isoformat(),
            "account_type": info.account_type,
            "rates": {"short": info.st_rate, "long": info.lt_rate},
            "cash": dollars(info.cash_cents),
            "value": dollars(total),
            "unrealized": dollars(unrealized),
            "mandate": json.loads(_mandate_json(info.mandate)),
            "mandate_version": info.mandate_version,
            "status": info.mandate.get("status", "active"),
            "te_budget": settings.te_max,
            "te_now": self._te(w) if total > 0 else None,
            "style_exposures": self._exposures(w, settings) if total > 0 else [],
            "realized_ytd": {
                "year": year,
                "short": dollars(info.realized.get(f"{year}:st", 0)),
                "long": dollars(info.realized.get(f"{year}:lt", 0)),
                "net": dollars(info.realized_in(year)),
            },
            "pending_cash_flows": [{"date": d.isoformat(), "amount": dollars(c)} for d, c in info.pending_flows],
            "lots": rows,
            "holdings": holdings,
        }

    def _exposures(self, w: np.ndarray, settings: AccountSettings) -> list[dict[str, Any]]:
        """Each style's active exposure of weights ``w`` (standard deviations of its score, as the
        solver's tilts count it), with the mandate's tilt target (None: not tilted); [] without
        the market's styles.parquet."""
        targets = dict(settings.tilts)
        got = exposures(self.snap, (), w - self.snap.benchmark)
        out = []
        for style, (exposure, _) in got.items():
            target = targets.get(style)
            short = target is not None and (exposure - target) * (1 if target >= 0 else -1) < -TILT_TOLERANCE
            out.append({"style": style, "exposure": exposure, "target": target, "short": short})
        return out

    def _te(self, w: np.ndarray) -> float:
        """Ex-ante tracking error (annualized) of weights ``w`` against the benchmark."""
        m = self.snap.model
        a = w - self.snap.benchmark
        f = m.B.T @ a
        return float(math.sqrt(max(float(f @ m.F @ f + a @ (m.D * a)), 0.0)))

    def household(self, household: str) -> dict[str, Any]:
        """The household's accounts (type, cash) and its restrictions today."""
        types = self.members(household)
        accounts = []
        for a in sorted(types):
            info = self._c(self.ledger.account, a)
            accounts.append({"account": a, "account_type": types[a], "cash": dollars(info.cash_cents)})
        return {"household": household, "accounts": accounts, "restrictions": self.restrictions(household)}

    def run(self, run_id: str) -> dict[str, Any]:
        """A nightly run's summary (its run.json) by run id."""
        if not is_id(run_id):
            raise InputError("run_id", f"{run_id!r} is not a run id")
        path = self._runs().get(run_id)
        if path is None:
            raise NotFound("run", run_id)
        return json.loads(path.read_text())

    def _runs(self) -> dict[str, Path]:
        """run id -> its run.json, under ``runs_dir`` (one level of run directories)."""
        out: dict[str, Path] = {}
        if self.runs_dir is None or not Path(self.runs_dir).is_dir():
            return out
        for path in sorted(Path(self.runs_dir).glob("*/run.json")) + sorted(Path(self.runs_dir).glob("run.json")):
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict) and isinstance(doc.get("run_id"), str):
                out[doc["run_id"]] = path
        return out

    def firm(self) -> dict[str, Any]:
        """The last nightly run (by date): its totals, the accounts that failed and those over their
        TE budget; and the ledger's accounts by household."""
        runs = []
        for run_id, path in self._runs().items():
            doc = json.loads(path.read_text())
            runs.append((doc.get("date", ""), path.stat().st_mtime, run_id, path, doc))
        last = None
        if runs:
            _, _, run_id, path, doc = max(runs)
            failed, over = _run_accounts(path.parent / "accounts.parquet")
            last = {"summary": doc, "failed": failed, "over_budget": over}
        homes = self._c(self.ledger.accounts)
        households: dict[str, list[str]] = {}
        for a, h in sorted(homes.items()):
            households.setdefault(h, []).append(a)
        return {
            "date": self.snap.date.isoformat(),
            "last_run": last,
            "runs": sorted(r[2] for r in runs),
            "households": households,
        }


def _run_accounts(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """From a run's accounts.parquet: the accounts that failed, those over their TE budget."""
    if not path.is_file():
        return [], []
    import pyarrow.parquet as pq

    rows = pq.read_table(
        path, columns=["account", "household", "status", "reason", "te_ex_ante", "te_budget"]
    ).to_pylist()
    failed = [r for r in rows if r["status"] not in OK_STATUSES]
    over = [
        r
        for r in rows
        if r["te_ex_ante"] is not None and r["te_budget"] is not None and r["te_ex_ante"] > r["te_budget"] * (1 + 1e-3)
    ]
    return failed, over


def _mandate_json(mandate: Mapping[str, Any]) -> str:
    from taxview.core.mandate import to_json

    return to_json(mandate)


def _decimal(value: Any, where: str, name: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise InputError(name, f"{where}: {name} is required (a decimal number)")
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        raise InputError(name, f"{where}: {name} must be a decimal number, got {value!r}") from None
    if not d.is_finite():
        raise InputError(name, f"{where}: {name} must be finite, got {value!r}")
    return d


def _date(value: Any, where: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError("date", f"{where}: date must be YYYY-MM-DD, got {value!r}") from None
