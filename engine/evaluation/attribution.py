"""Attribution: which contact (or control-group assignment) each purchase counts for.

An **exposure** is one customer in one campaign run, at one moment:

* *treated*: the customer's first contacted outbox row of the run (state
  ``sent``, ``delivered`` or ``bounced``), at its ``sent_at``;
* *control*: the customer's step-0 row in state ``control``, at its
  ``scheduled_at``: the moment the customer would have been contacted.

Its **window** is ``[exposure, exposure + window_days x 24 h)`` with the
``goal.window_days`` of the run's campaign file (30 days when the file no
longer exists: :attr:`AttributionSummary.campaigns_without_file` names them).

A **purchase** (``amount > 0``, not a refund, ordered at or before ``now``)
inside the windows of several exposures of its customer counts for one of
them: the latest exposure before it (``[evaluation].attribution =
"last_touch"``) or the earliest (``"first_touch"``); ties go to the higher
(last touch) or lower (first touch) outbox id. Control exposures compete
under the same rule as contacts, so a customer who is in one campaign's
control group and contacted by another is treated alike in both groups.

Its **revenue** is the amount net of its refunds (those ordered at or before
``now``); a purchase refunded in full is no conversion. Its **margin** is the
purchase's margin net of each refund's own margin, or, when a refund has
none, of the refunded share of the purchase's margin
(``ROUND(margin x refund / amount, 2)``); a purchase without a margin has
none (NULL: it adds nothing to margin sums).

:func:`attribute` rebuilds the ``conversion`` table from scratch in one
transaction (a delete and one ``INSERT ... SELECT``; on PostgreSQL the table
is locked against a concurrent rebuild, not against readers): running it
twice gives the same rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    String,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.sql import Subquery

from engine.budget import RAN_STATES
from engine.campaigns import load_campaigns
from engine.clock import utcnow
from engine.config import Config
from engine.models import CONVERSION, OUTBOX, PURCHASE, RUN
from engine.models import outbox as states
from engine.models import response as kinds
from engine.sql import PlusDays, UtcDateTime, lock_table

#: the goal window of runs whose campaign file no longer exists
DEFAULT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Windows:
    """The goal window of each campaign, in days; ``missing`` campaigns get the default."""

    days: dict[str, int]
    default: int = DEFAULT_WINDOW_DAYS

    def of(self, key: str) -> int:
        """The window of campaign ``key``."""
        return self.days.get(key, self.default)

    def expression(self, campaign: ColumnElement[Any]) -> ColumnElement[Any]:
        """The window of the campaign named by ``campaign``, in SQL."""
        if not self.days:
            return literal(self.default, Integer())
        return case(
            {key: literal(days, Integer()) for key, days in self.days.items()},
            value=campaign,
            else_=literal(self.default, Integer()),
        )


def goal_windows(config: Config) -> Windows:
    """The ``goal.window_days`` of every campaign file (a bad file raises ``ConfigErrors``)."""
    return Windows({key: f.campaign.goal.window_days for key, f in load_campaigns(config).items()})


def exposures(windows: Windows) -> Subquery:
    """Every exposure (see the module docstring), one row per run and customer.

    Columns: ``outbox_id``, ``run_id``, ``campaign``, ``variant`` (NULL for
    control), ``grp`` (``treated`` | ``control``), ``customer_id``,
    ``exposed_at``, ``window_end``.
    """
    ranked = (
        select(
            OUTBOX.c.id,
            OUTBOX.c.run_id,
            OUTBOX.c.customer_id,
            OUTBOX.c.variant,
            OUTBOX.c.sent_at,
            func.row_number()
            .over(
                partition_by=(OUTBOX.c.run_id, OUTBOX.c.customer_id),
                order_by=(OUTBOX.c.sent_at, OUTBOX.c.step, OUTBOX.c.id),
            )
            .label("nth"),
        )
        .where(OUTBOX.c.state.in_(states.CONTACTED_STATES), OUTBOX.c.sent_at.is_not(None))
        .subquery("contacted")
    )
    treated = select(
        ranked.c.id.label("outbox_id"),
        ranked.c.run_id,
        ranked.c.customer_id,
        ranked.c.variant,
        literal(kinds.TREATED, String()).label("grp"),
        ranked.c.sent_at.label("exposed_at"),
    ).where(ranked.c.nth == 1)
    control = select(
        OUTBOX.c.id.label("outbox_id"),
        OUTBOX.c.run_id,
        OUTBOX.c.customer_id,
        null().label("variant"),
        literal(kinds.CONTROL, String()).label("grp"),
        OUTBOX.c.scheduled_at.label("exposed_at"),
    ).where(OUTBOX.c.step == 0, OUTBOX.c.state == states.CONTROL)
    both = union_all(treated, control).subquery("exposure_rows")
    return (
        select(
            both.c.outbox_id,
            both.c.run_id,
            RUN.c.campaign,
            both.c.variant,
            both.c.grp,
            both.c.customer_id,
            both.c.exposed_at,
            PlusDays(both.c.exposed_at, windows.expression(RUN.c.campaign)).label("window_end"),
        )
        .select_from(both.join(RUN, RUN.c.id == both.c.run_id))
        .subquery("exposure")
    )


def net_of_refunds(now: dt.datetime) -> Subquery:
    """Per refunded purchase: the refunded amount and margin (negative), refunds ordered by ``now``."""
    refund = PURCHASE.alias("refund")
    original = PURCHASE.alias("refunded")
    share = func.round(original.c.margin * refund.c.amount / original.c.amount, 2)
    return (
        select(
            refund.c.refund_of_id.label("purchase_id"),
            func.sum(refund.c.amount).label("amount"),
            func.sum(func.coalesce(refund.c.margin, share)).label("margin"),
        )
        .select_from(refund.join(original, original.c.id == refund.c.refund_of_id))
        .where(refund.c.ordered_at <= literal(now, UtcDateTime()))
        .group_by(refund.c.refund_of_id)
        .subquery("refunds")
    )


def attributed(windows: Windows, model: str, now: dt.datetime) -> Any:
    """The conversions as a SELECT: one row per purchase, with the exposure it counts for."""
    exposure = exposures(windows)
    refunds = net_of_refunds(now)
    revenue = PURCHASE.c.amount + func.coalesce(refunds.c.amount, 0)
    margin = PURCHASE.c.margin + func.coalesce(refunds.c.margin, 0)
    if model == "first_touch":
        order: tuple[Any, ...] = (exposure.c.exposed_at, exposure.c.outbox_id)
    else:
        order = (exposure.c.exposed_at.desc(), exposure.c.outbox_id.desc())
    candidates = (
        select(
            PURCHASE.c.id.label("purchase_id"),
            exposure.c.outbox_id,
            exposure.c.run_id,
            exposure.c.campaign,
            exposure.c.variant,
            exposure.c.grp,
            exposure.c.customer_id,
            exposure.c.exposed_at,
            PURCHASE.c.ordered_at,
            revenue.label("revenue"),
            margin.label("margin"),
            func.row_number().over(partition_by=PURCHASE.c.id, order_by=order).label("nth"),
        )
        .select_from(
            exposure.join(
                PURCHASE,
                and_(
                    PURCHASE.c.customer_id == exposure.c.customer_id,
                    PURCHASE.c.ordered_at >= exposure.c.exposed_at,
                    PURCHASE.c.ordered_at < exposure.c.window_end,
                ),
            ).outerjoin(refunds, refunds.c.purchase_id == PURCHASE.c.id)
        )
        .where(
            PURCHASE.c.amount > 0,
            PURCHASE.c.refund_of_id.is_(None),
            PURCHASE.c.ordered_at <= literal(now, UtcDateTime()),
            revenue > 0,
        )
        .subquery("candidates")
    )
    return select(
        candidates.c.purchase_id,
        candidates.c.outbox_id,
        candidates.c.run_id,
        candidates.c.campaign,
        candidates.c.variant,
        candidates.c.grp,
        candidates.c.customer_id,
        candidates.c.exposed_at,
        candidates.c.ordered_at,
        candidates.c.revenue,
        candidates.c.margin,
        literal(model, String()),
        literal(now, UtcDateTime()),
    ).where(candidates.c.nth == 1)


@dataclass(frozen=True)
class AttributionSummary:
    """What :func:`attribute` wrote: conversions per group and their money."""

    model: str
    attributed_at: dt.datetime
    conversions: int
    treated: int
    control: int
    revenue: Decimal
    margin: Decimal
    campaigns_without_file: list[str] = field(default_factory=list)  # their runs got the default window


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def attribute(engine: Engine, config: Config, *, now: dt.datetime | None = None) -> AttributionSummary:
    """Rebuild ``conversion`` from the outbox and purchases as of ``now`` (default: the current time).

    One transaction: the old rows go and the new ones are inserted by one
    ``INSERT ... SELECT`` under ``[evaluation].attribution``; idempotent.
    """
    now = now or utcnow()
    model = config.settings.evaluation.attribution
    windows = goal_windows(config)
    columns = [
        "purchase_id", "outbox_id", "run_id", "campaign", "variant", "group", "customer_id",
        "contact_at", "ordered_at", "revenue", "margin", "model", "attributed_at",
    ]  # fmt: skip
    with engine.begin() as connection:
        lock_table(connection, CONVERSION)  # one rebuild at a time; readers are not blocked
        connection.execute(delete(CONVERSION))
        connection.execute(insert(CONVERSION).from_select(columns, attributed(windows, model, now)))
        rows = connection.execute(
            select(
                CONVERSION.c.group,
                func.count(),
                func.sum(CONVERSION.c.revenue),
                func.sum(CONVERSION.c.margin),
            ).group_by(CONVERSION.c.group)
        ).all()
        ran = (
            connection.execute(select(RUN.c.campaign).where(RUN.c.state.in_(RAN_STATES)).distinct())
            .scalars()
            .all()
        )
    counts = {group: count for group, count, _, _ in rows}
    return AttributionSummary(
        model=model,
        attributed_at=now,
        conversions=sum(counts.values()),
        treated=counts.get(kinds.TREATED, 0),
        control=counts.get(kinds.CONTROL, 0),
        revenue=sum((_money(revenue) for _, _, revenue, _ in rows), Decimal(0)),
        margin=sum((_money(margin) for _, _, _, margin in rows), Decimal(0)),
        campaigns_without_file=sorted(key for key in ran if key not in windows.days),
    )
