"""The Redis ledger against a real redis-server started by the suite."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.api import AccountInfo
from ledger.errors import CommitRejected, LedgerInputError, UnknownAccount
from ledger.records import OpenLot
from ledger.server import RedisServer
from ledger.store import LedgerStore
from taxview.core.records import Trade
from tests.conftest import _outcome, replay_into_store
from tests.property.test_washsale_properties import IDENTICAL, check_conservation, draw_history

D = dt.date


def setup_household(store: LedgerStore) -> None:
    store.add_accounts(
        [
            AccountInfo("A", "H1", "taxable"),
            AccountInfo("S", "H1", "taxable"),
            AccountInfo("I", "H1", "ira"),
            AccountInfo("X", "H2", "taxable"),
        ]
    )
    store.import_lots(
        [
            OpenLot("a1", "A", "XYZ", Decimal(100), 100000, D(2023, 1, 3), D(2023, 1, 3), "a1", Decimal(100), 0),
            OpenLot("a2", "A", "ABC", Decimal(50), 250000, D(2023, 6, 1), D(2023, 6, 1), "a2", Decimal(50), 0),
            OpenLot("x1", "X", "XYZ", Decimal(10), 10000, D(2023, 1, 3), D(2023, 1, 3), "x1", Decimal(10), 0),
        ]
    )


def sell(lot, qty, price, symbol="XYZ"):
    return Trade(symbol, "sell", qty, price, lot)


def buy(qty, price, symbol="XYZ", lot=None):
    return Trade(symbol, "buy", qty, price, lot)


def test_commit_applies_and_a_replay_returns_the_stored_result(store):
    setup_household(store)
    r1 = store.commit("A", D(2024, 3, 1), [sell("a1", 40, "7.50")], "run1:A")
    assert not r1.replayed and r1.sales[0]["gain_cents"] == 40 * 750 - 40000
    state = store.state()
    r2 = store.commit("A", D(2024, 3, 1), [sell("a1", 40, "7.50")], "run1:A")
    assert r2.replayed and r2.sales == r1.sales
    assert store.state() == state  # nothing applied twice
    assert [x.quantity for x in store.lots("A") if x.lot_id == "a1"] == [Decimal(60)]


def test_same_key_with_different_content_is_rejected(store):
    setup_household(store)
    store.commit("A", D(2024, 3, 1), [sell("a1", 40, "7.50")], "k")
    with pytest.raises(CommitRejected, match="KEY_REUSED"):
        store.commit("A", D(2024, 3, 1), [sell("a1", 41, "7.50")], "k")


def test_restrictions_follow_household_windows(store):
    setup_household(store)
    store.commit("A", D(2024, 3, 1), [sell("a1", 100, "7.50"), buy(10, "40", "ABC")], "k1")
    r = store.restrictions("H1", D(2024, 3, 15))
    assert r["S"].no_buy == {"XYZ"} and r["I"].no_buy == {"XYZ"}  # loss sale blocks the household's buys
    assert r["A"].no_loss_sale == {"ABC"} and r["I"].no_loss_sale == frozenset()
    assert store.restrictions("H2", D(2024, 3, 15))["X"].no_buy == frozenset()  # other households free
    assert store.restrictions("H1", D(2024, 3, 31))["S"].no_buy == {"XYZ"}  # day 30: still blocked
    assert store.restrictions("H1", D(2024, 4, 1))["S"].no_buy == frozenset()  # day 31: free


def test_nightly_commit_refuses_a_wash_sale_and_writes_nothing(store):
    setup_household(store)
    store.commit("A", D(2024, 3, 1), [sell("a1", 100, "7.50")], "k1")
    before = store.state()
    with pytest.raises(CommitRejected, match="WASH_CONFLICT"):
        store.commit("I", D(2024, 3, 5), [buy(10, "7.60")], "k2")  # IRA rebuy: loss lost for good
    with pytest.raises(CommitRejected, match="WASH_CONFLICT"):  # buy and loss-sale of one name in one commit
        store.commit("X", D(2024, 3, 5), [sell("x1", 10, "5"), buy(10, "5.10")], "k3")
    assert store.state() == before
    # the same buy is applied, with the adjustment, when wash sales are allowed
    store.commit("I", D(2024, 3, 5), [buy(10, "7.60", lot="i1")], "k4", allow_wash=True)
    (sale,) = store.sales("H1")
    assert sale.permanent_cents == 2500 and sale.disallowed_cents == 0


def first_version_sale(s) -> str:
    """A sale as the ledger's first version stored it (JSON), before ``ledger.codec``'s record."""
    rep = [[x.lot_id, x.account, str(x.shares), x.amount_cents, x.permanent] for x in s.replacements]
    doc = {"id": s.sale_id, "d": s.date.toordinal(), "a": s.account, "s": s.symbol, "q": str(s.quantity)}
    doc.update(p=s.proceeds_cents, b=s.basis_cents, t=s.term, l=s.lot_id, pid=s.purchase_id, h=s.held_days)
    doc.update(r=s.recognized, dis=s.disallowed_cents, perm=s.permanent_cents, rep=rep, u=str(s.unmatched))
    return json.dumps({**doc, "left": s.loss_left_cents}, separators=(",", ":"))


def test_a_pending_sale_stored_as_json_by_the_first_version_is_washed_and_rewritten(store):
    setup_household(store)
    store.commit("A", D(2024, 3, 1), [sell("a1", 100, "7.50")], "k1")  # a loss of 25,000 cents, pending
    (sale,) = store.sales("H1")
    store.r.hset(store.k.sales("H1"), sale.sale_id, first_version_sale(sale))
    assert store.sales("H1") == [sale]
    store.commit("S", D(2024, 3, 5), [buy(40, "7.60", lot="s1")], "k2", allow_wash=True)
    (washed,) = store.sales("H1")
    assert (washed.disallowed_cents, washed.unmatched, washed.loss_left_cents) == (10000, 60, 15000)
    assert [(x.lot_id, x.basis_cents) for x in store.lots("S")] == [("s1", 40 * 760 + 10000)]
    assert not store.r.hget(store.k.sales("H1"), sale.sale_id).startswith(b"{")  # rewritten as a record


@pytest.mark.parametrize(
    ("account", "trades", "error", "field"),
    [
        ("A", [sell("a1", 0, "7")], LedgerInputError, "quantity"),
        ("A", [sell("a1", -1, "7")], LedgerInputError, "quantity"),
        ("A", [sell("a1", "NaN", "7")], LedgerInputError, "quantity"),
        ("A", [buy(1, "0")], LedgerInputError, "price"),
        ("A", [buy(1, "NaN")], LedgerInputError, "price"),
        ("A", [sell("a1", 101, "7")], LedgerInputError, "quantity"),
        ("S", [sell("a1", 1, "7")], LedgerInputError, "lot_id"),  # another account's lot
        ("A", [sell("nope", 1, "7")], LedgerInputError, "lot_id"),
        ("ZZ", [buy(1, "7")], UnknownAccount, "account"),
        ("A", [Trade("XYZ", "hold", 1, 1)], LedgerInputError, "side"),
        ("A", [{"symbol": "XYZ", "quantity": 1}], LedgerInputError, "trade"),
    ],
)
def test_bad_input_is_rejected_with_no_write(store, account, trades, error, field):
    setup_household(store)
    before = store.state()
    with pytest.raises(error) as e:
        store.commit(account, D(2024, 3, 1), trades, "bad")
    assert e.value.field.startswith(field)
    assert store.state() == before


def test_dates_before_the_last_commit_are_rejected(store):
    setup_household(store)
    store.commit("A", D(2024, 3, 1), [buy(1, "7", "ABC")], "k1")
    before = store.state()
    with pytest.raises(LedgerInputError, match="date"):
        store.commit("S", D(2024, 2, 28), [buy(1, "7", "ABC")], "k2")
    assert store.state() == before


def test_journal_replay_reproduces_the_state_exactly(store, redis_client):
    setup_household(store)
    store.commit("A", D(2024, 3, 1), [sell("a1", 60, "7.50"), buy(5, "40", "ABC")], "k1")
    store.commit("S", D(2024, 3, 10), [buy(30, "7.70")], "k2", allow_wash=True)
    store.commit("A", D(2024, 4, 20), [sell("a1", 40, "9"), sell("a2", 10, "41", "ABC")], "k3", allow_wash=True)
    target = LedgerStore(redis_client, prefix="rebuilt")
    assert store.rebuild_from_journal(target) == 3
    assert target.state() == store.state()


def test_made_lot_ids_live_in_slots_and_still_name_one_purchase_for_good(store, redis_client):
    """The ids the ledger makes are not in the registry hash (5 bytes a purchase instead of about
    60) and are refused all the same, by a commit and by an import; a replaced account gives its
    made ids back as it gives back the others."""
    from ledger.files import lots_table
    from ledger.importer import import_ledger

    setup_household(store)
    store.commit("A", D(2024, 3, 1), [buy(5, "40", "ABC"), buy(3, "41")], "k1")
    made = sorted(x.lot_id for x in store.lots("A") if x.acquired == D(2024, 3, 1))
    assert made == ["A-20240301-3", "A-20240301-4"]  # the import's a1 and a2 were purchases 1 and 2
    k = store.k
    assert set(redis_client.hkeys(k.ids("H1"))) == {b"a1", b"a2"}
    assert redis_client.strlen(k.made("H1")) == 10  # two 40-bit slots
    lookalikes = ["A-20240301-5", "A-20240302-3", "S-20240301-3", "A-20240301-03", "A-20240301-99999999"]
    assert store.used_ids("H1", made + lookalikes + ["a1"]) == {made[0]: "1", made[1]: "1", "a1": "1"}
    assert store.used_ids("H2", made) == {}  # another household's registry
    store.commit("A", D(2024, 3, 2), [sell(made[1], 3, "42")], "k2")  # closed: the id stays taken
    for lot_id in (made[1], made[1] + ".1"):
        with pytest.raises(LedgerInputError, match="already used"):
            store.commit("S", D(2024, 3, 4), [buy(1, "42", "XYZ", lot_id)], f"k-{lot_id}")
    again = OpenLot(made[0], "S", "ABC", Decimal(1), 4000, D(2024, 1, 2), D(2024, 1, 2), made[0], Decimal(1), 0)
    with pytest.raises(LedgerInputError, match="already used"):
        store.import_lots([again])
    store.commit("S", D(2024, 3, 4), [buy(1, "42", "XYZ", "A-20240302-3")], "k3")  # a lookalike is free
    # replacing A removes its open lots, the made one among them, and gives their ids back
    before = store.state()
    import_ledger(store, [AccountInfo("A", "H1", "taxable")], lots_table([]), replace=["A"])
    assert store.state() != before and not store.lots("A")
    assert store.used_ids("H1", made) == {made[1]: "1"}  # the sold lot's id is not given back
    store.commit("S", D(2024, 3, 5), [buy(1, "40", "ABC", made[0])], "k4")
    assert made[0] in {x.lot_id for x in store.lots("S")}
    assert store.used_ids("H1", [made[0]]) == {made[0]: "1"}


def test_a_ledger_rebuilt_from_its_journal_refuses_the_same_lot_ids(store, redis_client):
    setup_household(store)
    store.commit("A", D(2024, 3, 1), [buy(5, "40", "ABC"), buy(3, "41", "XYZ", "A-20240301-4")], "k1")
    store.commit("S", D(2024, 3, 4), [buy(2, "42")], "k2")  # made: A-20240301-3, S-20240304-5
    store.commit("A", D(2024, 3, 5), [sell("A-20240301-3", 5, "45", "ABC")], "k3")
    target = LedgerStore(redis_client, prefix="rebuilt")
    assert store.rebuild_from_journal(target) == 3
    probe = ["A-20240301-3", "A-20240301-4", "S-20240304-5", "S-20240304-4", "A-20240301-3.1", "a1", "a1.2"]
    assert target.used_ids("H1", probe) == store.used_ids("H1", probe) == {
        "A-20240301-3": "1",
        "A-20240301-4": "1",
        "S-20240304-5": "1",
        "a1": "1",
    }


# --- the Redis ledger and the pure engine agree on random histories ----------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data(), st.booleans())
def test_redis_ledger_matches_the_engine_on_random_histories(redis_client, data, with_identical):
    identical = IDENTICAL if with_identical else {}
    trades, hh = draw_history(data, identical)
    redis_client.flushall()
    store = LedgerStore(redis_client, identical=identical)
    got = replay_into_store(store, trades, identical)
    assert got == _outcome(hh.sales, hh.lots.values())
    # and the ledger's own records keep the conservation laws
    stored_sales = store.sales("H")
    stored_lots = [x for held in store.household_lots("H").values() for x in held]
    check_conservation(trades, stored_sales, stored_lots, identical)


# --- concurrency and crashes -------------------------------------------------------------------


def _race(url: str, account: str, trades: list, key: str, start: float, out) -> None:
    client = redis.Redis.from_url(url)
    store = LedgerStore(client)
    while time.time() < start:
        pass
    try:
        store.commit(account, D(2024, 3, 1), trades, key)
        out.put((key, "ok"))
    except CommitRejected as exc:
        out.put((key, exc.code))


@pytest.mark.parametrize("round_", range(3))
def test_ira_buy_racing_a_taxable_loss_sale_ends_as_some_serial_order(store, redis_server, round_):
    setup_household(store)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 1.5
    procs = [
        ctx.Process(target=_race, args=(redis_server.url, "A", [sell("a1", 100, "7.50")], "loss", start, out)),
        ctx.Process(target=_race, args=(redis_server.url, "I", [buy(10, "7.60")], "ira", start, out)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = dict(out.get(timeout=5) for _ in procs)
    # exactly one of the two wins; the other is refused as a wash sale (either serial order)
    assert sorted(results.values()) == ["WASH_CONFLICT", "ok"]
    lots = {x.lot_id for x in store.lots("A")} | {x.lot_id for x in store.lots("I")}
    if results["loss"] == "ok":
        assert "a1" not in lots and not store.lots("I")
    else:
        assert "a1" in lots and len(store.lots("I")) == 1
    assert all(s.permanent_cents == 0 and s.disallowed_cents == 0 for s in store.sales("H1"))


BATCH = """
import sys, datetime as dt, redis
from decimal import Decimal
from ledger.store import LedgerStore
from taxview.core.records import Trade
store = LedgerStore(redis.Redis.from_url(sys.argv[1]))
for i in range(int(sys.argv[2])):
    store.commit(f"A{i % 20}", dt.date(2024, 3, 1), [
        Trade(f"S{i % 7}", "buy", Decimal(3), Decimal("10.01")),
        Trade(f"S{(i + 3) % 7}", "buy", Decimal(2), Decimal("20.02"))], f"batch:{i}")
    print(i, flush=True)
