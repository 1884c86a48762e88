"""Segments: set-based refresh, membership history, dependency order, SQL equals Python."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from engine.config.checked import load_config
from engine.errors import ConfigErrors, NotFoundError
from engine.models.tables import CUSTOMER, MEMBERSHIP
from engine.rules.fields import customer_record
from engine.segments.membership import list_segments, segment_members, segment_sql
from engine.segments.refresh import refresh_all
from tests.factories import add_customer, add_purchase, utc

AS_OF = dt.date(2026, 11, 20)
NOW = utc(2026, 11, 20, 12)

SEGMENTS = """
[engine]
timezone = "Europe/Moscow"

[customers]
attributes = { vip = "bool", children = "int", card = "str" }

[scores.churn]
rules = [{ when = "days_since_last_order > 180", points = 40 }, { when = "orders_count < 2", points = 15 }]

[segments.big]
rule = "total_spent >= 1000"
strategy = "loyalty"

[segments.big_lapsing]
rule = "in_segment('big') and days_since_last_order > 30"

[segments.vip_parents]
rule = "attr.vip and attr.children >= 2"

[segments.at_risk]
rule = "score.churn >= 40"

[segments.mail_ru]
rule = "email.endswith('@mail.ru') and consent_email"

[segments.holdout]
rule = "bucket(10) < 3"
"""


def _members(db, name):  # type: ignore[no-untyped-def]
    with db.connect() as connection:
        return set(
            connection.execute(
                select(MEMBERSHIP.c.customer_id).where(
                    MEMBERSHIP.c.segment == name, MEMBERSHIP.c.left_at.is_(None)
                )
            ).scalars()
        )


def _people(db):  # type: ignore[no-untyped-def]
    with db.begin() as c:
        rich = add_customer(
            c, email="rich@mail.ru", consent_email=True, attributes={"vip": True, "children": 3}
        )
        add_purchase(c, rich, utc(2026, 9, 1, 12), "1500")
        fresh = add_customer(
            c, email="fresh@yandex.ru", consent_email=True, attributes={"vip": True, "children": 1}
        )
        add_purchase(c, fresh, utc(2026, 11, 19, 12), "1200")
        old = add_customer(c, email="old@mail.ru", consent_email=False, attributes={"card": "X1"})
        add_purchase(c, old, utc(2025, 1, 1, 12), "10")
        nobody = add_customer(c)
    return rich, fresh, old, nobody


def test_refresh_builds_segments_in_dependency_order(db, write_config) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config(text=SEGMENTS))
    assert config.segment_order.index("big") < config.segment_order.index("big_lapsing")
    rich, fresh, old, nobody = _people(db)
    result = refresh_all(db, config, as_of=AS_OF, now=NOW)
    counts = {s.name: (s.members, s.entered, s.left) for s in result.segments}
    assert _members(db, "big") == {rich, fresh}
    assert _members(db, "big_lapsing") == {rich}  # 80 days since its last order
    assert _members(db, "vip_parents") == {rich}
    assert _members(db, "at_risk") == {old}  # 40 + 15 = 55; nobody has no orders: 15
    assert _members(db, "mail_ru") == {rich}
    assert counts["big"] == (2, 2, 0)
    # bucket(10) < 3 is a stable hash of the id: the same on both databases and in Python
    holdout = _members(db, "holdout")
    with db.connect() as connection:
        for customer_id in (rich, fresh, old, nobody):
            record = customer_record(connection, customer_id, config.fields, AS_OF)
            assert config.segments["holdout"].matches(record) == (customer_id in holdout)


def test_membership_keeps_history_of_entries_and_exits(db, write_config) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config(text=SEGMENTS))
    rich, fresh, _old, _nobody = _people(db)
    refresh_all(db, config, as_of=AS_OF, now=NOW)
    # a month later fresh has not ordered again: it enters big_lapsing; nothing else changes
    later = NOW + dt.timedelta(days=30)
    result = refresh_all(db, config, as_of=AS_OF + dt.timedelta(days=30), now=later)
    assert {s.name: (s.entered, s.left) for s in result.segments}["big_lapsing"] == (1, 0)
    # a refund takes rich below 1000: it leaves big and big_lapsing
    with db.begin() as c:
        add_purchase(c, rich, utc(2026, 12, 21, 12), "-600", refund_of_id=None, external_id="R1")
    latest = later + dt.timedelta(days=1)
    result = refresh_all(db, config, as_of=AS_OF + dt.timedelta(days=31), now=latest)
    changes = {s.name: (s.members, s.entered, s.left) for s in result.segments}
    assert changes["big"] == (1, 0, 1) and changes["big_lapsing"] == (1, 0, 1)
    with db.connect() as connection:
        stays = connection.execute(
            select(MEMBERSHIP.c.entered_at, MEMBERSHIP.c.left_at).where(
                MEMBERSHIP.c.segment == "big", MEMBERSHIP.c.customer_id == rich
            )
        ).all()
    assert stays == [(NOW, latest)]
    assert _members(db, "big_lapsing") == {fresh}


def test_sql_and_python_agree_on_every_segment(db, write_config) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config())  # the project's example config
    with db.begin() as c:
        ids = []
        for n in range(60):
            cid = add_customer(
                c,
                email=f"c{n}@example.ru" if n % 3 else None,
                phone=f"+7900000{n:04d}" if n % 4 else None,
                consent_email=n % 2 == 0,
                lifecycle_stage="partner" if n == 7 else None,
                attributes={"vip": n % 5 == 0, "children": n % 4},
            )
            ids.append(cid)
            for k in range(n % 6):
                add_purchase(
                    c,
                    cid,
                    utc(2026, 11, 1, 12) - dt.timedelta(days=37 * k + n),
                    f"{(n * 37 + k * 11) % 900 + 10}.50",
                    category="shoes" if (n + k) % 3 == 0 else "cosmetics",
                )
    refresh_all(db, config, as_of=AS_OF, now=NOW)
    with db.connect() as connection:
        records = {cid: customer_record(connection, cid, config.fields, AS_OF) for cid in ids}
    for name, rule in config.segments.items():
        expected = {cid for cid, record in records.items() if rule.matches(record)}
        assert _members(db, name) == expected, name
    assert _members(db, "large") and _members(db, "small")


def test_removed_segment_closes_its_stays(db, write_config) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config(text=SEGMENTS))
    _people(db)
    refresh_all(db, config, as_of=AS_OF, now=NOW)
    smaller = load_config(write_config(text=SEGMENTS.split("[segments.big_lapsing]")[0]))
    refresh_all(db, smaller, as_of=AS_OF, now=NOW + dt.timedelta(hours=1))
    assert _members(db, "mail_ru") == set()
    assert [s.name for s in list_segments(db, smaller)] == ["big"]


def test_listing_showing_and_sql(db, write_config) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config(text=SEGMENTS))
    rich, fresh, *_ = _people(db)
    before = {s.name: s.members for s in list_segments(db, config)}
    assert before["big"] is None
    refresh_all(db, config, as_of=AS_OF, now=NOW)
    infos = {s.name: s for s in list_segments(db, config)}
    assert infos["big"].members == 2 and infos["big"].strategy == "loyalty"
    assert infos["big"].refreshed_at == NOW and not infos["big"].stale
    count, members = segment_members(db, config, "big", limit=1)
    assert count == 2 and [m.customer_id for m in members] == [min(rich, fresh)]
    sql = segment_sql(config, "big_lapsing", "postgresql")
    assert "segment_membership.segment = 'big'" in sql and "days_since_last_order > 30" in sql
    with pytest.raises(NotFoundError, match=r"unknown segment 'bgi' \(known: .*big"):
        segment_members(db, config, "bgi")
    changed = load_config(write_config(text=SEGMENTS.replace(">= 1000", ">= 2000")))
    assert {s.name: s for s in list_segments(db, changed)}["big"].stale


def test_cyclic_segments_are_refused_with_the_cycle(write_config) -> None:  # type: ignore[no-untyped-def]
    text = """
[segments.a]
rule = "in_segment('b')"
[segments.b]
rule = "in_segment('c') or total_spent > 5"
[segments.c]
rule = "in_segment('a')"
"""
    path = write_config(text=text)
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    assert (
        str(caught.value)
        == f"{path}:3 segments.a.rule: segments reference each other in a cycle: a -> b -> c -> a"
    )


def test_a_segment_by_city(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The importer's city column is a field rules can name."""
    from engine.customers.importing import import_customers
    from engine.segments.membership import refresh_segments

    config = load_config(write_config("[segments.kazan]\nrule = \"city == 'Казань'\"\n"))
    clients = tmp_path / "clients.csv"
    clients.write_text(
        "Код;Город;Адрес\nK-1;Казань;ул. Баумана, 1\nK-2;Москва;Тверская, 7\n", encoding="utf-8"
    )
    import_customers(db, clients, source="shop")
    refresh_segments(db, config)
    with db.connect() as connection:
        kazan = connection.execute(
            select(CUSTOMER.c.external_id).where(CUSTOMER.c.id.in_(_members(db, "kazan")))
        )
        assert list(kazan.scalars()) == ["K-1"]
