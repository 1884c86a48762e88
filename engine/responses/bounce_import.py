"""``crm bounces import DIR``: delivery status notifications from a Maildir, recorded and acted on.

Each message of the Maildir (``new`` and ``cur``; those already flagged
Seen only with ``include_seen``) is read as a DSN
(:mod:`engine.responses.bounces`). Its original Message-ID names the outbox
row of the email that bounced (``outbox.reference``). Per recipient:

* a hard or soft bounce records a ``bounce`` response (``code`` hard|soft,
  ``detail`` = status and diagnostic, ``source`` "dsn", ``key`` = the DSN's
  own Message-ID and the recipient: importing again records nothing new),
  linked to the outbox row, its campaign and channel; a hard bounce turns a
  ``sent`` or ``delivered`` row ``bounced``;
* a success report (``delivered``) turns a ``sent`` row ``delivered``.

Then the thresholds of ``[bounces]`` (:mod:`engine.responses.bounce_thresholds`)
suppress addresses. Messages that are no DSN, or name no message the engine
sent, are listed as rejects with the reason and left where they are;
processed ones move to ``cur`` with the Seen flag once the transaction has
committed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import mailbox
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from engine.clock import utcnow
from engine.errors import ImportFileError, NotADeliveryReport
from engine.models import BOUNCE, BOUNCED, DELIVERED, OUTBOX, RESPONSE, RUN, SENT
from engine.responses.bounce_thresholds import suppress_bounced
from engine.responses.bounces import HARD, DeliveryReport, parse_report
from engine.settings import BouncesSection
from engine.sql import insert_ignoring

SOURCE = "dsn"
CHUNK = 500


@dataclass(frozen=True)
class BounceReject:
    """A message left in the Maildir, and why."""

    file: str
    reason: str


@dataclass
class BounceImportSummary:
    """What one ``crm bounces import`` did.

    ``read`` messages = processed + ``rejected``; ``hard`` and ``soft`` are
    bounces recorded now, ``already`` those recorded by an earlier import.
    """

    folder: Path
    read: int = 0
    hard: int = 0
    soft: int = 0
    already: int = 0
    delivered: int = 0
    bounced_rows: int = 0
    suppressed: int = 0
    rejects: list[BounceReject] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """How many messages were left in place."""
        return len(self.rejects)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        data = asdict(self)
        data["folder"] = str(self.folder)
        data["rejected"] = self.rejected
        return data

    def describe(self) -> str:
        """One line of counts."""
        return (
            f"bounces from {self.folder}: {self.read} read, {self.hard} hard, {self.soft} soft, "
            f"{self.already} already recorded, {self.delivered} delivery reports, "
            f"{self.suppressed} addresses suppressed, {self.rejected} rejected"
        )


@dataclass(frozen=True)
class _Read:
    """A message read from the Maildir: where it lies, and its report."""

    key: str
    subdir: str
    info: str
    report: DeliveryReport
    own_id: str  # the DSN's Message-ID, or a digest of its content when it has none


@dataclass(frozen=True)
class _Sent:
    """The outbox row of a sent email."""

    id: int
    customer_id: int
    campaign: str


def import_bounces(
    engine: Engine,
    folder: Path,
    *,
    settings: BouncesSection = BouncesSection(),
    include_seen: bool = False,
    now: dt.datetime | None = None,
) -> BounceImportSummary:
    """Read the DSNs of the Maildir ``folder``, record the bounces, apply the thresholds.

    Raises :class:`~engine.errors.ImportFileError` when ``folder`` is not a
    Maildir. Example::

        summary = import_bounces(engine, Path("/var/mail/bounces"), settings=config.settings.bounces)
    """
    folder = Path(folder)
    if not all((folder / sub).is_dir() for sub in ("cur", "new", "tmp")):
        raise ImportFileError(str(folder), "not a Maildir (it needs the folders cur, new and tmp)")
    clock = now or utcnow()
    box = mailbox.Maildir(folder, factory=None, create=False)
    summary = BounceImportSummary(folder=folder)
    processed: list[_Read] = []
    messages = _messages(box, include_seen, summary)
    with engine.begin() as connection:
        while chunk := list(islice(messages, CHUNK)):
            processed += _process(connection, chunk, settings, clock, summary)
    for item in processed:
        _mark_seen(folder, box.colon, item)
    return summary


def _messages(box: mailbox.Maildir, include_seen: bool, summary: BounceImportSummary) -> Iterator[_Read]:
    """The DSNs of the Maildir, in key order; the messages that are none go to the rejects."""
    for key in sorted(box.iterkeys()):
        try:
            message = box.get_message(key)
        except (KeyError, OSError):
            continue  # gone meanwhile (another reader moved it)
        if "S" in message.get_flags() and not include_seen:
            continue
        summary.read += 1
        name = f"{message.get_subdir()}/{key}"
        try:
            report = parse_report(message)
        except NotADeliveryReport as exc:
            summary.rejects.append(BounceReject(name, str(exc)))
            continue
        except (ValueError, TypeError, LookupError, AttributeError) as exc:  # malformed MIME
            summary.rejects.append(BounceReject(name, f"cannot be read as a message ({exc})"))
            continue
        own_id = report.message_id or f"<sha256:{hashlib.sha256(box.get_bytes(key)).hexdigest()[:32]}>"
        yield _Read(key, message.get_subdir(), message.get_info(), report, own_id)


def _process(
    connection: Connection,
    chunk: list[_Read],
    settings: BouncesSection,
    now: dt.datetime,
    summary: BounceImportSummary,
) -> list[_Read]:
    """Record the bounces of ``chunk``; return the messages processed (the others are rejects)."""
    sent = _sent(connection, {item.report.original_message_id for item in chunk})
    values: list[dict[str, Any]] = []
    delivered: set[int] = set()
    processed: list[_Read] = []
    for item in chunk:
        row = sent.get(item.report.original_message_id)
        if row is None:
            reason = f"names no message the engine sent (Message-ID {item.report.original_message_id})"
            summary.rejects.append(BounceReject(f"{item.subdir}/{item.key}", reason))
            continue
        processed.append(item)
        for recipient in item.report.recipients:
            code = recipient.classification
            if code is None:
                if recipient.action == "delivered":
                    delivered.add(row.id)
                continue
            key = f"{item.own_id}|{recipient.recipient}"
            values.append(
                {"outbox_id": row.id, "customer_id": row.customer_id, "kind": BOUNCE, "code": code,
                 "occurred_at": item.report.occurred_at(recipient) or now,
                 "detail": recipient.detail, "source": SOURCE,
                 "key": key if len(key) <= 300 else hashlib.sha256(key.encode()).hexdigest(),
                 "campaign": row.campaign, "channel": "email", "import_id": None, "recorded_at": now}
            )  # fmt: skip
    inserted: list[tuple[int, str]] = []
    if values:
        statement = insert_ignoring(connection, RESPONSE, index_elements=["source", "key"]).returning(
            RESPONSE.c.id, RESPONSE.c.code
        )
        inserted = [(int(id_), str(code)) for id_, code in connection.execute(statement, values)]
    summary.hard += sum(1 for _, code in inserted if code == HARD)
    summary.soft += sum(1 for _, code in inserted if code != HARD)
    summary.already += len(values) - len(inserted)
    hard_rows = sorted({v["outbox_id"] for v in values if v["code"] == HARD})
    summary.bounced_rows += _mark_bounced(connection, hard_rows, now)
    if delivered:
        summary.delivered += connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(sorted(delivered)), OUTBOX.c.state == SENT)
            .values(state=DELIVERED, updated_at=now)
        ).rowcount
    if inserted:
        touched = {v["customer_id"] for v in values}
        summary.suppressed += suppress_bounced(connection, touched, settings, source=SOURCE, now=now)
    return processed


def _sent(connection: Connection, message_ids: set[str]) -> dict[str, _Sent]:
    """The outbox row of each Message-ID the engine sent (email rows whose reference it is)."""
    query = (
        select(OUTBOX.c.reference, OUTBOX.c.id, OUTBOX.c.customer_id, RUN.c.campaign)
        .join(RUN, RUN.c.id == OUTBOX.c.run_id)
        .where(OUTBOX.c.channel == "email", OUTBOX.c.reference.in_(sorted(message_ids)))
    )
    return {row.reference: _Sent(row.id, row.customer_id, row.campaign) for row in connection.execute(query)}


def _mark_bounced(connection: Connection, rows: list[int], now: dt.datetime) -> int:
    """Sent or delivered rows with a hard bounce become ``bounced``, with the bounce's detail."""
    if not rows:
        return 0
    detail = (
        select(RESPONSE.c.detail)
        .where(RESPONSE.c.outbox_id == OUTBOX.c.id, RESPONSE.c.kind == BOUNCE, RESPONSE.c.code == HARD)
        .order_by(RESPONSE.c.occurred_at.desc(), RESPONSE.c.id.desc())
        .limit(1)
        .correlate(OUTBOX)
        .scalar_subquery()
    )
    statement = (
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(rows), OUTBOX.c.state.in_((SENT, DELIVERED)))
        .values(state=BOUNCED, detail=func.coalesce(detail, OUTBOX.c.detail), updated_at=now)
    )
    return int(connection.execute(statement).rowcount)


