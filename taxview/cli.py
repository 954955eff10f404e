"""The ``taxview`` command line. Entry point: ``main``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from solver.errors import TaxviewError


def _cmd_market_synth(args: argparse.Namespace) -> int:
    from solver.market import synthesize, write_market

    t0 = time.perf_counter()
    m = synthesize(names=args.names, days=args.days, factors=args.factors, seed=args.seed, start=args.start)
    out = write_market(m, args.out)
    print(
        f"wrote {m.n} names × {len(m.dates)} days ({m.dates[0]}..{m.dates[-1]}) to {out} "
        f"in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    return 0


def _load_snapshot(market_dir: str, date: str, factors: int):
    from solver.market import read_market
    from solver.riskmodel import read_riskmodel
    from solver.snapshot import snapshot

    m = read_market(market_dir)
    rm_dir = Path(market_dir) / "riskmodel"
    model = read_riskmodel(rm_dir, m.symbols) if rm_dir.is_dir() else None
    return m, snapshot(m, date, model=model, factors=factors)


def _print_result(r, snap, account_id: str) -> None:
    from solver.money import cents_to_dollars as d

    print(f"account {account_id} on {snap.date}: {r.status}" + (f" ({r.reason})" if r.reason else ""))
    if not r.ok:
        return
    sells = [t for t in r.trades if t.side == "sell"]
    buys = [t for t in r.trades if t.side == "buy"]
    print(f"  trades        {len(sells)} lot sells, {len(buys)} buys; turnover {r.turnover:.1%}")
    print(f"  harvested     ${d(r.harvested_loss_cents):,.2f} of losses")
    print(
        f"  realized      ST {d(r.realized.st_gain + r.realized.st_loss):,.2f}  "
        f"LT {d(r.realized.lt_gain + r.realized.lt_loss):,.2f}"
    )
    print(f"  tax estimate  ${d(r.tax_estimate_cents):,.2f} (negative: a tax saving)")
    print(f"  TE ex ante    {r.te_ex_ante:.2%}   cash {r.cash_weight:.2%}")
    print(f"  solve         {r.solve_ms:.1f} ms, {r.passes} CLARABEL passes, {r.iterations} iterations")


def _cmd_solve(args: argparse.Namespace) -> int:
    from solver.io import check_against_universe, read_account_toml, read_lots_csv, result_to_dict
    from solver.solve import solve_account

    settings, cash, restrictions = read_account_toml(args.account)
    lots = read_lots_csv(args.lots)
    _, snap = _load_snapshot(args.market, args.date, args.factors)
    check_against_universe(settings, restrictions, snap)
    r = solve_account(snap, lots, cash, settings, restrictions)
    if args.json:
        json.dump(result_to_dict(r), sys.stdout, indent=1)
        print()
    else:
        _print_result(r, snap, settings.account_id)
    return 0 if r.ok else 3


def _cmd_rebalance(args: argparse.Namespace) -> int:
    from cluster.coordinator import rebalance, summary_table
    from solver.errors import InputError

    if args.address and not _ledger_url(args):
        raise InputError(
            "redis",
            "a Ray cluster needs a ledger every node reaches: pass --redis URL or --redis-url-file FILE or set "
            "TAXVIEW_REDIS_URL (a private loopback redis-server is for a local run only)",
        )

    ledger = _Ledger(args)
    with ledger:
        s = rebalance(
            args.date,
            args.market,
            args.out,
            ledger.url,  # with its password: the workers connect with it; never printed (redact)
            address=args.address,
            workers=args.workers,
            run_id=args.run_id,
            quiet=args.quiet,
            shard_size=args.shard_size,
            identical=_parse_identical(args.identical),
            factors=args.factors,
            redis_retry_s=args.redis_retry_s,
            run_wait_s=args.run_wait_s,
        )
    print(summary_table(s))
    if s.interrupted:  # outputs written for what was done; 128 + the signal, as a shell reports it
        return 128 + signal.Signals[s.signal].value
    return 0 if s.failed == 0 else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    """The nightly rebalance of a synthetic firm, end to end, on a private Redis and a local Ray."""
    from cluster.coordinator import rebalance, summary_table
    from ledger.importer import import_lots, read_accounts, read_lots
    from ledger.server import PrivateLedger
    from ledger.store import LedgerStore
    from solver.market import read_market, synthesize, write_market
    from taxview.demo import synth_firm

    work = Path(args.workdir)
    mdir, fdir = work / "market", work / f"firm-{args.accounts}"
    t0 = time.perf_counter()
    if not (mdir / "prices.parquet").is_file():
        print(f"building the synthetic market in {mdir} ...", file=sys.stderr)
        write_market(synthesize(names=args.names, days=args.days, seed=args.seed), mdir)
    market = read_market(mdir)
    t = len(market.dates) - 1
    date = str(market.dates[t])
    if not (fdir / "lots.parquet").is_file():
        print(f"building a synthetic firm of {args.accounts} accounts in {fdir} ...", file=sys.stderr)
        infos, lots = synth_firm(market, t, args.accounts, args.seed)
        fdir.mkdir(parents=True, exist_ok=True)
        import pyarrow as pa
        import pyarrow.parquet as pq

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
        lots = lots.set_column(
            5, "acquired", pa.array([_iso(x) for x in lots.column("acquired").to_pylist()], pa.date32())
        )
        lots = lots.drop_columns(["holding_start"])
        pq.write_table(lots, fdir / "lots.parquet")
    import redis

    rdir = work / "redis"
    # the demo starts every run from the same firm: an empty ledger (refused while in use)
    with PrivateLedger(rdir, command="taxview demo").open(fresh=True) as server:
        store = LedgerStore(redis.Redis.from_url(server.url))
        store.add_accounts(read_accounts(fdir / "accounts.parquet"))
        n = import_lots(store, read_lots(fdir / "lots.parquet"))
        print(
            f"ledger: {len(store.accounts())} accounts, {n} lots loaded into a private redis-server "
            f"({time.perf_counter() - t0:.1f}s so far)",
            file=sys.stderr,
        )
        s = rebalance(date, mdir, work / "out" / date, server.url, workers=args.workers, quiet=args.quiet)
        store.r.close()
    print(summary_table(s))
    print(
        f"\nrebalance again by hand: taxview rebalance --date {date} --market {mdir} --out OUT "
        f"--workdir {work}  (the ledger stays in {rdir} until the next demo)"
    )
    if s.interrupted:
        return 128 + signal.Signals[s.signal].value
    return 0 if s.failed == 0 else 1


def _iso(ordinal: int):
    import datetime as dt

    return dt.date.fromordinal(ordinal)


def _transition_inputs(args: argparse.Namespace, profile: str | None):
    from taxview.transition import PROFILES, Inputs, harvest_path_from_metrics

    rates = dict(PROFILES[profile]) if profile else {}
    for name in ("cg_rate", "income_rate"):
        if getattr(args, name) is not None:
            rates[name] = getattr(args, name)
    path = None
    if args.harvest_from:
        try:
            metrics = json.loads(Path(args.harvest_from).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            from solver.errors import InputError

            raise InputError("harvest_from", f"cannot read {args.harvest_from}: {exc}") from None
        path = harvest_path_from_metrics(metrics, args.years)
    return Inputs(
        value=args.value,
        embedded_gain=args.embedded_gain,
        growth=args.growth,
        fee=args.fee,
        years=args.years,
        harvest=args.harvest,
        harvest_years=args.harvest_years,
        harvest_path=path,
        **{k: rates.get(k, getattr(Inputs, k)) for k in ("cg_rate", "income_rate")},
    )


def _cmd_transition(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from taxview.transition import analyze, gradual

    if args.mode == "sweep":
        return _cmd_transition_sweep(args)
    profiles = args.profile or [None]
    x = _transition_inputs(args, profiles[0])
    r = analyze(x)
    out = asdict(r)
    if args.gradual_budget:
        out["gradual"] = gradual(x, args.gradual_budget)
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    rows = [
        ("transition tax (paid now)", r.transition_tax),
        ("direct index starts with", r.di_initial),
        ("ETF at year N", r.etf_end),
        ("direct index at year N (after fees)", r.di_end),
        ("fees paid", r.total_fee),
        ("opportunity cost of the tax and fees", r.opportunity_cost),
        ("total cost", r.total_cost),
        ("harvested losses", r.max_losses),
        ("tax savings", r.tax_savings),
        ("tax alpha (savings reinvested, at year N)", r.tax_alpha),
        ("ETF, pre-tax (step-up)", r.etf_pre_tax),
        ("direct index + savings, pre-tax", r.di_pre_tax),
        ("ETF, post-tax (liquidated)", r.etf_post_tax),
        ("direct index + savings, post-tax", r.di_post_tax),
        ("net benefit of switching, pre-tax", r.net_benefit_pre_tax),
        ("net benefit of switching, post-tax", r.net_benefit_post_tax),
    ]
    print(
        f"ETF ${x.value:,.0f}, embedded gain {x.embedded_gain:.1%}, cg {x.cg_rate:.1%}, "
        f"income {x.income_rate:.1%}, growth {x.growth:.1%}, fee {x.fee:.2%}, {x.years} years"
    )
    for label, v in rows:
        print(f"  {label:<44} {v:>14,.2f}")
    print("  tax alpha by year                            " + ", ".join(f"{v:,.0f}" for v in r.tax_alpha_by_year))
    print(r.verdict_pre_tax)
    print(r.verdict_post_tax)
    if "gradual" in out:
        gr = out["gradual"]
        print(
            f"gradual switch (≤ ${gr['gain_budget']:,.0f} of gain a year, {gr['years_to_move']} years): "
            f"pre-tax {gr['pre_tax']:,.0f} vs all at once {gr['all_at_once_pre_tax']:,.0f}; "
            f"post-tax {gr['post_tax']:,.0f} vs {gr['all_at_once_post_tax']:,.0f}"
        )
    return 0


def _cmd_transition_sweep(args: argparse.Namespace) -> int:
    import base64

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from taxview.transition import PROFILES, breakeven, sweep

    if not args.out:
        from solver.errors import InputError

        raise InputError("out", "transition sweep needs --out DIR")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"profiles": {}}
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for profile in args.profile or list(PROFILES):
        x = _transition_inputs(args, profile)
        curve = sweep(x)
        be_pre, be_post = breakeven(x, "pre_tax"), breakeven(x, "post_tax")
        result["profiles"][profile] = {
            "cg_rate": x.cg_rate,
            "income_rate": x.income_rate,
            "breakeven_pre_tax": be_pre,
            "breakeven_post_tax": be_post,
            **curve,
        }
        g = [100 * v for v in curve["embedded_gain"]]
        ax.plot(g, curve["net_benefit_pre_tax"], label=f"{profile}: pre-tax (break-even {_pct(be_pre)})")
        ax.plot(g, curve["net_benefit_post_tax"], "--", label=f"{profile}: post-tax (break-even {_pct(be_post)})")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("embedded gain of the ETF (%)")
    ax.set_ylabel(f"net benefit of switching after {args.years} years ($)")
    ax.set_title(f"ETF → direct indexing, ${args.value:,.0f}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "sweep.png", dpi=120)
    plt.close(fig)
    (out / "sweep.json").write_text(json.dumps(result, indent=1) + "\n")
    img = base64.b64encode((out / "sweep.png").read_bytes()).decode()
    rows = "".join(
        f"<tr><td>{p}</td><td>{v['cg_rate']:.1%}</td><td>{v['income_rate']:.1%}</td>"
        f"<td>{_pct(v['breakeven_pre_tax'])}</td><td>{_pct(v['breakeven_post_tax'])}</td></tr>"
        for p, v in result["profiles"].items()
    )
    (out / "sweep.html").write_text(
        "<!doctype html><meta charset=utf-8><title>taxview transition sweep</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}td,th{padding:4px 12px}</style>"
        "<h1>Should an ETF investor switch to direct indexing?</h1>"
        f"<img alt='net benefit against embedded gain' src='data:image/png;base64,{img}' width=900>"
        "<table><tr><th>profile</th><th>cg rate</th><th>income rate</th><th>break-even pre-tax</th>"
        f"<th>break-even post-tax</th></tr>{rows}</table>"
        "<p>Above the break-even embedded gain, switching loses money. Method: domain.md §6.</p>"
    )
    if args.json:
        json.dump(
            {p: {k: v[k] for k in ("breakeven_pre_tax", "breakeven_post_tax")} for p, v in result["profiles"].items()},
            sys.stdout,
            indent=1,
        )
        print()
    else:
        for p, v in result["profiles"].items():
            print(
                f"{p:<8} break-even embedded gain: pre-tax {_pct(v['breakeven_pre_tax'])}, "
                f"post-tax {_pct(v['breakeven_post_tax'])}"
            )
        print(f"wrote {out / 'sweep.json'}, {out / 'sweep.png'}, {out / 'sweep.html'}")
    return 0


def _pct(v: float | None) -> str:
    return "none in 0–100%" if v is None else f"{v:.1%}"


def _cmd_backtest(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from solver.io import read_account_toml
    from taxview.backtest import TaxConfig, load_data, metrics, simulate
    from taxview.report import charts, report_html, write_metrics, write_nav

    if args.capital <= 0:
        from solver.errors import InputError

        raise InputError("capital", f"must be > 0, got {args.capital}")
    if args.account:
        settings, _, _ = read_account_toml(args.account)
    else:
        settings = default_settings(args.data)
    tax = TaxConfig(outside_gains=not args.no_outside_gains)
    data = load_data(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    m = data.market
    n_days = int(((m.dates >= np.datetime64(args.start)) & (m.dates <= np.datetime64(args.end))).sum())
    runs = {}
    for label, s in (("tax-aware", settings), ("baseline", replace(settings, lambda_tax=0.0))):
        with tqdm(total=n_days, unit="day", desc=label, file=sys.stderr, disable=args.quiet) as bar:
            runs[label] = simulate(
                data,
                args.start,
                args.end,
                args.rebalance,
                args.capital,
                s,
                tax,
                factors=args.factors,
                progress=bar,
            )
    run, base = runs["tax-aware"], runs["baseline"]
    result = metrics(run, args.capital)
    result["baseline"] = metrics(base, args.capital)
    result["tax_awareness_alpha_bps"] = round(
        (result["ann_return_after_tax"] - result["baseline"]["ann_return_after_tax"]) * 1e4, 1
    )
    assumptions = [
        f"data: {args.data}, {run.dates[0]} to {run.dates[-1]}, {args.rebalance} rebalancing, "
        f"${args.capital:,.0f} from cash",
        f"benchmark: {data.benchmark_kind}" + (f"; {data.index_name} shown for context" if data.index_name else ""),
        f"rates: short-term {settings.st_rate:.1%}, long-term {settings.lt_rate:.1%}; "
        + (
            "net losses offset outside gains in full"
            if tax.outside_gains
            else "net losses: $3,000 a year against ordinary income, the rest carried forward"
        ),
        "taxes settled per tax year (domain.md §2 netting), paid from outside the portfolio; a year's tax "
        "saving (or payment) is grown at the benchmark's return from then on",
        f"fills at the close; trading cost {settings.cost_bps:g} bps; whole shares; TE budget {settings.te_max:.1%}",
        "risk model: PCA of the trailing 252 days (refreshed every 21 trading days, no look-ahead)",
        "wash sales: the ledger's rule across the account; the optimizer never creates one",
        "liquidation after-tax NAV: every open lot sold on the last day at its own term's rate",
    ]
    result["assumptions"] = assumptions
    write_metrics(out, result)
    write_nav(out / "nav.parquet", run, base)
    images = charts(out, run, base, _align_index(data, run), data.index_name)
    page = report_html(out, result, images, assumptions)
    print(
        f"after-tax {result['ann_return_after_tax']:.2%}/yr vs benchmark {result['benchmark_ann_return']:.2%}/yr "
        f"(alpha {result['after_tax_alpha_bps']:+.0f} bps; "
        f"tax awareness {result['tax_awareness_alpha_bps']:+.0f} bps); "
        f"TE {result['tracking_error_bps']:.0f} bps; harvested {result['lifetime_harvested_pct']:.1f}% of capital; "
        f"wash sales created: {result['wash_sales_created']}; {result['days_per_second']:.0f} days/s"
    )
    print(f"wrote {out / 'metrics.json'}, {out / 'nav.parquet'}, {page} and {len(images)} PNG charts")
    return 0


def default_settings(data: str):
    """A 20-name universe cannot hold every name at a 5% cap while harvesting: allow 15% there."""
    from solver.types import AccountSettings

    return AccountSettings(max_weight=0.15) if data == "sp500-20" else AccountSettings()


def _align_index(data, run):
    if data.index is None:
        return None
    m = data.market
    i0 = int(np.searchsorted(m.dates, np.datetime64(run.dates[0])))
    return data.index[i0 : i0 + len(run.dates)]


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

    from ledger.trades import read_trades_table, report_json, report_table, trades_of
    from ledger.washsale import run

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
    (started, or the one another taxview command runs there; see ledger/server.py)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from ledger.server import connect
        from ledger.store import LedgerStore

        command = " ".join(["taxview", args.command, *([args.ledger_cmd] if args.command == "ledger" else [])])
        self.client, self.private, self.url = connect(
            _ledger_url(args), Path(args.workdir) / "redis", args.appendfsync, command
        )
        self.store = LedgerStore(self.client, identical=_parse_identical(getattr(args, "identical", None)))

    def __enter__(self):
        return self.store

    def __exit__(self, *exc) -> None:
        self.client.close()
        if self.private is not None:
            self.private.close()


def _cmd_ledger_import(args: argparse.Namespace) -> int:
    from ledger.importer import import_ledger, read_accounts, read_lots

    t0 = time.perf_counter()
    universe = None
    if args.market:
        from solver.market import read_market

        universe = set(read_market(args.market).symbols)
    accounts = read_accounts(args.accounts) if args.accounts else []
    as_of = _date(args.as_of) if args.as_of else None
    lots = read_lots(args.lots, as_of=as_of, universe=universe) if args.lots else None
    if lots is not None and universe is None:
        print(
            "taxview: note: symbols not checked against a universe (pass --market DIR to refuse unknown ones)",
            file=sys.stderr,
        )
    with _Ledger(args) as store:
        n_accounts, n = import_ledger(store, accounts, lots, replace=args.replace_account, progress=not args.quiet)
    print(f"imported {n_accounts} accounts and {n} lots in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


def _cmd_ledger_export(args: argparse.Namespace) -> int:
    from ledger.importer import export

    with _Ledger(args) as store:
        a, b = export(store, args.out)
    print(f"wrote {a} and {b}", file=sys.stderr)
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


def _date(text: str):
    import datetime as dt

    from solver.errors import InputError

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
        from solver.errors import InputError

        try:
            lines = Path(path).read_text().split()
        except OSError as exc:
            raise InputError("redis-url-file", f"cannot read {path}: {exc.strerror}") from None
        if not lines:
            raise InputError("redis-url-file", f"{path} is empty")
        return lines[0]
    return os.environ.get("TAXVIEW_REDIS_URL") or None


def _redis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis",
        help="redis://[:password@]host:port/db or rediss:// (default: --redis-url-file, then $TAXVIEW_REDIS_URL, "
        "else a private redis-server with its data under --workdir); a password here shows in ps: prefer the file",
    )
    p.add_argument("--redis-url-file", help="a file (mode 0600) whose first line is the ledger's URL")
    p.add_argument(
        "--workdir",
        default="taxview-work",
        help="where the private redis-server keeps its data; commands on one workdir share its server",
    )
    p.add_argument(
        "--appendfsync",
        choices=["everysec", "always"],
        default="everysec",
        help="private server durability: everysec (default) or always (no acknowledged commit lost)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="taxview", description="Tax-aware direct indexing at firm scale.")
    sub = p.add_subparsers(dest="command", required=True)

    market = sub.add_parser("market", help="market data").add_subparsers(dest="market_cmd", required=True)
    synth = market.add_parser("synth", help="write a deterministic synthetic market as Parquet")
    synth.add_argument("--names", type=int, default=500)
    synth.add_argument("--days", type=int, default=2520)
    synth.add_argument("--factors", type=int, default=20)
    synth.add_argument("--seed", type=int, default=7)
    synth.add_argument("--start", default="2015-01-02", help="first trading day (ISO)")
    synth.add_argument("--out", required=True)
    synth.set_defaults(func=_cmd_market_synth)

    solve = sub.add_parser("solve", help="rebalance one account")
    solve.add_argument("--market", required=True, help="market directory (README: data formats)")
    solve.add_argument("--date", required=True)
    solve.add_argument("--account", required=True, help="ACCOUNT.toml")
    solve.add_argument("--lots", required=True, help="LOTS.csv")
    solve.add_argument("--factors", type=int, default=20, help="PCA factors when no riskmodel/ is supplied")
    solve.add_argument("--json", action="store_true")
    solve.set_defaults(func=_cmd_solve)

    ws = sub.add_parser("washsale", help="wash-sale report of a trade history (CSV)")
    ws.add_argument("--trades", required=True, help="TRADES.csv (README: trade history)")
    ws.add_argument("--identical", help="substantially identical symbols, e.g. GOOG=GOOGL,BRK.A=BRK.B")
    ws.add_argument("--json", action="store_true")
    ws.add_argument(
        "--workers", type=int, help="processes for --json (default: one per core from 20,000 trades, else one)"
    )
    ws.set_defaults(func=_cmd_washsale)

    ledger = sub.add_parser("ledger", help="the Redis tax-lot ledger").add_subparsers(dest="ledger_cmd", required=True)
    imp = ledger.add_parser("import", help="bulk-load accounts and lots (CSV or Parquet)")
    imp.add_argument("--accounts", help="ACCOUNTS.csv|parquet: account,household,account_type[,st_rate,lt_rate,cash]")
    imp.add_argument("--lots", help="LOTS.csv|parquet: account,lot_id,symbol,quantity,basis,acquired[,holding_start]")
    imp.add_argument("--identical", help="substantially identical symbols, e.g. GOOG=GOOGL")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.add_argument(
        "--replace-account",
        action="append",
        default=[],
        metavar="ACCOUNT",
        help="restate an existing account from the files: its open lots are replaced (journaled); repeatable",
    )
    imp.add_argument("--market", help="market directory: refuse lots whose symbol is not in its universe")
    imp.add_argument("--as-of", help="YYYY-MM-DD: acquisition dates after it are refused (default: today)")
    _redis_options(imp)
    imp.set_defaults(func=_cmd_ledger_import)
    exp = ledger.add_parser("export", help="write accounts.parquet and lots.parquet")
    exp.add_argument("--out", required=True)
    _redis_options(exp)
    exp.set_defaults(func=_cmd_ledger_export)
    show = ledger.add_parser("show", help="one account's lots (and restrictions on --date)")
    show.add_argument("--account", required=True)
    show.add_argument("--date", help="also show the household's wash-sale restrictions on this date")
    show.add_argument("--json", action="store_true")
    _redis_options(show)
    show.set_defaults(func=_cmd_ledger_show)

    rb = sub.add_parser("rebalance", help="the nightly rebalance of every account in the ledger, on Ray")
    rb.add_argument("--date", required=True)
    rb.add_argument("--market", required=True)
    rb.add_argument("--out", required=True, help="directory for trades.parquet, accounts.parquet, run.json")
    rb.add_argument("--address", help="Ray cluster: auto or ray://host:10001 (default: a local Ray)")
    rb.add_argument("--workers", type=int, help="worker actors (default: one per CPU)")
    rb.add_argument(
        "--run-id", help="idempotency of the run (default nightly-DATE): re-running it applies nothing twice"
    )
    rb.add_argument("--shard-size", type=int, default=8, help="accounts per shard (households never split)")
    rb.add_argument("--factors", type=int, default=20, help="PCA factors when the market has no riskmodel/")
    rb.add_argument("--identical", help="substantially identical symbols, e.g. GOOG=GOOGL")
    rb.add_argument("--quiet", action="store_true", help="no progress bar")
    rb.add_argument(
        "--redis-retry-s",
        type=float,
        default=60.0,
        help="retry ledger calls through a Redis outage this long before an account fails (default 60)",
    )
    rb.add_argument(
        "--run-wait-s",
        type=float,
        default=3600.0,
        help="wait this long for another coordinator of the same run id to end (default 3600)",
    )
    _redis_options(rb)
    rb.set_defaults(func=_cmd_rebalance)

    tr = sub.add_parser("transition", help="should this investor switch from an ETF to direct indexing?")
    tr.add_argument("mode", nargs="?", choices=["sweep"], help="sweep: net benefit against embedded gain 0–100%%")
    tr.add_argument("--value", type=float, default=100_000.0, help="ETF value in dollars")
    tr.add_argument("--embedded-gain", type=float, default=0.20, help="unrealized gain as a fraction of value")
    tr.add_argument("--cg-rate", type=float, help="long-term capital-gains rate (default: the profile's, or 0.238)")
    tr.add_argument("--income-rate", type=float, help="rate the harvested losses save (default: profile, or 0.408)")
    tr.add_argument("--growth", type=float, default=0.06, help="yearly growth of both")
    tr.add_argument("--fee", type=float, default=0.003, help="yearly direct-indexing fee")
    tr.add_argument("--years", type=int, default=10)
    tr.add_argument("--harvest", type=float, default=0.30, help="harvested losses, fraction of the initial DI")
    tr.add_argument("--harvest-years", type=int, default=3)
    tr.add_argument("--harvest-from", help="metrics.json of a taxview backtest: its yearly harvested losses")
    tr.add_argument("--gradual-budget", type=float, help="also: move over years within this yearly gain ($)")
    tr.add_argument(
        "--profile",
        action="append",
        choices=["higher", "lower"],
        help="higher: cg 23.8%%, income 40.8%%; lower: cg 15.0%%, income 22.0%% (repeatable for sweep)",
    )
    tr.add_argument("--out", help="sweep: directory for sweep.json, sweep.png, sweep.html")
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(func=_cmd_transition)

    bt = sub.add_parser("backtest", help="after-tax backtest with a report")
    bt.add_argument("--data", default="sp500-20", help="sp500-20 | synthetic | a market DIR")
    bt.add_argument("--start", required=True)
    bt.add_argument("--end", required=True)
    bt.add_argument("--rebalance", choices=["daily", "weekly", "monthly"], default="monthly")
    bt.add_argument("--capital", type=float, default=1_000_000.0)
    bt.add_argument("--account", help="ACCOUNT.toml: rates and optimizer settings (README)")
    bt.add_argument(
        "--no-outside-gains",
        action="store_true",
        help="net losses only offset $3,000 of income a year; the rest carries forward",
    )
    bt.add_argument("--factors", type=int, default=20)
    bt.add_argument("--out", required=True)
    bt.add_argument("--quiet", action="store_true")
    bt.set_defaults(func=_cmd_backtest)

    demo = sub.add_parser("demo", help="the nightly rebalance of a synthetic firm (private Redis, local Ray)")
    demo.add_argument("--workdir", default="taxview-work")
    demo.add_argument("--accounts", type=int, default=200)
    demo.add_argument("--names", type=int, default=500)
    demo.add_argument("--days", type=int, default=1260)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--workers", type=int, help="worker actors (default: one per CPU)")
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=_cmd_demo)
    return p


class _Terminated(BaseException):
    """SIGTERM outside the rebalance loop (which handles it itself): unwind, cleaning up."""


def _terminated(signum, frame) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 success; 1 failure (accounts failed, ledger unreachable, any other error: one
    line, the traceback with TAXVIEW_DEBUG=1); 2 bad input; 3 ``solve``: not solved; 130/143
    interrupted by SIGINT/SIGTERM (``rebalance`` writes the outputs of what it did first)."""
    import threading

    from ledger.server import redact
    from solver.errors import InputError

    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    reaper = None
    try:
        if args.command in ("rebalance", "demo", "ledger"):  # they may start redis-server and Ray
            from cluster.reaper import Reaper

            reaper = Reaper.start()  # stops them if this process is killed without cleaning up
        return args.func(args)
    except InputError as exc:
        print(f"taxview: error: {redact(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("taxview: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("taxview: terminated", file=sys.stderr)
        return 143
    except SystemExit as exc:
        if exc.code == signal.SIGTERM:  # Ray's own SIGTERM handler, while ray.init runs
            print("taxview: terminated", file=sys.stderr)
            return 143
        raise
    except Exception as exc:
        if os.environ.get("TAXVIEW_DEBUG"):
            import traceback

            traceback.print_exc()
        what = "" if isinstance(exc, TaxviewError) else f"{type(exc).__name__}: "
        print(f"taxview: error: {what}{redact(exc)}", file=sys.stderr)
        return 1
    finally:
        if reaper is not None:
            reaper.close()
        if main_thread:
            signal.signal(signal.SIGTERM, before if before is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
