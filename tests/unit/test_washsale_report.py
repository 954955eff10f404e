"""The wash-sale report (``taxview washsale --json``): one process or several, the same text."""

from __future__ import annotations

import json
import random

from ledger.batch import run
from ledger.trades import read_trades_table, report_json, report_to_dict, trades_of
from taxview.cli import main

HEADER = "date,account,household,account_type,symbol,side,quantity,price,lot_id\n"


def history(n: int, seed: int = 3) -> str:
    """Households interleaved row by row, with same-day sells that form one sale per household."""
    rng = random.Random(seed)
    held: dict[str, list[tuple[str, str]]] = {}
    rows = []
    for i in range(n):
        date = f"2024-{1 + i * 11 // n:02d}-15"  # many rows a day
        h = rng.randrange(12)
        account, kind = rng.choice([(f"H{h}-T", "taxable"), (f"H{h}-S", "taxable"), (f"H{h}-I", "ira")])
        lots = held.setdefault(account, [])
        price = f"{rng.uniform(5, 15):.2f}"
        if lots and rng.random() < 0.5:
            lot_id, symbol = lots.pop(rng.randrange(len(lots)))
            rows.append(f"{date},{account},H{h},{kind},{symbol},sell,10,{price},{lot_id}")
        else:
            symbol = rng.choice(["AAA", "BBB", "CCC"])
            lots.append((f"b{i}", symbol))
            rows.append(f"{date},{account},H{h},{kind},{symbol},buy,10,{price},b{i}")
    return HEADER + "\n".join(rows) + "\n"


def test_the_report_is_the_same_text_from_one_process_or_several(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(history(3000))
    table = read_trades_table(path)
    serial = report_json(table, None, 1)
    assert serial == json.dumps(report_to_dict(run(trades_of(table))), separators=(",", ":"))
    assert report_json(table, None, 2) == serial == report_json(table, None, 5)
    report = json.loads(serial)
    assert report["sales"] and any(s["disallowed"] != "0.00" for s in report["sales"])


def test_a_sale_is_the_same_whatever_other_households_trade_between_its_rows(tmp_path):
    rows = [
        "2024-01-02,A,H1,taxable,XYZ,buy,10,10,L1",
        "2024-01-02,A,H1,taxable,XYZ,buy,10,9,L2",
        "2024-01-10,A,H1,taxable,XYZ,sell,10,8,L1",
        "2024-01-10,B,H2,taxable,XYZ,buy,5,8,Z1",  # another household's row in between
        "2024-01-10,A,H1,taxable,XYZ,sell,10,8,L2",
    ]
    (tmp_path / "a.csv").write_text(HEADER + "\n".join(rows) + "\n")
    (tmp_path / "b.csv").write_text(HEADER + "\n".join(rows[:3] + rows[4:] + rows[3:4]) + "\n")
    a = json.loads(report_json(read_trades_table(tmp_path / "a.csv")))
    b = json.loads(report_json(read_trades_table(tmp_path / "b.csv")))
    assert a == b and all(s["disallowed"] == "0.00" for s in a["sales"])  # one sale: L1 and L2 never wash each other


def test_washsale_json_on_the_command_line_with_workers(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text(history(500))
    assert main(["washsale", "--trades", str(path), "--json", "--workers", "2"]) == 0
    two = capsys.readouterr().out
    assert main(["washsale", "--trades", str(path), "--json", "--workers", "1"]) == 0
    assert capsys.readouterr().out == two
