"""The SMTP channel's point of no return: the journal hears of a message just before its final ".".

Real servers on loopback: aiosmtpd (no PIPELINING) and a scripted server
(PIPELINING, faults at exact points of the transaction).

What a dropped connection means depends on where it happens:

* after the final ``.`` (aiosmtpd's "drop" answer): the message passed the
  point of no return, so the journal holds its key; the result is still a
  temporary failure, since no 2xx came back (the server may or may not
  have queued it, and the deterministic Message-ID makes a repeat
  recognisable);
* in the middle of DATA, seen by the channel before it writes the final
  ``.`` (a large message the server stops reading): no journal entry, a
  temporary failure, nothing at the server;
* in the middle of DATA, but seen only after the final ``.`` was written
  (the message is written without waiting, so a drop right after 354 is
  usually noticed only when the answer does not come): a temporary failure
  and nothing at the server; the journal may hold the key once, a
  conservative "may have been handed over" that only matters if the worker
  dies in that instant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email import message_from_bytes

import pytest

from engine.channels import DeliveryStatus, OutgoingMessage, message_id
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings
from tests.channels.scripted_smtp import Script, scripted_server
from tests.channels.smtp_servers import Recorder, smtp_server


class Journal:
    """Records each key; can fail for some keys, or check something at the point of no return."""

    def __init__(self, fail: set[str] | None = None, check: Callable[[str], None] | None = None) -> None:
        self.keys: list[str] = []
        self.fail = fail or set()
        self.check = check

    async def committing(self, key: str) -> None:
        if key in self.fail:
            raise RuntimeError("database is locked")
        if self.check is not None:
            self.check(key)
        await asyncio.sleep(0)  # an outbox awaits its database here
        self.keys.append(key)


def _batch(count: int, **fields: object) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(  # type: ignore[arg-type]
            **{
                "key": f"run3:{n}:0",
                "customer_id": n,
                "recipient": f"Клиент {n} <c{n}@example.ru>",
                "subject": f"Письмо {n}",
                "html": f"<p>Здравствуйте, {n}!</p>",
                **fields,
            }
        )
        for n in range(count)
    ]


def _channel(port: int, concurrency: int = 1, timeout: float = 5) -> SmtpEmailChannel:
    settings = SmtpSettings(host="127.0.0.1", port=port, timeout=timeout, concurrency=concurrency)
    return SmtpEmailChannel(settings, sender="Shop <news@shop.example>", domain="shop.example")


def _ids(messages: list[bytes]) -> list[str]:
    return [str(message_from_bytes(m)["Message-ID"]) for m in messages]


@pytest.mark.parametrize("server", ["aiosmtpd", "pipelining"])
def test_the_journal_hears_of_each_sent_message_once_before_the_server_has_it(server: str) -> None:
    batch = _batch(40)
    recorder, script = Recorder(), Script()

    def not_yet_delivered(key: str) -> None:
        delivered = recorder.message_ids if server == "aiosmtpd" else _ids(script.received)
        assert message_id(key, "shop.example", installation="") not in delivered

    journal = Journal(check=not_yet_delivered)
    serving = smtp_server(recorder) if server == "aiosmtpd" else scripted_server(script)
    with serving as port:
        results = asyncio.run(_channel(port, concurrency=4).send(batch, journal=journal))
    assert [r.status for r in results] == [DeliveryStatus.SENT] * 40
    assert sorted(journal.keys) == sorted(m.key for m in batch)
    delivered = recorder.message_ids if server == "aiosmtpd" else _ids(script.received)
    assert sorted(delivered) == sorted(message_id(m.key, "shop.example", installation="") for m in batch)


def test_pipelining_sends_the_envelope_in_one_go() -> None:
    script = Script()
    with scripted_server(script) as port:
        results = asyncio.run(_channel(port).send(_batch(2), journal=Journal()))
    assert [r.status for r in results] == [DeliveryStatus.SENT] * 2
    verbs = [c.split(b" ")[0].split(b":")[0] for c in script.commands]
    assert verbs == [b"EHLO", b"MAIL", b"RCPT", b"DATA", b"MAIL", b"RCPT", b"DATA", b"QUIT"]
    assert b"BODY=8BITMIME" in script.commands[1] and b"SIZE=" in script.commands[1]


@pytest.mark.parametrize("server", ["aiosmtpd", "pipelining"])
def test_refused_recipients_never_reach_the_journal(server: str) -> None:
    refused = "c1@example.ru"
    recorder = Recorder(rcpt_answers={refused: "550 5.1.1 no such user"})
    script = Script(rcpt_answers={refused: "550 5.1.1 no such user\nreally not"})
    journal = Journal()
    serving = smtp_server(recorder) if server == "aiosmtpd" else scripted_server(script)
    with serving as port:
        results = asyncio.run(_channel(port).send(_batch(3), journal=journal))
    assert [r.status for r in results] == [
        DeliveryStatus.SENT,
        DeliveryStatus.PERMANENT_FAILURE,
        DeliveryStatus.SENT,
    ]
    assert (results[1].detail or "").startswith("550 5.1.1 no such user")
    assert journal.keys == ["run3:0:0", "run3:2:0"]


def test_451_after_the_final_dot_is_temporary_and_was_journaled() -> None:
    journal = Journal()
    with scripted_server(Script(final_answers=["451 4.3.0 try again\nlater"])) as port:
        results = asyncio.run(_channel(port).send(_batch(2), journal=journal))
    assert results[0].status is DeliveryStatus.TEMPORARY_FAILURE
    assert results[0].detail == "451 4.3.0 try again\nlater"
    assert results[1].status is DeliveryStatus.SENT
    assert journal.keys == ["run3:0:0", "run3:1:0"]  # both passed the point of no return


def test_a_drop_after_the_final_dot_is_temporary_and_was_journaled() -> None:
    recorder = Recorder(data_answers=["drop"])  # aiosmtpd answers DATA only once it has the final "."
    journal = Journal()
    with smtp_server(recorder) as port:
        results = asyncio.run(_channel(port).send(_batch(3), journal=journal))
    assert [r.status for r in results] == [
        DeliveryStatus.TEMPORARY_FAILURE,
        DeliveryStatus.SENT,
        DeliveryStatus.SENT,
    ]
    assert journal.keys == ["run3:0:0", "run3:1:0", "run3:2:0"]
    assert len(recorder.message_ids) == 2


def test_a_drop_mid_data_seen_before_the_final_dot_leaves_no_journal_entry() -> None:
    big = "<p>" + "Скидка 15 % на всё. " * 400_000 + "</p>"  # 16 MB: the channel waits to write it
    batch = [*_batch(1, html=big, text="Скидка"), *_batch(2)[1:]]
    script = Script(drop_after_bytes=64 * 1024)
    journal = Journal()
    with scripted_server(script) as port:
        results = asyncio.run(_channel(port).send(batch, journal=journal))
    assert results[0].status is DeliveryStatus.TEMPORARY_FAILURE
    assert results[1].status is DeliveryStatus.SENT
    assert journal.keys == ["run3:1:0"]
    assert _ids(script.received) == [message_id("run3:1:0", "shop.example", installation="")]
    assert script.sessions == 2  # a new connection for the next message


def test_a_server_that_stops_reading_mid_data_times_out_before_the_final_dot() -> None:
    big = "<p>" + "Скидка 15 % на всё. " * 400_000 + "</p>"
    journal = Journal()
    with scripted_server(Script(stall_after_bytes=64 * 1024)) as port:
        [result] = asyncio.run(
            _channel(port, timeout=0.5).send(_batch(1, html=big, text="Скидка"), journal=journal)
        )
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE and "Timed out" in (result.detail or "")
    assert journal.keys == []


def test_a_drop_right_after_354_is_temporary_and_leaves_nothing_at_the_server() -> None:
    script = Script(drop_after_bytes=0)
    journal = Journal()
    with scripted_server(script) as port:
        results = asyncio.run(_channel(port).send(_batch(2), journal=journal))
    assert [r.status for r in results] == [DeliveryStatus.TEMPORARY_FAILURE, DeliveryStatus.SENT]
    assert _ids(script.received) == [message_id("run3:1:0", "shop.example", installation="")]
    # the drop may be seen before or after the point of no return: at most one conservative entry
    assert journal.keys.count("run3:0:0") <= 1 and journal.keys.count("run3:1:0") == 1


def test_no_answer_after_the_final_dot_times_out_as_temporary() -> None:
    journal = Journal()
    with scripted_server(Script(silent_after_data=True)) as port:
        [result] = asyncio.run(_channel(port, timeout=0.5).send(_batch(1), journal=journal))
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE and "Timed out" in (result.detail or "")
    assert journal.keys == ["run3:0:0"]


def test_a_failing_journal_stops_the_message_before_its_final_dot() -> None:
    recorder = Recorder()
    journal = Journal(fail={"run3:1:0"})
    with smtp_server(recorder) as port:
        results = asyncio.run(_channel(port).send(_batch(3), journal=journal))
    assert [r.status for r in results] == [
        DeliveryStatus.SENT,
        DeliveryStatus.TEMPORARY_FAILURE,
        DeliveryStatus.SENT,
    ]
    assert "journal" in (results[1].detail or "") and "database is locked" in (results[1].detail or "")
    assert sorted(recorder.message_ids) == sorted(
        message_id(key, "shop.example", installation="") for key in ("run3:0:0", "run3:2:0")
    )
    assert journal.keys == ["run3:0:0", "run3:2:0"]


def test_cancelled_in_the_journal_nothing_is_delivered() -> None:
    recorder = Recorder()

    class Stuck:
        async def committing(self, key: str) -> None:
            await asyncio.sleep(30)

    async def run(port: int) -> None:
        sending = asyncio.ensure_future(_channel(port).send(_batch(1), journal=Stuck()))
        await asyncio.sleep(0.3)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending

    with smtp_server(recorder) as port:
        asyncio.run(run(port))
    assert recorder.message_ids == []


def test_dot_stuffing_survives_the_trip() -> None:
    text = ".starts with a dot\n..two dots\n.\nend\n"
    script = Script()
    with scripted_server(script) as port:
        [result] = asyncio.run(_channel(port).send(_batch(1, html=None, text=text), journal=Journal()))
    assert result.status is DeliveryStatus.SENT
    [received] = script.received
    assert message_from_bytes(received).get_payload(decode=True).decode().replace("\r\n", "\n") == text
