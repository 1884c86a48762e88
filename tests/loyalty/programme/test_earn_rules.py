"""Earn rules: hand-computed points for purchases and events, the limits, and config errors with lines."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from engine.config.checked import load_config
from engine.errors import ConfigErrors
from engine.loyalty.programme.definition import Programme
from engine.loyalty.programme.earn_rules import Earned, floor_points
from engine.models import CustomerMetrics, CustomerScore, LoyaltyAccount
from engine.models.segment import Segment, SegmentMembership
from engine.settings.toml_lines import find_line
from tests.factories import add_customer, utc

ACCOUNT = LoyaltyAccount.__table__  # type: ignore[attr-defined]
METRICS = CustomerMetrics.__table__  # type: ignore[attr-defined]
SCORE = CustomerScore.__table__  # type: ignore[attr-defined]
SEGMENT = Segment.__table__  # type: ignore[attr-defined]
MEMBERSHIP = SegmentMembership.__table__  # type: ignore[attr-defined]

HEAD = """\
[engine]
timezone = "Europe/Berlin"
currency = "RUB"

[customers]
attributes = { vip = "bool", children = "int" }

[scores.churn]
rules = [ { when = "orders_count == 0", points = 60 } ]

[segments.regulars]
rule = "orders_count >= 3"

"""
TODAY = dt.date(2025, 6, 1)


def programme(tmp_path: Path, body: str, name: str = "shop") -> Programme:
    """The programme ``name`` of a config made of HEAD and ``body``."""
    path = tmp_path / "config.toml"
    path.write_text(HEAD + body, encoding="utf-8")
    return load_config(path).programmes[name]


def purchase(amount: str, **fields: Any) -> dict[str, Any]:
    """A purchase as the ledger hands it to the rules."""
    values: dict[str, Any] = {
        "amount": Decimal(amount),
        "category": None,
        "sku": None,
        "quantity": Decimal(1),
        "margin": None,
        "currency": "RUB",
        "ordered_at": utc(2025, 5, 31, 10),
        "source": "shop",
    }
    values.update(fields)
    return values


def earn(shop: Programme, amount: str, *, tier: str | None = None, **fields: Any) -> Earned:
    """Points of a purchase whose rules read no customer field (so no database is needed)."""
    return shop.earn.for_purchase(
        None,  # type: ignore[arg-type]  # never read: these rules name no customer field
        customer_id=1,
        purchase=purchase(amount, **fields),
        tier=tier,
        partner=None,
        today=TODAY,
    )


SHOP = """
[loyalty.programmes.shop]
tiers = [
  { name = "silver", min_spend = 10000, multiplier = 1.25 },
  { name = "gold", min_spend = 50000, multiplier = 1.5 },
]
partners.fuel = { earn_rate = 0.5, burn_rate = 0.4, price_per_point = 0.45 }
earn = [
  { name = "base", when = "true", points = "amount * 0.05" },
  { name = "shoes bonus", when = "category == 'shoes'", points = 100 },
  { name = "cosmetics x2", when = "category == 'cosmetics'", multiplier = 2 },
  { name = "sku x1.5", when = "sku == 'SKU-1'", multiplier = 1.5 },
]
"""


def test_points_per_money_fixed_points_and_multipliers(tmp_path: Path) -> None:
    shop = programme(tmp_path, SHOP)
    # 1234.50 x 5 % = 61.725 -> 61
    assert earn(shop, "1234.50").points == 61
    # 400 x 5 % + 100 = 120
    shoes = earn(shop, "400.00", category="shoes")
    assert shoes == Earned(
        120, ({"rule": "base", "points": "20.0000"}, {"rule": "shoes bonus", "points": "100"})
    )
    # 1000 x 5 % x 2 x 1.5 = 150
    both = earn(shop, "1000.00", category="cosmetics", sku="SKU-1")
    assert both.points == 150
    assert both.explain == (
        {"rule": "base", "points": "50.0000"},
        {"rule": "cosmetics x2", "multiplier": "2"},
        {"rule": "sku x1.5", "multiplier": "1.5"},
    )
    json.dumps(both.explain)  # JSON-ready


def test_tier_multiplier_and_a_tier_the_programme_no_longer_has(tmp_path: Path) -> None:
    shop = programme(tmp_path, SHOP)
    # 1000 x 5 % x 1.5 = 75
    gold = earn(shop, "1000.00", tier="gold")
    assert gold == Earned(75, ({"rule": "base", "points": "50.0000"}, {"tier": "gold", "multiplier": "1.5"}))
    # 999.99 x 5 % x 1.25 = 62.499375 -> 62
    assert earn(shop, "999.99", tier="silver").points == 62
    assert earn(shop, "1000.00", tier="platinum").points == 50  # unknown now: x1


def test_partner_purchase_earns_at_the_partner_rate_and_runs_no_rule(tmp_path: Path) -> None:
    shop = programme(tmp_path, SHOP)
    # 99.99 x 0.5 = 49.995 -> 49; cosmetics x2 does not run
    fuel = earn(shop, "99.99", source="fuel", category="cosmetics")
    assert fuel == Earned(49, ({"partner": "fuel", "earn_rate": "0.5", "amount": "99.99"},))
    # with gold: 99.99 x 0.5 x 1.5 = 74.9925 -> 74
    assert earn(shop, "99.99", source="fuel", tier="gold").points == 74


def test_a_refund_or_a_zero_amount_earns_nothing(tmp_path: Path) -> None:
    shop = programme(tmp_path, SHOP)
    assert earn(shop, "-100.00").points == 0
    assert earn(shop, "0.00", category="shoes").points == 0


def test_stack_false_stops_the_rules_after_it_and_priority_orders_them(tmp_path: Path) -> None:
    shop = programme(
        tmp_path,
        """
