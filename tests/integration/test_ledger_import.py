"""``taxview ledger import`` as a system of record: validated in full, nothing written on an
error, no silent overwrite, ids that cannot reach into another household (real redis-server)."""

from __future__ import annotations

import json
import re
from importlib import resources

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxview.cli import main
from taxview.core.records import Trade

ACCOUNTS = "account,household,account_type,cash\nA,H1,taxable,1000\nI,H1,ira,0\n"
LOTS = "account,lot_id,symbol,quantity,basis,acquired\nA,a1,XYZ,100,1000.00,2023-01-03\nA,a2,ABC,10,500,2023-05-01\n"


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def ledger(args: list[str], url: str) -> int:
    return main(["ledger", *args, "--redis", url])


def show(url: str, account: str, capsys) -> dict:
    capsys.readouterr()
    assert ledger(["show", "--account", account, "--json"], url) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def loaded(tmp_path, redis_server, redis_client, capsys):
    accounts, lots = write(tmp_path, "a.csv", ACCOUNTS), write(tmp_path, "l.csv", LOTS)
    assert ledger(["import", "--accounts", accounts, "--lots", lots], redis_server.url) == 0
    capsys.readouterr()
    return redis_server.url


def test_importing_an_existing_lot_id_is_refused_and_changes_nothing(tmp_path, loaded, redis_client, capsys):
    before = show(loaded, "A", capsys)
    again = write(tmp_path, "again.csv", "account,lot_id,symbol,quantity,basis,acquired\nA,a1,XYZ,999,1,2023-01-03\n")
    assert ledger(["import", "--lots", again], loaded) == 2
    assert "row 2" in capsys.readouterr().err
    assert show(loaded, "A", capsys) == before


def test_importing_an_existing_account_is_refused_unless_replaced(tmp_path, loaded, redis_client, capsys):
    accounts = write(tmp_path, "a2.csv", "account,household,account_type,cash\nA,H1,taxable,5\n")
    lots = write(tmp_path, "l2.csv", "account,lot_id,symbol,quantity,basis,acquired\nA,a1,XYZ,7,70,2023-01-03\n")
    before = show(loaded, "A", capsys)
    assert ledger(["import", "--accounts", accounts, "--lots", lots], loaded) == 2
    assert "--replace-account A" in capsys.readouterr().err and show(loaded, "A", capsys) == before
    # restated on purpose: the account's open lots and cash come from the files, journaled
    assert ledger(["import", "--accounts", accounts, "--lots", lots, "--replace-account", "A"], loaded) == 0
    after = show(loaded, "A", capsys)
    assert after["cash"] == "5.00" and [(x["lot_id"], x["quantity"]) for x in after["lots"]] == [("a1", "7")]
    from ledger.store import LedgerStore

    entry = LedgerStore(redis_client).journal("H1")[-1]["entry"]
    assert entry["replace"] == ["A"] and sorted(lid for _, lid in entry["removed"]) == ["a1", "a2"]


def test_a_failed_import_writes_no_account(tmp_path, redis_server, redis_client, capsys):
    accounts = write(tmp_path, "a.csv", ACCOUNTS)
    lots = write(tmp_path, "l.csv", LOTS + "A,a3,XYZ,lots,1,2023-01-03\n")
    assert ledger(["import", "--accounts", accounts, "--lots", lots], redis_server.url) == 2
    assert "row 4" in capsys.readouterr().err and not redis_client.keys("*")


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("A,a9,XYZ,1,10,2999-01-01", "acquired"),  # in the future
        ("A,a9,XYZ,1,10,1899-12-31", "acquired"),
        ("A,a9,XYZ,1,10,2023-02-30", "acquired"),
        ("A,,XYZ,1,10,2023-01-03", "lot_id"),
        ("A,a9,,1,10,2023-01-03", "symbol"),
        ("A,a|9,XYZ,1,10,2023-01-03", "lot_id"),
        ("A,a9,XYZ,1e30,10,2023-01-03", "quantity"),
        ("A,a9,XYZ,1000000000001,10,2023-01-03", "quantity"),
        ("A,a9,XYZ,ten,10,2023-01-03", "quantity"),
        ("A,a9,XYZ,0.0000001,10,2023-01-03", "quantity"),
        ("A,a9,XYZ,1,NaN,2023-01-03", "basis"),
        ("A,a9,XYZ,1,Infinity,2023-01-03", "basis"),
        ("A,a9,XYZ,1,-5,2023-01-03", "basis"),
        ("A,a9,XYZ,1,10,2023-01-03,garbage", "holding_start"),
        ("A,a9,XYZ,1,10,2023-01-03,2023-01-04", "holding_start"),  # after the purchase
        ("NOPE,a9,XYZ,1,10,2023-01-03", "account"),
    ],
)
def test_bad_lot_rows_exit_2_naming_the_field_and_row(tmp_path, loaded, capsys, row, field):
    head = "account,lot_id,symbol,quantity,basis,acquired" + (",holding_start" if row.count(",") == 6 else "")
    lots = write(tmp_path, "bad.csv", f"{head}\nA,ok1,XYZ,1,10,2023-01-03{',' if row.count(',') == 6 else ''}\n{row}\n")
    before = show(loaded, "A", capsys)
    assert ledger(["import", "--lots", lots], loaded) == 2
    err = capsys.readouterr().err
    assert "row 3" in err and field in err and "Traceback" not in err
    assert show(loaded, "A", capsys) == before


