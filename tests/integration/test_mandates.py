"""Account mandates: imported, set and shown through the CLI on a real redis-server, versioned and
journaled; bad ones refused naming the account and key with nothing written; the nightly run
reads them (paused, liquidate, exclusions, TE budget) and records the version it used."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.coordinator import rebalance
from cluster.settings import RunSettings
from ledger.connection import LedgerSettings
from ledger.importer import import_lots
from ledger.store import LedgerStore
from solver.market import read_market
from taxview.cli import main
from taxview.demo import synth_firm

HEADER = "account,household,account_type,cash,te_max,exclude_sectors,status,gain_budget"


def accounts(args: list[str], url: str) -> int:
    return main(["accounts", *args, "--redis", url])


def shown(url: str, account: str, capsys) -> dict:
    capsys.readouterr()
    assert accounts(["show", account, "--json"], url) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def imported(tmp_path, redis_server, redis_client, capsys):
    f = tmp_path / "accounts.csv"
    f.write_text(HEADER + "\nA,H1,taxable,1000.00,0.03,Energy,,\nI,H1,ira,,,,paused,\nT,H2,trust,50,,,,25000.50\n")
    assert accounts(["import", str(f), "--actor", "ops"], redis_server.url) == 0
    return f


def test_import_creates_accounts_with_their_mandates(imported, redis_server, capsys):
    a = shown(redis_server.url, "A", capsys)
    assert a["mandate_version"] == 1 and a["cash"] == "1000.00"
    assert a["mandate"]["te_max"] == 0.03 and a["mandate"]["exclude_sectors"] == ["Energy"]
    assert a["effective"]["te_max"] == 0.03 and a["effective"]["max_weight"] == 0.05  # the rest: defaults
    assert shown(redis_server.url, "I", capsys)["status"] == "paused"
    assert shown(redis_server.url, "T", capsys)["mandate"]["gain_budget"] == "25000.50"


def test_tilts_and_outside_holdings_round_trip_through_the_ledger(imported, redis_server, capsys):
    url = redis_server.url
    assert accounts(["set", "A", "tilts=value=0.5,momentum=-0.25", "outside=complete:S001=5000000"], url) == 0
    a = shown(url, "A", capsys)
    assert a["mandate"]["tilts"] == {"momentum": -0.25, "value": 0.5}
    assert a["mandate"]["outside"] == {"mode": "complete", "holdings": {"S001": "5000000.00"}}
    assert a["effective"]["tilts"] == a["mandate"]["tilts"] and a["effective"]["outside"] == a["mandate"]["outside"]
    assert accounts(["set", "A", "tilts=value=9"], url) == 2  # refused, nothing written
    assert shown(url, "A", capsys)["mandate"]["tilts"] == {"momentum": -0.25, "value": 0.5}


def test_set_changes_the_mandate_at_the_next_version_and_journals_who_and_what(imported, redis_server, capsys):
    url = redis_server.url
    assert accounts(["set", "A", "te_max=0.015", "exclude_symbols=S001,S002", "--actor", "pm-jane"], url) == 0
    assert accounts(["set", "A", "exclude_sectors="], url) == 0  # back to the firm's default (none)
    a = shown(url, "A", capsys)
    assert a["mandate_version"] == 3
    assert a["mandate"]["te_max"] == 0.015 and "exclude_sectors" not in a["mandate"]
    assert a["effective"]["exclude_symbols"] == ["S001", "S002"]
    first, second = a["history"]
    assert (first["actor"], first["version"]) == ("pm-jane", 2)
    assert first["old"]["te_max"] == 0.03 and first["new"]["te_max"] == 0.015
    assert second["old"]["exclude_sectors"] == ["Energy"] and "exclude_sectors" not in second["new"]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ("te_max=-0.01", "te_max"),
        ("exclude_sectors=Energy,Crypto", "exclude_sectors"),
        ("max_weight=-1", "max_weight"),
        ("gain_budget=lots", "gain_budget"),
        ("status=sleeping", "status"),
        ("st_rate=", "st_rate"),
        ("colour=blue", "colour"),
        ("te_max", "change"),
    ],
)
def test_a_bad_change_exits_2_naming_the_account_and_key_and_writes_nothing(
    imported, redis_server, redis_client, capsys, change, key
):
    before = shown(redis_server.url, "A", capsys)
    assert accounts(["set", "A", change], redis_server.url) == 2
    err = capsys.readouterr().err
    assert key in err and ("account A" in err or key == "change") and "Traceback" not in err
    assert shown(redis_server.url, "A", capsys) == before


def test_a_bad_file_row_exits_2_naming_the_row_and_writes_nothing(tmp_path, redis_server, redis_client, capsys):
    f = tmp_path / "bad.csv"
    f.write_text(HEADER + "\nA,H1,taxable,0,0.02,,,\nB,H1,taxable,0,0.02,Narnia,,\n")
    assert accounts(["import", str(f)], redis_server.url) == 2
    err = capsys.readouterr().err
    assert "row 3" in err and "account B" in err and "exclude_sectors" in err
    assert redis_client.dbsize() == 0
    f.write_text("account,household,account_type,favourite_colour\nA,H1,taxable,blue\n")
    assert accounts(["import", str(f)], redis_server.url) == 2
    assert "favourite_colour" in capsys.readouterr().err and redis_client.dbsize() == 0


def test_the_journal_rebuilds_the_mandates(imported, redis_server, redis_client, capsys):
    assert accounts(["set", "T", "status=liquidate", "gain_budget="], redis_server.url) == 0
    store = LedgerStore(redis_client)
    target = LedgerStore(redis_client, prefix="rebuilt")
    store.rebuild_from_journal(target)
    for a in ("A", "I", "T"):
        assert target.account(a) == store.account(a)
        assert (target.account(a).mandate, target.account(a).mandate_version) == (
            store.account(a).mandate,
            store.account(a).mandate_version,
        )


def test_the_nightly_reads_each_accounts_mandate(local_ray, redis_server, redis_client, market_dir, tmp_path):
    store = LedgerStore(redis_client)
    m = read_market(market_dir)
    infos, lots = synth_firm(m, len(m.dates) - 1, 6, seed=5)
    store.add_accounts(infos)
    import_lots(store, lots)
    taxable = [a.account for a in infos if a.account_type == "taxable"]
    paused, liquidating, tight = taxable[0], taxable[1], taxable[2]
    held = {x.symbol for x in store.lots(tight)}
    excluded = tuple(s for s in m.symbols if s not in held)[:3]  # not held: nothing to sell at a wash
    when = "2024-01-01T00:00:00+00:00"
    store.set_mandate(paused, {"status": "paused"}, "test", when)
    store.set_mandate(liquidating, {"status": "liquidate"}, "test", when)
    store.set_mandate(tight, {"te_max": 0.005, "exclude_symbols": excluded}, "test", when)
    tilted = taxable[3]  # a value tilt on the market's styles.parquet (issue 15)
    pq.write_table(
        pa.table({"symbol": list(m.symbols), "value": np.linspace(-1.7, 1.7, m.n)}), market_dir / "styles.parquet"
    )
    store.set_mandate(tilted, {"tilts": "value=0.3", "te_max": 0.05}, "test", when)
    run = RunSettings(str(m.dates[-1]), market_dir, tmp_path / "out", workers=2, quiet=True, shard_size=2, factors=8)
    s = rebalance(run, LedgerSettings(redis_server.url))
    assert s.failed == 0
    rows = {r["account"]: r for r in pq.read_table(tmp_path / "out" / "accounts.parquet").to_pylist()}
    trades = pq.read_table(tmp_path / "out" / "trades.parquet").to_pylist()
    assert rows[paused]["status"] == "paused" and not [t for t in trades if t["account"] == paused]
    # everything sold but loss lots a household purchase of the last 30 days would wash: held back, named
    assert rows[liquidating]["status"] == "liquidated"
    kept = store.lots(liquidating)
    assert (
        all(f"{x.symbol} ×" in rows[liquidating]["reason"] for x in kept) and "held back" in rows[liquidating]["reason"]
    )
    assert len(kept) < lots.column("account").to_pylist().count(liquidating)
    assert {t["side"] for t in trades if t["account"] == liquidating} == {"sell"}
    # within its budget, or over it by the rounding to whole shares alone, and then its notes say so (its
    # household's liquidation goes first: the names it sold at a loss may not be bought tonight)
    assert rows[tight]["te_budget"] == 0.005 and rows[tight]["te_ex_ante"] <= 0.005 * 1.01
    assert rows[tight]["te_ex_ante"] <= 0.005 + 1e-6 or "after rounding to whole shares the TE" in rows[tight]["notes"]
    assert excluded and not [t for t in trades if t["account"] == tight and t["symbol"] in excluded]
    assert rows[tight]["mandate_version"] == store.account(tight).mandate_version == 2
    assert all(rows[a]["mandate_version"] == 1 for a in rows if a not in (paused, liquidating, tight, tilted))
    achieved, target = json.loads(rows[tilted]["tilts"])["value"]
    assert target == 0.3 and achieved >= 0.3 - 0.001 and rows[tilted]["status"] == "optimal"
    assert all(rows[a]["tilts"] is None for a in rows if a != tilted)
    # beside them: the night's events (the three changes, reported once), its blocks, the report
    events = pq.read_table(tmp_path / "out" / "events.parquet").to_pylist()
    assert sorted(e["account"] for e in events) == sorted([paused, liquidating, tight, tilted])
    assert all(e["kind"] == "mandate" and e["actor"] == "test" for e in events)
    assert "te_max default → 0.005" in next(e["detail"] for e in events if e["account"] == tight)
    blocked = pq.read_table(tmp_path / "out" / "blocked.parquet").to_pylist()
    assert blocked and {b["restriction"] for b in blocked} <= {"no_buy", "no_loss_sale"}
    doc = json.loads((tmp_path / "out" / "run.json").read_text())
    assert doc["mandate_changes"] == 4 and doc["orders"] == sum(r["orders"] or 0 for r in rows.values())
    assert doc["orders_per_account_p90"] >= doc["orders_per_account_p50"] > 0
    assert doc["report"].endswith("report.html") and "Morning report" in (tmp_path / "out" / "report.html").read_text()
    run2 = RunSettings(
        str(m.dates[-1]), market_dir, tmp_path / "out2", run_id="again", workers=2, quiet=True, factors=8
    )
    rebalance(run2, LedgerSettings(redis_server.url))
    assert pq.read_table(tmp_path / "out2" / "events.parquet").num_rows == 0  # reported once
