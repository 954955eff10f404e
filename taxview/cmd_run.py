"""``taxview market synth``, ``append`` and ``universe``, ``solve``, ``rebalance`` and ``demo``: the solver and
the nightly."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from .cmd_ledger import _Ledger, _ledger_url

_SYNTH_DEFAULTS = {"names": 500, "days": 2520, "factors": 20, "seed": 7, "start": "2015-01-02"}


def _cmd_market_synth(args: argparse.Namespace) -> int:
    from solver.marketdir import extend_synthetic, write_synthetic
    from taxview.core.errors import InputError

    t0 = time.perf_counter()
    if args.extend:
        given = [f"--{k}" for k in ("names", "factors", "seed", "start") if getattr(args, k) is not None]
        if given:
            raise InputError(given[0][2:], f"--extend continues the process the market records: drop {given}")
        if args.days is None:
            raise InputError("days", "--extend needs --days N (new business days)")
        before, after = extend_synthetic(args.extend, args.days)
        return _added(before, after, args.extend, t0)
    chosen = {k: default if getattr(args, k) is None else getattr(args, k) for k, default in _SYNTH_DEFAULTS.items()}
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise InputError("out", f"{args.out} exists and is not a directory")
    m = write_synthetic(args.out, **chosen)
    print(
        f"wrote {m.n} names × {len(m.dates)} days ({m.dates[0]}..{m.dates[-1]}) to {args.out} "
        f"in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    return 0


def _cmd_market_append(args: argparse.Namespace) -> int:
    from solver.marketdir import append_closes

    t0 = time.perf_counter()
    before, after = append_closes(args.market, args.prices)
    return _added(before, after, args.market, t0)


def _cmd_market_universe(args: argparse.Namespace) -> int:
    import numpy as np

    from solver.marketdir import update_universe

    t0 = time.perf_counter()
    _, after, changes = update_universe(args.market, args.file)
    added = [f"{x.symbol} from {x.date}" for x in changes if x.action == "add"]
    gone = [f"{x.symbol}, last day {x.date}" for x in changes if x.action == "delist"]
    said = [f"listed {len(added)} ({', '.join(added)})"] if added else []
    said += [f"delisted {len(gone)} ({', '.join(gone)})"] if gone else []
    print(
        f"{args.market}: {' and '.join(said)}; the universe has {after.n} names, "
        f"{int(np.isnat(after.delisted).sum())} not delisted, in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    return 0


def _added(before, after, market_dir: str, t0: float) -> int:
    new = after.dates[len(before.dates) :]
    names = int(after.trading_on(new[-1]).sum())  # trading on the last new day
    print(
        f"added {len(new)} days ({new[0]}..{new[-1]}) of {names} names to {market_dir}: now "
        f"{after.dates[0]}..{after.dates[-1]}, {len(after.dates)} days, in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    return 0


def _print_result(r, snap, account_id: str, orders: list) -> None:
    from taxview.core.money import cents_to_dollars as d

    print(f"account {account_id} on {snap.date}: {r.status}" + (f" ({r.reason})" if r.reason else ""))
    if not r.ok:
        return
    sells = [t for t in r.trades if t.side == "sell"]
    buys = [t for t in r.trades if t.side == "buy"]
    print(
        f"  trades        {len(sells)} lot sells, {len(buys)} buys in {len(orders)} orders; turnover {r.turnover:.1%}"
    )
    print(f"  harvested     ${d(r.harvested_loss_cents):,.2f} of losses")
    print(
        f"  realized      ST {d(r.realized.st_gain + r.realized.st_loss):,.2f}  "
        f"LT {d(r.realized.lt_gain + r.realized.lt_loss):,.2f}"
    )
    print(f"  tax estimate  ${d(r.tax_estimate_cents):,.2f} (negative: a tax saving)")
    print(f"  TE ex ante    {r.te_ex_ante:.2%}   cash {r.cash_weight:.2%}")
    if r.te_combined is not None:
        print(f"  TE combined   {r.te_combined:.2%} (the account and its outside holdings)")
    for style, (got, target) in r.active_exposures.items():
        if target is not None:
            print(f"  tilt {style:<12} {got:+.3f} (target {target:+.3f}, standard deviations)")
    if r.te_from_tilts is not None:
        print(f"  TE from tilts {r.te_from_tilts:.2%}")
    print(f"  solve         {r.solve_ms:.1f} ms, {r.passes} CLARABEL passes, {r.iterations} iterations")


def _cmd_solve(args: argparse.Namespace) -> int:
    from solver.io import check_against_universe, read_account_toml, read_lots_csv, result_to_dict
    from solver.snapshot import load_snapshot, with_delisted
    from solver.solve import solve_account
    from taxview.core.orders import order_json, orders_of

    settings, cash, restrictions = read_account_toml(args.account)
    lots = read_lots_csv(args.lots)
    _, snap = load_snapshot(args.market, args.date, args.factors)
    check_against_universe(settings, restrictions, snap)
    settings = with_delisted(settings, snap)
    r = solve_account(snap, lots, cash, settings, restrictions, explain=True)
    orders = orders_of(settings.account_id, r.trades)  # what a custodian would receive
    if args.json:
        doc: dict = {}
        for key, value in result_to_dict(r).items():
            doc[key] = value
            if key == "trades":
                doc["orders"] = [order_json(o) | _reason(r, o.symbol, o.side) for o in orders]
        json.dump(doc, sys.stdout, indent=1)
        print()
    else:
        _print_result(r, snap, settings.account_id, orders)
    return 0 if r.ok else 3


def _reason(r, symbol: str, side: str) -> dict:
    """An order's ``reason`` (``tilt:<style>``: the tilt drove its direction), when it has one."""
    reason = r.order_reasons.get((symbol, side))
    return {"reason": reason} if reason else {}


