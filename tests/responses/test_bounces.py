"""Bounces from a Maildir of DSNs on SQLite and PostgreSQL: parsing, recording, thresholds, the Maildir."""

from __future__ import annotations

import datetime as dt
import email
import email.utils
import itertools
import json
import mailbox
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from engine.channels import message_id
from engine.db import installation_id
from engine.errors import ImportFileError, NotADeliveryReport
from engine.models import outbox as states
from engine.responses.bounce_import import import_bounces
from engine.responses.bounces import parse_report
from tests.cli.test_cli import crm, crm_main
from tests.factories import utc
from tests.outbox.factories import OUTBOX, add_run, queue
from tests.responses.workspace import (
    DOMAIN,
    EMAIL_AT,
    FIXTURES,
    add_contacted,
    outbox_ids,
    responses,
    setup,
    suppressions,
)

BOUNCES = FIXTURES / "bounces"
NOW = utc(2026, 12, 20, 9)
#: the Message-IDs the fixtures report on, by the address they were sent to
FIXTURE_IDS = {
    "anna.gone@mail.example": "<0a1b2c3d4e5f60718293a4b5c6d7e8f9@shop.example>",
    "boris@mail.example": "<1b2c3d4e5f60718293a4b5c6d7e8f90a@shop.example>",
    "vera@slow.example": "<2c3d4e5f60718293a4b5c6d7e8f90a1b@shop.example>",
    "g.petrov@corp.example": "<3d4e5f60718293a4b5c6d7e8f90a1b2c@shop.example>",
}
_numbers = itertools.count(1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("postfix_user_unknown.eml", ("anna.gone@mail.example", "failed", "5.1.1", "hard", (2, 9, 4, 11))),
        ("postfix_mailbox_full.eml", ("boris@mail.example", "failed", "4.2.2", "soft", (2, 23, 10, 40))),
        ("postfix_delayed.eml", ("vera@slow.example", "delayed", "4.4.1", "soft", (2, 13, 5, 2))),
        ("exchange_recipient_not_found.eml", ("g.petrov@corp.example", "failed", "5.1.10", "hard",
                                              (2, 9, 5, 31))),
    ],
)  # fmt: skip
def test_a_dsn_names_the_bounced_message_and_how_bad_it_is(name: str, expected: tuple[Any, ...]) -> None:
    report = parse_report(email.message_from_bytes((BOUNCES / name).read_bytes()))
    (recipient,) = report.recipients
    assert report.original_message_id == FIXTURE_IDS[recipient.recipient]
    *fields, (day, hour, minute, second) = expected
    assert [recipient.recipient, recipient.action, recipient.status, recipient.classification] == fields
    assert report.occurred_at(recipient) == utc(2026, 12, day, hour, minute, second)
    assert recipient.detail.startswith(recipient.status + " ")


