"""Universe updates of a market directory (``taxview market universe``): names listed and delisted,
on real directories; the closes ``market append`` then asks for; what a snapshot and its risk model
make of a name that did not trade through the whole window; a missing close refused only where a
day's snapshot needs it (issue 12), naming the symbol and the date."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from solver.market import Market, _readonly, read_market, synthesize, write_market
from solver.marketdir import SYMBOL_PATTERN, write_synthetic
from solver.riskmodel import estimate, min_history, write_riskmodel
from solver.snapshot import load_snapshot, snapshot
from taxview.cli import main
from taxview.core.errors import InputError

FACTORS = 3


def _files(d: Path) -> dict[str, str]:
    """Every file under ``d`` (hidden ones too) and its SHA-256: what 'no byte changed' compares."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in d.rglob("*") if p.is_file()}


def _next_days(market: Market, k: int) -> list[str]:
    return [str(d) for d in np.busday_offset(market.dates[-1], np.arange(1, k + 1), roll="backward")]


def _csv(path: Path, header: str, rows: list[tuple]) -> Path:
    path.write_text(header + "\n" + "".join(",".join(str(x) for x in r) + "\n" for r in rows))
    return path


def _universe(main_args: list[str]) -> int:
    return main(["market", "universe", *main_args])


@pytest.fixture
def market_dir(tmp_path) -> Path:
    d = tmp_path / "mkt"
    write_market(synthesize(names=12, days=300, factors=FACTORS, seed=2), d)
    return d


def _update(tmp_path: Path, market_dir: Path, rows: list[tuple], name: str = "u.csv") -> int:
    f = _csv(tmp_path / name, "symbol,action,date,sector,shares_outstanding", rows)
    return _universe(["--market", str(market_dir), "--file", str(f)])


def _closes(market: Market, days: list[str], skip=lambda symbol, k: False, new_close: float = 50.0) -> list[tuple]:
    """Closes of every name of ``market`` on ``days`` (1% up a day), but those ``skip`` says."""
    rows = []
    for k, day in enumerate(days):
        for i, s in enumerate(market.symbols):
            if skip(s, k):
                continue
            base = market.prices[-1, i] if np.isfinite(market.prices[-1, i]) else new_close
            rows.append((day, s, f"{base * 1.01 ** (k + 1):.2f}"))
    return rows


def _append(tmp_path: Path, market_dir: Path, rows: list[tuple]) -> int:
    f = _csv(tmp_path / "closes.csv", "date,symbol,close", rows)
    return main(["market", "append", "--market", str(market_dir), "--prices", str(f)])


# --- the update itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_universe_update_lists_and_delists_and_changes_only_the_universe_file(tmp_path, market_dir, fmt):
    before = read_market(market_dir)
    write_riskmodel(estimate(before, len(before.dates) - 1, factors=FACTORS), market_dir / "riskmodel")
    loadings = pq.read_table(market_dir / "riskmodel" / "loadings.parquet")  # the vendor covers NEWCO already
    pq.write_table(
        pa.concat_tables([loadings, loadings.slice(0, 1).set_column(0, "symbol", pa.array(["NEWCO"]))]),
        market_dir / "riskmodel" / "loadings.parquet",
    )
    specific = pq.read_table(market_dir / "riskmodel" / "specific.parquet")
    pq.write_table(
        pa.concat_tables([specific, specific.slice(0, 1).set_column(0, "symbol", pa.array(["NEWCO"]))]),
        market_dir / "riskmodel" / "specific.parquet",
    )
    untouched = {k: v for k, v in _files(market_dir).items() if k != "universe.parquet"}
    day1, day2 = _next_days(before, 2)
    rows = [("NEWCO", "add", day2, "Energy", "2500000000"), ("S003", "delist", day1, "", "")]
    if fmt == "csv":
        f = _csv(tmp_path / "u.csv", "symbol,action,date,sector,shares_outstanding", rows)
    else:
        f = tmp_path / "u.parquet"
        table = {
            "symbol": ["NEWCO", "S003"],
            "action": ["add", "delist"],
            "date": pa.array([day2, day1]).cast(pa.date32()),
            "sector": ["Energy", None],
            "shares_outstanding": [2.5e9, None],
        }
        pq.write_table(pa.table(table), f)

    assert _universe(["--market", str(market_dir), "--file", str(f)]) == 0

    after = read_market(market_dir)
    assert after.symbols == (*before.symbols, "NEWCO") and after.sectors[-1] == "Energy"
    assert after.shares_outstanding[-1] == 2.5e9
    assert [str(x) for x in after.listed] == ["NaT"] * 12 + [day2]
    assert [str(x) for x in after.delisted] == ["NaT"] * 3 + [day1] + ["NaT"] * 9
    assert np.array_equal(after.prices[:, :12], before.prices) and np.isnan(after.prices[:, 12]).all()
    assert {k: v for k, v in _files(market_dir).items() if k != "universe.parquet"} == untouched
    assert not list(market_dir.glob(".*"))  # no temporary file left behind
    schema = pq.read_schema(market_dir / "universe.parquet")
    assert schema.field("listed").type == pa.date32() and schema.field("delisted").type == pa.date32()
    # the last day's snapshot has not changed: the update is about days to come
    _, snap = load_snapshot(market_dir, str(before.dates[-1]), factors=FACTORS)
    assert snap.symbols == before.symbols and snap.delisted == frozenset()