def test_null_ids_in_parquet_exit_2_naming_the_row(tmp_path, loaded, capsys):
    table = pa.table(
        {
            "account": ["A", "A"],
            "lot_id": ["p1", None],
            "symbol": ["XYZ", "XYZ"],
            "quantity": ["1", "2"],
            "basis_cents": pa.array([100, 200], pa.int64()),
            "acquired": pa.array([pa.scalar(19000, pa.date32()).as_py()] * 2, pa.date32()),
        }
    )
    pq.write_table(table, tmp_path / "l.parquet")
    assert ledger(["import", "--lots", str(tmp_path / "l.parquet")], loaded) == 2
    err = capsys.readouterr().err
    assert "row 2" in err and "lot_id" in err


def test_accounts_listed_twice_or_with_bad_rates_are_refused_and_zero_rates_are_kept(
    tmp_path, redis_server, redis_client, capsys
):
    url = redis_server.url
    twice = write(tmp_path, "t.csv", "account,household,account_type\nA,H1,taxable\nA,H1,ira\n")
    assert ledger(["import", "--accounts", twice], url) == 2
    assert "listed twice" in capsys.readouterr().err
    nan = write(tmp_path, "n.csv", "account,household,account_type,st_rate,lt_rate\nA,H1,taxable,nan,0.2\n")
    assert ledger(["import", "--accounts", nan], url) == 2
    assert "st_rate" in capsys.readouterr().err
    zero = write(tmp_path, "z.csv", "account,household,account_type,st_rate,lt_rate\nA,H1,taxable,0,0\n")
    assert ledger(["import", "--accounts", zero], url) == 0
    import redis

    from ledger.store import LedgerStore

    info = LedgerStore(redis.Redis.from_url(url)).account("A")
    assert (info.st_rate, info.lt_rate) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("account", "household"),
    [("A", "VICTIM}:X"), ("X}:A", "VICTIM"), ("A\nforged", "H1"), ("A", "{hh:H1}"), ("A*", "H1"), ("", "H1")],
)
def test_ids_that_mean_something_to_redis_are_refused(tmp_path, redis_server, redis_client, capsys, account, household):
    victim = write(tmp_path, "v.csv", "account,household,account_type,cash\nX,VICTIM,taxable,100\n")
    assert ledger(["import", "--accounts", victim], redis_server.url) == 0
    before = {k: redis_client.type(k) for k in redis_client.keys("*")}
    table = pa.table({"account": [account], "household": [household], "account_type": ["ira"], "cash": ["5"]})
    pq.write_table(table, tmp_path / "evil.parquet")
    assert ledger(["import", "--accounts", str(tmp_path / "evil.parquet")], redis_server.url) == 2
    assert "not valid" in capsys.readouterr().err
    assert {k: redis_client.type(k) for k in redis_client.keys("*")} == before


def test_symbols_outside_the_market_are_refused_with_market(tmp_path, loaded, capsys):
    from solver.market import synthesize, write_market

    write_market(synthesize(names=5, days=30, factors=2, seed=1), tmp_path / "m")
    lots = write(tmp_path, "l.csv", "account,lot_id,symbol,quantity,basis,acquired\nA,n1,NOTINIT,1,10,2023-01-03\n")
    assert ledger(["import", "--lots", lots, "--market", str(tmp_path / "m")], loaded) == 2
    assert "universe" in capsys.readouterr().err