def test_diagnostics_are_unfolded_and_messages_that_are_no_dsn_say_why() -> None:
    report = parse_report(email.message_from_bytes((BOUNCES / "postfix_user_unknown.eml").read_bytes()))
    assert report.recipients[0].detail == (
        "5.1.1 smtp; 550 5.1.1 <anna.gone@mail.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert report.message_id == "<20261202090411.4Qx7Lk2Vz9z9sWc@mx1.shop.example>"
    with pytest.raises(NotADeliveryReport, match=r"not a delivery status notification \(text/plain;"):
        parse_report(email.message_from_bytes((BOUNCES / "exim_plain_bounce.eml").read_bytes()))
    headless = dsn("<x@shop.example>", "a@b.example", headers=False)
    with pytest.raises(NotADeliveryReport, match="no Message-ID of the bounced message"):
        parse_report(email.message_from_bytes(headless))


def dsn(
    original: str,
    recipient: str,
    *,
    action: str = "failed",
    status: str = "5.1.1",
    at: dt.datetime = utc(2026, 12, 2, 10),
    headers: bool = True,
) -> bytes:
    """A Postfix-style DSN about message ``original`` to ``recipient``."""
    number = next(_numbers)
    returned = (
        "--B\nContent-Type: text/rfc822-headers\n\n"
        f"From: Shop <news@shop.example>\nTo: {recipient}\nMessage-ID: {original}\n\n"
        if headers
        else ""
    )
    return (
        f"Date: {email.utils.format_datetime(at)}\nFrom: MAILER-DAEMON@mx1.shop.example\n"
        f"To: news@shop.example\nMessage-Id: <dsn{number}@mx1.shop.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nThe mail system.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx1.shop.example\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {status[0]}50 {status} problem\n\n{returned}--B--\n"
    ).encode()


def maildir(path: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(path, create=True)
    for message in messages:
        box.add(message)
    return path


def test_bounces_are_recorded_once_rows_bounce_addresses_are_suppressed_and_rejects_stay(
    db: Engine, write_config: Any, tmp_path: Path
) -> None:
    config = setup(write_config, tmp_path)
    run_id, ids = add_contacted(db, {f"C{n}": address for n, address in enumerate(FIXTURE_IDS, 1)})
    with db.begin() as connection:
        for reference, customer_id in zip(FIXTURE_IDS.values(), ids.values(), strict=True):
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.customer_id == customer_id, OUTBOX.c.step == 0)
                .values(reference=reference)
            )
    folder = maildir(tmp_path / "bounces", *(path.read_bytes() for path in sorted(BOUNCES.glob("*.eml"))))

    summary = import_bounces(db, folder, settings=config.settings.bounces, now=NOW)

    assert (summary.read, summary.hard, summary.soft, summary.already) == (6, 2, 2, 0)
    assert (summary.bounced_rows, summary.suppressed, summary.rejected) == (2, 2, 2)
    reasons = sorted(reject.reason for reject in summary.rejects)
    assert reasons == [
        "names no message the engine sent (Message-ID <invoice-1042@billing.shop.example>)",
        "not a delivery status notification (text/plain; expected multipart/report; "
        "report-type=delivery-status)",
    ]
    assert all(reject.file.startswith("new/") for reject in summary.rejects)
    box = mailbox.Maildir(folder, create=False)
    left = {key for key in box.iterkeys() if box.get_message(key).get_subdir() == "new"}
    assert left == {reject.file.removeprefix("new/") for reject in summary.rejects}
    assert sorted(path.name.rsplit(":", 1)[1] for path in (folder / "cur").iterdir()) == ["2,S"] * 4

    c = dict(zip(FIXTURE_IDS, ids.values(), strict=True))
    got = {r["customer_id"]: r for r in responses(db, kind="bounce")}
    outbox = {customer: id_ for (customer, step), id_ in outbox_ids(db, run_id).items() if step == 0}
    anna = got[c["anna.gone@mail.example"]]
    assert (anna["code"], anna["source"], anna["campaign"]) == ("hard", "dsn", "note")
    assert (anna["channel"], anna["outbox_id"]) == ("email", outbox[c["anna.gone@mail.example"]])
    assert anna["key"] == "<20261202090411.4Qx7Lk2Vz9z9sWc@mx1.shop.example>|anna.gone@mail.example"
    assert anna["detail"].startswith("5.1.1 smtp; 550 5.1.1 <anna.gone@mail.example>: Recipient address")
    assert got[c["boris@mail.example"]]["occurred_at"] == utc(2026, 12, 2, 23, 10, 40)
    assert {r: got[c[r]]["code"] for r in FIXTURE_IDS} == {
        "anna.gone@mail.example": "hard", "boris@mail.example": "soft",
        "vera@slow.example": "soft", "g.petrov@corp.example": "hard",
    }  # fmt: skip
    with db.connect() as connection:
        rows = {
            row.customer_id: (row.state, row.detail)
            for row in connection.execute(select(OUTBOX).where(OUTBOX.c.run_id == run_id, OUTBOX.c.step == 0))
        }
    assert rows[c["anna.gone@mail.example"]] == (states.BOUNCED, anna["detail"])
    assert rows[c["g.petrov@corp.example"]][0] == states.BOUNCED
    assert {rows[c["boris@mail.example"]][0], rows[c["vera@slow.example"]][0]} == {states.SENT}
    assert suppressions(db) == {
        ("email", "anna.gone@mail.example", "hard_bounce", c["anna.gone@mail.example"]),
        ("email", "g.petrov@corp.example", "hard_bounce", c["g.petrov@corp.example"]),
    }

    again = import_bounces(db, folder, settings=config.settings.bounces, now=NOW)
    assert (again.read, again.hard, again.soft, again.rejected) == (2, 0, 0, 2)  # only the rejects are unread
    everything = import_bounces(db, folder, settings=config.settings.bounces, include_seen=True, now=NOW)
    assert (everything.read, everything.hard, everything.soft, everything.already) == (6, 0, 0, 4)
    assert (everything.suppressed, everything.rejected) == (0, 2)
    assert len(responses(db, kind="bounce")) == 4


