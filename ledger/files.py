"""The bulk import's files (CSV or Parquet), read and validated in full, columnar end to end.

accounts: ``account, household, account_type[, st_rate, lt_rate, cash]`` (cash in dollars)
lots:     ``account, lot_id, symbol, quantity, basis, acquired[, holding_start]`` (basis: total
          dollars; or ``basis_cents`` as an integer column instead of ``basis``)
Errors name the row (1-based data rows). Writing them to the store is ``ledger.importer``'s.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from taxview.core.mandate import KEYS, check
from taxview.core.money import dollars_to_cents

from .api import AccountInfo
from .errors import LedgerInputError
from .keys import ID_PATTERN, ID_RULE, LOT_ID_PATTERN, LOT_ID_RULE, SYMBOL_PATTERN, SYMBOL_RULE, check_id
from .validate import plain_shares

ACCOUNT_COLUMNS = ("account", "household", "account_type")
ACCOUNT_OPTIONAL = ("st_rate", "lt_rate", "cash")
LOT_COLUMNS = ("account", "lot_id", "symbol", "quantity", "acquired")
LOT_OPTIONAL = ("basis", "basis_cents", "holding_start", "purchase", "capacity")
DEFAULT_RATES = (0.408, 0.238)  # short, long: 37% + 3.8% NIIT, 20% + 3.8% (domain.md §2)
EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_ID_RE, _LOT_ID_RE, _SYMBOL_RE = (f"^{x}$" for x in (ID_PATTERN, LOT_ID_PATTERN, SYMBOL_PATTERN))
_SHARES_RE = r"^[0-9]{1,13}(\.[0-9]{1,6})?$"  # plain decimal, <= 10^12 checked apart, 6 places
_DOLLARS_RE = r"^[0-9]{1,13}(\.[0-9]+)?$"


def read_table(path: Path | str, string_columns: tuple[str, ...]) -> pa.Table:
    path = Path(path)
    if not path.is_file():
        raise LedgerInputError("file", f"{path} not found")
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        types = {c: pa.string() for c in string_columns}
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False))
    except (pa.ArrowInvalid, OSError) as exc:
        raise LedgerInputError("file", f"cannot read {path}: {exc}") from exc


def _columns(table: pa.Table, path, required, optional) -> None:
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise LedgerInputError(missing[0], f"{path}: missing column(s) {missing}")
    unknown = [c for c in table.column_names if c not in required and c not in optional]
    if unknown:
        raise LedgerInputError(unknown[0], f"{path}: unknown column(s) {unknown}; expected {required + optional}")


def _row(path, i: int) -> int:
    """How errors number row ``i`` (0-based data row): a CSV's line (the header is row 1, as for
    every CSV taxview reads), a Parquet file's data row from 1."""
    return i + (1 if Path(path).suffix == ".parquet" else 2)


def _fail(path, name: str, mask: np.ndarray, col: pa.ChunkedArray | None, why: str) -> None:
    """Raise naming the first row where ``mask`` is set (1-based data rows)."""
    if mask.any():
        i = int(np.argmax(mask))
        value = col[i].as_py() if col is not None else None
        raise LedgerInputError(name, f"{path} row {_row(path, i)}: {name} {value!r} {why}")


def _text(t: pa.Table, path, name: str, pattern: str, rule: str) -> pa.ChunkedArray:
    """A non-empty string column matching ``pattern`` (nulls and numbers are refused by row)."""
    col = t.column(name)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type)):
        raise LedgerInputError(name, f"{path}: column {name} must hold text, not {col.type}")
    col = pc.cast(col, pa.string())
    ok = pc.fill_null(pc.match_substring_regex(col, pattern), False).to_numpy(zero_copy_only=False)
    _fail(path, name, ~ok, col, f"is not valid: use {rule}")
    return col


def _numbers(t: pa.Table, path, name: str, pattern: str) -> tuple[pa.ChunkedArray, np.ndarray]:
    """A column of plain non-negative decimals (text or numbers) as exact text and as float64."""
    col = t.column(name)
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):  # 1e-05 is 0.00001, exactly
        values = col.to_pylist()
        nulls = np.array([v is None for v in values], dtype=bool)
        _fail(path, name, nulls, col, "is empty")
        text = pa.chunked_array([pa.array([_plain_text(v) for v in values], pa.string())])
    else:
        text = pc.cast(col, pa.string())
    ok = pc.fill_null(pc.match_substring_regex(text, pattern), False).to_numpy(zero_copy_only=False)
    _fail(path, name, ~ok, col, "is not a plain non-negative decimal number")
    return text, pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)


def _plain_text(v) -> str:
    try:
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    except (InvalidOperation, ValueError, TypeError):
        return str(v)
    return format(plain_shares(d), "f") if d.is_finite() else str(v)


