"""Night after night: `taxview demo --nights 3` on a small firm (a private redis-server, a local
Ray), then the firm's whole history — the opening lots as purchases and every night's trades —
through `taxview washsale`: no loss disallowed in any taxable account, across nights and across
each household's accounts."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq

from taxview.cli import main


def test_three_nights_of_a_firm_create_no_wash_sale(local_ray, tmp_path, capsys):
    work = tmp_path / "work"
    args = ["demo", "--workdir", str(work), "--accounts", "12", "--names", "60", "--days", "300", "--nights", "3"]
    assert main([*args, "--workers", "2", "--quiet"]) in (0, 1)
    out = capsys.readouterr().out
    assert [f"night {k}/3" in out for k in (1, 2, 3)] == [True] * 3 and "report.html" in out
    nights = sorted(p for p in (work / "out").iterdir() if p.is_dir())
    assert len(nights) == 3
    for night in nights:
        assert {"trades.parquet", "accounts.parquet", "run.json", "report.html"} <= {p.name for p in night.iterdir()}
        doc = json.loads((night / "run.json").read_text())
        assert doc["orders_per_account_p90"] >= doc["orders_per_account_p50"] >= 0
    # the whole history: opening lots (bought at their basis), then each night's trades in order
    accounts = {r["account"]: r for r in pq.read_table(work / "firm-12" / "accounts.parquet").to_pylist()}
    rows = []
    for lot in pq.read_table(work / "firm-12" / "lots.parquet").to_pylist():
        a = accounts[lot["account"]]
        price = lot["basis_cents"] / 100 / float(lot["quantity"])
        rows.append([lot["acquired"].isoformat(), a["account"], a["household"], a["account_type"], lot["symbol"],
                     "buy", lot["quantity"], repr(price), lot["lot_id"]])  # fmt: skip
    rows.sort(key=lambda r: r[0])
    for night in nights:
        for t in pq.read_table(night / "trades.parquet").to_pylist():
            a = accounts[t["account"]]
            lot_id = t["lot_id"]  # a buy carries the id the ledger gave it
            rows.append([t["date"].isoformat(), t["account"], t["household"], a["account_type"], t["symbol"],
                         t["side"], str(t["shares"]), repr(t["price"]), lot_id])  # fmt: skip
    history = tmp_path / "history.csv"
    with history.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", "account", "household", "account_type", "symbol", "side", "quantity", "price", "lot_id"])
        w.writerows(rows)
    capsys.readouterr()
    assert main(["washsale", "--trades", str(history), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    sales = report["sales"]
    assert sales, "the nights sold something"
    washed = [s for s in sales if s["disallowed"] != "0.00" and accounts[s["account"]]["account_type"] != "ira"]
    assert washed == [], washed[:3]
