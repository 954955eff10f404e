"""The day's market as the solver sees it: one frozen object, shared read-only by all accounts.

A snapshot covers the names listed by its date. A delisted name stays in it from its delisting
date on, priced at its last close with a benchmark weight of 0, and is named in ``delisted``:
every account sells it and buys none (``with_delisted``, applied by the per-account step).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from taxview.core.errors import InputError
from taxview.core.money import dollars_to_cents

from .market import Market, _readonly, read_market
from .riskmodel import RiskModel, estimate, read_riskmodel
from .styles import STYLES_FILE, Styles, read_styles
from .types import AccountSettings


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    date: dt.date
    symbols: tuple[str, ...]
    sectors: tuple[str, ...]
    prices: np.ndarray  # (n,) dollars
    benchmark: np.ndarray  # (n,) weights summing to 1
    model: RiskModel
    index: dict[str, int] = field(default_factory=dict)
    price_cents: tuple[int, ...] = ()  # exact per-share prices in cents (money boundary)
    delisted: frozenset[str] = frozenset()  # delisted by ``date``: sold at their last close, never bought
    styles: Styles | None = None  # style scores (n, k) of the names (``solver.styles``); None: no styles.parquet

    def __post_init__(self) -> None:
        n = len(self.symbols)
        if self.prices.shape != (n,) or self.benchmark.shape != (n,) or self.model.symbols != self.symbols:
            raise InputError("snapshot", "prices, benchmark and risk model must cover the same symbols")
        bad = ~(np.isfinite(self.prices) & (self.prices > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError("price", f"{self.symbols[i]} has price {self.prices[i]!r}; must be finite and > 0")
        if not np.all(np.isfinite(self.benchmark)) or np.any(self.benchmark < 0):
            raise InputError("benchmark", "benchmark weights must be finite and >= 0")
        if abs(self.benchmark.sum() - 1.0) > 1e-6:
            raise InputError("benchmark", f"benchmark weights sum to {self.benchmark.sum():.6f}, not 1")
        object.__setattr__(self, "index", {s: i for i, s in enumerate(self.symbols)})
        object.__setattr__(self, "price_cents", tuple(dollars_to_cents(float(x)) for x in self.prices))
        unknown = sorted(self.delisted - self.index.keys())
        if unknown:
            raise InputError("delisted", f"delisted names {unknown[:5]} are not in the snapshot")
        held = [s for s in sorted(self.delisted) if self.benchmark[self.index[s]] != 0]
        if held:
            raise InputError("benchmark", f"delisted {held[0]} has a benchmark weight; it must be 0")
        if self.styles is not None and self.styles.scores.shape[0] != n:
            raise InputError("styles", f"style scores cover {self.styles.scores.shape[0]} names, not {n}")


def with_delisted(settings: AccountSettings, snap: Snapshot) -> AccountSettings:
    """``settings`` with the snapshot's delisted names excluded, whatever the mandate: each is
    sold at its last close (but for loss lots a wash sale holds back) and never bought."""
    if not snap.delisted or snap.delisted <= settings.exclude_symbols:
        return settings
    return replace(settings, exclude_symbols=settings.exclude_symbols | snap.delisted)


def snapshot(
    market: Market,
    date: dt.date | str,
    model: RiskModel | None = None,
    factors: int = 20,
    window: int = 252,
    styles: Styles | None = None,
) -> Snapshot:
    """Snapshot of ``market`` on ``date`` over the names listed by then; the risk model is
    estimated from trailing returns unless given; ``styles``: scores over the market's universe.
    Only the closes the day and its window need are required (a missing one raises
    ``InputError`` naming the symbol and the date)."""
    t = market.day_index(date)
    names = np.flatnonzero(market.listed_by(t))
    _require_day(market, t, names)
    if model is None and (isinstance(factors, bool) or not isinstance(factors, int) or factors < 1):
        raise InputError("factors", f"--factors must be a whole number >= 1, got {factors!r}")
    if model is None:
        model = estimate(market, t, factors=factors, window=window)
    gone = market.delisted_by(t)
    return Snapshot(
        date=dt.date.fromisoformat(str(market.dates[t])),
        symbols=tuple(market.symbols[i] for i in names),
        sectors=tuple(market.sectors[i] for i in names),
        prices=_readonly(market.prices[t, names]),
        benchmark=_readonly(market.benchmark_weights(t)[names]),
        model=model,
        delisted=frozenset(market.symbols[i] for i in names if gone[i]),
        styles=None if styles is None else styles.subset(names),
    )


def _require_day(market: Market, t: int, names: np.ndarray) -> None:
    """Every name of the day's snapshot has a price: its close that day, or its last one."""
    missing = names[np.isnan(market.prices[t, names])]
    if not len(missing):
        return
    i = int(missing[0])
    day = market.dates[t]
    if market.delisted_by(t)[i]:
        traded = np.flatnonzero(market.trading(0, t)[:, i])
        last = market.dates[traded[-1]] if len(traded) else market.delisted[i]
        why = f"it is delisted ({market.delisted[i]}) and every account sells it at its last close"
        raise InputError("close", f"no close for {market.symbols[i]} on {last}: {why}")
    raise InputError("close", f"no close for {market.symbols[i]} on {day}: the snapshot of {day} prices every name")


def load_snapshot(market_dir: str | Path, date: dt.date | str, factors: int = 20) -> tuple[Market, Snapshot]:
    """The market directory's data and its snapshot of ``date``: the vendor risk model under
    ``riskmodel/`` when the directory has one, else one estimated from trailing returns; the
    style scores of ``styles.parquet`` when it has one."""
    market = read_market(market_dir)
    styles_path = Path(market_dir) / STYLES_FILE
    styles = read_styles(styles_path, market.symbols) if styles_path.is_file() else None
    rm_dir = Path(market_dir) / "riskmodel"
    model = None
    if rm_dir.is_dir():
        t = market.day_index(date)
        names = np.flatnonzero(market.listed_by(t))
        symbols = tuple(market.symbols[i] for i in names)
        delisted = frozenset(market.symbols[i] for i in names if market.delisted_by(t)[i])
        model = read_riskmodel(rm_dir, symbols, delisted)
    return market, snapshot(market, date, model=model, factors=factors, styles=styles)
