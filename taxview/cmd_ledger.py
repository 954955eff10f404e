"""``taxview washsale`` and ``taxview ledger``: the wash-sale report and the Redis ledger (import,
export, show, the corporate actions split and rename, close-year: the households'
carry-forward rolled at year end, and compact: history archived per the retention policy)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _parse_identical(text: str | None) -> dict[str, str]:
    """``GOOG=GOOGL,BRK.A=BRK.B``: each group of substantially identical symbols shares a key."""
    out: dict[str, str] = {}
    for group in filter(None, (text or "").split(",")):
        names = [x.strip() for x in group.split("=") if x.strip()]
        for name in names:
            out[name] = names[0]
    return out


def _cmd_washsale(args: argparse.Namespace) -> int:
    import gc

    from ledger.batch import run
    from ledger.trades import read_trades_table, report_json, report_table, trades_of

    gc.disable()  # ~10^5 acyclic records: the cycle collector would only cost time (about 20%)
    table, identical = read_trades_table(args.trades), _parse_identical(args.identical)
    if args.json:  # households in parallel on big files (the same text as one process)
        workers = args.workers or (min(os.cpu_count() or 1, 8) if table.num_rows >= 20_000 else 1)
        sys.stdout.write(report_json(table, identical, workers) + "\n")
    else:
        print(report_table(run(trades_of(table), identical)))
    return 0


class _Ledger:
    """The ledger for one CLI command: a URL, or the private redis-server of the working directory
    (started, or the one another taxview command runs there; see ledger/server.py). ``settings``:
    how the rest of the command (the coordinator, each worker) reaches the same ledger."""

    def __init__(self, args: argparse.Namespace) -> None:
        from redis.cluster import RedisCluster

        from ledger.connection import LedgerSettings, reach
        from ledger.server import PrivateLedger
        from ledger.store import LedgerStore

        url, self.private = _ledger_url(args), None
        if url:
            self.client = reach(url)
        else:
            sub = getattr(args, "ledger_cmd", None) or getattr(args, "accounts_cmd", None)
            command = " ".join(["taxview", args.command, *([sub] if sub else [])])
            self.private = PrivateLedger(Path(args.workdir) / "redis", args.appendfsync, command).open()
            url = self.private.url
            self.client = reach(url)
        identical = _parse_identical(getattr(args, "identical", None))
        self.settings = LedgerSettings(
            url,
            identical=tuple(sorted(identical.items())),
            retry_s=getattr(args, "redis_retry_s", 60.0),
            cluster=isinstance(self.client, RedisCluster),  # asked once here (reach): workers do not ask again
        )
        self.store = LedgerStore(self.client, identical=identical)

    def __enter__(self):
        return self.store

    def __exit__(self, *exc) -> None:
        self.client.close()
        if self.private is not None:
            self.private.close()


def _cmd_ledger_import(args: argparse.Namespace) -> int:
    from ledger.files import read_accounts, read_lots
    from ledger.importer import import_ledger, import_source
    from taxview.core.errors import InputError

    if args.journal:
        if args.accounts or args.lots or args.replace_account:
            raise InputError(
                "journal", "--journal rebuilds a ledger from an export: no --accounts, --lots or --replace"
            )
        return _rebuild(args)
    t0 = time.perf_counter()
    universe = None
    if args.market:
        from solver.market import read_market

        universe = set(read_market(args.market).symbols)
    accounts = read_accounts(args.accounts) if args.accounts else []
    as_of = _date(args.as_of) if args.as_of else None
    source = None
    if args.lots:  # the journal names the file and its checksum instead of copying every lot
        try:
            source = import_source(args.lots)
        except OSError as exc:
            raise InputError("lots", f"cannot read {args.lots}: {exc.strerror}") from None
    lots = read_lots(args.lots, as_of=as_of, universe=universe) if args.lots else None
    if source is not None and import_source(args.lots) != source:
        raise InputError("lots", f"{args.lots} changed while it was read: import it again")
    if lots is not None and universe is None:
        print(
            "taxview: note: symbols not checked against a universe (pass --market DIR to refuse unknown ones)",
            file=sys.stderr,
        )
    with _Ledger(args) as store:
        n_accounts, n = import_ledger(
            store, accounts, lots, replace=args.replace_account, progress=not args.quiet, source=source
        )
    print(f"imported {n_accounts} accounts and {n} lots in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    """``ledger import --journal EXPORT [--archive DIR]``: an empty ledger replayed from an export's
    journal after the archive's, then checked against the export's lots."""
    import pyarrow.parquet as pq

    from ledger.errors import LedgerError
    from ledger.importer import lots_export
    from ledger.journal import rebuild_from_export
    from taxview.core.errors import InputError

    t0 = time.perf_counter()
    export_dir = Path(args.journal)
    for name in ("accounts.parquet", "lots.parquet", "journal.parquet"):
        if not (export_dir / name).is_file():
            raise InputError("journal", f"{export_dir} has no {name}: give the directory of a taxview ledger export")
    if args.archive and not Path(args.archive).is_dir():
        raise InputError("archive", f"{args.archive} is not a directory")
    with _Ledger(args) as store:
        if store.accounts():
            raise InputError("journal", "the ledger is not empty: a journal is replayed into an empty ledger only")
        n = rebuild_from_export(store, export_dir, args.archive)
        households = sorted(set(store.accounts().values()))
        got = lots_export(store, households).to_pylist()
    want = pq.read_table(export_dir / "lots.parquet").to_pylist()
    if got != want:
        raise LedgerError(
            f"the rebuilt ledger's lots differ from {export_dir / 'lots.parquet'} ({len(got)} lots against "
            f"{len(want)}): an archive file or an import file is missing"
        )
    print(
        f"rebuilt {len(households)} households from {export_dir} and {args.archive or 'no archive'}: {n} commits "
        f"replayed, {len(got)} lots as exported ({time.perf_counter() - t0:.1f}s)",
        file=sys.stderr,
    )
    return 0


def _cmd_ledger_compact(args: argparse.Namespace) -> int:
    """``ledger compact --before DATE``: the history before DATE archived to Parquet and trimmed
    from Redis (``ledger.compaction``); exit 1 when a household failed (run it again)."""
    from cluster.settings import read_retention

    before = _date(args.before)
    policy = read_retention(args.firm, Path(args.workdir) / "archive")
    archive = args.archive or policy.archive_dir
    log = (lambda line: None) if args.quiet else (lambda line: print(f"taxview: {line}", file=sys.stderr))
    with _Ledger(args) as store:
        report = store.compact(before, archive, progress=not args.quiet, log=log)
    if args.json:
        doc = {
            "before": report.before.isoformat(),
            "file": report.file,
            "sha256": report.sha256,
            "archived": report.archived,
            "trimmed": report.trimmed,
            "households": report.households,
            "resumed": report.resumed,
            "failed": report.failed,
            "seconds": round(report.seconds, 3),
        }
        json.dump(doc, sys.stdout, indent=1)
        print()
    else:
        print(report.summary())
    for hh, why in sorted(report.failed.items()):
        print(f"taxview: household {hh} was not trimmed: {why} (run the command again)", file=sys.stderr)
    return 1 if report.failed else 0


def _cmd_ledger_export(args: argparse.Namespace) -> int:
    from ledger.importer import export

    with _Ledger(args) as store:
        a, b = export(store, args.out)
    print(f"wrote {a}, {b} and {a.parent / 'journal.parquet'}", file=sys.stderr)
    return 0


def _cmd_ledger_show(args: argparse.Namespace) -> int:
    from ledger.trades import money

    with _Ledger(args) as store:
        info = store.account(args.account)
        lots = store.lots(args.account)
        restr = store.restrictions(info.household, _date(args.date))[args.account] if args.date else None
    if args.json:
        json.dump(
            {
                "account": info.account,
                "household": info.household,
                "type": info.account_type,
                "cash": money(info.cash_cents),
                "lots": [
                    {
                        "lot_id": x.lot_id,
                        "symbol": x.symbol,
                        "quantity": str(x.quantity),
                        "basis": money(x.basis_cents),
                        "acquired": x.acquired.isoformat(),
                        "holding_start": x.holding_start.isoformat(),
                    }
                    for x in lots
                ],
                "restrictions": None
                if restr is None
                else {"no_buy": sorted(restr.no_buy), "no_loss_sale": sorted(restr.no_loss_sale)},
            },
            sys.stdout,
            indent=1,
        )
        print()
        return 0
    print(f"account {info.account} ({info.account_type}) in household {info.household}; cash {money(info.cash_cents)}")
    print(f"{'lot':<20} {'symbol':<8} {'quantity':>12} {'basis':>14} {'acquired':<10} holding_start")
    for x in lots:
        basis = money(x.basis_cents)
        print(f"{x.lot_id:<20} {x.symbol:<8} {x.quantity!s:>12} {basis:>14} {x.acquired} {x.holding_start}")
    if restr is not None:
        print(
            f"may not buy: {sorted(restr.no_buy) or '-'}; may not sell at a loss: {sorted(restr.no_loss_sale) or '-'}"
        )
    return 0


def _cmd_ledger_action(args: argparse.Namespace) -> int:
    """``ledger split`` and ``ledger rename``: checked against every household first (exit 2,
    nothing written), then applied household by household; a household that failed is named and
    the command exits 1 (run it again: the households that have it replay)."""
    from ledger.corporate import rename_action, split_action

    date = _date(args.date)
    if args.ledger_cmd == "split":
        action = split_action(args.symbol, args.ratio, date, args.id)
    else:
        action = rename_action(args.old, args.new, date, args.id)
    with _Ledger(args) as store:
        report = store.apply_action(action)
    print(report.summary())
    if not (report.households or report.replayed or report.failed):
        print(f"taxview: note: no household holds {action.symbol}: nothing to do, nothing written", file=sys.stderr)
    for hh, why in sorted(report.failed.items()):
        print(f"taxview: household {hh} failed: {why} (run the command again to finish)", file=sys.stderr)
    return 1 if report.failed else 0


def _cmd_ledger_close_year(args: argparse.Namespace) -> int:
    """``ledger close-year YEAR``: roll YEAR in every household (``ledger.yearend``): each
    household's realized ST/LT of the year and its carry in, netted; the carry into YEAR+1 stored,
    journaled. Run again it changes nothing (or restates what changed since). A household that
    failed is named and the command exits 1; a year not over yet exits 2."""
    import datetime as dt

    from ledger.yearend import close_years
    from taxview.core.errors import InputError

    from .cmd_accounts import _actor, _now

    if args.year >= dt.date.today().year:
        raise InputError("year", f"tax year {args.year} is not over yet (close a year from January 1 after it)")
    with _Ledger(args) as store:
        report = close_years(store, args.year, _actor(args), _now())
    if args.json:
        doc = {
            "year": report.year,
            "counts": report.counts(),
            "households": [
                {
                    "household": r.household,
                    "year": r.year,
                    "status": r.status,
                    "roll": roll_dollars(r.roll),
                    **({"old": roll_dollars(r.old)} if r.old is not None else {}),
                }
                for r in report.results
            ],
            "failed": report.failed,
        }
        json.dump(doc, sys.stdout, indent=1)
        print()
    else:
        for r in report.results:
            if r.status in ("rolled", "restated"):
                print(f"{r.household} {r.year} {r.status}: {roll_line(r.roll)}")
        print(report.summary())
    for hh, why in sorted(report.failed.items()):
        print(f"taxview: household {hh} failed: {why}", file=sys.stderr)
    return 1 if report.failed else 0


def roll_dollars(roll) -> dict | None:
    """A year's roll (``ledger.yearend.Roll``) in exact dollar strings, for --json."""
    from ledger.trades import money

    if roll is None:
        return None
    return {
        "year": roll.year,
        "realized": {"st": money(roll.st_cents), "lt": money(roll.lt_cents)},
        "carry_in": {"st": money(roll.carry_in_st), "lt": money(roll.carry_in_lt), "opening": roll.opening},
        "net": {"st": money(roll.net_st), "lt": money(roll.net_lt)},
        "deduction": money(roll.deduction_cents),
        "carry_out": {"st": money(roll.carry_st), "lt": money(roll.carry_lt)},
        "cap": money(roll.cap_cents),
    }


