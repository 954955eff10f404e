"""How fast does the service answer under load? (issue 14)

A synthetic market and firm (``taxview.demo.synth_firm``) in a private redis-server, the service on
Ray Serve with ``--replicas`` replicas on a local Ray (loopback only), then concurrent clients,
each its own process, for ``--seconds`` (bounded, and at most ``--max-requests`` requests a
phase): wash-check clients (one intended sale or purchase in a random account of a random
household) and proposal clients (a random account solved, nothing committed): the wash-check
clients alone for a third of ``--seconds``, then all of them at once for ``--seconds``. Reports
per phase the machine's load average and per kind: requests, per second, p50/p99 latency (ms),
errors; the targets are p99 ≤ 25 ms for wash-checks and ≤ 150 ms for proposals, zero errors.

    python benchmarks/serve_load.py [--accounts 200] [--names 500] [--seconds 60] [--ingress proxy|haproxy]
                                    [--via serve|uvicorn] [--json FILE]

``--ingress`` picks the service's ingress (``cluster.serve``): Ray Serve's proxy actor (default)
or its HAProxy mode.

``--via uvicorn`` serves the same FastAPI app (``cluster.service.app``) from one plain uvicorn
process without Ray: the floor Ray Serve's proxy and replicas are measured against.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import ray
from _common import emit  # benchmarks/ is on sys.path when a script here runs

from cluster.coordinator import init_local_ray
from cluster.serve import INGRESSES, ServeSettings, ingress_env, start, stop
from cluster.service.auth import create_token
from ledger.connection import LedgerSettings
from ledger.importer import import_lots
from ledger.server import RedisServer, free_port
from ledger.store import LedgerStore
from solver.market import synthesize, write_market
from solver.snapshot import load_snapshot
from taxview.demo import synth_firm

MAX_SECONDS = 600


def _uvicorn_app(redis_url: str, tokens: str, snap, port: int) -> None:  # a child process (spawned)
    import uvicorn

    from cluster.service.app import make_app
    from cluster.service.auth import Tokens
    from cluster.service.core import Service
    from cluster.service.proposals import RedisProposals
    from solver.problem import ProblemCache

    settings = LedgerSettings(redis_url)
    store = settings.open_store()
    service = Service(store, snap, proposals=RedisProposals(store.r, settings.prefix), cache=ProblemCache())
    service.warm()
    uvicorn.run(make_app(lambda: service, Tokens(tokens)), host="127.0.0.1", port=port, log_level="warning")


def _wait_ready(base: str, seconds: float = 300) -> None:
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"serve_load: the service at {base} was not ready in {seconds:.0f} s")


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def client(kind: str, base: str, token: str, work: dict, start_at: float, stop_at: float, budget: int) -> list:
    """One client in its own process (so that the clients' Python does not queue behind one GIL):
    from ``start_at`` to ``stop_at`` (wall clock), at most ``budget`` requests, one at a time;
    [(kind, seconds, ok)]."""
    rng = random.Random(hash((kind, os.getpid())))
    headers = {"Authorization": f"Bearer {token}"}
    out = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        http.get("/healthz")  # the connection made before the clock starts
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at and len(out) < budget:
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
    return out


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
    ap.add_argument("--via", choices=("serve", "uvicorn"), default="serve")
    ap.add_argument("--ingress", choices=INGRESSES, default="proxy")
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
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            child = None
            with ingress_env(args.ingress if args.via == "serve" else "proxy"):
                if args.via == "serve":
                    undo = init_local_ray(os.cpu_count() or 1)
                try:
                    t = time.perf_counter()
                    if args.via == "serve":
                        settings = ServeSettings(
                            LedgerSettings(server.url),
                            str(work_dir / "tokens"),
                            replicas=args.replicas,
                            port=port,
                            ingress=args.ingress,
                        )
                        start(settings, snap)
                    else:
                        child = multiprocessing.get_context("spawn").Process(
                            target=_uvicorn_app, args=(server.url, str(work_dir / "tokens"), snap, port), daemon=True
                        )
                        child.start()
                        _wait_ready(base)
                    start_s = time.perf_counter() - t
                    # warm-up: each replica compiles its problems once (not measured)
                    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
                        for a in [x.account for x in infos[: 4 * args.replicas]]:
                            http.post(f"/v1/accounts/{a}/proposals", json={})
                    phases = {}
                    clients = args.wash_clients + args.proposal_clients
                    spawn = multiprocessing.get_context("spawn")
                    with ProcessPoolExecutor(clients, mp_context=spawn) as pool:
                        # every client process started (and this module imported in it) before a phase
                        list(pool.map(time.sleep, [0.5] * clients))
                        # first the wash-checks alone (the engine's latency through HTTP), then everything at once
                        for phase, share, mix in (
                            ("alone", 1 / 3, (("wash_check", args.wash_clients),)),  # 1/3 of --seconds, then --seconds
                            ("mixed", 1.0, (("wash_check", args.wash_clients), ("proposal", args.proposal_clients))),
                        ):
                            n = sum(k for _, k in mix)
                            start_at = time.time() + 1.0  # every client connected first
                            stop_at = start_at + seconds * share
                            futures = [
                                pool.submit(client, kind, base, token, work, start_at, stop_at, args.max_requests // n)
                                for kind, k in mix
                                for _ in range(k)
                            ]
                            time.sleep(max(0.0, start_at - time.time()))
                            load_before = os.getloadavg()[0]
                            t = time.perf_counter()
                            out = [x for f in futures for x in f.result()]
                            phases[phase] = (out, time.perf_counter() - t, load_before, os.getloadavg()[0])
                finally:
                    if child is not None:
                        child.terminate()
                        child.join(10)
                    else:
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
        "via": args.via,
        "ingress": args.ingress if args.via == "serve" else None,
        "replicas": args.replicas if args.via == "serve" else 1,
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
