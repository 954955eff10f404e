"""New market days: ``taxview market append`` (closes from a file) and ``market synth --extend``
(a synthetic market continued with its own process), on real directories."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from solver.market import read_market, synthesize, write_market
from solver.marketdir import write_synthetic
from solver.riskmodel import estimate, write_riskmodel
from solver.snapshot import load_snapshot
from taxview.cli import main


def _files(d: Path) -> dict[str, str]:
    """Every file under ``d`` (hidden ones too) and its SHA-256: what 'no byte changed' compares."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in d.rglob("*") if p.is_file()}


def _next_days(market, k: int) -> list[str]:
    return [str(d) for d in np.busday_offset(market.dates[-1], np.arange(1, k + 1), roll="backward")]


def _closes_csv(path: Path, rows: list[tuple], header: str = "date,symbol,close") -> Path:
    path.write_text(header + "\n" + "".join(",".join(str(x) for x in r) + "\n" for r in rows))
    return path


def _good_rows(market, k: int = 2) -> list[tuple]:
    """k new days of closes: every universe symbol once per date, dates in order."""
    rng = np.random.default_rng(1)
    last = market.prices[-1]
    rows = []
    for d in _next_days(market, k):
        last = np.round(last * (1 + rng.normal(0, 0.01, market.n)), 2)
        rows += [(d, s, f"{p:.2f}") for s, p in zip(market.symbols, last)]
    return rows


@pytest.fixture
def market_dir(tmp_path) -> Path:
    d = tmp_path / "mkt"
    write_market(synthesize(names=8, days=300, factors=3, seed=2), d)
    return d


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_append_adds_exactly_the_given_days_and_the_market_reads_back(tmp_path, market_dir, fmt):
    before = read_market(market_dir)
    model = estimate(before, len(before.dates) - 1, factors=3)
    write_riskmodel(model, market_dir / "riskmodel")
    untouched = {k: v for k, v in _files(market_dir).items() if k != "prices.parquet"}
    rows = _good_rows(before, 3)
    if fmt == "csv":
        closes = _closes_csv(tmp_path / "closes.csv", rows)
    else:
        closes = tmp_path / "closes.parquet"
        d, s, c = zip(*rows)
        table = pa.table({"date": pa.array(d).cast(pa.date32()), "symbol": s, "close": [float(x) for x in c]})
        pq.write_table(table, closes)

    assert main(["market", "append", "--market", str(market_dir), "--prices", str(closes)]) == 0

    after = read_market(market_dir)
    new_dates = [str(d) for d in after.dates[len(before.dates) :]]
    assert new_dates == _next_days(before, 3)
    assert np.array_equal(after.prices[: len(before.dates)], before.prices)
    expected = np.array([float(r[2]) for r in rows]).reshape(3, before.n)
    assert np.array_equal(after.prices[len(before.dates) :], expected)
    assert {k: v for k, v in _files(market_dir).items() if k != "prices.parquet"} == untouched
    assert not list(market_dir.glob(".*"))  # no temporary file left behind
    _, snap = load_snapshot(market_dir, new_dates[-1], factors=3)  # the vendor model serves the new date
    assert str(snap.date) == new_dates[-1] and snap.model.fingerprint == model.fingerprint
    assert np.array_equal(snap.prices, expected[-1])
    assert np.allclose(snap.benchmark, after.benchmark_weights(len(after.dates) - 1))


def test_append_keeps_the_prices_file_schema_and_its_other_columns(tmp_path, market_dir):
    """A market brought by hand: plain string symbols and a column taxview does not use."""
    t = pq.read_table(market_dir / "prices.parquet")
    t = t.set_column(1, "symbol", t.column("symbol").cast(pa.string())).append_column(
        "volume", pa.array(np.arange(len(t)), pa.int64())
    )
    pq.write_table(t, market_dir / "prices.parquet")
    before = read_market(market_dir)
    closes = _closes_csv(tmp_path / "c.csv", _good_rows(before, 1))
    assert main(["market", "append", "--market", str(market_dir), "--prices", str(closes)]) == 0
    back = pq.read_table(market_dir / "prices.parquet")
    assert back.schema == t.schema
    assert back.num_rows == t.num_rows + before.n
    assert back.column("volume").null_count == before.n
    assert len(read_market(market_dir).dates) == len(before.dates) + 1


def _set_close(rows: list[tuple], i: int, close: str) -> list[tuple]:
    return [(d, s, close if j == i else c) for j, (d, s, c) in enumerate(rows)]


