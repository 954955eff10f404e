"""Market data, risk model, file formats and the solve CLI."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from solver.io import read_account_toml, read_lots_csv, write_lots_csv
from solver.market import read_market, synthesize, write_market
from solver.riskmodel import estimate, read_riskmodel, write_riskmodel
from solver.synthetic import synth_lots
from taxview.cli import main
from taxview.core.errors import InputError
from taxview.core.tax import term_of


@pytest.mark.parametrize(
    ("start", "sold", "term"),
    [
        ("2023-06-15", "2024-06-15", "short"),
        ("2023-06-15", "2024-06-16", "long"),
        ("2020-02-29", "2021-02-28", "short"),
        ("2020-02-29", "2021-03-01", "long"),
        ("2023-03-01", "2024-02-29", "short"),
        ("2023-03-01", "2024-03-01", "short"),
        ("2023-03-01", "2024-03-02", "long"),
    ],
)
def test_long_term_means_sold_more_than_one_year_after_purchase(start, sold, term):
    assert term_of(dt.date.fromisoformat(start), dt.date.fromisoformat(sold)) == term


def test_synthetic_market_is_deterministic_by_seed_and_realistic():
    a = synthesize(names=80, days=600, factors=10, seed=9)
    b = synthesize(names=80, days=600, factors=10, seed=9)
    c = synthesize(names=80, days=600, factors=10, seed=10)
    assert np.array_equal(a.prices, b.prices) and not np.array_equal(a.prices, c.prices)
    r = a.returns(len(a.dates) - 1, 599)
    vol = r.std(axis=0) * np.sqrt(252)
    assert 0.15 < np.median(vol) < 0.6
    mkt = r @ a.benchmark_weights(0)
    assert 0.08 < mkt.std() * np.sqrt(252) < 0.30
    assert len(set(a.sectors)) > 5


def test_market_parquet_round_trip(tmp_path):
    m = synthesize(names=30, days=50, factors=5, seed=1)
    write_market(m, tmp_path)
    back = read_market(tmp_path)
    assert back.symbols == m.symbols and back.sectors == m.sectors
    assert np.array_equal(back.prices, m.prices) and np.array_equal(back.dates, m.dates)


def test_a_nan_close_is_a_missing_close_refused_where_it_is_needed(tmp_path):
    """The market reads; what needs the close names its symbol and date (tests/unit/test_universe.py
    has the snapshots)."""
    m = synthesize(names=5, days=10, factors=2, seed=1)
    write_market(m, tmp_path)
    t = pq.read_table(tmp_path / "prices.parquet")
    close = t.column("close").to_numpy().copy()
    close[7] = np.nan  # rows by date, then symbol: S002 on the second day
    pq.write_table(t.set_column(2, "close", pa.array(close)), tmp_path / "prices.parquet")
    back = read_market(tmp_path)
    assert np.isnan(back.prices[1, 2]) and np.isnan(back.prices).sum() == 1
    back.require_closes(2, 9, "the days after it")
    with pytest.raises(InputError, match=rf"^close: no close for S002 on {m.dates[1]}: the second day$"):
        back.require_closes(0, 9, "the second day")


def test_malformed_market_file_is_rejected(tmp_path):
    (tmp_path / "universe.parquet").write_text("not parquet")
    (tmp_path / "prices.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="market"):
        read_market(tmp_path)


def test_risk_model_is_read_only_and_parquet_round_trips(tmp_path):
    m = synthesize(names=40, days=300, factors=6, seed=2)
    rm = estimate(m, len(m.dates) - 1, factors=6)
    assert not rm.B.flags.writeable and not rm.D.flags.writeable
    with pytest.raises(ValueError):
        rm.D[0] = 1.0
    write_riskmodel(rm, tmp_path)
    back = read_riskmodel(tmp_path, m.symbols)
    assert np.array_equal(back.B, rm.B) and back.fingerprint == rm.fingerprint
    with pytest.raises(InputError, match="symbol"):
        read_riskmodel(tmp_path, (*m.symbols, "MISSING"))


def test_pca_risk_model_explains_realized_risk():
    m = synthesize(names=100, days=800, factors=12, seed=4)
    t = 500
    rm = estimate(m, t, factors=12)
    w = m.benchmark_weights(t)
    realized = (m.returns(len(m.dates) - 1, 299) @ w).std() * np.sqrt(252)
    predicted = np.sqrt(rm.variance(w))
    assert 0.6 < predicted / realized < 1.6


def test_lots_csv_round_trip_and_row_numbered_errors(tmp_path):
    m = synthesize(names=10, days=100, factors=3, seed=1)
    lots = synth_lots(m, 99, np.random.default_rng(0), value=1e5)
    write_lots_csv(lots, tmp_path / "lots.csv")
    assert read_lots_csv(tmp_path / "lots.csv") == lots
    bad = tmp_path / "bad.csv"
    bad.write_text("lot_id,symbol,quantity,basis,acquired\na,S000,10,100,2020-01-02\nb,S001,-3,100,2020-01-02\n")
    with pytest.raises(InputError, match=r"quantity.*row 3"):
        read_lots_csv(bad)
    bad.write_text("lot_id,symbol,quantity,basis,acquired\na,S000,ten,100,2020-01-02\n")
    with pytest.raises(InputError, match=r"quantity.*row 2.*not a number"):
        read_lots_csv(bad)
    bad.write_text("lot_id,symbol,quantity,basis,acquired\na,S000,1,100,2020-13-02\n")
    with pytest.raises(InputError, match=r"acquired.*row 2"):
        read_lots_csv(bad)
    bad.write_text("lot_id,symbol,qty\n")
    with pytest.raises(InputError, match="missing column"):
        read_lots_csv(bad)


def test_account_toml_unknown_keys_and_bad_values_are_rejected(tmp_path):
    f = tmp_path / "a.toml"
    f.write_text('[account]\nid = "A"\ncash = 100.5\n[optimizer]\nte_max = 0.03\n[exclude]\nsectors = ["Energy"]\n')
    s, cash, r = read_account_toml(f)
    assert s.account_id == "A" and cash == 10050 and s.te_max == 0.03 and s.exclude_sectors == {"Energy"}
    f.write_text("[optimizer]\nte_maxx = 0.03\n")
    with pytest.raises(InputError, match="optimizer.te_maxx"):
        read_account_toml(f)
    f.write_text('[optimizer]\nte_max = "big"\n')
    with pytest.raises(InputError, match="te_max"):
        read_account_toml(f)
    f.write_text("[optimizer\n")
    with pytest.raises(InputError, match="TOML"):
        read_account_toml(f)


def test_solve_cli_prints_the_documented_json(tmp_path, capsys):
    m = synthesize(names=50, days=300, factors=6, seed=5)
    write_market(m, tmp_path / "mkt")
    lots = synth_lots(m, 299, np.random.default_rng(1))
    write_lots_csv(lots, tmp_path / "lots.csv")
    (tmp_path / "a.toml").write_text('[account]\nid = "A1"\ncash = 5000\n')
    rc = main(
        [
            "solve",
            "--market",
            str(tmp_path / "mkt"),
            "--date",
            str(m.dates[-1]),
            "--account",
            str(tmp_path / "a.toml"),
            "--lots",
            str(tmp_path / "lots.csv"),
            "--factors",
            "6",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["status"] == "optimal"
    for key in (
        "reason",
        "solve_ms",
        "trades",
        "weights",
        "te_ex_ante",
        "realized",
        "tax_estimate",
        "harvested_loss",
        "turnover",
    ):
        assert key in out
    assert set(out["realized"]) == {"st_gain", "st_loss", "lt_gain", "lt_loss"}
    sell = next(t for t in out["trades"] if t["side"] == "sell")
    assert set(sell) >= {"symbol", "side", "shares", "lot_id", "price", "realized_gain", "term"}
    # dollars to the cent in JSON: summed as floats, compared to the cent
    assert out["harvested_loss"] == round(-(out["realized"]["st_loss"] + out["realized"]["lt_loss"]), 2)


def test_solve_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    m = synthesize(names=10, days=100, factors=3, seed=5)
    write_market(m, tmp_path / "mkt")
    (tmp_path / "lots.csv").write_text("lot_id,symbol,quantity,basis,acquired\na,ZZZ,1,10,2015-01-05\n")
    (tmp_path / "a.toml").write_text("")
    rc = main(
        [
            "solve",
            "--market",
            str(tmp_path / "mkt"),
            "--date",
            str(m.dates[-1]),
            "--account",
            str(tmp_path / "a.toml"),
            "--lots",
            str(tmp_path / "lots.csv"),
            "--factors",
            "3",
        ]
    )
    assert rc == 2 and "ZZZ" in capsys.readouterr().err


def test_solve_cli_refuses_a_date_that_is_no_date_and_factors_below_one_with_exit_2(tmp_path, capsys):
    """Once exit 1 with a bare ValueError (numpy's parse of '2015-02-30'; a zero-size reduction
    for --factors 0, negative dimensions for -3)."""
    m = synthesize(names=10, days=100, factors=3, seed=5)
    write_market(m, tmp_path / "mkt")
    (tmp_path / "lots.csv").write_text("lot_id,symbol,quantity,basis,acquired\n")
    (tmp_path / "a.toml").write_text("[account]\ncash = 1000.00\n")
    base = ["solve", "--market", str(tmp_path / "mkt"), "--account", str(tmp_path / "a.toml")]
    base += ["--lots", str(tmp_path / "lots.csv")]
    for extra, field in (
        (["--date", "2015-02-30"], "date"),
        (["--date", "soon"], "date"),
        (["--date", str(m.dates[-1]), "--factors", "0"], "factors"),
        (["--date", str(m.dates[-1]), "--factors", "-3"], "factors"),
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert f"taxview: error: {field}: " in err and "Traceback" not in err and "ValueError" not in err
    assert m.day_index(np.datetime64(str(m.dates[-1]), "ns")) == len(m.dates) - 1  # a datetime64 of any unit
