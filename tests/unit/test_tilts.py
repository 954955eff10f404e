"""Style tilts and outside holdings in the per-account solve (issue 15): known answers on small
snapshots, the compiled problem against its plain CVXPY model, and the files that state them."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from solver.io import read_account_toml, result_to_dict
from solver.problem import GAIN_UNBOUND, MAX_TILTS, CompiledProblem, Layout, ProblemCache
from solver.reference import ParamCvxpyProblem
from solver.snapshot import Snapshot
from solver.solve import solve_account
from solver.styles import Styles, read_styles, standardized
from solver.synthetic import synth_lots
from solver.tilts import TOLERANCE, Tilt, missed
from solver.types import AccountSettings
from taxview.core.errors import InputError
from taxview.core.mandate import check, from_json, to_json
from taxview.core.records import Outside
from tests.conftest import benchmark_lots, twin_snapshot

VALUE = 1_000_000
# AAA and TWIN score high, EEE and FFF low: a value tilt buys the first two and sells the last two
TWIN_VALUE = np.array([1.0, 1.0, 0.0, 0.0, -1.0, -1.0])


def twin_with_styles() -> Snapshot:
    snap = twin_snapshot()
    scores = np.column_stack([standardized(TWIN_VALUE), standardized(np.array([0.0, 0.0, 1.0, -1.0, 1.0, -1.0]))])
    return replace(snap, styles=Styles(("value", "momentum"), scores))


def small_with_styles(small_snap) -> Snapshot:
    rng = np.random.default_rng(0)
    n = len(small_snap.symbols)
    value = standardized(small_snap.model.B[:, 1] + rng.normal(0.0, 1.0, n))  # moves with a factor: costs TE
    momentum = standardized(rng.normal(0.0, 1.0, n))
    return replace(small_snap, styles=Styles(("value", "momentum"), np.column_stack([value, momentum])))


def exposure(snap: Snapshot, r, style: str) -> float:
    w = np.array([r.weights.get(s, 0.0) for s in snap.symbols])
    s = snap.styles.column(style)
    return float(s @ (w - snap.benchmark)) / float(np.std(s))


def test_a_binding_tilt_is_met_exactly_and_leans_into_the_high_scores():
    snap = twin_with_styles()
    lots = benchmark_lots(snap, VALUE)
    plain = solve_account(snap, lots, 2_000_00, AccountSettings(max_weight=0.5))
    r = solve_account(snap, lots, 2_000_00, AccountSettings(max_weight=0.5, te_max=0.1, tilts=(("value", 0.3),)))
    assert plain.ok and r.ok, r.reason
    assert abs(exposure(snap, plain, "value")) < 0.01  # untilted: at the benchmark
    achieved, target = r.active_exposures["value"]
    assert target == 0.3 and achieved == pytest.approx(0.3, abs=0.004)  # the row binds (it costs TE)
    assert achieved == pytest.approx(exposure(snap, r, "value"), abs=1e-9)
    assert r.active_exposures["momentum"][1] is None
    w = r.weights
    assert w["AAA"] + w["TWIN"] > 2 / 6 + 0.1 and w["EEE"] + w["FFF"] < 2 / 6 - 0.1
    assert r.te_ex_ante > plain.te_ex_ante + 0.005
    assert not any("exposure" in note for note in r.notes)


def test_a_negative_tilt_leans_away():
    snap = twin_with_styles()
    r = solve_account(
        snap,
        benchmark_lots(snap, VALUE),
        2_000_00,
        AccountSettings(max_weight=0.5, te_max=0.1, tilts=(("value", -0.3),)),
    )
    assert r.ok, r.reason
    achieved, _ = r.active_exposures["value"]
    assert achieved == pytest.approx(-0.3, abs=0.004)
    assert r.weights["AAA"] + r.weights["TWIN"] < 2 / 6 - 0.1


def test_an_unreachable_tilt_is_infeasible_naming_the_tilt_and_the_strongest_exposure(small_snap, small_market):
    snap = small_with_styles(small_snap)
    lots = synth_lots(small_market, len(small_market.dates) - 1, np.random.default_rng(2))
    r = solve_account(snap, lots, 100_000_00, AccountSettings(te_max=0.03, tilts=(("value", 3.0),)))
    assert r.status == "infeasible"
    assert r.reason.startswith("tilt value +3.00 is unreachable: the strongest value exposure the TE budget 3.00%")
    most = float(r.reason.split("allows is ")[1].split(" ")[0])
    assert 0.3 < most < 3.0
    # and that strongest exposure is what the budget reaches: a tilt just under it solves
    ok = solve_account(snap, lots, 100_000_00, AccountSettings(te_max=0.03, tilts=(("value", most - 0.1),)))
    assert ok.ok, ok.reason
    assert ok.te_ex_ante <= 0.03 * (1 + 1e-3)


def test_tilts_that_only_together_break_the_budget_are_named_together(small_snap, small_market):
    snap = small_with_styles(small_snap)
    lots = synth_lots(small_market, len(small_market.dates) - 1, np.random.default_rng(2))
    s = AccountSettings(te_max=0.03, tilts=(("momentum", 0.6), ("value", 0.5)))
    alone = [solve_account(snap, lots, 100_000_00, replace(s, tilts=(t,))) for t in s.tilts]
    assert all(r.ok for r in alone)
    r = solve_account(snap, lots, 100_000_00, s)
    assert r.status == "infeasible" and r.reason.startswith("tilts unreachable together within the TE budget 3.00%")
    assert "momentum +0.60" in r.reason and "value +0.50" in r.reason


def test_an_untilted_account_solves_the_same_with_styles_and_after_a_tilted_one(small_snap, small_market):
    snap = small_with_styles(small_snap)
    lots = synth_lots(small_market, len(small_market.dates) - 1, np.random.default_rng(3))
    fresh = solve_account(small_snap, lots, 100_000_00)  # no styles at all
    cache = ProblemCache()
    solve_account(snap, lots, 100_000_00, AccountSettings(tilts=(("value", 0.4), ("momentum", -0.2))), cache=cache)
    compiled = len(cache)
    again = solve_account(snap, lots, 100_000_00, cache=cache)
    assert len(cache) == compiled  # one compiled problem per shape serves both
    assert again.trades == fresh.trades and again.te_ex_ante == pytest.approx(fresh.te_ex_ante, abs=1e-12)


def test_explain_reports_the_te_the_tilts_cost_and_the_orders_they_turned(small_snap, small_market):
    snap = small_with_styles(small_snap)
    lots = synth_lots(small_market, len(small_market.dates) - 1, np.random.default_rng(2))
    s = AccountSettings(te_max=0.04, tilts=(("value", 0.5),))
    r = solve_account(snap, lots, 100_000_00, s, explain=True)
    assert r.ok, r.reason
    plain = solve_account(snap, lots, 100_000_00, replace(s, tilts=()))
    assert 0.005 < r.te_from_tilts < r.te_ex_ante  # the least TE with the tilt is well above without
    assert r.te_ex_ante > plain.te_ex_ante
    assert r.order_reasons, "a 0.5 standard-deviation tilt turns some orders"
    value = snap.styles.column("value")
    for (symbol, side), reason in r.order_reasons.items():
        assert reason == "tilt:value"
        score = value[snap.index[symbol]]
        assert (score > 0) if side == "buy" else (score < 0)  # the tilt's own direction
        assert any(t.symbol == symbol and t.side == side for t in r.trades)
    doc = result_to_dict(r)
    assert doc["active_exposures"]["value"]["target"] == 0.5 and doc["te_from_tilts"] == r.te_from_tilts
    assert {t["reason"] for t in doc["trades"] if "reason" in t} == {"tilt:value"}


@pytest.mark.parametrize("seed", range(3))
def test_rounded_trades_keep_every_tilt_or_say_so(small_snap, small_market, seed):
    snap = small_with_styles(small_snap)
    rng = np.random.default_rng(40 + seed)
    lots = synth_lots(small_market, len(small_market.dates) - 1, rng, value=float(rng.uniform(2e5, 2e6)))
    tilts = (("momentum", float(rng.uniform(-0.4, -0.1))), ("value", float(rng.uniform(0.1, 0.4))))
    r = solve_account(snap, lots, 10_000_00, AccountSettings(te_max=0.05, tilts=tilts))
    assert r.ok, r.reason
    for style, target in tilts:
        achieved, said = r.active_exposures[style]
        assert said == target and achieved == pytest.approx(exposure(snap, r, style), abs=1e-9)
        kept = (achieved - target) * np.sign(target) >= -TOLERANCE
        assert kept or any(note.startswith(f"after rounding the {style} exposure") for note in r.notes)
        assert (achieved - target) * np.sign(target) >= -0.02  # and never far off


def test_rounding_that_misses_a_tilt_is_noted():
    s = np.array([1.0, -1.0])
    tilt = Tilt("value", 0.5, s, 1.0, 1.0)
    assert missed((tilt,), np.array([0.25, -0.25])) == ()
    assert missed((tilt,), np.array([0.25 - TOLERANCE, -0.25])) == (
        "after rounding the value exposure is 0.499, under its target 0.500",
    )
    lean_away = Tilt("value", -0.5, s, 1.0, 1.0)
    assert missed((lean_away,), np.array([-0.2, 0.2])) == (
        "after rounding the value exposure is -0.400, over its target -0.500",
    )


@pytest.mark.parametrize("cone", [False, True])
def test_tilt_rows_match_the_plain_cvxpy_model(small_snap, cone):
    """The compiled tilt rows (A values updated per account) against cvxpy's own constraint."""
    n, K = len(small_snap.symbols), small_snap.model.B.shape[1]
    lay = Layout(n=n, L=2, K=K, cone=cone)
    rng = np.random.default_rng(4)
    q = np.concatenate([rng.normal(0, 20, lay.S), np.full(n, 5.0), np.zeros(n + K)])
    b = np.zeros(lay.m)
    w0 = rng.dirichlet(np.ones(n)) * 0.99
    b[:n] = w0 - small_snap.benchmark
    b[lay.r_sub : lay.r_sub + lay.S] = np.repeat(w0 / 2, 2)
    b[lay.r_bub : lay.r_bub + n] = 0.1
    b[lay.r_cap : lay.r_cap + n] = 0.1 - small_snap.benchmark
    b[lay.r_budget], b[lay.r_budget + 1] = -0.001, 0.02
    b[lay.r_gain] = GAIN_UNBOUND
    if cone:
        b[lay.r_soc] = 0.06
    s = standardized(rng.normal(size=n))
    coef = np.zeros((n, MAX_TILTS))
    coef[:, 1] = -s / np.abs(s).max()  # the second row: exposure ≥ 0.4 (a row of zeros beside it)
    b[lay.r_tilt : lay.r_tilt + MAX_TILTS] = GAIN_UNBOUND
    b[lay.r_tilt + 1] = -0.4 / np.abs(s).max()
    g = np.concatenate([np.zeros(lay.S), coef.ravel()])
    compiled = CompiledProblem(small_snap.model, lay)
    _, free, _ = compiled.solve(q, b)
    st1, x1, _ = compiled.solve(q, b, g)
    st2, x2, _ = ParamCvxpyProblem(small_snap.model, lay).solve(q, b, g)
    assert st1 == "Solved" and st2 in ("Solved", "AlmostSolved")
    assert s @ free[lay.oa : lay.oa + n] < 0.3  # without the row, far from the tilt
    for x in (x1, x2):
        assert s @ x[lay.oa : lay.oa + n] == pytest.approx(0.4, abs=1e-5)  # binds, in both
    assert np.abs(x1 - x2).max() < 1e-4
    _, back, _ = compiled.solve(q, b)  # the next account without a tilt: the rows are gone again
    assert np.abs(back - free).max() < 1e-9


