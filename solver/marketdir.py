"""New days for a market directory: closes appended from a file, or a synthetic market continued.

Only ``prices.parquet`` changes: it is rewritten under a temporary name in the directory and
renamed over the old file when complete (a crash leaves the old market readable), under a lock on
the directory (one update at a time). ``universe.parquet`` (shares outstanding are per symbol, so
new days are cap weighted with the same counts), ``riskmodel/`` and ``synthetic.json`` are left
as they are. ``synthetic.json`` is written by ``market synth``: how the market was made, so it can
be continued with the same process.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from taxview.core.csvfile import csv_rows
from taxview.core.errors import InputError, TaxviewError

from .market import Market, _readonly, read_market, synthesize, synthetic_process, write_market

CLOSES_COLUMNS = ("date", "symbol", "close")
SYNTHETIC = "synthetic.json"
GENERATOR = "taxview.synthesize"
_RECIPE = {"names": int, "days": int, "factors": int, "seed": int, "start": str}

NewDays = tuple[np.ndarray, np.ndarray]  # dates (k,) datetime64[D], closes (k, n) dollars


def write_synthetic(out: Path | str, names: int, days: int, factors: int, seed: int, start: str) -> Market:
    """``synthesize`` written as a market directory, with ``synthetic.json`` saying how it was made."""
    market = synthesize(names=names, days=days, factors=factors, seed=seed, start=start)
    out = write_market(market, out)
    recipe = {"names": names, "days": days, "factors": factors, "seed": seed, "start": start}
    text = json.dumps({"generator": GENERATOR, "version": 1, **recipe}, indent=1) + "\n"
    _replace(out / SYNTHETIC, lambda tmp: tmp.write_text(text))
    return market


def append_closes(market_dir: Path | str, closes: Path | str) -> tuple[Market, Market]:
    """Add the days of a closes file (``date, symbol, close``; CSV or Parquet) to a market
    directory; the market before and after. Any bad row raises and writes nothing."""
    return _update(Path(market_dir), lambda market: read_closes(closes, market))


def extend_synthetic(market_dir: Path | str, days: int) -> tuple[Market, Market]:
    """Continue a synthetic market ``days`` business days past its last date with the process
    ``synthetic.json`` records (the same loadings, volatilities, drifts and Student-t shocks)."""
    path = Path(market_dir)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InputError("days", f"--days must be a whole number of days >= 1, got {days!r}")
    recipe = read_recipe(path)
    process, first = synthetic_process(**recipe)

    def new_days(market: Market) -> NewDays:
        _check_origin(path, market, first)
        dates = np.busday_offset(market.dates[-1], np.arange(1, days + 1), roll="backward")
        return dates, process.continue_from(market.prices[-1], dates, recipe["seed"])

    return _update(path, new_days)


def read_recipe(market_dir: Path) -> dict:
    """``synthetic.json``'s arguments of ``synthesize``; a directory without one is not synthetic."""
    path = market_dir / SYNTHETIC
    if not path.is_file():
        raise InputError(
            "market",
            f"{market_dir} is not a synthetic market (no {SYNTHETIC}; `taxview market synth` writes one): "
            "it cannot be continued; add real closes with `taxview market append`",
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(SYNTHETIC, f"cannot read {path}: {exc}") from exc
    if not isinstance(record, dict) or record.get("generator") != GENERATOR or record.get("version") != 1:
        raise InputError(SYNTHETIC, f"{path}: not a record of {GENERATOR} version 1")
    for key, kind in _RECIPE.items():
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            raise InputError(f"{SYNTHETIC}.{key}", f"{path}: {key} must be {kind.__name__}, got {record.get(key)!r}")
    return {key: record[key] for key in _RECIPE}


def _check_origin(market_dir: Path, market: Market, first: Market) -> None:
    """Refuse to continue a directory whose first day is not the one its record makes."""
    checks = {
        "symbols": market.symbols == first.symbols,
        "sectors": market.sectors == first.sectors,
        "shares outstanding": np.array_equal(market.shares_outstanding, first.shares_outstanding),
        "first date": market.dates[0] == first.dates[0],
        "first closes": np.array_equal(market.prices[0], first.prices[0]),
    }
    differ = [what for what, same in checks.items() if not same]
    if differ:
        raise InputError(
            SYNTHETIC,
            f"{market_dir}: the market is not the one {SYNTHETIC} describes (its {', '.join(differ)} differ): "
            "it cannot be continued",
        )


def read_closes(path: Path | str, market: Market) -> NewDays:
    """The new days of a closes file, checked against ``market``: every universe symbol on every
    date, closes finite and > 0, dates after the market's last and in order, no (date, symbol)
    twice, no symbol outside the universe. Errors name the field and the row (or symbol and date)."""
    path = Path(path)
    pos = {s: i for i, s in enumerate(market.symbols)}
    last = dt.date.fromisoformat(str(market.dates[-1]))
    dates: list[dt.date] = []
    closes: list[list[float]] = []  # per new date, aligned to the universe
    rows: list[list[int]] = []  # per new date, the row each close came from (0: none yet)
    raw, date = object(), last
    for row_no, d, symbol, c in _closes_rows(path):
        where = f"{path} row {row_no}"
        if d != raw:  # rows come grouped by date: parse each date once
            raw, date = d, _date(d, where)
        if not isinstance(symbol, str) or symbol not in pos:
            raise InputError("symbol", f"{where}: symbol {symbol!r} is not in the market's universe")
        close = _close(c, f"{where}: close {c!r} of {symbol} on {date}")
        if date <= last:
            raise InputError("date", f"{where}: date {date} is not after the market's last date {last}")
        if not dates or date > dates[-1]:
            dates.append(date)
            closes.append([math.nan] * market.n)
            rows.append([0] * market.n)
        elif date < dates[-1]:
            raise InputError("date", f"{where}: date {date} comes after {dates[-1]}: rows must be in date order")
        i = pos[symbol]
        if rows[-1][i]:
            raise InputError("symbol", f"{where}: {symbol} on {date} is also on row {rows[-1][i]}")
        rows[-1][i], closes[-1][i] = row_no, close
    if not dates:
        raise InputError("prices", f"{path} has no rows")
    for date, given in zip(dates, rows):
        missing = [market.symbols[i] for i, row_no in enumerate(given) if not row_no]
        if missing:
            more = f" (and {len(missing) - 1} more symbols)" if len(missing) > 1 else ""
            raise InputError(
                "symbol",
                f"{path}: no close for {missing[0]} on {date}{more}; every symbol of the universe needs a close "
                "on every new date",
            )
    return np.array(dates, dtype="datetime64[D]"), np.array(closes, dtype=np.float64)


def _closes_rows(path: Path) -> Iterator[tuple[int, object, object, object]]:
    """(row, date, symbol, close) of a CSV file (rows are file lines, the header is row 1) or a
    Parquet file (data rows from 1); exactly the columns ``date, symbol, close``."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        for row_no, row in csv_rows(path, CLOSES_COLUMNS, "prices", optional=()):
            yield row_no, row["date"], row["symbol"], row["close"]
        return
    if suffix != ".parquet":
        raise InputError("prices", f"{path}: expected a .csv or .parquet file of date, symbol, close")
    if not path.is_file():
        raise InputError("prices", f"{path} not found")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError("prices", f"cannot read {path} as Parquet: {exc}") from exc
    missing = [c for c in CLOSES_COLUMNS if c not in table.column_names]
    unknown = [c for c in table.column_names if c not in CLOSES_COLUMNS]
    if missing or unknown:
        bad = (missing or unknown)[0]
        raise InputError(bad, f"{path}: columns {table.column_names}; need exactly {list(CLOSES_COLUMNS)}")
    symbol = table.column("symbol")
    if pa.types.is_dictionary(symbol.type):
        symbol = pc.cast(symbol, symbol.type.value_type)
    columns = (table.column("date").to_pylist(), symbol.to_pylist(), table.column("close").to_pylist())
    for row_no, (d, s, c) in enumerate(zip(*columns), start=1):
        yield row_no, d, s, c


def _date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.datetime) and value.time() == dt.time(0) and value.tzinfo is None:
        value = value.date()
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        with suppress(ValueError):  # 2025-02-30 is refused, not rolled over
            value = dt.date.fromisoformat(value)
    if type(value) is not dt.date:
        raise InputError("date", f"{where}: date {value!r} is not a date (YYYY-MM-DD)")
    return value


def _close(value: object, what: str) -> float:
    """A close in dollars: a finite number > 0 (text or a number)."""
    x = math.nan
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        x = float(value)
    elif isinstance(value, str):
        with suppress(ValueError):
            x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise InputError("close", f"{what} must be a finite price > 0 (dollars)")
    return x


def _update(market_dir: Path, new_days: Callable[[Market], NewDays]) -> tuple[Market, Market]:
    """Append the days ``new_days`` makes from the directory's market to its prices.parquet, in
    the file's own schema (other columns empty on the new rows); the market before and after."""
    with _locked(market_dir):
        before = read_market(market_dir)
        dates, closes = new_days(before)
        after = Market(  # checks the whole market again: dates increasing, closes finite and > 0
            symbols=before.symbols,
            sectors=before.sectors,
            shares_outstanding=before.shares_outstanding,
            dates=np.concatenate([before.dates, dates]),
            prices=_readonly(np.vstack([before.prices, closes])),
        )
        old = pq.read_table(market_dir / "prices.parquet")
        k, n = closes.shape
        values = {
            "date": pa.array(np.repeat(dates, n), pa.date32()),
            "symbol": pa.array(list(before.symbols) * k, pa.string()),
            "close": pa.array(closes.reshape(-1), pa.float64()),
        }
        new = pa.Table.from_arrays(
            [pc.cast(values[f.name], f.type) if f.name in values else pa.nulls(k * n, f.type) for f in old.schema],
            schema=old.schema,
        )
        for stale in market_dir.glob(".prices.parquet.*.partial"):  # left by a killed update (we hold the lock)
            with suppress(OSError):
                stale.unlink()
        table = pa.concat_tables([old, new])
        _replace(market_dir / "prices.parquet", lambda tmp: pq.write_table(table, tmp))
    return before, after


@contextmanager
def _locked(market_dir: Path) -> Iterator[None]:
    """An exclusive lock on the directory itself (nothing written to take it): one update at a time."""
    if not market_dir.is_dir():
        raise InputError("market", f"{market_dir} is not a directory (expected a market directory)")
    fd = os.open(market_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TaxviewError(f"{market_dir}: another taxview market command is updating it; try later") from None
        yield
    finally:
        os.close(fd)


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` under a temporary name beside it, flush it to disk, then rename it over
    ``path``: readers see the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
