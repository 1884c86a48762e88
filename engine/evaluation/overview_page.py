"""The overview of the programme as a static HTML page, ``index.html``, linking to the campaign pages.

:func:`write_overview` writes ``index.html`` into a folder (template
``engine/evaluation/templates/overview.html.j2``, jinja2 with autoescaping),
self-contained: its four charts (churn, revenue, funnel, migration; ``img``
tags with ids ``chart-churn``...) are inside it as ``data:`` URIs, so the page
survives being mailed or moved alone. The page shows the programme indicators of the last periods over
all customers, the current period per segment (its current members), the lifecycle funnel
against its targets, the segment migration over the report's window and a
link to each campaign page (``crm report html`` writes them first).
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import Engine

from engine.clock import utcnow
from engine.evaluation import programme_charts as charts
from engine.evaluation.funnel import Funnel, lifecycle_funnel
from engine.evaluation.indicators import IndicatorRow, ProgrammeIndicators, programme_indicators
from engine.evaluation.migration_matrix import MigrationMatrix, history_start, segment_migration
from engine.evaluation.programme_output import percent
from engine.reporting import format_count, format_money, png_data_uri, write_atomically

if TYPE_CHECKING:
    from engine.config import Config

TEMPLATE = "overview.html.j2"
INDEX = "index.html"
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class CampaignLink:
    """A campaign page as the overview links to it: its path relative to the folder and its title."""

    href: str
    title: str


@dataclass(frozen=True)
class ChartFile:
    """One chart of the page: ``file`` is where the ``img`` tag reads it (a ``data:`` URI when written)."""

    id: str
    file: str
    title: str
    alt: str


@dataclass(frozen=True)
class Overview:
    """Everything the overview shows."""

    indicators: ProgrammeIndicators
    by_segment: ProgrammeIndicators | None
    segment_period: str | None  # the period of the per-segment table: the current one
    funnel: Funnel
    migration: MigrationMatrix
    campaigns: list[CampaignLink]
    timezone: str
    generated_at: dt.datetime

    @property
    def headline(self) -> IndicatorRow | None:
        """The last complete period over all customers (the current one when it is the only one)."""
        rows = self.indicators.for_segment(None)
        complete = [row for row in rows if not row.period.partial]
        chosen = complete or rows
        return chosen[-1] if chosen else None

    def segment_rows(self) -> list[IndicatorRow]:
        """One row per segment, for the period of the per-segment table."""
        if self.by_segment is None:
            return []
        return [row for row in self.by_segment.rows if row.period.label == self.segment_period]


def campaign_link(folder: Path, page: Path) -> CampaignLink:
    """The link to ``page`` from ``folder``/index.html, titled with the page's ``<title>``."""
    href = Path(os.path.relpath(page.resolve(), folder.resolve())).as_posix()
    title = page.stem.removeprefix("campaign-")
    try:
        found = _TITLE.search(page.read_text(encoding="utf-8", errors="replace")[:4096])
    except OSError:
        found = None
    if found and found.group(1).strip():
        title = html.unescape(" ".join(found.group(1).split()))
    return CampaignLink(href=href, title=title)


def build_overview(
    engine: Engine,
    config: Config,
    folder: Path,
    campaign_pages: list[Path],
    *,
    periods: int = 12,
    now: dt.datetime | None = None,
    migration_from: dt.datetime | None = None,
) -> Overview:
    """Compute what the overview shows: indicators, per-segment figures, funnel, migration, links.

    The migration runs from ``migration_from`` (default: the start of the first
    period shown) to ``now``.
    """
    now = now or utcnow()
    indicators = programme_indicators(engine, config, periods=periods, now=now)
    by_segment = None
    segment_period = None
    if config.settings.segments:  # the current period: its members are the segments' current members
        by_segment = programme_indicators(engine, config, periods=1, by_segment=True, now=now)
        segment_period = by_segment.periods[-1].label
    start = migration_from or indicators.periods[0].start_at
    if migration_from is None:  # from a time segment history covers, not before its first refresh
        covered = history_start(engine)
        if covered is not None and covered > start:
            start = covered
    return Overview(
        indicators=indicators,
        by_segment=by_segment,
        segment_period=segment_period,
        funnel=lifecycle_funnel(engine, config),
        migration=segment_migration(engine, config, min(start, now), now),
        campaigns=[campaign_link(folder, page) for page in campaign_pages],
        timezone=config.settings.engine.timezone,
        generated_at=now,
    )


def _charts(overview: Overview) -> list[tuple[ChartFile, bytes]]:
    report = overview.indicators
    currency = report.currency
    return [
        (
            ChartFile("chart-churn", "overview-churn.png", "Churn rate",
                      f"Line chart: churn rate per {report.period_kind}"),
            charts.churn_chart(report),
        ),
        (
            ChartFile("chart-revenue", "overview-revenue.png", "Revenue and profit per customer",
                      f"Line chart: revenue and profit per customer in {currency} per {report.period_kind}"),
            charts.revenue_chart(report),
        ),
        (
            ChartFile("chart-funnel", "overview-funnel.png", "Lifecycle funnel",
                      "Bar chart: conversion of each lifecycle stage, actual against target"),
            charts.funnel_chart(overview.funnel),
        ),
        (
            ChartFile("chart-migration", "overview-migration.png", "Segment migration",
                      "Heatmap: customers by segment at the start (rows) and now (columns)"),
            charts.migration_chart(overview.migration),
        ),
    ]  # fmt: skip


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(value: Any) -> str:
    return format_money(value)


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("engine.evaluation", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = _money
    environment.filters["count"] = format_count
    environment.filters["percent"] = percent
    environment.filters["utc"] = _utc
    return environment


def render_overview(overview: Overview, chart_files: list[ChartFile]) -> str:
    """The HTML of the overview page, the charts referred to by file name."""
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            overview=overview,
            report=overview.indicators,
            headline=overview.headline,
            funnel=overview.funnel,
            migration=overview.migration,
            charts=chart_files,
        )
    )


def write_overview(
    engine: Engine,
    config: Config,
    folder: Path,
    campaign_pages: list[Path],
    *,
    periods: int = 12,
    now: dt.datetime | None = None,
) -> Path:
    """Write ``folder``/index.html, its charts inside it (``data:`` URIs); return the page's path.

    Example::

        pages = write_campaign_pages(campaign_report(engine, config), folder, currency="RUB")
        write_overview(engine, config, folder, pages)  # folder/index.html
    """
    folder.mkdir(parents=True, exist_ok=True)
    overview = build_overview(engine, config, folder, campaign_pages, periods=periods, now=now)
    files = [replace(chart, file=png_data_uri(png)) for chart, png in _charts(overview)]
    return write_atomically(folder / INDEX, render_overview(overview, files).encode("utf-8"))
