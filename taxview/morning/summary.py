"""The morning report's numbers: pure functions of one night's outputs, no HTML.

Money stays exact (``Decimal`` dollars from the Parquet decimals) except order values, which are
shares × price in float64 dollars: they only feed a histogram and its quantiles. Every list comes
back whole and sorted, most important first; the page decides how many rows to show.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster.summary import OK_STATUSES
from taxview.core.errors import InputError

from .inputs import RunInputs

ZERO = Decimal("0.00")
OPTIMAL = "optimal"  # and OK_STATUSES: the statuses that are not failures (paused, liquidated)
IRA = "ira"  # no capital-gains tax inside: its loss sales harvest nothing
OVER_BUDGET_TOLERANCE = 1e-9  # relative: a TE at its budget to solver precision is not over it


@dataclass(frozen=True)
class Totals:
    """The firm's night in one block (run.json, with the money summed from accounts.parquet)."""

    run_id: str
    date: str
    accounts: int
    ok: int
    failed: int
    not_run: int
    interrupted: bool
    trades: int
    orders: int
    orders_p50: float | None  # orders per rebalanced account
    orders_p90: float | None
    harvested_loss: Decimal  # dollars, positive
    tax_saving: Decimal  # dollars: −Σ tax_estimate (negative when the night realized net gains)
    accounts_per_s: float
    wall_s: float
    workers: int | None
    cash_flows: int | None
    mandate_changes: int | None
    ledger_memory_bytes: int | None


@dataclass(frozen=True)
class TypeRow:
    account_type: str
    accounts: int
    harvested_loss: Decimal
    tax_saving: Decimal


@dataclass(frozen=True)
class OverBudget:
    account: str
    household: str
    account_type: str | None
    te: float  # annualized
    budget: float  # annualized

    @property
    def ratio(self) -> float:
        return self.te / self.budget


@dataclass(frozen=True)
class TrackingError:
    """Ex-ante TE of every account that has one: as a fraction of its own budget when budgets are
    recorded (``against_budget``), else annualized TE itself."""

    against_budget: bool
    values: np.ndarray  # te / budget, or te (annualized)
    over: list[OverBudget]  # worst first
    without_budget: int  # accounts with a TE but no budget (budgets recorded)


@dataclass(frozen=True)
class Attention:
    """An account that failed (status not optimal) or was solved but had to give way (notes)."""

    account: str
    household: str
    status: str
    reason: str
    notes: str
    mandate_version: int | None


@dataclass(frozen=True)
class BlockedName:
    symbol: str
    households: int  # distinct households with any restriction on it
    no_buy: int  # households that may not buy it
    no_loss_sale: int  # households that may not sell it at a loss
    until: dt.date | None  # the last day any of them is blocked


@dataclass(frozen=True)
class HarvestedName:
    symbol: str
    loss: Decimal  # dollars, positive
    accounts: int
    lots: int


@dataclass(frozen=True)
class Orders:
    """One order = one account × symbol × side; its value = Σ shares × price (dollars)."""

    count: int
    buys: int
    sells: int
    values: np.ndarray  # dollars per order
    buy: np.ndarray  # True where the order is a buy
    per_account: np.ndarray  # orders of each rebalanced account


@dataclass(frozen=True)
class CashFlows:
    """accounts.parquet's ``cash_flow``: tonight's deposits (positive) and withdrawals (negative)."""

    accounts: int
    deposits: Decimal
    withdrawals: Decimal  # dollars, negative


@dataclass(frozen=True)
class Event:
    time: object  # datetime (or date) as written
    account: str
    kind: str
    actor: str
    detail: str


def _money(values) -> Decimal:
    return sum((v for v in values if v is not None), ZERO)


def _column(inputs: RunInputs, name: str) -> list:
    """An accounts.parquet column as a list; all None when this run did not record it."""
    a = inputs.accounts
    return a.column(name).to_pylist() if name in a.column_names else [None] * a.num_rows