"""


def _firm(store: LedgerStore) -> None:
    store.add_accounts([AccountInfo(f"A{i}", f"H{i // 3}", "taxable") for i in range(20)])


def test_killed_batch_rerun_with_the_same_keys_matches_an_uninterrupted_run(redis_server, redis_client):
    n = 300
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    _firm(LedgerStore(redis_client))
    subprocess.run(
        [sys.executable, "-c", BATCH, redis_server.url, str(n)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    expected = LedgerStore(redis_client).state()
    redis_client.flushall()
    _firm(LedgerStore(redis_client))
    proc = subprocess.Popen(
        [sys.executable, "-c", BATCH, redis_server.url, str(n)], env=env, stdout=subprocess.PIPE, text=True
    )
    for _ in range(n // 3):  # let it get a third of the way, then SIGKILL it mid-batch
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = LedgerStore(redis_client).state()
    assert partial != expected
    subprocess.run(
        [sys.executable, "-c", BATCH, redis_server.url, str(n)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    assert LedgerStore(redis_client).state() == expected


def test_redis_restart_with_appendfsync_always_loses_no_acknowledged_commit(tmp_path):
    server = RedisServer(tmp_path / "data", appendfsync="always").start()
    store = LedgerStore(server.client())
    _firm(store)
    acknowledged = []
    for i in range(50):
        store.commit(f"A{i % 20}", D(2024, 3, 1), [buy(1, "10", f"S{i % 5}")], f"k{i}")
        acknowledged.append(f"k{i}")
    state = store.state()
    server.kill()  # a crash, not a clean shutdown
    server = RedisServer(tmp_path / "data", appendfsync="always", port=server.port).start()
    try:
        store = LedgerStore(server.client())
        assert store.state() == state
        for i, key in enumerate(acknowledged):  # every acknowledged commit is still there (replays)
            assert store.commit(f"A{i % 20}", D(2024, 3, 1), [buy(1, "10", f"S{i % 5}")], key).replayed
    finally:
        server.stop()


def test_journal_entries_carry_every_committed_trade(store):
    setup_household(store)
    store.commit("A", D(2024, 3, 1), [sell("a1", 60, "7.50"), buy(5, "40", "ABC")], "k1")
    entries = [e for e in store.journal("H1") if e["key"]]
    assert len(entries) == 1 and entries[0]["account"] == "A" and entries[0]["date"] == "2024-03-01"
    assert [t["side"] for t in entries[0]["entry"]["trades"]] == ["sell", "buy"]
    assert json.dumps(entries[0]["entry"])  # plain JSON
