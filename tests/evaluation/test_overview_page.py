"""The programme overview page: figures, charts and campaign links, checked in headless Chromium."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from sqlalchemy import Engine

from engine.cli import main as crm_main
from engine.config.checked import Config
from engine.evaluation import programme_charts as charts
from engine.evaluation.funnel import lifecycle_funnel
from engine.evaluation.indicators import programme_indicators
from engine.evaluation.migration_matrix import segment_migration
from engine.evaluation.overview_page import build_overview, write_overview
from tests.budget.test_html_report import _loaded_width, _open, browser  # noqa: F401  (fixture)
from tests.evaluation.test_indicators import NOW, config, programme_data  # noqa: F401  (fixture)
from tests.factories import add_customer, add_purchase, utc

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_IDS = ("chart-churn", "chart-revenue", "chart-funnel", "chart-migration")
HOSTILE = 'Winback <script>alert("x")</script> & more'


def _campaign_pages(folder: Path) -> list[Path]:
    """Two stand-ins for campaign pages, one titled with markup that must stay text."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for key, title in (("winback", "Winback &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more"),
                       ("autumn", "Autumn sale")):  # fmt: skip
        page = folder / f"campaign-{key}.html"
        page.write_text(f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{key}</body></html>")
        pages.append(page)
    return pages


def test_charts_are_png_with_and_without_data(db: Engine, config: Config) -> None:  # noqa: F811
    empty = programme_indicators(db, config, periods=3, now=NOW)
    made = [
        charts.churn_chart(empty),
        charts.revenue_chart(empty),
        charts.funnel_chart(lifecycle_funnel(db, config)),
        charts.migration_chart(segment_migration(db, config, utc(2026, 9, 1), NOW)),
    ]
    programme_data(db)
    by_segment = programme_indicators(db, config, periods=3, by_segment=True, now=NOW)
    made += [
        charts.churn_chart(programme_indicators(db, config, periods=3, now=NOW)),
        charts.churn_chart(by_segment),
        charts.revenue_chart(programme_indicators(db, config, periods=3, now=NOW)),
        charts.funnel_chart(lifecycle_funnel(db, config)),
        charts.migration_chart(segment_migration(db, config, utc(2026, 9, 1), NOW)),
    ]
    for png in made:
        assert png.startswith(PNG_SIGNATURE) and len(png) > 1_000


def test_overview_files_and_content(db: Engine, config: Config, tmp_path: Path) -> None:  # noqa: F811
    programme_data(db)
    folder = tmp_path / "report"
    pages = _campaign_pages(folder)
    index = write_overview(db, config, folder, pages, periods=3, now=NOW)
    assert index == folder / "index.html"
    written = sorted(p.name for p in folder.iterdir())  # self-contained: no chart files beside the pages
    assert written == sorted(["index.html", "campaign-winback.html", "campaign-autumn.html"])
    page = index.read_text(encoding="utf-8")
    for chart_id in CHART_IDS:
        found = re.search(rf'id="{chart_id}" src="data:image/png;base64,([^"]+)"', page)
        assert found is not None and base64.b64decode(found.group(1)).startswith(PNG_SIGNATURE)
    assert (
        '<a href="campaign-winback.html">' in page
        and '<a href="campaign-autumn.html">Autumn sale</a>' in page
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page and "https://" not in page

    overview = build_overview(db, config, folder, pages, periods=3, now=NOW)
    assert overview.headline is not None and overview.headline.period.label == "2026-11"
    assert overview.segment_period == "2026-12"
    assert [row.segment for row in overview.segment_rows()] == ["gold", "silver"]
    assert overview.migration.start == overview.indicators.periods[0].start_at
    assert [link.title for link in overview.campaigns] == [HOSTILE, "Autumn sale"]


def test_browser_shows_figures_charts_and_links(
    db: Engine,
    config: Config,  # noqa: F811
    browser: WebDriver,  # noqa: F811
    tmp_path: Path,
) -> None:
    programme_data(db)
    folder = tmp_path / "report"
    index = write_overview(db, config, folder, _campaign_pages(folder), periods=3, now=NOW)
    _open(browser, index)
    assert browser.title == "CRM programme overview"
    for chart_id in CHART_IDS:
        assert _loaded_width(browser, chart_id) > 0, chart_id
    # November 2026: 3 active, 1 of 3 churned, 2400 over 3 buyers, (610 - 61.20) / 3, 2500 / 15000
    assert browser.find_element(By.ID, "headline-active").text == "3"
    assert browser.find_element(By.ID, "headline-churn").text == "33.33%"
    assert browser.find_element(By.ID, "headline-revenue").text == "800.00"
    assert browser.find_element(By.ID, "headline-profit").text == "182.93"
    assert browser.find_element(By.ID, "headline-wallet").text == "16.67%"
    assert browser.find_element(By.ID, "headline-read").text == "50.00%"
    assert browser.find_element(By.ID, "headline-satisfaction").text == "4.50"
    rows = browser.find_element(By.ID, "indicators").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [row.text.split()[0] for row in rows] == ["2026-10", "2026-11", "2026-12"]
    segments = browser.find_element(By.ID, "by-segment").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [row.text.split()[:3] for row in segments] == [["gold", "2", "0.00%"], ["silver", "0", "—"]]
    funnel = browser.find_element(By.ID, "funnel").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [row.text.split()[0] for row in funnel] == [
        "visitor",
        "identified",
        "client",
        "regular",
        "partner",
    ]
    migration = browser.find_element(By.ID, "migration").text
    assert "gold" in migration and "(none)" in migration
    links = browser.find_element(By.ID, "campaigns").find_elements(By.TAG_NAME, "a")
    assert [link.text for link in links] == [HOSTILE, "Autumn sale"]
    links[1].click()
    assert browser.find_element(By.TAG_NAME, "body").text == "autumn"


def test_cli_writes_the_whole_report(
    db: Engine,
    config: Config,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with db.begin() as connection:
        customer = add_customer(connection, email="a@example.com")
        add_purchase(connection, customer, utc(2026, 11, 10), "100")
    folder = tmp_path / "out"
    assert crm_main(["report", "html", str(folder), "--periods", "2"]) == 0
    assert f"wrote {folder / 'index.html'}" in capsys.readouterr().out
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "No campaign has run yet." in page and 'id="chart-migration"' in page
    assert 'id="chart-churn" src="data:image/png;base64,' in page
