"""The ledger's archive: what compaction took out of Redis, as Parquet files in one directory.

One file per compaction (``archive-<before>-<n>.parquet``, n counting up: the directory is only
ever appended to), rows of three kinds — ``journal`` (a household's journal entries, in stream
order), ``idempotency`` (a commit's stored result under its key) and ``sale`` (a closed sale's
record) — with the household, the row's id (stream id, idempotency key, sale id), its date and the
value exactly as Redis held it. Each file is written under a temporary name, fsynced, renamed,
then its checksum is written beside it (``<file>.sha256``, the ``sha256sum`` format: ``sha256sum
-c`` checks it); a file without a valid checksum is not part of the archive. Import files a
journal names by checksum are copied under ``imports/<sha256><suffix>`` so the archive replays
without them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import LedgerError
from .retention import Cut, JournalEntry

SCHEMA = pa.schema(
    [
        ("kind", pa.string()),  # journal | idempotency | sale
        ("household", pa.string()),
        ("id", pa.string()),  # stream id | idempotency key | sale id
        ("date", pa.date32()),  # the entry's, the commit's, the sale's (null: an undated journal entry)
        ("account", pa.string()),
        ("key", pa.string()),  # a journal entry's idempotency key
        ("value", pa.string()),  # the journal entry | "digest|result" | the sale, as Redis held it
    ]
)
_NAME = re.compile(r"archive-(\d{4}-\d{2}-\d{2})-(\d{4,})\.parquet")


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def next_name(archive: Path, before: str) -> str:
    """The next file's name: its number follows every file of the directory."""
    numbers = [int(m[2]) for p in archive.glob("archive-*.parquet") if (m := _NAME.fullmatch(p.name))]
    return f"archive-{before}-{max(numbers, default=0) + 1:04d}.parquet"


def rows_of(cut: Cut) -> dict[str, list]:
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}

    def add(kind, id_, date, account, key, value) -> None:
        for name, v in zip(SCHEMA.names, (kind, cut.household, id_, date, account, key, value)):
            cols[name].append(v)

    for e in cut.journal:
        day = dt.date.fromisoformat(e.date) if e.date else None
        add("journal", e.id, day, e.account or None, e.key or None, e.entry)
    for key, (day, stored) in sorted(cut.idempotency.items()):
        add("idempotency", key, day, None, None, stored)
    for sale_id, (day, stored) in sorted(cut.sales.items(), key=lambda x: int(x[0].rsplit(":", 1)[1])):
        add("sale", sale_id, day, None, None, stored)
    return cols


class ArchiveWriter:
    """One compaction's file: households' cuts streamed in, then ``close`` syncs it, renames it and
    writes its checksum (``abort`` leaves nothing under the final name)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.partial")
        self.rows = 0
        self._w = pq.ParquetWriter(self.tmp, SCHEMA, compression="zstd")

    def add(self, cut: Cut) -> None:
        if len(cut):
            self._w.write_table(pa.table(rows_of(cut), schema=SCHEMA))
            self.rows += len(cut)

    def close(self) -> str:
        """Sync the file, give it its name, write its checksum; returns the sha256."""
        self._w.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)
        _fsync_dir(self.path.parent)
        digest = sha256_file(self.path)
        _write_synced(checksum_path(self.path), f"{digest}  {self.path.name}\n".encode())
        return digest

    def abort(self) -> None:
        try:
            self._w.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def valid(path: Path) -> bool:
    """Is ``path`` a complete archive file: present, with a checksum that matches?"""
    check = checksum_path(path)
    if not path.is_file() or not check.is_file():
        return False
    return check.read_text().split()[0] == sha256_file(path)


def files(archive: Path | str | None) -> list[Path]:
    """The archive's complete files in the order they were written (a file whose checksum is
    missing — a compaction stopped before it finished writing — is left out; a wrong checksum is
    an error: the archive was damaged)."""
    if archive is None or not Path(archive).is_dir():
        return []
    found = sorted((int(m[2]), p) for p in Path(archive).glob("archive-*.parquet") if (m := _NAME.fullmatch(p.name)))
    out = []
    for _, p in found:
        if not checksum_path(p).is_file():
            continue
        if not valid(p):
            raise LedgerError(f"archive file {p} does not match its checksum {checksum_path(p).name}: it was damaged")
        out.append(p)
    return out


def read(paths: Iterable[Path], kinds: Iterable[str] = ("journal", "idempotency", "sale")) -> pa.Table:
    tables = [pq.read_table(p, schema=SCHEMA, filters=[("kind", "in", list(kinds))]) for p in paths]
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def archived_journal(archive: Path | str | None) -> dict[str, list[JournalEntry]]:
    """Every household's archived journal entries, in stream order."""
    return _journal(read(files(archive), ["journal"]))


