"""Attribution on both databases: windows, last and first touch, control exposures, refunds, idempotence."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import Engine, delete, select

from engine.evaluation.attribution import AttributionSummary, attribute
from engine.models import outbox as states
from engine.models.tables import CONVERSION, PURCHASE
from tests.evaluation.campaign_scenario import AFTER, NOON, OUTBOX, SENT, SUMMER_SENT, World, build, d


def conversions(db: Engine) -> dict[tuple[int, Decimal], tuple[str, str, str | None, Decimal | None]]:
    """(customer, amount of the purchase) -> (campaign, group, variant, margin) of each conversion row."""
    with db.connect() as connection:
        rows = connection.execute(
            select(
                CONVERSION.c.customer_id,
                CONVERSION.c.revenue,
                CONVERSION.c.campaign,
                CONVERSION.c.group,
                CONVERSION.c.variant,
                CONVERSION.c.margin,
            )
        ).all()
    return {
        (c, revenue): (campaign, group, variant, margin)
        for c, revenue, campaign, group, variant, margin in rows
    }


def expected(
    world: World, *, last_touch: bool
) -> dict[tuple[int, Decimal], tuple[str, str, str | None, Decimal | None]]:
    a1, a2 = world.a[:2]
    b2, b3 = world.b[1:3]
    c1, c2, c3 = world.control[:3]
    rows = {
        (a1, Decimal("100.00")): ("spring", "treated", "a", Decimal("30.00")),
        (a1, Decimal("50.00")): ("spring", "treated", "a", Decimal("15.00")),
        (a2, Decimal("200.00")): ("spring", "treated", "a", Decimal("60.00")),  # 90 - 90 x 100/300
        (b3, Decimal("300.00")): ("spring", "treated", "b", Decimal("60.00")),  # 100 - 40 (its own margin)
        (c1, Decimal("60.00")): ("spring", "control", None, Decimal("20.00")),
        (c2, Decimal("10.00")): ("spring", "control", None, None),
    }
    if last_touch:
        rows[(b2, Decimal("70.00"))] = ("summer", "treated", None, None)
        rows[(c3, Decimal("120.00"))] = ("summer", "treated", None, Decimal("40.00"))
    else:
        rows[(b2, Decimal("70.00"))] = ("spring", "treated", "b", None)
        rows[(c3, Decimal("120.00"))] = ("spring", "control", None, Decimal("40.00"))
    return rows


@pytest.mark.parametrize("model", ["last_touch", "first_touch"])
def test_each_purchase_counts_once_for_the_exposure_the_model_picks(
    db, write_config, tmp_path, model: str
) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path, attribution=model)
    summary = attribute(db, world.config, now=AFTER)
    want = expected(world, last_touch=model == "last_touch")
    assert conversions(db) == want
    assert summary.model == model and summary.conversions == len(want) == 8
    assert summary.control == sum(1 for v in want.values() if v[1] == "control")
    assert summary.treated == summary.conversions - summary.control
    assert summary.revenue == sum((amount for _, amount in want), Decimal(0)) == Decimal("910.00")
    assert summary.margin == sum((v[3] or Decimal(0) for v in want.values()), Decimal(0))
    assert summary.campaigns_without_file == []


def test_conversion_rows_point_at_the_exposure_and_the_purchase(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path)
    attribute(db, world.config, now=AFTER)
    with db.connect() as connection:
        rows = connection.execute(
            select(CONVERSION, OUTBOX.c.run_id.label("row_run"), OUTBOX.c.customer_id.label("row_customer"),
                   OUTBOX.c.state, OUTBOX.c.sent_at, OUTBOX.c.scheduled_at,
                   PURCHASE.c.ordered_at.label("bought"), PURCHASE.c.customer_id.label("buyer"))
            .join(OUTBOX, OUTBOX.c.id == CONVERSION.c.outbox_id)
            .join(PURCHASE, PURCHASE.c.id == CONVERSION.c.purchase_id)
        ).all()  # fmt: skip
    assert len(rows) == 8
    for row in rows:
        assert row.row_run == row.run_id and row.row_customer == row.customer_id == row.buyer
        assert row.ordered_at == row.bought and row.model == "last_touch" and row.attributed_at == AFTER
        if row.group == "control":
            assert row.state == states.CONTROL and row.contact_at == row.scheduled_at == NOON
        else:
            assert row.state in states.CONTACTED_STATES and row.contact_at == row.sent_at
            assert row.contact_at in (SENT, SUMMER_SENT)
        assert row.contact_at <= row.ordered_at < row.contact_at + d(10 if row.campaign == "spring" else 30)


def test_rebuilding_is_idempotent_and_follows_new_data(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path)
    first = attribute(db, world.config, now=AFTER)
    before = conversions(db)
    again = attribute(db, world.config, now=AFTER)
    assert conversions(db) == before and again.conversions == first.conversions
    assert again.revenue == first.revenue
    # as of an earlier moment, later purchases and refunds are not known yet
    early = attribute(db, world.config, now=NOON + d(2.5))
    a1, a2 = world.a[:2]
    b1, b3 = world.b[0], world.b[2]
    c1 = world.control[0]
    assert set(conversions(db)) == {
        (a1, Decimal("100.00")), (a1, Decimal("50.00")), (b3, Decimal("400.00")), (c1, Decimal("60.00"))
    }  # fmt: skip
    assert early.conversions == 4  # b1's purchase was refunded in full before: no conversion
    with db.begin() as connection:
        connection.execute(
            delete(PURCHASE).where(PURCHASE.c.customer_id == a2, PURCHASE.c.refund_of_id.is_not(None))
        )
        connection.execute(delete(CONVERSION))
    attribute(db, world.config, now=AFTER)
    assert conversions(db)[(a2, Decimal("300.00"))] == ("spring", "treated", "a", Decimal("90.00"))
    assert (b1, Decimal("500.00")) not in conversions(db)


def test_runs_of_a_deleted_campaign_file_get_the_default_window(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path)
    (tmp_path / "campaigns" / "spring.toml").unlink()
    summary = attribute(db, world.config, now=AFTER)
    assert summary.campaigns_without_file == ["spring"]
    # 30 days instead of 10: a3's purchase on day 11 and c2's on day 10 now count for spring
    found = conversions(db)
    assert found[(world.a[2], Decimal("80.00"))] == ("spring", "treated", "a", None)
    assert found[(world.control[1], Decimal("90.00"))] == ("spring", "control", None, None)


def test_concurrent_rebuilds_neither_fail_nor_duplicate(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path)
    barrier = threading.Barrier(3)

    def rebuild() -> AttributionSummary:
        barrier.wait()
        return attribute(db, world.config, now=AFTER)

    with ThreadPoolExecutor(3) as pool:
        summaries = list(pool.map(lambda _: rebuild(), range(3)))
    assert {s.conversions for s in summaries} == {8}
    assert len(conversions(db)) == 8
