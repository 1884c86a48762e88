"""SMS through a real HTTP gateway, letters and meetings as list files: the same worker, the same records."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from engine.models import outbox as states
from engine.outbox import DrainSummary, drain
from tests.channels.http_gateway import Gateway, http_gateway
from tests.factories import add_customer
from tests.outbox.factories import T0, Clock, add_run, queue, rows_of, workspace

CAMPAIGN = """
name = "Spring letters"
segment = "everyone"
strategy = "loyalty"
start = 2026-01-01
at = 2026-12-01T12:00:00

[[steps]]
channel = "sms"
template = "sms.txt"

[[steps]]
channel = "post"
letter = "letter.md"

[[steps]]
channel = "meeting"
script = "agenda.md"
"""


def _templates(tmp_path: Path) -> None:
    templates = tmp_path / "campaigns" / "templates"
    (templates / "sms.txt").write_text("{{ customer.first_name }}: -10 % until Sunday <3\n", encoding="utf-8")
    (templates / "letter.md").write_text("Dear {{ customer.first_name }}, =SUM(A1)", encoding="utf-8")
    (templates / "agenda.md").write_text("Renew the contract of {{ customer.company }}", encoding="utf-8")


def test_sms_goes_through_the_gateway_with_retries_and_refusals(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gateway = Gateway(answers={"+79160000002": (400, "invalid number"), "+79160000003": (503, "busy")})
    with http_gateway(gateway) as url:
        config = workspace(
            write_config,
            tmp_path,
            campaign=CAMPAIGN,
            extra=f'\n[channels.sms]\nurl = "{url}"\ntoken = "t0k"\nsender = "SHOP"\n',
        )
        _templates(tmp_path)
        with db.begin() as connection:
            ok, bad, busy = (
                add_customer(connection, first_name=name, phone=f"+7916000000{n}", consent_sms=True)
                for n, name in ((1, "Анна"), (2, "Олег"), (3, "Ира"))
            )
            run = add_run(connection)
            queue(connection, run, channel="sms")
        seen: list[int] = []
        summary = drain(
            db, config, until_idle=True, clock=Clock(), progress=lambda s: seen.append(s.processed)
        )

    assert (summary.sent, summary.failed, summary.retrying) == (1, 1, 1) and seen == [3]
    [body] = gateway.received
    assert body == {
        "id": f"{run}:{ok}:0",
        "to": "+79160000001",
        "text": "Анна: -10 % until Sunday <3",
        "sender": "SHOP",
        "authorization": "Bearer t0k",
    }
    rows = rows_of(db, run)
    assert rows[(ok, 0)].state == states.SENT and rows[(ok, 0)].reference == f"gw-{run}:{ok}:0"
    assert rows[(bad, 0)].state == states.FAILED and rows[(bad, 0)].detail == "400 invalid number"
    assert rows[(busy, 0)].state == states.QUEUED and rows[(busy, 0)].detail == "503 busy"


def test_letters_and_meetings_are_listed_for_the_print_shop_and_the_curators(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path, campaign=CAMPAIGN)
    _templates(tmp_path)
    with db.begin() as connection:
        anna = add_customer(
            connection,
            first_name="Анна",
            address="Moscow, Tverskaya 1",
            country="RU",
            consent_post=True,
        )
        firm = add_customer(
            connection, first_name="Олег", company="Roga LLC", phone="+79031112233", curator="Sidorova"
        )
        run = add_run(connection)
        queue(connection, run, [anna], channel="post", step=1)
        queue(connection, run, [firm], channel="meeting", step=2)
    summary: DrainSummary = drain(db, config, until_idle=True, clock=Clock(T0 + dt.timedelta(hours=1)))

    assert summary.sent == 2 and summary.by_channel == {"post": 1, "meeting": 1}
    with (tmp_path / "outbox" / "post" / "letters-2026-12-01.csv").open(encoding="utf-8-sig") as handle:
        [letter] = list(csv.DictReader(handle, delimiter=";"))
    assert (letter["address"], letter["country"], letter["campaign"]) == (
        "Moscow, Tverskaya 1",
        "RU",
        "Spring letters",
    )
    assert letter["letter"] == "Dear Анна, =SUM(A1)"  # not at the start of the cell: no formula
    path = tmp_path / "outbox" / "meetings" / "meetings-2026-12-01-Sidorova.csv"
    with path.open(encoding="utf-8-sig") as handle:
        [meeting] = list(csv.DictReader(handle, delimiter=";"))
    assert (meeting["company"], meeting["phone"], meeting["curator"]) == (
        "Roga LLC",
        "+79031112233",
        "Sidorova",
    )
    assert meeting["agenda"] == "Renew the contract of Roga LLC"
    assert {row.state for row in rows_of(db, run).values()} == {states.SENT}