def _mark_seen(folder: Path, colon: str, item: _Read) -> None:
    """Move a processed message to ``cur`` with the Seen flag (a rename: its bytes stay as they were)."""
    old = folder / item.subdir / (item.key + (colon + item.info if item.info else ""))
    flags = "".join(sorted(set(item.info[2:] if item.info.startswith("2,") else "") | {"S"}))
    new = folder / "cur" / f"{item.key}{colon}2,{flags}"
    with contextlib.suppress(FileNotFoundError):  # moved meanwhile: the bounce is recorded all the same
        os.replace(old, new)


@dataclass(frozen=True)
class BounceEntry:
    """One recorded bounce, as ``crm bounces list`` shows it."""

    occurred_at: dt.datetime
    recipient: str | None
    code: str | None
    detail: str | None
    campaign: str | None
    state: str | None
    source: str


def list_bounces(
    engine: Engine, *, code: str | None = None, limit: int = 50
) -> tuple[int, list[BounceEntry]]:
    """How many bounces are recorded (``code`` hard|soft, or all) and the newest ``limit`` of them."""
    where = [RESPONSE.c.kind == BOUNCE, *([RESPONSE.c.code == code] if code else [])]
    query = (
        select(
            RESPONSE.c.occurred_at, OUTBOX.c.recipient, RESPONSE.c.code, RESPONSE.c.detail,
            RESPONSE.c.campaign, OUTBOX.c.state, RESPONSE.c.source,
        )
        .outerjoin(OUTBOX, OUTBOX.c.id == RESPONSE.c.outbox_id)
        .where(*where)
        .order_by(RESPONSE.c.occurred_at.desc(), RESPONSE.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(RESPONSE).where(*where)).scalar_one()
        return int(count), [BounceEntry(*row) for row in connection.execute(query)]