def test_the_universe_file_keeps_its_own_columns(tmp_path, market_dir):
    """A universe brought by hand with a column taxview does not read: kept, empty on new rows."""
    t = pq.read_table(market_dir / "universe.parquet")
    pq.write_table(t.append_column("name", pa.array([f"Company {i}" for i in range(12)])), market_dir / "u.parquet")
    os.replace(market_dir / "u.parquet", market_dir / "universe.parquet")
    day = _next_days(read_market(market_dir), 1)[0]
    assert _update(tmp_path, market_dir, [("NEWCO", "add", day, "Utilities", "1000")]) == 0
    back = pq.read_table(market_dir / "universe.parquet")
    assert back.column("name").to_pylist() == [f"Company {i}" for i in range(12)] + [None]
    assert back.column_names == ["symbol", "sector", "shares_outstanding", "name", "listed", "delisted"]
    day2 = _next_days(read_market(market_dir), 3)[2]
    assert _update(tmp_path, market_dir, [("S000", "delist", day2, "", ""), ("NEWCO", "delist", day2, "", "")]) == 0
    back = read_market(market_dir)
    assert [str(x) for x in back.delisted[[0, 12]]] == [day2, day2] and str(back.listed[12]) == day


def _bad_cases(last: str, day1: str, day2: str) -> dict[str, tuple[list[tuple], str]]:
    """case: (the rows of a universe file, what stderr says)."""
    add = ("NEWCO", "add", day1, "Energy", "1000")
    return {
        "unknown action": ([("S001", "remove", day1, "", "")], r"action: .* row 2: action 'remove' of S001"),
        "bad symbol": (
            [("NEW CO", "add", day1, "Energy", "1000")],
            r"symbol: .* row 2: symbol 'NEW CO' is not a valid",
        ),
        "empty symbol": ([("", "delist", day1, "", "")], r"symbol: .* row 2: symbol '' is not a valid"),
        "bad date": ([("S001", "delist", "2016-02-30", "", "")], r"date: .* row 2: date '2016-02-30' is not a date"),
        "add of a known name": ([add, ("S002", "add", day1, "Energy", "10")], r"symbol: .* row 3: S002 is already"),
        "add twice": ([add, add], r"symbol: .* row 3: NEWCO is also added on row 2"),
        "add on a past day": (
            [("NEWCO", "add", last, "Energy", "10")],
            r"date: .* row 2: NEWCO is listed on .* not after",
        ),
        "add without a sector": ([("NEWCO", "add", day1, "", "10")], r"sector: .* row 2: sector '' of NEWCO"),
        "add in no GICS sector": ([("NEWCO", "add", day1, "Tech", "10")], r"sector: .* row 2: sector 'Tech'"),
        "add without shares": ([("NEWCO", "add", day1, "Energy", "")], r"shares_outstanding: .* row 2: .* of NEWCO"),
        "add with no shares": ([("NEWCO", "add", day1, "Energy", "0")], r"shares_outstanding: .* row 2: .*'0'"),
        "add with nan shares": ([("NEWCO", "add", day1, "Energy", "nan")], r"shares_outstanding: .* row 2"),
        "delist an unknown name": ([("ZZZ", "delist", day1, "", "")], r"symbol: .* row 2: ZZZ is not in the"),
        "delist twice": ([("S001", "delist", day1, "", ""), ("S001", "delist", day2, "", "")], r"row 3: S001 is also"),
        "delist on a past day": ([("S001", "delist", "2015-06-01", "", "")], r"date: .* row 2: S001 is delisted on"),
        "delist before listing": (
            [add[:2] + (day2,) + add[3:], ("NEWCO", "delist", day1, "", "")],
            r"row 3: .*before its",
        ),
        "delist with a sector": ([("S001", "delist", day1, "Energy", "")], r"sector: .* row 2: a delist row has no"),
        "delist with shares": ([("S001", "delist", day1, "", "5")], r"shares_outstanding: .* row 2: a delist row"),
        "every name delisted": ([(f"S{i:03d}", "delist", day1, "", "") for i in range(12)], r"universe: .* every name"),
        "no rows": ([], r"universe: .* has no rows"),
    }


