"""Bulk import and export of accounts and lots (CSV or Parquet), columnar end to end.

accounts: ``account, household, account_type[, st_rate, lt_rate, cash]`` (cash in dollars)
lots:     ``account, lot_id, symbol, quantity, basis, acquired[, holding_start]`` (basis: total
          dollars; or ``basis_cents`` as an integer column instead of ``basis``)
Everything is validated before anything is written; errors name the row (1-based data rows).
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from solver.money import dollars_to_cents

from .errors import LedgerInputError
from .store import AccountInfo, LedgerStore, decode_lot

ACCOUNT_COLUMNS = ("account", "household", "account_type")
LOT_COLUMNS = ("account", "lot_id", "symbol", "quantity", "acquired")


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


def _need(table: pa.Table, path, columns) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise LedgerInputError(missing[0], f"{path}: missing column(s) {missing}")


def read_accounts(path: Path | str) -> list[AccountInfo]:
    t = read_table(path, ("account", "household", "account_type", "cash"))
    _need(t, path, ACCOUNT_COLUMNS)
    rows = t.to_pylist()
    out = []
    for i, r in enumerate(rows, start=1):
        try:
            cash = dollars_to_cents(Decimal(str(r.get("cash") or 0)))
            out.append(
                AccountInfo(
                    str(r["account"]),
                    str(r["household"]),
                    str(r["account_type"]).lower(),
                    float(r.get("st_rate") or 0.408),
                    float(r.get("lt_rate") or 0.238),
                    cash,
                )
            )
        except (InvalidOperation, ValueError, TypeError) as exc:
            raise LedgerInputError("row", f"{path} row {i}: {exc}") from None
    return out


def read_lots(path: Path | str) -> pa.Table:
    """Lots as a normalized Arrow table: account, lot_id, symbol, quantity (string), basis_cents
    (int64), acquired and holding_start (int32 ordinals)."""
    t = read_table(path, ("account", "lot_id", "symbol", "quantity", "basis"))
    _need(t, path, LOT_COLUMNS)
    if "basis_cents" not in t.column_names and "basis" not in t.column_names:
        raise LedgerInputError("basis", f"{path}: needs a 'basis' (dollars) or 'basis_cents' column")
    n = t.num_rows
    qty_text = pc.cast(t.column("quantity"), pa.string())
    qty = pc.cast(qty_text, pa.float64(), safe=False) if n else pa.array([], pa.float64())
    bad = ~np.isfinite(qty.to_numpy(zero_copy_only=False)) | (qty.to_numpy(zero_copy_only=False) <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise LedgerInputError("quantity", f"{path} row {i + 1}: quantity must be > 0, got {qty_text[i].as_py()!r}")
    if "basis_cents" in t.column_names:
        basis = t.column("basis_cents").cast(pa.int64()).to_numpy()
    else:
        text = pc.cast(t.column("basis"), pa.string()).to_pylist()
        try:
            basis = np.fromiter((dollars_to_cents(Decimal(x)) for x in text), dtype=np.int64, count=n)
        except InvalidOperation:
            i = next(i for i, x in enumerate(text) if not _is_number(x))
            raise LedgerInputError("basis", f"{path} row {i + 1}: {text[i]!r} is not a number") from None
    if (basis < 0).any():
        raise LedgerInputError("basis", f"{path} row {int(np.argmax(basis < 0)) + 1}: basis must be >= 0")

    def ordinals(name: str) -> np.ndarray:
        col = t.column(name)
        try:
            days = pc.cast(col, pa.date32()) if not pa.types.is_date(col.type) else col.cast(pa.date32())
        except pa.ArrowInvalid as exc:
            raise LedgerInputError(name, f"{path}: {name} must be ISO dates: {exc}") from None
        if days.null_count:
            raise LedgerInputError(name, f"{path}: {days.null_count} empty {name} values")
        return days.cast(pa.int32()).to_numpy().astype(np.int64) + 719163  # 1970-01-01 ordinal

    acquired = ordinals("acquired")
    if "holding_start" in t.column_names:
        hs_col = t.column("holding_start")
        if pa.types.is_string(hs_col.type):
            hs_col = pc.if_else(pc.equal(hs_col, ""), pa.scalar(None, pa.string()), hs_col)
        hs = pc.fill_null(pc.cast(hs_col, pa.date32()), pc.cast(t.column("acquired"), pa.date32()))
        holding = hs.cast(pa.int32()).to_numpy().astype(np.int64) + 719163
    else:
        holding = acquired
    return pa.table(
        {
            "account": pc.cast(t.column("account"), pa.string()),
            "lot_id": pc.cast(t.column("lot_id"), pa.string()),
            "symbol": pc.cast(t.column("symbol"), pa.string()),
            "quantity": qty_text,
            "basis_cents": basis,
            "acquired": acquired,
            "holding_start": holding,
        }
    )


def _is_number(x: str) -> bool:
    try:
        Decimal(x)
        return True
    except InvalidOperation:
        return False


def import_lots(store: LedgerStore, lots: pa.Table, batch: int = 50_000, progress: bool = False) -> int:
    """Write a normalized lots table (``read_lots``) into the ledger; validated first."""
    homes = store.accounts()
    accounts = lots.column("account").to_pylist()
    unknown = next((a for a in accounts if a not in homes), None)
    if unknown is not None:
        raise LedgerInputError("account", f"lots row {accounts.index(unknown) + 1}: unknown account {unknown!r}")
    households = np.array([homes[a] for a in accounts], dtype=object)
    keys = np.array([store.key_of(s) for s in lots.column("symbol").to_pylist()], dtype=object)
    lot_ids = np.array(lots.column("lot_id").to_pylist(), dtype=object)
    pairs = households + "\x00" + lot_ids
    if len(set(pairs)) != len(pairs):
        seen: set = set()
        for i, p in enumerate(pairs):
            if p in seen:
                raise LedgerInputError("lot_id", f"lots row {i + 1}: lot {lot_ids[i]!r} appears twice in its household")
            seen.add(p)
    seq = pa.array(np.arange(1, lots.num_rows + 1).astype(str))

    def s(col) -> pa.Array:
        return pc.cast(col, pa.string())

    enc = pc.binary_join_element_wise(
        lots.column("account"),
        lots.column("symbol"),
        lots.column("quantity"),
        s(lots.column("basis_cents")),
        s(lots.column("acquired")),
        s(lots.column("holding_start")),
        lots.column("lot_id"),
        lots.column("quantity"),
        seq,
        "|",
    ).to_pylist()
    order = np.lexsort((keys, households))
    pipe = store.r.pipeline(transaction=False)
    k = store.k
    start, n = 0, len(order)
    journal: dict[str, list] = {}
    bar = tqdm(total=n, unit="lot", desc="import", file=sys.stderr, disable=not progress, unit_scale=True)
    while start < n:
        i0 = order[start]
        hh, key = households[i0], keys[i0]
        end = start
        while end < n and households[order[end]] == hh and keys[order[end]] == key:
            end += 1
        idx = order[start:end]
        mapping = {lot_ids[i]: enc[i] for i in idx}
        pipe.hset(k.lots(hh, key), mapping=mapping)
        pipe.sadd(k.groups(hh), key)
        journal.setdefault(hh, []).extend([lot_ids[i], enc[i]] for i in idx)
        if len(pipe) >= 200:
            pipe.execute()
        bar.update(end - start)
        start = end
    bar.close()
    # purchases of the last days count for the wash-sale windows like committed ones
    acquired = lots.column("acquired").to_numpy()
    latest: dict[tuple[str, str], int] = {}
    for i in range(n):
        k2 = (households[i], keys[i])
        if acquired[i] > latest.get(k2, 0):
            latest[k2] = int(acquired[i])
    store.note_purchases(pipe, latest)
    for hh, entries in journal.items():
        pipe.xadd(
            k.journal(hh),
            {
                "key": "",
                "account": "",
                "date": "",
                "entry": json.dumps({"import": entries}, separators=(",", ":")),
            },
        )
        pipe.hincrby(k.meta(hh), "version", 1)
        if len(pipe) >= 200:
            pipe.execute()
    pipe.execute()
    return n


def export(store: LedgerStore, out: Path | str) -> tuple[Path, Path]:
    """accounts.parquet and lots.parquet of the whole ledger (re-importable)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    infos = [store.account(a) for a in sorted(store.accounts())]
    pq.write_table(
        pa.table(
            {
                "account": [a.account for a in infos],
                "household": [a.household for a in infos],
                "account_type": [a.account_type for a in infos],
                "st_rate": [a.st_rate for a in infos],
                "lt_rate": [a.lt_rate for a in infos],
                "cash": [str(Decimal(a.cash_cents) / 100) for a in infos],
            }
        ),
        out / "accounts.parquet",
    )
    rows = []
    for hh in sorted({a.household for a in infos}):
        rows += [x for held in store.household_lots(hh).values() for x in held]
    rows.sort(key=lambda x: (x.account, x.symbol, x.acquired, x.seq))
    pq.write_table(
        pa.table(
            {
                "account": [x.account for x in rows],
                "lot_id": [x.lot_id for x in rows],
                "symbol": [x.symbol for x in rows],
                "quantity": [str(x.quantity) for x in rows],
                "basis_cents": pa.array([x.basis_cents for x in rows], pa.int64()),
                "acquired": pa.array([x.acquired for x in rows], pa.date32()),
                "holding_start": pa.array([x.holding_start for x in rows], pa.date32()),
            }
        ),
        out / "lots.parquet",
    )
    return out / "accounts.parquet", out / "lots.parquet"


__all__ = ["decode_lot", "export", "import_lots", "read_accounts", "read_lots"]
