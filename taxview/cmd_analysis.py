"""``taxview backtest``, ``taxview transition`` and ``taxview report``: the analyses."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


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
            from taxview.core.errors import InputError

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

    from taxview.transition import analyze, gradual, te_path_from_metrics

    if args.mode == "sweep":
        return _cmd_transition_sweep(args)
    profiles = args.profile or [None]
    x = _transition_inputs(args, profiles[0])
    r = analyze(x)
    out = asdict(r)
    if args.gradual_budget:
        out["gradual"] = gradual(x, args.gradual_budget)
    if args.harvest_from:  # a legacy backtest's path toward the benchmark, beside the numbers it fed
        te_path = te_path_from_metrics(json.loads(Path(args.harvest_from).read_text()))
        if te_path is not None:
            out["te_path"] = te_path
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
    if "te_path" in out:
        print(
            "TE of the backtest's legacy transition, by year: "
            + ", ".join(f"{y} {te:.2%}" for y, te in out["te_path"].items())
        )
    if "gradual" in out:
        gr = out["gradual"]
        print(
            f"gradual switch (≤ ${gr['gain_budget']:,.0f} of gain a year, {gr['years_to_move']} years): "
            f"pre-tax {gr['pre_tax']:,.0f} vs all at once {gr['all_at_once_pre_tax']:,.0f}; "
            f"post-tax {gr['post_tax']:,.0f} vs {gr['all_at_once_post_tax']:,.0f}"
        )
    return 0


def _cmd_transition_sweep(args: argparse.Namespace) -> int:
    from taxview.report import png_data_uri, pyplot
    from taxview.transition import PROFILES, breakeven, sweep

    if not args.out:
        from taxview.core.errors import InputError

        raise InputError("out", "transition sweep needs --out DIR")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"profiles": {}}
    plt = pyplot()
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
    img = png_data_uri((out / "sweep.png").read_bytes())
    rows = "".join(
        f"<tr><td>{p}</td><td>{v['cg_rate']:.1%}</td><td>{v['income_rate']:.1%}</td>"
        f"<td>{_pct(v['breakeven_pre_tax'])}</td><td>{_pct(v['breakeven_post_tax'])}</td></tr>"
        for p, v in result["profiles"].items()
    )
    (out / "sweep.html").write_text(
        "<!doctype html><meta charset=utf-8><title>taxview transition sweep</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}td,th{padding:4px 12px}</style>"
        "<h1>Should an ETF investor switch to direct indexing?</h1>"
        f"<img alt='net benefit against embedded gain' src='{img}' width=900>"
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


def _cmd_report(args: argparse.Namespace) -> int:
    from taxview.morning import write_morning_report

    path = write_morning_report(Path(args.run), Path(args.out) if args.out else None)
    print(f"wrote {path}")
    return 0


def _pct(v: float | None) -> str:
    return "none in 0–100%" if v is None else f"{v:.1%}"


def _cmd_backtest(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from solver.io import read_account_toml, read_lots_csv
    from taxview.backtest import TaxConfig, exposure_path, load_data, metrics, simulate, transition_metrics
    from taxview.report import charts, report_html, write_metrics, write_nav

    if args.capital <= 0:
        from taxview.core.errors import InputError

        raise InputError("capital", f"must be > 0, got {args.capital}")
    if args.account:
        settings, _, _ = read_account_toml(args.account)
    else:
        settings = default_settings(args.data)
    tax = TaxConfig(outside_gains=not args.no_outside_gains)
    legacy = read_lots_csv(args.legacy) if args.legacy else None
    outside = frozenset(x.strip() for x in args.outside_universe.split(",") if x.strip())
    data = load_data(args.data)
    out = Path(args.out)
    made = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)  # early: an unwritable --out fails before the runs
    m = data.market
    n_days = int(((m.dates >= np.datetime64(args.start)) & (m.dates <= np.datetime64(args.end))).sum())
    runs = {}
    try:
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
                    lots=legacy,
                    factors=args.factors,
                    progress=bar,
                    outside=outside,
                )
    except BaseException:
        for p in made:  # refused or interrupted: the directories it made go again (nothing was written)
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        raise
    run, base = runs["tax-aware"], runs["baseline"]
    capital = args.capital if legacy is None else run.nav[0]  # a legacy portfolio starts at its value
    result = metrics(run, capital)
    result["baseline"] = metrics(base, capital)
    result["tax_awareness_alpha_bps"] = round(
        (result["ann_return_after_tax"] - result["baseline"]["ann_return_after_tax"]) * 1e4, 1
    )
    if legacy is not None:
        result["transition"] = transition_metrics(run, settings)
    if settings.tilts:
        result["exposures"] = exposure_path(run)
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
    images = charts(out, run, base, _align_index(data, run), data.index_name, transition=legacy is not None)
    page = report_html(out, result, images, assumptions)
    print(
        f"after-tax {result['ann_return_after_tax']:.2%}/yr vs benchmark {result['benchmark_ann_return']:.2%}/yr "
        f"(alpha {result['after_tax_alpha_bps']:+.0f} bps; "
        f"tax awareness {result['tax_awareness_alpha_bps']:+.0f} bps); "
        f"TE {result['tracking_error_bps']:.0f} bps; harvested {result['lifetime_harvested_pct']:.1f}% of capital; "
        f"wash sales created: {result['wash_sales_created']}; {result['days_per_second']:.0f} days/s"
    )
    if legacy is not None:
        tr = result["transition"]
        print(
            "legacy transition: TE by year "
            + ", ".join(f"{y} {te:.2%}" for y, te in tr["te_by_year"].items())
            + "; net realized gain by year "
            + ", ".join(f"{y} ${g:,.0f}" for y, g in tr["realized_by_year"].items())
            + (f" (budget ${tr['gain_budget']:,.0f}/yr)" if tr["gain_budget"] is not None else "")
            + "; outside the universe at the end: "
            + str(len(list(tr["outside_universe_left_by_year"].values())[-1]))
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
