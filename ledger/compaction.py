"""Compaction (a mixin of ``LedgerStore``): history older than the retention policy moves from
Redis into the archive (``ledger.archive``), household by household, without loss.

1. The compaction is recorded in Redis (``Keys.compaction``: its file, archive and date) before
   anything is written, so an interrupted one is found and finished by the next.
2. Every household is read and cut (``ledger.retention``: what the wash-sale engine, the journal
   replay and the year-end roll no longer need from Redis); the cuts stream into one new Parquet
   file, which is fsynced, renamed and checksummed before anything is trimmed. Import files named
   by archived journal entries are copied under the archive's ``imports/``.
3. The file is read back and each household's rows are trimmed by one script (``lua/compact.lua``:
   checked against the archived copies first, then written); the record of step 1 is cleared
   when every household is done.

Run again (or after an interruption) it archives nothing twice: rows of a finished file are gone
from Redis; an unfinished compaction is finished from its file first (rows trimmed already are
skipped), and a file that never got its checksum is written again from Redis.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from . import archive as arc
from .errors import LedgerError
from .keys import Keys
from .retention import Cut, JournalEntry, cut_household, replacement_lots, sale_candidates, stream_order

if TYPE_CHECKING:
    import redis
    from redis.commands.core import Script

CHUNK = 100  # households per pipelined read


@dataclass
class CompactReport:
    """What one compaction did: its date, its file (None: nothing to archive), rows archived and
    trimmed by kind, households trimmed and those that failed (household -> why)."""

    before: dt.date
    file: str | None = None
    sha256: str | None = None
    households: int = 0
    archived: dict[str, int] = field(default_factory=lambda: {"journal": 0, "idempotency": 0, "sale": 0})
    trimmed: dict[str, int] = field(default_factory=lambda: {"journal": 0, "idempotency": 0, "sale": 0})
    resumed: str | None = None  # an interrupted compaction's file finished first
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        a, t = self.archived, self.trimmed
        where = f" into {self.file}" if self.file else " (nothing to archive)"
        return (
            f"compacted before {self.before}{where}: {a['journal']} journal entries, {a['idempotency']} "
            f"idempotency records, {a['sale']} sales archived; {t['journal']}, {t['idempotency']}, {t['sale']} "
            f"trimmed from Redis in {self.households} households, {len(self.failed)} failed "
            f"({self.seconds:.1f}s)" + (f"; finished the interrupted {self.resumed} first" if self.resumed else "")
        )


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class Compaction:
    """``LedgerStore``'s compaction, on its client, key names and ``lua/compact.lua``."""

    r: redis.Redis
    k: Keys
    _compact: Script

    def compact(
        self,
        before: dt.date,
        archive: Path | str,
        progress: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> CompactReport:
        """Archive and trim every household's history before ``before`` (see the module)."""
        t0 = time.perf_counter()
        archive = Path(archive).resolve()  # made when there is something to archive
        say = log or (lambda line: None)
        report = CompactReport(before)
        raw = self.r.get(self.k.compaction())
        if raw is not None:  # an interrupted compaction: finish it first, from its file if complete
            open_ = json.loads(raw)
            if open_["archive"] != str(archive):
                raise LedgerError(
                    f"a compaction into {open_['archive']} was interrupted: finish it with --archive {open_['archive']}"
                )
            path = archive / open_["file"]
            if arc.valid(path):
                say(f"finishing the interrupted compaction of {open_['file']}")
                report.resumed = open_["file"]
                failed = self._trim_file(path, dt.date.fromisoformat(open_["before"]), report, progress)
                if failed:
                    report.seconds = time.perf_counter() - t0
                    return report
            else:  # it never finished writing: nothing was trimmed, write it again from Redis
                for p in (path, arc.checksum_path(path), path.with_name(f".{path.name}.partial")):
                    p.unlink(missing_ok=True)
            self.r.delete(self.k.compaction())
        writer: arc.ArchiveWriter | None = None
        try:
            households = self.households()
            bar = tqdm(households, unit="hh", desc=f"archive before {before}", file=sys.stderr, disable=not progress)
            for i in range(0, len(households), CHUNK):
                for cut in self._cuts(households[i : i + CHUNK], before, archive, say):
                    if not len(cut):
                        continue
                    if writer is None:  # the first rows: record the compaction, then open its file
                        archive.mkdir(parents=True, exist_ok=True)
                        name = arc.next_name(archive, before.isoformat())
                        record = json.dumps({"file": name, "archive": str(archive), "before": before.isoformat()})
                        if not self.r.set(self.k.compaction(), record, nx=True):
                            raise LedgerError("another compaction started meanwhile: one at a time")
                        writer = arc.ArchiveWriter(archive / name)
                    report.archived["journal"] += len(cut.journal)
                    report.archived["idempotency"] += len(cut.idempotency)
                    report.archived["sale"] += len(cut.sales)
                    writer.add(cut)
                bar.update(len(households[i : i + CHUNK]))
            bar.close()
        except BaseException:
            if writer is not None:
                writer.abort()
                self.r.delete(self.k.compaction())
            raise
        if writer is None:
            report.seconds = time.perf_counter() - t0
            return report
        path = writer.path
        report.sha256 = writer.close()
        report.file = str(path)
        say(f"archived {writer.rows} rows into {path} (sha256 {report.sha256[:16]}...); trimming Redis")
        self._trim_file(path, before, report, progress)
        report.seconds = time.perf_counter() - t0
        return report

    def _cuts(self, households: list[str], before: dt.date, archive: Path, say: Callable[[str], None]) -> list[Cut]:
        k = self.k
        pipe = self.r.pipeline(transaction=False)
        for hh in households:
            pipe.xrange(k.journal(hh))
            pipe.hgetall(k.idempotency(hh))
            pipe.hgetall(k.sales(hh))
            pipe.smembers(k.pending(hh))
        replies = pipe.execute()
        out = []
        for j, hh in enumerate(households):
            stream, idem, sales, pending = replies[4 * j : 4 * j + 4]
            journal = []
            for entry_id, fields in stream:
                f = {a.decode(): b.decode() for a, b in fields.items()}
                journal.append(JournalEntry(entry_id.decode(), f["key"], f["account"], f["date"], f["entry"]))
            idem = {a.decode(): b.decode() for a, b in idem.items()}
            sales = {a.decode(): b.decode() for a, b in sales.items()}
            pending = {x.decode() for x in pending}
            wanted = replacement_lots(sale_candidates(sales, pending, before).values())
            held = self._open_lot_ids(hh) & wanted if wanted else set()
            cut = cut_household(hh, journal, idem, sales, pending, held, before)
            for e in cut.journal:  # an import named by its file: keep a copy of the file with the archive
                source = json.loads(e.entry).get("import_file")
                if source:
                    try:
                        arc.keep_import_file(archive, Path(source["path"]), source["sha256"])
                    except (OSError, LedgerError) as exc:
                        say(f"warning: household {hh}: the import file {source['path']} was not copied ({exc})")
            out.append(cut)
        return out

    def _open_lot_ids(self, household: str) -> set[str]:
        groups = sorted(x.decode() for x in self.r.smembers(self.k.groups(household)))
        pipe = self.r.pipeline(transaction=False)
        for g in groups:
            pipe.hkeys(self.k.lots(household, g))
        return {x.decode() for ids in pipe.execute() for x in ids}

    def _trim_file(self, path: Path, before: dt.date, report: CompactReport, progress: bool) -> dict[str, str]:
        """Trim every household of an archive file (rows already gone are skipped); the compaction's
        record is cleared when all succeeded. Returns the households that failed."""
        k = self.k
        failed: dict[str, str] = {}
        pieces = list(arc.iter_households(path))
        bar = tqdm(total=len(pieces), unit="hh", desc="trim", file=sys.stderr, disable=not progress)
        for hh, rows in pieces:
            t = rows.to_pydict()
            journal = [i for i, kind in zip(t["id"], t["kind"]) if kind == "journal"]
            last = max(journal, key=stream_order) if journal else ""
            idem = [[i, _sha1(v)] for kind, i, v in zip(t["kind"], t["id"], t["value"]) if kind == "idempotency"]
            sales = [[i, _sha1(v)] for kind, i, v in zip(t["kind"], t["id"], t["value"]) if kind == "sale"]
            reply = self._compact(
                keys=[k.meta(hh), k.journal(hh), k.idempotency(hh), k.sales(hh), k.pending(hh)],
                args=[before.toordinal(), json.dumps({"journal": last, "idem": idem, "sales": sales})],
            )
            if reply[0] == b"OK":
                report.households += 1
                for kind, n in zip(("journal", "idempotency", "sale"), reply[1:]):
                    report.trimmed[kind] += int(n)
            else:
                failed[hh] = reply[2].decode()
            bar.update(1)
        bar.close()
        report.failed.update(failed)
        if not failed:
            self.r.delete(k.compaction())
        return failed


__all__ = ["CompactReport", "Compaction"]
