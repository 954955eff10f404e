"""``taxview ledger split`` and ``taxview ledger rename`` on a real redis-server: the summary, exit 2
with nothing written on bad input, exit 1 naming a household whose write failed (a re-run
finishes it), exit 0 and a note for a symbol no household holds."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from ledger.store import LedgerStore
from taxview.cli import main
from taxview.core.records import Trade
from tests.integration.test_corporate_actions import fail_household

ACCOUNTS = "account,household,account_type,cash\nA,H1,taxable,1000\nS,H1,taxable,0\nX,H2,taxable,0\n"
LOTS = (
    "account,lot_id,symbol,quantity,basis,acquired\n"
    "A,a1,XYZ,100,10000.00,2023-01-03\nA,a2,XYZ,33,3300,2023-02-01\nS,s1,ABC,10,500,2023-06-01\n"
    "X,x1,XYZ,7,700,2023-01-03\n"
)


def ledger(args: list[str], url: str) -> int:
    return main(["ledger", *args, "--redis", url])


@pytest.fixture
def loaded(tmp_path, redis_server, redis_client, capsys):
    (tmp_path / "a.csv").write_text(ACCOUNTS)
    (tmp_path / "l.csv").write_text(LOTS)
    assert (
        ledger(["import", "--accounts", str(tmp_path / "a.csv"), "--lots", str(tmp_path / "l.csv")], redis_server.url)
        == 0
    )
    capsys.readouterr()
    return redis_server.url


def quantities(url: str, account: str, capsys) -> dict[str, tuple[str, str, str]]:
    capsys.readouterr()
    assert ledger(["show", "--account", account, "--json"], url) == 0
    return {x["lot_id"]: (x["symbol"], x["quantity"], x["basis"]) for x in json.loads(capsys.readouterr().out)["lots"]}


def everything(redis_client) -> dict:
    """Every key and its value: a refused action writes no byte anywhere."""
    out = {}
    for key in sorted(redis_client.keys("*")):
        kind = redis_client.type(key).decode()
        if kind == "hash":
            out[key] = redis_client.hgetall(key)
        elif kind == "set":
            out[key] = redis_client.smembers(key)
        elif kind == "stream":
            out[key] = redis_client.xlen(key)
        else:
            out[key] = kind
    return out


def test_split_prints_a_summary_and_adjusts_every_household(loaded, capsys):
    assert ledger(["split", "XYZ", "3:2", "--date", "2024-06-10"], loaded) == 0
    out = capsys.readouterr().out
    assert "split XYZ 3:2 on 2024-06-10 (id split:XYZ:3:2:2024-06-10): 2 households, 3 lots" in out
    assert quantities(loaded, "A", capsys) == {
        "a1": ("XYZ", "150", "10000.00"),
        "a2": ("XYZ", "49.5", "3300.00"),
    }
    assert quantities(loaded, "X", capsys)["x1"] == ("XYZ", "10.5", "700.00")
    assert ledger(["split", "XYZ", "6:4", "--date", "2024-06-10"], loaded) == 0  # the same action: a replay
    assert "0 households, 0 lots and 0 pending sales adjusted; 2 households had it already" in capsys.readouterr().out
    assert quantities(loaded, "A", capsys)["a1"][1] == "150"


def test_rename_moves_the_lots_and_journals_the_action(loaded, redis_client, capsys):
    assert ledger(["rename", "XYZ", "XYZN", "--date", "2024-06-10", "--id", "ca-77"], loaded) == 0
    assert "rename XYZ → XYZN on 2024-06-10 (id ca-77): 2 households, 3 lots" in capsys.readouterr().out
    assert quantities(loaded, "A", capsys) == {"a1": ("XYZN", "100", "10000.00"), "a2": ("XYZN", "33", "3300.00")}
    entry = LedgerStore(redis_client).journal("H2")[-1]
    assert entry["date"] == "2024-06-10" and entry["entry"]["corporate"]["id"] == "ca-77"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["split", "XYZ", "0", "--date", "2024-06-10"], "ratio"),
        (["split", "XYZ", "-2", "--date", "2024-06-10"], "ratio"),
        (["split", "XYZ", "NaN", "--date", "2024-06-10"], "ratio"),
        (["split", "XYZ", "3:x", "--date", "2024-06-10"], "ratio"),
        (["split", "XYZ", "1:3", "--date", "2024-06-10"], "ratio"),  # 100 / 3 shares: not representable
        (["split", "XYZ", "2", "--date", "2024-13-01"], "date"),
        (["split", "XYZ", "2", "--date", "2024-06-10", "--id", "a|b"], "id"),
        (["rename", "XYZ", "ABC", "--date", "2024-06-10"], "new"),  # ABC has lots
        (["rename", "XYZ", "XYZ", "--date", "2024-06-10"], "new"),
        (["rename", "XYZ", "{hh:H2}", "--date", "2024-06-10"], "new"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(loaded, redis_client, capsys, args, field):
    before = everything(redis_client)
    assert ledger(args, loaded) == 2
    err = capsys.readouterr().err
    assert f"error: {field}:" in err and "Traceback" not in err
    assert everything(redis_client) == before


def test_an_action_dated_on_a_households_last_trade_exits_2_naming_it(loaded, redis_client, capsys):
    sale = Trade("ABC", "sell", Decimal(1), Decimal(40), "s1")
    LedgerStore(redis_client).commit("S", dt.date(2024, 6, 12), [sale], "that-day")
    before = everything(redis_client)
    assert ledger(["split", "XYZ", "2", "--date", "2024-06-12"], loaded) == 2
    assert "household H1 traded on 2024-06-12" in capsys.readouterr().err
    assert everything(redis_client) == before


def test_a_symbol_no_household_holds_is_a_no_op_with_a_note(loaded, redis_client, capsys):
    before = everything(redis_client)
    assert ledger(["split", "NOPE", "2", "--date", "2024-06-10"], loaded) == 0
    captured = capsys.readouterr()
    assert "0 households" in captured.out and "no household holds NOPE" in captured.err
    assert everything(redis_client) == before


def test_a_failed_household_exits_1_naming_it_and_a_rerun_finishes(loaded, capsys, monkeypatch):
    heal = fail_household(monkeypatch, "H2")
    assert ledger(["split", "XYZ", "2", "--date", "2024-06-10"], loaded) == 1
    captured = capsys.readouterr()
    assert "1 households" in captured.out and "household H2 failed: BUSY" in captured.err
    heal()
    assert ledger(["split", "XYZ", "2", "--date", "2024-06-10"], loaded) == 0
    assert "1 households, 1 lots and 0 pending sales adjusted; 1 households had it already" in capsys.readouterr().out
    assert quantities(loaded, "X", capsys)["x1"][1] == "14"