def test_every_lua_script_touches_only_the_keys_it_is_given():
    """Keys come from KEYS[...] only (Redis Cluster routes a script by its KEYS): no key names
    built inside a script, no key parsed for data."""
    scripts = resources.files("ledger").joinpath("lua")
    for path in scripts.iterdir():
        if not path.name.endswith(".lua"):
            continue
        text = path.read_text()
        for call in re.finditer(r"redis\.call\('(\w+)',\s*([^,)]+)", text):
            assert call.group(2).startswith("KEYS["), f"{path.name}: {call.group(0)}"
        assert "string.match(KEYS" not in text and "ARGV[1] .. key" not in text, path.name


def test_washsale_refuses_a_reused_lot_id_naming_the_row(tmp_path, capsys):
    f = write(
        tmp_path,
        "t.csv",
        "date,account,household,account_type,symbol,side,quantity,price,lot_id\n"
        "2024-01-02,A,H1,taxable,XYZ,buy,10,50,X\n2024-02-01,A,H1,taxable,XYZ,sell,10,30,X\n"
        "2024-02-06,A,H1,taxable,XYZ,buy,10,31,X\n",
    )
    assert main(["washsale", "--trades", f]) == 2
    err = capsys.readouterr().err
    assert "row 4" in err and "already used" in err


# --- found by an adversarial review: round trips, replacements, races ---------------------------


def export_into_an_empty_ledger(tmp_path, url: str, redis_client) -> None:
    """``ledger export``, an empty ledger, ``ledger import`` of the export."""
    assert ledger(["export", "--out", str(tmp_path / "exp")], url) == 0
    redis_client.flushall()
    exp = tmp_path / "exp"
    assert (
        ledger(["import", "--accounts", str(exp / "accounts.parquet"), "--lots", str(exp / "lots.parquet")], url) == 0
    )


def _trade(store, date: str, side: str, qty, price, lot_id: str | None, key: str, account: str = "A"):
    import datetime as dt

    order = Trade("XYZ", side, qty, price, lot_id)
    return store.commit(account, dt.date.fromisoformat(date), [order], key, allow_wash=True)


def _split_ledger(store):
    """A ledger where a wash sale split lot c into c.1 (replacement shares) and c.2."""
    from ledger.api import AccountInfo

    store.add_accounts([AccountInfo("A", "H", "taxable", cash_cents=100_000)])
    _trade(store, "2024-01-02", "buy", 10, 100, "a", "k1")
    _trade(store, "2024-02-01", "sell", 4, 80, "a", "k2")
    _trade(store, "2024-02-05", "buy", 6, 80, "c", "k3")
    assert {x.lot_id for x in store.lots("A")} == {"a", "c.1", "c.2"}


def test_an_export_restates_an_account_with_split_lots(tmp_path, redis_server, redis_client, capsys):
    from ledger.store import LedgerStore

    store = LedgerStore(redis_client)
    _split_ledger(store)
    before = show(redis_server.url, "A", capsys)
    assert ledger(["export", "--out", str(tmp_path / "exp")], redis_server.url) == 0
    exp = tmp_path / "exp"
    args = ["import", "--accounts", str(exp / "accounts.parquet"), "--lots", str(exp / "lots.parquet")]
    assert ledger([*args, "--replace-account", "A"], redis_server.url) == 0
    assert show(redis_server.url, "A", capsys)["lots"] == before["lots"]


def test_an_export_keeps_the_wash_sale_state_of_its_lots(tmp_path, redis_server, redis_client, capsys):
    """Pieces of one purchase never wash each other, and a used replacement share is not used
    again, also after an export is imported into an empty ledger."""
    import datetime as dt

    from ledger.store import LedgerStore

    store = LedgerStore(redis_client)
    _split_ledger(store)
    export_into_an_empty_ledger(tmp_path, redis_server.url, redis_client)
    store = LedgerStore(redis_client)
    r = store.commit(
        "A",
        dt.date(2024, 2, 20),
        [Trade("XYZ", "sell", 2, 50, "c.2")],
        "k4",
        allow_wash=True,
    )
    assert r.sales[0]["disallowed_cents"] == 0 and {x.lot_id for x in store.lots("A")} == {"a", "c.1"}


