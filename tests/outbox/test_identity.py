"""Message-IDs: unique per installation, the same on every attempt of one message."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.channels import SmtpEmailChannel, SmtpSettings, message_id
from engine.db import installation_id
from engine.models import outbox as states
from engine.outbox import drain
from tests.channels.smtp_servers import Recorder, smtp_server
from tests.db.fresh import fresh_database
from tests.factories import add_customer
from tests.outbox.factories import T0, Clock, add_run, queue, rows_of, workspace


def _one_email(db: Engine) -> tuple[int, int]:
    with db.begin() as connection:
        customer = add_customer(connection, first_name="Анна", email="anna@example.ru", consent_email=True)
        run = add_run(connection)
        queue(connection, run)
    return run, customer


def test_two_new_databases_never_give_the_same_message_id(  # type: ignore[no-untyped-def]
    db_url: str, write_config, tmp_path: Path
) -> None:
    # a rebuilt database (a new demo, a second instance) sends run 1, customer 1, step 0 again, from
    # the same sender domain and into the same Maildir: a message of its own, not a repeat
    config = workspace(write_config, tmp_path)
    kind = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    references = []
    for _ in range(2):
        with fresh_database(kind, tmp_path) as fresh:
            run, customer = _one_email(fresh)
            assert drain(fresh, config, until_idle=True, clock=Clock(T0)).delivered == 1
            row = rows_of(fresh, run)[(customer, 0)]
            assert row.reference == message_id(
                f"{run}:{customer}:0", "shop.example", installation=installation_id(fresh)
            )
            references.append((f"{run}:{customer}:0", row.reference))
    (first_key, first), (second_key, second) = references
    assert first_key == second_key and first != second
    stored = {
        str(message_from_bytes(p.read_bytes())["Message-ID"])
        for p in (tmp_path / "maildir" / "new").iterdir()
    }
    assert stored == {first, second}


class EveryAttempt(Recorder):
    """A recorder that also notes the Message-ID of every message it refused."""

    def __init__(self, data_answers: list[str]) -> None:
        super().__init__(data_answers=data_answers)
        self.attempts: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts.append(str(message_from_bytes(envelope.content)["Message-ID"]))
        return await super().handle_DATA(server, session, envelope)


def test_a_retry_carries_the_message_id_of_the_first_attempt(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path)
    run, customer = _one_email(db)
    recorder = EveryAttempt(data_answers=["451 4.3.0 try again later", "451 4.3.0 still busy"])
    clock = Clock(T0)
    with smtp_server(recorder) as port:
        settings = SmtpSettings(host="127.0.0.1", port=port, timeout=5)
        # an injected channel knows nothing of the database: the installation comes with each message
        channel = SmtpEmailChannel(settings, sender="Shop <news@shop.example>", domain="shop.example")
        for _ in range(3):
            drain(db, config, channels={"email": channel}, until_idle=True, clock=clock)
            clock.advance(minutes=5)
    row = rows_of(db, run)[(customer, 0)]
    expected = message_id(f"{run}:{customer}:0", "shop.example", installation=installation_id(db))
    assert (row.state, row.attempts, row.reference) == (states.SENT, 3, expected)
    assert recorder.attempts == [expected] * 3 and recorder.message_ids == [expected]
