"""The nightly rebalance coordinator: the only module that touches Ray.

Reads the accounts from the ledger, cuts households into shards, puts the day's snapshot (prices,
benchmark, the risk model's B, F, D) into Ray's object store once, and feeds shards to a pool of
long-lived worker actors with back-pressure, streaming their Arrow batches into Parquet. A worker
that dies is restarted by Ray and its shard re-run; commits are idempotent by (run id, account),
so nothing is applied twice and a re-run of the same run id only finishes what is missing.

Operations: one coordinator per run id at a time (a lease in Redis; a second one waits, then
replays); outputs are written under temporary names and renamed when complete; SIGTERM/SIGINT stop
the submission of shards, the shards in flight finish (bounded) and the outputs of what was done
are written with ``interrupted``; a shard whose worker dies again and again, or that raises, fails
its accounts with the reason and the night goes on. After a complete night the ledger is compacted
per the retention policy (``RunSettings.retention``, ``compact_after_night``). A local Ray listens on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from ray.exceptions import RayActorError, RayError
from tqdm import tqdm

from ledger.api import Ledger
from ledger.connection import LedgerSettings, redact, retrying
from ledger.retention import RetentionPolicy
from ledger.store import LedgerStore
from ledger.yearend import close_years
from solver.snapshot import load_snapshot
from solver.types import AccountSettings
from taxview.core.errors import InputError
from taxview.morning import write_morning_report

from .lease import RunLease
from .night import write_night_files
from .settings import RunSettings
from .sharding import group_by_household, make_shards
from .summary import OK_STATUSES, RunSummary
from .worker import ACCOUNT_SCHEMA, ORDER_SCHEMA, TRADE_SCHEMA, RebalanceWorker

IN_FLIGHT_PER_WORKER = 2


class _Stop:
    """What SIGTERM/SIGINT asked: the first stops new shards, a second stops waiting for the rest."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.now = False

    def __call__(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            print(
                f"\ntaxview: {signal.Signals(signum).name}: no new shards; finishing those in flight and writing "
                "the outputs (again to stop now)",
                file=sys.stderr,
            )
        else:
            self.now = True


_RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def init_local_ray(num_cpus: int) -> Callable[[], None]:
    """Start a local Ray of ``num_cpus`` on 127.0.0.1 only (``_loopback_ray``), quiet (no dashboard,
    errors only, no worker logs on the driver); returns the loopback setting's undo, for after
    ``ray.shutdown()``. A start that fails shuts down what it began and undoes the setting."""
    undo = _loopback_ray()
    try:
        ray.init(
            num_cpus=num_cpus,
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            logging_level="ERROR",
            log_to_driver=False,
        )
    except BaseException:
        ray.shutdown()
        undo()
        raise
    return undo


def _loopback_ray() -> Callable[[], None]:
    """Make a local Ray listen on 127.0.0.1 only; returns the undo.

    Given ``_node_ip_address="127.0.0.1"``, Ray on Linux replaces it with the host's routable
    address (``services.resolve_ip_for_localhost``) and its gcs, raylet and workers listen on every
    interface. With Ray's ``ENABLE_RAY_CLUSTER`` off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read
    when Ray is imported, so set on the module too) the node address stays 127.0.0.1 and they bind
    to loopback (checked by tests/integration/test_operations.py).
    """
    from ray._private import ray_constants

    before = (getattr(ray_constants, "ENABLE_RAY_CLUSTER", None), os.environ.get(_RAY_CLUSTER_ENV))
    if before[0] is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ[_RAY_CLUSTER_ENV] = "0"

    def undo() -> None:
        if before[0] is not None:
            ray_constants.ENABLE_RAY_CLUSTER = before[0]
        if before[1] is None:
            os.environ.pop(_RAY_CLUSTER_ENV, None)
        else:
            os.environ[_RAY_CLUSTER_ENV] = before[1]

    return undo


def _reason(exc: BaseException) -> str:
    """One line for a shard's failure (a RayTaskError carries the worker's exception as ``cause``)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        text = f"{type(cause).__name__}: {cause}"
    else:
        lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()]
        text = lines[-1] if lines else type(exc).__name__
    return redact(text)[:300]


class _NodeWorker(RebalanceWorker):
    """The worker as a Ray actor: each shard's result says which Ray node ran it."""

    def run_shard(self, snap, run_id: str, shard) -> dict[str, Any]:
        out = super().run_shard(snap, run_id, shard)
        out["node_id"] = ray.get_runtime_context().get_node_id()
        return out


def _with_node(batch: pa.RecordBatch, node_id: str | None) -> pa.RecordBatch:
    """accounts.parquet's rows of one shard with the Ray node that ran it (``node_id``)."""
    i = batch.schema.get_field_index("node_id")
    column = pa.array([node_id] * batch.num_rows, type=pa.string())
    columns = [column if j == i else c for j, c in enumerate(batch.columns)]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _failed_rows(shard, reason: str) -> dict[str, Any]:
    rows = [RebalanceWorker._failed(a, hh, "error", reason) for hh, members in shard.households for a in members]
    return {
        "trades": pa.RecordBatch.from_pylist([], schema=TRADE_SCHEMA),
        "orders": pa.RecordBatch.from_pylist([], schema=ORDER_SCHEMA),
        "accounts": pa.RecordBatch.from_pylist(rows, schema=ACCOUNT_SCHEMA),
        "stages": {},
    }


def close_last_year(store: Ledger, date: dt.date, retry_s: float) -> float:
    """The first night of a tax year closes the year before in every household (``ledger.yearend``),
    before the shards start (a household never rolled that realized nothing in it waits: see
    ``ledger.yearend``); afterwards the ledger says it is closed and this reads one key. A failure
    is a warning and the next night tries again (tonight's gain budget does not read the carry).
    Returns the seconds it took."""
    t, year = time.perf_counter(), date.year - 1
    try:
        if not retrying(lambda: store.year_closed(year), retry_s):
            at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            report = close_years(store, year, "nightly", at, start_idle=False)
            if report.failed or any(r.status in ("rolled", "restated") for r in report.results):
                print(f"taxview: {report.summary()}", file=sys.stderr)
            for hh, why in sorted(report.failed.items()):
                print(f"taxview: warning: household {hh}: {redact(why)}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001
        print(f"taxview: warning: tax year {year} was not closed: {type(exc).__name__}: {redact(exc)}", file=sys.stderr)
    return time.perf_counter() - t


def compact_after_night(store: LedgerStore, policy: RetentionPolicy, date: dt.date, quiet: bool) -> tuple[float, dict]:
    """The retention policy after a night: history dated before ``policy.before(date)`` archived
    and trimmed (``ledger.compaction``), one line on stderr. A failure is a warning (the next night
    finishes it). Returns the seconds it took and run.json's ``compacted``."""
    t = time.perf_counter()
    if policy.archive_dir is None:
        print("taxview: warning: no archive directory in the retention policy: nothing compacted", file=sys.stderr)
        return time.perf_counter() - t, {}
    try:
        report = store.compact(
            policy.before(date),
            policy.archive_dir,
            progress=not quiet,
            log=lambda x: print(f"taxview: {x}", file=sys.stderr),
        )
    except Exception as exc:  # noqa: BLE001
        print(f"taxview: warning: compaction failed: {type(exc).__name__}: {redact(exc)}", file=sys.stderr)
        return time.perf_counter() - t, {"error": redact(exc)[:300]}
    print(f"taxview: {report.summary()}", file=sys.stderr)
    for hh, why in sorted(report.failed.items()):
        print(f"taxview: warning: compaction of household {hh}: {why}", file=sys.stderr)
    doc = {
        "before": report.before.isoformat(),
        "file": report.file,
        "archived": report.archived,
        "trimmed": report.trimmed,
        "failed": len(report.failed),
    }
    return time.perf_counter() - t, doc


def rebalance(
    run: RunSettings,
    ledger: LedgerSettings,
    defaults: AccountSettings | None = None,
    after_shard: Callable[[int, list], None] | None = None,
) -> RunSummary:
    """Rebalance every account of the ledger on ``run.date``; returns the run summary.

    ``defaults``: the firm's account settings (each account's type and rates come from the
    ledger). ``after_shard(done, actors)`` is called after each finished shard (tests use it to
    kill a worker mid-run). One account's failure is recorded with its reason and never stops the
    run.
    """
    t_start = time.perf_counter()
    stages: dict[str, float] = {}
    date, run_id, quiet, out = run.date, run.name, run.quiet, Path(run.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    _, snap = load_snapshot(run.market_dir, date, run.factors)
    stages["market_s"] = time.perf_counter() - t

    t = time.perf_counter()
    store = ledger.open_store()
    client = store.r
    try:
        shards = make_shards(group_by_household(retrying(store.accounts, ledger.retry_s)), run.shard_size)
        n_accounts = sum(s.accounts for s in shards)
        if n_accounts == 0:
            raise InputError("ledger", "the ledger has no accounts: import some first (taxview ledger import)")
        stages["ledger_accounts_s"] = time.perf_counter() - t
        lease = RunLease(client, f"{ledger.prefix}:run:{run_id}", ledger.retry_s)
        stages["lease_wait_s"] = lease.acquire(run.run_wait_s, run_id)
        stages["year_end_s"] = close_last_year(store, snap.date, ledger.retry_s)
    except BaseException:
        client.close()
        raise

    t = time.perf_counter()
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)} if main_thread else {}
    stop = _Stop()
    init_ray = not ray.is_initialized()
    undo_loopback = None
    actors: list = []
    outputs = ("trades.parquet", "orders.parquet", "accounts.parquet", "blocked.parquet", "events.parquet")
    temp = {name: out / f".{name}.{os.getpid()}.partial" for name in outputs}
    orders: list[int] = []  # per account rebalanced (accounts.parquet's column)
    writers: list[pq.ParquetWriter] = []
    complete = False
    bar = None
    try:
        if init_ray:
            if run.address:
                ray.init(address=run.address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
            else:
                undo_loopback = init_local_ray(run.workers or os.cpu_count() or 1)
        for s in handlers:  # after ray.init, which installs its own SIGTERM handler
            signal.signal(s, stop)
        n_workers = run.workers or max(1, int(ray.available_resources().get("CPU", 1)))
        snap_ref = ray.put(snap)  # once; every worker reads the arrays zero-copy
        actor_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(_NodeWorker)
        actors = [actor_cls.remote(ledger, defaults or AccountSettings()) for _ in range(n_workers)]
        ray.get([a.ping.remote() for a in actors])
        stages["ray_setup_s"] = time.perf_counter() - t

        t = time.perf_counter()
        trades_writer = pq.ParquetWriter(temp["trades.parquet"], TRADE_SCHEMA)
        writers.append(trades_writer)
        orders_writer = pq.ParquetWriter(temp["orders.parquet"], ORDER_SCHEMA)
        writers.append(orders_writer)
        accounts_writer = pq.ParquetWriter(temp["accounts.parquet"], ACCOUNT_SCHEMA)
        writers.append(accounts_writer)
        worker_stages = {"ledger_read_s": 0.0, "solve_s": 0.0, "commit_s": 0.0}
        counts = {"ok": 0, "failed": 0, "replayed": 0, "trades": 0, "orders": 0}
        money = {
            "harvested": pa.scalar(0, pa.decimal128(18, 2)).as_py(),
            "tax": pa.scalar(0, pa.decimal128(18, 2)).as_py(),
        }
        output_s = 0.0
        queue = list(reversed(shards))
        in_flight: dict[Any, tuple[int, Any, int]] = {}  # ref -> (actor index, shard, attempt)
        # Actors not known dead. A shard whose actor died goes to one of these (an actor on a lost
        # node may never restart: its node's CPUs are gone); the dead one is pinged and takes
        # shards again once Ray restarted it.
        healthy = set(range(n_workers))
        probes: dict[Any, int] = {}  # ping ref -> actor index
        shard_nodes: dict[str, int] = {}  # Ray node id -> shards it ran
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

        def least_busy(dead: int) -> int:
            """The healthy actor with the fewest shards in flight (``dead`` itself when none is)."""
            if not healthy:
                return dead
            busy = [i for i, _, _ in in_flight.values()]
            return min(sorted(healthy), key=busy.count)

        def probe(i: int) -> None:
            if i not in probes.values():
                probes[actors[i].ping.remote()] = i

        def revive() -> None:
            """Actors whose ping answered are healthy again and take shards."""
            if not probes:
                return
            answered, _ = ray.wait(list(probes), num_returns=len(probes), timeout=0)
            for ref in answered:
                i = probes.pop(ref)
                try:
                    ray.get(ref)
                except RayError:
                    probe(i)  # still restarting
                    continue
                healthy.add(i)
                for _ in range(IN_FLIGHT_PER_WORKER):
                    if queue and stop.signum is None:
                        submit(i, queue.pop(), 1)

        def record(result: dict[str, Any]) -> None:
            nonlocal output_s
            t_out = time.perf_counter()
            trades_writer.write_batch(result["trades"])
            orders_writer.write_batch(result["orders"])
            accounts_writer.write_batch(_with_node(result["accounts"], result.get("node_id")))
            if result.get("node_id"):
                shard_nodes[result["node_id"]] = shard_nodes.get(result["node_id"], 0) + 1
            output_s += time.perf_counter() - t_out
            for k in worker_stages:
                worker_stages[k] += result["stages"].get(k, 0.0)
            acc = result["accounts"].to_pydict()
            for status, h, tax, replayed, n in zip(
                acc["status"], acc["harvested_loss"], acc["tax_estimate"], acc["replayed"], acc["orders"]
            ):
                counts["ok" if status in OK_STATUSES else "failed"] += 1
                if status in OK_STATUSES:
                    orders.append(n or 0)
                counts["replayed"] += bool(replayed)  # the same count as accounts.parquet's column
                money["harvested"] += h or 0
                money["tax"] += tax or 0
            counts["trades"] += result["trades"].num_rows
            counts["orders"] += result["orders"].num_rows  # run.json's count: the rows of orders.parquet
            bar.update(result["accounts"].num_rows)
            bar.set_postfix(failed=counts["failed"], refresh=False)

        for i in range(n_workers):
            for _ in range(IN_FLIGHT_PER_WORKER):
                if queue and stop.signum is None:
                    submit(i, queue.pop(), 1)
        drain_until = None
        while in_flight:
            if stop.signum is not None:
                drain_until = drain_until or time.monotonic() + run.drain_s
                if stop.now or time.monotonic() > drain_until:
                    break
            revive()
            t_wait = time.perf_counter()
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
            waited += time.perf_counter() - t_wait
            if not ready:
                continue
            ref = ready[0]
            i, shard, attempt = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except RayActorError as exc:  # the worker died (killed, OOM, node lost)
                healthy.discard(i)
                probe(i)  # Ray restarts it (where resources allow); it takes shards once it answers
                if stop.signum is not None:
                    continue  # stopping: its accounts are not run (a re-run replays what it committed)
                if attempt < run.max_shard_attempts:
                    retries += 1
                    submit(least_busy(i), shard, attempt + 1)  # the re-run replays its commits
                    continue
                result = _failed_rows(shard, f"worker died {attempt} times: {_reason(exc)}")
            except RayError as exc:  # the shard raised (RayTaskError) or its result was lost
                result = _failed_rows(shard, f"worker error: {_reason(exc)}")
            else:
                healthy.add(i)
            if queue and stop.signum is None and (i in healthy or not in_flight):
                submit(i if i in healthy else least_busy(i), queue.pop(), 1)
            record(result)
            done += 1
            if after_shard is not None:
                after_shard(done, actors)
        stages["rebalance_s"] = time.perf_counter() - t
        t_night = time.perf_counter()
        households = [hh for shard in shards for hh, _ in shard.households]
        night = retrying(lambda: write_night_files(store, households, snap.date, temp), ledger.retry_s)
        stages["night_files_s"] = time.perf_counter() - t_night
        compacted: dict[str, Any] = {}
        if run.retention is not None and run.retention.nightly and stop.signum is None:
            stages["compact_s"], compacted = compact_after_night(store, run.retention, snap.date, quiet)
            if compacted:  # the memory after the trim
                night["redis_used_memory_bytes"] = retrying(lambda: int(client.info("memory")["used_memory"]), 5)
        complete = True
    finally:
        if bar is not None:
            bar.close()
        for w in writers:
            w.close()
        for a in actors:
            ray.kill(a)
        if init_ray:
            ray.shutdown()
        if undo_loopback is not None:
            undo_loopback()
        for s, h in handlers.items():
            signal.signal(s, h)
        lease.release()
        client.close()
        if not complete:  # an error: no partial outputs under the final names
            for path in temp.values():
                path.unlink(missing_ok=True)
    stages["shutdown_s"] = time.perf_counter() - t - stages["rebalance_s"]
    stages["output_s"] = output_s
    stages["coordinator_busy_s"] = stages["rebalance_s"] - waited
    wall = time.perf_counter() - t_start
    rows = counts["ok"] + counts["failed"]
    summary = RunSummary(
        run_id=run_id,
        date=str(snap.date),
        accounts=n_accounts,
        ok=counts["ok"],
        failed=counts["failed"],
        replayed=counts["replayed"],
        trades=counts["trades"],
        wall_s=round(wall, 3),
        accounts_per_s=round(rows / stages["rebalance_s"], 2) if stages["rebalance_s"] > 0 else 0.0,
        workers=n_workers,
        shards=len(shards),
        shard_retries=retries,
        shard_nodes=dict(sorted(shard_nodes.items())),
        stages={k: round(v, 3) for k, v in stages.items()},
        worker_stages={k: round(v, 3) for k, v in worker_stages.items()},
        harvested_loss=str(money["harvested"]),
        tax_estimate=str(money["tax"]),
        out=str(out),
        interrupted=stop.signum is not None,
        signal=signal.Signals(stop.signum).name if stop.signum is not None else None,
        not_run=n_accounts - rows,
        orders=counts["orders"],
        orders_per_account_p50=round(float(np.percentile(orders, 50)), 1) if orders else 0.0,
        orders_per_account_p90=round(float(np.percentile(orders, 90)), 1) if orders else 0.0,
        compacted=compacted,
        **night,
    )
    # run.json is written last: present, it describes the Parquet files beside it
    (out / "run.json").unlink(missing_ok=True)
    for name, path in temp.items():
        os.replace(path, out / name)
    _write_json(out / "run.json", asdict(summary))
    try:  # the night's outputs stand without it: a report that fails is a warning, not a failed run
        summary.report = str(write_morning_report(out))
        _write_json(out / "run.json", asdict(summary))
    except Exception as exc:  # noqa: BLE001
        print(f"taxview: warning: the morning report was not written: {type(exc).__name__}: {exc}", file=sys.stderr)
    return summary


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
