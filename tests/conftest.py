"""Shared fixtures. Integration fixtures (real redis-server, real Ray) live in tests/integration."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from solver.market import synthesize
from solver.riskmodel import RiskModel
from solver.snapshot import Snapshot, snapshot
from solver.types import Lot


@pytest.fixture(scope="session")
def small_market():
    """60 names, 400 days, 8 factors: realistic structure, fast to solve."""
    return synthesize(names=60, days=400, factors=8, seed=3)


@pytest.fixture(scope="session")
def small_snap(small_market):
    return snapshot(small_market, str(small_market.dates[-1]), factors=8)


def ro(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def twin_snapshot(date: dt.date = dt.date(2024, 3, 1)) -> Snapshot:
    """Six names, equal benchmark weights; TWIN moves with AAA (same factor, tiny specific risk)."""
    symbols = ("AAA", "TWIN", "CCC", "DDD", "EEE", "FFF")
    B = np.zeros((6, 3))
    B[:, 0] = 1.0  # market
    B[0:2, 1] = 1.0  # AAA and TWIN share a strong factor
    B[2:4, 2] = 1.0
    F = np.diag([0.16**2, 0.30**2, 0.20**2])
    D = np.array([0.02, 0.02, 0.25, 0.25, 0.25, 0.25]) ** 2
    model = RiskModel(symbols=symbols, B=ro(B), F=ro(F), D=ro(D))
    return Snapshot(
        date=date,
        symbols=symbols,
        sectors=("Tech", "Tech", "Energy", "Energy", "Health", "Health"),
        prices=ro([50.0, 40.0, 20.0, 25.0, 100.0, 10.0]),
        benchmark=ro(np.full(6, 1 / 6)),
        model=model,
    )


def lot(lot_id: str, symbol: str, shares: int | str, basis_dollars: float | str, acquired: str) -> Lot:
    return Lot(
        lot_id,
        symbol,
        Decimal(str(shares)),
        int(round(float(basis_dollars) * 100)),
        dt.date.fromisoformat(acquired),
    )


def benchmark_lots(
    snap: Snapshot, value: float, gain: float = 0.10, acquired: str = "2022-01-03"
) -> list[Lot]:
    """One lot per name at benchmark weight, each with the same gain fraction."""
    out = []
    for i, sym in enumerate(snap.symbols):
        sh = int(value * snap.benchmark[i] / snap.prices[i])
        out.append(lot(f"{sym}-1", sym, sh, round(sh * snap.prices[i] / (1 + gain), 2), acquired))
    return out
