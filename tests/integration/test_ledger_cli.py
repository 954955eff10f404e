"""``taxview washsale`` and ``taxview ledger`` end to end (the ledger CLI against a real Redis)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from taxview.cli import main


def import_files(accounts, lots, url: list[str]) -> int:
    return main(["ledger", "import", "--accounts", str(accounts), "--lots", str(lots), *url])


HEADER = "date,account,household,account_type,symbol,side,quantity,price,lot_id\n"


def test_washsale_report_of_the_domain_examples(tmp_path, capsys):
    f = tmp_path / "trades.csv"
    f.write_text(HEADER + "\n".join([
        "2024-01-02,A,H1,taxable,XYZ,buy,100,10,a",      # basic: $1,000
        "2024-03-01,A,H1,taxable,XYZ,sell,100,7.50,a",   # sold for $750
        "2024-03-15,A,H1,taxable,XYZ,buy,100,8,b",       # rebought for $800 -> basis $1,050
        "2024-01-02,S,H1,taxable,ABC,buy,100,10,c",      # IRA case: basis $1,000
        "2024-12-20,S,H1,taxable,ABC,sell,100,6,c",      # sold for $600
        "2024-12-21,I,H1,ira,ABC,buy,100,6,i",           # IRA buys: $400 lost for good
    ]) + "\n")  # fmt: skip
    f.write_text(HEADER + "\n".join(sorted(f.read_text().splitlines()[1:], key=lambda r: r.split(",")[0])) + "\n")
    assert main(["washsale", "--trades", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_lot = {s["lot_id"]: s for s in out["sales"]}
    assert by_lot["a"]["gain"] == "-250.00" and by_lot["a"]["disallowed"] == "250.00"
    assert by_lot["c"]["permanently_disallowed"] == "400.00" and by_lot["c"]["recognized"] == "0.00"
    lots = {x["lot_id"]: x for x in out["lots"]}
    assert lots["b"]["basis"] == "1050.00" and lots["i"]["basis"] == "600.00"
    assert out["totals"]["A"]["short"]["recognized"] == "0.00"
    assert main(["washsale", "--trades", str(f)]) == 0
    assert "OPEN LOTS" in capsys.readouterr().out


def test_washsale_rejects_malformed_rows_with_their_row_number(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text(HEADER + "2024-01-02,A,H1,taxable,XYZ,buy,100,10,a\n2024-01-03,A,H1,taxable,XYZ,sell,abc,10,a\n")
    assert main(["washsale", "--trades", str(f)]) == 2
    assert "row 3" in capsys.readouterr().err
    f.write_text(HEADER + "2024-01-03,A,H1,taxable,XYZ,buy,1,10,a\n2024-01-02,A,H1,taxable,XYZ,buy,1,10,b\n")
    assert main(["washsale", "--trades", str(f)]) == 2
    assert "date order" in capsys.readouterr().err
    f.write_text(HEADER + "2024-01-03,A,H1,taxable,XYZ,sell,5,10,zz\n")
    assert main(["washsale", "--trades", str(f)]) == 2
    assert "zz" in capsys.readouterr().err


def test_ledger_import_show_export_round_trip(tmp_path, redis_server, redis_client, capsys):
    (tmp_path / "a.csv").write_text("account,household,account_type,cash\nA,H1,taxable,1000.50\nI,H1,ira,0\n")
    (tmp_path / "l.csv").write_text(
        "account,lot_id,symbol,quantity,basis,acquired\n"
        "A,a1,XYZ,100,1000.00,2023-01-03\nA,a2,ABC,10.5,99.99,2023-05-01\n"
    )
    url = ["--redis", redis_server.url]
    assert import_files(tmp_path / "a.csv", tmp_path / "l.csv", url) == 0
    assert main(["ledger", "show", "--account", "A", "--json", *url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["cash"] == "1000.50" and {x["lot_id"]: x["basis"] for x in shown["lots"]} == {
        "a1": "1000.00",
        "a2": "99.99",
    }
    assert main(["ledger", "export", "--out", str(tmp_path / "exp"), *url]) == 0
    lots = pq.read_table(tmp_path / "exp" / "lots.parquet").to_pylist()
    assert sorted((x["lot_id"], x["quantity"], x["basis_cents"]) for x in lots) == [
        ("a1", "100", 100000),
        ("a2", "10.5", 9999),
    ]
    # the export imports again into an empty ledger
    redis_client.flushall()
    exp = tmp_path / "exp"
    assert import_files(exp / "accounts.parquet", exp / "lots.parquet", url) == 0
    assert main(["ledger", "show", "--account", "A", "--json", *url]) == 0
    assert json.loads(capsys.readouterr().out)["lots"] == shown["lots"]


def test_ledger_import_rejects_bad_rows_and_writes_nothing(tmp_path, redis_server, redis_client, capsys):
    (tmp_path / "a.csv").write_text("account,household,account_type\nA,H1,taxable\n")
    (tmp_path / "l.csv").write_text(
        "account,lot_id,symbol,quantity,basis,acquired\nA,a1,XYZ,100,1000.00,2023-01-03\nB,b1,XYZ,-4,10,2023-01-03\n"
    )
    url = ["--redis", redis_server.url]
    assert import_files(tmp_path / "a.csv", tmp_path / "l.csv", url) == 2
    assert "row 3" in capsys.readouterr().err and not redis_client.keys("*")
    assert main(["ledger", "show", "--account", "NOPE", *url]) == 2
    assert "unknown account" in capsys.readouterr().err


def test_private_redis_keeps_its_data_in_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TAXVIEW_REDIS_URL", raising=False)
    (tmp_path / "a.csv").write_text("account,household,account_type\nA,H1,taxable\n")
    work = ["--workdir", str(tmp_path / "w")]
    assert main(["ledger", "import", "--accounts", str(tmp_path / "a.csv"), *work]) == 0
    assert main(["ledger", "show", "--account", "A", "--json", *work]) == 0  # a second private server, same data
    assert json.loads(capsys.readouterr().out)["household"] == "H1"
    assert (tmp_path / "w" / "redis" / "appendonlydir").is_dir()
