"""The journal read back (a mixin of ``LedgerStore``): a household's entries, the ledger's state
for comparisons and export, and a ledger rebuilt by replaying every journal in order.

Each household's journal is a Redis Stream: account records (``add_accounts``), mandate changes
(``lua/mandate.lua``), imports (``lua/import.lua``), corporate actions (``lua/corporate.lua``),
year-end rolls (``lua/yearend.lua``) and commits (``lua/commit.lua``) append to it. A compaction
(``ledger.compaction``) moves its oldest entries into the archive: read with ``archive``, the
archived entries come first and the journal is whole again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from taxview.core.mandate import check

from . import archive as arc
from .api import AccountInfo
from .codec import decode_sale, encode_lot, encode_sale, lot_field
from .corporate import action_from_json
from .errors import LedgerError
from .keys import Keys
from .plan import trades_from_wire
from .yearend import Roll

if TYPE_CHECKING:
    from .store import LedgerStore


class Journal:
    """``LedgerStore``'s journal reads and rebuild, on its client and key names."""

    r: redis.Redis
    k: Keys

    def journal(self, household: str, archive: Path | str | None = None) -> list[dict[str, Any]]:
        """A household's journal: the entries still in Redis, after its archived ones (``archive``:
        the compaction's directory, ``ledger.archive``)."""
        out = []
        if archive is not None:
            for e in arc.archived_journal(archive).get(household, []):
                fields = {"key": e.key, "account": e.account, "date": e.date}
                out.append({"id": e.id, **fields, "entry": json.loads(e.entry)})
        for entry_id, fields in self.r.xrange(self.k.journal(household)):
            f = {k.decode(): v.decode() for k, v in fields.items()}
            out.append({"id": entry_id.decode(), **f, "entry": json.loads(f["entry"])})
        return out

    def state(self, archive: Path | str | None = None) -> dict[str, Any]:
        """Everything the ledger holds about lots and sales, for comparisons and export; with
        ``archive`` the sales a compaction archived count as the ledger's (the whole history)."""
        out: dict[str, Any] = {}
        archived = arc.archived_sales(archive) if archive is not None else {}
        for hh in self.households():
            lots = sorted((x.lot_id, encode_lot(x)) for held in self.household_lots(hh).values() for x in held)
            live = self.sales(hh)
            old = [decode_sale(v) for sale_id, v in archived.get(hh, {}).items()]
            sales = [encode_sale(s) for s in sorted(old + live, key=lambda s: (s.date, _sale_number(s)))]
            windows = {k.decode(): v.decode() for k, v in self.r.hgetall(self.k.windows(hh)).items()}
            pending = sorted(x.decode() for x in self.r.smembers(self.k.pending(hh)))
            meta = {k.decode(): v.decode() for k, v in self.r.hgetall(self.k.meta(hh)).items()}
            carry = {k: v for k, v in sorted(meta.items()) if k.startswith(("carry", "roll:"))}
            out[hh] = {"lots": lots, "sales": sales, "windows": windows, "pending": pending, "carry": carry}
        return out

    def rebuild_from_journal(
        self, target: LedgerStore, archive: Path | str | None = None, places: Sequence[Path | str] = ()
    ) -> int:
        """Replay every household's journal into ``target`` (an empty ledger), in order: account
        records (created or restated), mandates, imports, corporate actions, year-end rolls,
        commits. ``archive``: the compaction's directory, whose entries come first. An import
        that named its file is read from it again (at its path, by checksum in the archive's
        ``imports/``, or by name in ``places``) and must write the very lots it wrote (digest).
        Returns commits replayed."""
        homes = self.accounts()
        journals = {hh: self.journal(hh, archive) for hh in sorted(set(homes.values()))}
        journaled = {e["account"] for entries in journals.values() for e in entries if "account" in e["entry"]}
        legacy = []  # accounts created before records were journaled: as they are now, opening cash
        for a in sorted(set(homes) - journaled):
            info = self.account(a)
            opening = int(self.r.hget(self.k.account(info.household, a), "opening_cash_cents") or 0)
            legacy.append(AccountInfo(a, info.household, info.account_type, info.st_rate, info.lt_rate, opening))
        return replay(target, journals, homes, legacy, [archive, *places])


