"""The backtest's outputs: nav.parquet, metrics.json, PNG charts and a self-contained report.html."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROLLING_DAYS = 63


def write_nav(path: Path, run, baseline) -> None:
    pq.write_table(
        pa.table(
            {
                "date": pa.array(run.dates, pa.date32()),
                "nav": run.nav,
                "after_tax_nav": run.after_tax_nav,
                "benchmark_nav": run.benchmark_nav,
                "cumulative_harvested": run.harvested,
                "baseline_nav": baseline.nav,
                "baseline_after_tax_nav": baseline.after_tax_nav,
                "baseline_cumulative_harvested": baseline.harvested,
            }
        ),
        path,
    )


def rolling_te(nav: list[float], bench: list[float], days: int = ROLLING_DAYS) -> np.ndarray:
    r = np.diff(np.asarray(nav)) / np.asarray(nav)[:-1] - np.diff(np.asarray(bench)) / np.asarray(bench)[:-1]
    out = np.full(len(nav), np.nan)
    for t in range(days, len(r) + 1):
        out[t] = np.std(r[t - days : t], ddof=1) * math.sqrt(252)
    return out


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display): the one set-up of every chart taxview draws."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, so an HTML report is one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def charts(out: Path, run, baseline, index=None, index_name=None, transition: bool = False) -> list[Path]:
    """nav.png, harvested.png and tracking_error.png: each line for the strategy and the baseline;
    with tilts exposures.png (each tilted style's achieved exposure against its target), with a
    legacy portfolio ``transition`` te_path.png (the ex-ante TE after each rebalance)."""
    plt = pyplot()
    from matplotlib.ticker import StrMethodFormatter

    d, cap = run.dates, run.nav[0]
    nav = [
        (run.after_tax_nav, "tax-aware, after tax", {"lw": 1.6}),
        (baseline.after_tax_nav, "not tax-aware (λ_tax = 0), after tax", {"lw": 1.0}),
        (run.nav, "tax-aware, pre-tax", {"lw": 0.8, "alpha": 0.7}),
        (run.benchmark_nav, "benchmark", {"lw": 1.2, "color": "black"}),
    ]
    if index is not None:
        nav.append((index / index[0] * run.benchmark_nav[0], f"{index_name} (context)", {"lw": 0.8, "ls": ":"}))
    excess = [
        (np.asarray(run.after_tax_nav) - np.asarray(run.benchmark_nav), "tax-aware − benchmark", {"lw": 1.6}),
        (
            np.asarray(run.after_tax_nav) - np.asarray(baseline.after_tax_nav),
            "tax-aware − not tax-aware (both after tax)",
            {"lw": 1.2},
        ),
    ]
    plots = [
        ("nav.png", "After-tax NAV against the benchmark (log scale)", "value ($, log scale)", 5, nav),
        ("excess.png", "Cumulative after-tax excess wealth", "$", 4, excess),
        (
            "harvested.png",
            "Cumulative harvested losses",
            "% of initial value",
            4,
            [
                (100 * np.asarray(run.harvested) / cap, "tax-aware", {}),
                (100 * np.asarray(baseline.harvested) / cap, "not tax-aware", {}),
            ],
        ),
        (
            "tracking_error.png",
            f"Realized tracking error, rolling {ROLLING_DAYS} days",
            "bps, annualized",
            4,
            [
                (1e4 * rolling_te(run.nav, run.benchmark_nav), "tax-aware", {}),
                (1e4 * rolling_te(baseline.nav, baseline.benchmark_nav), "not tax-aware", {}),
            ],
        ),
    ]
    for style, path in _exposure_paths(run).items():
        target = [path["target"]] * len(path["dates"])
        plots.append(
            (
                f"exposure_{style}.png",
                f"{style}: active exposure against its target",
                "standard deviations of the score",
                3,
                [(path["achieved"], "achieved (tax-aware)", {}), (target, "target", {"ls": "--", "color": "black"})],
                path["dates"],
            )
        )
    if transition and run.te_by_date:
        dates = [d for d, _ in run.te_by_date]
        te = [(100 * np.array([x for _, x in run.te_by_date]), "ex-ante TE after each rebalance", {})]
        title = "Legacy transition: tracking error toward the benchmark"
        plots.append(("te_path.png", title, "%, annualized", 4, te, dates))
    files = []
    for name, title, ylabel, height, lines, *when in plots:
        d = when[0] if when else run.dates
        fig, ax = plt.subplots(figsize=(10, height))
        for values, label, style in lines:
            ax.plot(d, values, label=label, **style)
        ax.set_ylabel(ylabel)
        if name == "nav.png":
            ax.set_yscale("log")
        if name == "excess.png":
            ax.axhline(0, color="black", lw=0.8)
            ax.yaxis.set_major_formatter(StrMethodFormatter("${x:,.0f}"))
        ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        files.append(out / name)
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)
    return files


def _exposure_paths(run) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for d, exposures in run.exposures_by_date:
        for style, (got, target) in exposures.items():
            if target is not None:
                row = out.setdefault(style, {"target": target, "dates": [], "achieved": []})
                row["dates"].append(d)
                row["achieved"].append(got)
    return out


def _sections(metrics: dict) -> str:
    """The tilts' exposures against their targets and a transition's path, as tables."""
    parts = []
    exposures = metrics.get("exposures") or {}
    if exposures:
        rows = "".join(
            f"<tr><th>{html.escape(style)}</th><td>{p['target']:+.3f}</td><td>{p['achieved'][-1]:+.3f}</td>"
            f"<td>{min(p['achieved']):+.3f}</td><td>{float(np.mean(p['achieved'])):+.3f}</td></tr>"
            for style, p in exposures.items()
            if p["achieved"]
        )
        parts.append(
            "<h2>Style tilts</h2><p>Active exposure in standard deviations of the style score, after each "
            "rebalance.</p><table><tr><th>style</th><td><b>target</b></td><td><b>last</b></td>"
            f"<td><b>lowest</b></td><td><b>mean</b></td></tr>{rows}</table>"
        )
    tr = metrics.get("transition")
    if tr:
        budget = tr.get("gain_budget")
        rows = "".join(
            f"<tr><th>{y}</th><td>{tr['te_by_year'].get(y, float('nan')):.2%}</td>"
            f"<td>${tr['realized_by_year'].get(y, 0):,.0f}</td>"
            f"<td>{'' if budget is None else f'${budget:,.0f}'}</td>"
            f"<td>{len(tr['outside_universe_left_by_year'].get(y, []))}</td></tr>"
            for y in tr["realized_by_year"]
        )
        parts.append(
            "<h2>Legacy transition</h2><table><tr><th>year</th><td><b>ex-ante TE at year end</b></td>"
            "<td><b>net realized gain</b></td><td><b>gain budget</b></td><td><b>names outside the universe "
            f"held</b></td></tr>{rows}</table>"
        )
    return "".join(parts)


# metrics.json's keys as a reader says them, with their units
LABELS = {
    "ann_return_pre_tax": "annualized return, pre-tax",
    "ann_return_after_tax": "annualized return, after tax",
    "benchmark_ann_return": "benchmark annualized return",
    "after_tax_alpha_bps": "after-tax alpha (bps a year)",
    "tracking_error_bps": "realized tracking error (bps, annualized)",
    "avg_turnover": "average turnover (one-way, a year)",
    "lifetime_harvested_pct": "harvested losses (% of initial value)",
    "harvested_by_year_pct": "harvested losses by year (% of initial value)",
    "tax_alpha_by_year": "tax alpha by year (% of the year's starting value)",
    "taxes_by_year": "tax by year ($; negative: saved)",
    "final_nav": "final value, pre-tax ($)",
    "final_after_tax_nav": "final value, after tax ($)",
    "liquidation_after_tax_nav": "final value if liquidated, after tax ($)",
    "benchmark_final_nav": "benchmark final value ($)",
    "wash_sales_created": "wash sales created",
    "realized_total": "net realized gain ($)",
    "rebalances": "rebalances",
    "solve_failures": "rebalances left untraded",
    "days": "trading days",
    "days_per_second": "simulated days per second",
    "tax_awareness_alpha_bps": "after-tax alpha of tax awareness (bps a year)",
}


def _fmt(key: str, v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(key, x)}" for k, x in v.items())
    if isinstance(v, float):
        if key.startswith("ann_return") or key == "benchmark_ann_return" or key.startswith("tax_alpha_by"):
            return f"{v:.2%}"
        if key == "avg_turnover":
            return f"{v:.1%}"
        if "nav" in key:
            return f"${v:,.0f}"
        return f"{v:,.2f}"
    return html.escape(str(v))


def report_html(out: Path, metrics: dict, images: list[Path], assumptions: list[str]) -> Path:
    keys = [k for k in metrics if k not in ("baseline", "assumptions", "inputs", "exposures", "transition")]
    base = metrics["baseline"]
    rows = "".join(
        f"<tr><th title='{html.escape(k)}'>{html.escape(LABELS.get(k, k))}</th><td>{_fmt(k, metrics[k])}</td>"
        f"<td>{_fmt(k, base.get(k, ''))}</td></tr>"
        for k in keys
    )
    imgs = "".join(f"<figure><img src='{png_data_uri(p.read_bytes())}' alt='{p.stem}'></figure>" for p in images)
    notes = "".join(f"<li>{html.escape(a)}</li>" for a in assumptions)
    page = f"""<!doctype html><html lang=en><meta charset=utf-8><title>taxview after-tax backtest</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
img{{max-width:100%}}table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:4px 10px;
text-align:left;font-weight:normal}}th{{color:#555}}</style>
<h1>After-tax backtest</h1>
<p>Tax-aware direct indexing against its benchmark, and the same strategy without tax awareness.</p>
{imgs}
<h2>Metrics</h2><table><tr><th></th><td><b>tax-aware</b></td><td><b>not tax-aware</b></td></tr>{rows}</table>
{_sections(metrics)}
<h2>Assumptions</h2><ul>{notes}</ul></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path


def write_metrics(out: Path, metrics: dict) -> Path:
    path = out / "metrics.json"
    path.write_text(json.dumps(metrics, indent=1, default=str) + "\n")
    return path
