"""Cash flows: recorded through the CLI for a date, booked on that night before the solve (a
deposit invested, a withdrawal raised), journaled, reported; bad ones refused with nothing
written; the same on the in-memory ledger."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest

from cluster.coordinator import rebalance
from cluster.settings import RunSettings
from ledger.api import AccountInfo
from ledger.connection import LedgerSettings
from ledger.errors import CommitRejected
from ledger.importer import import_lots
from ledger.memory import MemoryLedger
from ledger.store import LedgerStore
from solver.market import read_market
from taxview.cli import main
from taxview.demo import synth_firm

AT = "2024-01-01T00:00:00+00:00"


def cash(args: list[str], url: str) -> int:
    return main(["cash", *args, "--redis", url])


@pytest.fixture(params=["memory", "redis"])
def ledger(request):
    led = MemoryLedger() if request.param == "memory" else LedgerStore(request.getfixturevalue("redis_client"))
    led.add_accounts([AccountInfo("A", "H", "taxable", cash_cents=10_000)])
    return led


def test_a_flow_waits_for_its_night_and_is_booked_once(ledger):
    day = dt.date(2024, 3, 1)
    assert ledger.add_cash_flow("A", 50_000, day, "bonus", "ops", AT)
    assert not ledger.add_cash_flow("A", 50_000, day, "bonus", "ops", AT)  # the same flow again
    assert ledger.add_cash_flow("A", -20_000, day + dt.timedelta(days=3), "rent", "ops", AT)
    assert ledger.account("A").flows_due(day) == 50_000 and ledger.account("A").cash_cents == 10_000
    assert ledger.apply_cash_flows("A", day - dt.timedelta(days=1)) == 0  # not yet due
    assert ledger.apply_cash_flows("A", day) == 50_000
    assert ledger.apply_cash_flows("A", day) == 50_000  # a re-run of the night: nothing twice
    assert ledger.account("A").cash_cents == 60_000
    assert ledger.apply_cash_flows("A", day + dt.timedelta(days=3)) == -20_000
    assert ledger.account("A").cash_cents == 40_000 and ledger.account("A").pending_flows == ()
    ledger.add_cash_flow("A", 1, day, "other", "ops", AT, flow="f1")
    with pytest.raises(CommitRejected, match="KEY_REUSED"):
        ledger.add_cash_flow("A", 2, day, "other", "ops", AT, flow="f1")


def test_the_cli_records_flows_and_refuses_bad_ones_writing_nothing(tmp_path, redis_server, redis_client, capsys):
    store = LedgerStore(redis_client)
    store.add_accounts([AccountInfo("A", "H", "taxable", cash_cents=10_000)])
    url = redis_server.url
    assert cash(["A", "2500.50", "--date", "2024-03-01", "--reason", "bonus", "--actor", "ops"], url) == 0
    assert store.pending_cash_flows("A") == [(dt.date(2024, 3, 1), 250_050, "bonus")]
    before = store.account("A")
    for bad in (["A", "0", "--date", "2024-03-01"], ["A", "1.001", "--date", "2024-03-01"],
                ["A", "NaN", "--date", "2024-03-01"], ["A", "ten", "--date", "2024-03-01"],
                ["A", "5", "--date", "03/01/2024"], ["ZZ", "5", "--date", "2024-03-01"],
                ["A", "5"]):  # fmt: skip
        assert cash(bad, url) == 2, bad
        assert "Traceback" not in capsys.readouterr().err
    f = tmp_path / "flows.csv"
    f.write_text("account,amount,date,reason\nA,100,2024-03-02,ok\nA,-x,2024-03-02,bad\n")
    assert cash(["--file", str(f)], url) == 2
    assert "row 3" in capsys.readouterr().err
    assert store.account("A").pending_flows == before.pending_flows  # nothing written
    events = [e for _, e in redis_client.xrange("tv:events")]
    assert len(events) == 1 and b"deposit $2,500.50" in events[0][b"detail"]


def test_the_journal_rebuilds_flows_and_cash(redis_client):
    store = LedgerStore(redis_client)
    store.add_accounts([AccountInfo("A", "H", "taxable", cash_cents=10_000)])
    store.add_cash_flow("A", 5_000, dt.date(2024, 3, 1), "", "ops", AT)
    store.add_cash_flow("A", -3_000, dt.date(2024, 3, 9), "later", "ops", AT)
    store.apply_cash_flows("A", dt.date(2024, 3, 1))
    target = LedgerStore(redis_client, prefix="rebuilt")
    store.rebuild_from_journal(target)
    assert target.account("A").cash_cents == store.account("A").cash_cents == 15_000
    assert target.pending_cash_flows("A") == store.pending_cash_flows("A") == [(dt.date(2024, 3, 9), -3_000, "later")]


def test_the_night_invests_deposits_and_raises_withdrawals(local_ray, redis_server, redis_client, market_dir, tmp_path):
    store = LedgerStore(redis_client)
    m = read_market(market_dir)
    night = dt.date.fromisoformat(str(m.dates[-1]))
    infos, lots = synth_firm(m, len(m.dates) - 1, 6, seed=5)
    store.add_accounts(infos)
    import_lots(store, lots)
    taxable = [a.account for a in infos if a.account_type == "taxable"]
    depositor, withdrawer, greedy, later = taxable[:4]
    close = dict(zip(m.symbols, m.prices[-1]))
    value = {a: sum(float(x.quantity) * close[x.symbol] for x in store.lots(a)) for a in taxable}
    withdrawal = int(float(value[withdrawer]) * 0.10) * 100  # 10% of the account, in cents
    store.add_cash_flow(depositor, 5_000_000, night, "new money", "ops", AT)
    store.add_cash_flow(withdrawer, -withdrawal, night, "tuition", "ops", AT)
    store.add_cash_flow(greedy, -int(float(value[greedy]) * 300), night, "too much", "ops", AT)
    store.add_cash_flow(later, 1_000_000, night + dt.timedelta(days=1), "tomorrow", "ops", AT)
    cash_before = {a: store.account(a).cash_cents for a in taxable}
    run = RunSettings(str(night), market_dir, tmp_path / "out", workers=2, quiet=True, shard_size=2, factors=8)
    s = rebalance(run, LedgerSettings(redis_server.url))
    rows = {r["account"]: r for r in pq.read_table(tmp_path / "out" / "accounts.parquet").to_pylist()}
    trades = pq.read_table(tmp_path / "out" / "trades.parquet").to_pylist()

    def traded(a, side):
        return sum(float(t["shares"]) * t["price"] for t in trades if t["account"] == a and t["side"] == side)

    # the deposit is booked and invested: bought more than sold by most of the deposit, and the
    # cash left is within cash_max (1% of the account: what the mandate lets it hold)
    assert float(rows[depositor]["cash_flow"]) == 50_000.0
    assert traded(depositor, "buy") - traded(depositor, "sell") > 0.8 * 50_000
    assert (
        store.account(depositor).cash_cents <= 0.0101 * (value[depositor] + 50_000 + cash_before[depositor] / 100) * 100
    )
    # the withdrawal is raised: sold more than bought by about the withdrawal; cash back at the target
    assert float(rows[withdrawer]["cash_flow"]) == -withdrawal / 100
    assert traded(withdrawer, "sell") - traded(withdrawer, "buy") >= 0.95 * withdrawal / 100
    after = store.account(withdrawer).cash_cents
    assert 0 <= after <= 0.011 * float(value[withdrawer]) * 100 + cash_before[withdrawer]
    # larger than the account: refused with the reason, still pending; tomorrow's: not booked tonight
    assert rows[greedy]["status"] == "rejected" and "larger than the account" in rows[greedy]["reason"]
    assert store.account(greedy).flows_due(night) < 0
    assert float(rows[later]["cash_flow"]) == 0 and store.account(later).flows_due(night + dt.timedelta(days=1))
    assert s.failed == 1 and json.loads((tmp_path / "out" / "run.json").read_text())["cash_flows"] == 4
