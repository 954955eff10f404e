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


def charts(out: Path, run, baseline, index=None, index_name=None) -> list[Path]:
    """nav.png, harvested.png and tracking_error.png: each line for the strategy and the baseline."""
    plt = pyplot()
    d, cap = run.dates, run.nav[0]
    nav = [
        (run.after_tax_nav, "tax-aware, after tax", {"lw": 1.6}),
        (baseline.after_tax_nav, "not tax-aware (λ_tax = 0), after tax", {"lw": 1.0}),
        (run.nav, "tax-aware, pre-tax", {"lw": 0.8, "alpha": 0.7}),
        (run.benchmark_nav, "benchmark", {"lw": 1.2, "color": "black"}),
    ]
    if index is not None:
        nav.append((index / index[0] * run.benchmark_nav[0], f"{index_name} (context)", {"lw": 0.8, "ls": ":"}))
    plots = [
        ("nav.png", "After-tax NAV against the benchmark", "value ($)", 5, nav),
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
    files = []
    for name, title, ylabel, height, lines in plots:
        fig, ax = plt.subplots(figsize=(10, height))
        for values, label, style in lines:
            ax.plot(d, values, label=label, **style)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        files.append(out / name)
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)
    return files


def _fmt(key: str, v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(key, x)}" for k, x in v.items())
    if isinstance(v, float):
        if key.startswith("ann_return") or key == "benchmark_ann_return" or key.startswith("tax_alpha"):
            return f"{v:.2%}"
        if "nav" in key:
            return f"${v:,.0f}"
        return f"{v:,.2f}"
    return html.escape(str(v))


def report_html(out: Path, metrics: dict, images: list[Path], assumptions: list[str]) -> Path:
    keys = [k for k in metrics if k not in ("baseline", "assumptions", "inputs")]
    base = metrics["baseline"]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_fmt(k, metrics[k])}</td><td>{_fmt(k, base.get(k, ''))}</td></tr>"
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
<h2>Assumptions</h2><ul>{notes}</ul></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path


def write_metrics(out: Path, metrics: dict) -> Path:
    path = out / "metrics.json"
    path.write_text(json.dumps(metrics, indent=1, default=str) + "\n")
    return path
