"""How fast is the wash-sale report? (issue 9: a 100,000-trade file in under 5 s)

A deterministic random trade history (households with a taxable, a spouse's and an IRA account,
20 names, buys, specific-id and FIFO sells, many wash sales) written as a CSV, then timed end to
end as ``taxview washsale --json`` does it: parse and validate, apply, build the JSON report.
Median of ``--repeat`` runs, measured in one run: the command itself (``cli_median_s``, process
start to exit, the figure that counts) and its stages in this process (with the cycle collector on).

    python benchmarks/washsale.py [--trades 100000] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import emit  # benchmarks/ is on sys.path when a script here runs

from ledger.batch import run
from ledger.trades import read_trades_csv, report_to_dict

HEADER = "date,account,household,account_type,symbol,side,quantity,price,lot_id\n"


def history(n: int, households: int, seed: int = 7) -> str:
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:02d}" for i in range(20)]
    price = {s: 50.0 for s in symbols}
    held: dict[str, dict[str, tuple[str, int]]] = {}  # account -> lot id -> (symbol, shares)
    rows, date = [], dt.date(2020, 1, 2)
    for i in range(n):
        if i % max(1, n // 1500) == 0:  # about 1,500 trading days
            date += dt.timedelta(days=1)
            for s in symbols:
                price[s] = max(1.0, price[s] * float(np.exp(rng.normal(0, 0.03))))
        h = int(rng.integers(households))
        kind = ("T", "taxable") if rng.random() < 0.5 else (("S", "taxable") if rng.random() < 0.6 else ("I", "ira"))
        account = f"H{h}-{kind[0]}"
        lots = held.setdefault(account, {})
        sym = symbols[int(rng.integers(len(symbols)))]
        p = f"{price[sym]:.2f}"
        if lots and rng.random() < 0.45:
            lot_id = list(lots)[int(rng.integers(len(lots)))]
            sym, q = lots[lot_id]
            sell = int(rng.integers(1, q + 1))
            named = rng.random() < 0.7
            if named:
                lots[lot_id] = (sym, q - sell)
                if q == sell:
                    del lots[lot_id]
                rows.append(f"{date},{account},H{h},{kind[1]},{sym},sell,{sell},{price[sym]:.2f},{lot_id}")
            else:  # FIFO: the oldest lots of the name go first
                left = sell
                for lid in [x for x, (s, _) in lots.items() if s == sym]:
                    take = min(left, lots[lid][1])
                    left -= take
                    lots[lid] = (sym, lots[lid][1] - take)
                    if lots[lid][1] == 0:
                        del lots[lid]
                    if left == 0:
                        break
                rows.append(f"{date},{account},H{h},{kind[1]},{sym},sell,{sell},{price[sym]:.2f},")
        else:
            q = int(rng.integers(1, 100))
            lots[f"b{i}"] = (sym, q)
            rows.append(f"{date},{account},H{h},{kind[1]},{sym},buy,{q},{p},b{i}")
    return HEADER + "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=100_000)
    ap.add_argument("--households", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trades.csv"
        path.write_text(history(args.trades, args.households))
        times, stages = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            trades = read_trades_csv(path)
            t1 = time.perf_counter()
            report = run(trades)
            t2 = time.perf_counter()
            text = json.dumps(report_to_dict(report))
            t3 = time.perf_counter()
            times.append(t3 - t0)
            stages.append((t1 - t0, t2 - t1, t3 - t2))
        washed = sum(1 for s in report.sales if s.disallowed_cents or s.permanent_cents)
        cli = []  # what a user waits for: taxview washsale --json, process start to exit
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "taxview.cli", "washsale", "--trades", str(path), "--json"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            cli.append(time.perf_counter() - t0)
    emit(
        {
            "benchmark": "washsale",
            "trades": len(trades),
            "households": args.households,
            "sales": len(report.sales),
            "wash_sales": washed,
            "open_lots": len(report.lots),
            "report_bytes": len(text),
            "cli_median_s": round(statistics.median(cli), 3),
            "in_process_median_s": round(statistics.median(times), 3),
            "median_parse_s": round(statistics.median(s[0] for s in stages), 3),
            "median_apply_s": round(statistics.median(s[1] for s in stages), 3),
            "median_report_s": round(statistics.median(s[2] for s in stages), 3),
            "cli_trades_per_s": round(len(trades) / statistics.median(cli)),
            "target_s": 5.0,
            "within_target": statistics.median(cli) < 5.0,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