_BAD = {
    # case: (spoil the good rows of 8 names × 2 days given the market's last date, what stderr says)
    "nan close": (lambda r, last: _set_close(r, 2, "nan"), r"close: .* row 4: close 'nan' of S002"),
    "zero close": (lambda r, last: _set_close(r, 1, "0"), r"close: .* row 3: close '0' of S001"),
    "negative close": (lambda r, last: _set_close(r, 0, "-3.5"), r"close: .* row 2: close '-3.5' of S000"),
    "text close": (lambda r, last: _set_close(r, 9, "12.5x"), r"close: .* row 11: close '12.5x' of S001"),
    "missing symbol": (lambda r, last: r[:11] + r[12:], r"symbol: .* no close for S003 on \d{4}-\d\d-\d\d"),
    "unknown symbol": (lambda r, last: r + [(r[-1][0], "ZZZ", "10.00")], r"symbol: .* row 18: symbol 'ZZZ' is not"),
    "date not after the last": (lambda r, last: [(last, s, c) for _, s, c in r], r"date: .* row 2: date .* not after"),
    "dates out of order": (lambda r, last: r[8:] + r[:8], r"date: .* row 10: .* rows must be in date order"),
    "duplicate row": (lambda r, last: r[:5] + [r[4]] + r[5:], r"symbol: .* row 7: S004 on .* also on row 6"),
    "malformed date": (lambda r, last: [("2031-02-30", s, c) for _, s, c in r], r"date: .* row 2: date '2031-02-30'"),
    "no rows": (lambda r, last: [], r"prices: .* has no rows"),
}


