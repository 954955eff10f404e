"""The web console in a real browser: headless Chromium through Selenium against the service's app
(uvicorn in a thread, the Redis ledger on the suite's redis-server; Ray Serve itself is exercised
by tests/integration/test_serve.py). Sign in with a token, open the firm page (a reason carrying
markup stays text), open an account, propose, commit and see the ledger change, wash-check a
purchase in the household. The account's charts are drawn by the vendored Chart.js (canvases of
real size with marks on them, no console errors, nothing loaded from outside the app). The account
page with its charts is saved as docs/console.png, with its proposal as docs/console-proposal.png."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from cluster.service.app import make_app
from cluster.service.auth import Tokens, create_token
from cluster.service.core import Service
from cluster.service.proposals import RedisProposals
from ledger.api import AccountInfo
from ledger.importer import import_lots
from ledger.server import free_port
from ledger.store import LedgerStore
from solver.problem import ProblemCache
from taxview.core.records import Lot
from tests.browser.test_morning_report_page import WIDTH, _binary
from tests.integration.test_serve import lots_table
from tests.morning_fixture import write_run_dir

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console.png"
SCREENSHOT_PROPOSAL = SCREENSHOT.with_name("console-proposal.png")
# per chart: (labels, datasets, points drawn, non-blank pixels of its canvas)
_DRAWN = """return Array.from(document.querySelectorAll('figure.jschart canvas')).map(function (c) {
  var chart = Chart.getChart(c), px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, ink = 0;
  for (var i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
  return [chart.data.labels.length, chart.data.datasets.length, chart.getDatasetMeta(0).data.length, ink];
});"""


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium that keeps the page's console messages (``get_log("browser")``)."""
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("/usr/bin/chromium", "chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={WIDTH},900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver named explicitly: Selenium Manager never downloads one
    driver = webdriver.Chrome(options=options, service=DriverService(_binary("/usr/bin/chromedriver", "chromedriver")))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(redis_server, small_snap, tmp_path_factory):
    work = tmp_path_factory.mktemp("console")
    client = redis_server.client()
    client.flushall()
    store = LedgerStore(client)
    store.add_accounts(
        [
            AccountInfo("H1-T", "H1", "taxable", cash_cents=1_500_000),
            AccountInfo("H1-I", "H1", "ira", cash_cents=2_000_000),
            AccountInfo("H2-T", "H2", "taxable", cash_cents=100_000),
        ]
    )
    snap = small_snap
    store.set_mandate("H1-T", {"te_max": 0.03, "exclude_symbols": (snap.symbols[-1],)}, "test", "2024-01-01T00:00:00Z")
    lots = []
    for i, s in enumerate(snap.symbols):
        shares = int(900_000 * snap.benchmark[i] / snap.prices[i])
        if shares:
            gain = (-0.25, 0.15, 0.40)[i % 3]
            basis = round(shares * snap.price_cents[i] / (1 + gain))
            lots.append(("H1-T", Lot(f"T-{s}", s, Decimal(shares), basis, dt.date(2015, 2, 2))))
    import_lots(store, lots_table(lots))
    write_run_dir(work / "out" / "night")
    token = create_token(work / "tokens", "advisor")
    svc = Service(store, snap, proposals=RedisProposals(client), cache=ProblemCache(), runs_dir=work / "out")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(make_app(lambda: svc, Tokens(work / "tokens")), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}", token, store
    server.should_exit = True
    thread.join(10)
    client.close()


def _wait(driver, condition):
    return WebDriverWait(driver, 30).until(condition)


def _text(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def _errors(driver) -> list[str]:
    """The page's console errors since the last call (JavaScript errors, failed loads)."""
    return [m["message"] for m in driver.get_log("browser") if m["level"] == "SEVERE"]


def _check_charts(driver, url: str) -> None:
    """The account page's charts drawn by Chart.js, their tables folded away, nothing from outside."""
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "figure.jschart.drawn")) == 2)
    _wait(driver, lambda d: all(row[3] > 0 for row in d.execute_script(_DRAWN)))
    figures = driver.find_elements(By.CSS_SELECTOR, "figure.jschart")
    assert [f.get_attribute("data-chart") for f in figures] == ["weights", "gains"]
    drawn = driver.execute_script(_DRAWN)
    assert [datasets for _, datasets, _, _ in drawn] == [2, 1]  # account and benchmark; unrealized
    for figure, (labels, _, points, ink) in zip(figures, drawn):
        canvas = figure.find_element(By.TAG_NAME, "canvas")
        assert canvas.size["width"] > 400 and canvas.size["height"] > 200
        rows = figure.find_elements(By.CSS_SELECTOR, "details tbody tr")  # the page without JavaScript
        assert labels == points == len(rows) > 0 and ink > 1000
        assert figure.find_element(By.TAG_NAME, "details").get_attribute("open") is None
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any("/static/chartjs/chart.umd.min.js" in name for name in loaded)
    assert all(name.startswith(url + "/") for name in loaded), loaded
    assert _errors(driver) == []


