"""Updates of a market directory: new days (closes appended from a file, or a synthetic market
continued) and universe updates (names listed and delisted).

A new day changes only ``prices.parquet``, a universe update only ``universe.parquet``: the file
is rewritten under a temporary name in the directory and renamed over the old one when complete
(a crash leaves the old market readable), under a lock on the directory (one update at a time),
after the whole input was checked. Shares outstanding are per symbol, so new days are cap
weighted with the same counts; ``riskmodel/`` and ``synthetic.json`` are left as they are.
``synthetic.json`` is written by ``market synth``: how the market was made, so it can be
continued with the same process.

A universe update changes no day the market has: a name is listed from a date after its last
day (its closes start there: ``market append`` asks for them from then on), and delisted on its
last trading day, the market's last day or later (``market append`` asks for no close after it).
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
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from taxview.core.csvfile import csv_rows
from taxview.core.errors import InputError, TaxviewError
from taxview.core.mandate import SECTORS

from .market import (
    NOT_A_DATE,
    Market,
    _date_column,
    _readonly,
    read_market,
    synthesize,
    synthetic_process,
    write_market,
)
from .styles import STYLES_FILE, of_synthetic, write_styles

CLOSES_COLUMNS = ("date", "symbol", "close")
UNIVERSE_COLUMNS = ("symbol", "action", "date")
UNIVERSE_OPTIONAL = ("sector", "shares_outstanding")
# the ledger's symbol rule (ledger/keys.py SYMBOL_PATTERN; the solver does not import the ledger):
# a listed name the ledger would refuse could never be bought
SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/^-]{0,23}")
SYNTHETIC = "synthetic.json"
GENERATOR = "taxview.synthesize"
_RECIPE = {"names": int, "days": int, "factors": int, "seed": int, "start": str}

NewDays = tuple[np.ndarray, np.ndarray]  # dates (k,) datetime64[D], closes (k, n) dollars


def write_synthetic(out: Path | str, names: int, days: int, factors: int, seed: int, start: str) -> Market:
    """``synthesize`` written as a market directory, with ``synthetic.json`` saying how it was made
    and ``styles.parquet`` (``solver.styles.synthetic_styles``: scores that move with its factors)."""
    market = synthesize(names=names, days=days, factors=factors, seed=seed, start=start)
    out = write_market(market, out)
    styles = of_synthetic(market, names, days, factors, seed, start)
    _replace(out / STYLES_FILE, lambda tmp: write_styles(styles, market.symbols, tmp))
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
        listed = [s for s, d in zip(market.symbols, market.listed) if not np.isnat(d)]
        if listed:
            raise InputError(
                "market",
                f"{path}: {listed[0]} was listed by `market universe`: the synthetic process has no returns for it; "
                "add closes with `taxview market append`",
            )
        _check_origin(path, market, first)
        dates = np.busday_offset(market.dates[-1], np.arange(1, days + 1), roll="backward")
        return dates, process.continue_from(market.prices[-1], dates, recipe["seed"])

    return _update(path, new_days)


@dataclass(frozen=True, slots=True)
class UniverseChange:
    """One row of a universe update: a name listed (``add``, from ``date``) or delisted
    (``delist``, ``date`` its last trading day); ``row`` where the file has it."""

    row: int
    symbol: str
    action: str  # add | delist
    date: dt.date
    sector: str | None = None  # add only
    shares_outstanding: float | None = None  # add only


def update_universe(market_dir: Path | str, changes: Path | str) -> tuple[Market, Market, list[UniverseChange]]:
    """List and delist names of a market directory from a universe file (``symbol, action, date``
    and, for ``add``, ``sector, shares_outstanding``; CSV or Parquet); the market before and
    after, and the changes. Every row is checked first: any bad one raises and writes nothing."""
    path = Path(market_dir)
    with _locked(path):
        before = read_market(path)
        rows = read_universe_changes(changes, before)
        after = _listed_and_delisted(before, rows, Path(changes))
        _check_riskmodel(path, [x for x in rows if x.action == "add"], Path(changes))
        table = _universe_table(path / "universe.parquet", before, after)
        _write(path / "universe.parquet", lambda tmp: pq.write_table(table, tmp))
    return before, after, rows


def read_universe_changes(path: Path | str, market: Market) -> list[UniverseChange]:
    """The rows of a universe file, each checked against ``market`` and the rows before it: a
    valid symbol, ``add`` or ``delist``, a date (YYYY-MM-DD); an added name is new, listed after
    the market's last day, with a GICS sector and shares outstanding > 0; a delisted name is in
    the universe (or added above), not delisted yet, on or after the market's last day and its
    listing. Errors name the field and the row."""
    path = Path(path)
    last = dt.date.fromisoformat(str(market.dates[-1]))
    listed = {s: (None if np.isnat(d) else d.item()) for s, d in zip(market.symbols, market.listed)}
    delisted = {s: d.item() for s, d in zip(market.symbols, market.delisted) if not np.isnat(d)}
    seen: dict[tuple[str, str], int] = {}
    out: list[UniverseChange] = []
    for row_no, row in _file_rows(path, UNIVERSE_COLUMNS, UNIVERSE_OPTIONAL, "universe"):
        where = f"{path} row {row_no}"
        symbol, action = row["symbol"], row["action"]
        if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
            raise InputError(
                "symbol",
                f"{where}: symbol {symbol!r} is not a valid symbol: letters, digits and . _ - / ^ (starting with a "
                "letter or digit, at most 24 characters)",
            )
        if action not in ("add", "delist"):
            raise InputError("action", f"{where}: action {action!r} of {symbol} is not add or delist")
        if (symbol, action) in seen:
            raise InputError("symbol", f"{where}: {symbol} is also {action}ed on row {seen[symbol, action]}")
        seen[symbol, action] = row_no
        date = _date(row["date"], where)
        sector, shares = row.get("sector"), row.get("shares_outstanding")
        if action == "add":
            if symbol in listed:
                since = "the market's start" if listed[symbol] is None else listed[symbol]
                raise InputError("symbol", f"{where}: {symbol} is already in the universe (listed from {since})")
            if date <= last:
                raise InputError(
                    "date",
                    f"{where}: {symbol} is listed on {date}, not after the market's last date {last}: a universe "
                    "update changes no day the market has",
                )
            if sector not in SECTORS:
                raise InputError(
                    "sector", f"{where}: sector {sector!r} of {symbol} is not a GICS sector: {', '.join(SECTORS)}"
                )
            count = _shares(shares, f"{where}: shares_outstanding {shares!r} of {symbol}")
            listed[symbol] = date
            out.append(UniverseChange(row_no, symbol, action, date, sector, count))
            continue
        for name, value in (("sector", sector), ("shares_outstanding", shares)):
            if value not in (None, ""):
                raise InputError(name, f"{where}: a delist row has no {name} (got {value!r} for {symbol})")
        if symbol not in listed:
            raise InputError("symbol", f"{where}: {symbol} is not in the market's universe")
        if symbol in delisted:
            raise InputError("symbol", f"{where}: {symbol} is already delisted (its last day {delisted[symbol]})")
        if date < last:
            raise InputError(
                "date",
                f"{where}: {symbol} is delisted on {date}, before the market's last date {last}: a universe update "
                f"changes no day the market has (delist it on {last}, its last close, or later)",
            )
        if listed[symbol] is not None and date < listed[symbol]:
            raise InputError("date", f"{where}: {symbol} is delisted on {date}, before its listing on {listed[symbol]}")
        delisted[symbol] = date
        out.append(UniverseChange(row_no, symbol, action, date))
    if not out:
        raise InputError("universe", f"{path} has no rows")
    return out


def _listed_and_delisted(before: Market, rows: list[UniverseChange], path: Path) -> Market:
    """The market with the changes made: added names at the end (no closes yet)."""
    added = [x for x in rows if x.action == "add"]
    gone = {x.symbol: np.datetime64(x.date, "D") for x in rows if x.action == "delist"}
    symbols = before.symbols + tuple(x.symbol for x in added)
    listed = np.concatenate([before.listed, np.array([x.date for x in added], dtype="datetime64[D]")])
    delisted = np.array([gone.get(s, NOT_A_DATE) for s in symbols], dtype="datetime64[D]")
    delisted[: before.n] = np.where(np.isnat(delisted[: before.n]), before.delisted, delisted[: before.n])
    if np.isnat(delisted).sum() == 0:
        raise InputError("universe", f"{path}: every name of the market would be delisted; one at least must trade")
    return Market(
        symbols=symbols,
        sectors=before.sectors + tuple(str(x.sector) for x in added),
        shares_outstanding=_readonly(
            np.concatenate([before.shares_outstanding, [float(x.shares_outstanding or 0) for x in added]])
        ),
        dates=before.dates,
        prices=_readonly(np.hstack([before.prices, np.full((len(before.dates), len(added)), np.nan)])),
        listed=listed,
        delisted=delisted,
    )


def _check_riskmodel(market_dir: Path, added: list[UniverseChange], path: Path) -> None:
    """A vendor model (``riskmodel/``) must cover every name listed: loadings and specific variance."""
    rm = market_dir / "riskmodel"
    if not added or not rm.is_dir():
        return
    covered = None
    for f in ("loadings.parquet", "specific.parquet"):
        try:
            symbols = set(pq.read_table(rm / f, columns=["symbol"]).column("symbol").to_pylist())
        except (pa.ArrowInvalid, OSError, KeyError) as exc:
            raise InputError("riskmodel", f"cannot read the symbols of {rm / f}: {exc}") from None
        covered = symbols if covered is None else covered & symbols
    for x in added:
        if x.symbol not in covered:
            raise InputError(
                "riskmodel",
                f"{path} row {x.row}: {rm} does not cover {x.symbol}: add its loadings and specific variance to the "
                "vendor's files first (or remove riskmodel/ and the risk model is estimated from the closes)",
            )


def _universe_table(path: Path, before: Market, after: Market) -> pa.Table:
    """universe.parquet with the added names' rows (columns taxview does not read left empty) and
    the ``listed``/``delisted`` columns, in the file's own schema."""
    old = pq.read_table(path)
    k = after.n - before.n
    new_values = {
        "symbol": pa.array(after.symbols[before.n :], pa.string()),
        "sector": pa.array(after.sectors[before.n :], pa.string()),
        "shares_outstanding": pa.array(after.shares_outstanding[before.n :], pa.float64()),
    }
    columns, fields = [], []
    for f in old.schema:
        if f.name in ("listed", "delisted"):
            continue
        try:
            extra = pc.cast(new_values[f.name], f.type) if f.name in new_values else pa.nulls(k, f.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f.name, f"{path}: the new rows do not fit its {f.name} column ({f.type}): {exc}") from None
        columns.append(pa.concat_arrays([*old.column(f.name).chunks, extra]) if old.num_rows or k else extra)
        fields.append(f)
    for name in ("listed", "delisted"):
        columns.append(_date_column(getattr(after, name)))
        fields.append(pa.field(name, pa.date32()))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=old.schema.metadata))


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
        "first closes": np.array_equal(market.prices[0], first.prices[0], equal_nan=True),
    }
    differ = [what for what, same in checks.items() if not same]
    if differ:
        raise InputError(
            SYNTHETIC,
            f"{market_dir}: the market is not the one {SYNTHETIC} describes (its {', '.join(differ)} differ): "
            "it cannot be continued",
        )


