"""How fast does the service answer under load? (issue 14)

A synthetic market and firm (``taxview.demo.synth_firm``) in a private redis-server, the service on
Ray Serve with ``--replicas`` replicas on a local Ray (loopback only), then concurrent clients for
``--seconds`` (bounded, and at most ``--max-requests`` requests): wash-check clients (one intended
sale or purchase in a random account of a random household) and proposal clients (a random
account solved, nothing committed): the wash-check clients alone for a third of ``--seconds``,
then all of them at once for ``--seconds``. Reports per phase the machine's load average and per
kind: requests, per second, p50/p99 latency (ms), errors; the targets are p99 ≤ 25 ms for
wash-checks and ≤ 150 ms for proposals, zero errors.

    python benchmarks/serve_load.py [--accounts 200] [--names 500] [--seconds 60] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import ray
from _common import emit  # benchmarks/ is on sys.path when a script here runs

from cluster.coordinator import init_local_ray
from cluster.serve import ServeSettings, start, stop
from cluster.service.auth import create_token
from ledger.connection import LedgerSettings
from ledger.importer import import_lots
from ledger.server import RedisServer, free_port
from ledger.store import LedgerStore
from solver.market import synthesize, write_market
from solver.snapshot import load_snapshot
from taxview.demo import synth_firm

MAX_SECONDS = 600


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def client(kind: str, base: str, token: str, work: dict, stop_at: float, budget: list, out: list, lock) -> None:
    rng = random.Random(hash((kind, threading.get_ident())))
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        while time.monotonic() < stop_at:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            household = rng.choice(work["households"])
            accounts = work["members"][household]
            if kind == "wash_check":
                account = rng.choice(accounts)
                symbol = rng.choice(work["symbols"])
                held = work["held"].get(account)
                side = "sell" if held and rng.random() < 0.5 else "buy"
                if side == "sell":
                    symbol = rng.choice(held)
                body = {"trades": [{"account": account, "symbol": symbol, "side": side, "quantity": "1"}]}
                url = f"/v1/households/{household}/wash-check"
            else:
                url, body = f"/v1/accounts/{rng.choice(accounts)}/proposals", {}
            t = time.perf_counter()
            try:
                r = http.post(url, json=body)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            out.append((kind, time.perf_counter() - t, ok))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--factors", type=int, default=20)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--wash-clients", type=int, default=4)
    ap.add_argument("--proposal-clients", type=int, default=2)
    ap.add_argument("--max-requests", type=int, default=200_000)
    ap.add_argument("--json")
    args = ap.parse_args()
    seconds = min(args.seconds, MAX_SECONDS)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="taxview-serve-load-") as tmp:
        work_dir = Path(tmp)
        market = synthesize(names=args.names, days=600, factors=args.factors, seed=7)
        write_market(market, work_dir / "market")
        _, snap = load_snapshot(work_dir / "market", str(market.dates[-1]), args.factors)
        server = RedisServer(work_dir / "redis").start()
        try:
            store = LedgerStore(server.client())
            infos, lots = synth_firm(market, len(market.dates) - 1, args.accounts, seed=7)
            store.add_accounts(infos)
            import_lots(store, lots)
            held: dict[str, set] = {}
            for a, s in zip(lots.column("account").to_pylist(), lots.column("symbol").to_pylist()):
                held.setdefault(a, set()).add(s)
            members: dict[str, list] = {}
            for a in infos:
                members.setdefault(a.household, []).append(a.account)
            work = {
                "households": sorted(members),
                "members": members,
                "symbols": list(snap.symbols),
                "held": {a: sorted(s) for a, s in held.items()},
            }
            token = create_token(work_dir / "tokens", "bench")
            setup_s = time.perf_counter() - t0
            undo = init_local_ray(os.cpu_count() or 1)
            port = free_port()
            try:
                t = time.perf_counter()
                start(
                    ServeSettings(
                        LedgerSettings(server.url), str(work_dir / "tokens"), replicas=args.replicas, port=port
                    ),
                    snap,
                )
                start_s = time.perf_counter() - t
                base = f"http://127.0.0.1:{port}"
                # warm-up: each replica compiles its problems once (not measured)
                with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
                    for a in [x.account for x in infos[: 4 * args.replicas]]:
                        http.post(f"/v1/accounts/{a}/proposals", json={})
                lock = threading.Lock()
                budget = [args.max_requests]
                phases = {}
                # first the wash-checks alone (the engine's latency through HTTP), then everything at once
                for phase, share, mix in (
                    ("alone", 1 / 3, (("wash_check", args.wash_clients),)),  # 1/3 of --seconds, then --seconds
                    ("mixed", 1.0, (("wash_check", args.wash_clients), ("proposal", args.proposal_clients))),
                ):
                    out: list = []
                    stop_at = time.monotonic() + seconds * share
                    threads = [
                        threading.Thread(target=client, args=(k, base, token, work, stop_at, budget, out, lock))
                        for k, n in mix
                        for _ in range(n)
                    ]
                    load_before = os.getloadavg()[0]
                    t = time.perf_counter()
                    for th in threads:
                        th.start()
                    for th in threads:
                        th.join()
                    phases[phase] = (out, time.perf_counter() - t, load_before, os.getloadavg()[0])
            finally:
                stop()
                ray.shutdown()
                undo()
        finally:
            server.stop()
    result: dict = {
        "benchmark": "serve_load",
        "date": dt.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "accounts": args.accounts,
        "households": len(work["households"]),
        "names": args.names,
        "factors": args.factors,
        "replicas": args.replicas,
        "clients": {"wash_check": args.wash_clients, "proposal": args.proposal_clients},
        "setup_s": round(setup_s, 1),
        "serve_start_s": round(start_s, 1),
    }
    for phase, (out, wall, before, after) in phases.items():
        block: dict = {"seconds": round(wall, 1), "load_avg_1m": [round(before, 1), round(after, 1)]}
        for kind, target in (("wash_check", 25.0), ("proposal", 150.0)):
            lat = [x * 1000 for k, x, ok in out if k == kind and ok]
            errors = sum(1 for k, _, ok in out if k == kind and not ok)
            if not lat and not errors:
                continue
            block[kind] = {
                "requests": len(lat) + errors,
                "errors": errors,
                "per_s": round(len(lat) / wall, 1),
                "p50_ms": round(statistics.median(lat), 1) if lat else None,
                "p99_ms": round(percentile(lat, 0.99), 1),
                "target_p99_ms": target,
                "p99_within_target": bool(lat) and percentile(lat, 0.99) <= target,
            }
        result[phase] = block
    emit(result, args.json)


if __name__ == "__main__":
    main()