[loyalty.programmes.shop]
earn = [
  { name = "base", when = "true", points = "amount * 0.05" },
  { name = "big basket", when = "amount >= 5000", points = 500, priority = 10, stack = false },
  { name = "weekend x3", when = "category == 'promo'", multiplier = 3, priority = 10 },
]
""",
    )
    # big basket first (priority 10, file order before weekend): it stops base and weekend
    big = earn(shop, "6000.00", category="promo")
    assert big == Earned(500, ({"rule": "big basket", "points": "500", "stack": False},))
    # below 5000 big basket does not apply, so it stops nothing: (100 x 5 %) x 3 = 15
    small = earn(shop, "100.00", category="promo")
    assert small.points == 15
    assert [item["rule"] for item in small.explain] == ["weekend x3", "base"]


def test_ties_of_priority_go_in_file_order(tmp_path: Path) -> None:
    rules = [
        '{ name = "A", when = "true", points = 10, stack = false }',
        '{ name = "B", when = "true", points = 20 }',
    ]
    first = programme(tmp_path, f"[loyalty.programmes.shop]\nearn = [{rules[0]}, {rules[1]}]\n")
    assert earn(first, "1.00").points == 10  # A stops B
    second = programme(tmp_path, f"[loyalty.programmes.shop]\nearn = [{rules[1]}, {rules[0]}]\n")
    assert earn(second, "1.00").points == 30  # B, then A (which stops nothing after it)


def test_rounding_to_six_decimals_then_floor(tmp_path: Path) -> None:
    assert floor_points(Decimal("2.9999995")) == 3  # rounds up to 3.000000 first
    assert floor_points(Decimal("2.9999994")) == 2
    assert floor_points(Decimal("-7.5")) == 0
    shop = programme(
        tmp_path, '[loyalty.programmes.shop]\nearn = [{ when = "true", points = "amount / 3" }]\n'
    )
    # 30.00 / 3 = 10 exactly in decimals; 10.00 / 3 = 3.33.. -> 3
    assert earn(shop, "30.00").points == 10
    assert earn(shop, "10.00").points == 3
    assert earn(shop, "10.00").explain[0]["rule"] == "earn[0]"  # unnamed: earn[N]


LIMITS = """
[loyalty.programmes.shop]
limits = { per_transaction = 100, per_day = 300, per_customer = 1000 }
earn = [{ name = "base", when = "true", points = "amount * 0.05" }]
"""


def test_per_transaction_cuts_and_says_so(tmp_path: Path) -> None:
    shop = programme(tmp_path, LIMITS)
    # 5000 x 5 % = 250 -> 100
    assert earn(shop, "5000.00") == Earned(
        100, ({"rule": "base", "points": "250.0000"}, {"limit": "per_transaction", "cut": 150})
    )


def test_per_day_then_per_customer(tmp_path: Path) -> None:
    shop = programme(tmp_path, LIMITS)
    sixty = earn(shop, "1200.00")
    assert sixty.points == 60
    # 250 earned today: 50 left of 300
    day = shop.earn.capped(sixty, earned_today=250, earned_total=400)
    assert day.points == 50 and day.explain[-1] == {"limit": "per_day", "cut": 10}
    # 980 earned in total: 20 left of 1000 (after the day's limit)
    both = shop.earn.capped(sixty, earned_today=250, earned_total=980)
    assert both.points == 20
    assert both.explain[-2:] == ({"limit": "per_day", "cut": 10}, {"limit": "per_customer", "cut": 30})
    assert shop.earn.capped(sixty, earned_today=400, earned_total=0).points == 0  # over already: nothing
    assert shop.earn.capped(sixty, earned_today=0, earned_total=0) == sixty  # nothing cut, nothing said


EVENTS = """
[loyalty.programmes.shop]
tiers = [{ name = "gold", min_spend = 50000, multiplier = 1.5 }]
earn = [
  { name = "base", when = "true", points = "amount * 0.05" },
  { name = "birthday", on = "birthday", points = 500 },
  { name = "gold birthday", on = "birthday", when = "tier == 'gold'", multiplier = 2 },
  { name = "welcome", on = "signup", when = "customer.attr.vip", points = 300 },
  { name = "welcome", on = "signup", when = "not customer.attr.vip", points = 100 },
]
"""


def test_event_rules_birthday_and_signup(db: Engine, tmp_path: Path) -> None:
    shop = programme(tmp_path, EVENTS)
    with db.begin() as connection:
        plain = add_customer(connection, attributes={"vip": False})
        vip = add_customer(connection, attributes={"vip": True})
        held = add_customer(connection, attributes={"vip": False})  # gold by override until 2 June
        lapsed = add_customer(connection, attributes={"vip": False})  # the override ended on 1 June
        stamp = {"programme": "shop", "created_at": utc(2025, 1, 1), "updated_at": utc(2025, 1, 1)}
        connection.execute(insert(ACCOUNT).values(customer_id=vip, tier="gold", **stamp))
        for customer, until in ((held, utc(2025, 6, 2)), (lapsed, utc(2025, 6, 1))):
            connection.execute(
                insert(ACCOUNT).values(
                    customer_id=customer, tier_override="gold", override_until=until, **stamp
                )
            )
    assert shop.earn.has_event("birthday") and shop.earn.has_event("signup")
    assert not shop.earn.has_event("referral")
    with db.connect() as connection:
        birthday = shop.earn.for_event(connection, customer_id=plain, event="birthday", today=TODAY)
        gold = shop.earn.for_event(connection, customer_id=vip, event="birthday", today=TODAY)
        welcome_plain = shop.earn.for_event(connection, customer_id=plain, event="signup", today=TODAY)
        welcome_vip = shop.earn.for_event(connection, customer_id=vip, event="signup", today=TODAY)
        nothing = shop.earn.for_event(connection, customer_id=vip, event="referral", today=TODAY)
        overrides = [
            shop.earn.for_event(connection, customer_id=c, event="birthday", today=TODAY).points
            for c in (held, lapsed)
        ]
    assert birthday == Earned(500, ({"rule": "birthday", "points": "500"},))
    # 500 x 2 for gold; events take no tier multiplier of their own
    assert gold.points == 1000
    assert gold.explain == (
        {"rule": "birthday", "points": "500"},
        {"rule": "gold birthday", "multiplier": "2"},
    )
    assert (welcome_plain.points, welcome_vip.points, nothing.points) == (100, 300, 0)
    assert overrides == [1000, 500]
    assert shop.earn.customer_fields == frozenset({"attr.vip"})


def test_rules_read_customer_fields_of_several_levels_and_segments(db: Engine, tmp_path: Path) -> None:
    shop = programme(
        tmp_path,
        """
