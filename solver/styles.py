"""Style scores of a market (value, momentum, quality, ...): ``styles.parquet`` in a market directory.

  styles.parquet  symbol (string), then one float64 column per style, cross-sectionally
                  standardized (mean 0, standard deviation 1 over the universe)

A name of the universe the file does not list scores 0 on every style (the cross-sectional mean:
neutral); a symbol the universe does not have, a duplicate, a column that is not float64 (or is
given twice) or a value that is not finite (or beyond ±1e12) is refused, naming the column and the
row. A tilt (``solver.tilts``) is stated in standard deviations of the style's score, so the file's
scale does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from taxview.core.errors import InputError
from taxview.core.mandate import SECTORS, STYLE_NAME

from .market import Market, synthetic_process

STYLES_FILE = "styles.parquet"
MAX_SCORE = 1e12  # |score|: more is no standardized score (and overflows the standard deviation)
SYNTHETIC_STYLES = ("value", "momentum", "quality", "low_volatility", "size")


@dataclass(frozen=True, slots=True, eq=False)
class Styles:
    """Scores (n, k) aligned to a universe's symbols, one column per named style (read-only)."""

    names: tuple[str, ...]
    scores: np.ndarray

    def __post_init__(self) -> None:
        if self.scores.ndim != 2 or self.scores.shape[1] != len(self.names):
            raise InputError("styles", f"scores of shape {self.scores.shape} for {len(self.names)} styles")
        if not np.all(np.isfinite(self.scores)):
            raise InputError("styles", "style scores must be finite")

    def column(self, name: str) -> np.ndarray:
        return self.scores[:, self.names.index(name)]

    def subset(self, rows: np.ndarray) -> Styles:
        """The styles of the names ``rows`` (a snapshot's names of its market's universe)."""
        return Styles(self.names, _readonly(self.scores[rows]))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def standardized(x: np.ndarray) -> np.ndarray:
    sd = float(np.std(x))
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def read_styles(path: Path | str, symbols: tuple[str, ...]) -> Styles:
    """``styles.parquet`` aligned to ``symbols`` (a market's universe); see the module's doc."""
    path = Path(path)
    try:
        columns = pq.ParquetFile(path).schema_arrow.names
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise InputError(twice[0], f"{path}: column {twice[0]!r} appears {columns.count(twice[0])} times")
        t = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError("styles", f"cannot read {path}: {first}") from None
    if "symbol" not in t.column_names:
        raise InputError("symbol", f"{path} has no column 'symbol' (columns: {t.column_names})")
    names = tuple(c for c in t.column_names if c != "symbol")
    if not names:
        raise InputError("styles", f"{path} has no style column (symbol, then one float64 column per style)")
    for c in names:
        if not STYLE_NAME.fullmatch(c):
            raise InputError(c, f"{path}: style name {c!r} must be letters, digits and _ (not first a digit)")
        if t.schema.field(c).type != pa.float64():
            raise InputError(c, f"{path}: column {c!r} must be float64, got {t.schema.field(c).type}")
    pos = {s: i for i, s in enumerate(symbols)}
    given = [None if s is None else str(s) for s in t.column("symbol").to_pylist()]
    rows = np.empty(len(given), dtype=np.int64)
    seen: dict[str, int] = {}
    for r, s in enumerate(given):
        if s is None or s not in pos:
            raise InputError("symbol", f"{path} row {r + 1}: {s!r} is not in the universe")
        if s in seen:
            raise InputError("symbol", f"{path} row {r + 1}: {s} already in row {seen[s] + 1}")
        seen[s] = r
        rows[r] = pos[s]
    scores = np.zeros((len(symbols), len(names)))
    for j, c in enumerate(names):
        col = t.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
        bad = ~(np.abs(col) <= MAX_SCORE)  # NaN too
        if bad.any():
            r = int(np.argmax(bad))
            raise InputError(
                c, f"{path} row {r + 1} ({given[r]}): {c} is {float(col[r])!r}; must be a finite number within ±1e12"
            )
        scores[rows, j] = col
    return Styles(names, _readonly(scores))


def write_styles(styles: Styles, symbols: tuple[str, ...], out: Path | str) -> Path:
    out = Path(out)
    cols = {"symbol": pa.array(symbols, pa.string())} | {
        name: pa.array(styles.scores[:, j], pa.float64()) for j, name in enumerate(styles.names)
    }
    pq.write_table(pa.table(cols), out)
    return out


def synthetic_styles(B: np.ndarray, spec_vol: np.ndarray, caps: np.ndarray, n_sectors: int, seed: int) -> Styles:
    """Scores for a synthetic market that move with its factor structure, so a tilt costs tracking
    error as a real one does: value, momentum and quality each load on one of the process's style
    factors (a mix of its sector factors when it has none) plus noise (correlation about 0.8);
    low_volatility is minus market beta and specific volatility; size is log market cap. Each
    standardized over the universe; a stream of their own (``seed``), the market's draws unchanged."""
    rng = np.random.default_rng([seed, 0x5717])
    n, K = B.shape
    style_cols = list(range(1 + n_sectors, K))
    out = []
    for k in range(3):
        if k < len(style_cols):
            base = B[:, style_cols[k]]
        else:
            base = B[:, 1:] @ rng.normal(0.0, 1.0, K - 1) if K > 1 else rng.normal(0.0, 1.0, n)
        out.append(standardized(0.8 * standardized(base) + 0.6 * rng.normal(0.0, 1.0, n)))
    out.append(standardized(-(standardized(B[:, 0]) + standardized(spec_vol))))
    out.append(standardized(np.log(caps)))
    return Styles(SYNTHETIC_STYLES, _readonly(np.column_stack(out)))


def of_synthetic(market: Market, names: int, days: int, factors: int, seed: int, start: str) -> Styles:
    """``synthetic_styles`` of the market ``synthesize(names, days, factors, seed, start)`` made
    (its process replayed: the loadings and specific volatilities; its first day's caps)."""
    process, _ = synthetic_process(names, days, factors, seed, start)
    n_sectors = min(len(SECTORS), max(factors - 1, 0))
    caps = market.shares_outstanding * market.prices[0]
    return synthetic_styles(process.B, process.spec_vol, caps, n_sectors, seed)
