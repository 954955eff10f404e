"""Bulk import and export of accounts and lots: the files' records (``ledger.files``) into the
store, and the whole ledger out as re-importable Parquet.

Everything is validated against the files and the ledger before anything is written; errors name
the row (1-based data rows).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from .api import AccountInfo
from .archive import ArchiveWriter
from .codec import HEAD_FIELDS
from .errors import CommitRejected, LedgerError, LedgerInputError
from .keys import dot_prefixes, piece_order
from .retention import Cut, JournalEntry
from .store import LedgerStore


def import_ledger(
    store: LedgerStore,
    accounts: list[AccountInfo],
    lots: pa.Table | None,
    replace: Sequence[str] = (),
    progress: bool = False,
    source: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Import accounts and lots: everything is validated against the files and the ledger first
    (ids, types, duplicates, existing accounts and lot ids, unknown accounts) and nothing is
    written on an error. An existing account is refused unless named in ``replace``: its open
    lots are then deleted and restated from ``lots`` (journaled); its sales history stays.
    ``source`` (``import_source``): the file ``lots`` was read from, whole and unchanged: each
    household's journal entry names it (path, sha256) instead of copying its lots; the journal
    replay reads them from the file again (``LedgerStore.rebuild_from_journal``).
    Returns (accounts, lots) written."""
    replace = list(dict.fromkeys(replace))
    store.check_accounts(accounts, replace)
    homes = store.accounts()
    for a in replace:
        if a not in homes:
            raise LedgerInputError("replace_account", f"--replace-account {a!r}: no such account in the ledger")
    new_homes = {a.account: a.household for a in accounts}
    # without a lots file a replaced account keeps its lots (its record is restated)
    plan = _plan_lots(store, lots, {**homes, **new_homes}, set(replace)) if lots is not None else {}
    store.add_accounts(accounts, replace)
    if replace and lots is not None:  # restating a record moves its household's version: plan the removals on it
        plan = _plan_lots(store, lots, {**homes, **new_homes}, set(replace))
    n = 0
    bar = tqdm(
        total=lots.num_rows if lots is not None else 0,
        unit="lot",
        desc="import",
        file=sys.stderr,
        disable=not progress,
        unit_scale=True,
    )
    for done, (hh, (rows, remove, repl, version)) in enumerate(plan.items()):
        try:
            n += store.write_import(hh, rows, remove, repl, version, source)
        except CommitRejected as exc:  # only a concurrent change of this household gets here
            raise LedgerError(
                f"import stopped at household {hh!r} ({exc}); {done} of {len(plan)} households and "
                f"the accounts were written: import the rest of the lots file again"
            ) from None
        bar.update(len(rows))
    bar.close()
    return len(accounts), n


def import_lots(store: LedgerStore, lots: pa.Table, progress: bool = False, source: dict | None = None) -> int:
    """Import a normalized lots table (``read_lots``) for accounts already in the ledger
    (``source``: the file it was read from, see ``import_ledger``)."""
    return import_ledger(store, [], lots, progress=progress, source=source)[1]


def _plan_lots(store: LedgerStore, lots: pa.Table, homes: dict[str, str], replace: set[str]):
    """Per household: (rows for ``write_import``, lots to remove, replaced accounts, version)."""
    base = int((lots.schema.metadata or {}).get(b"row_base", b"1"))  # how the file numbers its rows
    accounts = lots.column("account").to_pylist()
    unknown = next((i for i, a in enumerate(accounts) if a not in homes), None)
    if unknown is not None:
        raise LedgerInputError("account", f"lots row {unknown + base}: unknown account {accounts[unknown]!r}")
    households = [homes[a] for a in accounts]
    lot_ids = lots.column("lot_id").to_pylist()
    every = import_rows(store, lots)
    by_hh: dict[str, list[int]] = {}
    for i, hh in enumerate(households):
        by_hh.setdefault(hh, []).append(i)
    for a in replace:  # a replaced account with no lots in the file is emptied all the same
        by_hh.setdefault(homes[a], [])
    plan = {}
    for hh, rows in by_hh.items():
        seen: dict[str, int] = {}
        for i in rows:
            if lot_ids[i] in seen:
                raise LedgerInputError(
                    "lot_id",
                    f"lots row {i + base}: lot {lot_ids[i]!r} is also on row {seen[lot_ids[i]] + base} ({hh!r})",
                )
            seen[lot_ids[i]] = i
        for i in rows:  # one id inside another's namespace, within the file
            for p in dot_prefixes(lot_ids[i]):
                if p in seen:
                    raise LedgerInputError(
                        "lot_id", f"lots row {i + base}: lot {lot_ids[i]!r} is inside the id of row {seen[p] + base}"
                    )
        remove, version, mine = [], None, sorted(a for a in replace if homes.get(a) == hh)
        if mine:
            version = int(store.r.hget(store.k.meta(hh), "version") or 0)
            held = store.household_lots(hh)
            remove = [(store.key_of(x.symbol), x.lot_id) for a in mine for x in held.get(a, [])]
        freed = freed_ids(lid for _, lid in remove)
        for i, ok in zip(rows, store.free_ids(hh, [lot_ids[i] for i in rows], freed)):
            if not ok:
                raise LedgerInputError(
                    "lot_id", f"lots row {i + base}: lot id {lot_ids[i]!r} is already used in household {hh!r}"
                )
        plan[hh] = (
            [every[i] for i in rows],
            remove,
            mine,
            version,
        )
    return plan


