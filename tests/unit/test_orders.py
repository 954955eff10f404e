"""Orders from one account's trades (taxview/core/orders.py): known answers by hand; the morning
report reading orders.parquet; ``taxview solve --json``'s orders."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.worker import ORDER_SCHEMA, order_rows
from solver.io import write_lots_csv
from solver.market import synthesize, write_market
from solver.synthetic import synth_lots
from taxview.cli import main
from taxview.core.orders import Allocation, Order, order_json, orders_of
from taxview.core.records import Trade
from taxview.morning import summary
from taxview.morning.inputs import read_run
from taxview.morning.page import page
from tests.morning_fixture import write_run_dir

D = Decimal


def test_sells_of_several_lots_of_one_name_are_one_order_with_its_lots_in_the_order_sold():
    trades = [
        Trade("AAA", "sell", D("10"), D("50.00"), "L2", -25000, "short"),  # basis $750.00
        Trade("AAA", "sell", D("3.5"), D("50.00"), "L7", 2500, "long"),  # proceeds $175.00, basis $150.00
        Trade("AAA", "sell", D("0.25"), D("50.00"), "L1", -1, "long"),  # proceeds $12.50
    ]
    [o] = orders_of("A1", trades)
    assert (o.account, o.symbol, o.side, o.price) == ("A1", "AAA", "sell", D("50.00"))
    assert o.shares == D("13.75") and sum(a.shares for a in o.allocations) == o.shares
    assert o.value_cents == 50000 + 17500 + 1250
    assert o.allocations == (
        Allocation("L2", D("10"), 75000, -25000, "short"),
        Allocation("L7", D("3.5"), 15000, 2500, "long"),
        Allocation("L1", D("0.25"), 1251, -1, "long"),
    )


def test_a_buy_is_one_order_naming_the_lot_it_opens_when_the_trade_carries_it():
    assert orders_of("A1", [Trade("BBB", "buy", D("12"), D("77.00"), "hh1.9")]) == [
        Order("A1", "BBB", "buy", D("12"), D("77.00"), 92400, (Allocation("hh1.9", D("12")),))
    ]
    [o] = orders_of("A1", [Trade("BBB", "buy", D("12"), D("77.00"))])  # the solver's: no id yet
    assert o.allocations == (Allocation(None, D("12")),)


def test_a_buy_and_a_sell_of_one_name_are_never_merged():
    trades = [
        Trade("AAA", "sell", D("5"), D("10.00"), "L1", 500, "long"),
        Trade("AAA", "buy", D("2"), D("10.00")),
        Trade("AAA", "sell", D("1"), D("10.00"), "L2", 0, "short"),
    ]
    buy, sell = orders_of("A1", trades)
    assert (buy.side, buy.shares, buy.value_cents) == ("buy", D("2"), 2000)
    assert (sell.side, sell.shares, [a.lot_id for a in sell.allocations]) == ("sell", D("6"), ["L1", "L2"])


def test_orders_come_sorted_by_symbol_then_side_whatever_the_trades_order():
    trades = [
        Trade("ZZZ", "buy", D("1"), D("1.00")),
        Trade("AAA", "sell", D("1"), D("2.00"), "L1", 0, "long"),
        Trade("MMM", "sell", D("1"), D("3.00"), "L2", 0, "long"),
        Trade("AAA", "buy", D("1"), D("2.00")),
    ]
    keys = [(o.symbol, o.side) for o in orders_of("A1", trades)]
    assert keys == [("AAA", "buy"), ("AAA", "sell"), ("MMM", "sell"), ("ZZZ", "buy")]
    assert [(o.symbol, o.side) for o in orders_of("A1", reversed(trades))] == keys


def test_no_trades_no_orders():
    assert orders_of("A1", []) == []


def test_a_sell_without_its_gain_has_an_allocation_without_basis_gain_or_term():
    # a liquidation's trades before the ledger books them, or a sell naming no lot (first in, first out)
    [o] = orders_of("A1", [Trade("AAA", "sell", D("3"), D("10.00"), "L1"), Trade("AAA", "sell", D("2"), D("10.00"))])
    assert o.allocations == (Allocation("L1", D("3")), Allocation(None, D("2")))
    assert o.shares == D("5") and o.value_cents == 5000


def test_value_is_the_sum_of_each_trades_cents_as_the_ledger_moves_cash():
    trades = [Trade("AAA", "buy", D("0.333333"), D("10.01"), "x.1"), Trade("AAA", "buy", D("0.333333"), D("10.01"))]
    [o] = orders_of("A1", trades)
    assert o.value_cents == 2 * 334  # 3.33666... each: $3.34 twice, not 0.666666 × 10.01 = $6.67
    assert o.shares == D("0.666666")


def test_trades_of_one_order_at_two_prices_are_refused():
    with pytest.raises(ValueError, match="several prices"):
        orders_of("A1", [Trade("AAA", "buy", D("1"), D("10.00")), Trade("AAA", "buy", D("1"), D("10.01"))])


def test_an_unknown_side_is_refused():
    with pytest.raises(ValueError, match="short"):
        orders_of("A1", [Trade("AAA", "short", D("1"), D("10.00"))])


def test_the_json_form_keeps_exact_cents_and_whole_shares_as_integers():
    trades = [
        Trade("AAA", "sell", D("31"), D("48.10"), "L12-0", -41237, "short"),
        Trade("AAA", "sell", D("0.5"), D("48.10"), "L12-1", 405, "long"),
    ]
    [o] = orders_of("A1", trades)
    assert order_json(o) == {
        "account": "A1",
        "symbol": "AAA",
        "side": "sell",
        "shares": 31.5,
        "price": 48.1,
        "value": 1515.15,
        "allocations": [
            {"lot_id": "L12-0", "shares": 31, "basis": 1903.47, "realized_gain": -412.37, "term": "short"},
            {"lot_id": "L12-1", "shares": 0.5, "basis": 20.0, "realized_gain": 4.05, "term": "long"},
        ],
    }


def _orders_parquet(run_dir: Path) -> pa.Table:
    """orders.parquet for the morning fixture's night, made as the worker makes it: its trades
    (trades.parquet) through ``orders_of``, per account, into ``ORDER_SCHEMA`` rows."""
    by_account: dict[tuple[str, str], list[Trade]] = {}
    for r in pq.read_table(run_dir / "trades.parquet").to_pylist():
        gain = None if r["realized_gain"] is None else int(r["realized_gain"] * 100)
        by_account.setdefault((r["account"], r["household"]), []).append(
            Trade(r["symbol"], r["side"], r["shares"], D(str(r["price"])), r["lot_id"], gain or 0, r["term"])
        )
    rows = [
        row
        for (account, household), trades in sorted(by_account.items())
        for row in order_rows("run", dt.date(2024, 3, 1), household, orders_of(account, trades))
    ]
    table = pa.Table.from_pylist(rows, schema=ORDER_SCHEMA)
    pq.write_table(table, run_dir / "orders.parquet")
    return table


def test_the_morning_report_counts_and_values_the_orders_of_orders_parquet(tmp_path):
    run_dir = write_run_dir(tmp_path / "night", optional=True)
    grouped = summary.orders(read_run(run_dir))  # a run without orders.parquet: the trades grouped
    table = _orders_parquet(run_dir)
    o = summary.orders(read_run(run_dir))
    assert table.num_rows == o.count == grouped.count == 6 == read_run(run_dir).run["orders"]
    assert (o.buys, o.sells) == (grouped.buys, grouped.sells) == (2, 4)
    assert sorted(o.values.tolist()) == sorted(grouped.values.tolist()) == [100.0, 100.0, 200.0, 200.0, 600.0, 750.0]
    assert sorted(o.per_account.tolist()) == [2.0, 4.0]
    aaa = next(r for r in table.to_pylist() if (r["account"], r["symbol"]) == ("A1", "AAA"))
    assert aaa["shares"] == D("15") and aaa["value"] == D("750.00")
    assert [(a["lot_id"], a["shares"], a["basis"], a["realized_gain"]) for a in aaa["allocations"]] == [
        ("A1-1", D("10"), D("800.00"), D("-300.00")),
        ("A1-2", D("5"), D("500.00"), D("-250.00")),
    ]
    assert ">6<" in page(read_run(run_dir)).replace(",", "")


def test_solve_json_has_one_order_per_symbol_and_side_matching_its_trades(tmp_path, capsys):
    m = synthesize(names=40, days=300, factors=5, seed=3)
    write_market(m, tmp_path / "mkt")
    write_lots_csv(synth_lots(m, 299, np.random.default_rng(2)), tmp_path / "lots.csv")
    (tmp_path / "a.toml").write_text('[account]\nid = "A9"\ncash = 5000\n')
    args = ["solve", "--market", str(tmp_path / "mkt"), "--date", str(m.dates[-1])]
    args += ["--account", str(tmp_path / "a.toml"), "--lots", str(tmp_path / "lots.csv"), "--factors", "5"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out)[:5] == ["status", "reason", "solve_ms", "trades", "orders"]
    assert {t["side"] for t in out["trades"]} == {"buy", "sell"}
    totals: dict = {}
    for t in out["trades"]:
        totals.setdefault((t["symbol"], t["side"]), []).append(t)
    assert [(o["symbol"], o["side"]) for o in out["orders"]] == sorted(totals)
    for o in out["orders"]:
        trades = totals[(o["symbol"], o["side"])]
        assert o["account"] == "A9" and o["shares"] == sum(t["shares"] for t in trades)
        assert [(a["lot_id"], a["shares"], a["realized_gain"], a["term"]) for a in o["allocations"]] == [
            (t["lot_id"], t["shares"], t["realized_gain"], t["term"]) for t in trades
        ]
        assert o["value"] == pytest.approx(sum(t["shares"] * t["price"] for t in trades), abs=0.005 * len(trades))
    assert main(args) == 0
    assert f"in {len(out['orders'])} orders" in capsys.readouterr().out