# --- outside holdings --------------------------------------------------------------------------


def test_outside_complete_underweights_the_held_name_and_its_correlated_twin():
    snap = twin_snapshot()
    lots = benchmark_lots(snap, VALUE)
    settings = AccountSettings(max_weight=0.5, lambda_te=500.0, te_max=0.05)
    alone = solve_account(snap, lots, 2_000_00, settings)
    outside = Outside("complete", (("AAA", Decimal(300_000)),))
    r = solve_account(snap, lots, 2_000_00, replace(settings, outside=outside))
    assert alone.ok and r.ok, r.reason
    w_b = 1 / 6
    assert abs(alone.weights["AAA"] - w_b) < 0.01 and abs(alone.weights["TWIN"] - w_b) < 0.01
    # the account (≈ $1M) holds less AAA and less of TWIN, which moves with it
    assert r.weights.get("AAA", 0.0) < w_b - 0.05
    assert r.weights.get("TWIN", 0.0) < w_b - 0.02
    assert r.weights["CCC"] > w_b  # the rest takes what the two give up
    # TE of the combined portfolio: below what the account left at the benchmark would give it
    V, o = 1_000_000 + 2_000, 300_000
    w_alone = np.array([alone.weights.get(x, 0.0) for x in snap.symbols])
    combined = (w_alone * V + o * (np.arange(6) == 0)) / (V + o) - snap.benchmark
    assert r.te_combined < snap.model.te(combined) - 0.005
    assert r.te_combined <= 0.05 * (1 + 1e-3)
    assert r.te_ex_ante > alone.te_ex_ante  # the account alone tracks worse, on purpose
    doc = result_to_dict(r)
    assert doc["te_combined"] == r.te_combined and doc["te_ex_ante"] == r.te_ex_ante


