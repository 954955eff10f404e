"""``taxview serve``: the on-demand service (Ray Serve + FastAPI, ``cluster.serve``) and its web
console, on the demo's defaults (market and private ledger under ``--workdir``, a local Ray,
loopback only); ``taxview serve token create NAME --tokens FILE``: a new bearer token."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_REPLICAS = 64


def add_serve_parser(sub: argparse._SubParsersAction, redis_options: Callable[[argparse.ArgumentParser], None]) -> None:
    sv = sub.add_parser("serve", help="the on-demand service and web console (Ray Serve, loopback only)")
    sv.add_argument("--port", type=int, default=8000, help="HTTP port on 127.0.0.1 (default 8000)")
    sv.add_argument(
        "--replicas", type=int, default=2, help="ingress replicas, and as many solvers with warm problems (default 2)"
    )
    sv.add_argument(
        "--ingress",
        choices=("proxy", "haproxy"),
        default="proxy",
        help="Ray Serve's proxy actor (default; loopback only) or its HAProxy mode (needs haproxy; "
        "several times the throughput; opens HAProxy's stats and metrics ports on every interface)",
    )
    sv.add_argument("--tokens", help="the bearer tokens file (default WORKDIR/tokens; created with one if missing)")
    sv.add_argument("--market", help="market directory (default WORKDIR/market, the demo's); its last day is served")
    sv.add_argument("--runs", help="where the nightly runs' outputs are (default WORKDIR/out, the demo's)")
    sv.add_argument("--firm", help="the firm's defaults (TOML, [defaults]); each account's mandate goes over them")
    sv.add_argument("--factors", type=int, default=20, help="PCA factors when the market has no riskmodel/")
    sv.add_argument("--identical", help="substantially identical symbols, e.g. GOOG=GOOGL")
    redis_options(sv)
    sv.set_defaults(func=_cmd_serve)
    tokens = sv.add_subparsers(dest="serve_cmd").add_parser("token", help="bearer tokens")
    create = tokens.add_subparsers(dest="token_cmd", required=True).add_parser(
        "create", help="a new token: printed once, as the last line (the file keeps its hash)"
    )
    create.add_argument("name", help="who the token is for (letters, digits and . _ - /)")
    create.add_argument("--tokens", required=True, help="the tokens file (created mode 0600)")
    create.set_defaults(func=_cmd_token_create)


def _cmd_token_create(args: argparse.Namespace) -> int:
    from cluster.service.auth import create_token

    token = create_token(args.tokens, args.name)
    print(f"token {args.name!r} added to {args.tokens} (only its hash is kept; it is shown once):", file=sys.stderr)
    print(token)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from cluster.service.auth import create_token, read_tokens
    from cluster.settings import read_firm_defaults
    from solver.types import AccountSettings
    from taxview.core.errors import InputError

    work = Path(args.workdir)
    market_dir = Path(args.market) if args.market else work / "market"
    if not (market_dir / "prices.parquet").is_file():
        raise InputError("market", f"no market in {market_dir}: pass --market DIR or run `taxview demo` first")
    if not 0 < args.port < 65536:
        raise InputError("port", f"--port must be 1..65535, got {args.port}")
    if not 1 <= args.replicas <= MAX_REPLICAS:
        # each replica holds the day's compiled problems: thousands would exhaust the memory first
        raise InputError("replicas", f"--replicas must be 1..{MAX_REPLICAS}, got {args.replicas}")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", args.port))
        except OSError:
            raise InputError("port", f"127.0.0.1:{args.port} is in use: pass another --port") from None
    defaults = read_firm_defaults(args.firm) if args.firm else AccountSettings()
    tokens = Path(args.tokens) if args.tokens else work / "tokens"
    first = None
    if not tokens.exists():
        work.mkdir(parents=True, exist_ok=True)
        first = create_token(tokens, "admin")
    elif not read_tokens(tokens):
        raise InputError("tokens", f"{tokens} has no tokens: add one with `taxview serve token create NAME`")
    shown: list[str] = []  # the first token, once printed
    try:
        return _serve(args, work, market_dir, defaults, tokens, first, shown)
    except BaseException:
        if first is not None and not shown:
            # the service never came up, so its first token was never shown: a file holding only
            # its hash would lock the next start out (it makes a token only when there is no file)
            tokens.unlink(missing_ok=True)
        raise


def _serve(
    args: argparse.Namespace,
    work: Path,
    market_dir: Path,
    defaults: Any,
    tokens: Path,
    first: str | None,
    shown: list[str],
) -> int:
    import ray

    from cluster.coordinator import init_local_ray
    from cluster.serve import ServeSettings, ingress_env, start, stop
    from ledger.connection import redact
    from solver.market import read_market
    from solver.snapshot import load_snapshot

    from .cmd_ledger import _Ledger

    market = read_market(market_dir)
    _, snap = load_snapshot(market_dir, market.dates[-1], args.factors)
    runs = Path(args.runs) if args.runs else work / "out"
    ledger = _Ledger(args)
    with ledger, contextlib.ExitStack() as stack:
        settings = ServeSettings(
            ledger.settings, str(tokens), str(runs), defaults, args.replicas, port=args.port, ingress=args.ingress
        )
        before = signal.getsignal(signal.SIGTERM)
        env = stack.enter_context(ingress_env(args.ingress))
        undo = init_local_ray(os.cpu_count() or 1)
        try:
            signal.signal(signal.SIGTERM, before)  # ray.init installs its own
            logging.getLogger("ray.serve").setLevel(logging.WARNING)
            start(settings, snap)
            url = f"http://127.0.0.1:{args.port}"
            print(
                f"taxview serve: {url} (API docs {url}/docs, console {url}/console); {args.replicas} replicas; "
                f"market day {snap.date} ({len(snap.symbols)} names); ledger {redact(ledger.settings.url)}; "
                f"tokens {tokens}; Ctrl-C stops",
                file=sys.stderr,
            )
            if env:
                print(
                    f"taxview serve: ingress HAProxy; its stats page :{env['RAY_SERVE_HAPROXY_STATS_PORT']}/stats and "
                    f"metrics :{env['RAY_SERVE_HAPROXY_METRICS_PORT']}/metrics listen on every interface",
                    file=sys.stderr,
                )
            if first is not None:
                print(f"no tokens file: created {tokens} with a token for 'admin' (shown once):", file=sys.stderr)
                print(first, flush=True)
                shown.append(first)
            while True:
                time.sleep(3600)
        finally:
            try:
                if ray.is_initialized():
                    stop()
            finally:
                ray.shutdown()
                undo()
