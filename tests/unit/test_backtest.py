"""The after-tax backtest: accounting identities, no look-ahead, tax netting, the CLI."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import numpy as np
import pytest

from solver.market import Market, _readonly, synthesize
from solver.types import AccountSettings
from taxview.backtest import Data, TaxConfig, load_data, metrics, settle_year, simulate
from taxview.cli import main
from taxview.core.money import dollars_to_cents
from taxview.core.records import Lot

OUTSIDE = TaxConfig(outside_gains=True)
CAPPED = TaxConfig(outside_gains=False)


def small_market(seed: int = 3) -> Market:
    m = synthesize(names=12, days=420, factors=4, seed=seed, start="2019-01-02")
    so = _readonly(np.arange(1, 13) * 100.0)  # whole shares outstanding: buy-and-hold is exact
    return Market(m.symbols, m.sectors, so, m.dates, m.prices)


@pytest.mark.parametrize(
    ("st", "lt", "carry", "cfg", "tax", "carry_out"),
    [
        (10_000_00, 5_000_00, (0, 0), OUTSIDE, 10_000_00 * 0.408 + 5_000_00 * 0.238, (0, 0)),
        (-4_000_00, 10_000_00, (0, 0), OUTSIDE, 6_000_00 * 0.238, (0, 0)),  # ST loss offsets LT gain
        (-10_000_00, 4_000_00, (0, 0), OUTSIDE, -6_000_00 * 0.408, (0, 0)),  # net ST loss saves at ST rate
        (-10_000_00, 4_000_00, (0, 0), CAPPED, -3_000_00 * 0.408, (-3_000_00, 0)),  # $3,000 cap, rest carried
        (2_000_00, 0, (-3_000_00, 0), CAPPED, -1_000_00 * 0.408, (0, 0)),  # carry used first
        (0, -5_000_00, (-1_000_00, 0), CAPPED, -3_000_00 * 0.408, (0, -3_000_00)),  # ST carry used first
    ],
)
def test_tax_year_netting_and_carry_forward(st, lt, carry, cfg, tax, carry_out):
    got, cst, clt = settle_year(st, lt, carry[0], carry[1], 0.408, 0.238, cfg)
    assert got == round(tax) and (cst, clt) == carry_out


def test_nav_identity_realized_pnl_and_no_wash_sales():
    data = Data(small_market(), "cap-weighted")
    run = simulate(
        data, "2019-05-01", "2020-08-31", "weekly", 500_000, AccountSettings(max_weight=0.3), OUTSIDE, factors=4
    )
    m = data.market
    t = int(np.searchsorted(m.dates, np.datetime64(run.dates[-1])))
    held = sum(x.quantity * dollars_to_cents(float(m.prices[t, m.symbols.index(x.symbol)])) for x in run.final_lots)
    assert int(held) + run.final_cash == round(run.nav[-1] * 100)  # NAV = Σ shares × price + cash
    assert sum(s.recognized_cents for s in run.sales) == run.realized_total  # realized = Σ over trades
    assert run.wash_sales == 0 and run.rebalances > 50 and run.solve_failures == 0
    assert metrics(run, 500_000)["lifetime_harvested_pct"] > 0


def test_untouched_benchmark_portfolio_equals_the_benchmark_to_the_cent():
    m = small_market()
    data = Data(m, "cap-weighted")
    t0 = int(np.searchsorted(m.dates, np.datetime64("2019-05-01")))
    lots = [
        Lot(
            f"L{i}",
            s,
            Decimal(int(m.shares_outstanding[i])),
            dollars_to_cents(m.prices[t0, i]) * int(m.shares_outstanding[i]),
            dt.date(2019, 4, 1),
        )
        for i, s in enumerate(m.symbols)
    ]
    run = simulate(
        data, "2019-05-01", "2020-08-31", "never", 0, AccountSettings(lambda_tax=0.0), OUTSIDE, lots=lots, factors=4
    )
    assert run.traded == 0
    assert np.max(np.abs(np.array(run.nav) - np.array(run.benchmark_nav))) < 0.005


def test_decisions_do_not_look_ahead():
    m = small_market(seed=8)
    cut = int(np.searchsorted(m.dates, np.datetime64("2020-01-15")))
    future = m.prices.copy()
    future[cut + 1 :] *= np.linspace(0.5, 1.7, future.shape[1])  # a different future
    other = Market(m.symbols, m.sectors, m.shares_outstanding, m.dates, _readonly(future.round(2)))
    kw = dict(rebalance="weekly", capital=300_000, settings=AccountSettings(max_weight=0.3), tax=OUTSIDE, factors=4)
    a = simulate(Data(m, "cap-weighted"), "2019-05-01", "2020-06-30", **kw)
    b = simulate(Data(other, "cap-weighted"), "2019-05-01", "2020-06-30", **kw)
    k = a.dates.index(dt.date.fromisoformat(str(m.dates[cut])))
    assert a.nav[: k + 1] == b.nav[: k + 1] and a.harvested[: k + 1] == b.harvested[: k + 1]
    assert a.nav[-1] != b.nav[-1]


def test_sp500_20_data_loads_with_the_index():
    d = load_data("sp500-20")
    assert d.market.n == 20 and str(d.market.dates[0]) == "1990-01-02" and str(d.market.dates[-1]) == "2022-12-28"
    assert d.index is not None and d.index.shape == (len(d.market.dates),)


def test_backtest_cli_writes_every_output(tmp_path, capsys):
    rc = main(
        [
            "backtest",
            "--data",
            "sp500-20",
            "--start",
            "2019-01-02",
            "--end",
            "2019-06-28",
            "--rebalance",
            "weekly",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in (
        "ann_return_pre_tax",
        "ann_return_after_tax",
        "benchmark_ann_return",
        "after_tax_alpha_bps",
        "tracking_error_bps",
        "avg_turnover",
        "lifetime_harvested_pct",
        "tax_alpha_by_year",
        "final_nav",
        "final_after_tax_nav",
        "liquidation_after_tax_nav",
        "benchmark_final_nav",
        "wash_sales_created",
        "days_per_second",
    ):
        assert key in m and key in m["baseline"]
    assert m["wash_sales_created"] == 0 and m["baseline"]["lifetime_harvested_pct"] <= m["lifetime_harvested_pct"]
    for f in ("nav.parquet", "report.html", "nav.png", "excess.png", "harvested.png", "tracking_error.png"):
        assert (tmp_path / f).stat().st_size > 0
    page = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64" in page
    # the metrics with human labels and units, the keys kept as the cells' titles
    assert "after-tax alpha (bps a year)" in page and "title='after_tax_alpha_bps'" in page
    assert ">ann_return_pre_tax<" not in page


def test_backtest_bad_input(tmp_path, capsys):
    assert (
        main(["backtest", "--data", "nope", "--start", "2019-01-02", "--end", "2019-06-28", "--out", str(tmp_path)])
        == 2
    )
    assert main(["backtest", "--start", "1990-01-03", "--end", "1990-06-28", "--out", str(tmp_path)]) == 2
    assert "history" in capsys.readouterr().err
