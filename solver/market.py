"""Market data: the synthetic market generator and the Parquet format (README "Data formats").

A market directory holds
  universe.parquet  symbol (string), sector (string), shares_outstanding (float64), and after a
                    universe update (``solver.marketdir``) listed, delisted (date32, null: none)
  prices.parquet    date (date32), symbol (string), close (float64, dollars, > 0)
and optionally a vendor risk model under ``riskmodel/`` (see ``solver.riskmodel``) and, for a
synthetic market, ``synthetic.json`` (how it was made; ``solver.marketdir`` adds new days).
A name trades from its listing date through its delisting date (the last day it trades); after
that its price is its last close. The benchmark is cap weighted over the names trading on each
date: weight = close × shares_outstanding / Σ (a delisted name weighs 0 from its delisting date on).
A missing close is NaN in ``Market.prices``: only what a day's snapshot needs is refused
(``require_closes``), naming the symbol and the date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from taxview.core.errors import InputError
from taxview.core.mandate import SECTORS

TRADING_DAYS = 252


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


NOT_A_DATE = np.datetime64("NaT", "D")


@dataclass(frozen=True, slots=True)
class Market:
    """Daily closes of one universe, aligned: ``prices[t, i]`` is symbol ``i`` on ``dates[t]``.

    ``listed`` and ``delisted`` (NaT: none) bound the days a name trades; on construction its
    prices before listing become NaN and those after its delisting date its last close. NaN
    elsewhere is a missing close (refused where a snapshot needs it, ``require_closes``).
    """

    symbols: tuple[str, ...]
    sectors: tuple[str, ...]
    shares_outstanding: np.ndarray  # (n,)
    dates: np.ndarray  # (T,) datetime64[D], increasing
    prices: np.ndarray  # (T, n) dollars, NaN: no close
    listed: np.ndarray | None = None  # (n,) datetime64[D]: its first day; NaT (None: all): from the start
    delisted: np.ndarray | None = None  # (n,) datetime64[D]: its last day; NaT (None: all): trading

    def __post_init__(self) -> None:
        n = len(self.symbols)
        if len(set(self.symbols)) != n:
            raise InputError("symbol", "duplicate symbols in the universe")
        if self.prices.shape != (len(self.dates), n):
            raise InputError("prices", f"shape {self.prices.shape} != ({len(self.dates)}, {n})")
        bad = ~np.isnan(self.prices) & ~(np.isfinite(self.prices) & (self.prices > 0))
        if bad.any():
            t, i = np.argwhere(bad)[0]
            raise InputError(
                "close",
                f"price of {self.symbols[i]} on {self.dates[t]} is {self.prices[t, i]!r}; "
                "prices must be finite and > 0 (NaN: no close)",
            )
        if np.any(np.diff(self.dates.astype("int64")) <= 0):
            raise InputError("date", "dates must be strictly increasing")
        for name in ("listed", "delisted"):
            days = getattr(self, name)
            days = np.full(n, NOT_A_DATE) if days is None else np.asarray(days, dtype="datetime64[D]")
            if days.shape != (n,):
                raise InputError(name, f"{name} has shape {days.shape}, not ({n},)")
            object.__setattr__(self, name, _readonly_days(days))
        listed, delisted = self.listed, self.delisted
        early = ~np.isnat(listed) & ~np.isnat(delisted) & (delisted < listed)
        if early.any():
            i = int(np.argmax(early))
            symbol, day = self.symbols[i], delisted[i]
            raise InputError("delisted", f"{symbol} is delisted on {day}, before its listing on {listed[i]}")
        if self.changed:
            object.__setattr__(self, "prices", _readonly(_bounded(self.prices, self.dates, listed, delisted)))

    @property
    def n(self) -> int:
        return len(self.symbols)

    @property
    def changed(self) -> bool:
        """Has the universe a listing or a delisting (``market universe``)?"""
        return not (np.isnat(self.listed).all() and np.isnat(self.delisted).all())

    def listed_by(self, t: int) -> np.ndarray:
        """(n,) bool: listed on or before ``dates[t]`` (a snapshot's names, the delisted too)."""
        return np.isnat(self.listed) | (self.listed <= self.dates[t])

    def delisted_by(self, t: int) -> np.ndarray:
        """(n,) bool: delisted on or before ``dates[t]`` (excluded from that day on)."""
        return ~np.isnat(self.delisted) & (self.delisted <= self.dates[t])

    def trading(self, t0: int, t1: int) -> np.ndarray:
        """(t1 − t0 + 1, n) bool: the name trades on the day (listed ≤ day ≤ delisted): it has a close."""
        return self.trading_on(self.dates[t0 : t1 + 1, None])

    def trading_on(self, day: np.ndarray) -> np.ndarray:
        """(n,) bool of the names trading on ``day`` (datetime64[D]; a (k, 1) column: (k, n))."""
        return (np.isnat(self.listed) | (self.listed <= day)) & (np.isnat(self.delisted) | (day <= self.delisted))

    def require_closes(self, t0: int, t1: int, why: str) -> None:
        """Every name trading on a day of ``t0..t1`` has its close there, else ``InputError``
        naming the first symbol and date without one and ``why`` they are needed."""
        missing = self.trading(t0, t1) & np.isnan(self.prices[t0 : t1 + 1])
        if missing.any():
            t, i = np.argwhere(missing)[0]
            raise InputError("close", f"no close for {self.symbols[i]} on {self.dates[t0 + t]}: {why}")

    def day_index(self, date: dt.date | str) -> int:
        """Index of ``date`` (must be a trading day of the market)."""
        if isinstance(date, (dt.date, np.datetime64)):
            d = np.datetime64(date, "D")
        else:
            try:
                d = np.datetime64(dt.date.fromisoformat(str(date).strip()), "D")
            except ValueError:
                raise InputError("date", f"{date!r} is not an ISO date (YYYY-MM-DD)") from None
        t = int(np.searchsorted(self.dates, d))
        if t >= len(self.dates) or self.dates[t] != d:
            first, last = self.dates[0], self.dates[-1]
            raise InputError("date", f"{date} is not a trading day of this market ({first}..{last})")
        return t

    def benchmark_weights(self, t: int) -> np.ndarray:
        """(n,) cap weights of the names trading on ``dates[t]``; 0 for the others."""
        cap = self.prices[t] * self.shares_outstanding
        if self.changed:
            cap = np.where(self.listed_by(t) & ~self.delisted_by(t), cap, 0.0)
        return cap / cap.sum()

    def returns(self, t_end: int, window: int) -> np.ndarray:
        """Simple daily returns of the ``window`` days ending at ``t_end`` (inclusive): no look-ahead."""
        t0 = max(1, t_end - window + 1)
        p = self.prices[t0 - 1 : t_end + 1]
        return p[1:] / p[:-1] - 1.0


def _readonly_days(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype="datetime64[D]")
    a.flags.writeable = False
    return a


def _bounded(prices: np.ndarray, dates: np.ndarray, listed: np.ndarray, delisted: np.ndarray) -> np.ndarray:
    """``prices`` with NaN before each name's listing and its last close after its delisting."""
    out = np.array(prices, dtype=np.float64)
    for i in np.flatnonzero(~np.isnat(listed)):
        out[: np.searchsorted(dates, listed[i]), i] = np.nan
    for i in np.flatnonzero(~np.isnat(delisted)):
        last = int(np.searchsorted(dates, delisted[i], side="right"))  # days after the last one
        if 0 < last < len(dates):
            out[last:, i] = out[last - 1, i]
    return out


MARKET_DRIFT = 0.07  # the market factor's drift, per year
RETURN_BOUNDS = (-0.6, 1.5)  # a day's simple return is clipped to this range


def _t_shocks(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Student-t (4 dof) shocks scaled to unit variance (the variance of t(4) is 2): fat tails."""
    return rng.standard_t(4, size=shape) / np.sqrt(2.0)


def _shocks(
    rng: np.random.Generator, days: int, f_vol: np.ndarray, spec_vol: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Factor returns (days, K), with the market's drift, and specific returns (days, n)."""
    f_ret = _t_shocks(rng, (days, len(f_vol))) * f_vol
    f_ret[:, 0] += MARKET_DRIFT / TRADING_DAYS
    return f_ret, _t_shocks(rng, (days, len(spec_vol))) * spec_vol


def _closes(previous: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """Closes in whole cents, never below one cent."""
    return np.maximum(np.round(previous * (1.0 + returns), 2), 0.01)


@dataclass(frozen=True, slots=True)
class SynthProcess:
    """The return process of a synthetic market, in daily units: r = f Bᵀ + ε + drift, clipped,
    with f and ε Student-t shocks of volatility ``f_vol`` and ``spec_vol``."""

    B: np.ndarray  # (n, K) loadings: market, sectors, styles
    f_vol: np.ndarray  # (K,) daily factor volatility
    spec_vol: np.ndarray  # (n,) daily specific volatility
    drift: np.ndarray  # (n,) daily drift of each name beyond the market's

    def combine(self, f_ret: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """Daily returns from factor returns (T, K) and specific returns (T, n)."""
        return np.clip(f_ret @ self.B.T + eps + self.drift, *RETURN_BOUNDS)

    def continue_from(self, close: np.ndarray, dates: np.ndarray, seed: int) -> np.ndarray:
        """Closes (len(dates), n) after the closes ``close``, one day at a time: day ``d``'s shocks
        come from its own stream (``seed``, the stream tag, ``d``), so the path depends only on the
        seed, the dates and the closes before them (extending by 5 then 5 is extending by 10)."""
        out = np.empty((len(dates), len(close)))
        for k, d in enumerate(dates.astype("datetime64[D]").astype("int64")):
            rng = np.random.default_rng([seed, _CONTINUATION_STREAM, int(d)])
            close = out[k] = _closes(close, self.combine(*_shocks(rng, 1, self.f_vol, self.spec_vol))[0])
        return out


_CONTINUATION_STREAM = 0x7E57  # keeps the continuation's streams apart from synthesize's own


def _symbols(names: int) -> tuple[str, ...]:
    width = max(3, len(str(names - 1)))
    return tuple(f"S{i:0{width}d}" for i in range(names))


def _draw(
    names: int, days: int, factors: int, seed: int
) -> tuple[np.random.Generator, np.ndarray, SynthProcess, tuple[np.ndarray, np.ndarray]]:
    """synthesize's random stream up to its process: (rng, sector index, process, factor and
    specific returns of the days after the first). The order of the draws is the market's."""
    if names < 2 or days < 2 or factors < 1:
        raise InputError("names/days/factors", "need names >= 2, days >= 2, factors >= 1")
    rng = np.random.default_rng(seed)
    n_sec = min(len(SECTORS), max(factors - 1, 0))
    sector_idx = rng.integers(0, len(SECTORS), size=names)
    n_style = factors - 1 - n_sec

    B = np.zeros((names, factors))
    B[:, 0] = rng.normal(1.0, 0.25, names)
    if n_sec:
        B[np.arange(names), 1 + sector_idx % n_sec] = rng.normal(1.0, 0.2, names)
    if n_style > 0:
        B[:, 1 + n_sec :] = rng.normal(0.0, 1.0, (names, n_style))
    f_vol = np.concatenate([[0.16], np.full(n_sec, 0.09), np.full(max(n_style, 0), 0.04)])
    f_vol = f_vol[:factors] / np.sqrt(TRADING_DAYS)
    spec_vol = rng.uniform(0.20, 0.35, names) / np.sqrt(TRADING_DAYS)
    shocks = _shocks(rng, days - 1, f_vol, spec_vol)
    process = SynthProcess(B, f_vol, spec_vol, rng.normal(0.02, 0.03, names) / TRADING_DAYS)
    return rng, sector_idx, process, shocks


def _finish(rng: np.random.Generator, sector_idx: np.ndarray, rets: np.ndarray, start: str) -> Market:
    """The market of daily returns ``rets`` (T − 1, n) after first closes drawn here, with caps."""
    names = len(sector_idx)
    p0 = np.exp(rng.normal(np.log(80.0), 0.8, names))
    prices = np.vstack([p0, p0 * np.cumprod(1.0 + rets, axis=0)])
    prices = np.maximum(np.round(prices, 2), 0.01)
    caps = np.exp(rng.normal(np.log(2e10), 1.2, names))
    shares_out = np.round(caps / p0)

    dates = np.busday_offset(np.datetime64(start, "D"), np.arange(len(prices)), roll="forward")
    return Market(
        symbols=_symbols(names),
        sectors=tuple(SECTORS[k] for k in sector_idx),
        shares_outstanding=_readonly(shares_out),
        dates=dates,
        prices=_readonly(prices),
    )


def synthesize(
    names: int = 500,
    days: int = 2520,
    factors: int = 20,
    seed: int = 7,
    start: str = "2015-01-02",
) -> Market:
    """A deterministic fat-tailed factor-model market (domain.md §7).

    Factors: market (16%/yr), sectors (~9%/yr each), styles (~4%/yr); specific risk 20–35%/yr;
    Student-t (4 dof) shocks scaled to unit variance; caps log-normal (a few giants, a long tail).
    """
    check_recipe(names, days, factors, seed, start)
    rng, sector_idx, process, shocks = _draw(names, days, factors, seed)
    return _finish(rng, sector_idx, process.combine(*shocks), start)


MAX_CELLS = 5 * 10**7  # names × days of a synthetic market (each array of them 400 MB)


def check_recipe(names: int, days: int, factors: int, seed: int, start: str) -> None:
    """A synthetic market's recipe, refused naming the field (``InputError``) before anything is drawn."""
    for field, v in (("names", names), ("days", days), ("factors", factors), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InputError(field, f"{field} must be a whole number, got {v!r}")
    if names < 2 or days < 2 or factors < 1:
        raise InputError("names/days/factors", "need names >= 2, days >= 2, factors >= 1")
    if names * days > MAX_CELLS:
        raise InputError("names/days", f"names × days must be at most {MAX_CELLS:,}, got {names:,} × {days:,}")
    if seed < 0:
        raise InputError("seed", f"seed must be >= 0, got {seed}")
    try:
        first = dt.date.fromisoformat(str(start))
    except ValueError:
        raise InputError("start", f"start must be an ISO date (YYYY-MM-DD), got {start!r}") from None
    last = np.busday_offset(np.datetime64(first, "D"), days - 1, roll="forward")
    if last > np.datetime64(dt.date.max, "D"):
        raise InputError("start", f"{days} business days from {first} run past 9999-12-31")


def synthetic_process(names: int, days: int, factors: int, seed: int, start: str) -> tuple[SynthProcess, Market]:
    """The process ``synthesize`` drew a market's returns from, and that market's first day
    (universe, date, closes) to check a directory against: its random stream replayed."""
    check_recipe(names, days, factors, seed, start)
    rng, sector_idx, process, _ = _draw(names, days, factors, seed)
    return process, _finish(rng, sector_idx, np.empty((0, names)), start)


def write_market(market: Market, out: Path | str) -> Path:
    """The market as a directory (README "Data formats"); ``listed``/``delisted`` columns only when
    its universe changed, price rows only for the days a name trades."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    columns = {
        "symbol": pa.array(market.symbols, pa.string()),
        "sector": pa.array(market.sectors, pa.string()),
        "shares_outstanding": pa.array(market.shares_outstanding, pa.float64()),
    }
    if market.changed:
        columns |= {name: _date_column(getattr(market, name)) for name in ("listed", "delisted")}
    pq.write_table(pa.table(columns), out / "universe.parquet")
    T, n = market.prices.shape
    keep = (market.trading(0, T - 1) & ~np.isnan(market.prices)).reshape(-1)
    prices = pa.table(
        {
            "date": pa.array(np.repeat(market.dates, n)[keep], pa.date32()),
            "symbol": pa.DictionaryArray.from_arrays(
                pa.array(np.tile(np.arange(n, dtype=np.int32), T)[keep]), pa.array(market.symbols)
            ),
            "close": pa.array(market.prices.reshape(-1)[keep], pa.float64()),
        }
    )
    pq.write_table(prices, out / "prices.parquet")
    return out


def _date_column(days: np.ndarray) -> pa.Array:
    """(n,) datetime64[D] as date32, NaT as null."""
    return pa.array([None if np.isnat(d) else d.item() for d in days], pa.date32())


def _require(table: pa.Table, path: Path, columns: tuple[str, ...], nullable: tuple[str, ...] = ()) -> None:
    for name in columns:
        if name not in table.column_names:
            raise InputError(name, f"{path} has no column {name!r} (columns: {table.column_names})")
        if table.column(name).null_count and name not in nullable:
            raise InputError(name, f"{path} has {table.column(name).null_count} null {name!r} values")


def read_market(path: Path | str) -> Market:
    """Load a market directory. A close that is absent, NaN or not > 0 is missing (NaN): refused
    only where a snapshot needs it (``Market.require_closes``). Closes of a name before its
    listing date or after its delisting date are not read."""
    path = Path(path)
    for f in ("universe.parquet", "prices.parquet"):
        if not (path / f).is_file():
            raise InputError("market", f"{path / f} not found (expected a market directory)")
    try:
        uni = pq.read_table(path / "universe.parquet")
        px = pq.read_table(path / "prices.parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError("market", f"cannot read Parquet under {path}: {exc}") from exc
    _require(uni, path / "universe.parquet", ("symbol", "sector", "shares_outstanding"))
    _require(px, path / "prices.parquet", ("date", "symbol", "close"), nullable=("close",))  # null: missing
    symbols = tuple(str(s) for s in uni.column("symbol").to_pylist())
    pos = {s: i for i, s in enumerate(symbols)}
    sym = pc.cast(px.column("symbol"), pa.string()).to_pylist()
    unknown = set(sym) - pos.keys()
    if unknown:
        raise InputError("symbol", f"prices.parquet has symbols not in the universe: {sorted(unknown)[:5]}")
    dates_all = px.column("date").cast(pa.date32()).to_numpy().astype("datetime64[D]")
    dates = np.unique(dates_all)
    t_idx = np.searchsorted(dates, dates_all)
    i_idx = np.fromiter((pos[s] for s in sym), dtype=np.int64, count=len(sym))
    prices = np.full((len(dates), len(symbols)), np.nan)
    close = px.column("close").to_numpy(zero_copy_only=False).astype(np.float64)
    prices[t_idx, i_idx] = np.where(np.isfinite(close) & (close > 0), close, np.nan)
    so = uni.column("shares_outstanding").to_numpy().astype(np.float64)
    if not np.all(np.isfinite(so)) or np.any(so <= 0):
        raise InputError("shares_outstanding", "must be finite and > 0 for every symbol")
    return Market(
        symbols=symbols,
        sectors=tuple(str(s) for s in uni.column("sector").to_pylist()),
        shares_outstanding=_readonly(so),
        dates=dates,
        prices=_readonly(prices),
        listed=_universe_days(uni, path, "listed"),
        delisted=_universe_days(uni, path, "delisted"),
    )


def _universe_days(uni: pa.Table, path: Path, name: str) -> np.ndarray | None:
    """universe.parquet's optional ``listed``/``delisted`` column as datetime64[D] (null: NaT)."""
    if name not in uni.column_names:
        return None
    try:
        column = pc.cast(uni.column(name), pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(name, f"{path / 'universe.parquet'}: {name} must be dates: {exc}") from None
    return column.to_numpy().astype("datetime64[D]")