def test_the_budget_of_an_account_with_outside_holdings_is_on_the_combined_te():
    from cluster.step import within_budget
    from solver.types import SolveResult

    s = AccountSettings(te_max=0.02)
    assert within_budget(SolveResult("optimal", None, 1.0, te_ex_ante=0.05, te_combined=0.019), s)
    assert not within_budget(SolveResult("optimal", None, 1.0, te_ex_ante=0.01, te_combined=0.03), s)
    assert within_budget(SolveResult("optimal", None, 1.0, te_ex_ante=0.019), s)


def test_outside_exclude_does_not_buy_the_name_here():
    snap = twin_snapshot()
    lots = benchmark_lots(snap, VALUE)
    r = solve_account(
        snap, lots, 2_000_00, AccountSettings(max_weight=0.5, outside=Outside("exclude", (("AAA", Decimal(5e6)),)))
    )
    assert r.ok and "AAA" not in r.weights and r.te_combined is None


def test_outside_holdings_of_an_unknown_symbol_are_refused():
    snap = twin_snapshot()
    with pytest.raises(InputError, match="outside.holdings"):
        solve_account(
            snap, benchmark_lots(snap, VALUE), 0, AccountSettings(outside=Outside("complete", (("ZZZ", Decimal(1)),)))
        )