[loyalty.programmes.shop]
earn = [
  { name = "base", when = "true", points = "amount * 0.01" },
  { name = "A class", when = "customer.abc_class == 'A'", multiplier = 2 },
  { name = "vip", when = "customer.attr.vip", points = 50 },
  { name = "churn risk", when = "customer.score.churn >= 50", points = "customer.attr.children * 10" },
  { name = "regulars", when = "in_segment('regulars')", multiplier = 3 },
]
""",
    )
    now = utc(2025, 6, 1)
    with db.begin() as connection:
        customer = add_customer(connection, attributes={"vip": True, "children": 2})
        other = add_customer(connection, attributes={"vip": False})
        connection.execute(
            insert(METRICS).values(customer_id=customer, abc_class="A", as_of=TODAY, refreshed_at=now)
        )
        connection.execute(insert(SCORE).values(name="churn", customer_id=customer, points=60))
        connection.execute(insert(SEGMENT).values(name="regulars", rule="orders_count >= 3", rule_hash="x"))
        connection.execute(
            insert(MEMBERSHIP).values(segment="regulars", customer_id=customer, entered_at=now)
        )
    with db.connect() as connection:
        rich = shop.earn.for_purchase(
            connection,
            customer_id=customer,
            purchase=purchase("1000.00"),
            tier=None,
            partner=None,
            today=TODAY,
        )
        poor = shop.earn.for_purchase(
            connection, customer_id=other, purchase=purchase("1000.00"), tier=None, partner=None, today=TODAY
        )
    # (10 + 50 + 2 x 10) x 2 x 3 = 480
    assert rich.points == 480
    assert [item["rule"] for item in rich.explain] == ["base", "A class", "vip", "churn risk", "regulars"]
    assert poor.points == 10
    assert shop.earn.customer_fields == frozenset({"abc_class", "attr.vip", "score.churn", "attr.children"})


def _errors(tmp_path: Path, body: str) -> tuple[str, list[str]]:
    path = tmp_path / "config.toml"
    path.write_text(HEAD + body, encoding="utf-8")
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    return HEAD + body, [str(error) for error in caught.value.errors]


def test_a_bad_rule_is_reported_with_file_line_and_suggestion(tmp_path: Path) -> None:
    text, errors = _errors(
        tmp_path,
        """
