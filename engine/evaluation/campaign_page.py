"""One static HTML page per campaign: did it pay off, every figure per group, uplift, the A/B winner, charts.

:func:`write_campaign_pages` writes ``campaign-<key>.html`` for each result,
self-contained: its three charts (conversion, revenue, funnel, from
:mod:`engine.evaluation.campaign_charts`) are inside it as ``data:`` URIs, so
the page survives being mailed alone.
The template is ``engine/evaluation/templates/campaign.html.j2``, rendered by
jinja2 with autoescaping: campaign and variant names are text, never markup.
Every number is a figure of :class:`~engine.evaluation.figures.CampaignResult`,
formatted, never recomputed, but for the charts' per-group intervals.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from engine.clock import utcnow
from engine.evaluation.campaign_charts import (
    DEFAULT_CONFIDENCE,
    conversion_chart,
    funnel_chart,
    group_label,
    revenue_chart,
)
from engine.evaluation.figures import CampaignResult, Comparison, GroupFigures
from engine.evaluation.statistics import chance_text, p_value_text
from engine.evaluation.uplift import (
    CONVERSION_RATE,
    GOAL_METRICS,
    RESPONDER_RATE,
    RETENTION_RATE,
    REVENUE_PER_CUSTOMER,
)
from engine.reporting import Chart, format_count, format_money, png_data_uri, write_atomically

TEMPLATE = "campaign.html.j2"
METRIC_NAMES = {
    RESPONDER_RATE: "responder rate",
    CONVERSION_RATE: "conversion rate",
    RETENTION_RATE: "retention rate",
    REVENUE_PER_CUSTOMER: "revenue per customer",
}


@dataclass(frozen=True)
class FigureRow:
    """One line of the figures table: a label and the value of each group, formatted."""

    id: str
    label: str
    values: list[str]


@dataclass(frozen=True)
class UpliftRow:
    """One comparison of treated against control, formatted, with the p-value in words."""

    metric: str
    treated: str
    control: str
    difference: str
    interval: str
    relative: str
    relative_interval: str
    p_value: str
    significant: bool
    words: str


@dataclass(frozen=True)
class Headline:
    """Did it pay off: a verdict, its CSS class, and the sentences that back it."""

    verdict: str
    css: str
    money: str
    uplift: str | None


def page_name(key: str) -> str:
    """The file name stem of campaign ``key``'s page: ``campaign-<key>`` with unsafe characters as ``-``."""
    return "campaign-" + re.sub(r"[^A-Za-z0-9_-]+", "-", key)


def _percent(value: float | Decimal | None, *, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value) * 100:{'+' if signed else ''}.1f} %"


def _value(metric: str, value: float, currency: str, *, signed: bool = False) -> str:
    """A rate in percent (a difference in percentage points), revenue per customer as money."""
    if math.isnan(value):
        return "—"
    sign = "+" if signed else ""
    if metric == REVENUE_PER_CUSTOMER:
        return f"{value:{sign},.2f} {currency}"
    return f"{value * 100:{sign}.1f}" + (" pp" if signed else " %")


def _interval(metric: str, low: float, high: float, currency: str) -> str:
    if math.isnan(low) or math.isnan(high):
        return "—"
    if metric == REVENUE_PER_CUSTOMER:
        return f"{low:+,.2f} to {high:+,.2f} {currency}"
    return f"{low * 100:+.1f} to {high * 100:+.1f} pp"


def p_in_words(comparison: Comparison) -> str:
    """The p-value of ``comparison`` and what it means, in one sentence."""
    level = f"{comparison.confidence * 100:g} %"
    p = comparison.p_value
    if math.isnan(p):
        return "no test possible: neither group varies (everyone or no one, in both)"
    chance = chance_text(p)
    meaning = f"with no real effect, a difference this large would turn up by chance {chance} of the time"
    shown = p_value_text(p)
    shown = f"p {shown}" if shown.startswith("<") else f"p = {shown}"
    if comparison.significant:
        return f"{shown}: significant at the {level} level ({meaning})"
    return f"{shown}: not significant at the {level} level ({meaning}); it may be chance"