@pytest.mark.parametrize("dollars", [Decimal(-100), Decimal("NaN"), Decimal("Infinity"), Decimal("1e300")])
def test_outside_holdings_of_no_real_dollars_are_refused_by_the_library(dollars):
    """Settings built in code skip the mandate's checks: NaN dollars once reached CLARABEL (a
    numerical error), infinite ones a ZeroDivisionError, negative ones solved."""
    snap = twin_snapshot()
    settings = AccountSettings(outside=Outside("complete", (("TWIN", dollars),)))
    with pytest.raises(InputError, match="must be dollars > 0 and under") as err:
        solve_account(snap, benchmark_lots(snap, VALUE), 0, settings)
    assert err.value.field == "outside.holdings.TWIN"
    with pytest.raises(InputError, match="within ±3") as err:
        solve_account(snap, benchmark_lots(snap, VALUE), 0, AccountSettings(tilts=(("value", 100.0),)))
    assert err.value.field == "tilts.value"


# --- mandate, account file, styles file ----------------------------------------------------------


def test_mandate_tilts_and_outside_round_trip_through_the_stored_json():
    m = check(
        {"tilts": {"value": 0.5, "momentum": "-0.25"}, "outside": {"mode": "complete", "holdings": {"S001": 5000000}}},
        "account A",
    )
    assert m["tilts"] == (("momentum", -0.25), ("value", 0.5))
    assert m["outside"] == Outside("complete", (("S001", Decimal("5000000.00")),))
    assert from_json(to_json(m)) == m
    assert check({"tilts": "value=0.5,size=-1"}, "x")["tilts"] == (("size", -1.0), ("value", 0.5))
    assert check({"outside": "exclude:S001=100.50"}, "x")["outside"] == Outside(
        "exclude", (("S001", Decimal("100.50")),)
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tilts": {"value": 4}}, "tilts value: a tilt must be within ±3"),
        ({"tilts": {"value": "high"}}, "tilts value: must be a number"),
        ({"tilts": {f"s{i}": 0.1 for i in range(5)}}, "at most 4 styles"),
        ({"outside": {"mode": "hedge", "holdings": {"S001": 1}}}, "mode must be one of exclude|complete"),
        ({"outside": {"mode": "complete", "holdings": {"S001": -5}}}, "holdings.S001 must be dollars > 0"),
        ({"outside": {"mode": "complete"}}, "at least one symbol"),
        # once accepted: the last of a repeated name won, a style no styles.parquet can name, a
        # symbol outside the ledger's alphabet stored in the mandate
        ({"tilts": "value=1,value=2"}, "tilts value: given twice"),
        ({"tilts": {"välue": 1}}, "style 'välue' must be letters, digits and _"),
        ({"tilts": {"1st": 1}}, "style '1st' must be"),
        ({"outside": "complete:S001=1,S001=2"}, "holdings.S001: given twice"),
        ({"outside": {"mode": "exclude", "holdings": {"S{1}": 10}}}, r"holdings: 'S\{1\}' is not a symbol"),
        ({"outside": {"mode": "exclude", "holdings": {"S 1": 10}}}, "holdings: 'S 1' is not a symbol"),
        ({"outside": {"mode": "exclude", "holdings": {"S001": float("nan")}}}, "holdings.S001 must be a finite"),
    ],
)
def test_mandate_refuses_bad_tilts_and_outside_naming_the_key(values, message):
    with pytest.raises(InputError, match=message) as err:
        check(values, "account A")
    assert "account A" in str(err.value)


