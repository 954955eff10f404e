"""The day's market as the solver sees it: one frozen object, shared read-only by all accounts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from taxview.core.errors import InputError
from taxview.core.money import dollars_to_cents

from .market import Market, _readonly, read_market
from .riskmodel import RiskModel, estimate, read_riskmodel


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


def snapshot(
    market: Market,
    date: dt.date | str,
    model: RiskModel | None = None,
    factors: int = 20,
    window: int = 252,
) -> Snapshot:
    """Snapshot of ``market`` on ``date``; the risk model is estimated from trailing returns unless given."""
    t = market.day_index(date)
    if model is None:
        model = estimate(market, t, factors=factors, window=window)
    return Snapshot(
        date=dt.date.fromisoformat(str(market.dates[t])),
        symbols=market.symbols,
        sectors=market.sectors,
        prices=_readonly(market.prices[t]),
        benchmark=_readonly(market.benchmark_weights(t)),
        model=model,
    )


def load_snapshot(market_dir: str | Path, date: dt.date | str, factors: int = 20) -> tuple[Market, Snapshot]:
    """The market directory's data and its snapshot of ``date``: the vendor risk model under
    ``riskmodel/`` when the directory has one, else one estimated from trailing returns."""
    market = read_market(market_dir)
    rm_dir = Path(market_dir) / "riskmodel"
    model = read_riskmodel(rm_dir, market.symbols) if rm_dir.is_dir() else None
    return market, snapshot(market, date, model=model, factors=factors)