def journal_of(path: Path) -> dict[str, list[JournalEntry]]:
    """The journal entries of one file in the archive's format (an export's journal.parquet)."""
    return _journal(read([path], ["journal"]))


def _journal(table: pa.Table) -> dict[str, list[JournalEntry]]:
    t = table.to_pydict()
    out: dict[str, list[JournalEntry]] = {}
    for hh, id_, date, account, key, value in zip(
        t["household"], t["id"], t["date"], t["account"], t["key"], t["value"]
    ):
        out.setdefault(hh, []).append(
            JournalEntry(id_, key or "", account or "", date.isoformat() if date else "", value)
        )
    for entries in out.values():
        entries.sort(key=lambda e: e.order)
    return out


def archived_sales(archive: Path | str | None) -> dict[str, dict[str, str]]:
    """Every household's archived sales: sale id -> the stored JSON."""
    t = read(files(archive), ["sale"]).to_pydict()
    out: dict[str, dict[str, str]] = {}
    for hh, id_, value in zip(t["household"], t["id"], t["value"]):
        out.setdefault(hh, {})[id_] = value
    return out


def iter_households(path: Path) -> Iterator[tuple[str, pa.Table]]:
    """One file's rows, household by household."""
    t = pq.read_table(path, schema=SCHEMA)
    if t.num_rows == 0:
        return
    t = t.sort_by("household")
    hh = t.column("household").to_pylist()
    start = 0
    for i in range(1, len(hh) + 1):
        if i == len(hh) or hh[i] != hh[start]:
            yield hh[start], t.slice(start, i - start)
            start = i


def keep_import_file(archive: Path, source: Path, sha256: str) -> Path:
    """A copy of an import file under ``imports/<sha256><suffix>`` (once; checked)."""
    target = archive / "imports" / f"{sha256}{source.suffix}"
    if target.is_file() and sha256_file(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.copyfile(source, tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    if sha256_file(tmp) != sha256:
        tmp.unlink()
        raise LedgerError(f"import file {source} changed since it was imported (its sha256 is no longer {sha256})")
    os.replace(tmp, target)
    _fsync_dir(target.parent)
    return target


def find_import_file(path: str, sha256: str, places: Iterable[Path | str | None]) -> Path:
    """The import file a journal entry names: at its recorded path, or by checksum under an
    archive's ``imports/``, or by name in one of ``places``; its checksum must match."""
    name = Path(path).name
    candidates = [Path(path)]
    for place in places:
        if place is None:
            continue
        place = Path(place)
        candidates += sorted((place / "imports").glob(f"{sha256}*")) + [place / name]
    for c in candidates:
        if c.is_file() and sha256_file(c) == sha256:
            return c
    raise LedgerError(
        f"the journal's import of {path} (sha256 {sha256[:16]}...) cannot be replayed: no file with that "
        "checksum at that path, in the archive's imports/ or beside the given files"
    )


__all__ = [
    "SCHEMA",
    "ArchiveWriter",
    "archived_journal",
    "archived_sales",
    "checksum_path",
    "files",
    "find_import_file",
    "iter_households",
    "journal_of",
    "keep_import_file",
    "next_name",
    "read",
    "sha256_file",
    "valid",
]
