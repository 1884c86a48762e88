"""Campaign results on both databases: every figure counted by hand, traceable to conversions; the CLI."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from scipy import stats
from sqlalchemy import Engine, func, select

from engine.cli import main as crm_main
from engine.errors import NotFoundError
from engine.evaluation.ab_test import pick_winner
from engine.evaluation.campaign_report import campaign_report
from engine.evaluation.figures import CampaignResult, GroupFigures
from engine.evaluation.statistics import compare_proportions
from engine.models import outbox as states
from engine.models.tables import CONVERSION, PURCHASE
from tests.cli.test_cli import crm
from tests.evaluation.campaign_scenario import AFTER, OUTBOX, World, build


def _money(text: str) -> Decimal:
    return Decimal(text)


def _figures(group: GroupFigures) -> dict[str, object]:
    return {
        name: getattr(group, name)
        for name in (
            "audience", "sent", "delivered", "failed", "opened", "clicked", "responded", "responders",
            "converted", "retained", "purchases", "revenue", "margin", "actual_cost", "revenue_sum_squares",
        )
    }  # fmt: skip


def _spring_expected(world: World) -> dict[str, dict[str, object]]:
    """The hand count of the scenario's module docstring, last touch."""
    n_a, n_b = len(world.a), len(world.b)
    a = {
        # a[4] failed (not sent), a[5] bounced (sent, paid, failed to arrive)
        "audience": n_a, "sent": n_a - 1, "delivered": 0, "failed": 2,
        "opened": 2, "clicked": 1, "responded": 1, "responders": 1,  # a1 opened, a2 clicked
        "converted": 2, "retained": 2, "purchases": 3,  # a1 (100 + 50), a2 (300 - 100)
        "revenue": _money("350.00"), "margin": _money("105.00"), "actual_cost": _money("0.50") * (n_a - 1),
        "revenue_sum_squares": _money("62500"),  # 150² + 200²
    }  # fmt: skip
    b = {
        # b1 replied, b2 opened and clicked, b3 unsubscribed (no engagement); b[3] delivered
        "audience": n_b, "sent": n_b, "delivered": 1, "failed": 0,
        "opened": 1, "clicked": 1, "responded": 2, "responders": 2,
        "converted": 1, "retained": 3, "purchases": 1,  # b3 (400 - 100); b1 refunded all; b2 went to summer
        "revenue": _money("300.00"), "margin": _money("60.00"), "actual_cost": _money("0.50") * n_b,
        "revenue_sum_squares": _money("90000"),
    }  # fmt: skip
    treated = {
        name: a[name] + b[name]  # type: ignore[operator]
        for name in a
    }
    treated["actual_cost"] = _money("0.50") * (n_a - 1 + n_b) + 100  # + preparation of the first run
    control = {
        "audience": 5, "sent": 0, "delivered": 0, "failed": 0, "opened": 0, "clicked": 0, "responded": 0,
        "responders": 0, "converted": 2, "retained": 3, "purchases": 2,  # c1 60, c2 10; c3 bought for summer
        "revenue": _money("70.00"), "margin": _money("20.00"), "actual_cost": _money("0.00"),
        "revenue_sum_squares": _money("3700"),  # 60² + 10²
    }  # fmt: skip
    return {"a": a, "b": b, "treated": treated, "control": control}


def test_every_figure_of_the_report_by_hand(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path)
    results = campaign_report(db, world.config, now=AFTER)
    assert [r.campaign for r in results] == ["spring", "summer"]
    spring, summer = results
    assert (spring.name, spring.goal_metric, spring.window_days, spring.runs) == (
        "Spring offer",
        "conversion",
        10,
        1,
    )
    want = _spring_expected(world)
    assert [v.name for v in spring.variants] == ["a", "b"]
    assert _figures(spring.variants[0]) == want["a"]
    assert _figures(spring.variants[1]) == want["b"]
    assert _figures(spring.treated) == want["treated"]
    assert _figures(spring.control) == want["control"]
    assert spring.treated.name == "treated" and spring.control.name == "control"

    # uplift: conversion (3 of 15 against 2 of 5) and revenue per customer; control never responds
    assert [c.metric for c in spring.uplift] == ["conversion_rate", "revenue_per_customer"]
    conversion, revenue = spring.uplift
    assert conversion == compare_proportions(3, 15, 2, 5, metric="conversion_rate", confidence=0.95)
    assert (conversion.treated, conversion.control) == (0.2, 0.4)
    treated_values = [150, 200, 300] + [0] * 12
    control_values = [60, 10, 0, 0, 0]
    welch = stats.ttest_ind(treated_values, control_values, equal_var=False)
    interval = welch.confidence_interval(0.95)
    assert revenue.difference == pytest.approx(650 / 15 - 70 / 5)
    assert revenue.p_value == pytest.approx(welch.pvalue, abs=1e-9)
    assert (revenue.low, revenue.high) == pytest.approx((interval.low, interval.high), abs=1e-9)
    assert revenue.relative == pytest.approx((650 / 15) / (70 / 5) - 1)

    # (650/15 - 70/5) x 15 = 440; (165/15 - 20/5) x 15 = 105; cost 0.50 x 14 + 100 = 107
    assert spring.incremental_revenue == Decimal("440.00")
    assert spring.incremental_margin == Decimal("105.00")
    assert spring.treated.actual_cost == Decimal("107.00")
    assert spring.incremental_roi == ((Decimal(105) - 107) / 107).quantize(Decimal("0.0001"))
    assert spring.treated.roi == ((Decimal(165) - 107) / 107).quantize(Decimal("0.0001"))
    assert spring.treated.cost_per_response == (Decimal(107) / 3).quantize(Decimal("0.01"))

    assert spring.winner == pick_winner(spring, 0.95)
    assert spring.winner is not None and not spring.winner.significant
    leader = "a" if 2 / len(world.a) > 1 / len(world.b) else "b"
    assert spring.winner.variant == leader and spring.winner.metric == "conversion_rate"

    # summer: b2 and c3 by phone, both bought within its window (last touch); no control, no variants
    assert (summer.runs, summer.variants, summer.uplift, summer.winner) == (1, [], [], None)
    assert summer.incremental_revenue is None and summer.incremental_roi is None
    assert _figures(summer.treated) == {
        "audience": 2, "sent": 2, "delivered": 0, "failed": 0, "opened": 0, "clicked": 0, "responded": 0,
        "responders": 0, "converted": 2, "retained": 2, "purchases": 2, "revenue": Decimal("190.00"),
        "margin": Decimal("40.00"), "actual_cost": Decimal("120.00"),
        "revenue_sum_squares": Decimal(70**2 + 120**2),
    }  # fmt: skip
    assert summer.control.audience == 0 and summer.control.revenue == 0