def test_an_export_with_negative_cash_and_plain_quantities_imports_again(tmp_path, redis_server, redis_client, capsys):
    import datetime as dt

    from ledger.api import AccountInfo
    from ledger.store import LedgerStore

    store = LedgerStore(redis_client)
    store.add_accounts([AccountInfo("A", "H", "taxable")])
    store.commit("A", dt.date(2024, 1, 2), [Trade("XYZ", "buy", "5E+2", 10)], "k1")
    before = show(redis_server.url, "A", capsys)
    assert before["cash"] == "-5000.00" and before["lots"][0]["quantity"] == "500"
    export_into_an_empty_ledger(tmp_path, redis_server.url, redis_client)
    assert show(redis_server.url, "A", capsys) == before


def test_replacing_an_account_with_a_header_only_lots_file_empties_it(tmp_path, loaded, capsys):
    empty = write(tmp_path, "empty.csv", "account,lot_id,symbol,quantity,basis,acquired\n")
    assert ledger(["import", "--lots", empty, "--replace-account", "A"], loaded) == 0
    assert show(loaded, "A", capsys)["lots"] == []


def test_a_restated_account_is_rebuilt_from_the_journal_as_it_was(tmp_path, redis_server, redis_client, capsys):
    import datetime as dt

    from ledger.api import AccountInfo
    from ledger.store import LedgerStore

    store = LedgerStore(redis_client)
    _split_ledger(store)
    store.add_accounts([AccountInfo("A", "H", "ira", cash_cents=77_700)], replace=["A"])
    store.commit("A", dt.date(2024, 3, 1), [Trade("XYZ", "sell", 1, 70, "a")], "k9")
    target = LedgerStore(redis_client, prefix="copy")
    store.rebuild_from_journal(target)
    assert target.state() == store.state() and target.account("A") == store.account("A")


def _create(url: str, household: str, start: float, out) -> None:
    import time

    import redis

    from ledger.api import AccountInfo
    from ledger.errors import LedgerInputError
    from ledger.store import LedgerStore

    store = LedgerStore(redis.Redis.from_url(url))
    while time.time() < start:
        pass
    try:
        store.add_accounts([AccountInfo("X", household, "taxable")])
        out.put("ok")
    except LedgerInputError:
        out.put("refused")


def test_two_commands_creating_one_account_cannot_both_succeed(redis_server, redis_client):
    import multiprocessing as mp
    import time

    ctx = mp.get_context("fork")
    for _ in range(5):
        redis_client.flushall()
        out, start = ctx.Queue(), time.time() + 0.3
        procs = [ctx.Process(target=_create, args=(redis_server.url, hh, start, out)) for hh in ("H1", "H2")]
        for p in procs:
            p.start()
        for p in procs:
            p.join(10)
        assert sorted(out.get(timeout=5) for _ in procs) == ["ok", "refused"]
        home = redis_client.hget("tv:accounts", "X").decode()
        other = "H2" if home == "H1" else "H1"
        assert not redis_client.exists(f"tv:acct:{{hh:{other}}}:X")


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("2024-01-02,A,H,taxable,XYZ,buy,1_000,10,", "quantity"),
        ("2024-01-02,A,H,taxable,XYZ,buy,١٢,10,", "quantity"),
        ("20240102,A,H,taxable,XYZ,buy,10,10,", "date"),
    ],
)
def test_washsale_takes_plain_ascii_numbers_and_iso_dates_only(tmp_path, capsys, row, field):
    f = write(tmp_path, "t.csv", "date,account,household,account_type,symbol,side,quantity,price,lot_id\n" + row + "\n")
    assert main(["washsale", "--trades", f]) == 2
    err = capsys.readouterr().err
    assert "row 2" in err and field in err


def test_lot_quantities_are_exact_at_the_limit_and_parquet_floats_are_read_exactly(tmp_path, loaded, capsys):
    over = write(
        tmp_path, "o.csv", "account,lot_id,symbol,quantity,basis,acquired\nA,o1,XYZ,1000000000000.000001,1,2023-01-03\n"
    )
    assert ledger(["import", "--lots", over], loaded) == 2
    assert "quantity" in capsys.readouterr().err
    table = pa.table(
        {
            "account": ["A"],
            "lot_id": ["f1"],
            "symbol": ["XYZ"],
            "quantity": pa.array([1e-5], pa.float64()),
            "basis_cents": pa.array([5], pa.uint64()),
            "acquired": pa.array([pa.scalar(19000, pa.date32()).as_py()], pa.date32()),
        }
    )
    pq.write_table(table, tmp_path / "f.parquet")
    assert ledger(["import", "--lots", str(tmp_path / "f.parquet")], loaded) == 0
    assert [x["quantity"] for x in show(loaded, "A", capsys)["lots"] if x["lot_id"] == "f1"] == ["0.00001"]
