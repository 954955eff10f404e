"""The morning report's numbers on a three-account night known by hand (tests/morning_fixture.py),
with and without the optional inputs; the page's escaping, formatting and caps; the CLI's exits."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxview.cli import main
from taxview.morning import summary, write_morning_report
from taxview.morning.inputs import read_run
from taxview.morning.page import TOP, blocked_section, page, usd
from tests.morning_fixture import MALICIOUS, NOTE, write_run_dir


@pytest.fixture
def full(tmp_path):
    return read_run(write_run_dir(tmp_path / "full", optional=True))


@pytest.fixture
def plain(tmp_path):
    return read_run(write_run_dir(tmp_path / "plain", optional=False))


def test_firm_totals_sum_the_accounts_money_and_take_run_json_counts(full):
    t = summary.firm_totals(full, summary.orders(full))
    assert (t.accounts, t.ok, t.failed, t.trades, t.orders) == (3, 2, 1, 7, 6)
    assert t.harvested_loss == Decimal("1000.00")
    assert t.tax_saving == Decimal("400.00")  # −Σ tax estimate
    assert (t.orders_p50, t.orders_p90) == (3.0, 3.8)
    assert (t.mandate_changes, t.cash_flows, t.ledger_memory_bytes) == (1, 2, 3 * 2**20)
    assert (t.accounts_per_s, t.wall_s, t.workers) == (2.0, 1.5, 1)


def test_orders_are_one_per_account_symbol_and_side_valued_at_shares_times_price(plain):
    o = summary.orders(plain)
    assert (o.count, o.buys, o.sells) == (6, 2, 4)
    assert sorted(o.values.tolist()) == [100.0, 100.0, 200.0, 200.0, 600.0, 750.0]
    assert sorted(o.values[o.buy].tolist()) == [100.0, 600.0]
    t = summary.firm_totals(plain, o)
    assert t.orders == 6  # counted from trades.parquet when run.json has no "orders"
    assert (t.orders_p50, t.orders_p90) == pytest.approx((3.0, 3.8))  # A1: 4 orders, A2: 2; A3 failed
    assert (t.mandate_changes, t.cash_flows, t.ledger_memory_bytes) == (None, None, None)


def test_harvest_and_tax_saving_by_account_type(full, plain):
    rows = summary.by_account_type(full)
    assert [(r.account_type, r.accounts, r.harvested_loss, r.tax_saving) for r in rows] == [
        ("taxable", 2, Decimal("1000.00"), Decimal("400.00")),
        ("ira", 1, Decimal("0.00"), Decimal("0.00")),
    ]
    assert summary.by_account_type(plain) is None


def test_tracking_error_is_measured_against_each_accounts_own_budget(full):
    te = summary.tracking_error(full)
    assert te.against_budget and te.without_budget == 0
    assert sorted(te.values.tolist()) == pytest.approx([0.25, 1.2])  # A3 failed: no TE
    assert [(o.account, o.household, o.account_type) for o in te.over] == [("A1", "H1", "taxable")]
    assert te.over[0].ratio == pytest.approx(1.2)


def test_tracking_error_without_budgets_is_the_te_itself_and_nothing_is_over(plain):
    te = summary.tracking_error(plain)
    assert not te.against_budget and te.over == []
    assert sorted(te.values.tolist()) == pytest.approx([0.005, 0.012])


def test_a_te_at_its_budget_to_solver_precision_is_not_over_it(tmp_path):
    run = write_run_dir(tmp_path)
    table = pq.read_table(run / "accounts.parquet")
    te = table.column("te_ex_ante").to_pylist()
    te[0] = 0.010 * (1 + 1e-12)  # A1's budget is 1.0%
    pq.write_table(
        table.set_column(table.schema.get_field_index("te_ex_ante"), "te_ex_ante", pa.array(te)),
        run / "accounts.parquet",
    )
    assert summary.tracking_error(read_run(run)).over == []


def test_failed_accounts_come_first_then_those_that_gave_way(full, plain):
    rows = summary.attention(full)
    assert [(a.account, a.status, a.reason, a.notes, a.mandate_version) for a in rows] == [
        ("A3", "infeasible", MALICIOUS, "", 3),
        ("A1", "optimal", "", NOTE, 2),
    ]
    assert [a.account for a in summary.attention(plain)] == ["A3"]  # no notes recorded: failures only


def test_blocked_names_ranked_by_households_with_the_last_blocked_day(full, plain):
    names = summary.blocked_names(full)
    assert [(b.symbol, b.households, b.no_buy, b.no_loss_sale, b.until) for b in names] == [
        ("AAA", 2, 2, 1, dt.date(2024, 3, 31)),
        ("BBB", 1, 1, 0, dt.date(2024, 3, 31)),
    ]
    assert summary.blocked_names(plain) is None


def test_top_harvested_names_sum_loss_sales_and_leave_out_iras_when_types_are_known(full, plain):
    assert [(n.symbol, n.loss, n.accounts, n.lots) for n in summary.harvested_names(full)] == [
        ("AAA", Decimal("550.00"), 1, 2),
        ("BBB", Decimal("450.00"), 1, 1),
    ]
    # without account types every loss sale counts (A2's IRA sale of AAA too); DDD's gain never does
    assert [(n.symbol, n.loss, n.accounts, n.lots) for n in summary.harvested_names(plain)] == [
        ("AAA", Decimal("650.00"), 2, 3),
        ("BBB", Decimal("450.00"), 1, 1),
    ]


def test_cash_flows_and_events_since_last_night(full, plain):
    flows = summary.cash_flows(full)
    assert (flows.accounts, flows.deposits, flows.withdrawals) == (2, Decimal("5000.00"), Decimal("-2500.00"))
    events = summary.events(full)
    assert [(e.account, e.kind, e.actor) for e in events] == [
        ("A3", "cash_flow", "ops"),
        ("A1", "cash_flow", "ops"),
        ("A1", "mandate", "pm@firm"),
    ]
    assert summary.cash_flows(plain) is None and summary.events(plain) is None
    text = page(full)
    assert "The run applied 1 mandate change and 2 cash flows." in text
    assert "deposits $5,000.00, withdrawals -$2,500.00, net $2,500.00" in text


def test_money_has_thousands_separators_and_cents():
    assert usd(Decimal("1234567.8")) == "$1,234,567.80"
    assert usd(Decimal("-2500")) == "-$2,500.00"
    assert usd(1234.5) == "$1,234.50" and usd(-0.004) == "$0.00"  # float order values too
    assert usd(None) == "—"


def test_every_string_from_the_data_is_escaped(full):
    text = page(full)
    assert "<script" not in text and "<img src=x" not in text
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;" in text
    assert "Content-Security-Policy" in text


def test_the_page_is_self_contained(full):
    text = page(full)
    assert not re.search(r"https?://", text)
    sources = re.findall(r"src='([^']*)'", text)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    for amount in ("$1,000.00", "$400.00", "$550.00", "-$2,500.00", "$5,000.00"):
        assert amount in text


def test_style_tilts_against_their_targets_with_the_accounts_short_of_them(full, plain):
    rows = summary.tilts(full)
    assert [r.style for r in rows] == ["momentum", "value"]
    momentum, value = rows
    assert momentum.accounts == 1 and momentum.short == [("A2", -0.19, -0.2)]  # a lean away, not far enough
    assert value.accounts == 2 and value.target_mean == 0.5 and value.achieved_mean == pytest.approx(0.48605)
    assert value.short == [("A2", 0.47, 0.5)]  # A1 is over its target: met
    text = page(full)
    assert "Style tilts: active exposures against their targets" in text and "A2 +0.470 (target +0.500)" in text
    assert summary.tilts(plain) is None


def test_without_the_optional_inputs_each_section_says_not_recorded(plain):
    text = page(plain)
    for what in (
        "Account types not recorded in this run.",
        "TE budgets not recorded in this run.",
        "Wash-sale blocks (blocked.parquet) not recorded in this run.",
        "Mandate and cash-flow events (events.parquet) not recorded in this run.",
        "Style tilts (accounts.parquet tilts) not recorded in this run.",
    ):
        assert what in text
    assert "Firm totals" in text and "Top harvested names" in text


def test_tables_are_capped_and_say_how_many_there_are():
    names = [summary.BlockedName(f"S{i:03d}", 30 - i, 1, 0, dt.date(2024, 3, 31)) for i in range(TOP + 5)]
    html = blocked_section(names)
    assert f"{TOP + 5} names (most households first): the top {TOP} shown." in html
    assert html.count("<tr>") == TOP + 1  # and the header row


def test_write_morning_report_defaults_to_report_html_in_the_run(tmp_path):
    run = write_run_dir(tmp_path / "run")
    out = write_morning_report(run)
    assert out == run / "report.html" and out.read_text().startswith("<!doctype html>")
    assert [p.name for p in run.iterdir() if p.name.endswith(".partial")] == []
    other = write_morning_report(run, tmp_path / "elsewhere" / "morning.html")
    assert other.is_file()


def test_the_report_command_writes_the_page_and_says_where(tmp_path, capsys):
    run = write_run_dir(tmp_path / "run", optional=False)
    assert main(["report", "--run", str(run)]) == 0
    assert str(run / "report.html") in capsys.readouterr().out
    assert main(["report", "--run", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").is_file()


def _break(run, how):
    if how == "no run.json":
        (run / "run.json").unlink()
    elif how == "no accounts.parquet":
        (run / "accounts.parquet").unlink()
    elif how == "run.json not JSON":
        (run / "run.json").write_text("{not json")
    elif how == "run.json key of the wrong type":
        (run / "run.json").write_text((run / "run.json").read_text().replace('"ok": 2', '"ok": "two"'))
    elif how == "accounts.parquet not Parquet":
        (run / "accounts.parquet").write_bytes(b"PAR1 garbage")
    elif how == "a column missing":
        table = pq.read_table(run / "trades.parquet")
        pq.write_table(table.drop_columns(["price"]), run / "trades.parquet")
    elif how == "a column of the wrong type":
        table = pq.read_table(run / "blocked.parquet")
        i = table.schema.get_field_index("until")
        pq.write_table(table.set_column(i, "until", pa.array(["soon"] * table.num_rows)), run / "blocked.parquet")


@pytest.mark.parametrize(
    "how, names",
    [
        ("no run.json", "run.json"),
        ("no accounts.parquet", "accounts.parquet"),
        ("run.json not JSON", "run.json"),
        ("run.json key of the wrong type", "ok"),
        ("accounts.parquet not Parquet", "accounts.parquet"),
        ("a column missing", "price"),
        ("a column of the wrong type", "until"),
    ],
)
def test_the_report_command_exits_2_naming_what_is_wrong(tmp_path, capsys, how, names):
    run = write_run_dir(tmp_path / "run")
    _break(run, how)
    assert main(["report", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("taxview: error: ") and names in err and "Traceback" not in err
    assert not (run / "report.html").exists()


def test_the_report_command_on_a_missing_directory_is_one_line_and_exit_2(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "taxview.cli", "report", "--run", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [
        f"taxview: error: run: {tmp_path / 'nope'} is not a directory (a nightly run's --out)"
    ]