def roll_line(roll) -> str:
    """One line of a year's roll: what went in, the deduction, what carries into the next year."""
    from ledger.trades import money

    opening = " (opening)" if roll.opening else ""
    return (
        f"realized ST {money(roll.st_cents)} LT {money(roll.lt_cents)}; carry in ST {money(roll.carry_in_st)} "
        f"LT {money(roll.carry_in_lt)}{opening}; deduction {money(roll.deduction_cents)}; "
        f"carry into {roll.year + 1} ST {money(roll.carry_st)} LT {money(roll.carry_lt)}"
    )


def _date(text: str):
    import datetime as dt

    from taxview.core.errors import InputError

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError("date", f"{text!r} is not an ISO date (YYYY-MM-DD)") from None


def _ledger_url(args: argparse.Namespace) -> str | None:
    """--redis, else the first line of --redis-url-file, else $TAXVIEW_REDIS_URL; None: private."""
    if getattr(args, "redis", None):
        return args.redis
    path = getattr(args, "redis_url_file", None)
    if path:
        from taxview.core.errors import InputError

        try:
            lines = Path(path).read_text().split()
        except OSError as exc:
            raise InputError("redis-url-file", f"cannot read {path}: {exc.strerror}") from None
        if not lines:
            raise InputError("redis-url-file", f"{path} is empty")
        return lines[0]
    return os.environ.get("TAXVIEW_REDIS_URL") or None