def test_soft_bounces_suppress_at_the_threshold_within_the_window(
    db: Engine, write_config: Any, tmp_path: Path
) -> None:
    config = setup(write_config, tmp_path)
    _, ids = add_contacted(db, {"C1": "anna@mail.example", "C2": "boris@mail.example"})
    sent = _more_emails(db, ids.values(), runs=3)
    anna, boris = (sent[ids["C1"]], sent[ids["C2"]])
    day = utc(2026, 12, 1, 10)

    def at(days: float) -> dt.datetime:
        return day + dt.timedelta(days=days)

    first = maildir(
        tmp_path / "first",
        dsn(anna[0], "anna@mail.example", action="delayed", status="4.4.1", at=at(0)),
        dsn(anna[0], "anna@mail.example", action="delayed", status="4.4.1", at=at(0.2)),  # same message
        dsn(anna[1], "anna@mail.example", status="4.2.2", at=at(10)),
        dsn(boris[0], "boris@mail.example", status="4.2.2", at=at(0)),
        dsn(boris[1], "boris@mail.example", status="4.2.2", at=at(20)),
        dsn(boris[2], "boris@mail.example", status="4.2.2", at=at(45)),  # the first is 45 days before
    )
    summary = import_bounces(db, first, settings=config.settings.bounces, now=NOW)
    assert (summary.read, summary.soft, summary.hard, summary.suppressed) == (6, 6, 0, 0)
    assert suppressions(db) == set()

    third = maildir(tmp_path / "second", dsn(anna[2], "anna@mail.example", status="4.2.2", at=at(25)))
    summary = import_bounces(db, third, settings=config.settings.bounces, now=NOW)
    assert (summary.soft, summary.suppressed) == (1, 1)
    assert suppressions(db) == {("email", "anna@mail.example", "soft_bounce", ids["C1"])}


def test_hard_bounces_at_send_time_count_toward_the_threshold_and_success_reports_deliver(
    db: Engine, write_config: Any, tmp_path: Path
) -> None:
    config = setup(write_config, tmp_path, hard_threshold=2)
    run_id, ids = add_contacted(
        db, {"C1": "anna@mail.example", "C2": "boris@mail.example", "C3": "vera@mail.example"}
    )
    sent = _more_emails(db, ids.values(), runs=1)
    with db.begin() as connection:  # the server refused C1's first email while sending
        connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.run_id == run_id, OUTBOX.c.customer_id == ids["C1"], OUTBOX.c.step == 0)
            .values(state=states.BOUNCED, detail="550 5.1.1 user unknown")
        )
    folder = maildir(
        tmp_path / "bounces",
        dsn(sent[ids["C1"]][0], "anna@mail.example"),
        dsn(sent[ids["C2"]][0], "boris@mail.example"),
        dsn(sent[ids["C3"]][0], "vera@mail.example", action="delivered", status="2.0.0"),
    )
    summary = import_bounces(db, folder, settings=config.settings.bounces, now=NOW)
    assert (summary.hard, summary.delivered, summary.suppressed) == (2, 1, 1)
    assert suppressions(db) == {("email", "anna@mail.example", "hard_bounce", ids["C1"])}
    with db.connect() as connection:
        state = connection.execute(
            select(OUTBOX.c.state).where(OUTBOX.c.reference == sent[ids["C3"]][0])
        ).scalar_one()
    assert state == states.DELIVERED


def _more_emails(db: Engine, customers: Any, *, runs: int) -> dict[int, list[str]]:
    """``runs`` more runs, each emailing every customer (sent); their Message-IDs by customer."""
    ids = list(customers)
    sent: dict[int, list[str]] = {customer: [] for customer in ids}
    installation = installation_id(db)
    with db.begin() as connection:
        for n in range(runs):
            run_id = add_run(connection, scheduled_for=EMAIL_AT + dt.timedelta(days=n + 1))
            queue(connection, run_id, ids, channel="email", step=0, scheduled_at=EMAIL_AT)
            for customer in ids:
                reference = message_id(f"{run_id}:{customer}:0", DOMAIN, installation=installation)
                connection.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.run_id == run_id, OUTBOX.c.customer_id == customer)
                    .values(state=states.SENT, sent_at=EMAIL_AT, reference=reference)
                )
                sent[customer].append(reference)
    return sent


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the command line: one database is enough
def test_crm_bounces_import_and_list(
    db: Engine, write_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(write_config, tmp_path)
    _, ids = add_contacted(db, {"C1": "anna@mail.example"})
    sent = _more_emails(db, ids.values(), runs=1)
    folder = maildir(
        tmp_path / "bounces",
        dsn(sent[ids["C1"]][0], "anna@mail.example"),
        (BOUNCES / "exim_plain_bounce.eml").read_bytes(),
    )
    done = crm("bounces", "import", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["read"], summary["hard"], summary["suppressed"], summary["rejected"]) == (2, 1, 1, 1)
    assert crm_main(["bounces", "list", "--code", "hard", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["count"] == 1
    (entry,) = listed["entries"]
    assert (entry["recipient"], entry["code"], entry["state"]) == ("anna@mail.example", "hard", "bounced")
    assert crm_main(["bounces", "list"]) == 0
    assert "bounces: 1" in capsys.readouterr().out
    with pytest.raises(ImportFileError, match="not a Maildir"):
        import_bounces(db, tmp_path)