@pytest.mark.parametrize("case", list(_BAD))
def test_a_bad_closes_file_exits_2_naming_the_field_and_changes_nothing(tmp_path, market_dir, capsys, case):
    spoil, message = _BAD[case]
    market = read_market(market_dir)
    closes = _closes_csv(tmp_path / "closes.csv", spoil(_good_rows(market, 2), str(market.dates[-1])))
    before = _files(market_dir)
    assert main(["market", "append", "--market", str(market_dir), "--prices", str(closes)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("taxview: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert _files(market_dir) == before


def _write_bytes(data: bytes):
    return lambda path: path.write_bytes(data)


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("closes.csv", lambda p: p.write_text("date,symbol\n2030-01-02,S000\n"), r"close: .*missing column"),
        ("closes.csv", lambda p: p.write_text("date,symbol,close,volume\n"), r"volume: .*unknown column"),
        ("closes.csv", lambda p: p.write_text("date,symbol,close\n2030-01-02,S000\n"), r"row: .* row 2: wrong number"),
        ("closes.csv", _write_bytes(b"date,symbol,close\n\xff\xfe,S000,1\n"), r"prices: .*not UTF-8"),
        ("closes.csv", lambda p: None, r"prices: cannot open"),
        ("closes.parquet", _write_bytes(b"PAR1 not really parquet"), r"prices: cannot read .* as Parquet"),
        ("closes.parquet", lambda p: None, r"prices: .* not found"),
        ("closes.parquet", lambda p: pq.write_table(pa.table({"date": ["2030-01-02"], "px": [1.0]}), p), r"symbol: "),
        ("closes.txt", lambda p: p.write_text("date,symbol,close\n"), r"prices: .*expected a \.csv or \.parquet"),
    ],
)
def test_an_unreadable_or_malformed_file_exits_2_and_changes_nothing(tmp_path, market_dir, capsys, name, make, message):
    path = tmp_path / name
    make(path)
    before = _files(market_dir)
    assert main(["market", "append", "--market", str(market_dir), "--prices", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert _files(market_dir) == before


def test_a_nan_close_in_parquet_names_its_row(tmp_path, market_dir, capsys):
    market = read_market(market_dir)
    d, s, c = zip(*_good_rows(market, 1))
    close = [float(x) for x in c]
    close[5] = float("nan")
    pq.write_table(pa.table({"date": list(d), "symbol": list(s), "close": close}), tmp_path / "c.parquet")
    before = _files(market_dir)
    assert main(["market", "append", "--market", str(market_dir), "--prices", str(tmp_path / "c.parquet")]) == 2
    assert "close: " in (err := capsys.readouterr().err) and "row 6:" in err and "S005" in err
    assert _files(market_dir) == before


def test_a_second_update_while_one_runs_is_refused(tmp_path, market_dir, capsys):
    closes = _closes_csv(tmp_path / "c.csv", _good_rows(read_market(market_dir), 1))
    before = _files(market_dir)
    fd = os.open(market_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running append or extend holds
        assert main(["market", "append", "--market", str(market_dir), "--prices", str(closes)]) == 1
    finally:
        os.close(fd)
    assert "another taxview market command" in capsys.readouterr().err
    assert _files(market_dir) == before
    assert main(["market", "append", "--market", str(market_dir), "--prices", str(closes)]) == 0


def test_a_killed_append_leaves_the_old_market_readable(tmp_path):
    """SIGKILL while the new prices.parquet is being written: the market is the old one or the
    new one, never a part; the next append clears the killed one's temporary file."""
    d = tmp_path / "big"
    write_market(synthesize(names=400, days=2000, factors=4, seed=5), d)
    old = read_market(d)
    closes = _closes_csv(tmp_path / "c.csv", _good_rows(old, 5))
    cmd = [sys.executable, "-m", "taxview.cli", "market", "append", "--market", str(d), "--prices", str(closes)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(d.glob(".prices.parquet.*.partial")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.kill()  # SIGKILL
    proc.wait()
    now = read_market(d)
    assert len(now.dates) in (len(old.dates), len(old.dates) + 5)
    assert np.array_equal(now.prices[: len(old.dates)], old.prices)
    if len(now.dates) == len(old.dates):  # killed mid-write (the usual case): append again
        assert main(["market", "append", "--market", str(d), "--prices", str(closes)]) == 0
        assert len(read_market(d).dates) == len(old.dates) + 5
    assert not list(d.glob(".*"))


def _synth(out: Path, names=40, days=300, factors=5, seed=3) -> Path:
    args = ["--names", str(names), "--days", str(days), "--factors", str(factors), "--seed", str(seed)]
    assert main(["market", "synth", *args, "--out", str(out)]) == 0
    return out


def test_synth_records_how_it_was_made_and_extend_adds_n_business_days(tmp_path):
    d = _synth(tmp_path / "m")
    record = json.loads((d / "synthetic.json").read_text())
    assert record == {
        "generator": "taxview.synthesize",
        "version": 1,
        "names": 40,
        "days": 300,
        "factors": 5,
        "seed": 3,
        "start": "2015-01-02",
    }
    before = read_market(d)
    untouched = {k: v for k, v in _files(d).items() if k != "prices.parquet"}
    assert main(["market", "synth", "--extend", str(d), "--days", "15"]) == 0
    after = read_market(d)
    new = after.dates[len(before.dates) :]
    assert len(new) == 15 and new[0] > before.dates[-1]
    assert np.is_busday(new).all()
    assert (np.busday_count(np.concatenate([before.dates[-1:], new[:-1]]), new) == 1).all()  # no day skipped
    assert np.array_equal(after.prices[: len(before.dates)], before.prices)
    assert np.array_equal(after.prices, np.round(after.prices, 2)) and (after.prices > 0).all()
    assert {k: v for k, v in _files(d).items() if k != "prices.parquet"} == untouched

    _, snap = load_snapshot(d, str(new[-1]), factors=5)  # what taxview rebalance loads
    assert str(snap.date) == str(new[-1]) and np.array_equal(snap.prices, after.prices[-1])
    assert np.isclose(snap.benchmark.sum(), 1.0) and np.all(np.isfinite(snap.model.B))


def test_extend_is_deterministic_and_independent_of_how_the_days_are_split(tmp_path):
    d = _synth(tmp_path / "m")
    copies = [shutil.copytree(d, tmp_path / f"c{i}") for i in range(3)]
    assert main(["market", "synth", "--extend", str(copies[0]), "--days", "10"]) == 0
    assert main(["market", "synth", "--extend", str(copies[1]), "--days", "10"]) == 0
    assert main(["market", "synth", "--extend", str(copies[2]), "--days", "4"]) == 0
    assert main(["market", "synth", "--extend", str(copies[2]), "--days", "6"]) == 0
    assert _files(copies[0]) == _files(copies[1])
    a, c = read_market(copies[0]), read_market(copies[2])
    assert np.array_equal(a.prices, c.prices) and np.array_equal(a.dates, c.dates)
    other = shutil.copytree(d, tmp_path / "other-seed")
    record = json.loads((d / "synthetic.json").read_text())
    write_synthetic(other, **{**{k: record[k] for k in ("names", "days", "factors", "start")}, "seed": 4})
    assert main(["market", "synth", "--extend", str(other), "--days", "10"]) == 0
    assert not np.array_equal(read_market(other).prices[-10:], a.prices[-10:])


def test_extended_days_have_the_statistics_of_the_synthetic_process(tmp_path):
    d = tmp_path / "m"
    write_synthetic(d, names=120, days=756, factors=8, seed=9, start="2015-01-02")
    base = read_market(d)
    assert main(["market", "synth", "--extend", str(d), "--days", "756"]) == 0
    ext = read_market(d)
    t0 = len(base.dates) - 1

    def stats(r: np.ndarray) -> tuple[float, float, float]:
        market = r @ ext.benchmark_weights(t0)
        z = (r - r.mean(axis=0)) / r.std(axis=0)
        kurt = float(np.median((z**4).mean(axis=0) - 3.0))
        return market.std() * np.sqrt(252), float(np.median(r.std(axis=0) * np.sqrt(252))), kurt

    old_vol, old_stock, old_kurt = stats(base.returns(t0, t0))
    new_vol, new_stock, new_kurt = stats(ext.returns(len(ext.dates) - 1, 756))
    assert 0.08 < new_vol < 0.30 and 0.6 < new_vol / old_vol < 1.6
    assert 0.15 < new_stock < 0.6 and 0.8 < new_stock / old_stock < 1.25
    assert new_kurt > 0.5 and old_kurt > 0.5  # fat tails (Student-t shocks), in both


def test_extend_refuses_a_market_that_is_not_synthetic_or_not_the_recorded_one(tmp_path, capsys):
    plain = tmp_path / "plain"
    write_market(synthesize(names=10, days=100, factors=3, seed=1), plain)  # no synthetic.json
    before = _files(plain)
    assert main(["market", "synth", "--extend", str(plain), "--days", "5"]) == 2
    assert "not a synthetic market" in capsys.readouterr().err
    assert _files(plain) == before

    d = _synth(tmp_path / "m")
    record = json.loads((d / "synthetic.json").read_text())
    (d / "synthetic.json").write_text(json.dumps({**record, "seed": 99}))  # not how this market was made
    before = _files(d)
    assert main(["market", "synth", "--extend", str(d), "--days", "5"]) == 2
    assert "synthetic.json: " in (err := capsys.readouterr().err) and "first closes" in err
    (d / "synthetic.json").write_text(json.dumps({**record, "seed": "3"}))
    before = _files(d)
    assert main(["market", "synth", "--extend", str(d), "--days", "5"]) == 2
    assert "synthetic.json.seed: " in capsys.readouterr().err
    assert _files(d) == before

    (d / "synthetic.json").write_text(json.dumps(record))
    before = _files(d)
    for args, field in (
        (["--days", "0"], "days: "),
        (["--days", "5", "--seed", "2"], "seed: "),
        ([], "days: "),
    ):
        assert main(["market", "synth", "--extend", str(d), *args]) == 2
        assert capsys.readouterr().err.startswith(f"taxview: error: {field}")
    assert _files(d) == before
    assert main(["market", "synth", "--extend", str(d), "--days", "5"]) == 0


def test_market_synth_refuses_a_bad_recipe_naming_the_field_and_writes_nothing(tmp_path, capsys):
    """Once exit 1 with a bare ValueError (a negative seed, 2015-02-30), a market dated into the
    year 10000 (unreadable after), a names × days that never finished, FileExistsError for a file."""
    (tmp_path / "plain").write_text("")
    for args, field, message in (
        (["--seed", "-1"], "seed", "seed must be >= 0"),
        (["--start", "2015-02-30"], "start", "must be an ISO date"),
        (["--names", "10", "--days", "30", "--start", "9999-12-01"], "start", "run past 9999-12-31"),
        (["--names", "100000000", "--days", "100000"], "names/days", "names × days must be at most"),
    ):
        assert main(["market", "synth", *args, "--out", str(tmp_path / "m")]) == 2
        err = capsys.readouterr().err
        assert f"error: {field}: " in err and message in err and "Traceback" not in err
        assert not (tmp_path / "m").exists()
    assert main(["market", "synth", "--names", "4", "--days", "20", "--out", str(tmp_path / "plain")]) == 2
    assert "out: " in capsys.readouterr().err and (tmp_path / "plain").read_text() == ""