def test_sign_in_propose_commit_and_wash_check_in_a_browser(browser, site):
    url, token, store = site
    browser.set_window_size(WIDTH, 900)
    browser.get(url + "/console")
    assert browser.current_url.endswith("/console/login")
    browser.find_element(By.ID, "token").send_keys("tv_not-a-token")
    browser.find_element(By.ID, "signin").click()
    _wait(browser, EC.text_to_be_present_in_element((By.TAG_NAME, "main"), "That token is not valid"))
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin").click()
    _wait(browser, EC.url_to_be(url + "/console"))
    _errors(browser)  # the 401 of the wrong token above is logged as a failed load: drained here

    # the firm: last night's totals, its failure (its markup shown as text), the account over budget
    assert browser.current_url.endswith("/console")
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headings == ["Last night", "Failures", "Accounts over their TE budget", "Households"]
    assert "pwned" not in browser.title and "<script>" in _text(browser, "main")
    assert "nightly-2024-03-01" in _text(browser, ".cards")
    browser.find_element(By.LINK_TEXT, "H1-T").click()
    _wait(browser, EC.title_is("taxview · account H1-T"))

    # the account: holdings against the benchmark, lots, mandate, TE against budget
    assert browser.title == "taxview · account H1-T"
    _check_charts(browser, url)
    lots = browser.find_elements(By.XPATH, "//h2[starts-with(., 'Lots')]/following-sibling::table//tbody/tr")
    assert len(lots) == len(store.lots("H1-T"))
    assert "exclude_symbols" in _text(browser, "main") and "3.00%" in _text(browser, ".cards")
    lots_heading = browser.find_element(By.XPATH, "//h3[.='Lots']")  # the charts end above it
    browser.set_window_size(WIDTH, lots_heading.location["y"] + 260)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    browser.set_window_size(WIDTH, 900)
    cash_before = store.account("H1-T").cash_cents

    browser.find_element(By.NAME, "cash_to_raise").send_keys("20000")
    browser.find_element(By.ID, "propose").click()
    proposal = _wait(browser, EC.presence_of_element_located((By.ID, "proposal")))
    _check_charts(browser, url)
    tickets = proposal.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert tickets and "Proposal p-" in proposal.text and "tax effect" in proposal.text
    sold = {r.find_elements(By.TAG_NAME, "td")[0].text for r in tickets if "sell" in r.text}
    assert store.account("H1-T").cash_cents == cash_before  # nothing written yet
    browser.set_window_size(WIDTH, 1500)  # the account, the form and the proposal's first tickets
    assert browser.save_screenshot(str(SCREENSHOT_PROPOSAL))
    browser.set_window_size(WIDTH, 900)

    browser.find_element(By.ID, "commit").click()
    assert "Committed" in _wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "section.ok"))).text
    cash_after = store.account("H1-T").cash_cents
    assert cash_after >= 2_000_000 > cash_before  # the $20,000 asked for is there to withdraw
    assert f"${Decimal(cash_after) / 100:,.2f}" in _text(browser, ".cards")
    calendar = browser.find_element(By.XPATH, "//h2[starts-with(., 'Household wash-sale calendar')]/..").text
    harvested = {s.symbol for s in store.sales("H1") if s.gain_cents < 0}
    assert harvested and all(s in calendar for s in harvested) and harvested <= sold

    # the household: would the IRA buying a harvested name wash it? (yes: lost for good)
    browser.find_element(By.LINK_TEXT, "H1").click()
    _wait(browser, EC.title_is("taxview · household H1"))
    name = sorted(harvested)[0]
    for option in browser.find_elements(By.CSS_SELECTOR, "select[name=account] option"):
        if option.text == "H1-I":
            option.click()
    for option in browser.find_elements(By.CSS_SELECTOR, "select[name=side] option"):
        if option.text == "buy":
            option.click()
    browser.find_element(By.NAME, "symbol").send_keys(name)
    browser.find_element(By.NAME, "quantity").send_keys("10")
    browser.find_element(By.ID, "check").click()
    result = _wait(browser, EC.presence_of_element_located((By.ID, "result"))).text
    assert "Washes" in result and "lost for good" in result and "H1-T" in result