def test_account_file_reads_tilts_and_outside(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(
        "[tilts]\nvalue = 0.5\nlow_volatility = -0.3\n"
        '[outside]\nmode = "complete"\n[outside.holdings]\nS001 = 5000000\n'
    )
    s, _, _ = read_account_toml(path)
    assert s.tilts == (("low_volatility", -0.3), ("value", 0.5))
    assert s.outside == Outside("complete", (("S001", Decimal(5_000_000)),))
    path.write_text("[tilts]\nvalue = true\n")
    with pytest.raises(InputError, match="must be a finite number") as err:
        read_account_toml(path)
    assert err.value.field == "tilts.value"
    path.write_text('[outside]\nmode = "complete"\n')
    with pytest.raises(InputError) as err:
        read_account_toml(path)
    assert err.value.field == "outside.holdings"


def test_a_tilt_on_a_style_the_market_lacks_is_refused():
    snap = twin_with_styles()
    with pytest.raises(InputError) as err:
        solve_account(snap, benchmark_lots(snap, VALUE), 0, AccountSettings(tilts=(("quality", 0.2),)))
    assert err.value.field == "tilts.quality" and "value" in str(err.value)
    with pytest.raises(InputError, match="no styles.parquet"):
        solve_account(twin_snapshot(), benchmark_lots(snap, VALUE), 0, AccountSettings(tilts=(("value", 0.2),)))


def test_styles_file_is_read_strictly(tmp_path):
    symbols = ("AAA", "BBB", "CCC")
    path = tmp_path / "styles.parquet"
    pq.write_table(pa.table({"symbol": ["CCC", "AAA"], "value": [1.0, -1.0]}), path)
    styles = read_styles(path, symbols)
    assert styles.names == ("value",) and styles.column("value").tolist() == [-1.0, 0.0, 1.0]  # BBB: neutral
    for table, field, message in (
        ({"symbol": ["AAA", "ZZZ"], "value": [1.0, 2.0]}, "symbol", "row 2: 'ZZZ' is not in the universe"),
        ({"symbol": ["AAA", "AAA"], "value": [1.0, 2.0]}, "symbol", "row 2: AAA already in row 1"),
        ({"symbol": ["AAA", "BBB"], "value": [1.0, float("nan")]}, "value", "row 2 \\(BBB\\): value is nan"),
        ({"symbol": ["AAA"], "value": pa.array([1], pa.int64())}, "value", "must be float64"),
        ({"symbol": ["AAA"]}, "styles", "no style column"),
        # a score no standardized file has: once overflowed the standard deviation (a CLARABEL error)
        ({"symbol": ["AAA", "BBB"], "value": [1.0, 1e300]}, "value", "row 2 \\(BBB\\): value is 1e\\+300"),
    ):
        pq.write_table(pa.table(table), path)
        with pytest.raises(InputError, match=message) as err:
            read_styles(path, symbols)
        assert err.value.field == field
    # a column given twice: once a multi-line dump of Arrow's internals as the message
    pq.write_table(
        pa.Table.from_arrays([pa.array(["AAA"]), pa.array([1.0]), pa.array([2.0])], ["symbol", "v", "v"]), path
    )
    with pytest.raises(InputError, match="column 'v' appears 2 times") as err:
        read_styles(path, symbols)
    assert err.value.field == "v" and "\n" not in str(err.value)
    path.write_bytes(b"PAR1 not parquet")
    with pytest.raises(InputError, match="cannot read") as err:
        read_styles(path, symbols)
    assert "\n" not in str(err.value)


def test_market_synth_writes_styles_that_move_with_its_factors(tmp_path):
    from solver.market import synthetic_process
    from solver.marketdir import write_synthetic
    from solver.snapshot import load_snapshot

    market = write_synthetic(tmp_path / "m", names=120, days=80, factors=20, seed=4, start="2020-01-02")
    _, snap = load_snapshot(tmp_path / "m", str(market.dates[-1]), factors=5)
    styles = snap.styles
    assert styles.names == ("value", "momentum", "quality", "low_volatility", "size")
    assert np.allclose(styles.scores.mean(axis=0), 0.0, atol=1e-9) and np.allclose(styles.scores.std(axis=0), 1.0)
    process, _ = synthetic_process(120, 80, 20, 4, "2020-01-02")
    first_style = process.B[:, 12]  # market, 11 sectors, then the style factors
    assert np.corrcoef(styles.column("value"), first_style)[0, 1] > 0.6
    caps = market.shares_outstanding * market.prices[0]
    assert np.corrcoef(styles.column("size"), np.log(caps))[0, 1] > 0.99


def test_a_tilted_backtest_keeps_its_exposure_and_reports_it(tmp_path, small_market, small_snap):
    from taxview.backtest import Data, TaxConfig, exposure_path, metrics, simulate
    from taxview.report import charts, report_html

    styles = small_with_styles(small_snap).styles  # aligned to the market's names (all listed)
    data = Data(small_market, "cap-weighted", styles=styles)
    s = AccountSettings(te_max=0.05, tilts=(("value", 0.4),))
    start, end = str(small_market.dates[300]), str(small_market.dates[-1])
    run = simulate(data, start, end, "monthly", 1_000_000, s, TaxConfig(), factors=5)
    assert run.solve_failures == 0 and len(run.exposures_by_date) == run.rebalances >= 4
    for _, exposures in run.exposures_by_date:
        achieved, target = exposures["value"]
        assert target == 0.4 and achieved >= 0.4 - 0.01
    path = exposure_path(run)
    assert path["value"]["target"] == 0.4 and len(path["value"]["achieved"]) == run.rebalances
    result = metrics(run, 1_000_000) | {"baseline": {}, "exposures": path}
    images = charts(tmp_path, run, run)
    assert (tmp_path / "exposure_value.png") in images
    page = report_html(tmp_path, result, images, []).read_text()
    assert "<h2>Style tilts</h2>" in page and "+0.400" in page


def test_a_backtest_refuses_a_tilt_or_outside_holding_the_data_cannot_meet_before_the_first_day(
    small_market, small_snap
):
    """Once each rebalance failed on its own (the account left in cash) and the backtest reported
    it with exit 0."""
    from taxview.backtest import Data, TaxConfig, simulate

    styles = small_with_styles(small_snap).styles
    start, end = str(small_market.dates[300]), str(small_market.dates[-1])
    for data, s, field in (
        (Data(small_market, "cap-weighted", styles=styles), AccountSettings(tilts=(("nope", 0.4),)), "tilts.nope"),
        (Data(small_market, "cap-weighted"), AccountSettings(tilts=(("value", 0.4),)), "tilts"),
        (
            Data(small_market, "cap-weighted"),
            AccountSettings(outside=Outside("complete", (("ZZZ", Decimal(100)),))),
            "outside.holdings",
        ),
        (Data(small_market, "cap-weighted"), AccountSettings(exclude_sectors=frozenset({"Crypto"})), "exclude.sectors"),
    ):
        with pytest.raises(InputError) as err:
            simulate(data, start, end, "monthly", 1_000_000, s, TaxConfig(), factors=5)
        assert err.value.field == field
