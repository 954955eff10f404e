"""ETF → direct indexing transition analysis (domain.md §6)."""

from __future__ import annotations

import json

import pytest

from taxview.cli import main
from taxview.transition import Inputs, analyze, breakeven, gradual, harvest_path_from_metrics, te_path_from_metrics


def test_worked_case_of_domain_md_to_the_dollar():
    r = analyze(
        Inputs(
            value=100_000,
            embedded_gain=0.20,
            cg_rate=0.238,
            income_rate=0.408,
            growth=0.06,
            fee=0.003,
            years=10,
        )
    )
    expected = {
        "transition_tax": 4760,
        "di_initial": 95240,
        "etf_end": 179085,
        "di_end": 165512,
        "total_fee": 3933,
        "opportunity_cost": 9640,
        "total_cost": 13573,
        "max_losses": 28572,
        "tax_savings": 11657,
        "tax_alpha": 18601,
        "etf_pre_tax": 179085,
        "di_pre_tax": 184113,
        "etf_post_tax": 155503,
        "di_post_tax": 158936,
    }
    for key, dollars in expected.items():
        assert round(getattr(r, key)) == dollars, key
    assert [round(x) for x in r.tax_alpha_by_year] == [6565, 6193, 5843]
    assert "switch" in r.verdict_pre_tax and "switch" in r.verdict_post_tax


def test_cli_json_has_every_key_and_profiles_fill_the_rates(capsys):
    assert main(["transition", "--profile", "lower", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "transition_tax",
        "di_initial",
        "etf_end",
        "di_end",
        "total_fee",
        "opportunity_cost",
        "total_cost",
        "max_losses",
        "tax_savings",
        "tax_alpha",
        "tax_alpha_by_year",
        "etf_pre_tax",
        "di_pre_tax",
        "etf_post_tax",
        "di_post_tax",
        "net_benefit_pre_tax",
        "net_benefit_post_tax",
        "verdict_pre_tax",
        "verdict_post_tax",
    ):
        assert key in out
    assert out["inputs"]["cg_rate"] == 0.15 and out["inputs"]["income_rate"] == 0.22
    assert main(["transition", "--profile", "higher", "--cg-rate", "0.2", "--json"]) == 0  # explicit flag wins
    out = json.loads(capsys.readouterr().out)
    assert out["inputs"]["cg_rate"] == 0.2 and out["inputs"]["income_rate"] == 0.408


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--value", "-1"], "value"),
        (["--embedded-gain", "1.5"], "embedded_gain"),
        (["--embedded-gain", "-0.1"], "embedded_gain"),
        (["--cg-rate", "2"], "cg_rate"),
        (["--income-rate", "-0.3"], "income_rate"),
        (["--years", "0"], "years"),
    ],
)
def test_bad_input_gives_a_clear_error(capsys, flags, field):
    assert main(["transition", *flags]) == 2
    assert field in capsys.readouterr().err


def test_breakeven_is_where_the_benefit_changes_sign():
    x = Inputs()
    for case, key in (("pre_tax", "net_benefit_pre_tax"), ("post_tax", "net_benefit_post_tax")):
        g = breakeven(x, case)
        assert 0 < g < 1
        below = analyze(Inputs(embedded_gain=max(0.0, g - 0.002)))
        above = analyze(Inputs(embedded_gain=min(1.0, g + 0.002)))
        assert getattr(below, key) > 0 > getattr(above, key)


def test_sweep_writes_chart_page_and_breakevens(tmp_path, capsys):
    assert (
        main(
            [
                "transition",
                "sweep",
                "--profile",
                "higher",
                "--profile",
                "lower",
                "--out",
                str(tmp_path),
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"higher", "lower"} and out["higher"]["breakeven_pre_tax"] > out["lower"]["breakeven_pre_tax"]
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["profiles"]["higher"]["breakeven_post_tax"] == out["higher"]["breakeven_post_tax"]
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64" in (tmp_path / "sweep.html").read_text()


def test_harvest_path_from_a_backtest_and_gradual_switch():
    path = harvest_path_from_metrics({"harvested_by_year_pct": {"2015": 12.0, "2016": 6.0, "2017": 3.0}}, 10)
    assert path == (0.12, 0.06, 0.03)
    r = analyze(Inputs(harvest_path=path))
    assert round(r.max_losses) == round(0.21 * r.di_initial)
    g = gradual(Inputs(), gain_budget=5_000)
    assert g["years_to_move"] > 1 and g["transition_taxes"] > 0
    everything_now = gradual(Inputs(), gain_budget=1e12)
    assert everything_now["pre_tax"] == pytest.approx(g["all_at_once_pre_tax"], rel=1e-9)


def test_the_te_path_of_a_legacy_backtest_comes_along(tmp_path, capsys):
    from taxview.cli import main

    metrics = {
        "harvested_by_year_pct": {"2015": 4.0, "2016": 2.0},
        "transition": {"te_by_year": {"2015": 0.079, "2016": 0.048}},
    }
    assert te_path_from_metrics(metrics) == {"2015": 0.079, "2016": 0.048}
    assert te_path_from_metrics({"harvested_by_year_pct": {}}) is None
    f = tmp_path / "metrics.json"
    f.write_text(json.dumps(metrics))
    assert main(["transition", "--harvest-from", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["te_path"] == {"2015": 0.079, "2016": 0.048}
    assert main(["transition", "--harvest-from", str(f)]) == 0
    assert "TE of the backtest's legacy transition, by year: 2015 7.90%, 2016 4.80%" in capsys.readouterr().out