@pytest.mark.parametrize("case", list(_bad_cases("", "", "")))
def test_a_bad_universe_file_exits_2_naming_the_field_and_row_and_writes_nothing(tmp_path, market_dir, capsys, case):
    market = read_market(market_dir)
    day1, day2 = _next_days(market, 2)
    rows, message = _bad_cases(str(market.dates[-1]), day1, day2)[case]
    before = _files(market_dir)
    assert _update(tmp_path, market_dir, rows) == 2
    err = capsys.readouterr().err
    assert err.startswith("taxview: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert _files(market_dir) == before


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("u.csv", "symbol,date\nS001,2030-01-02\n", r"action: .*missing column"),
        ("u.csv", "symbol,action,date,beta\n", r"beta: .*unknown column"),
        ("u.csv", "symbol,action,date\nS001,delist\n", r"row: .* row 2: wrong number"),
        ("u.txt", "symbol,action,date\n", r"universe: .*expected a \.csv or \.parquet"),
        ("u.parquet", None, r"universe: .* not found"),
    ],
)
def test_an_unreadable_universe_file_exits_2_and_writes_nothing(tmp_path, market_dir, capsys, name, text, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    before = _files(market_dir)
    assert _universe(["--market", str(market_dir), "--file", str(path)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert _files(market_dir) == before


def test_a_vendor_model_must_cover_a_listed_name_first(tmp_path, market_dir, capsys):
    market = read_market(market_dir)
    write_riskmodel(estimate(market, len(market.dates) - 1, factors=FACTORS), market_dir / "riskmodel")
    before = _files(market_dir)
    day = _next_days(market, 1)[0]
    rows = [("S001", "delist", day, "", ""), ("NEWCO", "add", day, "Energy", "1000")]
    assert _update(tmp_path, market_dir, rows) == 2
    assert re.search(r"riskmodel: .* row 3: .*riskmodel does not cover NEWCO", capsys.readouterr().err)
    assert _files(market_dir) == before


def test_a_universe_update_while_another_update_runs_is_refused(tmp_path, market_dir, capsys):
    day = _next_days(read_market(market_dir), 1)[0]
    before = _files(market_dir)
    fd = os.open(market_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running append, extend or universe update holds
        assert _update(tmp_path, market_dir, [("S001", "delist", day, "", "")]) == 1
    finally:
        os.close(fd)
    assert "another taxview market command" in capsys.readouterr().err
    assert _files(market_dir) == before


def test_the_symbol_rule_is_the_ledgers():
    from ledger.keys import SYMBOL_PATTERN as LEDGER

    assert SYMBOL_PATTERN.pattern == LEDGER


# --- the closes that follow ----------------------------------------------------------------------


def test_append_asks_for_a_listed_names_closes_from_its_listing_and_none_after_a_delisting(
    tmp_path, market_dir, capsys
):
    before = read_market(market_dir)
    days = _next_days(before, 3)
    assert (
        _update(tmp_path, market_dir, [("NEWCO", "add", days[1], "Energy", "1e9"), ("S003", "delist", days[1], "", "")])
        == 0
    )
    market = read_market(market_dir)
    good = _closes(market, days, skip=lambda s, k: (s == "NEWCO" and k == 0) or (s == "S003" and k == 2))
    cases = {
        "no close for the new name": (
            [r for r in good if not (r[1] == "NEWCO" and r[0] == days[1])],
            rf"symbol: .* no close for NEWCO on {days[1]}",
        ),
        "a close before its listing": (
            [(days[0], "NEWCO", "49.00"), *good],
            rf"date: .* row 2: NEWCO is listed from {days[1]}: it has no close on {days[0]}",
        ),
        "a close after the delisting": (
            [*good, (days[2], "S003", "12.00")],
            rf"date: .* row \d+: S003 was delisted on {days[1]} \(its last day\): it has no close on {days[2]}",
        ),
        "no close on the last day": (
            [r for r in good if not (r[1] == "S003" and r[0] == days[1])],
            rf"symbol: .* no close for S003 on {days[1]}",
        ),
    }
    for case, (rows, message) in cases.items():
        unchanged = _files(market_dir)
        assert _append(tmp_path, market_dir, rows) == 2, case
        assert re.search(message, capsys.readouterr().err), case
        assert _files(market_dir) == unchanged, case

    assert _append(tmp_path, market_dir, good) == 0
    after = read_market(market_dir)
    assert len(after.dates) == len(before.dates) + 3
    px = pq.read_table(market_dir / "prices.parquet").to_pydict()
    written = {(str(d), s) for d, s in zip(px["date"], px["symbol"]) if str(d) in days}
    assert written == {(d, s) for d, s, _ in good}  # one row per name trading on the day, no other
    t = len(after.dates) - 1
    assert np.isnan(after.prices[t - 2, 12]) and after.prices[t, 12] == pytest.approx(50 * 1.01**3, abs=0.01)
    assert after.prices[t, 3] == after.prices[t - 1, 3]  # after its last day: its last close


def test_extend_continues_a_synthetic_market_without_its_delisted_names_and_refuses_a_listed_one(tmp_path, capsys):
    d = tmp_path / "syn"
    write_synthetic(d, names=10, days=200, factors=FACTORS, seed=5, start="2015-01-02")
    plain = shutil.copytree(d, tmp_path / "plain")
    day = _next_days(read_market(d), 2)[1]
    assert _update(tmp_path, d, [("S004", "delist", day, "", "")]) == 0
    assert main(["market", "synth", "--extend", str(d), "--days", "5"]) == 0
    assert main(["market", "synth", "--extend", str(plain), "--days", "5"]) == 0
    ext, ref = read_market(d), read_market(plain)
    assert np.array_equal(ext.prices[:, :4], ref.prices[:, :4])  # the same path for the others
    assert np.array_equal(ext.prices[:-3, 4], ref.prices[:-3, 4])  # through its last day
    assert (ext.prices[-3:, 4] == ref.prices[-4, 4]).all()  # then its last close
    px = pq.read_table(d / "prices.parquet").to_pydict()
    assert max(dd for dd, s in zip(px["date"], px["symbol"]) if s == "S004").isoformat() == day

    later = _next_days(ext, 1)[0]
    assert _update(tmp_path, d, [("NEWCO", "add", later, "Energy", "1000")]) == 0
    before = _files(d)
    assert main(["market", "synth", "--extend", str(d), "--days", "5"]) == 2
    assert "NEWCO was listed by `market universe`" in capsys.readouterr().err
    assert _files(d) == before


# --- snapshots and the risk model ----------------------------------------------------------------


@pytest.fixture
def changed_dir(tmp_path, market_dir) -> Path:
    """The 12-name market, then NEWCO listed and S003 delisted on the second of three new days."""
    days = _next_days(read_market(market_dir), 3)
    assert (
        _update(tmp_path, market_dir, [("NEWCO", "add", days[1], "Energy", "1e9"), ("S003", "delist", days[1], "", "")])
        == 0
    )
    market = read_market(market_dir)
    rows = _closes(market, days, skip=lambda s, k: (s == "NEWCO" and k == 0) or (s == "S003" and k == 2))
    assert _append(tmp_path, market_dir, rows) == 0
    return market_dir


def test_a_snapshot_has_the_names_listed_by_its_day_and_the_delisted_at_their_last_close(changed_dir):
    market = read_market(changed_dir)
    d0, d1, d2 = (str(x) for x in market.dates[-3:])
    _, before = load_snapshot(changed_dir, d0, factors=FACTORS)
    assert "NEWCO" not in before.symbols and before.delisted == frozenset() and len(before.symbols) == 12
    assert before.benchmark[3] > 0

    _, last_day = load_snapshot(changed_dir, d1, factors=FACTORS)  # S003's last day, NEWCO's first
    assert last_day.symbols[-1] == "NEWCO" and last_day.delisted == {"S003"}
    assert last_day.benchmark[last_day.index["S003"]] == 0 and last_day.benchmark[-1] > 0
    cap = market.prices[-2] * market.shares_outstanding
    cap[3] = 0
    assert np.allclose(last_day.benchmark, cap / cap.sum())

    _, after = load_snapshot(changed_dir, d2, factors=FACTORS)
    assert after.delisted == {"S003"} and after.prices[3] == last_day.prices[3]  # sold at its last close
    assert after.price_cents[3] == round(market.prices[-2, 3] * 100)
    assert np.all(np.isfinite(after.model.B)) and np.all(after.model.D > 0) and after.model.symbols == after.symbols


def test_a_new_name_takes_its_sectors_loadings_until_it_has_history_then_its_own():
    m = synthesize(names=40, days=400, factors=FACTORS, seed=8)
    listed = np.full(40, np.datetime64("NaT", "D"))
    listed[5] = m.dates[390]  # 9 returns by the last day: too few
    listed[7] = m.dates[250]  # 149 returns: its own regression
    new = Market(m.symbols, m.sectors, m.shares_outstanding, m.dates, m.prices, listed=listed)
    t = len(m.dates) - 1
    model = estimate(new, t, factors=FACTORS)
    full = [i for i in range(40) if i not in (5, 7)]
    peers = [i for i in full if m.sectors[i] == m.sectors[5]]
    assert np.allclose(model.B[5], model.B[peers].mean(axis=0))
    assert model.D[5] == pytest.approx(np.median(model.D[full]), rel=0.2)
    # its own loadings explain its own risk: predicted variance near the realized
    r = new.returns(t, 252)[-149:, 7]
    predicted = model.B[7] @ model.F @ model.B[7] + model.D[7]
    assert 0.6 < predicted / (r.var(ddof=1) * 252) < 1.6
    assert min_history(FACTORS) <= 149
    snap = snapshot(new, str(m.dates[t]), factors=FACTORS)
    assert snap.symbols == m.symbols and snap.benchmark[5] > 0

    snap = snapshot(new, str(m.dates[300]), factors=FACTORS)  # before name 5 is listed
    assert "S005" not in snap.symbols and len(snap.symbols) == 39 and snap.model.symbols == snap.symbols


def test_a_market_without_universe_changes_estimates_the_same_model_as_before(small_market):
    """The PCA model of an unchanged universe: every name trades through the window."""
    t = len(small_market.dates) - 1
    model = estimate(small_market, t, factors=8)
    R = small_market.returns(t, 252)
    X = R - R.mean(axis=0)
    U, S, Vt = np.linalg.svd(X, full_matrices=False)
    d = (X - (U[:, :8] * S[:8]) @ Vt[:8]).var(axis=0, ddof=1)
    d = np.maximum(0.7 * d + 0.3 * np.median(d), 1e-4 / 252)
    assert np.array_equal(model.B, Vt[:8].T) and np.array_equal(model.D, d * 252)
    assert np.array_equal(np.diag(model.F), np.maximum(S[:8] ** 2 / (X.shape[0] - 1) - d.mean(), 1e-8) * 252)


def test_a_vendor_model_that_dropped_a_delisted_name_prices_its_risk_as_an_average_names(changed_dir):
    market = read_market(changed_dir)
    t = len(market.dates) - 1
    model = estimate(market, t, factors=FACTORS)
    keep = [i for i, s in enumerate(model.symbols) if s != "S003"]
    from solver.riskmodel import RiskModel

    write_riskmodel(
        RiskModel(tuple(model.symbols[i] for i in keep), _readonly(model.B[keep]), model.F, _readonly(model.D[keep])),
        changed_dir / "riskmodel",
    )
    _, snap = load_snapshot(changed_dir, str(market.dates[t]), factors=FACTORS)
    i = snap.index["S003"]
    assert np.allclose(snap.model.B[i], model.B[keep].mean(axis=0)) and snap.model.D[i] == np.median(model.D[keep])
    (changed_dir / "riskmodel" / "specific.parquet").unlink()
    sp = pa.table({"symbol": [s for s in model.symbols if s != "NEWCO"], "specific_var": model.D[:-1]})
    pq.write_table(sp, changed_dir / "riskmodel" / "specific.parquet")
    with pytest.raises(InputError, match=r"symbol: risk model does not cover 1 symbols, e.g. \['NEWCO'\]"):
        load_snapshot(changed_dir, str(market.dates[t]), factors=FACTORS)


# --- a missing close: refused only where it is needed (issue 12) ---------------------------------


def _spoil(market_dir: Path, symbol: str, day: str, how: str) -> None:
    """A close of ``symbol`` on ``day`` made NaN, null or removed from prices.parquet."""
    t = pq.read_table(market_dir / "prices.parquet")
    rows = t.to_pydict()
    hit = [k for k, (d, s) in enumerate(zip(rows["date"], rows["symbol"])) if str(d) == day and s == symbol]
    assert len(hit) == 1
    if how == "removed":
        t = t.filter(pa.array([k != hit[0] for k in range(t.num_rows)]))
    else:
        close = rows["close"]
        close[hit[0]] = float("nan") if how == "nan" else None
        t = t.set_column(2, "close", pa.array(close, pa.float64()))
    pq.write_table(t, market_dir / "prices.parquet")


@pytest.mark.parametrize("how", ["nan", "null", "removed"])
def test_a_missing_close_is_refused_only_by_the_snapshots_whose_day_or_window_need_it(market_dir, how):
    market = read_market(market_dir)
    T = len(market.dates)
    old, recent = str(market.dates[20]), str(market.dates[T - 30])
    _spoil(market_dir, "S005", old, how)  # outside the last day's 252-day window
    back = read_market(market_dir)
    assert np.isnan(back.prices[20, 5]) and np.isnan(back.prices).sum() == 1
    _, snap = load_snapshot(market_dir, str(market.dates[-1]), factors=FACTORS)  # the night runs
    assert snap.symbols == market.symbols
    with pytest.raises(InputError) as err:  # a day whose window holds it is refused, naming it
        load_snapshot(market_dir, str(market.dates[200]), factors=FACTORS)
    assert str(err.value) == (
        f"close: no close for S005 on {old}: the risk model of {market.dates[200]} is estimated from the closes "
        f"since {market.dates[0]}"
    )

    _spoil(market_dir, "S007", recent, how)
    with pytest.raises(InputError, match=rf"^close: no close for S007 on {recent}: the risk model of"):
        load_snapshot(market_dir, str(market.dates[-1]), factors=FACTORS)
    # a vendor model needs only the day's closes
    write_riskmodel(estimate(market, T - 1, factors=FACTORS), market_dir / "riskmodel")
    _, snap = load_snapshot(market_dir, str(market.dates[-1]))
    assert np.array_equal(snap.prices, market.prices[-1])
    with pytest.raises(InputError, match=rf"^close: no close for S007 on {recent}: the snapshot of {recent} prices"):
        load_snapshot(market_dir, recent)


def test_a_delisted_names_missing_last_close_is_refused_naming_its_last_day(tmp_path, changed_dir):
    market = read_market(changed_dir)
    last_day = str(market.dates[-2])
    _spoil(changed_dir, "S003", last_day, "nan")
    with pytest.raises(InputError, match=rf"^close: no close for S003 on {last_day}: it is delisted"):
        load_snapshot(changed_dir, str(market.dates[-1]), factors=FACTORS)
    assert read_market(changed_dir).n == 13  # the market itself reads


def test_a_backtest_needs_every_close_and_a_fixed_universe(tmp_path, market_dir):
    """The backtest prices every name on every day: it refuses a missing close (naming it) and a
    universe that changed, before it starts."""
    from taxview.backtest import load_data

    assert load_data(str(market_dir)).market.n == 12
    market = read_market(market_dir)
    day = str(market.dates[40])
    _spoil(market_dir, "S002", day, "nan")
    with pytest.raises(InputError, match=rf"^close: no close for S002 on {day}: a backtest prices every name"):
        load_data(str(market_dir))
    assert _update(tmp_path, market_dir, [("S001", "delist", _next_days(market, 1)[0], "", "")]) == 0
    with pytest.raises(InputError, match=r"^data: .* names were listed or delisted"):
        load_data(str(market_dir))