def replay(
    target: LedgerStore,
    journals: dict[str, list[dict[str, Any]]],
    homes: dict[str, str],
    legacy: list[AccountInfo] = (),
    places: Sequence[Path | str | None] = (),
) -> int:
    """Replay households' journals (entries as ``Journal.journal`` reads them) into ``target``, in
    order; ``homes``: account -> household; ``legacy``: accounts no journal entry creates;
    ``places``: where import files named by the journal may be (``archive.find_import_file``).
    Returns commits replayed."""
    files: dict[str, Any] = {}  # sha256 -> the import file's lots, read once
    target.add_accounts(legacy)
    n = 0
    for hh, entries in journals.items():
        for e in entries:
            entry = e["entry"]
            if "account" in entry:
                r = entry["account"]
                mandate = check(r.get("mandate") or {}, f"journal of {hh}")
                info = AccountInfo(e["account"], hh, r["type"], r["st_rate"], r["lt_rate"], r["cash_cents"], mandate)
                target.add_accounts([info], replace=[e["account"]])
            elif "mandate" in entry:  # restated as it became: every key, the dropped ones back to default
                m = entry["mandate"]
                restate = {k: None for k in m["old"]} | {"account_type": None, "st_rate": None, "lt_rate": None}
                restate.update(check(m["new"], f"journal of {hh}"))
                target.set_mandate(e["account"], restate, m["actor"], m["at"])
            elif "cash_flow" in entry:
                f = entry["cash_flow"]
                if "applied" in f:  # booked on its night
                    target.apply_cash_flows(e["account"], dt.date.fromisoformat(f["date"]))
                else:
                    day = dt.date.fromisoformat(f["date"])
                    target.add_cash_flow(e["account"], f["cents"], day, f["reason"], f["actor"], f["at"], f["id"])
            elif "import_file" in entry:  # read from the file again: the same rows, numbered alike
                _replay_import_file(target, hh, entry, homes, files, places)
            elif "import" in entry:  # restored verbatim: same purchase numbers, same pieces
                target.write_import(
                    hh,
                    [
                        (target.key_of(lot_field(enc, "symbol")), lid, enc, None, None)
                        for lid, enc in entry["import"] or []
                    ],
                    remove=[(key, lid) for key, lid in entry.get("removed") or []],
                    replace=list(entry.get("replace") or []),
                )
            elif "corporate" in entry:  # the same action in this household, planned on its state
                target.apply_action_to(hh, action_from_json(entry["corporate"]))
            elif "year_end" in entry:  # rolled again on the state replayed so far: the same numbers
                y = entry["year_end"]
                new = Roll.from_json(y["new"])
                done = target.close_year(hh, y["year"], y["actor"], y["at"], cap_cents=new.cap_cents)[0]
                if done.roll != new:
                    raise LedgerError(f"journal of {hh}: the roll of {y['year']} replays as {done.roll}, not {new}")
            else:
                target.commit(
                    e["account"],
                    dt.date.fromisoformat(e["date"]),
                    trades_from_wire(entry["trades"]),
                    e["key"],
                    allow_wash=entry["allow_wash"],
                )
                n += 1
    return n


def _replay_import_file(
    target: LedgerStore, hh: str, entry: dict, homes: dict[str, str], files: dict, places: list
) -> None:
    from .files import read_lots
    from .importer import household_lots_of, import_rows

    src = entry["import_file"]
    lots = files.get(src["sha256"])
    if lots is None:
        lots = files[src["sha256"]] = read_lots(arc.find_import_file(src["path"], src["sha256"], places))
    rows = import_rows(target, household_lots_of(lots, [a for a, h in homes.items() if h == hh]))
    target.write_import(
        hh,
        rows,
        remove=[(key, lid) for key, lid in entry.get("removed") or []],
        replace=list(entry.get("replace") or []),
        source={"path": src["path"], "sha256": src["sha256"]},
    )
    _, fields = target.r.xrevrange(target.k.journal(hh), count=1)[0]
    got = json.loads(fields[b"entry"])["import_file"]
    if (got["lots"], got["digest"]) != (src["lots"], src["digest"]):
        raise LedgerError(
            f"journal of {hh}: the import of {src['path']} replays as {got['lots']} lots (digest "
            f"{got['digest'][:12]}), not the {src['lots']} it wrote ({src['digest'][:12]})"
        )


def rebuild_from_export(
    target: LedgerStore,
    export_dir: Path | str,
    archive: Path | str | None = None,
    places: Sequence[Path | str] = (),
) -> int:
    """Replay an exported ledger (``importer.export``: accounts.parquet and journal.parquet, the
    journal still in Redis then) after the archive's entries into ``target``, an empty ledger;
    an entry in both (exported while a compaction ran) is replayed once. Returns commits replayed."""
    from .files import read_accounts

    export_dir = Path(export_dir)
    path = export_dir / "journal.parquet"
    if not arc.valid(path):
        raise LedgerError(f"{path} is missing or does not match its checksum {arc.checksum_path(path).name}")
    infos = read_accounts(export_dir / "accounts.parquet")
    homes = {a.account: a.household for a in infos}
    merged: dict[str, dict[str, arc.JournalEntry]] = {}
    for hh, entries in arc.archived_journal(archive).items():
        merged[hh] = {e.id: e for e in entries}
    for hh, entries in arc.journal_of(path).items():
        merged.setdefault(hh, {}).update({e.id: e for e in entries})
    journals = {
        hh: [
            {"id": e.id, "key": e.key, "account": e.account, "date": e.date, "entry": json.loads(e.entry)}
            for e in sorted(by_id.values(), key=lambda e: e.order)
        ]
        for hh, by_id in sorted(merged.items())
    }
    journaled = {e["account"] for entries in journals.values() for e in entries if "account" in e["entry"]}
    legacy = [a for a in infos if a.account not in journaled]  # as exported: their records were never journaled
    return replay(target, journals, homes, legacy, [archive, export_dir, *places])


def _sale_number(sale) -> int:
    return int(sale.sale_id.rsplit(":", 1)[1])


__all__ = ["Journal", "rebuild_from_export", "replay"]
