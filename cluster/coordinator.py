"""The nightly rebalance coordinator: the only module that touches Ray.

Reads the accounts from the ledger, cuts households into shards, puts the day's snapshot (prices,
benchmark, the risk model's B, F, D) into Ray's object store once, and feeds shards to a pool of
long-lived worker actors with back-pressure, streaming their Arrow batches into Parquet. A worker
that dies is restarted by Ray and its shard re-run; commits are idempotent by (run id, account),
so nothing is applied twice and a re-run of the same run id only finishes what is missing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import redis
from ray.exceptions import RayActorError
from tqdm import tqdm

from ledger.store import LedgerStore
from solver.market import read_market
from solver.riskmodel import read_riskmodel
from solver.snapshot import snapshot

from .errors import ClusterError
from .sharding import group_by_household, make_shards
from .worker import ACCOUNT_SCHEMA, TRADE_SCHEMA, RebalanceWorker

IN_FLIGHT_PER_WORKER = 2
MAX_SHARD_ATTEMPTS = 5


@dataclass
class RunSummary:
    run_id: str
    date: str
    accounts: int
    ok: int
    failed: int
    replayed: int
    trades: int
    wall_s: float
    accounts_per_s: float
    workers: int
    shards: int
    shard_retries: int
    stages: dict[str, float] = field(default_factory=dict)
    worker_stages: dict[str, float] = field(default_factory=dict)
    harvested_loss: str = "0"
    tax_estimate: str = "0"
    out: str = ""


def rebalance(
    date: str,
    market_dir: str | Path,
    out_dir: str | Path,
    redis_url: str,
    address: str | None = None,
    workers: int | None = None,
    run_id: str | None = None,
    quiet: bool = False,
    shard_size: int = 8,
    prefix: str = "tv",
    identical: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    factors: int = 20,
    after_shard: Callable[[int, list], None] | None = None,
) -> RunSummary:
    """Rebalance every account of the ledger on ``date``; returns the run summary.

    ``after_shard(done, actors)`` is called after each finished shard (tests use it to kill a
    worker mid-run). One account's failure is recorded with its reason and never stops the run.
    """
    t_start = time.perf_counter()
    stages: dict[str, float] = {}
    run_id = run_id or f"nightly-{date}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    market = read_market(market_dir)
    rm_dir = Path(market_dir) / "riskmodel"
    model = read_riskmodel(rm_dir, market.symbols) if rm_dir.is_dir() else None
    snap = snapshot(market, date, model=model, factors=factors)
    stages["market_s"] = time.perf_counter() - t

    t = time.perf_counter()
    store = LedgerStore(redis.Redis.from_url(redis_url), prefix, identical)
    shards = make_shards(group_by_household(store.accounts()), shard_size)
    n_accounts = sum(s.accounts for s in shards)
    if n_accounts == 0:
        raise ClusterError("the ledger has no accounts: import some first (taxview ledger import)")
    stages["ledger_accounts_s"] = time.perf_counter() - t

    t = time.perf_counter()
    started_ray = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": "ERROR",
            "log_to_driver": False,
        }
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), **kwargs)
        started_ray = True
    n_workers = workers or max(1, int(ray.available_resources().get("CPU", 1)))
    snap_ref = ray.put(snap)  # once; every worker reads the arrays zero-copy
    actor_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(RebalanceWorker)
    actors = [
        actor_cls.remote(redis_url, prefix, dict(identical or {}), dict(settings or {})) for _ in range(n_workers)
    ]
    ray.get([a.ping.remote() for a in actors])
    stages["ray_setup_s"] = time.perf_counter() - t

    t = time.perf_counter()
    trades_writer = pq.ParquetWriter(out / "trades.parquet", TRADE_SCHEMA)
    accounts_writer = pq.ParquetWriter(out / "accounts.parquet", ACCOUNT_SCHEMA)
    worker_stages = {"ledger_read_s": 0.0, "solve_s": 0.0, "commit_s": 0.0}
    counts = {"ok": 0, "failed": 0, "replayed": 0, "trades": 0}
    money = {
        "harvested": pa.scalar(0, pa.decimal128(18, 2)).as_py(),
        "tax": pa.scalar(0, pa.decimal128(18, 2)).as_py(),
    }
    output_s = 0.0
    queue = list(reversed(shards))
    in_flight: dict[Any, tuple[int, Any, int]] = {}  # ref -> (actor index, shard, attempt)
    retries = 0
    done = 0
    waited = 0.0  # time the coordinator spent waiting on workers (the rest is its own overhead)
    bar = tqdm(
        total=n_accounts,
        unit="acct",
        desc=f"rebalance {date}",
        file=sys.stderr,
        disable=quiet,
        dynamic_ncols=True,
        smoothing=0.1,
    )

    def submit(i: int, shard, attempt: int) -> None:
        in_flight[actors[i].run_shard.remote(snap_ref, run_id, shard)] = (i, shard, attempt)

    for i in range(n_workers):
        for _ in range(IN_FLIGHT_PER_WORKER):
            if queue:
                submit(i, queue.pop(), 1)
    try:
        while in_flight:
            t_wait = time.perf_counter()
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            waited += time.perf_counter() - t_wait
            ref = ready[0]
            i, shard, attempt = in_flight.pop(ref)
            try:
                result = ray.get(ref)

            except RayActorError as exc:  # the worker died (killed, OOM, node lost)
                if attempt >= MAX_SHARD_ATTEMPTS:
                    raise ClusterError(f"shard {shard.shard_id} failed {attempt} times: {exc}") from exc
                retries += 1
                submit(i, shard, attempt + 1)  # Ray restarts the actor; the re-run replays its commits
                continue
            if queue:
                submit(i, queue.pop(), 1)
            t_out = time.perf_counter()
            trades_writer.write_batch(result["trades"])
            accounts_writer.write_batch(result["accounts"])
            output_s += time.perf_counter() - t_out
            for k in worker_stages:
                worker_stages[k] += result["stages"][k]
            acc = result["accounts"].to_pydict()
            for status, h, tax in zip(acc["status"], acc["harvested_loss"], acc["tax_estimate"]):
                counts["ok" if status == "optimal" else "failed"] += 1
                money["harvested"] += h or 0
                money["tax"] += tax or 0
            counts["replayed"] += result["stages"]["replayed"]
            counts["trades"] += result["trades"].num_rows
            done += 1
            bar.update(result["accounts"].num_rows)
            bar.set_postfix(failed=counts["failed"], refresh=False)
            if after_shard is not None:
                after_shard(done, actors)
        stages["rebalance_s"] = time.perf_counter() - t
    finally:
        bar.close()
        trades_writer.close()
        accounts_writer.close()
        for a in actors:
            ray.kill(a)
        if started_ray:
            ray.shutdown()
    stages["shutdown_s"] = time.perf_counter() - t - stages["rebalance_s"]
    stages["output_s"] = output_s
    stages["coordinator_busy_s"] = stages["rebalance_s"] - waited
    wall = time.perf_counter() - t_start
    summary = RunSummary(
        run_id=run_id,
        date=str(snap.date),
        accounts=n_accounts,
        ok=counts["ok"],
        failed=counts["failed"],
        replayed=counts["replayed"],
        trades=counts["trades"],
        wall_s=round(wall, 3),
        accounts_per_s=round(n_accounts / stages["rebalance_s"], 2),
        workers=n_workers,
        shards=len(shards),
        shard_retries=retries,
        stages={k: round(v, 3) for k, v in stages.items()},
        worker_stages={k: round(v, 3) for k, v in worker_stages.items()},
        harvested_loss=str(money["harvested"]),
        tax_estimate=str(money["tax"]),
        out=str(out),
    )
    (out / "run.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return summary


def summary_table(s: RunSummary) -> str:
    rows = [
        ("run", s.run_id),
        ("date", s.date),
        ("accounts", f"{s.accounts} ({s.ok} ok, {s.failed} failed, {s.replayed} replayed)"),
        ("trades", f"{s.trades}"),
        ("harvested losses", f"${float(s.harvested_loss):,.2f}"),
        ("estimated tax", f"${float(s.tax_estimate):,.2f} (negative: a saving)"),
        (
            "wall time",
            f"{s.wall_s:.1f}s (rebalance {s.stages['rebalance_s']:.1f}s, Ray start {s.stages['ray_setup_s']:.1f}s)",
        ),
        ("throughput", f"{s.accounts_per_s:.1f} accounts/s on {s.workers} workers"),
        ("output", f"{s.out}/trades.parquet, accounts.parquet, run.json"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)