def _shares(t: pa.Table, path, name: str) -> pa.ChunkedArray:
    """Exact share counts as plain decimal text: > 0, at most 10^12, at most 6 places."""
    text, approx = _numbers(t, path, name, _SHARES_RE)
    _fail(path, name, approx <= 0, text, "must be > 0 shares")
    near = np.flatnonzero(approx >= 1e12 - 1)  # float64 cannot tell 10^12 from 10^12 + 10^-6: look exactly
    big = np.zeros(len(approx), dtype=bool)
    big[near] = [Decimal(text[int(i)].as_py()) > 10**12 for i in near]
    _fail(path, name, big, text, "is over 10^12 shares")
    return text


def _dates(t: pa.Table, path, name: str, fill: np.ndarray | None = None) -> np.ndarray:
    """Proleptic ordinals of an ISO date column; empty cells take ``fill`` when given."""
    col = t.column(name)
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        days = col.cast(pa.date32())
    else:
        text = pc.cast(col, pa.string())
        ok = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), False)
        if fill is not None:
            ok = pc.or_(ok, pc.fill_null(pc.equal(text, ""), True))
        _fail(path, name, ~ok.to_numpy(zero_copy_only=False), col, "is not an ISO date (YYYY-MM-DD)")
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        out = []
        for i, x in enumerate(text.to_pylist()):  # strict: 2023-02-30 is refused, not rolled over
            try:
                out.append(None if x is None else dt.date.fromisoformat(x))
            except ValueError:
                raise LedgerInputError(name, f"{path} row {_row(path, i)}: {name} {x!r} is not a date") from None
        days = pa.chunked_array([pa.array(out, pa.date32())])
    ordinals = days.cast(pa.int32()).to_numpy(zero_copy_only=False)
    nulls = pc.is_null(days).to_numpy(zero_copy_only=False)
    if fill is not None:
        ordinals = np.where(nulls, fill - EPOCH_ORDINAL, ordinals)
    else:
        _fail(path, name, nulls, None, "is empty")
    return ordinals.astype(np.int64) + EPOCH_ORDINAL


def read_accounts(path: Path | str) -> list[AccountInfo]:
    """Accounts: every row checked (ids, type, rates in [0, 1) with 0 a valid rate, cash)."""
    t = read_table(path, ("account", "household", "account_type", "cash", "st_rate", "lt_rate"))
    _columns(t, path, ACCOUNT_COLUMNS, ACCOUNT_OPTIONAL)
    accounts = _text(t, path, "account", _ID_RE, ID_RULE).to_pylist()
    households = _text(t, path, "household", _ID_RE, ID_RULE).to_pylist()
    types = pc.utf8_lower(pc.cast(t.column("account_type"), pa.string())).to_pylist()
    columns = {c: t.column(c).to_pylist() if c in t.column_names else [None] * t.num_rows for c in ACCOUNT_OPTIONAL}
    out = []
    for i in range(t.num_rows):
        where = f"{path} row {_row(path, i)}: "
        rates = []
        for name, default in zip(("st_rate", "lt_rate"), DEFAULT_RATES):
            rates.append(_rate(columns[name][i], default, name, where))
        cash = _cents(columns["cash"][i], "cash", where)
        out.append(AccountInfo(accounts[i], households[i], types[i] or "", rates[0], rates[1], cash))
    return out


def read_account_rows(path: Path | str) -> list[tuple[str, dict]]:
    """``taxview accounts import``: one row per account, ``account`` plus any of ``household``,
    ``cash`` and the mandate keys (``taxview.core.mandate.KEYS``); unknown columns are refused.
    Returns (where, row) with the account id checked, cash in cents, the mandate checked (empty
    cells dropped: the account keeps what it has, or the firm's default)."""
    optional = ("household", "cash", *KEYS)
    t = read_table(path, ("account", *optional))
    _columns(t, path, ("account",), optional)
    accounts = _text(t, path, "account", _ID_RE, ID_RULE).to_pylist()
    cells = {c: t.column(c).to_pylist() for c in t.column_names if c != "account"}
    out = []
    for i, account in enumerate(accounts):
        where = f"{path} row {_row(path, i)} (account {account})"
        row: dict = {"account": account}
        household = cells.get("household", [None] * t.num_rows)[i]
        if household not in (None, ""):
            row["household"] = check_id("household", str(household), f"{where}: ")
        cash = cells.get("cash", [None] * t.num_rows)[i]
        if cash not in (None, ""):
            row["cash_cents"] = _cents(cash, "cash", f"{where}: ")
        row["mandate"] = check({k: v[i] for k, v in cells.items() if k in KEYS}, where)
        out.append((where, row))
    return out


