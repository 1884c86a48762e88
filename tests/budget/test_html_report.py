"""The HTML budget report: charts, totals and escaping, checked in headless Chromium."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from engine.budget.charts import channel_chart, segment_chart, strategy_chart
from engine.budget.html_report import render_html, write_html
from engine.budget.report import BudgetReport
from engine.reporting.html import format_money
from tests.budget.test_workbook import HOSTILE_NAME, sample_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHART_IDS = ("chart-strategy", "chart-channel", "chart-segment")


@pytest.mark.parametrize("chart", [strategy_chart, channel_chart, segment_chart])
@pytest.mark.parametrize("empty", [False, True], ids=["lines", "empty"])
def test_charts_are_png(chart: Callable[[BudgetReport], bytes], empty: bool) -> None:
    report = sample_report(approved=not empty, lines=not empty)
    png = chart(report)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 1_000


def test_money_format() -> None:
    report = sample_report()
    assert format_money(report.plan_total) == "330,213.30"
    assert format_money(report.approved_total) == "350,000.00"
    assert format_money(None) == "—"


def test_page_is_self_contained_and_escaped(tmp_path: Path) -> None:
    report = sample_report()
    report = dataclasses.replace(report, notes=[*report.notes, "<script>alert(1)</script>"])
    path = write_html(report, tmp_path / "out" / "budget.html")
    assert [p.name for p in path.parent.iterdir()] == ["budget.html"]  # no temporary left behind
    page = path.read_text(encoding="utf-8")
    assert page == render_html(report)
    for chart_id in CHART_IDS:
        assert f'id="{chart_id}" src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE_NAME not in page  # its quotes are escaped
    assert "=HYPERLINK(&#34;x&#34;)" in page
    for heading in ("By strategy", "By channel", "By segment", "By campaign", "Contact matrix", "Plan lines"):
        assert f"<h2>{heading}</h2>" in page
    assert "3f2a9c01b7d4" in page and "M. Ivanova, CFO" in page


def _browser_or_skip() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    message = "chromium or chromedriver is missing: run scripts/install-chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium driven by chromedriver (Debian packages)."""
    _browser_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: WebDriver, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _loaded_width(driver: WebDriver, element_id: str) -> int:
    """The natural width of a loaded image, 0 when it did not load."""
    image = driver.find_element(By.ID, element_id)
    assert image.get_attribute("alt")
    return int(driver.execute_script("return arguments[0].complete ? arguments[0].naturalWidth : 0;", image))


def test_browser_shows_charts_and_totals(browser: WebDriver, tmp_path: Path) -> None:
    report = sample_report()
    path = write_html(report, tmp_path / "budget.html")
    _open(browser, path)
    assert browser.title == "CRM budget 2027-Q1"
    for chart_id in CHART_IDS:
        assert _loaded_width(browser, chart_id) > 0, chart_id
    totals = browser.find_element(By.ID, "totals")
    assert totals.is_displayed()
    assert browser.find_element(By.ID, "total-plan").text == "330,213.30 EUR"
    assert browser.find_element(By.ID, "total-approved").text == "350,000.00 EUR"
    assert "47,700.50" in totals.text  # actual
    assert "19,786.70" in totals.text  # headroom: approved - plan
    assert browser.find_element(By.ID, "matrix-total").text == "330,213.30"
    lines = browser.find_element(By.ID, "lines").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(lines) == len(report.lines)
    assert HOSTILE_NAME in lines[2].text  # shown as text, not run


def test_browser_shows_an_empty_report(browser: WebDriver, tmp_path: Path) -> None:
    path = write_html(sample_report(approved=False, lines=False), tmp_path / "empty.html")
    _open(browser, path)
    for chart_id in CHART_IDS:
        assert _loaded_width(browser, chart_id) > 0, chart_id
    assert browser.find_element(By.ID, "total-plan").text == "0.00 EUR"
    assert browser.find_element(By.ID, "total-approved").text == "—"
