"""The ``taxview`` command line: the parser and ``main`` (the commands live in ``cmd_*``)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from taxview.core.errors import TaxviewError

from .cmd_accounts import _cmd_accounts_import, _cmd_accounts_set, _cmd_accounts_show, _cmd_cash
from .cmd_analysis import _cmd_backtest, _cmd_report, _cmd_transition
from .cmd_ledger import (
    _cmd_ledger_action,
    _cmd_ledger_close_year,
    _cmd_ledger_compact,
    _cmd_ledger_export,
    _cmd_ledger_import,
    _cmd_ledger_show,
    _cmd_washsale,
)
from .cmd_run import (
    _cmd_demo,
    _cmd_market_append,
    _cmd_market_synth,
    _cmd_market_universe,
    _cmd_rebalance,
    _cmd_solve,
)
from .cmd_serve import add_serve_parser


def _redis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis",
        help="redis://[:password@]host:port/db or rediss://, a Redis Cluster by any node's URL or redis+cluster:// "
        "(default: --redis-url-file, then $TAXVIEW_REDIS_URL, "
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
    synth = market.add_parser(
        "synth", help="write a deterministic synthetic market as Parquet (--out), or continue one (--extend)"
    )
    synth.add_argument("--names", type=int, help="default 500")
    synth.add_argument("--days", type=int, help="trading days (default 2520); with --extend: new business days")
    synth.add_argument("--factors", type=int, help="default 20")
    synth.add_argument("--seed", type=int, help="default 7")
    synth.add_argument("--start", help="first trading day (ISO, default 2015-01-02)")
    where = synth.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="the new market directory (with synthetic.json: how it was made)")
    where.add_argument(
        "--extend", metavar="DIR", help="add --days business days to the synthetic market DIR with its own process"
    )
    synth.set_defaults(func=_cmd_market_synth)
    append = market.add_parser("append", help="add days of closes to a market directory")
    append.add_argument("--market", required=True, help="market directory (README: data formats)")
    append.add_argument("--prices", required=True, help="CSV or Parquet of date,symbol,close (README: data formats)")
    append.set_defaults(func=_cmd_market_append)
    universe = market.add_parser("universe", help="list and delist names of a market directory")
    universe.add_argument("--market", required=True, help="market directory (README: data formats)")
    universe.add_argument(
        "--file",
        required=True,
        help="CSV or Parquet of symbol,action,date[,sector,shares_outstanding] (README: universe updates)",
    )
    universe.set_defaults(func=_cmd_market_universe)

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
    imp.add_argument(
        "--journal",
        metavar="EXPORT",
        help="instead: rebuild an empty ledger from a ledger export's journal (after --archive's), checked "
        "against its lots",
    )
    imp.add_argument("--archive", help="with --journal: the compaction archive replayed first")
    _redis_options(imp)
    imp.set_defaults(func=_cmd_ledger_import)
    exp = ledger.add_parser("export", help="write accounts.parquet, lots.parquet and journal.parquet")
    exp.add_argument("--out", required=True)
    _redis_options(exp)
    exp.set_defaults(func=_cmd_ledger_export)
    show = ledger.add_parser("show", help="one account's lots (and restrictions on --date)")
    show.add_argument("--account", required=True)
    show.add_argument("--date", help="also show the household's wash-sale restrictions on this date")
    show.add_argument("--json", action="store_true")
    _redis_options(show)
    show.set_defaults(func=_cmd_ledger_show)
    split = ledger.add_parser("split", help="a stock split: every open lot of SYMBOL × RATIO, basis and dates kept")
    split.add_argument("symbol", metavar="SYMBOL")
    split.add_argument("ratio", metavar="RATIO", help="new shares per old share: 2, 3:2, 1:10 (a reverse split)")
    rename = ledger.add_parser("rename", help="a symbol change: lots, wash-sale windows, pending sales of OLD → NEW")
    rename.add_argument("old", metavar="OLD")
    rename.add_argument("new", metavar="NEW")
    for action in (split, rename):
        action.add_argument("--date", required=True, help="effective date (YYYY-MM-DD): before any trade dated on it")
        action.add_argument("--id", help="the action's id (default split:SYMBOL:RATIO:DATE, rename:OLD:NEW:DATE)")
        action.add_argument("--identical", help="substantially identical symbols, as given to the import")
        _redis_options(action)
        action.set_defaults(func=_cmd_ledger_action)
    close = ledger.add_parser(
        "close-year", help="year end: roll every household's loss carry-forward from YEAR into the next (§2 netting)"
    )
    close.add_argument("year", metavar="YEAR", type=int, help="the tax year that ended, e.g. 2025")
    close.add_argument("--actor", help="who closes it (default: the login name), journaled")
    close.add_argument("--json", action="store_true")
    _redis_options(close)
    close.set_defaults(func=_cmd_ledger_close_year)

    compact = ledger.add_parser(
        "compact", help="archive history before DATE to Parquet and trim it from Redis (the retention policy)"
    )
    compact.add_argument("--before", required=True, help="YYYY-MM-DD: journal, idempotency records, closed sales")
    compact.add_argument(
        "--archive", help="the archive directory (default: the firm's [retention], else WORKDIR/archive)"
    )
    compact.add_argument("--firm", help="the firm's TOML: its [retention] table names the archive")
    compact.add_argument("--json", action="store_true")
    compact.add_argument("--quiet", action="store_true", help="no progress bar")
    _redis_options(compact)
    compact.set_defaults(func=_cmd_ledger_compact)

    acc = sub.add_parser("accounts", help="account mandates: import, set, show").add_subparsers(
        dest="accounts_cmd", required=True
    )
    ai = acc.add_parser("import", help="create accounts and change mandates from a file (CSV or Parquet)")
    ai.add_argument("file", help="one row per account: account, [household, cash,] mandate keys (README)")
    ai.add_argument("--actor", help="who makes the change (default: the login name), journaled")
    _redis_options(ai)
    ai.set_defaults(func=_cmd_accounts_import)
    aset = acc.add_parser("set", help="change an account's mandate: key=value ... (key= : the firm's default)")
    aset.add_argument("account")
    aset.add_argument("changes", nargs="+", metavar="key=value")
    aset.add_argument("--actor", help="who makes the change (default: the login name), journaled")
    _redis_options(aset)
    aset.set_defaults(func=_cmd_accounts_set)
    ashow = acc.add_parser("show", help="an account's mandate, the settings it gets, its history")
    ashow.add_argument("account")
    ashow.add_argument("--firm", help="the firm's defaults (TOML, [defaults]); default: taxview's")
    ashow.add_argument("--json", action="store_true")
    _redis_options(ashow)
    ashow.set_defaults(func=_cmd_accounts_show)

    cash = sub.add_parser("cash", help="record a deposit or withdrawal, booked on the night of its date")
    cash.add_argument("account", nargs="?")
    cash.add_argument("amount", nargs="?", help="dollars; negative: a withdrawal (e.g. -50000)")
    cash.add_argument("--date", help="the night it is booked and invested or raised (YYYY-MM-DD)")
    cash.add_argument("--reason", help="one line, journaled")
    cash.add_argument("--file", help="a night's flows instead: CSV account,amount,date[,reason]")
    cash.add_argument("--market", help="refuse a withdrawal larger than the account at this market's last close")
    cash.add_argument("--actor", help="who records it (default: the login name), journaled")
    _redis_options(cash)
    cash.set_defaults(func=_cmd_cash)

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
    rb.add_argument("--firm", help="the firm's defaults (TOML, [defaults]); each account's mandate goes over them")
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
    rb.add_argument(
        "--no-compact", action="store_true", help="do not compact the ledger after the night (the firm's [retention])"
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
    bt.add_argument(
        "--legacy",
        help="LOTS.csv (lot_id,symbol,quantity,basis,acquired): start from this legacy portfolio instead of cash",
    )
    bt.add_argument(
        "--outside-universe",
        default="",
        help="SYM,SYM,...: names of the data outside the benchmark's universe (weight 0, sold over time)",
    )
    bt.add_argument("--out", required=True)
    bt.add_argument("--quiet", action="store_true")
    bt.set_defaults(func=_cmd_backtest)

    report = sub.add_parser("report", help="the morning report of a nightly run: one self-contained HTML page")
    report.add_argument("--run", required=True, help="the run's --out directory (run.json, accounts.parquet, ...)")
    report.add_argument("--out", help="the HTML file to write (default: DIR/report.html)")
    report.set_defaults(func=_cmd_report)

    demo = sub.add_parser("demo", help="the nightly rebalance of a synthetic firm (private Redis, local Ray)")
    demo.add_argument("--workdir", default="taxview-work")
    demo.add_argument("--accounts", type=int, default=200)
    demo.add_argument("--nights", type=int, default=5, help="consecutive nights after the firm's day (default 5)")
    demo.add_argument("--names", type=int, default=500)
    demo.add_argument("--days", type=int, default=1260)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--workers", type=int, help="worker actors (default: one per CPU)")
    demo.add_argument("--keep-days", type=int, default=45, help="retention: days of history kept in Redis (45)")
    demo.add_argument("--no-compact", action="store_true", help="never compact the ledger after a night")
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=_cmd_demo)

    add_serve_parser(sub, _redis_options)
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

    from ledger.connection import redact
    from taxview.core.errors import InputError

    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    reaper = None
    try:
        serving = args.command == "serve" and args.serve_cmd is None
        if args.command in ("rebalance", "demo", "ledger") or serving:  # they may start redis-server and Ray
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
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
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
