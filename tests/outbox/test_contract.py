"""A run's rows drained into a memory channel, a Maildir and call lists: rendered, costed, recorded."""

from __future__ import annotations

import csv
import datetime as dt
import re
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import update

from engine.channels import MemoryChannel, message_id
from engine.contact_policy.links import verify
from engine.db import installation_id
from engine.loyalty.ledger import earn_purchase
from engine.models import ACCOUNT
from engine.models import outbox as states
from engine.outbox import drain
from tests.factories import add_customer, add_purchase, utc
from tests.outbox.factories import SECRET, T0, Clock, add_run, queue, rows_of, workspace

SIGNED = re.compile(
    r"<(https://crm\.shop\.example/u/([^?>]+)\?s=([\w-]+))>, "
    r"<mailto:unsubscribe@shop\.example\?subject=[^>]+>"
)


def test_a_run_drains_into_a_memory_channel_rendered_and_costed(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = workspace(write_config, tmp_path)
    with db.begin() as connection:
        ids = [
            add_customer(connection, first_name=f"Анна{n}", email=f"a{n}@example.ru", consent_email=True)
            for n in range(3)
        ]
        run = add_run(connection)
        queue(connection, run, ids[:2], variant="a")
        queue(connection, run, ids[2:], variant="b")
    memory = MemoryChannel("email")
    clock = Clock(T0 + dt.timedelta(minutes=5))
    summary = drain(db, config, channels={"email": memory}, until_idle=True, clock=clock)

    assert (summary.sent, summary.processed, summary.due) == (3, 3, 3)
    rows = rows_of(db, run)
    for customer in ids:
        row = rows[(customer, 0)]
        assert (row.state, row.attempts, row.unit_cost, row.sent_at) == (
            states.SENT,
            1,
            Decimal("0.40"),
            clock.now,
        )
        assert row.reference == f"{run}:{customer}:0"
    first = memory.sent[f"{run}:{ids[0]}:0"]
    assert first.recipient == "a0@example.ru" and first.subject == "Анна0, a note for you"
    assert "10 % off until 31 December (a)" in (first.html or "") and "31 December" in (first.text or "")
    assert 'style="color: #333;"' in (first.html or "")  # CSS inlined
    signed = SIGNED.fullmatch(first.headers["List-Unsubscribe"])
    assert signed is not None and verify(unquote(signed.group(2)), signed.group(3), SECRET)
    assert unquote(signed.group(2)) == f"u.{ids[0]}.note"
    assert first.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert signed.group(1).replace("&", "&amp;") in (first.html or "")  # the same link in the body
    assert memory.sent[f"{run}:{ids[2]}:0"].subject == "Only for you, Анна2"  # variant b's subject


def test_one_click_is_offered_only_for_an_https_link(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, monkeypatch
) -> None:
    # RFC 8058: List-Unsubscribe-Post only with an https URI; the link itself is still offered
    monkeypatch.setenv("CRM_LINKS__BASE_URL", "http://localhost:8000")
    config = workspace(write_config, tmp_path)
    with db.begin() as connection:
        anna = add_customer(connection, first_name="Анна", email="anna@example.ru", consent_email=True)
        run = add_run(connection)
        queue(connection, run)
    memory = MemoryChannel("email")
    drain(db, config, channels={"email": memory}, until_idle=True, clock=Clock(T0 + dt.timedelta(minutes=5)))
    headers = memory.sent[f"{run}:{anna}:0"].headers
    assert headers["List-Unsubscribe"].startswith(f"<http://localhost:8000/u/u.{anna}.note?s=")
    assert "List-Unsubscribe-Post" not in headers


def test_maildir_messages_are_deterministic_signed_and_never_carry_injected_headers(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path)
    with db.begin() as connection:
        olga = add_customer(connection, first_name="Ольга", email="olga@example.ru", consent_email=True)
        eve = add_customer(
            connection, first_name="Eve\r\nBcc: all@example.com", email="eve@example.ru", consent_email=True
        )
        run = add_run(connection)
        queue(connection, run)
    summary = drain(db, config, until_idle=True, clock=Clock())

    assert (summary.sent, summary.delivered, summary.failed) == (1, 1, 1)
    rows = rows_of(db, run)
    key = f"{run}:{olga}:0"
    expected = message_id(key, "shop.example", installation=installation_id(db))
    assert rows[(olga, 0)].state == states.DELIVERED
    assert rows[(olga, 0)].reference == expected
    assert rows[(eve, 0)].state == states.FAILED and "line break" in rows[(eve, 0)].detail
    [stored] = list((tmp_path / "maildir" / "new").iterdir())
    assert b"Bcc" not in stored.read_bytes()
    email = BytesParser(policy=policy.default).parsebytes(stored.read_bytes())
    assert email["Message-ID"] == expected and email["To"] == "olga@example.ru"
    assert email["Subject"] == "Ольга, a note for you"
    signed = SIGNED.fullmatch(" ".join(str(email["List-Unsubscribe"]).split()))
    assert signed is not None and verify(unquote(signed.group(2)), signed.group(3), SECRET)
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    again = drain(db, config, until_idle=True, clock=Clock())
    assert again.processed == 0 and len(list((tmp_path / "maildir" / "new").iterdir())) == 1


def test_calls_become_call_lists_per_day_and_curator_with_what_agents_need(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path)
    with db.begin() as connection:
        anna = add_customer(
            connection,
            first_name="Анна",
            last_name="Иванова",
            phone="+79161234567",
            timezone="Asia/Yekaterinburg",
            curator="Petrov",
            consent_call=True,
        )
        oleg = add_customer(connection, first_name="Олег", phone="+79031112233", consent_call=True)
        for day, amount in ((1, "100"), (2, "200"), (3, "300"), (4, "400")):
            add_purchase(connection, anna, utc(2026, 11, day, 12), amount, category="shoes")
        run = add_run(connection)
        queue(connection, run, channel="call", step=1)
    clock = Clock(T0 + dt.timedelta(minutes=10))
    summary = drain(db, config, until_idle=True, clock=clock)

    assert summary.sent == 2
    folder = tmp_path / "calls"
    with (folder / "calls-2026-12-01-Petrov.csv").open(encoding="utf-8-sig", newline="") as handle:
        [card] = list(csv.DictReader(handle, delimiter=";"))
    assert card["key"] == f"{run}:{anna}:1" and card["name"] == "Иванова Анна"
    assert (card["phone"], card["phone_national"]) == ("+7 916 123-45-67", "8 (916) 123-45-67")
    assert (card["calling_window"], card["centre_window"]) == ("10:00-19:00", "08:00-17:00")
    assert card["timezone"] == "Asia/Yekaterinburg" and card["curator"] == "Petrov"
    assert (card["segment"], card["campaign"], card["campaign_name"]) == ("everyone", "note", "Autumn note")
    assert "script" not in card  # once per list, in its script file
    script = (folder / "calls-2026-12-01-Petrov.script.txt").read_text(encoding="utf-8-sig")
    assert (
        "=== campaign note: Autumn note ===\nCall [first name] about the offer until 31 December.\n" in script
    )
    assert card["last_purchases"] == (
        "2026-11-04 shoes 400.00 RUB; 2026-11-03 shoes 300.00 RUB; 2026-11-02 shoes 200.00 RUB"
    )
    with (folder / "calls-2026-12-01-unassigned.csv").open(encoding="utf-8-sig", newline="") as handle:
        [other] = list(csv.DictReader(handle, delimiter=";"))
    assert (
        other["key"] == f"{run}:{oleg}:1"
        and other["calling_window"] == other["centre_window"] == "10:00-19:00"
    )
    assert (folder / "calls-2026-12-01-Petrov.xlsx").is_file()  # written when the channel closed
    rows = rows_of(db, run)
    assert rows[(anna, 1)].state == states.SENT and rows[(anna, 1)].reference == "calls-2026-12-01-Petrov.csv"
    assert rows[(anna, 1)].unit_cost == Decimal("60.00")


def test_a_worker_running_past_midnight_starts_the_next_days_call_lists(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CRM_CHANNELS__CALL__BATCH_SIZE", "1")
    config = workspace(write_config, tmp_path)
    next_day = utc(2026, 12, 1, 21)  # midnight in Moscow
    with db.begin() as connection:
        today = add_customer(connection, phone="+79160000001", consent_call=True)
        tomorrow = add_customer(connection, phone="+79160000002", consent_call=True)
        run = add_run(connection)
        queue(connection, run, [today], channel="call", step=1)
        queue(connection, run, [tomorrow], channel="call", step=1, scheduled_at=next_day)
    clock = Clock()

    def next_morning(summary) -> None:  # type: ignore[no-untyped-def]
        clock.now = next_day + dt.timedelta(hours=9)

    summary = drain(db, config, until_idle=True, clock=clock, progress=next_morning)
    assert summary.sent == 2
    folder = tmp_path / "calls"
    for day, customer in (("2026-12-01", today), ("2026-12-02", tomorrow)):
        with (folder / f"calls-{day}-unassigned.csv").open(encoding="utf-8-sig", newline="") as handle:
            assert [row["key"] for row in csv.DictReader(handle, delimiter=";")] == [f"{run}:{customer}:1"]
        assert (folder / f"calls-{day}-unassigned.xlsx").is_file()


def test_a_call_list_tells_the_agent_the_points_the_customer_can_spend_now(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    programme = (
        "\n[loyalty.programmes.bonus]\npoint_value = 1\npending_days = 14\n"
        'earn = [{ name = "base", when = "true", points = "amount * 0.05" }]\n'
    )
    config = workspace(write_config, tmp_path, extra=programme)
    with db.begin() as connection:
        member = add_customer(connection, external_id="M-1", phone="+79161234567", consent_call=True)
        other = add_customer(connection, external_id="N-1", phone="+79031112233", consent_call=True)
        run = add_run(connection)
        queue(connection, run, channel="call", step=1)
    # earned 14 days and an hour before the call list is written: no batch has run since
    earn_purchase(
        db, config.programmes["bonus"], order="O-1", customer="M-1", amount=Decimal(2000),
        now=T0 - dt.timedelta(days=14),
    )  # fmt: skip
    with db.begin() as connection:  # the nightly tier job made the member gold
        connection.execute(update(ACCOUNT).where(ACCOUNT.c.customer_id == member).values(tier="gold"))
    drain(db, config, until_idle=True, clock=Clock(T0 + dt.timedelta(hours=1)))
    with (tmp_path / "calls" / "calls-2026-12-01-unassigned.csv").open(encoding="utf-8-sig", newline="") as f:
        cards = {row["key"]: row for row in csv.DictReader(f, delimiter=";")}
    assert (cards[f"{run}:{member}:1"]["loyalty_balance"], cards[f"{run}:{member}:1"]["tier"]) == (
        "100",
        "gold",
    )
    assert cards[f"{run}:{member}:1"]["customer"] == "M-1"  # as the business knows the customer
    assert (
        cards[f"{run}:{other}:1"]["loyalty_balance"] == cards[f"{run}:{other}:1"]["tier"] == ""
    )  # not a member
