"""The campaign page: verdict, figures per group, uplift, A/B winner and charts, in headless Chromium."""

from __future__ import annotations

import base64
import dataclasses
import math
import re
from decimal import Decimal
from pathlib import Path

import pytest
from scipy import stats
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from statsmodels.stats.proportion import proportion_confint

from engine.evaluation.ab_test import pick_winner
from engine.evaluation.campaign_charts import (
    conversion_chart,
    funnel_chart,
    mean_interval,
    proportion_interval,
    revenue_chart,
)
from engine.evaluation.campaign_page import headline, p_in_words, render_campaign_page, write_campaign_pages
from engine.evaluation.figures import CampaignResult, GroupFigures
from engine.evaluation.uplift import CONVERSION_RATE, REVENUE_PER_CUSTOMER, compare_groups
from tests.budget.test_html_report import PNG_SIGNATURE, _loaded_width, _open, browser  # noqa: F401

HOSTILE = 'Spring <script>alert(1)</script> "sale"'
CHART_IDS = ("chart-conversion", "chart-revenue", "chart-funnel")


def group(name: str, audience: int, sent: int, converted: int, cost: str, **counts: int) -> GroupFigures:
    """A group whose converters each spent 100.00 at a 40 % margin."""
    return GroupFigures(
        name=name,
        audience=audience,
        sent=sent,
        delivered=counts.get("delivered", sent),
        failed=counts.get("failed", 0),
        opened=counts.get("opened", 0),
        clicked=counts.get("clicked", 0),
        responded=counts.get("responded", 0),
        converted=converted,
        purchases=converted,
        revenue=Decimal(100 * converted),
        margin=Decimal(40 * converted),
        actual_cost=Decimal(cost),
        revenue_sum_squares=Decimal(10_000 * converted),
        responders=counts.get("responded", 0),
    )


def sample_result(*, name: str = HOSTILE) -> CampaignResult:
    """Variants a and b of 400 customers each (60 and 30 bought), a control group of 200 (10 bought)."""
    a = group("a", 400, 390, 60, "156.00", failed=10, delivered=380, opened=200, clicked=80, responded=90)
    b = group("b", 400, 395, 30, "158.00", failed=5, delivered=390, opened=150, clicked=40, responded=50)
    control = group("control", 200, 0, 10, "0")
    treated = dataclasses.replace(
        a,
        name="treated",
        audience=800,
        sent=785,
        delivered=770,
        failed=15,
        opened=350,
        clicked=120,
        responded=140,
        converted=90,
        purchases=90,
        revenue=Decimal(9000),
        margin=Decimal(3600),
        actual_cost=Decimal("1314.00"),  # contacts 314.00 and preparation 1000.00
        revenue_sum_squares=Decimal(900_000),
        responders=140,
    )
    result = CampaignResult(
        campaign="spring_sale",
        name=name,
        goal_metric="conversion",
        window_days=30,
        runs=1,
        control=control,
        treated=treated,
        variants=[a, b],
        uplift=[
            compare_groups(treated, control, CONVERSION_RATE, 0.95),
            compare_groups(treated, control, REVENUE_PER_CUSTOMER, 0.95),
        ],
        # by hand: (9000 / 800 - 1000 / 200) x 800 = 5000; margin (4.50 - 2.00) x 800 = 2000
        incremental_revenue=Decimal("5000.00"),
        incremental_margin=Decimal("2000.00"),
        incremental_roi=Decimal("0.5221"),  # (2000 - 1314) / 1314
    )
    return dataclasses.replace(result, winner=pick_winner(result, 0.95))


def test_group_intervals_match_statsmodels_and_scipy() -> None:
    interval = proportion_interval(60, 400, 0.95)
    low, high = proportion_confint(60, 400, alpha=0.05, method="wilson")
    assert interval.value == 0.15
    assert math.isclose(interval.low or 0, low, rel_tol=1e-9) and math.isclose(
        interval.high or 0, high, rel_tol=1e-9
    )
    # 60 customers spent 100.00, 340 nothing: the t interval of the mean
    a = sample_result().variants[0]
    values = [100.0] * 60 + [0.0] * 340
    low, high = stats.t.interval(0.95, len(values) - 1, loc=15.0, scale=stats.sem(values))
    mean = mean_interval(a, 0.95)
    assert mean.value == 15.0
    assert math.isclose(mean.low or 0, low, rel_tol=1e-6) and math.isclose(mean.high or 0, high, rel_tol=1e-6)
    assert proportion_interval(0, 0).value is None
    assert proportion_interval(0, 50).low == 0.0  # never below 0


@pytest.mark.parametrize("chart", [conversion_chart, revenue_chart, funnel_chart])
@pytest.mark.parametrize("kind", ["variants", "no variants", "empty"])
def test_charts_are_png(chart, kind: str) -> None:  # type: ignore[no-untyped-def]
    result = sample_result()
    if kind != "variants":
        result = dataclasses.replace(result, variants=[], winner=None)
    if kind == "empty":
        nothing = group("none", 0, 0, 0, "0")
        result = dataclasses.replace(result, treated=nothing, control=nothing, uplift=[])
    png = chart(result, "RUB") if chart is revenue_chart else chart(result)
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1_000


