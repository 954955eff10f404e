"""After-tax backtest of tax-aware direct indexing (domain.md §2–5), and its report.

Day by day: on rebalance days the risk model (refreshed from trailing returns only), the
household's wash-sale restrictions and the account's lots go to the same per-account solver the
nightly job runs; fills are at the close with the solver's trading cost; every trade goes through
the same wash-sale engine the ledger uses (``ledger.washsale.Household``). Taxes are settled per
tax year with §2 netting (and the $3,000 cap and carry-forward when the investor has no outside
gains) and paid from outside the portfolio: after-tax NAV = NAV − each year's tax grown at the
benchmark's return since it was settled (a saving raises it: it is reinvested in the index, as in
domain.md §6) − the tax accrued in the current year. A baseline with λ_tax = 0 runs on the same
days so the report shows what tax
awareness itself added.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cluster.step import rebalance_account
from ledger.api import AccountInfo
from ledger.memory import MemoryLedger
from solver.account import validate_settings
from solver.io import check_against_universe
from solver.market import TRADING_DAYS, Market, _readonly, read_market, synthesize
from solver.problem import ProblemCache
from solver.riskmodel import estimate
from solver.snapshot import Snapshot
from solver.styles import STYLES_FILE, Styles, of_synthetic, read_styles
from solver.types import AccountSettings
from taxview.core.errors import InputError
from taxview.core.money import cents_of, dollars_to_cents, value_cents
from taxview.core.records import Lot, Restrictions
from taxview.core.tax import ORDINARY_LOSS_CAP_CENTS, net_year, term_of

SP500_20_SECTORS = {
    "AAPL": "Information Technology",
    "AMD": "Information Technology",
    "MSFT": "Information Technology",
    "BAC": "Financials",
    "JPM": "Financials",
    "BBY": "Consumer Discretionary",
    "HD": "Consumer Discretionary",
    "CVX": "Energy",
    "XOM": "Energy",
    "RRC": "Energy",
    "GE": "Industrials",
    "JNJ": "Health Care",
    "LLY": "Health Care",
    "MRK": "Health Care",
    "PFE": "Health Care",
    "UNH": "Health Care",
    "KO": "Consumer Staples",
    "PEP": "Consumer Staples",
    "PG": "Consumer Staples",
    "WMT": "Consumer Staples",
}


@dataclass(frozen=True)
class TaxConfig:
    outside_gains: bool = True  # net losses offset other gains in full; else $3,000 cap + carry-forward
    ordinary_cap_cents: int = ORDINARY_LOSS_CAP_CENTS  # $3,000 ($1,500 married filing separately)


@dataclass
class Data:
    market: Market
    benchmark_kind: str  # "buy-and-hold" (equal weights at the start, drifting) or "cap-weighted"
    index: np.ndarray | None = None  # a context index (S&P 500) on the market's dates
    index_name: str | None = None
    styles: Styles | None = None  # style scores of the market's names (for tilts), aligned to its symbols


def _check_settings(settings: AccountSettings, data: Data) -> None:
    """The account's settings against the data before the first day: a bad value, an unknown
    symbol or sector, a tilt of a style the data has no scores for would otherwise fail every
    rebalance (each day a failure) and the backtest report an account left in cash."""
    validate_settings(settings)
    check_against_universe(settings, Restrictions(), data.market)
    for style, _ in settings.tilts:
        if data.styles is None:
            raise InputError("tilts", "the account tilts styles but the data has no styles.parquet")
        if style not in data.styles.names:
            raise InputError(f"tilts.{style}", f"no style {style!r} in the data (styles: {list(data.styles.names)})")


# --- data ------------------------------------------------------------------------------------


def _read_csv_gz(name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    raw = resources.files("taxview").joinpath("data", name).read_bytes()
    lines = gzip.decompress(raw).decode().strip().splitlines()
    header = lines[0].split(",")[1:]
    dates = np.array([ln.split(",", 1)[0] for ln in lines[1:]], dtype="datetime64[D]")
    values = np.array([[float(v) for v in ln.split(",")[1:]] for ln in lines[1:]])
    return header, dates, values


def load_data(kind: str, seed: int = 7) -> Data:
    """``sp500-20`` (vendored from skfolio), ``synthetic`` (500 names, 10 years) or a market DIR."""
    if kind == "sp500-20":
        symbols, dates, prices = _read_csv_gz("sp500_dataset.csv.gz")
        _, idx_dates, idx = _read_csv_gz("sp500_index.csv.gz")
        index = np.interp(dates.astype(np.int64), idx_dates.astype(np.int64), idx[:, 0])
        market = Market(
            tuple(symbols),
            tuple(SP500_20_SECTORS[s] for s in symbols),
            _readonly(np.ones(len(symbols))),
            dates,
            _readonly(prices),
        )
        return Data(market, "buy-and-hold", index, "S&P 500")
    if kind == "synthetic":
        # 2014 as risk-model history, then 2015-01-02 through 2024-12-31: ten full years
        return Data(*_synthetic(names=500, days=2872, factors=20, seed=seed, start="2013-12-31"))
    path = Path(kind)
    if not path.is_dir():
        raise InputError("data", f"{kind!r} is not sp500-20, synthetic or a market directory")
    market = read_market(path)
    if market.changed:
        raise InputError("data", f"{path}: names were listed or delisted (`market universe`): a backtest's is fixed")
    market.require_closes(0, len(market.dates) - 1, "a backtest prices every name on every day")
    styles = read_styles(path / STYLES_FILE, market.symbols) if (path / STYLES_FILE).is_file() else None
    return Data(market, "cap-weighted", styles=styles)


def _synthetic(names: int, days: int, factors: int, seed: int, start: str) -> tuple:
    """The synthetic market and its benchmark kind, with the style scores ``market synth`` writes."""
    market = synthesize(names=names, days=days, factors=factors, seed=seed, start=start)
    return market, "cap-weighted", None, None, of_synthetic(market, names, days, factors, seed, start)


# --- taxes (pure) ----------------------------------------------------------------------------


def settle_year(
    st_cents: int, lt_cents: int, carry_st: int, carry_lt: int, st_rate: float, lt_rate: float, cfg: TaxConfig
) -> tuple[int, int, int]:
    """Tax of one year (negative: a saving) after §2 netting (``taxview.core.tax.net_year``);
    returns (tax, carry_st, carry_lt). Carries are losses (≤ 0) that keep their character; ST
    losses are used first. With outside gains a net loss saves its rate in full, nothing carried."""
    n = net_year(st_cents, lt_cents, carry_st, carry_lt, cfg.ordinary_cap_cents)
    tax = max(n.st_cents, 0) * st_rate + max(n.lt_cents, 0) * lt_rate
    if cfg.outside_gains:
        return round(tax + min(n.st_cents, 0) * st_rate + min(n.lt_cents, 0) * lt_rate), 0, 0
    return round(tax - n.deduction_cents * st_rate), n.carry_st_cents, n.carry_lt_cents


# --- simulation ------------------------------------------------------------------------------


@dataclass
class Run:
    dates: list[dt.date] = field(default_factory=list)
    nav: list[float] = field(default_factory=list)
    after_tax_nav: list[float] = field(default_factory=list)
    benchmark_nav: list[float] = field(default_factory=list)
    harvested: list[float] = field(default_factory=list)  # cumulative harvested losses, dollars
    traded: float = 0.0  # dollars bought + sold
    taxes_by_year: dict[int, int] = field(default_factory=dict)  # cents (negative: saved)
    harvested_by_year: dict[int, int] = field(default_factory=dict)  # cents
    start_nav_by_year: dict[int, float] = field(default_factory=dict)
    realized_total: int = 0  # cents, recognized over the run
    trade_gains: int = 0  # cents, summed trade by trade (the identity check)
    wash_sales: int = 0
    rebalances: int = 0
    days_per_s: float = 0.0
    final_lots: list = field(default_factory=list)
    final_cash: int = 0
    final_shares: Any = None
    sales: list = field(default_factory=list)  # the wash-sale engine's sale records
    liquidation_tax: int = 0
    solve_failures: int = 0
    failures: list = field(default_factory=list)  # (date, status, reason) of days left untraded
    # a transition (a legacy portfolio): the path toward the benchmark
    te_by_date: list = field(default_factory=list)  # (date, ex-ante TE after the rebalance)
    realized_by_year: dict[int, int] = field(default_factory=dict)  # net realized gain, cents
    outside_left_by_year: dict[int, list] = field(default_factory=dict)  # names outside the universe held at year end
    exposures_by_date: list = field(default_factory=list)  # (date, {style: (achieved, target)})


def schedule_days(dates: np.ndarray, start: int, end: int, kind: str) -> set[int]:
    if kind == "daily":
        return set(range(start, end + 1))
    if kind == "never":  # hold (a legacy portfolio left alone)
        return set()
    out, last = set(), None
    for t in range(start, end + 1):
        d = dt.date.fromisoformat(str(dates[t]))
        period = d.isocalendar()[:2] if kind == "weekly" else (d.year, d.month)
        if period != last:
            out.add(t)
            last = period
    return out


def simulate(
    data: Data,
    start: str,
    end: str,
    rebalance: str,
    capital: float,
    settings: AccountSettings,
    tax: TaxConfig,
    lots: list[Lot] | None = None,
    factors: int = 20,
    window: int = 252,
    model_every: int = 21,
    progress: Any = None,
    outside: frozenset[str] = frozenset(),
) -> Run:
    """One account through [start, end]; ``lots`` is a legacy portfolio (else all cash).

    ``outside``: names of the data outside the benchmark's universe (weight 0: a legacy portfolio's
    names the index does not hold; never bought, sold as the TE and the gain budget allow). With
    ``settings.gain_budget_cents``, each rebalance's allowance is the year's budget less the net
    gain the year has realized so far (exact cents, the ledger's recognized gains)."""
    m = data.market
    t0i = int(np.searchsorted(m.dates, np.datetime64(start, "D")))
    t1i = int(np.searchsorted(m.dates, np.datetime64(end, "D"), side="right")) - 1
    if t0i >= len(m.dates) or t1i <= t0i:
        raise InputError("start/end", f"{start}..{end} is outside the data ({m.dates[0]}..{m.dates[-1]})")
    if t0i < 60:
        raise InputError("start", f"needs 60 trading days of history before {start} for the risk model")
    if rebalance not in ("daily", "weekly", "monthly", "never"):
        raise InputError("rebalance", f"{rebalance!r} is not daily|weekly|monthly")
    _check_settings(settings, data)
    if isinstance(factors, bool) or not isinstance(factors, int) or factors < 1:
        raise InputError("factors", f"--factors must be a whole number >= 1, got {factors!r}")
    days = schedule_days(m.dates, t0i, t1i, rebalance)
    k = min(factors, max(1, m.n // 3))
    index = {s: i for i, s in enumerate(m.symbols)}
    unknown = sorted(outside - index.keys())
    if unknown:
        raise InputError("outside_universe", f"{unknown[:5]} are not in the data")
    in_universe = np.array([s not in outside for s in m.symbols])
    ledger = MemoryLedger()
    cash0 = dollars_to_cents(capital) if lots is None else 0
    ledger.add_accounts([AccountInfo("A", "BT", settings.account_type, settings.st_rate, settings.lt_rate, cash0)])
    shares = np.zeros(m.n)  # shares held per name (NAV without walking the lots)
    if lots is not None and not lots:
        raise InputError("legacy", "the legacy portfolio has no lots (omit it to start from cash)")
    first = dt.date.fromisoformat(str(m.dates[t0i]))
    for x in lots or []:
        if x.symbol not in index:
            raise InputError("symbol", f"legacy lot {x.lot_id!r}: {x.symbol!r} is not in the data")
        if x.acquired > first:
            raise InputError("acquired", f"legacy lot {x.lot_id!r}: acquired {x.acquired} after the start {first}")
        ledger.open_lot("A", x)
        shares[index[x.symbol]] += float(x.quantity)
    run = Run()
    bench_shares = None
    cache = ProblemCache(maxsize=4)
    model = None
    st_year = lt_year = harvested_cum = 0
    carry_st = carry_lt = 0
    settled: list[tuple[int, float]] = []  # (tax in cents, benchmark level when it was settled)
    year = dt.date.fromisoformat(str(m.dates[t0i])).year
    clock = time.perf_counter()
    start_nav = None
    for t in range(t0i, t1i + 1):
        date = dt.date.fromisoformat(str(m.dates[t]))
        p = m.prices[t]
        pc = [dollars_to_cents(float(x)) for x in p]  # the day's exact closes, in cents
        if date.year != year:  # settle the finished tax year
            tax_y, carry_st, carry_lt = settle_year(
                st_year, lt_year, carry_st, carry_lt, settings.st_rate, settings.lt_rate, tax
            )
            run.taxes_by_year[year] = tax_y
            settled.append((tax_y, float((bench_shares * p).sum())))
            run.realized_by_year[year] = st_year + lt_year
            run.outside_left_by_year[year] = [m.symbols[i] for i in np.flatnonzero(~in_universe & (shares > 0))]
            st_year = lt_year = 0
            year = date.year
        if bench_shares is None:
            w0 = np.full(m.n, 1.0 / m.n) if data.benchmark_kind == "buy-and-hold" else m.benchmark_weights(t)
            w0 = np.where(in_universe, w0, 0.0)
            bench_shares = w0 / w0.sum() / p
        if model is None or (t - t0i) % model_every == 0:
            model = estimate(m, t, factors=k, window=min(window, t))
        if t in days:
            bench = (bench_shares * p) / (bench_shares * p).sum()
            snap = Snapshot(date, m.symbols, m.sectors, _readonly(p), _readonly(bench), model, styles=data.styles)
            tonight = settings
            if settings.gain_budget_cents is not None:
                tonight = replace(settings, gain_allowance_cents=settings.gain_budget_cents - (st_year + lt_year))
            out = rebalance_account(ledger, snap, "A", f"backtest:{date}", tonight, cache)
            run.rebalances += 1
            if out.result is not None and out.result.ok:
                run.te_by_date.append((date, out.result.te_ex_ante))
                if out.result.active_exposures:
                    run.exposures_by_date.append((date, out.result.active_exposures))
            if out.ok:
                traded_cents = 0
                for trade in out.committed.trades:
                    value = cents_of(Decimal(trade["quantity"]), Decimal(trade["price"]))
                    traded_cents += value
                    q = float(trade["quantity"])
                    shares[index[trade["symbol"]]] += q if trade["side"] == "buy" else -q
                for sale in out.committed.sales:
                    gain = sale["gain_cents"] + sale["disallowed_cents"] + sale["permanent_cents"]
                    gain = gain if sale["recognized"] else 0
                    run.trade_gains += gain
                    run.realized_total += gain
                    if sale["term"] == "short":
                        st_year += gain
                    else:
                        lt_year += gain
                    if gain < 0:
                        harvested_cum -= gain
                        run.harvested_by_year[year] = run.harvested_by_year.get(year, 0) - gain
                run.traded += traded_cents / 100
                ledger.adjust_cash("A", -math.ceil(traded_cents * settings.cost_bps / 1e4))
            else:
                run.wash_sales += out.status == "rejected" and "WASH_CONFLICT" in (out.reason or "")
                run.solve_failures += 1
                run.failures.append((date.isoformat(), out.status, out.reason))
        cash = ledger.account("A").cash_cents
        nav_cents = cash + int(round(float(shares @ np.array(pc, dtype=np.float64))))
        nav = nav_cents / 100
        if start_nav is None:
            start_nav = nav
        if year not in run.start_nav_by_year:
            run.start_nav_by_year[year] = nav
        accrued, _, _ = settle_year(st_year, lt_year, carry_st, carry_lt, settings.st_rate, settings.lt_rate, tax)
        run.dates.append(date)
        run.nav.append(nav)
        level = float((bench_shares * p).sum())
        # taxes paid (or saved) in past years, as if that money had stayed in the index since
        paid = sum(tax_c * level / at for tax_c, at in settled)
        run.after_tax_nav.append(nav - (paid + accrued) / 100)
        run.benchmark_nav.append(float((bench_shares * p).sum()) * start_nav)
        run.harvested.append(harvested_cum / 100)
        if progress is not None:
            progress.update(1)
    tax_y, carry_st, carry_lt = settle_year(
        st_year, lt_year, carry_st, carry_lt, settings.st_rate, settings.lt_rate, tax
    )
    run.taxes_by_year[year] = tax_y
    run.realized_by_year[year] = st_year + lt_year
    run.outside_left_by_year[year] = [m.symbols[i] for i in np.flatnonzero(~in_universe & (shares > 0))]
    run.days_per_s = (t1i - t0i + 1) / (time.perf_counter() - clock)
    run.final_lots = ledger.lots("A")
    run.sales = ledger.sales("BT")
    run.final_cash = ledger.account("A").cash_cents
    run.final_shares = shares
    pT = m.prices[t1i]
    end = dt.date.fromisoformat(str(m.dates[t1i]))
    liq = 0
    for x in run.final_lots:
        gain = value_cents(x.quantity, float(pT[index[x.symbol]])) - x.basis_cents
        rate = settings.lt_rate if term_of(x.holding_start, end) == "long" else settings.st_rate
        liq += round(gain * rate) if settings.taxable else 0
    run.liquidation_tax = liq
    return run


# --- metrics ---------------------------------------------------------------------------------


def metrics(run: Run, capital: float) -> dict[str, Any]:
    nav, atn, bnav = np.array(run.nav), np.array(run.after_tax_nav), np.array(run.benchmark_nav)
    years = max((run.dates[-1] - run.dates[0]).days / 365.25, 1 / 365.25)

    def ann(series: np.ndarray) -> float:
        return float((series[-1] / capital) ** (1 / years) - 1)

    r_p = nav[1:] / nav[:-1] - 1
    r_b = bnav[1:] / bnav[:-1] - 1
    te = float(np.std(r_p - r_b, ddof=1) * math.sqrt(TRADING_DAYS)) if len(r_p) > 2 else 0.0
    harvested_total = run.harvested[-1] if run.harvested else 0.0
    tax_alpha = {
        str(y): round(-run.taxes_by_year.get(y, 0) / 100 / run.start_nav_by_year[y], 6)
        for y in sorted(run.start_nav_by_year)
    }
    return {
        "ann_return_pre_tax": ann(nav),
        "ann_return_after_tax": ann(atn),
        "benchmark_ann_return": ann(bnav),
        "after_tax_alpha_bps": round((ann(atn) - ann(bnav)) * 1e4, 1),
        "tracking_error_bps": round(te * 1e4, 1),
        "avg_turnover": round(run.traded / 2 / float(np.mean(nav)) / years, 4),
        "lifetime_harvested_pct": round(100 * harvested_total / capital, 3),
        "harvested_by_year_pct": {
            str(y): round(100 * c / 100 / capital, 3) for y, c in sorted(run.harvested_by_year.items())
        },
        "tax_alpha_by_year": tax_alpha,
        "taxes_by_year": {str(y): c / 100 for y, c in sorted(run.taxes_by_year.items())},
        "final_nav": round(float(nav[-1]), 2),
        "final_after_tax_nav": round(float(atn[-1]), 2),
        "liquidation_after_tax_nav": round(float(atn[-1]) - run.liquidation_tax / 100, 2),
        "benchmark_final_nav": round(float(bnav[-1]), 2),
        "wash_sales_created": run.wash_sales,
        "realized_total": run.realized_total / 100,
        "rebalances": run.rebalances,
        "solve_failures": run.solve_failures,
        "days": len(run.dates),
        "days_per_second": round(run.days_per_s, 2),
    }


def transition_metrics(run: Run, settings: AccountSettings) -> dict[str, Any]:
    """A transition's path: ex-ante TE at each year's last rebalance (and the year's mean), net
    realized gain by year against the annual budget, and the names outside the universe still
    held at each year end."""
    by_year: dict[int, list[float]] = {}
    for d, te in run.te_by_date:
        by_year.setdefault(d.year, []).append(te)
    budget = settings.gain_budget_cents
    return {
        "te_by_year": {str(y): round(tes[-1], 6) for y, tes in sorted(by_year.items())},
        "te_mean_by_year": {str(y): round(float(np.mean(tes)), 6) for y, tes in sorted(by_year.items())},
        "gain_budget": None if budget is None else budget / 100,
        "realized_by_year": {str(y): c / 100 for y, c in sorted(run.realized_by_year.items())},
        "over_budget_years": [
            str(y) for y, c in sorted(run.realized_by_year.items()) if budget is not None and c > budget
        ],
        "outside_universe_left_by_year": {str(y): names for y, names in sorted(run.outside_left_by_year.items())},
    }


def exposure_path(run: Run) -> dict[str, Any]:  # metrics.json's form (dates as ISO text)
    """The tilted styles' achieved exposure at each rebalance with its target (standard deviations)."""
    out: dict[str, Any] = {}
    for d, exposures in run.exposures_by_date:
        for style, (got, target) in exposures.items():
            if target is not None:
                row = out.setdefault(style, {"target": target, "dates": [], "achieved": []})
                row["dates"].append(d.isoformat())
                row["achieved"].append(round(got, 4))
    return out


__all__ = [
    "Data",
    "Run",
    "TaxConfig",
    "exposure_path",
    "load_data",
    "metrics",
    "settle_year",
    "simulate",
    "transition_metrics",
]
