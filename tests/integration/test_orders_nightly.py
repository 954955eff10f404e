"""orders.parquet from a real night (local Ray, real redis-server): one row per account, symbol and
side, the same shares as trades.parquet, lot allocations as the ledger booked them, counted alike
by run.json, accounts.parquet and the morning report; a replay of the night writes the same."""

from __future__ import annotations

import json
from collections import defaultdict

import pyarrow.parquet as pq

from ledger.store import LedgerStore
from taxview.morning import summary
from taxview.morning.inputs import read_run
from tests.integration import test_nightly


def _key(r: dict) -> tuple:
    return (r["account"], r["symbol"], r["side"])


def test_orders_parquet_is_the_nights_trades_one_order_per_account_symbol_and_side(
    local_ray, redis_server, redis_client, market_dir, tmp_path
):
    store = LedgerStore(redis_client)
    accounts = test_nightly.load_firm(store, market_dir, accounts=8)
    liquidating = next(a for a in accounts if store.account(a).account_type == "taxable")
    store.set_mandate(liquidating, {"status": "liquidate"}, "test", "2024-01-01T00:00:00+00:00")  # many lots a name
    s = test_nightly.run(redis_server, market_dir, tmp_path / "a")
    assert s.failed == 0
    out = tmp_path / "a"
    trades = pq.read_table(out / "trades.parquet").to_pylist()
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    by_order = defaultdict(list)
    for t in trades:
        by_order[_key(t)].append(t)
    assert len({_key(o) for o in orders}) == len(orders) and set(by_order) == {_key(o) for o in orders}
    booked = {}  # (account, lot id) -> the ledger's sale of tonight
    for hh in {store.household_of(a) for a in accounts}:
        for sale in store.sales(hh):
            if str(sale.date) == s.date:
                booked[(sale.account, sale.lot_id)] = sale
    for o in orders:
        rows = by_order[_key(o)]
        assert o["shares"] == sum(t["shares"] for t in rows) == sum(a["shares"] for a in o["allocations"])
        assert [(a["lot_id"], a["shares"], a["realized_gain"], a["term"]) for a in o["allocations"]] == [
            (t["lot_id"], t["shares"], t["realized_gain"], t["term"]) for t in rows
        ]  # the lots in the order they are sold; a buy's: the lot it opened
        assert {float(o["price"])} == {t["price"] for t in rows} and o["value"] > 0
        assert (o["run_id"], str(o["date"])) == (s.run_id, s.date)
        if o["side"] == "sell":
            for a in o["allocations"]:
                sale = booked[(o["account"], a["lot_id"])]
                assert (a["basis"] * 100, a["realized_gain"] * 100) == (sale.basis_cents, sale.gain_cents)
        else:
            assert all(a["lot_id"] and a["basis"] is None for a in o["allocations"])
    assert any(len(o["allocations"]) > 1 for o in orders if o["side"] == "sell")
    for account in accounts:  # sorted by symbol and side within each account
        keys = [(o["symbol"], o["side"]) for o in orders if o["account"] == account]
        assert keys == sorted(keys)
    # one count everywhere: run.json, accounts.parquet, the morning report
    per_account = {r["account"]: r["orders"] for r in pq.read_table(out / "accounts.parquet").to_pylist()}
    assert all(per_account[a] == sum(o["account"] == a for o in orders) for a in accounts)
    assert s.orders == json.loads((out / "run.json").read_text())["orders"] == len(orders)
    night = summary.orders(read_run(out))
    assert night.count == len(orders) and night.sells == sum(o["side"] == "sell" for o in orders)
    assert round(float(night.values.sum()), 2) == float(sum(o["value"] for o in orders))
    # a replay of the night (the same run id) applies nothing and writes the same orders
    again = test_nightly.run(redis_server, market_dir, tmp_path / "b")
    assert again.replayed == again.accounts
    replayed = pq.read_table(tmp_path / "b" / "orders.parquet").to_pylist()
    assert sorted(replayed, key=_key) == sorted(orders, key=_key)
