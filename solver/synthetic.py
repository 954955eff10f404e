"""Synthetic accounts (lots bought over past years) for demos, tests and benchmarks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np

from taxview.core.money import dollars_to_cents
from taxview.core.records import Lot

from .market import Market


def synth_lots(
    market: Market,
    t: int,
    rng: np.random.Generator,
    value: float = 1_000_000.0,
    lots_per_name: float = 5.0,
    history_days: int = 756,
    prefix: str = "L",
) -> list[Lot]:
    """Lots worth about ``value`` today, cap weighted with noise, bought on past trading days.

    Each name gets 1 + Poisson(lots_per_name − 1) lots bought on random days of the last
    ``history_days`` before ``t``, so some sit at a loss and some at a gain, some short and some
    long term. Basis is the purchase-day close times shares, in cents.
    """
    w = market.benchmark_weights(t) * rng.lognormal(0.0, 0.15, market.n)
    w /= w.sum()
    lots: list[Lot] = []
    first = max(0, t - history_days)
    for i, sym in enumerate(market.symbols):
        k = 1 + rng.poisson(max(lots_per_name - 1, 0))
        split = rng.dirichlet(np.ones(k))
        days = np.sort(rng.integers(first, max(t, first + 1), size=k))
        for m in range(k):
            shares = int(round(value * w[i] * split[m] / market.prices[t, i]))
            if shares < 1:
                continue
            d = days[m]
            acquired = dt.date.fromisoformat(str(market.dates[d]))
            lots.append(
                Lot(
                    lot_id=f"{prefix}{i}-{m}",
                    symbol=sym,
                    quantity=Decimal(shares),
                    basis_cents=dollars_to_cents(round(shares * market.prices[d, i], 2)),
                    acquired=acquired,
                )
            )
    return lots
