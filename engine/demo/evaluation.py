"""The demo's evaluation: the weeks after the campaign day simulated, then did it pay off?

After the campaign day (:mod:`engine.demo.campaigns`) the demo lets time
pass: customers open and click the emails through the HTTP API's tracking
links, a few unsubscribe; the following days are sent as a worker would send
them (the winback's follow-up call goes to those who did not respond); the
call centre's outcomes come back as a file; the purchases of the following
weeks are imported. Then purchases are attributed to contacts and the
campaigns and the programme are evaluated, with an HTML report to open.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from engine.campaigns import load_campaigns
from engine.clock import local_instant
from engine.config import Config
from engine.customers.importing import PurchaseImportSummary, import_purchases
from engine.demo.campaigns import DemoCampaigns, simulate_sending_day
from engine.demo.responses import EmailResponses, answer_emails, write_call_outcomes, write_purchases
from engine.evaluation import (
    AttributionSummary,
    CampaignResult,
    Funnel,
    ProgrammeIndicators,
    attribute,
    campaign_report,
    lifecycle_funnel,
    programme_indicators,
    write_campaign_pages,
    write_overview,
)
from engine.responses import ResponseImportSummary, import_responses

#: the days after the campaign day that the demo sends (the winback's follow-up call waits 7 days)
FOLLOW_UP_DAYS = 7
#: how long after the campaign day the demo looks: the example campaigns' goal windows are 30 and 60 days
EVALUATED_DAYS = 30
CALL_CENTRE = "main"


@dataclass(frozen=True)
class DemoEvaluation:
    """What the simulated weeks recorded and what the evaluation found."""

    emails: EmailResponses
    calls: ResponseImportSummary
    purchases: PurchaseImportSummary
    attribution: AttributionSummary
    results: list[CampaignResult]
    indicators: ProgrammeIndicators
    funnel: Funnel
    as_of: dt.datetime
    html: Path


def evaluate_demo(
    engine: Engine, config: Config, campaigns: DemoCampaigns, day: dt.date, *, seed: int
) -> DemoEvaluation:
    """Simulate the weeks after ``day``'s campaigns and evaluate them."""
    rng = random.Random(seed)
    folder = config.path.parent
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    run_ids = [run.run_id for run in campaigns.runs]
    emails = answer_emails(engine, config, campaigns.maildir, rng)
    for offset in range(1, FOLLOW_UP_DAYS + 1):
        simulate_sending_day(engine, config, day + dt.timedelta(days=offset))
    settings = config.settings.engine
    call_file = folder / "call_outcomes.csv"
    write_call_outcomes(engine, config, run_ids, call_file, rng)
    known = load_campaigns(config)
    as_of = local_instant(day + dt.timedelta(days=EVALUATED_DAYS), dt.time(0), zone)
    calls = import_responses(
        engine,
        call_file,
        source="call_centre",
        settings=config.settings.responses,
        centre=CALL_CENTRE,
        campaigns=list(known),
        timezone=settings.timezone,
        default_region=settings.default_region,
        now=as_of,
    )
    windows = {key: file.campaign.goal.window_days for key, file in known.items()}
    purchase_file = folder / "purchases_after_campaigns.csv"
    write_purchases(engine, run_ids, windows, purchase_file, rng, as_of)
    purchases = import_purchases(
        engine,
        purchase_file,
        source="shop",
        currency=settings.currency,
        timezone=settings.timezone,
        default_region=settings.default_region,
        now=as_of,
    )
    attribution = attribute(engine, config, now=as_of)
    results = campaign_report(engine, config, attribute_first=False, now=as_of)
    indicators = programme_indicators(engine, config, periods=6, now=as_of)
    funnel = lifecycle_funnel(engine, config)
    report_folder = folder / "report"
    pages = write_campaign_pages(results, report_folder, currency=settings.currency)
    html = write_overview(engine, config, report_folder, pages, periods=6, now=as_of)
    return DemoEvaluation(emails, calls, purchases, attribution, results, indicators, funnel, as_of, html)
