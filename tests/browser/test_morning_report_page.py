"""The morning report in a real browser: headless Chromium through Selenium, the page opened from a
file:// URL as a portfolio manager opens it. Never skipped: ``./dev test`` installs Debian's
``chromium`` and ``chromium-driver``; without them the test fails and says so."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from taxview.morning import write_morning_report
from tests.morning_fixture import DATE, MALICIOUS, write_run_dir

WIDTH = 1280
SECTIONS = [
    "Firm totals",
    "Harvested losses and estimated tax saving by account type",
    "Tracking error against budget",
    "Accounts that failed or gave way",
    "Names blocked by household wash-sale windows tonight",
    "Top harvested names",
    "Style tilts: active exposures against their targets",
    "Orders by size",
    "Mandate changes and cash flows since last night",
]


def _binary(path: str, name: str) -> str:
    found = path if os.access(path, os.X_OK) else shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} not found (looked at {path} and on PATH): "
            "./dev test installs Debian's chromium and chromium-driver"
        )
    return found


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("/usr/bin/chromium", "chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={WIDTH},900",
    ):
        options.add_argument(arg)
    # the driver named explicitly: Selenium Manager never downloads one
    driver = webdriver.Chrome(options=options, service=Service(_binary("/usr/bin/chromedriver", "chromedriver")))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(driver, page: Path) -> None:
    driver.get(page.resolve().as_uri())
    driver.set_window_size(WIDTH, 900)


def _full_page_screenshot(driver, path: Path) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, height + 120)  # the window's chrome: the viewport is a little smaller
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path))


def test_the_morning_report_renders_its_sections_charts_and_data_as_text(browser, tmp_path):
    page = write_morning_report(write_run_dir(tmp_path / "run", optional=True))
    _open(browser, page)
    assert browser.title == f"taxview morning report · {DATE}"
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headings == SECTIONS

    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 3
    for img in images:  # decoded and laid out: a broken data URI has no natural size
        width, height, natural = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height, arguments[0].naturalWidth]",
            img,
        )
        assert width > 100 and height > 50 and natural > 0, img.get_attribute("alt")

    # the malicious reason is shown as text and nothing in it ran
    assert MALICIOUS in browser.find_element(By.ID, "attention").text
    assert browser.execute_script("return document.querySelectorAll('script, #attention img').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    assert browser.title == f"taxview morning report · {DATE}"

    tilts = browser.find_element(By.ID, "tilts").text
    assert "value" in tilts and "A2 +0.470 (target +0.500)" in tilts

    totals = browser.find_element(By.ID, "totals").text
    assert "$1,000.00" in totals and "$400.00" in totals

    shot = tmp_path / "morning-report.png"
    _full_page_screenshot(browser, shot)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_the_report_of_a_run_without_the_optional_inputs_renders_cleanly(browser, tmp_path):
    page = write_morning_report(write_run_dir(tmp_path / "run", optional=False))
    _open(browser, page)
    assert [h.text for h in browser.find_elements(By.TAG_NAME, "h2")] == SECTIONS
    missing = [p.text for p in browser.find_elements(By.CSS_SELECTOR, ".missing")]
    assert len(missing) == 6 and all(m.endswith("not recorded in this run.") for m in missing)
    shot = tmp_path / "morning-report-plain.png"
    _full_page_screenshot(browser, shot)
    print(f"screenshot: {shot}")