def _cmd_rebalance(args: argparse.Namespace) -> int:
    from cluster.coordinator import rebalance
    from cluster.settings import RunSettings, read_firm_defaults, read_retention
    from cluster.summary import summary_table
    from taxview.core.errors import InputError

    if args.address and not _ledger_url(args):
        raise InputError(
            "redis",
            "a Ray cluster needs a ledger every node reaches: pass --redis URL or --redis-url-file FILE or set "
            "TAXVIEW_REDIS_URL (a private loopback redis-server is for a local run only)",
        )

    defaults = read_firm_defaults(args.firm) if args.firm else None  # bad input: before any set-up
    retention = None if args.no_compact else read_retention(args.firm, Path(args.workdir) / "archive")
    run = RunSettings(
        args.date,
        args.market,
        args.out,
        run_id=args.run_id,
        address=args.address,
        workers=args.workers,
        shard_size=args.shard_size,
        factors=args.factors,
        run_wait_s=args.run_wait_s,
        quiet=args.quiet,
        retention=retention,
    )
    ledger = _Ledger(args)
    with ledger:
        s = rebalance(run, ledger.settings, defaults)
    print(summary_table(s))
    if s.interrupted:  # outputs written for what was done; 128 + the signal, as a shell reports it
        return 128 + signal.Signals[s.signal].value
    return 0 if s.failed == 0 else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    """The nightly rebalance of a synthetic firm, end to end, on a private Redis and a local Ray."""
    import datetime as dt

    import numpy as np
    import redis

    from cluster.coordinator import rebalance
    from cluster.settings import RunSettings
    from cluster.summary import summary_table
    from ledger.connection import LedgerSettings
    from ledger.files import read_accounts, read_lots
    from ledger.importer import import_lots, import_source
    from ledger.retention import RetentionPolicy
    from ledger.server import PrivateLedger
    from ledger.store import LedgerStore
    from solver.market import read_market
    from solver.marketdir import extend_synthetic, write_synthetic
    from taxview.core.money import value_cents
    from taxview.demo import demo_flows, demo_mandates, synth_firm

    if args.nights < 1 or args.accounts < 1 or args.keep_days < 1:
        from taxview.core.errors import InputError

        field = "nights" if args.nights < 1 else "accounts" if args.accounts < 1 else "keep-days"
        raise InputError(field, "must be at least 1")
    work = Path(args.workdir)
    mdir, fdir = work / "market", work / f"firm-{args.accounts}"
    t0 = time.perf_counter()
    if not (mdir / "prices.parquet").is_file():
        print(f"building the synthetic market in {mdir} ...", file=sys.stderr)
        write_synthetic(mdir, names=args.names, days=args.days, factors=20, seed=args.seed, start="2015-01-02")
    market = read_market(mdir)
    t = min(args.days, len(market.dates)) - 1  # the firm's day; the nights follow it
    if len(market.dates) < t + 1 + args.nights:
        print(f"extending the market by {t + 1 + args.nights - len(market.dates)} days ...", file=sys.stderr)
        _, market = extend_synthetic(mdir, t + 1 + args.nights - len(market.dates))
    nights = [str(d) for d in market.dates[t + 1 : t + 1 + args.nights]]
    if not (fdir / "lots.parquet").is_file():
        print(f"building a synthetic firm of {args.accounts} accounts in {fdir} ...", file=sys.stderr)
        _write_firm(fdir, *synth_firm(market, t, args.accounts, args.seed))
    rdir = work / "redis"
    # the demo starts every run from the same firm: an empty ledger (refused while in use)
    with PrivateLedger(rdir, command="taxview demo").open(fresh=True) as server:
        store = LedgerStore(redis.Redis.from_url(server.url))
        infos = read_accounts(fdir / "accounts.parquet")
        store.add_accounts(infos)
        n = import_lots(store, read_lots(fdir / "lots.parquet"), source=import_source(fdir / "lots.parquet"))
        retention = None if args.no_compact else RetentionPolicy(args.keep_days, work / "archive")
        at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        mandates = demo_mandates(infos, args.seed)
        for account, changes in mandates.items():
            store.set_mandate(account, changes, "demo", at)
        print(
            f"ledger: {len(infos)} accounts ({len(mandates)} with their own mandate), {n} lots loaded into a "
            f"private redis-server ({time.perf_counter() - t0:.1f}s so far); {len(nights)} nights from {nights[0]}",
            file=sys.stderr,
        )
        rng = np.random.default_rng(args.seed)
        failed = 0
        for k, date in enumerate(nights, start=1):
            day = dt.date.fromisoformat(date)
            close = dict(zip(market.symbols, market.prices[market.day_index(date)]))

            def value_of(account: str, close: dict = close) -> int:  # read only for the few that withdraw
                held = store.lots(account)
                priced = sum(value_cents(x.quantity, float(close[x.symbol])) for x in held if x.symbol in close)
                return store.account(account).cash_cents + priced

            for account, cents, reason in demo_flows([a.account for a in infos], value_of, rng):
                store.add_cash_flow(account, cents, day, reason, "demo", at)
            run = RunSettings(
                date,
                mdir,
                work / "out" / date,
                run_id=f"demo-{date}",
                workers=args.workers,
                quiet=True,
                retention=retention,
            )
            s = rebalance(run, LedgerSettings(server.url))
            failed += s.failed
            if s.interrupted:
                print(summary_table(s))
                return 128 + signal.Signals[s.signal].value
            print(
                f"night {k}/{len(nights)} {date}: {s.ok} ok, {s.failed} failed, {s.orders} orders, "
                f"harvested ${float(s.harvested_loss):,.0f}, tax ${float(s.tax_estimate):,.0f}, "
                f"{s.cash_flows} cash flows, {s.accounts_per_s:.1f} accounts/s, Redis "
                f"{s.redis_used_memory_bytes / 2**20:.1f} MiB — {s.report or s.out}"
            )
        store.r.close()
    print(summary_table(s))
    print(
        f"\nrebalance a night again by hand: taxview rebalance --date {nights[-1]} --market {mdir} --out OUT "
        f"--workdir {work}  (the ledger stays in {rdir} until the next demo)"
    )
    return 0 if failed == 0 else 1


def _write_firm(fdir: Path, infos, lots) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fdir.mkdir(parents=True, exist_ok=True)
    accounts = {
        "account": [a.account for a in infos],
        "household": [a.household for a in infos],
        "account_type": [a.account_type for a in infos],
        "cash": [str(a.cash_cents / 100) for a in infos],
    }
    pq.write_table(pa.table(accounts), fdir / "accounts.parquet")
    acquired = pa.array([_iso(x) for x in lots.column("acquired").to_pylist()], pa.date32())
    pq.write_table(lots.set_column(5, "acquired", acquired).drop_columns(["holding_start"]), fdir / "lots.parquet")


def _iso(ordinal: int):
    import datetime as dt

    return dt.date.fromordinal(ordinal)