def _uplift_rows(result: CampaignResult, currency: str) -> list[UpliftRow]:
    rows = []
    for c in result.uplift:
        relative = "—" if c.relative is None else _percent(c.relative, signed=True)
        relative_interval = (
            "—"
            if c.relative_low is None or c.relative_high is None
            else f"{c.relative_low * 100:+.1f} to {c.relative_high * 100:+.1f} %"
        )
        rows.append(
            UpliftRow(
                metric=METRIC_NAMES.get(c.metric, c.metric),
                treated=_value(c.metric, c.treated, currency),
                control=_value(c.metric, c.control, currency),
                difference=_value(c.metric, c.difference, currency, signed=True),
                interval=_interval(c.metric, c.low, c.high, currency),
                relative=relative,
                relative_interval=relative_interval,
                p_value="—" if math.isnan(c.p_value) else p_value_text(c.p_value),
                significant=c.significant,
                words=p_in_words(c),
            )
        )
    return rows


def headline_comparison(result: CampaignResult) -> Comparison | None:
    """The comparison the verdict quotes: the goal's metric, else conversion, else the first one."""
    by_metric = {c.metric: c for c in result.uplift}
    goal = GOAL_METRICS.get(result.goal_metric)
    for metric in (goal, CONVERSION_RATE):
        if metric in by_metric:
            return by_metric[metric]
    return result.uplift[0] if result.uplift else None


def headline(result: CampaignResult, currency: str) -> Headline:
    """Did the campaign pay off: incremental margin against its cost, and the uplift on its goal."""
    comparison = headline_comparison(result)
    uplift = None
    if comparison is not None:
        name = METRIC_NAMES.get(comparison.metric, comparison.metric)
        metric = comparison.metric
        uplift = (
            f"{name.capitalize()}: {_value(metric, comparison.treated, currency)} treated against "
            f"{_value(metric, comparison.control, currency)} in control, "
            f"{_value(metric, comparison.difference, currency, signed=True)} "
            f"({comparison.confidence * 100:g} % confidence interval "
            f"{_interval(metric, comparison.low, comparison.high, currency)}); {p_in_words(comparison)}."
        )
    cost = result.treated.actual_cost
    note = result.window_note()
    if note is not None:
        return Headline("Window open", "muted", f"Goal {note}.", uplift)
    if not result.control.audience:
        return Headline(
            "Cannot tell",
            "muted",
            "No control group: there is nothing to measure the uplift against.",
            uplift,
        )
    if result.incremental_roi is None or result.incremental_margin is None:
        revenue = format_money(result.incremental_revenue)
        return Headline(
            "Cannot tell", "muted", f"Incremental revenue {revenue} {currency}; no cost recorded yet.", uplift
        )
    money = (
        f"Incremental revenue {format_money(result.incremental_revenue)} {currency} and incremental margin "
        f"{format_money(result.incremental_margin)} {currency} against {format_money(cost)} {currency} "
        f"spent: incremental ROI {_percent(result.incremental_roi, signed=True)}."
    )
    if result.incremental_roi <= 0:
        return Headline("Did not pay off", "over", money, uplift)
    if comparison is not None and not comparison.significant:
        return Headline("Paid off, but not significantly", "muted", money, uplift)
    return Headline("Paid off", "ok", money, uplift)


def _groups(result: CampaignResult) -> list[GroupFigures]:
    """The table's columns: each variant, all treated, control."""
    return [*result.variants, result.treated, result.control]


#: the figures table: id, label, how to format a group's value
FIGURES: tuple[tuple[str, str, Callable[[GroupFigures], Any]], ...] = (
    ("audience", "Audience (customers)", lambda g: format_count(g.audience)),
    ("sent", "Sent", lambda g: format_count(g.sent)),
    ("delivered", "Delivered", lambda g: format_count(g.delivered)),
    ("failed", "Failed", lambda g: format_count(g.failed)),
    ("opened", "Opened", lambda g: format_count(g.opened)),
    ("clicked", "Clicked", lambda g: format_count(g.clicked)),
    ("responded", "Responded", lambda g: format_count(g.responded)),
    ("response-rate", "Response rate (of sent)", lambda g: _percent(g.response_rate)),
    ("converted", "Converted (customers)", lambda g: format_count(g.converted)),
    ("conversion-rate", "Conversion rate (of audience)", lambda g: _percent(g.conversion_rate)),
    ("purchases", "Purchases", lambda g: format_count(g.purchases)),
    ("revenue", "Revenue", lambda g: format_money(g.revenue)),
    ("revenue-per-customer", "Revenue per customer", lambda g: format_money(g.revenue_per_customer)),
    ("margin", "Margin", lambda g: format_money(g.margin)),
    ("actual-cost", "Actual cost", lambda g: format_money(g.actual_cost)),
    ("cost-per-response", "Cost per response", lambda g: format_money(g.cost_per_response)),
    ("roi", "ROI ((margin − cost) / cost)", lambda g: _percent(g.roi, signed=True)),
)