def read_closes(path: Path | str, market: Market) -> NewDays:
    """The new days of a closes file, checked against ``market``: every name trading on a date
    (listed by then, not delisted before) has a close on it and no other name has one, closes
    finite and > 0, dates after the market's last and in order, no (date, symbol) twice, no
    symbol outside the universe. Errors name the field and the row (or symbol and date). The
    closes of names not trading on a date are NaN."""
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
        _check_trading(market, i, date, where)
        rows[-1][i], closes[-1][i] = row_no, close
    if not dates:
        raise InputError("prices", f"{path} has no rows")
    for date, given in zip(dates, rows):
        trading = market.trading_on(np.datetime64(date, "D"))
        missing = [market.symbols[i] for i, row_no in enumerate(given) if not row_no and trading[i]]
        if missing:
            more = f" (and {len(missing) - 1} more symbols)" if len(missing) > 1 else ""
            raise InputError(
                "symbol",
                f"{path}: no close for {missing[0]} on {date}{more}; every name trading on a new date needs a "
                "close on it (all of the universe but the names listed later or delisted before)",
            )
    return np.array(dates, dtype="datetime64[D]"), np.array(closes, dtype=np.float64)


def _check_trading(market: Market, i: int, date: dt.date, where: str) -> None:
    listed, delisted, symbol = market.listed[i], market.delisted[i], market.symbols[i]
    d = np.datetime64(date, "D")
    if not np.isnat(listed) and d < listed:
        raise InputError("date", f"{where}: {symbol} is listed from {listed}: it has no close on {date}")
    if not np.isnat(delisted) and d > delisted:
        raise InputError(
            "date", f"{where}: {symbol} was delisted on {delisted} (its last day): it has no close on {date}"
        )


