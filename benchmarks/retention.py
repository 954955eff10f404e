"""Does the ledger stop growing with compaction? (issue 16, retention without loss)

The demo firm (``taxview.demo``: households with a taxable account, often a spouse's and an IRA,
demo mandates, ~3% of accounts with a cash flow each night) is imported into a private
redis-server from its lots file (the journal names the file) and rebalanced for N consecutive
nights on a local Ray, twice: without compaction, and with the nightly compacting per a retention
policy (``--keep-days``, default 1: the shortest, so that 20 nights reach the steady state; the
firm's default of 45 days trims nothing in the first 45 days). After each night: Redis
``used_memory`` (after the night's compaction), open lots, sales, idempotency records and journal
entries in Redis. Also: the memory of the import's journal entry as a file reference against the
verbatim copy of every lot (the entry before issue 16).

    python benchmarks/retention.py [--accounts 200] [--nights 20] [--keep-days 1] [--series off,on] [--json FILE]

Reports both series, night N against night 2 (the target: within 5% with compaction), bytes per
open lot after the last night, Redis growth per account-night with and without compaction, and
Redis memory by key kind (MEMORY USAGE summed per kind, after nights 1, 2 and the last; every
night with --breakdown-every) with its growth from night 2 to the last night.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from _common import emit  # benchmarks/ is on sys.path when a script here runs
from capacity import memory_by_kind

from cluster.coordinator import rebalance
from cluster.settings import RunSettings
from ledger.connection import LedgerSettings
from ledger.files import read_accounts, read_lots
from ledger.importer import import_lots, import_source
from ledger.retention import RetentionPolicy
from ledger.server import RedisServer
from ledger.store import LedgerStore
from solver.market import read_market, synthesize, write_market
from taxview.demo import demo_flows, demo_mandates, synth_firm

AT = "2026-01-01T00:00:00+00:00"


def counts(store: LedgerStore) -> dict[str, int]:
    """What Redis holds, summed over households: open lots, sales, idempotency records, journal
    entries, lot ids in the registry hash (given ids) and purchase slots of made ids."""
    r, k = store.r, store.k
    households = sorted(x.decode() for x in r.smembers(k.households()))
    out = dict.fromkeys(("lots", "sales", "idempotency", "journal", "lot_ids", "made_slots"), 0)
    pipe = r.pipeline(transaction=False)
    for hh in households:
        pipe.hlen(k.sales(hh))
        pipe.hlen(k.idempotency(hh))
        pipe.xlen(k.journal(hh))
        pipe.hlen(k.ids(hh))
        pipe.strlen(k.made(hh))
        pipe.smembers(k.groups(hh))
    replies = pipe.execute()
    pipe = r.pipeline(transaction=False)
    for i, hh in enumerate(households):
        s, idem, j, ids, made, groups = replies[6 * i : 6 * i + 6]
        out["sales"] += s
        out["idempotency"] += idem
        out["journal"] += j
        out["lot_ids"] += ids
        out["made_slots"] += made // 5  # 40-bit slots (lua/_ids.lua)
        for g in groups:
            pipe.hlen(k.lots(hh, g.decode()))
    out["lots"] = sum(pipe.execute())
    return out


def breakdown(store: LedgerStore) -> dict:
    """Redis memory by key kind (``capacity.memory_by_kind``: MEMORY USAGE of every key, bytes),
    and how many cash-flow bookkeeping fields (``applied:``, ``flowed:``) the account hashes hold."""
    out: dict = memory_by_kind(store.r)
    pipe = store.r.pipeline(transaction=False)
    for key in store.r.scan_iter(match=f"{store.k.p}:acct:*", count=1000):
        pipe.hkeys(key)
    fields = [x for names in pipe.execute() for x in names]
    out["acct_applied_fields"] = sum(x.startswith(b"applied:") for x in fields)
    out["acct_flowed_fields"] = sum(x.startswith(b"flowed:") for x in fields)
    return out


def write_firm(fdir: Path, market, t: int, accounts: int, seed: int) -> None:
    """accounts.parquet and lots.parquet of the demo firm, as ``taxview demo`` writes them."""
    infos, lots = synth_firm(market, t, accounts, seed)
    fdir.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "account": [a.account for a in infos],
                "household": [a.household for a in infos],
                "account_type": [a.account_type for a in infos],
                "cash": [str(a.cash_cents / 100) for a in infos],
            }
        ),
        fdir / "accounts.parquet",
    )
    acquired = pa.array([dt.date.fromordinal(x) for x in lots.column("acquired").to_pylist()], pa.date32())
    pq.write_table(lots.set_column(5, "acquired", acquired).drop_columns(["holding_start"]), fdir / "lots.parquet")


def run_series(
    tmp: Path, mdir: Path, fdir: Path, dates: list[str], policy: RetentionPolicy | None, seed: int, every: bool
) -> dict:
    """The firm imported into a fresh server, then one rebalance per date; the series of figures."""
    from taxview.core.money import value_cents

    name = "on" if policy else "off"
    market = read_market(mdir)
    nights = []
    with RedisServer(tmp / f"redis-{name}") as server:
        store = LedgerStore(server.client())
        infos = read_accounts(fdir / "accounts.parquet")
        store.add_accounts(infos)
        t0 = time.perf_counter()
        n = import_lots(store, read_lots(fdir / "lots.parquet"), source=import_source(fdir / "lots.parquet"))
        for account, changes in demo_mandates(infos, seed).items():
            store.set_mandate(account, changes, "bench", AT)
        start = {"lots_imported": n, "import_s": round(time.perf_counter() - t0, 1)}
        start.update(used_memory_bytes=int(store.r.info("memory")["used_memory"]), **counts(store))
        print(json.dumps({"series": name, "night": 0, **start}), flush=True)
        rng = np.random.default_rng(seed)
        for k, date in enumerate(dates, start=1):
            day = dt.date.fromisoformat(date)
            close = dict(zip(market.symbols, market.prices[market.day_index(date)]))

            def value_of(account: str, close: dict = close) -> int:
                held = store.lots(account)
                return store.account(account).cash_cents + sum(
                    value_cents(x.quantity, float(close[x.symbol])) for x in held if x.symbol in close
                )

            for account, cents, reason in demo_flows([a.account for a in infos], value_of, rng):
                store.add_cash_flow(account, cents, day, reason, "bench", AT)
            run = RunSettings(
                date, mdir, tmp / f"out-{name}" / date, run_id=f"bench-{date}", quiet=True, retention=policy
            )
            s = rebalance(run, LedgerSettings(server.url))
            row = {
                "night": k,
                "date": date,
                "ok": s.ok,
                "failed": s.failed,
                "trades": s.trades,
                "accounts_per_s": s.accounts_per_s,
                "compact_s": s.stages.get("compact_s"),
                "archived": (s.compacted or {}).get("archived"),
                "used_memory_bytes": int(store.r.info("memory")["used_memory"]),
                **counts(store),
            }
            if k in (1, 2) or k == len(dates) or every:
                row["breakdown"] = breakdown(store)
            nights.append(row)
            print(json.dumps({"series": name, **row}), flush=True)
        store.r.close()
    return {"start": start, "nights": nights}


def import_entry_bytes(tmp: Path, fdir: Path) -> dict:
    """Redis memory of the firm's import with its journal naming the file, and copying every lot."""
    out = {}
    for way, source in (("file_reference", True), ("verbatim_copy", False)):
        with RedisServer(tmp / f"redis-import-{way}") as server:
            store = LedgerStore(server.client())
            store.add_accounts(read_accounts(fdir / "accounts.parquet"))
            lots = read_lots(fdir / "lots.parquet")
            import_lots(store, lots, source=import_source(fdir / "lots.parquet") if source else None)
            households = sorted(x.decode() for x in store.r.smembers(store.k.households()))
            journal = sum(store.r.memory_usage(store.k.journal(hh), samples=0) or 0 for hh in households)
            out[way] = {"used_memory_bytes": int(store.r.info("memory")["used_memory"]), "journal_bytes": journal}
            store.r.close()
    out["saved_bytes"] = out["verbatim_copy"]["used_memory_bytes"] - out["file_reference"]["used_memory_bytes"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--nights", type=int, default=20)
    ap.add_argument("--keep-days", type=int, default=1, help="the policy of the compacted series (days kept)")
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--series", default="off,on", help="which series to run: off,on (default) or on")
    ap.add_argument("--breakdown-every", action="store_true", help="memory by key kind after every night")
    ap.add_argument("--json")
    args = ap.parse_args()
    out: dict = {
        "benchmark": "retention",
        "accounts": args.accounts,
        "nights": args.nights,
        "keep_days": args.keep_days,
        "names": args.names,
        "machine": {"cpus": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        market = synthesize(names=args.names, days=1260 + args.nights, factors=20, seed=args.seed)
        write_market(market, tmp / "market")
        t = 1260 - 1  # the firm's day; the nights follow it
        write_firm(tmp / "firm", market, t, args.accounts, args.seed)
        dates = [str(d) for d in market.dates[t + 1 : t + 1 + args.nights]]
        out["firm"] = {"build_s": round(time.perf_counter() - t0, 1), "first_night": dates[0], "last_night": dates[-1]}
        out["import_journal"] = import_entry_bytes(tmp, tmp / "firm")
        print(json.dumps(out["import_journal"]), flush=True)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        try:
            if "off" in args.series.split(","):
                out["off"] = run_series(tmp, tmp / "market", tmp / "firm", dates, None, args.seed, args.breakdown_every)
            policy = RetentionPolicy(args.keep_days, tmp / "archive")
            out["on"] = run_series(tmp, tmp / "market", tmp / "firm", dates, policy, args.seed, args.breakdown_every)
            files = sorted((tmp / "archive").glob("archive-*.parquet"))
            out["archive"] = {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
        finally:
            ray.shutdown()
    nights_n = args.nights
    summary = {}
    for name in ("off", "on"):
        if name not in out:
            continue
        mem = [x["used_memory_bytes"] for x in out[name]["nights"]]
        last = out[name]["nights"][-1]
        summary[name] = {
            "used_memory_bytes": mem,
            "last_over_night_2": round(mem[-1] / mem[1], 4) if nights_n >= 2 else None,
            "night_20_over_night_2": round(mem[19] / mem[1], 4) if nights_n >= 20 else None,
            "peak_after_night_2_over_night_2": round(max(mem[1:]) / mem[1], 4) if nights_n >= 2 else None,
            "bytes_per_open_lot": round(mem[-1] / last["lots"], 1),
            "breakdown_growth_bytes": {  # night 2 to the last night, by key kind
                kind: last["breakdown"].get(kind, 0) - n for kind, n in out[name]["nights"][1]["breakdown"].items()
            }
            if nights_n >= 2
            else None,
            "growth_bytes_per_account_night": round((mem[-1] - mem[1]) / (args.accounts * (nights_n - 2)), 1)
            if nights_n > 2
            else None,
        }
    target = summary["on"]["night_20_over_night_2"]
    summary["on_night_20_within_5pct_of_night_2"] = abs(target - 1) <= 0.05 if target else None
    if "off" in summary:
        summary["on_over_off_last_night"] = round(
            summary["on"]["used_memory_bytes"][-1] / summary["off"]["used_memory_bytes"][-1], 4
        )
    out["summary"] = summary
    emit(out, args.json)


if __name__ == "__main__":
    main()