def orders(inputs: RunInputs) -> Orders:
    """The night's orders: orders.parquet's rows (the custodian's orders, exact values), or for a
    run without that file trades.parquet grouped by account, symbol and side."""
    if inputs.orders is not None:
        o = inputs.orders
        grouped = pa.table({"account": o["account"], "side": o["side"], "value_sum": pc.cast(o["value"], pa.float64())})
    else:
        t = inputs.trades
        value = pc.multiply(pc.cast(t["shares"], pa.float64()), t["price"])
        grouped = (
            pa.table({"account": t["account"], "symbol": t["symbol"], "side": t["side"], "value": value})
            .group_by(["account", "symbol", "side"])
            .aggregate([("value", "sum")])
        )
    sides = Counter(grouped["side"].to_pylist())
    if inputs.recorded("orders"):
        counts = dict(zip(_column(inputs, "account"), _column(inputs, "orders")))
    else:
        counts = Counter(grouped["account"].to_pylist())
    rebalanced = [a for a, s in zip(_column(inputs, "account"), _column(inputs, "status")) if s in OK_STATUSES]
    return Orders(
        count=grouped.num_rows,
        buys=sides.get("buy", 0),
        sells=sides.get("sell", 0),
        values=np.asarray(grouped["value_sum"].to_numpy(zero_copy_only=False), dtype=np.float64),
        buy=np.asarray([s == "buy" for s in grouped["side"].to_pylist()], dtype=bool),
        per_account=np.asarray([counts.get(a) or 0 for a in rebalanced], dtype=np.float64),
    )


def firm_totals(inputs: RunInputs, night_orders: Orders) -> Totals:
    """run.json's counts (its optional keys where present) and the money of accounts.parquet."""
    run = inputs.run
    per_account = night_orders.per_account

    def quantile(key: str, q: float) -> float | None:
        if run.get(key) is not None:
            return float(run[key])
        return float(np.percentile(per_account, q)) if per_account.size else None

    return Totals(
        run_id=run["run_id"],
        date=run["date"],
        accounts=run["accounts"],
        ok=run["ok"],
        failed=run["failed"],
        not_run=run.get("not_run") or 0,
        interrupted=bool(run.get("interrupted")),
        trades=run["trades"],
        orders=run["orders"] if run.get("orders") is not None else night_orders.count,
        orders_p50=quantile("orders_per_account_p50", 50),
        orders_p90=quantile("orders_per_account_p90", 90),
        harvested_loss=_money(_column(inputs, "harvested_loss")),
        tax_saving=-_money(_column(inputs, "tax_estimate")),
        accounts_per_s=float(run["accounts_per_s"]),
        wall_s=float(run["wall_s"]),
        workers=run.get("workers"),
        cash_flows=run.get("cash_flows"),
        mandate_changes=run.get("mandate_changes"),
        ledger_memory_bytes=run.get("redis_used_memory_bytes"),
    )


def by_account_type(inputs: RunInputs) -> list[TypeRow] | None:
    """Harvested losses and tax saving per account type, largest harvest first; None: types not recorded."""
    if not inputs.recorded("account_type"):
        return None
    rows: dict[str, list] = {}
    for kind, loss, tax in zip(
        _column(inputs, "account_type"), _column(inputs, "harvested_loss"), _column(inputs, "tax_estimate")
    ):
        row = rows.setdefault(kind or "(not set)", [0, ZERO, ZERO])
        row[0] += 1
        row[1] += loss or ZERO
        row[2] -= tax or ZERO
    out = [TypeRow(k, n, loss, saving) for k, (n, loss, saving) in rows.items()]
    return sorted(out, key=lambda r: (-r.harvested_loss, r.account_type))


def tracking_error(inputs: RunInputs) -> TrackingError:
    """Every account's ex-ante TE against its own budget (accounts without a TE, failed ones, left
    out); an account with outside holdings ``complete``: the TE of it and them together."""
    against_budget = inputs.recorded("te_budget")
    values, over, without = [], [], 0
    for account, household, kind, own, combined, budget in zip(
        _column(inputs, "account"),
        _column(inputs, "household"),
        _column(inputs, "account_type"),
        _column(inputs, "te_ex_ante"),
        _column(inputs, "te_combined"),
        _column(inputs, "te_budget"),
    ):
        te = own if combined is None else combined
        if te is None or not np.isfinite(te):
            continue
        if not against_budget:
            values.append(te)
        elif budget is None or not budget > 0:
            without += 1
        else:
            values.append(te / budget)
            if te > budget * (1 + OVER_BUDGET_TOLERANCE):
                over.append(OverBudget(account, household, kind, te, budget))
    over.sort(key=lambda o: (-o.ratio, o.account))
    return TrackingError(against_budget, np.asarray(values, dtype=np.float64), over, without)


def attention(inputs: RunInputs) -> list[Attention]:
    """Accounts that failed (first) or gave way (solver notes), each with its reason."""
    out = []
    for account, household, status, reason, notes, version in zip(
        _column(inputs, "account"),
        _column(inputs, "household"),
        _column(inputs, "status"),
        _column(inputs, "reason"),
        _column(inputs, "notes"),
        _column(inputs, "mandate_version"),
    ):
        if status != OPTIMAL or (notes or "").strip():  # paused and liquidated accounts are listed too
            out.append(Attention(account, household, status or "", reason or "", (notes or "").strip(), version))
    return sorted(out, key=lambda a: (a.status in OK_STATUSES, a.status, a.account))