def _rate(value, default: float, name: str, where: str) -> float:
    if value is None or value == "":
        return default
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise LedgerInputError(name, f"{where}{name} {value!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(rate) or not 0 <= rate < 1:
        raise LedgerInputError(name, f"{where}{name} must be in [0, 1) (0 is a valid rate), got {value!r}")
    return rate


def _cents(value, name: str, where: str) -> int:
    if value is None or value == "":
        return 0
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise LedgerInputError(name, f"{where}{name} {value!r} is not a number") from None
    if isinstance(value, bool) or not d.is_finite() or abs(d) >= Decimal(10) ** 13:
        raise LedgerInputError(name, f"{where}{name} must be dollars under 10^13, got {value!r}")
    return dollars_to_cents(d)


def read_lots(path: Path | str, as_of: dt.date | None = None, universe: set[str] | None = None) -> pa.Table:
    """Lots as a normalized Arrow table: account, lot_id, symbol, quantity (exact text), basis_cents
    (int64), acquired and holding_start (proleptic ordinals). Every row is checked: ids and symbols
    in the ledger's alphabet, quantity a plain decimal in (0, 10^12] with at most 6 places, basis
    a finite dollar amount >= 0 (rounded to cents) or integer cents, acquired an ISO date from
    1900-01-01 to ``as_of`` (default today), holding_start empty (= acquired) or a date not after
    it; with ``universe``, symbols outside it are refused. Errors name the row and column."""
    as_of = as_of or dt.date.today()
    t = read_table(path, ("account", "lot_id", "symbol", "quantity", "basis", "acquired", "holding_start"))
    _columns(t, path, LOT_COLUMNS, LOT_OPTIONAL)
    if ("basis_cents" in t.column_names) == ("basis" in t.column_names):
        raise LedgerInputError("basis", f"{path}: needs one of 'basis' (dollars) or 'basis_cents' (integer cents)")
    account = _text(t, path, "account", _ID_RE, ID_RULE)
    lot_id = _text(t, path, "lot_id", _LOT_ID_RE, LOT_ID_RULE)
    symbol = _text(t, path, "symbol", _SYMBOL_RE, SYMBOL_RULE)
    if universe is not None:
        inside = np.isin(np.array(symbol.to_pylist(), dtype=object), np.array(sorted(universe), dtype=object))
        _fail(path, "symbol", ~inside, symbol, "is not in the market's universe")
    qty_text = _shares(t, path, "quantity")
    if "basis_cents" in t.column_names:
        col = t.column("basis_cents")
        if not pa.types.is_integer(col.type) or col.type == pa.uint64():
            text, _ = _numbers(t, path, "basis_cents", r"^[0-9]{1,15}$")
            col = pc.cast(text, pa.int64())
        basis = pc.fill_null(col.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
        name = "basis_cents"
    else:
        text, _ = _numbers(t, path, "basis", _DOLLARS_RE)
        basis = np.fromiter((dollars_to_cents(Decimal(x)) for x in text.to_pylist()), dtype=np.int64, count=t.num_rows)
        name = "basis"
    _fail(path, name, (basis < 0) | (basis >= 10**15), t.column(name), "must be >= 0 and under $10^13")
    capacity = qty_text
    if "capacity" in t.column_names:  # an export's: shares not yet used as replacement shares
        capacity, _ = _numbers(t, path, "capacity", _SHARES_RE)
        over = [Decimal(c) > Decimal(q) for c, q in zip(capacity.to_pylist(), qty_text.to_pylist())]
        _fail(path, "capacity", np.array(over, dtype=bool), capacity, "is more than the lot's quantity")
    purchase = (
        _text(t, path, "purchase", _LOT_ID_RE, LOT_ID_RULE)
        if "purchase" in t.column_names
        else pa.chunked_array([pa.array([None] * t.num_rows, pa.string())])
    )
    acquired = _dates(t, path, "acquired")
    earliest, latest = dt.date(1900, 1, 1).toordinal(), as_of.toordinal()
    _fail(
        path,
        "acquired",
        (acquired < earliest) | (acquired > latest),
        t.column("acquired"),
        f"is not in 1900-01-01..{as_of}",
    )
    holding = _dates(t, path, "holding_start", fill=acquired) if "holding_start" in t.column_names else acquired
    _fail(
        path,
        "holding_start",
        (holding < earliest) | (holding > acquired),
        t.column("holding_start") if "holding_start" in t.column_names else None,
        "must be from 1900-01-01 to the lot's acquired date",
    )
    return pa.table(
        {
            "account": account,
            "lot_id": lot_id,
            "symbol": symbol,
            "quantity": pc.cast(qty_text, pa.string()),
            "basis_cents": basis,
            "acquired": acquired,
            "holding_start": holding,
            "capacity": pc.cast(capacity, pa.string()),
            "purchase": purchase,
        },
        metadata={"row_base": str(_row(path, 0))},
    )


def lots_table(lots) -> pa.Table:
    """``read_lots``'s table from lot records (``OpenLot`` or anything with the same fields)."""
    return pa.table(
        {
            "account": pa.array([x.account for x in lots], pa.string()),
            "lot_id": pa.array([x.lot_id for x in lots], pa.string()),
            "symbol": pa.array([x.symbol for x in lots], pa.string()),
            "quantity": pa.array([str(x.quantity) for x in lots], pa.string()),
            "basis_cents": pa.array([x.basis_cents for x in lots], pa.int64()),
            "acquired": pa.array([x.acquired.toordinal() for x in lots], pa.int64()),
            "holding_start": pa.array([x.holding_start.toordinal() for x in lots], pa.int64()),
            "capacity": pa.array([str(x.capacity) for x in lots], pa.string()),
            "purchase": pa.array([x.purchase_id or None for x in lots], pa.string()),
        }
    )


__all__ = ["lots_table", "read_accounts", "read_lots"]