def test_first_touch_moves_the_shared_purchases_to_spring(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path, attribution="first_touch")
    spring, summer = campaign_report(db, world.config, now=AFTER)
    b, control = spring.variants[1], spring.control
    assert (b.converted, b.purchases, b.revenue) == (2, 2, Decimal("370.00"))  # + b2's 70
    assert (control.converted, control.revenue, control.margin) == (3, Decimal("190.00"), Decimal("60.00"))
    assert control.revenue_sum_squares == Decimal(60**2 + 10**2 + 120**2)
    assert (summer.treated.converted, summer.treated.revenue) == (0, Decimal("0.00"))
    assert summer.treated.retained == 2  # they did buy inside its window: retention is not attribution


def test_every_revenue_figure_is_the_sum_of_conversion_rows_of_real_purchases(
    db, write_config, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path)
    results = campaign_report(db, world.config, now=AFTER)
    refund = PURCHASE.alias("refund")
    net = PURCHASE.c.amount + func.coalesce(
        select(func.sum(refund.c.amount)).where(refund.c.refund_of_id == PURCHASE.c.id).scalar_subquery(), 0
    )
    with db.connect() as connection:
        rows = connection.execute(
            select(CONVERSION.c.campaign, CONVERSION.c.group, CONVERSION.c.variant, CONVERSION.c.revenue,
                   net.label("net"), OUTBOX.c.run_id, OUTBOX.c.customer_id, OUTBOX.c.state,
                   PURCHASE.c.customer_id)
            .join(PURCHASE, PURCHASE.c.id == CONVERSION.c.purchase_id)
            .join(OUTBOX, OUTBOX.c.id == CONVERSION.c.outbox_id)
        ).all()  # fmt: skip
    assert rows
    totals: dict[tuple[str, str, str | None], Decimal] = {}
    for campaign, group, variant, revenue, net_amount, _, customer, state, buyer in rows:
        assert customer == buyer and Decimal(str(net_amount)).quantize(Decimal("0.01")) == revenue
        assert (state == states.CONTROL) == (group == "control")
        totals[(campaign, group, variant)] = totals.get((campaign, group, variant), Decimal(0)) + revenue
    for result in results:
        assert result.control.revenue == totals.get((result.campaign, "control", None), 0)
        assert result.treated.revenue == sum(
            (v for (c, g, _), v in totals.items() if c == result.campaign and g == "treated"), Decimal(0)
        )
        for variant in result.variants:
            assert variant.revenue == totals.get((result.campaign, "treated", variant.name), 0)


def test_choosing_campaigns_and_reading_without_attribution(db: Engine, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path)
    assert [r.campaign for r in campaign_report(db, world.config, ["summer"], now=AFTER)] == ["summer"]
    with pytest.raises(NotFoundError, match="unknown campaign 'autumn' \\(known: spring, summer\\)"):
        campaign_report(db, world.config, ["autumn"], now=AFTER)
    with db.begin() as connection:
        connection.execute(CONVERSION.delete())
    (kept,) = campaign_report(db, world.config, ["spring"], attribute_first=False)
    assert kept.treated.revenue == 0 and kept.treated.converted == 0 and kept.treated.sent > 0


def _group(name: str, audience: int, converted: int, revenue: str = "0") -> GroupFigures:
    return GroupFigures(
        name,
        audience,
        audience,
        0,
        0,
        0,
        0,
        0,
        converted,
        converted,
        Decimal(revenue),
        Decimal(0),
        Decimal(0),
    )