def import_rows(store: LedgerStore, lots: pa.Table) -> list[tuple]:
    """Each row of a normalized lots table as ``write_import`` takes it: (identity key, lot id,
    head, capacity, purchase label or None), in file order."""
    names = lots.column_names
    capacity = lots.column("capacity").to_pylist() if "capacity" in names else lots.column("quantity").to_pylist()
    purchase = lots.column("purchase").to_pylist() if "purchase" in names else [None] * lots.num_rows

    def text(name: str) -> pa.ChunkedArray:
        return pc.cast(lots.column(name), pa.string())

    heads = pc.binary_join_element_wise(*(text(c) for c in HEAD_FIELDS), "|").to_pylist()  # import.lua adds the rest
    keys = [store.key_of(x) for x in lots.column("symbol").to_pylist()]
    return list(zip(keys, lots.column("lot_id").to_pylist(), heads, capacity, purchase))


def import_source(path: Path | str) -> dict[str, str]:
    """What an import's journal entry records of its file instead of its lots: path and sha256."""
    from .archive import sha256_file

    return {"path": str(Path(path).resolve()), "sha256": sha256_file(path)}


def household_lots_of(lots: pa.Table, members: Sequence[str]) -> pa.Table:
    """The rows of a lots table whose account is one of ``members`` (one household's), in order."""
    return lots.filter(pc.is_in(lots.column("account"), value_set=pa.array(sorted(members), pa.string())))


def freed_ids(removed) -> set[str]:
    """Ids a replaced account's removed lots give back: their own and their namespaces'."""
    return {x for lid in removed for x in (lid, *dot_prefixes(lid))}


def export(store: LedgerStore, out: Path | str) -> tuple[Path, Path]:
    """accounts.parquet and lots.parquet of the whole ledger (re-importable), and journal.parquet:
    the journal still in Redis (the archive's format, checksummed), which after the archive's
    replays the ledger into an empty one (``journal.rebuild_from_export``)."""
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
    pq.write_table(lots_export(store, sorted({a.household for a in infos})), out / "lots.parquet")
    writer = ArchiveWriter(out / "journal.parquet")
    try:
        for hh in sorted({a.household for a in infos}):
            writer.add(
                Cut(
                    hh,
                    [
                        JournalEntry(e["id"], e["key"], e["account"], e["date"], json.dumps(e["entry"]))
                        for e in store.journal(hh)
                    ],
                )
            )
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return out / "accounts.parquet", out / "lots.parquet"


def lots_export(store: LedgerStore, households: Sequence[str]) -> pa.Table:
    """Every open lot of ``households`` as lots.parquet holds them (sorted)."""
    rows = []
    for hh in households:
        rows += [x for held in store.household_lots(hh).values() for x in held]
    rows.sort(key=lambda x: (x.account, x.symbol, x.acquired, x.seq, piece_order(x.lot_id)))
    return pa.table(
        {
            "account": [x.account for x in rows],
            "lot_id": [x.lot_id for x in rows],
            "symbol": [x.symbol for x in rows],
            "quantity": [str(x.quantity) for x in rows],
            "basis_cents": pa.array([x.basis_cents for x in rows], pa.int64()),
            "acquired": pa.array([x.acquired for x in rows], pa.date32()),
            "holding_start": pa.array([x.holding_start for x in rows], pa.date32()),
            # the wash-sale state of each lot: which purchase it is (pieces of one purchase
            # share it) and how many of its shares may still replace a loss
            "purchase": [x.purchase_id for x in rows],
            "capacity": [str(x.capacity) for x in rows],
        }
    )


__all__ = ["export", "household_lots_of", "import_ledger", "import_lots", "import_rows", "import_source", "lots_export"]