def figure_rows(result: CampaignResult) -> list[FigureRow]:
    groups = _groups(result)
    return [
        FigureRow(key, label, [str(value(g)) for g in groups])
        for key, label, value in FIGURES
        if result.shows(key)
    ]


def confidence_of(result: CampaignResult) -> float:
    """The confidence level of the result's comparisons (the default when it has none)."""
    return result.uplift[0].confidence if result.uplift else DEFAULT_CONFIDENCE


def chart_pngs(result: CampaignResult, currency: str) -> list[tuple[str, str, str, bytes]]:
    """(id, title, alt text, PNG) of each chart of ``result``."""
    confidence = confidence_of(result)
    level = f"{confidence * 100:g} %"
    return [
        (
            "chart-conversion",
            "Conversion rate by group",
            f"Bar chart: conversion rate of control and each treated group with {level} intervals",
            conversion_chart(result, confidence),
        ),
        (
            "chart-revenue",
            "Revenue per customer by group",
            f"Bar chart: revenue per customer in {currency} of each group with {level} intervals",
            revenue_chart(result, currency, confidence),
        ),
        (
            "chart-funnel",
            "Funnel",
            "Bar chart: contacts sent, opened, clicked and customers converted per variant",
            funnel_chart(result),
        ),
    ]


def _context(
    result: CampaignResult, currency: str, charts: Sequence[Chart], generated_at: dt.datetime
) -> dict[str, Any]:
    groups = _groups(result)
    treated, control = result.treated.audience, result.control.audience
    reached = treated + control
    return {
        "result": result,
        "currency": currency,
        "generated_at": generated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "headline": headline(result, currency),
        "reached": format_count(reached),
        "treated_count": format_count(treated),
        "control_count": format_count(control),
        "control_share": _percent(control / reached if reached else None),
        "goal": METRIC_NAMES.get(GOAL_METRICS.get(result.goal_metric, ""), result.goal_metric),
        "columns": [group_label(result, g) for g in groups],
        "figure_rows": figure_rows(result),
        "uplift_rows": _uplift_rows(result, currency),
        "winner": result.winner,
        "winner_p": None
        if result.winner is None or result.winner.p_value is None
        else p_value_text(result.winner.p_value),
        "winner_metric": None
        if result.winner is None
        else METRIC_NAMES.get(result.winner.metric, result.winner.metric),
        "charts": list(charts),
    }


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("engine.evaluation", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_campaign_page(
    result: CampaignResult,
    *,
    currency: str,
    charts: Sequence[Chart] | None = None,
    generated_at: dt.datetime | None = None,
) -> str:
    """The HTML page of ``result``; ``charts`` as given (e.g. files beside the page), else embedded."""
    if charts is None:
        charts = [
            Chart(i, title, alt, png_data_uri(png)) for i, title, alt, png in chart_pngs(result, currency)
        ]
    context = _context(result, currency, charts, generated_at or utcnow())
    return _environment().get_template(TEMPLATE).render(context)


def write_campaign_pages(results: list[CampaignResult], folder: Path, *, currency: str) -> list[Path]:
    """Write ``campaign-<key>.html`` into ``folder`` for each result; the pages' paths.

    Each page is self-contained: its charts are inside it (``data:`` URIs), so
    a page survives being mailed or moved alone.

    Example::

        pages = write_campaign_pages(campaign_report(engine, config), Path("report"), currency="RUB")
    """
    folder.mkdir(parents=True, exist_ok=True)
    generated_at = utcnow()
    pages = []
    for result in results:
        stem = page_name(result.campaign)
        page = render_campaign_page(result, currency=currency, generated_at=generated_at)
        pages.append(write_atomically(folder / f"{stem}.html", page.encode("utf-8")))
    return pages
