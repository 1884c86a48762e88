"""One small world for attribution and campaign reports, built through the real runner.

``spring`` (email, variants a and b, 25 % control, goal window 10 days,
preparation 100) fires at NOON; the treated rows are then recorded as sent an
hour later (one ``failed``, one ``bounced``, one ``delivered``), as a worker
would. ``summer`` (a call, no control, 30 days) fires four days later and
reaches only two customers of spring: b2 (treated in spring) and c3 (in
spring's control group): both buy inside both campaigns' windows.

Purchases, relative to NOON (treated exposure NOON + 1 h, control NOON):

====  ===============================================  ==========================
who   purchase                                         counts for
====  ===============================================  ==========================
a1    100 (margin 30) +1 d, 50 (margin 15) +2 d         spring a: 2 purchases 150
a2    300 (margin 90) +3 d, refund -100 (no margin)     spring a: 200, margin 60
a3    80 at +11 d                                       nothing: after the window
a4    40 at NOON                                        nothing: before the contact
b1    500 +1 d, refunded in full +2 d                   nothing (retained though)
b3    400 (margin 100) +2 d, refund -100 (margin -40)   spring b: 300, margin 60
b2    70 at +6 d                                        summer (last) / spring b (first)
c1    60 (margin 20) at NOON exactly                    spring control
c2    10 at +10 d - 1 s; 90 at +10 d                    spring control: 10 only
c3    120 (margin 40) at +7 d                           summer (last) / spring control (first)
fail  200 at +1 d (its email failed)                    nothing: never contacted
====  ===============================================  ==========================
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from engine.campaigns.loading import load_campaigns
from engine.config.checked import Config, load_config
from engine.models import ContactResponse, OutboxMessage
from engine.models import outbox as states
from engine.runs.runner import start_run
from engine.segments.membership import refresh_segments
from tests.factories import CUSTOMER, add_customer, add_purchase, utc

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
RESPONSE = ContactResponse.__table__  # type: ignore[attr-defined]

NOON = utc(2026, 3, 2, 9)  # 12:00 in Moscow, a Monday
SENT = NOON + dt.timedelta(hours=1)
SUMMER = NOON + dt.timedelta(days=4)
SUMMER_SENT = SUMMER + dt.timedelta(hours=1)
AFTER = NOON + dt.timedelta(days=40)  # "now" of the reports: every window has closed

CONFIG = """
[engine]
timezone = "Europe/Moscow"

[channels.email]
unit_cost = 0.50

[channels.call]
unit_cost = 60

[contact_policy]
quiet_hours = "21:00-09:00"

[segments.everyone]
rule = "true"
"""

SPRING = """
name = "Spring offer"
segment = "everyone"
strategy = "stimulation"
start = 2026-01-01
at = 2026-03-02T12:00:00+03:00
control_group = 0.25
preparation_cost = 100
goal = { metric = "conversion", window_days = 10 }

[[variants]]
name = "a"

[[variants]]
name = "b"

[[steps]]
channel = "email"
template = "note.html.j2"
subject = "Spring"
"""

SUMMER_CAMPAIGN = """
name = "Summer call"
segment = "everyone"
strategy = "loyalty"
start = 2026-01-01
at = 2026-03-06T12:00:00+03:00