def _result(*variants: GroupFigures, goal: str = "conversion") -> CampaignResult:
    total = _group("treated", sum(v.audience for v in variants), sum(v.converted for v in variants))
    return CampaignResult("x", "X", goal, 30, 1, _group("control", 0, 0), total, list(variants))


def test_pick_winner_applies_bonferroni() -> None:
    best, other, third = _group("a", 400, 80), _group("b", 400, 58), _group("c", 400, 58)
    p = compare_proportions(80, 400, 58, 400, metric="m", confidence=0.95).p_value
    assert 0.025 < p < 0.05  # significant alone, not when two comparisons share the 5 %
    two = pick_winner(_result(best, other), 0.95)
    assert (two.variant, two.significant, two.p_value) == ("a", True, p)
    three = pick_winner(_result(other, best, third), 0.95)
    assert (three.variant, three.significant) == ("a", False)
    assert three.p_value == pytest.approx(p) and "Bonferroni" in three.reason
    clear = pick_winner(_result(_group("a", 400, 40), _group("b", 400, 120), _group("c", 400, 41)), 0.95)
    assert (clear.variant, clear.significant, clear.metric) == ("b", True, "conversion_rate")
    assert clear.p_value is not None and clear.p_value < 0.025


def test_pick_winner_on_revenue_and_without_enough_variants() -> None:
    lone = pick_winner(_result(_group("a", 10, 1)), 0.95)
    assert (lone.variant, lone.significant, lone.p_value) == (None, False, None)
    # revenue: every buyer spent 100; b converts 3 times as many: Welch on revenue per customer
    a = _group("a", 300, 30, "3000")
    b = _group("b", 300, 90, "9000")
    a = replace(a, revenue_sum_squares=Decimal(30 * 100**2))
    b = replace(b, revenue_sum_squares=Decimal(90 * 100**2))
    verdict = pick_winner(_result(a, b, goal="revenue"), 0.95)
    assert (verdict.variant, verdict.metric, verdict.significant) == ("b", "revenue_per_customer", True)
    empty = pick_winner(_result(_group("a", 0, 0), _group("b", 5, 1)), 0.95)
    assert empty.variant is None  # one variant with an audience: nothing to compare


def test_crm_report_campaigns_in_every_format(db, write_config, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    world = build(db, write_config, tmp_path)
    as_of = ("--as-of", AFTER.isoformat())
    table = crm("report", "campaigns", *as_of)  # the console script, as a user runs it
    assert table.returncode == 0, table.stderr
    for text in ("spring: Spring offer", "variant a", "all treated", "control", "conversion", "440.00"):
        assert text in table.stdout, text
    assert "no control group: no uplift" in table.stdout  # summer

    assert crm_main(["report", "campaigns", "spring", "--format", "json", "--no-attribute"]) == 0
    (spring,) = json.loads(capsys.readouterr().out)["campaigns"]
    assert spring["campaign"] == "spring" and spring["incremental_revenue"] == "440.00"
    assert spring["treated"]["revenue"] == "650.00" and spring["control"]["audience"] == 5
    assert [c["metric"] for c in spring["uplift"]] == ["conversion_rate", "revenue_per_customer"]
    assert spring["winner"]["significant"] is False

    assert crm_main(["report", "campaigns", "--format", "csv", *as_of]) == 0
    read = list(csv.DictReader(io.StringIO(capsys.readouterr().out), delimiter=";"))
    by_group = {(r["campaign"], r["group"], r["variant"]): r for r in read}
    assert len(read) == 6  # spring: a, b, treated, control; summer: treated, control
    treated = by_group[("spring", "treated", "")]
    assert treated["revenue"] == "650.00" and treated["incremental_margin"] == "105.00"
    assert float(treated["conversion_rate_difference"]) == pytest.approx(-0.2)
    assert by_group[("spring", "variant", "a")]["audience"] == str(len(world.a))
    assert by_group[("summer", "treated", "")]["conversion_rate_difference"] == ""

    path = tmp_path / "campaigns.xlsx"
    assert crm_main(["report", "campaigns", "--format", "xlsx", "-o", str(path), *as_of]) == 0
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["Results", "Uplift", "Summary"]
    results = workbook["Results"]
    header = [cell.value for cell in results[1]]
    spring_treated = next(
        row for row in results.iter_rows(min_row=2, values_only=True) if row[:2] == ("spring", "all treated")
    )
    assert spring_treated[header.index("Revenue")] == 650
    assert str(spring_treated[header.index("Conversion rate")]).startswith("=IF(C")
    uplift = list(workbook["Uplift"].iter_rows(min_row=2, values_only=True))
    assert [row[:2] for row in uplift] == [("spring", "conversion_rate"), ("spring", "revenue_per_customer")]
    assert isinstance(uplift[0][10], float) and uplift[0][11] == "no"
    capsys.readouterr()

    assert crm_main(["report", "campaigns", "autumn"]) == 1
    assert "unknown campaign 'autumn'" in capsys.readouterr().err
    assert crm_main(["report", "campaigns", "--format", "xlsx"]) == 1
    assert "--output" in capsys.readouterr().err