[loyalty.programmes.shop]
earn = [
  { when = "true", points = "amount * 0.05" },
  { when = "categroy == 'shoes'", points = 100 },
  { when = "true", points = "category" },
]
""",
    )
    path = tmp_path / "config.toml"
    line = find_line(text, "loyalty.programmes.shop.earn[1].when")
    assert line == text.splitlines().index("  { when = \"categroy == 'shoes'\", points = 100 },") + 1
    assert errors[0].startswith(
        f"{path}:{line} loyalty.programmes.shop.earn[1].when:"
        " unknown field 'categroy' (did you mean category?)"
    )
    assert errors[1].startswith(
        f"{path}:{line + 1} loyalty.programmes.shop.earn[2].points:"
        " the rule must be a number, but it is a str"
    )


def test_a_purchase_field_in_an_event_rule_is_refused(tmp_path: Path) -> None:
    text, errors = _errors(
        tmp_path,
        """
[loyalty.programmes.shop]
earn = [
  { on = "birthday", when = "amount > 100", points = 500 },
]
""",
    )
    line = text.splitlines().index('  { on = "birthday", when = "amount > 100", points = 500 },') + 1
    assert errors == [
        f"{tmp_path / 'config.toml'}:{line} loyalty.programmes.shop.earn[0].when:"
        " 'amount' is a purchase field: a rule on 'birthday' is not about a purchase"
        " and sees only customer.*, tier and in_segment()"
        "\n    amount > 100\n    ^"
    ]


def test_points_and_multiplier_together_are_refused_with_the_line(tmp_path: Path) -> None:
    text, errors = _errors(
        tmp_path,
        """
[loyalty.programmes.shop]

[[loyalty.programmes.shop.earn]]
when = "true"
points = 10
multiplier = 2
""",
    )
    line = text.splitlines().index("[[loyalty.programmes.shop.earn]]") + 1
    assert len(errors) == 1
    assert errors[0] == (
        f"{tmp_path / 'config.toml'}:{line} loyalty.programmes.shop.earn[0]: give exactly one of points"
        " (an expression or a number) and multiplier"
    )