def test_the_headline_says_whether_it_paid_off() -> None:
    result = sample_result()
    said = headline(result, "RUB")
    assert (said.verdict, said.css) == ("Paid off", "ok")
    assert said.money == (
        "Incremental revenue 5,000.00 RUB and incremental margin 2,000.00 RUB against 1,314.00 RUB spent: "
        "incremental ROI +52.2 %."
    )
    # 90 / 800 = 11.25 % against 10 / 200 = 5.00 %: +6.25 pp
    assert said.uplift is not None
    assert said.uplift.startswith("Conversion rate: 11.2 % treated against 5.0 % in control, +6.2 pp")
    assert "significant at the 95 % level" in said.uplift and "not significant" not in said.uplift
    losing = dataclasses.replace(
        result, incremental_margin=Decimal("1000.00"), incremental_roi=Decimal("-0.2390")
    )
    assert headline(losing, "RUB").verdict == "Did not pay off"
    assert "incremental ROI -23.9 %" in headline(losing, "RUB").money
    no_control = dataclasses.replace(result, control=group("control", 0, 0, 0, "0"), uplift=[])
    assert headline(no_control, "RUB").verdict == "Cannot tell"
    assert headline(no_control, "RUB").uplift is None


def test_p_values_in_words() -> None:
    conversion = sample_result().uplift[0]
    assert conversion.significant and conversion.p_value < 0.01
    assert p_in_words(conversion).startswith(f"p = {conversion.p_value:.3f}: significant at the 95 % level (")
    even = dataclasses.replace(conversion, p_value=0.31, significant=False)
    assert p_in_words(even) == (
        "p = 0.31: not significant at the 95 % level (with no real effect, a difference this large would "
        "turn up by chance 31 % of the time); it may be chance"
    )
    assert p_in_words(dataclasses.replace(conversion, p_value=math.nan)).startswith("no test possible")


def test_pages_and_their_charts_are_written_and_escaped(tmp_path: Path) -> None:
    plain = dataclasses.replace(
        sample_result(name="Winter"), campaign="winter/../x y", variants=[], winner=None
    )
    pages = write_campaign_pages([sample_result(), plain], tmp_path / "report", currency="RUB")
    assert [p.name for p in pages] == ["campaign-spring_sale.html", "campaign-winter-x-y.html"]
    # self-contained: the pages alone, their charts inside them
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "campaign-spring_sale.html",
        "campaign-winter-x-y.html",
    ]
    page = pages[0].read_text(encoding="utf-8")
    for chart_id in CHART_IDS:
        found = re.search(rf'id="{chart_id}" src="data:image/png;base64,([^"]+)"', page)
        assert found is not None and base64.b64decode(found.group(1)).startswith(PNG_SIGNATURE)
    assert "<script>" not in page and "Spring &lt;script&gt;alert(1)&lt;/script&gt; &#34;sale&#34;" in page
    assert "http://" not in page and "https://" not in page
    embedded = render_campaign_page(sample_result(), currency="RUB")
    assert embedded.count('src="data:image/png;base64,') == 3
    assert "No A/B test" in pages[1].read_text(encoding="utf-8")


def test_browser_shows_the_verdict_figures_winner_and_charts(browser: WebDriver, tmp_path: Path) -> None:  # noqa: F811
    result = sample_result()
    pages = write_campaign_pages([result], tmp_path, currency="RUB")
    _open(browser, pages[0])
    assert browser.title == f"Campaign {HOSTILE}"
    for chart_id in CHART_IDS:
        assert _loaded_width(browser, chart_id) > 0, chart_id
    assert browser.find_element(By.ID, "verdict").text == "Paid off"
    assert "incremental ROI +52.2 %" in browser.find_element(By.ID, "verdict-money").text
    assert browser.find_element(By.ID, "audience").text == (
        "Audience 1,000 reachable customers: 800 treated, 200 in the control group (20.0 %)."
    )
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#figures thead th")]
    assert headers == ["Figure", "variant a", "variant b", "all treated", "control"]

    def row(figure: str) -> list[str]:
        cells = browser.find_elements(By.CSS_SELECTOR, f"#figure-{figure} td")
        return [cell.text for cell in cells]

    assert row("audience") == ["400", "400", "800", "200"]
    assert row("sent") == ["390", "395", "785", "0"]
    assert row("failed") == ["10", "5", "15", "0"]
    assert row("converted") == ["60", "30", "90", "10"]
    assert row("conversion-rate") == ["15.0 %", "7.5 %", "11.2 %", "5.0 %"]
    assert row("revenue") == ["6,000.00", "3,000.00", "9,000.00", "1,000.00"]
    assert row("actual-cost") == ["156.00", "158.00", "1,314.00", "0.00"]
    assert row("cost-per-response") == ["1.73", "3.16", "9.39", "—"]  # 156 / 90, 158 / 50, 1314 / 140
    assert row("roi") == ["+1438.5 %", "+659.5 %", "+174.0 %", "—"]  # (2400 - 156) / 156 ...
    uplift = browser.find_elements(By.CSS_SELECTOR, "#uplift tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in uplift] == [
        "conversion rate",
        "revenue per customer",
    ]
    assert "+6.2 pp" in uplift[0].text and "significant" in uplift[0].text
    winner = browser.find_element(By.ID, "winner-verdict").text
    assert winner.startswith("Variant a wins on conversion rate (p = ")
    assert "crm run spring_sale --winner" in browser.find_element(By.ID, "winner").text


def test_browser_shows_a_page_with_embedded_charts_and_no_test(browser: WebDriver, tmp_path: Path) -> None:  # noqa: F811
    result = dataclasses.replace(sample_result(name="Plain"), variants=[], winner=None)
    path = tmp_path / "plain.html"
    path.write_text(render_campaign_page(result, currency="EUR"), encoding="utf-8")
    _open(browser, path)
    for chart_id in CHART_IDS:
        assert _loaded_width(browser, chart_id) > 0, chart_id
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#figures thead th")]
    assert headers == ["Figure", "all treated", "control"]
    assert "No A/B test" in browser.find_element(By.ID, "winner").text
