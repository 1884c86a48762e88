"""The channel protocol: what every way of contacting a customer implements.

A channel takes a batch of :class:`OutgoingMessage` and answers one
:class:`DeliveryResult` per message, in order. A failure of one message is a
result, never an exception out of the batch. A destination that takes no
message at all because of its surroundings (a Maildir or list folder that
cannot be written, a full disk) raises :class:`~engine.errors.OutputError`
instead: the batch is put back unsent, and the worker stops with the message. Every message carries its
idempotency key (run, customer, step) and the installation whose outbox
holds it; the Message-ID of an email derives from both
(:func:`message_id`): the same on every attempt, never the same in two
databases. Channels that can see what they delivered before (memory,
Maildir, files) deliver a key at most once; for the others (SMTP, gateways)
the outbox hands a key out once, and the deterministic Message-ID makes a
repeat after a crash recognisable.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class DeliveryStatus(enum.Enum):
    """How one message ended at the channel."""

    SENT = "sent"  # handed over (to the mail server, the Maildir, the call list...)
    TEMPORARY_FAILURE = "temporary_failure"  # try again later (4xx, timeout, dropped connection)
    PERMANENT_FAILURE = "permanent_failure"  # do not retry (5xx, invalid address)


@dataclass(frozen=True)
class OutgoingMessage:
    """One contact of one step of one campaign run, ready to send.

    ``key`` is the idempotency key (``run:customer:step``); ``recipient`` the
    address on this channel (email address, E.164 phone, postal address);
    ``details`` what file-based channels list beside it (name, curator,
    calling window, segment, campaign, script...). ``installation`` is the
    id of the database whose outbox holds the message
    (:func:`engine.db.installation_id`): keys repeat from one database to
    the next, so the Message-ID and the Maildir file name mix it in. The
    outbox always sets it; a message made by hand (tests, benchmarks) may
    leave it empty.
    """

    key: str
    customer_id: int
    recipient: str
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    installation: str = ""


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one message; ``detail`` carries the server's answer on failure."""

    key: str
    status: DeliveryStatus
    detail: str | None = None
    reference: str | None = None  # Message-ID, file name, gateway id


class SendJournal(Protocol):
    """Where a channel notes the point of no return of a message, before it passes it.

    An SMTP channel calls :meth:`committing` just before it writes the final
    ``.`` of DATA: until then, a crash leaves nothing at the server (it
    drops an unfinished transaction), after it the server may hold the
    message. The outbox records the key durably, so a worker that dies there
    is known to have handed the message over, and it is not sent again.
    """

    async def committing(self, key: str) -> None:
        """``key`` is about to pass the point of no return; return once that is recorded."""
        ...


@runtime_checkable
class Channel(Protocol):
    """A way of contacting customers (email, call list, SMS...)."""

    name: str

    async def send(
        self, messages: Sequence[OutgoingMessage], *, journal: SendJournal | None = None
    ) -> list[DeliveryResult]:
        """Send a batch; return one result per message, in the same order; never raise for one message.

        :class:`~engine.errors.OutputError` when the destination cannot be
        written at all (see the module docstring); what was delivered before
        it is recognised when the batch is sent again.

        Channels that cannot deliver a key twice (memory, Maildir, list files)
        ignore ``journal``; the others call ``journal.committing(key)`` at the
        point after which the message may have been handed over.
        """
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


def message_digest(key: str, installation: str) -> str:
    """32 hex digits naming the message with idempotency ``key`` of ``installation``.

    The same on every attempt (a retry, a restart, another worker), different
    for the same key of another installation: the left part of the
    Message-ID, and the Maildir file name.
    """
    return hashlib.sha256(f"{installation}:{key}".encode()).hexdigest()[:32]


def message_id(key: str, domain: str, *, installation: str) -> str:
    """The Message-ID of the message with idempotency ``key`` of ``installation``: deterministic, unique.

    RFC 5322 wants a Message-ID unique for ever; receivers that thread or
    de-duplicate by it would hide a second message with the same one. The
    key alone repeats in every database (run 1, customer 1, step 0), so the
    installation id is mixed in; the key keeps it stable across retries,
    which lets a receiver recognise the repeat of a message it had.
    """
    return f"<{message_digest(key, installation)}@{domain}>"
