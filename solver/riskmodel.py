"""Factor risk model Σ = B F Bᵀ + diag(D), annualized, as one frozen object of read-only arrays.

Two sources: ``estimate`` (statistical PCA model from a trailing window of returns, with
shrinkage) and ``read_riskmodel`` (a vendor model supplied as Parquet; format in the README):
  riskmodel/loadings.parquet    symbol, then one float64 column per factor
  riskmodel/factor_cov.parquet  factor (string), then one float64 column per factor (K×K)
  riskmodel/specific.parquet    symbol, specific_var (annualized variance)

A model covers the names listed on its day, delisted ones included (they are sold at their last
close). A name that did not trade through the whole window (listed inside it, or delisted) gets
its own loadings by regressing its returns on the factors' once it has ``min_history`` days of
them; before that, its sector's average loadings and the median specific variance ("an average
name of its sector"). A vendor model must cover every name but the delisted ones, which take the
covered names' average loadings and median specific variance when it drops them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from taxview.core.errors import InputError

from .market import TRADING_DAYS, Market, _readonly


@dataclass(frozen=True, slots=True, eq=False)
class RiskModel:
    symbols: tuple[str, ...]
    B: np.ndarray  # (n, K) loadings
    F: np.ndarray  # (K, K) factor covariance, annualized
    D: np.ndarray  # (n,) specific variances, annualized
    fingerprint: str = ""  # content hash, filled in on construction (cache key)

    def __post_init__(self) -> None:
        n, K = self.B.shape
        if self.F.shape != (K, K) or self.D.shape != (n,) or len(self.symbols) != n:
            raise InputError("riskmodel", f"inconsistent shapes B{self.B.shape} F{self.F.shape} D{self.D.shape}")
        for name, arr in (("loadings", self.B), ("factor_cov", self.F), ("specific_var", self.D)):
            if not np.all(np.isfinite(arr)):
                raise InputError(name, "risk model has NaN or infinite entries")
        if np.any(self.D <= 0):
            raise InputError("specific_var", "specific variances must be > 0")
        if not np.allclose(self.F, self.F.T, atol=1e-12):
            raise InputError("factor_cov", "factor covariance must be symmetric")
        if np.linalg.eigvalsh(self.F).min() < -1e-10:
            raise InputError("factor_cov", "factor covariance must be positive semidefinite")
        h = hashlib.blake2b(digest_size=16)
        for part in (repr(self.symbols).encode(), self.B.tobytes(), self.F.tobytes(), self.D.tobytes()):
            h.update(part)
        object.__setattr__(self, "fingerprint", h.hexdigest())

    def variance(self, active: np.ndarray) -> float:
        y = self.B.T @ active
        return float(y @ self.F @ y + active @ (self.D * active))

    def te(self, active: np.ndarray) -> float:
        return float(np.sqrt(max(self.variance(active), 0.0)))


def min_history(factors: int) -> int:
    """Days of returns a name needs for loadings of its own (fewer: its sector's average)."""
    return max(60, 3 * factors)


def estimate(market: Market, t_end: int, factors: int = 20, window: int = 252, shrinkage: float = 0.3) -> RiskModel:
    """PCA model from the ``window`` daily returns ending at ``t_end`` (no look-ahead), over the
    names listed by then (``Market.listed_by``).

    The factors come from the names that trade through the whole window; eigenvalues above the
    residual noise level are kept for ``factors`` components; specific variances are shrunk toward
    their cross-sectional median (``shrinkage`` in [0, 1]) and floored. Every close the window
    needs must be there (``Market.require_closes`` names the first one missing).
    """
    t0 = max(1, t_end - window + 1)
    market.require_closes(
        t0 - 1,
        t_end,
        f"the risk model of {market.dates[t_end]} is estimated from the closes since {market.dates[t0 - 1]}",
    )
    names = np.flatnonzero(market.listed_by(t_end))
    R = market.returns(t_end, window)[:, names]
    if R.shape[0] < max(factors + 2, 20):
        raise InputError("window", f"only {R.shape[0]} days of returns before {market.dates[t_end]}")
    trading = market.trading(t0 - 1, t_end)[:, names]
    has = trading[1:] & trading[:-1]  # (W, m) a return of its own that day
    full = has.all(axis=0)
    if full.sum() < 2:
        raise InputError("window", f"fewer than 2 names trade through the window before {market.dates[t_end]}")
    X = R[:, full] - R[:, full].mean(axis=0)
    T = X.shape[0]
    U, S, Vt = np.linalg.svd(X, full_matrices=False)
    K = min(factors, len(S))
    B = np.zeros((len(names), K))
    B[full] = Vt[:K].T  # orthonormal loadings
    lam = S[:K] ** 2 / (T - 1)
    resid = X - (U[:, :K] * S[:K]) @ Vt[:K]
    d = np.full(len(names), np.nan)
    d[full] = resid.var(axis=0, ddof=1)
    proxies = _partial_names(market, names, R, has, full, U[:, :K] * S[:K], B, d)
    median = np.median(d[~np.isnan(d)])
    d[proxies] = median
    d = (1 - shrinkage) * d + shrinkage * median
    d = np.maximum(d, 1e-4 / TRADING_DAYS)
    # Noise in the kept eigenvalues: remove the average specific variance they absorbed.
    lam = np.maximum(lam - d[full].mean(), 1e-8)
    return RiskModel(
        symbols=tuple(market.symbols[i] for i in names),
        B=_readonly(B),
        F=_readonly(np.diag(lam * TRADING_DAYS)),
        D=_readonly(d * TRADING_DAYS),
    )


def _partial_names(
    market: Market,
    names: np.ndarray,
    R: np.ndarray,
    has: np.ndarray,
    full: np.ndarray,
    f: np.ndarray,
    B: np.ndarray,
    d: np.ndarray,
) -> np.ndarray:
    """Fill ``B`` and ``d`` (daily) of the names without the whole window: a regression of their
    returns on the factor returns ``f`` (W, K) with ``min_history`` days, else their sector's
    average loadings; the indices of those (their specific variance is the median's)."""
    K = f.shape[1]
    proxies = []
    for j in np.flatnonzero(~full):
        days = has[:, j]
        h = int(days.sum())
        if h >= min_history(K):
            fj = f[days] - f[days].mean(axis=0)
            y = R[days, j] - R[days, j].mean()
            b = np.linalg.lstsq(fj, y, rcond=None)[0]
            res = y - fj @ b
            B[j], d[j] = b, float(res @ res) / (h - K - 1)
            continue
        sector = market.sectors[names[j]]
        peers = full & np.array([market.sectors[i] == sector for i in names])
        B[j] = B[peers if peers.any() else full].mean(axis=0)
        proxies.append(j)
    return np.array(proxies, dtype=np.int64)


def write_riskmodel(model: RiskModel, out: Path | str) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    K = model.B.shape[1]
    names = [f"f{k + 1}" for k in range(K)]
    cols = {"symbol": pa.array(model.symbols)} | {f: model.B[:, k] for k, f in enumerate(names)}
    pq.write_table(pa.table(cols), out / "loadings.parquet")
    cols = {"factor": pa.array(names)} | {f: model.F[:, k] for k, f in enumerate(names)}
    pq.write_table(pa.table(cols), out / "factor_cov.parquet")
    pq.write_table(pa.table({"symbol": pa.array(model.symbols), "specific_var": model.D}), out / "specific.parquet")
    return out


def read_riskmodel(path: Path | str, symbols: tuple[str, ...], delisted: frozenset[str] = frozenset()) -> RiskModel:
    """Load a vendor model and align it to ``symbols``: every symbol must be covered but the
    ``delisted`` ones, which take the covered names' average loadings and median specific variance."""
    path = Path(path)
    try:
        L = pq.read_table(path / "loadings.parquet")
        Fc = pq.read_table(path / "factor_cov.parquet")
        Sp = pq.read_table(path / "specific.parquet")
    except (FileNotFoundError, pa.ArrowInvalid, OSError) as exc:
        raise InputError("riskmodel", f"cannot read risk model under {path}: {exc}") from exc
    factors = [c for c in L.column_names if c != "symbol"]
    if "symbol" not in L.column_names or not factors:
        raise InputError("loadings", "loadings.parquet needs a 'symbol' column and factor columns")
    if Fc.column_names[1:] != factors or Fc.column("factor").to_pylist() != factors:
        raise InputError("factor_cov", f"factor_cov.parquet must be {len(factors)}×{len(factors)} over {factors}")
    lsym = {s: i for i, s in enumerate(L.column("symbol").to_pylist())}
    ssym = {s: i for i, s in enumerate(Sp.column("symbol").to_pylist())}
    covered = [s in lsym and s in ssym for s in symbols]
    missing = [s for s, ok in zip(symbols, covered) if not ok and s not in delisted]
    if missing:
        raise InputError("symbol", f"risk model does not cover {len(missing)} symbols, e.g. {missing[:5]}")
    if not any(covered):
        raise InputError("symbol", f"risk model covers none of the {len(symbols)} symbols")
    Bfull = np.column_stack([L.column(f).to_numpy().astype(np.float64) for f in factors])
    F = np.column_stack([Fc.column(f).to_numpy().astype(np.float64) for f in factors])
    Dfull = Sp.column("specific_var").to_numpy().astype(np.float64)
    if all(covered):
        B = Bfull[[lsym[s] for s in symbols]]
        D = Dfull[[ssym[s] for s in symbols]]
    else:  # a delisted name the vendor dropped: an average name (it is sold, never bought)
        ok = np.array(covered)
        B = np.empty((len(symbols), len(factors)))
        D = np.empty(len(symbols))
        B[ok] = Bfull[[lsym[s] for s, c in zip(symbols, covered) if c]]
        D[ok] = Dfull[[ssym[s] for s, c in zip(symbols, covered) if c]]
        B[~ok] = B[ok].mean(axis=0)
        D[~ok] = np.median(D[ok])
    return RiskModel(symbols=symbols, B=_readonly(B), F=_readonly(F), D=_readonly(D))
