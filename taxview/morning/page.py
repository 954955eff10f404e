"""The morning report as one self-contained HTML page: inline CSS, charts as PNG data URIs, no script.

Every string that comes from the data (account ids, reasons, notes, actors) reaches the page through
``_esc`` (table cells and list items go through ``_table`` and ``_para``, which escape), and a
Content-Security-Policy forbids scripts and any network fetch besides.
"""

from __future__ import annotations

import html
import io
from collections import Counter
from decimal import Decimal

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from taxview.report import png_data_uri, pyplot

from . import summary as s

TOP = 20  # rows shown per table; the total is always stated
CHART_DPI = 100
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f6f7f9;margin:0}
main{max-width:1100px;margin:0 auto;padding:20px 28px 48px}
header{border-bottom:2px solid #1d2330;margin-bottom:18px;padding-bottom:8px}
h1{font-size:26px;margin:0}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}
.sub{color:#5b6475;margin:4px 0 0}
section{background:#fff;border:1px solid #e1e4ea;border-radius:6px;padding:4px 18px 14px;margin-bottom:16px}
.alert{background:#fdecea;border:1px solid #e9a29a;color:#7a1d12;border-radius:6px;padding:8px 14px;margin-bottom:16px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px;margin:10px 0 0}
.tile{background:#f3f5f8;border-radius:6px;padding:8px 12px}
.tile .k{color:#5b6475;font-size:13px}.tile .v{font-size:20px;font-weight:600;white-space:nowrap}
.tile .d{color:#5b6475;font-size:12px}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:14px}
th,td{border-bottom:1px solid #e4e7ec;padding:4px 8px;text-align:left;vertical-align:top}
th{color:#5b6475;font-weight:600;background:#fafbfc}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.w{word-break:break-word;max-width:460px}
.count{color:#5b6475;font-size:13px;margin:4px 0}
.missing{color:#8a6d1d;background:#fff8e1;border-radius:4px;padding:6px 10px;display:inline-block}
figure{margin:8px 0}figure img{max-width:100%;height:auto;display:block}
"""


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def usd(value: Decimal | float | None) -> str:
    """Dollars with thousands separators and cents: 1234.5 -> $1,234.50, -3 -> -$3.00."""
    if value is None:
        return "—"
    value = round(value, 2)  # so that -0.001 shows as $0.00, not -$0.00
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def _pct(value: float) -> str:
    return f"{value:.2%}"


def _num(value: float | None, digits: int = 0) -> str:
    """A count or quantile: whole numbers without decimals, others to ``digits`` places."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.{digits}f}"


def _table(
    headers: list[str], rows: list[list[object]], numeric: tuple[int, ...] = (), wide: tuple[int, ...] = ()
) -> str:
    """A table whose every cell is escaped text; ``numeric`` columns right-aligned, ``wide`` ones wrap."""

    def cls(i: int) -> str:
        return " class=n" if i in numeric else " class=w" if i in wide else ""

    head = "".join(f"<th{cls(i)}>{_esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{_esc(c)}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _para(text: str, cls: str = "") -> str:
    return f"<p{f' class={cls}' if cls else ''}>{_esc(text)}</p>"


def _many(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _count(total: int, one: str, many: str, detail: str = "", none: str = "") -> str:
    """How many rows there are, and how many the table shows: "45 names (…): the top 20 shown." """
    if total == 0:
        return _para(none or f"No {many} tonight.", "count")
    text = _many(total, one, many) + (f" ({detail})" if detail else "")
    return _para(text + (f": the top {TOP:,} shown." if total > TOP else "."), "count")


def _not_recorded(what: str) -> str:
    return _para(f"{what} not recorded in this run.", "missing")


def _section(anchor: str, title: str, body: str) -> str:
    return f"<section id={anchor}><h2>{_esc(title)}</h2>{body}</section>"


def _figure(fig, alt: str) -> str:
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=CHART_DPI)
    width, height = (int(round(x * CHART_DPI)) for x in fig.get_size_inches())
    plt.close(fig)
    return (
        f"<figure><img src='{png_data_uri(buf.getvalue())}' alt='{_esc(alt)}' width={width} height={height}></figure>"
    )


def _axes(title: str, xlabel: str, ylabel: str, height: float = 3.2, counts: bool = True):
    """A wide chart; ``counts``: its y axis counts things (whole-number ticks)."""
    fig, ax = pyplot().subplots(figsize=(10, height))
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if counts:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, ax


def _dollar_axis(axis, log: bool = False) -> None:
    """Ticks in whole dollars; on a log axis at 1, 2 and 5 of each decade, unlabelled between."""
    if log:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.0f}"))


# --- sections ---------------------------------------------------------------------------------------


def _tile(key: str, value: str, detail: str = "") -> str:
    d = f"<div class=d>{_esc(detail)}</div>" if detail else ""
    return f"<div class=tile><div class=k>{_esc(key)}</div><div class=v>{_esc(value)}</div>{d}</div>"


def totals_section(t: s.Totals) -> str:
    accounts_detail = f"{t.ok:,} ok, {t.failed:,} failed" + (f", {t.not_run:,} not run" if t.not_run else "")
    tiles = [
        _tile("accounts", f"{t.accounts:,}", accounts_detail),
        _tile(
            "orders",
            f"{t.orders:,}",
            f"per account: median {_num(t.orders_p50, 1)}, p90 {_num(t.orders_p90, 1)}"
            if t.orders_p50 is not None
            else "",
        ),
        _tile("trades (lots)", f"{t.trades:,}"),
        _tile("harvested losses", usd(t.harvested_loss)),
        _tile("estimated tax saving", usd(t.tax_saving), "−Σ tax estimate (negative: net gains taxed)"),
        _tile(
            "throughput",
            f"{t.accounts_per_s:,.1f} accounts/s",
            f"on {t.workers} worker{'s' if t.workers != 1 else ''}" if t.workers else "",
        ),
        _tile("wall time", f"{t.wall_s:,.1f} s"),
    ]
    if t.mandate_changes is not None:
        tiles.append(_tile("mandate changes", f"{t.mandate_changes:,}"))
    if t.cash_flows is not None:
        tiles.append(_tile("cash flows", f"{t.cash_flows:,}"))
    if t.ledger_memory_bytes is not None:
        tiles.append(_tile("ledger memory (Redis)", f"{t.ledger_memory_bytes / 2**20:,.1f} MiB"))
    return _section("totals", "Firm totals", f"<div class=tiles>{''.join(tiles)}</div>")


def alert_banner(t: s.Totals) -> str:
    problems = []
    if t.failed:
        problems.append(f"{t.failed:,} of {t.accounts:,} accounts failed (below: their reasons).")
    if t.interrupted:
        problems.append(f"The run was interrupted: {t.not_run:,} accounts were not rebalanced.")
    return f"<div class=alert role=alert>{' '.join(_esc(p) for p in problems)}</div>" if problems else ""


def by_type_section(rows: list[s.TypeRow] | None) -> str:
    title = "Harvested losses and estimated tax saving by account type"
    if rows is None:
        return _section("by-type", title, _not_recorded("Account types"))
    table = _table(
        ["account type", "accounts", "harvested losses", "estimated tax saving"],
        [[r.account_type, f"{r.accounts:,}", usd(r.harvested_loss), usd(r.tax_saving)] for r in rows[:TOP]],
        numeric=(1, 2, 3),
    )
    return _section("by-type", title, _count(len(rows), "account type", "account types") + table)


def te_chart(te: s.TrackingError) -> str:
    if te.against_budget:
        fig, ax = _axes("Ex-ante tracking error as a fraction of each account's budget", "TE / budget", "accounts")
        top = max(1.25, float(te.values.max()) * 1.05)
        bins = np.linspace(0, top, 41)
        ax.hist(te.values[te.values <= 1], bins=bins, color="#4c78a8", label="within budget")
        ax.hist(te.values[te.values > 1], bins=bins, color="#e45756", label="over budget")
        ax.axvline(1.0, color="#7a1d12", lw=1.2, ls="--")
        ax.legend()
    else:
        fig, ax = _axes("Ex-ante tracking error (annualized)", "TE, basis points", "accounts")
        ax.hist(te.values * 1e4, bins=40, color="#4c78a8")
    fig.tight_layout()
    return _figure(fig, "histogram of ex-ante tracking error")


def te_section(te: s.TrackingError) -> str:
    title = "Tracking error against budget"
    if te.values.size == 0:
        return _section("tracking-error", title, _para("No account has an ex-ante tracking error tonight.", "count"))
    parts = [te_chart(te)]
    if not te.against_budget:
        parts.append(_not_recorded("TE budgets"))
        parts.append(
            _para(
                f"{te.values.size:,} accounts: median TE {_pct(float(np.median(te.values)))}, "
                f"max {_pct(te.values.max())}."
            )
        )
        return _section("tracking-error", title, "".join(parts))
    parts.append(
        _count(len(te.over), "account over its TE budget", "accounts over their TE budget", f"of {te.values.size:,}")
    )
    if te.without_budget:
        parts.append(_para(f"{te.without_budget:,} accounts with a TE have no budget recorded.", "count"))
    if te.over:
        shown = te.over[:TOP]
        parts.append(
            _table(
                ["account", "household", "type", "ex-ante TE", "budget", "TE / budget"],
                [
                    [o.account, o.household, o.account_type or "", _pct(o.te), _pct(o.budget), f"{o.ratio:.2f}"]
                    for o in shown
                ],
                numeric=(3, 4, 5),
            )
        )
    return _section("tracking-error", title, "".join(parts))


def attention_section(rows: list[s.Attention], notes_recorded: bool, versions_recorded: bool) -> str:
    title = "Accounts that failed or gave way"
    parts = []
    if not notes_recorded:
        parts.append(_not_recorded("Solver notes (where a solved account gave way)"))
    failed = sum(a.status not in s.OK_STATUSES for a in rows)
    parts.append(
        _count(
            len(rows),
            "account",
            "accounts",
            f"{failed:,} failed, {len(rows) - failed:,} gave way, paused or liquidating",
            none="No account failed or gave way tonight.",
        )
    )
    if rows:
        columns = [
            ("account", lambda a: a.account, True),
            ("household", lambda a: a.household, True),
            ("status", lambda a: a.status, True),
            ("reason", lambda a: a.reason, True),
            ("solver notes", lambda a: a.notes, notes_recorded),
            ("mandate", lambda a: "" if a.mandate_version is None else f"v{a.mandate_version}", versions_recorded),
        ]
        shown = [(name, cell) for name, cell, recorded in columns if recorded]
        parts.append(
            _table(
                [name for name, _ in shown],
                [[cell(a) for _, cell in shown] for a in rows[:TOP]],
                wide=tuple(i for i, (name, _) in enumerate(shown) if name in ("reason", "solver notes")),
            )
        )
    return _section("attention", title, "".join(parts))


def blocked_section(names: list[s.BlockedName] | None) -> str:
    title = "Names blocked by household wash-sale windows tonight"
    if names is None:
        return _section("blocked", title, _not_recorded("Wash-sale blocks (blocked.parquet)"))
    shown = names[:TOP]
    table = _table(
        ["symbol", "households", "no buy", "no loss sale", "blocked until"],
        [[b.symbol, f"{b.households:,}", f"{b.no_buy:,}", f"{b.no_loss_sale:,}", b.until or ""] for b in shown],
        numeric=(1, 2, 3),
    )
    return _section(
        "blocked", title, _count(len(names), "name", "names", "most households first") + (table if shown else "")
    )


def tilts_section(rows: list[s.TiltRow] | None) -> str:
    title = "Style tilts: active exposures against their targets"
    if rows is None:
        return _section("tilts", title, _not_recorded("Style tilts (accounts.parquet tilts)"))
    if not rows:
        return _section("tilts", title, _para("No account tilts a style.", "count"))
    table = _table(
        ["style", "accounts", "mean target", "mean achieved", "short of target", "worst"],
        [
            [
                r.style,
                f"{r.accounts:,}",
                f"{r.target_mean:+.3f}",
                f"{r.achieved_mean:+.3f}",
                f"{len(r.short):,}",
                f"{r.short[0][0]} {r.short[0][1]:+.3f} (target {r.short[0][2]:+.3f})" if r.short else "",
            ]
            for r in rows
        ],
        numeric=(1, 2, 3, 4),
        wide=(5,),
    )
    return _section(
        "tilts",
        title,
        _para("Exposure in standard deviations of the style score, after rounding (a lean away: a negative target).")
        + table,
    )


def harvested_chart(names: list[s.HarvestedName]) -> str:
    shown = names[:TOP][::-1]
    fig, ax = _axes(
        "Harvested losses by name", "harvested loss ($)", "", height=max(2.4, 0.24 * len(shown) + 1.0), counts=False
    )
    ax.barh([n.symbol for n in shown], [float(n.loss) for n in shown], color="#54a24b")
    _dollar_axis(ax.xaxis)
    fig.tight_layout()
    return _figure(fig, "harvested losses of the top names")


def harvested_section(names: list[s.HarvestedName], iras_excluded: bool) -> str:
    title = "Top harvested names"
    scope = "Sells at a loss, summed by name" + (
        " (IRA accounts left out: their losses save no tax)."
        if iras_excluded
        else " (account types not recorded: every account)."
    )
    parts = [_para(scope, "count"), _count(len(names), "name", "names", "largest loss first")]
    if names:
        parts.append(harvested_chart(names))
        parts.append(
            _table(
                ["symbol", "harvested loss", "accounts", "lots sold"],
                [[n.symbol, usd(n.loss), f"{n.accounts:,}", f"{n.lots:,}"] for n in names[:TOP]],
                numeric=(1, 2, 3),
            )
        )
    return _section("harvested", title, "".join(parts))


def orders_chart(o: s.Orders) -> str:
    values = np.clip(o.values, 0.01, None)
    fig, ax = _axes("Orders by size (one order = account × symbol × side)", "order value ($, log scale)", "orders")
    bins = np.geomspace(values.min(), values.max() * 1.0001, 41) if values.max() > values.min() else 10
    ax.hist(
        [values[o.buy], values[~o.buy]], bins=bins, stacked=True, color=["#4c78a8", "#f58518"], label=["buy", "sell"]
    )
    ax.set_xscale("log")
    _dollar_axis(ax.xaxis, log=True)
    ax.legend()
    fig.tight_layout()
    return _figure(fig, "histogram of order values")


def orders_section(o: s.Orders) -> str:
    title = "Orders by size"
    if o.count == 0:
        return _section("orders", title, _para("No orders tonight.", "count"))
    q = np.percentile(o.values, [10, 50, 90])
    table = _table(
        ["orders", "buys", "sells", "total value", "p10", "median", "p90", "largest"],
        [
            [
                f"{o.count:,}",
                f"{o.buys:,}",
                f"{o.sells:,}",
                usd(float(o.values.sum())),
                *map(usd, map(float, q)),
                usd(float(o.values.max())),
            ]
        ],
        numeric=tuple(range(8)),
    )
    return _section("orders", title, orders_chart(o) + table)


def events_section(events: list[s.Event] | None, flows: s.CashFlows | None, t: s.Totals) -> str:
    title = "Mandate changes and cash flows since last night"
    parts = []
    if t.mandate_changes is not None or t.cash_flows is not None:
        applied = [
            _many(n, one, many)
            for n, one, many in (
                (t.mandate_changes, "mandate change", "mandate changes"),
                (t.cash_flows, "cash flow", "cash flows"),
            )
            if n is not None
        ]
        parts.append(_para(f"The run applied {' and '.join(applied)}.", "count"))
    if flows is not None:
        parts.append(
            _para(
                f"Cash flows tonight: {flows.accounts:,} accounts, deposits {usd(flows.deposits)}, "
                f"withdrawals {usd(flows.withdrawals)}, net {usd(flows.deposits + flows.withdrawals)}.",
                "count",
            )
        )
    if events is None:
        parts.append(_not_recorded("Mandate and cash-flow events (events.parquet)"))
    else:
        kinds = Counter(e.kind for e in events)
        by_kind = ", ".join(f"{n:,} {k}" for k, n in sorted(kinds.items()))
        parts.append(_count(len(events), "event", "events", f"{by_kind}, oldest first"))
        if events:
            parts.append(
                _table(
                    ["time", "account", "kind", "by", "detail"],
                    [[_time(e.time), e.account, e.kind, e.actor, e.detail] for e in events[:TOP]],
                    wide=(4,),
                )
            )
    return _section("events", title, "".join(parts))


def _time(value: object) -> str:
    if hasattr(value, "strftime") and hasattr(value, "hour"):
        zone = value.strftime(" %Z") if getattr(value, "tzinfo", None) else ""
        return value.strftime("%Y-%m-%d %H:%M") + zone
    return "" if value is None else str(value)


def page(inputs) -> str:
    """The whole report for one night (``inputs``: a ``RunInputs``)."""
    night_orders = s.orders(inputs)
    totals = s.firm_totals(inputs, night_orders)
    sections = [
        totals_section(totals),
        by_type_section(s.by_account_type(inputs)),
        te_section(s.tracking_error(inputs)),
        attention_section(s.attention(inputs), inputs.recorded("notes"), inputs.recorded("mandate_version")),
        blocked_section(s.blocked_names(inputs)),
        harvested_section(s.harvested_names(inputs), inputs.recorded("account_type")),
        tilts_section(s.tilts(inputs)),
        orders_section(night_orders),
        events_section(s.events(inputs), s.cash_flows(inputs), totals),
    ]
    title = f"taxview morning report · {totals.date}"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv=Content-Security-Policy content="{CSP}">'
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>Morning report</h1>{_para(f'run {totals.run_id} · trading date {totals.date}', 'sub')}</header>"
        f"{alert_banner(totals)}{''.join(sections)}</main></body></html>\n"
    )
