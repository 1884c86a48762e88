"""Campaign results: what each campaign and variant did, its uplift over control, and whether it paid off.

:func:`campaign_report` attributes purchases first (by default), then reads
every figure with a handful of SQL aggregates
(:mod:`engine.evaluation.campaign_figures_sql`, which defines each count)
and assembles one :class:`~engine.evaluation.figures.CampaignResult` per
campaign, over all of its runs:

* ``control``: the control group; ``treated``: all variants together;
  ``variants``: each variant (empty when the campaign has none);
* money: ``revenue`` and ``margin`` are sums of the ``conversion`` rows;
  ``actual_cost`` = contacted rows x unit cost x contacts (as recorded), plus
  for ``treated`` the preparation cost of the campaign's first run (a
  variant's cost is its contacts only); ROI = (margin - cost) / cost;
* ``uplift``: treated against control (:func:`engine.evaluation.uplift.uplift`);
* ``incremental_revenue`` = (revenue per treated customer - revenue per
  control customer) x treated audience; ``incremental_margin`` likewise
  (:func:`engine.evaluation.uplift.incremental`);
  ``incremental_roi`` = (incremental margin - treated actual cost) / that cost;
* ``winner``: :func:`engine.evaluation.ab_test.pick_winner` with two variants or more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from sqlalchemy import Engine

from engine.campaigns import CampaignFile, load_campaigns
from engine.clock import utcnow
from engine.config import Config
from engine.errors import NotFoundError
from engine.evaluation import campaign_figures_sql as figures_sql
from engine.evaluation.ab_test import pick_winner
from engine.evaluation.attribution import DEFAULT_WINDOW_DAYS, Windows, attribute
from engine.evaluation.campaign_figures_sql import ContactCounts, ConversionSums
from engine.evaluation.figures import CampaignResult, GroupFigures
from engine.evaluation.uplift import incremental, uplift
from engine.models import response as kinds

NO_VARIANT = "(no variant)"
CENT = Decimal("0.01")


def _group(
    name: str,
    audience: int,
    contacts: ContactCounts,
    conversions: ConversionSums,
    retained: int,
    cost: Decimal,
) -> GroupFigures:
    return GroupFigures(
        name=name,
        audience=audience,
        sent=contacts.sent,
        delivered=contacts.delivered,
        failed=contacts.failed,
        opened=contacts.opened,
        clicked=contacts.clicked,
        responded=contacts.responded,
        converted=conversions.converted,
        purchases=conversions.purchases,
        revenue=conversions.revenue,
        margin=conversions.margin,
        actual_cost=cost,
        revenue_sum_squares=conversions.revenue_sum_squares,
        responders=contacts.responders,
        retained=retained,
    )


def _total(name: str, groups: Sequence[GroupFigures], extra_cost: Decimal) -> GroupFigures:
    def total(attribute: str) -> int:
        return sum(int(getattr(g, attribute)) for g in groups)

    def amount(attribute: str) -> Decimal:
        return sum((getattr(g, attribute) for g in groups), Decimal(0))

    return GroupFigures(
        name=name,
        audience=total("audience"),
        sent=total("sent"),
        delivered=total("delivered"),
        failed=total("failed"),
        opened=total("opened"),
        clicked=total("clicked"),
        responded=total("responded"),
        converted=total("converted"),
        purchases=total("purchases"),
        revenue=amount("revenue"),
        margin=amount("margin"),
        actual_cost=amount("actual_cost") + extra_cost,
        revenue_sum_squares=amount("revenue_sum_squares"),
        responders=total("responders"),
        retained=total("retained"),
    )


def _variant_order(found: Sequence[str | None], campaign: CampaignFile | None) -> list[str | None]:
    declared = [v.name for v in campaign.campaign.variants] if campaign else []
    rest = sorted((v for v in found if v not in declared), key=lambda v: (v is None, v or ""))
    return [v for v in declared if v in found] + rest


class _Figures:
    """The aggregates of every chosen campaign, read once."""

    def __init__(self, engine: Engine, keys: Sequence[str], windows: Windows, now: dt.datetime) -> None:
        with engine.connect() as connection:
            self.runs = figures_sql.run_counts(connection, keys)
            self.audience = figures_sql.audience_counts(connection, keys)
            self.contacts = figures_sql.contact_counts(connection, keys)
            self.conversions = figures_sql.conversion_sums(connection, keys)
            self.retained = figures_sql.retained_counts(connection, keys, windows, now)
            self.preparation = figures_sql.preparation_costs(connection, keys)
            self.last_runs = figures_sql.last_runs(connection, keys)
        self.now = now

    def group(self, key: str, grp: str, variant: str | None, name: str) -> GroupFigures:
        contacts = (
            self.contacts.get((key, variant), ContactCounts()) if grp == kinds.TREATED else ContactCounts()
        )
        return _group(
            name,
            self.audience.get((key, grp, variant), 0),
            contacts,
            self.conversions.get((key, grp, variant), ConversionSums()),
            self.retained.get((key, grp, variant), 0),
            contacts.cost,
        )

    def variants(self, key: str) -> list[str | None]:
        found = {v for (k, grp, v) in self.audience if k == key and grp == kinds.TREATED}
        found |= {v for (k, v) in self.contacts if k == key}
        found |= {v for (k, grp, v) in self.conversions if k == key and grp == kinds.TREATED}
        return list(found)


def _result(key: str, campaign: CampaignFile | None, data: _Figures, confidence: float) -> CampaignResult:
    goal = campaign.campaign.goal if campaign else None
    goal_metric = goal.metric if goal else "conversion"
    control = data.group(key, kinds.CONTROL, None, kinds.CONTROL)
    order = _variant_order(data.variants(key), campaign)
    arms = [data.group(key, kinds.TREATED, v, v if v is not None else NO_VARIANT) for v in order]
    treated = _total(kinds.TREATED, arms, data.preparation.get(key, Decimal(0)))
    named = any(v is not None for v in order)
    result = CampaignResult(
        campaign=key,
        name=campaign.campaign.name if campaign else key,
        goal_metric=goal_metric,
        window_days=goal.window_days if goal else DEFAULT_WINDOW_DAYS,
        runs=data.runs.get(key, 0),
        control=control,
        treated=treated,
        variants=arms if named else [],
        uplift=uplift(treated, control, goal_metric, confidence),
        as_of=data.now,
        channels=tuple(dict.fromkeys(step.channel for step in campaign.campaign.steps)) if campaign else (),
    )
    last = data.last_runs.get(key)
    if last is not None:
        result = replace(result, window_closes_at=last + dt.timedelta(days=result.window_days))
    if treated.audience and control.audience:
        revenue = incremental(treated, control, "revenue")
        margin = incremental(treated, control, "margin")
        cost = treated.actual_cost
        roi = ((margin - cost) / cost).quantize(Decimal("0.0001")) if cost else None
        result = replace(result, incremental_revenue=revenue, incremental_margin=margin, incremental_roi=roi)
    if len(result.variants) >= 2:
        result = replace(result, winner=pick_winner(result, confidence))
    return result


def campaign_report(
    engine: Engine,
    config: Config,
    campaigns: Sequence[str] | None = None,
    *,
    attribute_first: bool = True,
    now: dt.datetime | None = None,
) -> list[CampaignResult]:
    """The results of ``campaigns`` (keys; default: every campaign that ran), in that order.

    ``attribute_first`` rebuilds the conversions as of ``now`` (default: the
    current time) before reading them; without it the report reads the
    ``conversion`` rows as they are. An unknown key (no run, no file) raises
    :class:`~engine.errors.NotFoundError`; a bad campaign file ``ConfigErrors``.
    """
    now = now or utcnow()
    files = load_campaigns(config)
    if attribute_first:
        attribute(engine, config, now=now)
    if campaigns is None:
        with engine.connect() as connection:
            keys = sorted(figures_sql.run_counts(connection))
    else:
        keys = list(dict.fromkeys(campaigns))
        if keys:
            with engine.connect() as connection:
                ran = figures_sql.run_counts(connection)
            for key in keys:
                if key not in ran and key not in files:
                    raise NotFoundError("campaign", key, sorted(set(ran) | set(files)))
    if not keys:
        return []
    windows = Windows({key: f.campaign.goal.window_days for key, f in files.items()})
    data = _Figures(engine, keys, windows, now)
    confidence = float(config.settings.evaluation.confidence)
    return [_result(key, files.get(key), data, confidence) for key in keys]
