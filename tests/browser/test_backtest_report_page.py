"""The backtest report of a tilted account and of a legacy transition in a real browser (headless
Chromium through Selenium, from a file:// URL): the tilts' and the transition's sections and
charts render (issue 15)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import numpy as np
from selenium.webdriver.common.by import By

from solver.market import synthesize
from solver.styles import Styles, standardized
from solver.types import AccountSettings
from taxview.backtest import Data, TaxConfig, exposure_path, metrics, simulate, transition_metrics
from taxview.core.records import Lot
from taxview.report import charts, report_html
from tests.browser.test_morning_report_page import _open, browser  # noqa: F401 (the fixture)


def test_a_tilted_transition_report_shows_exposures_and_the_te_path(browser, tmp_path):  # noqa: F811
    market = synthesize(names=30, days=420, factors=5, seed=11, start="2018-01-02")
    rng = np.random.default_rng(0)
    styles = Styles(("value",), standardized(rng.normal(size=30))[:, None])
    t0 = 300
    lots = [
        Lot(f"L{i}", market.symbols[i], Decimal(1000), int(1000 * market.prices[t0, i] * 40), dt.date(2018, 3, 1))
        for i in range(8)
    ]
    s = AccountSettings(te_max=0.05, tilts=(("value", 0.3),), gain_budget_cents=20_000_00, transition=True)
    run = simulate(
        Data(market, "cap-weighted", styles=styles),
        str(market.dates[t0]),
        str(market.dates[-1]),
        "monthly",
        0,
        s,
        TaxConfig(),
        lots=lots,
        factors=5,
        outside=frozenset({"S000"}),
    )
    result = metrics(run, run.nav[0]) | {"baseline": metrics(run, run.nav[0])}
    result |= {"exposures": exposure_path(run), "transition": transition_metrics(run, s)}
    page = report_html(tmp_path, result, charts(tmp_path, run, replace(run), transition=True), ["a test"])
    _open(browser, page)
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headings == ["Metrics", "Style tilts", "Legacy transition", "Assumptions"]
    alts = {img.get_attribute("alt") for img in browser.find_elements(By.TAG_NAME, "img")}
    assert {"exposure_value", "te_path", "nav"} <= alts
    for img in browser.find_elements(By.TAG_NAME, "img"):
        natural = browser.execute_script("return arguments[0].naturalWidth", img)
        assert natural > 0, img.get_attribute("alt")
    tables = browser.find_elements(By.TAG_NAME, "table")
    assert "annualized return, after tax" in tables[0].text and "ann_return_after_tax" not in tables[0].text
    assert {"excess"} <= alts
    assert "+0.300" in tables[1].text and "$20,000" in tables[2].text