def _closes_rows(path: Path) -> Iterator[tuple[int, object, object, object]]:
    """(row, date, symbol, close) of a closes file (``_file_rows``)."""
    for row_no, row in _file_rows(path, CLOSES_COLUMNS, (), "prices"):
        yield row_no, row["date"], row["symbol"], row["close"]


def _file_rows(
    path: Path, columns: tuple[str, ...], optional: tuple[str, ...], what: str
) -> Iterator[tuple[int, dict[str, object]]]:
    """(row, values by column) of a CSV file (rows are file lines, the header is row 1; text
    values) or a Parquet file (data rows from 1; its own types, null as None): the ``columns``,
    any of the ``optional`` ones, no other."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from csv_rows(path, columns, what, optional=optional)
        return
    if suffix != ".parquet":
        raise InputError(what, f"{path}: expected a .csv or .parquet file of {', '.join(columns)}")
    if not path.is_file():
        raise InputError(what, f"{path} not found")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(what, f"cannot read {path} as Parquet: {exc}") from exc
    missing = [c for c in columns if c not in table.column_names]
    unknown = [c for c in table.column_names if c not in (*columns, *optional)]
    if missing or unknown:
        bad = (missing or unknown)[0]
        known = f"need exactly {list(columns)}" if not optional else f"need {list(columns)}, may have {list(optional)}"
        raise InputError(bad, f"{path}: columns {table.column_names}; {known}")
    values = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        values[name] = column.to_pylist()
    for row_no, row in enumerate(zip(*values.values()), start=1):
        yield row_no, dict(zip(values, row))


def _date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.datetime) and value.time() == dt.time(0) and value.tzinfo is None:
        value = value.date()
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        with suppress(ValueError):  # 2025-02-30 is refused, not rolled over
            value = dt.date.fromisoformat(value)
    if type(value) is not dt.date:
        raise InputError("date", f"{where}: date {value!r} is not a date (YYYY-MM-DD)")
    return value


def _positive(value: object, field: str, what: str) -> float:
    """A finite number > 0 (text or a number), else ``InputError`` naming ``field``."""
    x = math.nan
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        x = float(value)
    elif isinstance(value, str):
        with suppress(ValueError):
            x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise InputError(field, what)
    return x


def _shares(value: object, what: str) -> float:
    """Shares outstanding: a finite number > 0."""
    return _positive(value, "shares_outstanding", f"{what} must be a finite number > 0")


def _close(value: object, what: str) -> float:
    """A close in dollars: a finite number > 0."""
    return _positive(value, "close", f"{what} must be a finite price > 0 (dollars)")


def _update(market_dir: Path, new_days: Callable[[Market], NewDays]) -> tuple[Market, Market]:
    """Append the days ``new_days`` makes from the directory's market to its prices.parquet, in
    the file's own schema (other columns empty on the new rows), one row per name trading on the
    day; the market before and after."""
    with _locked(market_dir):
        before = read_market(market_dir)
        dates, closes = new_days(before)
        trading = before.trading_on(dates[:, None])
        closes = np.where(trading, closes, np.nan)
        after = Market(  # checks the whole market again: dates increasing, closes finite and > 0
            symbols=before.symbols,
            sectors=before.sectors,
            shares_outstanding=before.shares_outstanding,
            dates=np.concatenate([before.dates, dates]),
            prices=_readonly(np.vstack([before.prices, closes])),
            listed=before.listed,
            delisted=before.delisted,
        )
        old = pq.read_table(market_dir / "prices.parquet")
        n = before.n
        keep = trading.reshape(-1)
        k = int(keep.sum())
        values = {
            "date": pa.array(np.repeat(dates, n)[keep], pa.date32()),
            "symbol": pa.array(np.array(before.symbols * len(dates), dtype=object)[keep], pa.string()),
            "close": pa.array(closes.reshape(-1)[keep], pa.float64()),
        }
        new = pa.Table.from_arrays(
            [pc.cast(values[f.name], f.type) if f.name in values else pa.nulls(k, f.type) for f in old.schema],
            schema=old.schema,
        )
        table = pa.concat_tables([old, new])
        _write(market_dir / "prices.parquet", lambda tmp: pq.write_table(table, tmp))
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


def _write(path: Path, write: Callable[[Path], object]) -> None:
    """``_replace``, under the directory's lock: first clear what a killed update left of ``path``."""
    for stale in path.parent.glob(f".{path.name}.*.partial"):
        with suppress(OSError):
            stale.unlink()
    _replace(path, write)


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
