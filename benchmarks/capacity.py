"""How big a Redis and how many nodes does a firm need? (issue 16)

A small synthetic firm (domain.md §8's shape) is loaded into a private redis-server and rebalanced
for a few consecutive nights on a local Ray, in one run. Measured:

* bytes per lot: the ledger's ``used_memory`` after the import over the empty server's, per open
  lot; and ``MEMORY USAGE`` of every key (SCAN), summed by kind (lot hashes, the lot-id registry,
  journal, idempotency records, sales, windows, accounts, ...) so the lots' own share is apart
  from the import's journal copy;
* bytes per account-night: the growth of ``used_memory`` per account over each night after the
  first (the first night rebuilds every account; later nights are the steady state), with the same
  breakdown by kind;
* accounts/s per core: each night's accounts/s over the cores the workers had; Redis CPU ms per
  account (``INFO cpu``);
* the extrapolation to ``--target-accounts`` × ``--target-lots`` lots for a ``--window-h`` night:
  Redis memory (lots + the journal of ``--retained-nights`` nights), Redis shards (``--shard-gb``
  of data per master, and Redis CPU within ``--redis-cpu-share`` of the window per master), and
  worker cores and nodes (``--cores-per-node``), each with the assumptions written into the JSON.

    python benchmarks/capacity.py [--accounts 200] [--nights 2] [--workers 2] [--json FILE]
    python benchmarks/capacity.py --from-json FILE [--target-accounts N ...]   # the extrapolation again
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _common import emit  # benchmarks/ is on sys.path when a script here runs

from cluster.coordinator import rebalance
from cluster.settings import RunSettings
from ledger.connection import LedgerSettings
from ledger.importer import import_lots
from ledger.server import RedisServer
from ledger.store import LedgerStore
from solver.market import synthesize, write_market
from taxview.demo import synth_firm

KINDS = (
    *("lots", "ids", "made", "journal", "idem", "sales", "pending"),
    *("win", "acct", "members", "groups", "hh", "actions"),
)


def kind_of(key: str) -> str:
    """``tv:lots:{hh:H}:XYZ`` → ``lots``; a global key (``tv:accounts``, the run lease) by its name."""
    part = key.split(":")[1] if key.count(":") else key
    return part if part in KINDS else f"global:{part}"


def memory_by_kind(client) -> dict[str, int]:
    """``MEMORY USAGE`` (all samples) of every key, summed by kind."""
    out: dict[str, int] = defaultdict(int)
    pipe, batch = client.pipeline(transaction=False), []
    for key in client.scan_iter(count=1000):
        batch.append(key.decode())
        pipe.memory_usage(key, samples=0)
        if len(batch) == 1000:
            for k, n in zip(batch, pipe.execute()):
                out[kind_of(k)] += n or 0
            batch = []
    for k, n in zip(batch, pipe.execute()):
        out[kind_of(k)] += n or 0
    return dict(sorted(out.items()))


def used(client) -> int:
    return int(client.info("memory")["used_memory"])


def cpu_s(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--nights", type=int, default=2, help="consecutive nights (the first is the firm's first)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--factors", type=int, default=20)
    ap.add_argument("--target-accounts", type=int, default=100_000)
    ap.add_argument("--target-lots", type=int, default=2_500, help="open lots per account at the target")
    ap.add_argument("--window-h", type=float, default=2.0)
    ap.add_argument("--retained-nights", type=int, default=30, help="nights of journal kept in Redis")
    ap.add_argument("--shard-gb", type=float, default=25.0, help="ledger data per Redis master")
    ap.add_argument("--redis-cpu-share", type=float, default=0.5, help="of the window, per master")
    ap.add_argument("--cores-per-node", type=int, default=16)
    ap.add_argument("--json")
    ap.add_argument("--from-json", help="recompute the extrapolation from this earlier run's JSON (no run)")
    args = ap.parse_args()
    if args.from_json:
        emit(again(args.from_json, args), args.json)
        return
    if args.nights < 2:
        ap.error("--nights must be at least 2: the first night is not the steady state")

    out: dict = {"benchmark": "capacity", "machine": {"cpus": os.cpu_count()}, "workers": args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        market = synthesize(names=args.names, days=1260 + args.nights - 1, factors=args.factors, seed=7)
        write_market(market, tmp / "market")
        t = 1260 - 1
        infos, lots = synth_firm(market, t, args.accounts, seed=7)
        with RedisServer(tmp / "redis") as server:
            client = server.client()
            empty = used(client)
            store = LedgerStore(client)
            t0 = time.perf_counter()
            store.add_accounts(infos)
            import_lots(store, lots)
            imported = used(client)
            by_kind = memory_by_kind(client)
            lots_held = sum(1 for a in infos for _ in store.lots(a.account))
            out["firm"] = {
                "accounts": len(infos),
                "households": len({a.household for a in infos}),
                "lots": lots_held,
                "lots_per_account": round(lots_held / len(infos), 1),
                "import_s": round(time.perf_counter() - t0, 1),
            }
            out["after_import"] = {
                "used_memory_bytes": imported - empty,
                "bytes_per_lot": round((imported - empty) / lots_held, 1),
                "memory_usage_by_kind": by_kind,
                "bytes_per_lot_lots_and_ids": round((by_kind.get("lots", 0) + by_kind.get("ids", 0)) / lots_held, 1),
                "bytes_per_lot_import_journal": round(by_kind.get("journal", 0) / lots_held, 1),
            }
            print(json.dumps(out["firm"] | out["after_import"]), flush=True)
            nights = []
            before, before_kind = imported, by_kind
            for k in range(args.nights):
                c0 = cpu_s(client)
                run = RunSettings(
                    str(market.dates[t + k]),
                    tmp / "market",
                    tmp / f"out-{k}",
                    workers=args.workers,
                    quiet=True,
                    factors=args.factors,
                )
                s = rebalance(run, LedgerSettings(server.url))
                after, after_kind = used(client), memory_by_kind(client)
                lots_now = sum(1 for a in infos for _ in store.lots(a.account))
                night = {
                    "date": s.date,
                    "ok": s.ok,
                    "failed": s.failed,
                    "trades": s.trades,
                    "accounts_per_s": s.accounts_per_s,
                    "accounts_per_s_per_core": round(s.accounts_per_s / args.workers, 2),
                    "worker_ms_per_account": {
                        x.removesuffix("_s"): round(1e3 * v / s.accounts, 1) for x, v in s.worker_stages.items()
                    },
                    "redis_cpu_ms_per_account": round(1e3 * (cpu_s(client) - c0) / s.accounts, 2),
                    "open_lots": lots_now,
                    "used_memory_bytes": after - empty,
                    "bytes_per_account_night": round((after - before) / s.accounts),
                    "growth_by_kind_per_account": {
                        x: round((after_kind.get(x, 0) - before_kind.get(x, 0)) / s.accounts)
                        for x in sorted(set(after_kind) | set(before_kind))
                        if after_kind.get(x, 0) != before_kind.get(x, 0)
                    },
                    "bytes_per_open_lot": round((after - empty) / lots_now, 1),
                }
                nights.append(night)
                before, before_kind = after, after_kind
                print(json.dumps(night), flush=True)
            client.close()
    out["nights"] = nights
    out["extrapolation"] = extrapolate(args, out["after_import"], nights, out["firm"]["lots_per_account"])
    emit(out, args.json)


def extrapolate(args, imported: dict, nights: list[dict], lots_per_account: float) -> dict:
    """The target firm from the measured nights (the first: the firm's rebuild, once; the others:
    the steady state), assumptions stated. Memory with a retention policy keeping
    ``--retained-nights`` of journal, idempotency records and sales, and without one after a year."""
    first, steady = nights[0], nights[1:]
    per_lot = imported["bytes_per_lot_lots_and_ids"]  # lot hashes + the lot-id registry
    per_lot_journal = imported["bytes_per_lot_import_journal"]  # the import's journal copy of the lots
    per_night = max(n["bytes_per_account_night"] for n in steady)
    rate_core = min(n["accounts_per_s_per_core"] for n in steady)
    redis_ms = max(n["redis_cpu_ms_per_account"] for n in steady)
    scale = args.target_lots / lots_per_account  # ledger read, commit, Redis CPU grow with the lots
    n, lots, window_s = args.target_accounts, args.target_accounts * args.target_lots, args.window_h * 3600
    gb = {
        "lots_and_ids": lots * per_lot / 1e9,
        "import_journal_copy": lots * per_lot_journal / 1e9,
        "first_night_once": n * first["bytes_per_account_night"] * scale / 1e9,
        "per_night": n * per_night * scale / 1e9,
    }
    retained = gb["lots_and_ids"] + args.retained_nights * gb["per_night"]
    a_year = sum(gb[k] for k in ("lots_and_ids", "import_journal_copy", "first_night_once")) + 252 * gb["per_night"]
    redis_cpu_s = n * redis_ms * scale / 1e3
    masters_cpu = math.ceil(redis_cpu_s / (window_s * args.redis_cpu_share))
    masters = max(math.ceil(retained / args.shard_gb), masters_cpu)

    def cores(rate: float, lot_scaled: bool) -> int:
        return math.ceil(n * (scale if lot_scaled else 1.0) / (window_s * rate))

    worker_cores = {
        "steady_night": cores(rate_core, False),
        "steady_night_work_scaled_by_lots": cores(rate_core, True),
        "first_night": cores(first["accounts_per_s_per_core"], True),
    }
    return {
        "target": {"accounts": n, "lots_per_account": args.target_lots, "lots": lots, "window_h": args.window_h},
        "assumptions": [
            f"{per_lot:.0f} B per open lot (lot hashes and the lot-id registry, after the import), "
            f"{per_lot_journal:.0f} B more per lot for the import's journal copy until retention replaces it",
            f"{per_night:,} B per account-night at steady state and {first['bytes_per_account_night']:,} B on the "
            f"firm's first night (idempotency records, journal, sales), both ×{scale:.2f} for "
            f"{args.target_lots} lots per account against {lots_per_account:.0f} measured",
            f"retention keeps {args.retained_nights} nights in Redis (without it: 252 nights a year, the import's "
            "journal copy and the first night stay)",
            f"Redis CPU {redis_ms} ms per account as measured ×{scale:.2f}, one master busy at most "
            f"{args.redis_cpu_share:.0%} of the window; ≤ {args.shard_gb:g} GB of ledger data per master (room to "
            "fork for AOF rewrites on a 64 GB host); one replica per master",
            f"accounts/s per core as the slowest steady night on this machine ({rate_core}; the first night "
            f"{first['accounts_per_s_per_core']}), one worker per core, {args.cores_per_node} cores per Ray node",
        ],
        "redis_gb": {k: round(v, 1) for k, v in gb.items()},
        "redis_gb_with_retention": round(retained, 1),
        "redis_gb_after_a_year_without_retention": round(a_year, 1),
        "redis_cpu_s_per_night": round(redis_cpu_s),
        "redis_masters": masters,
        "redis_masters_for_cpu": masters_cpu,
        "redis_nodes_with_replicas": 2 * masters,
        "redis_masters_a_year_without_retention": math.ceil(a_year / args.shard_gb),
        "worker_cores": worker_cores,
        "ray_worker_nodes": {k: math.ceil(v / args.cores_per_node) for k, v in worker_cores.items()},
    }


def again(path: str, args) -> dict:
    """The extrapolation recomputed from a run's JSON (other targets or assumptions, no new run)."""
    doc = json.loads(Path(path).read_text())
    doc["extrapolation"] = extrapolate(args, doc["after_import"], doc["nights"], doc["firm"]["lots_per_account"])
    return doc


if __name__ == "__main__":
    main()