def blocked_names(inputs: RunInputs) -> list[BlockedName] | None:
    """Names under a household wash-sale window tonight, most households first; None: not recorded."""
    if inputs.blocked is None:
        return None
    b = inputs.blocked.to_pydict()
    households: dict[str, dict[str, set]] = {}
    until: dict[str, dt.date] = {}
    for hh, symbol, restriction, last in zip(b["household"], b["symbol"], b["restriction"], b["until"]):
        households.setdefault(symbol, {}).setdefault(restriction, set()).add(hh)
        if last is not None and (symbol not in until or last > until[symbol]):
            until[symbol] = last
    out = [
        BlockedName(
            symbol,
            len(set().union(*by.values())),
            len(by.get("no_buy", ())),
            len(by.get("no_loss_sale", ())),
            until.get(symbol),
        )
        for symbol, by in households.items()
    ]
    return sorted(out, key=lambda x: (-x.households, x.symbol))


def harvested_names(inputs: RunInputs) -> list[HarvestedName]:
    """Sells at a loss summed by symbol, largest loss first (IRA accounts left out where types are recorded)."""
    t = inputs.trades
    mask = pc.and_(pc.equal(t["side"], "sell"), pc.less(t["realized_gain"], pa.scalar(ZERO, t["realized_gain"].type)))
    iras = [a for a, k in zip(_column(inputs, "account"), _column(inputs, "account_type")) if k == IRA]
    if iras:
        mask = pc.and_(mask, pc.invert(pc.is_in(t["account"], value_set=pa.array(iras, pa.string()))))
    sold = t.filter(pc.fill_null(mask, False))
    grouped = sold.group_by("symbol").aggregate(
        [("realized_gain", "sum"), ("account", "count_distinct"), ("account", "count")]
    )
    out = [
        HarvestedName(symbol, -gain, accounts, lots)
        for symbol, gain, accounts, lots in zip(
            grouped["symbol"].to_pylist(),
            grouped["realized_gain_sum"].to_pylist(),
            grouped["account_count_distinct"].to_pylist(),
            grouped["account_count"].to_pylist(),
        )
    ]
    return sorted(out, key=lambda x: (-x.loss, x.symbol))


@dataclass(frozen=True)
class TiltRow:
    """One style the accounts tilt: how many, their mean target and achieved exposure, and those
    short of their target by more than ``TILT_TOLERANCE`` (the worst first)."""

    style: str
    accounts: int
    target_mean: float
    achieved_mean: float
    short: list[tuple[str, float, float]]  # (account, achieved, target)


TILT_TOLERANCE = 0.001  # standard deviations (solver.tilts.TOLERANCE)


def tilts(inputs: RunInputs) -> list[TiltRow] | None:
    """The tilted styles' exposures against their targets tonight; None: not recorded."""
    if not inputs.recorded("tilts"):
        return None
    by_style: dict[str, list[tuple[str, float, float]]] = {}
    for account, text in zip(_column(inputs, "account"), _column(inputs, "tilts")):
        if not text:
            continue
        try:
            styles = json.loads(text)
            rows = [(style, float(got), float(target)) for style, (got, target) in styles.items()]
        except (ValueError, TypeError) as exc:
            raise InputError("tilts", f"accounts.parquet: account {account}: tilts {text!r} is not JSON of "
                             f"style: [achieved, target] ({exc})") from None  # fmt: skip
        for style, got, target in rows:
            by_style.setdefault(style, []).append((account, got, target))
    out = []
    for style, rows in sorted(by_style.items()):
        short = [r for r in rows if (r[1] - r[2]) * (1 if r[2] >= 0 else -1) < -TILT_TOLERANCE]
        short.sort(key=lambda r: -abs(r[1] - r[2]))
        out.append(
            TiltRow(style, len(rows), float(np.mean([r[2] for r in rows])), float(np.mean([r[1] for r in rows])), short)
        )
    return out


def cash_flows(inputs: RunInputs) -> CashFlows | None:
    """Tonight's cash flows from accounts.parquet; None: not recorded."""
    if not inputs.recorded("cash_flow"):
        return None
    flows = [f for f in _column(inputs, "cash_flow") if f]
    return CashFlows(len(flows), _money(f for f in flows if f > 0), _money(f for f in flows if f < 0))


def events(inputs: RunInputs) -> list[Event] | None:
    """Mandate changes and cash flows since the last night, in time order; None: not recorded."""
    if inputs.events is None:
        return None
    e = inputs.events.to_pydict()
    out = [Event(*row) for row in zip(e["time"], e["account"], e["kind"], e["actor"], e["detail"])]
    return sorted(out, key=lambda x: (x.time is None, x.time, x.account or ""))