[[steps]]
channel = "call"
script = "call.md"
"""


def d(days: float) -> dt.timedelta:
    return dt.timedelta(days=days)


@dataclass
class World:
    """The configuration, the runs and who is who."""

    config: Config
    spring_run: int
    summer_run: int
    a: list[int]  # spring variant a (a[4] failed, a[5] bounced)
    b: list[int]  # spring variant b (b[3] delivered)
    control: list[int]
    unreachable: int
    rows: dict[tuple[int, int], int] = field(default_factory=dict)  # (run, customer) -> outbox id of step 0

    @property
    def treated(self) -> list[int]:
        return self.a + self.b


def write_files(
    write_config: Any, tmp_path: Path, extra: str = "", campaigns: dict[str, str] | None = None
) -> Config:
    """config.toml (``CONFIG`` + ``extra``), spring and summer, their templates."""
    path = write_config(text=CONFIG + extra)
    folder = tmp_path / "campaigns"
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    (folder / "templates" / "note.html.j2").write_text(
        "<p>Hi {{ customer.first_name }}</p>", encoding="utf-8"
    )
    (folder / "templates" / "call.md").write_text("Call {{ customer.first_name }}", encoding="utf-8")
    for key, text in (campaigns or {"spring": SPRING, "summer": SUMMER_CAMPAIGN}).items():
        (folder / f"{key}.toml").write_text(text, encoding="utf-8")
    return load_config(path)


def _step0(db: Engine, run_id: int) -> dict[int, tuple[str, str | None, int]]:
    with db.connect() as connection:
        rows = connection.execute(
            select(OUTBOX.c.customer_id, OUTBOX.c.state, OUTBOX.c.variant, OUTBOX.c.id).where(
                OUTBOX.c.run_id == run_id, OUTBOX.c.step == 0
            )
        ).all()
    return {customer: (state, variant, row) for customer, state, variant, row in rows}


def build(db: Engine, write_config: Any, tmp_path: Path, *, attribution: str = "last_touch") -> World:
    """The world of the module docstring."""
    config = write_files(write_config, tmp_path, f'\n[evaluation]\nattribution = "{attribution}"\n')
    with db.begin() as connection:
        for n in range(20):
            add_customer(connection, email=f"s{n}@example.com", consent_email=True)
        unreachable = add_customer(connection, email="no@example.com", consent_email=False)
    refresh_segments(db, config, now=NOON)
    campaigns = load_campaigns(config)
    spring = start_run(db, config, campaigns["spring"], scheduled_for=NOON, now=NOON).run_id
    found = _step0(db, spring)
    control = sorted(c for c, (state, _, _) in found.items() if state == states.CONTROL)
    a = sorted(c for c, (state, v, _) in found.items() if state == states.QUEUED and v == "a")
    b = sorted(c for c, (state, v, _) in found.items() if state == states.QUEUED and v == "b")
    assert len(control) == 5 and len(a) >= 6 and len(b) >= 4, (control, a, b)
    assert found[unreachable][0] == states.NO_CONSENT
    world = World(config, spring, 0, a, b, control, unreachable)
    world.rows = {(spring, c): row for c, (_, _, row) in found.items()}
    with db.begin() as connection:
        queued = (OUTBOX.c.run_id == spring) & (OUTBOX.c.state == states.QUEUED)
        connection.execute(update(OUTBOX).where(queued).values(state=states.SENT, sent_at=SENT))
        mine = OUTBOX.c.run_id == spring
        connection.execute(
            update(OUTBOX)
            .where(mine, OUTBOX.c.customer_id == a[4])
            .values(state=states.FAILED, sent_at=None, detail="550 no such user")
        )
        connection.execute(
            update(OUTBOX).where(mine, OUTBOX.c.customer_id == a[5]).values(state=states.BOUNCED)
        )
        connection.execute(
            update(OUTBOX).where(mine, OUTBOX.c.customer_id == b[3]).values(state=states.DELIVERED)
        )
        responses = [(a[0], "open"), (a[1], "click"), (b[0], "reply"), (b[1], "open"), (b[1], "click")]
        responses += [(b[2], "unsubscribe")]
        for customer, kind in responses:
            connection.execute(
                insert(RESPONSE).values(
                    outbox_id=world.rows[(spring, customer)],
                    customer_id=customer,
                    kind=kind,
                    occurred_at=SENT + d(0.5),
                    source="test",
                    key=f"{kind}:{customer}",
                )
            )
        # summer reaches b2 and c3 only: they alone get a phone
        for customer, phone in ((b[1], "+79160000001"), (control[2], "+79160000002")):
            connection.execute(
                update(CUSTOMER).where(CUSTOMER.c.id == customer).values(phone=phone, consent_call=True)
            )
    summer = start_run(db, config, campaigns["summer"], scheduled_for=SUMMER, now=SUMMER).run_id
    world.summer_run = summer
    with db.begin() as connection:
        connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.run_id == summer, OUTBOX.c.state == states.QUEUED)
            .values(state=states.SENT, sent_at=SUMMER_SENT)
        )
        a1, a2, a3, a4 = a[:4]
        b1, b2, b3 = b[:3]
        c1, c2, c3 = control[:3]
        add_purchase(connection, a1, NOON + d(1), "100", margin="30")
        add_purchase(connection, a1, NOON + d(2), "50", margin="15")
        bought = add_purchase(connection, a2, NOON + d(3), "300", margin="90")
        add_purchase(connection, a2, NOON + d(5), "-100", refund_of_id=bought)
        add_purchase(connection, a3, NOON + d(11), "80")
        add_purchase(connection, a4, NOON, "40")
        bought = add_purchase(connection, b1, NOON + d(1), "500")
        add_purchase(connection, b1, NOON + d(2), "-500", refund_of_id=bought)
        bought = add_purchase(connection, b3, NOON + d(2), "400", margin="100")
        add_purchase(connection, b3, NOON + d(3), "-100", margin="-40", refund_of_id=bought)
        add_purchase(connection, b2, NOON + d(6), "70")
        add_purchase(connection, c1, NOON, "60", margin="20")
        add_purchase(connection, c2, NOON + d(10) - dt.timedelta(seconds=1), "10")
        add_purchase(connection, c2, NOON + d(10), "90")
        add_purchase(connection, c3, NOON + d(7), "120", margin="40")
        add_purchase(connection, a[4], NOON + d(1), "200")
    return world
