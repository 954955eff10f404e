"""The nightly morning report: one self-contained HTML page a portfolio manager opens first.

``write_morning_report(run_dir)`` reads a nightly run's outputs (``run.json``, ``accounts.parquet``,
``trades.parquet``, and where present ``orders.parquet``, ``blocked.parquet`` and ``events.parquet``) and writes
``report.html`` beside them: firm totals, harvests by account type, tracking error against budget,
accounts that failed or gave way, wash-sale blocks, top harvested names, orders by size, mandate
changes and cash flows. ``inputs`` reads and checks the directory, ``summary`` computes the
numbers, ``page`` renders them.
"""

from __future__ import annotations

import os
from pathlib import Path

from .inputs import read_run
from .page import page

__all__ = ["write_morning_report"]


def write_morning_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the morning report of the run in ``run_dir`` to ``out`` (default ``run_dir/report.html``).

    Raises ``InputError`` when ``run_dir`` lacks ``run.json``, ``accounts.parquet`` or
    ``trades.parquet``, or a file is malformed. The page is written under a temporary name and
    renamed, so a reader never sees half of it.
    """
    run_dir = Path(run_dir)
    html = page(read_run(run_dir))
    out = Path(out) if out is not None else run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.partial"
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
