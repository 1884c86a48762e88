"""The daily jobs that move points by the calendar: activation out of the return window, and expiry.

* :func:`activate_due`: every lot whose ``available_at`` has come and that
  still has points in ``pending`` gets operation ``activate:<lot>`` with two
  entries, pending -r and available +r (``related_id``: the entry that
  filled the lot). Then every account that owes points (``debt``) and got
  points available in this run repays them (:func:`engine.loyalty.ledger.repay_debts`).
* :func:`expire_due`: holds past their timeout are voided first
  (:func:`engine.loyalty.ledger.redemption.void_expired_holds`: points released on a
  lot that has expired expire with it). Then every lot past its
  ``expires_at`` with points left gets operation ``expire:<lot>``: available
  -r, or pending -r if the lot never left the return window, and its
  ``remaining`` drops to 0. Points held on such a lot stay held: the hold's
  capture or void decides them. With ``expiry = "inactivity"``, every lot of
  an account idle for ``expiry_after`` expires the same way (same key: a lot
  expires once). An account's last activity is ``last_activity_at``, else its
  latest earn, redemption or capture, else its opening.

These are the operations :func:`engine.loyalty.ledger.settle` posts when a
command reaches an account first; whichever comes first posts them, the
other finds nothing to do. Work goes by chunks of accounts, each chunk one
transaction that locks its accounts and writes with one statement per table
(operations, entries, accounts, lots), so a crash loses at most the chunk in
flight and a second run posts nothing new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Row,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)

from engine.clock import utcnow
from engine.db import write_transaction
from engine.loyalty.batch import batch_sql
from engine.loyalty.ledger import customer_label_sql, lock_accounts, repay_debts, void_expired_holds
from engine.loyalty.programme import Programme
from engine.models import (
    ACCOUNT,
    ACTIVATE,
    AVAILABLE,
    CAPTURE,
    CUSTOMER,
    EARN,
    ENTRY,
    EXPIRE,
    LOT,
    OPERATION,
    PENDING,
    REDEEM,
)
from engine.sql import Sha256Hex, json_object, typed_text

#: accounts per transaction
CHUNK = 500
#: what counts as customer activity when ``last_activity_at`` was never set
ACTIVITY_KINDS = (EARN, REDEEM, CAPTURE)


@dataclass
class ActivationResult:
    """What :func:`activate_due` posted."""

    lots: int = 0
    points: int = 0
    accounts: int = 0
    repaid: int = 0  # points of debt repaid from them


@dataclass
class ExpiryResult:
    """What :func:`expire_due` posted: lots past their date, and lots of idle accounts."""

    lots: int = 0
    points: int = 0
    accounts: int = 0
    inactivity_lots: int = 0  # of ``lots``, those expired because their account was idle
    voided_holds: int = 0


@dataclass(frozen=True)
class ExpiringLot:
    """A lot that would expire (``crm loyalty expire --dry-run``)."""

    customer: str
    lot: int
    points: int
    expires_at: dt.datetime | None
    reason: str  # "expired" (its date has come) or "inactivity"


@dataclass
class ExpiryPreview:
    """What :func:`expire_due` would post now, without posting it."""

    lots: int = 0
    points: int = 0
    accounts: int = 0
    shown: list[ExpiringLot] = field(default_factory=list)


def _operation(programme: Programme, prefix: str, lot: Any) -> Select[Any]:
    """The id of the lot's ``<prefix><lot>`` operation (an index lookup on the unique key)."""
    return select(OPERATION.c.id).where(
        OPERATION.c.programme == programme.name, OPERATION.c.key == batch_sql.key(prefix, lot)
    )


def _unposted(programme: Programme, prefix: str, lot: Any = LOT.c.id) -> ColumnElement[bool]:
    """True for a lot without a ``<prefix><lot>`` operation yet."""
    return batch_sql.absent(_operation(programme, prefix, lot))


def _in_bucket(bucket: str) -> ColumnElement[int]:
    """The lot's points in ``bucket``, looked up per lot (``ix_loyalty_entry_lot``), whatever the stats."""
    return (
        select(func.coalesce(func.sum(ENTRY.c.points), 0))
        .where(ENTRY.c.lot_id == LOT.c.id, ENTRY.c.bucket == bucket)
        .scalar_subquery()
    )


def _last_activity() -> ColumnElement[dt.datetime]:
    latest = (
        select(func.max(ENTRY.c.posted_at))
        .where(ENTRY.c.account_id == ACCOUNT.c.id, ENTRY.c.kind.in_(ACTIVITY_KINDS))
        .scalar_subquery()
    )
    return func.coalesce(ACCOUNT.c.last_activity_at, latest, ACCOUNT.c.created_at)


def _idle(programme: Programme, now: dt.datetime) -> ColumnElement[bool]:
    assert programme.inactivity is not None
    return _last_activity() <= batch_sql.at(now - programme.inactivity)


def _chunks(
    engine: Engine, candidates: Callable[[int], Select[Any]], work: Callable[[Connection, list[int]], None]
) -> None:
    """Run ``work`` on chunks of account ids, each chunk locked in its own transaction."""
    last = 0
    while True:
        with write_transaction(engine) as connection:
            ids = [int(i) for i in connection.execute(candidates(last).limit(CHUNK)).scalars()]
            if not ids:
                return
            lock_accounts(connection, ids)
            work(connection, ids)
        last = ids[-1]


def _lots(programme: Programme, condition: ColumnElement[bool], *, activation: bool) -> Select[Any]:
    """Lots of ``condition`` with points left (in ``pending`` for an activation), per bucket.

    Columns ``id``, ``account_id``, ``pending``, ``available`` and ``related``
    (for an activation, the entry that filled the lot).
    """
    filled_by: ColumnElement[Any] = (
        select(func.min(ENTRY.c.id))
        .where(ENTRY.c.lot_id == LOT.c.id, ENTRY.c.points > 0, ENTRY.c.kind != ACTIVATE)
        .scalar_subquery()
        if activation
        else cast(null(), Integer)
    )
    lots = (
        select(
            LOT.c.id,
            LOT.c.account_id,
            _in_bucket(PENDING).label("pending"),
            _in_bucket(AVAILABLE).label("available"),
            filled_by.label("related"),
        )
        .select_from(LOT.join(ACCOUNT, ACCOUNT.c.id == LOT.c.account_id))
        .where(ACCOUNT.c.programme == programme.name, condition, LOT.c.remaining > 0)
        .subquery()
    )
    left = lots.c.pending if activation else lots.c.pending + lots.c.available
    return select(lots).where(left > 0)


def _post(
    connection: Connection,
    programme: Programme,
    command: str,
    lots: Select[Any],
    now: dt.datetime,
    *,
    detail: dict[str, str] | None = None,
) -> list[Row[Any]]:
    """Post ``command`` on ``lots`` (see :func:`_lots`) not yet posted; returns the entries it wrote.

    One ``INSERT ... SELECT`` for the operations, one for their entries (each
    lot's operation is found by its key; an operation with entries is
    skipped); then the accounts' caches, and for an expiry the lots' remainders.
    """
    due = lots.subquery("due")
    left = due.c.pending if command == ACTIVATE else due.c.pending + due.c.available
    # as posting.request_hash writes it
    request = batch_sql.key(f'{{"command":"{command}","lot":', due.c.id, "}")
    connection.execute(
        insert(OPERATION).from_select(
            [
                "programme",
                "key",
                "command",
                "request_hash",
                "account_id",
                "config_version",
                "result",
                "created_at",
            ],
            select(
                literal(programme.name, String),
                batch_sql.key(f"{command}:", due.c.id),
                literal(command, String),
                Sha256Hex(request),
                due.c.account_id,
                literal(programme.config_version, String),
                json_object(points=left, lot=due.c.id),
                batch_sql.at(now),
            ).where(_unposted(programme, f"{command}:", due.c.id)),
        )
    )
    buckets = union_all(
        select(literal_column(f"'{PENDING}'").label("bucket")),
        select(literal_column(f"'{AVAILABLE}'").label("bucket")),
    ).subquery("buckets")
    in_bucket = case((buckets.c.bucket == PENDING, due.c.pending), else_=due.c.available)
    points = (
        case((buckets.c.bucket == PENDING, -due.c.pending), else_=due.c.pending)
        if command == ACTIVATE
        else -in_bucket
    )
    written = json_object(**{k: typed_text(v) for k, v in detail.items()}) if detail else null()
    operation = _operation(programme, f"{command}:", due.c.id).correlate(due).scalar_subquery()
    entries = connection.execute(
        insert(ENTRY)
        .from_select(
            [
                "operation_id",
                "account_id",
                "lot_id",
                "kind",
                "bucket",
                "points",
                "related_id",
                "detail",
                "posted_at",
            ],
            select(
                operation,
                due.c.account_id,
                due.c.id,
                literal(command, String),
                buckets.c.bucket,
                points,
                due.c.related,
                written,
                batch_sql.at(now),
            )
            .select_from(due.join(buckets, true()))
            .where(
                points != 0, batch_sql.absent(select(ENTRY.c.id).where(ENTRY.c.operation_id == operation))
            ),
        )
        .returning(ENTRY.c.account_id, ENTRY.c.lot_id, ENTRY.c.bucket, ENTRY.c.points)
    ).all()
    deltas: dict[int, dict[str, int]] = {}
    gone: dict[int, int] = {}
    for entry in entries:
        account = deltas.setdefault(entry.account_id, {PENDING: 0, AVAILABLE: 0})
        account[entry.bucket] += entry.points
        gone[entry.lot_id] = gone.get(entry.lot_id, 0) - entry.points
    if deltas:
        connection.execute(
            update(ACCOUNT)
            .where(ACCOUNT.c.id == bindparam("account"))
            .values(
                pending=ACCOUNT.c.pending + bindparam("d_pending"),
                available=ACCOUNT.c.available + bindparam("d_available"),
                updated_at=now,
            ),
            [{"account": a, "d_pending": d[PENDING], "d_available": d[AVAILABLE]} for a, d in deltas.items()],
        )
    if command == EXPIRE and gone:
        connection.execute(
            update(LOT)
            .where(LOT.c.id == bindparam("lot"))
            .values(remaining=LOT.c.remaining - bindparam("gone")),
            [{"lot": lot, "gone": n} for lot, n in gone.items()],
        )
    return list(entries)


def _count(result: ActivationResult | ExpiryResult, entries: list[Row[Any]]) -> int:
    """Add what ``entries`` posted to ``result``; returns the lots."""
    lots = len({entry.lot_id for entry in entries})
    result.lots += lots
    if isinstance(result, ActivationResult):
        result.points += sum(entry.points for entry in entries if entry.bucket == AVAILABLE)
    else:
        result.points -= sum(entry.points for entry in entries)
    result.accounts += len({entry.account_id for entry in entries})
    return lots


def _past_date(now: dt.datetime) -> ColumnElement[bool]:
    return and_(LOT.c.expires_at.is_not(None), LOT.c.expires_at <= batch_sql.at(now))


def activate_due(engine: Engine, programme: Programme, *, now: dt.datetime | None = None) -> ActivationResult:
    """Move every lot whose return window has ended from pending to available; then repay debts."""
    now = now or utcnow()
    result = ActivationResult()

    def candidates(last: int) -> Select[Any]:
        return (
            select(LOT.c.account_id)
            .distinct()
            .select_from(LOT.join(ACCOUNT, ACCOUNT.c.id == LOT.c.account_id))
            .where(
                ACCOUNT.c.programme == programme.name,
                ACCOUNT.c.pending > 0,
                LOT.c.available_at <= batch_sql.at(now),
                LOT.c.remaining > 0,
                LOT.c.account_id > last,
            )
            .order_by(LOT.c.account_id)
        )

    def activate(connection: Connection, ids: list[int]) -> None:
        due = and_(LOT.c.account_id.in_(ids), LOT.c.available_at <= batch_sql.at(now))
        _count(result, _post(connection, programme, ACTIVATE, _lots(programme, due, activation=True), now))

    _chunks(engine, candidates, activate)

    def debtors(last: int) -> Select[Any]:
        return (
            select(ACCOUNT.c.id)
            .where(
                ACCOUNT.c.programme == programme.name,
                ACCOUNT.c.debt > 0,
                ACCOUNT.c.available > 0,
                ACCOUNT.c.id > last,
                # only new points pay debts: those this run made available
                select(ENTRY.c.id)
                .where(
                    ENTRY.c.account_id == ACCOUNT.c.id,
                    ENTRY.c.kind == ACTIVATE,
                    ENTRY.c.bucket == AVAILABLE,
                    ENTRY.c.posted_at == batch_sql.at(now),
                )
                .exists(),
            )
            .order_by(ACCOUNT.c.id)
        )

    def repay(connection: Connection, ids: list[int]) -> None:
        result.repaid += repay_debts(connection, programme, ids, now)

    _chunks(engine, debtors, repay)
    return result


def expire_due(engine: Engine, programme: Programme, *, now: dt.datetime | None = None) -> ExpiryResult:
    """Void holds past their timeout, then expire every lot past its date (and lots of idle accounts)."""
    now = now or utcnow()
    result = ExpiryResult(voided_holds=void_expired_holds(engine, programme, now))

    def by_date(last: int) -> Select[Any]:
        return (
            select(LOT.c.account_id)
            .distinct()
            .select_from(LOT.join(ACCOUNT, ACCOUNT.c.id == LOT.c.account_id))
            .where(
                ACCOUNT.c.programme == programme.name,
                _past_date(now),
                LOT.c.remaining > 0,
                _unposted(programme, f"{EXPIRE}:"),
                LOT.c.account_id > last,
            )
            .order_by(LOT.c.account_id)
        )

    def expire(connection: Connection, ids: list[int], *, idle: bool) -> None:
        if idle:  # still idle under the lock: a purchase a moment ago keeps the points
            ids = list(
                connection.execute(
                    select(ACCOUNT.c.id).where(ACCOUNT.c.id.in_(ids), _idle(programme, now))
                ).scalars()
            )
        condition = LOT.c.account_id.in_(ids) if idle else and_(LOT.c.account_id.in_(ids), _past_date(now))
        lots = _lots(programme, condition, activation=False)
        detail = {"reason": "inactivity"} if idle else None
        expired = _count(result, _post(connection, programme, EXPIRE, lots, now, detail=detail))
        if idle:
            result.inactivity_lots += expired

    _chunks(engine, by_date, lambda connection, ids: expire(connection, ids, idle=False))
    if programme.inactivity is not None:

        def idle_accounts(last: int) -> Select[Any]:
            return (
                select(ACCOUNT.c.id)
                .where(
                    ACCOUNT.c.programme == programme.name,
                    ACCOUNT.c.pending + ACCOUNT.c.available > 0,
                    _idle(programme, now),
                    ACCOUNT.c.id > last,
                )
                .order_by(ACCOUNT.c.id)
            )

        _chunks(engine, idle_accounts, lambda connection, ids: expire(connection, ids, idle=True))
    return result


def preview_expiry(
    engine: Engine, programme: Programme, *, now: dt.datetime | None = None, show: int = 20
) -> ExpiryPreview:
    """What :func:`expire_due` would expire at ``now``, posting nothing; ``show`` lots listed."""
    now = now or utcnow()
    label = customer_label_sql()
    reasons: list[tuple[str, ColumnElement[bool]]] = [("expired", _past_date(now))]
    if programme.inactivity is not None:
        idle = and_(_idle(programme, now), or_(LOT.c.expires_at.is_(None), ~_past_date(now)))
        reasons.append(("inactivity", idle))
    preview = ExpiryPreview()
    accounts: set[int] = set()
    with engine.connect() as connection:
        for reason, condition in reasons:
            due = and_(condition, _unposted(programme, f"{EXPIRE}:"))
            lots = _lots(programme, due, activation=False).subquery()
            rows = connection.execute(
                select(lots, label.label("customer"), LOT.c.expires_at)
                .select_from(
                    lots.join(LOT, LOT.c.id == lots.c.id)
                    .join(ACCOUNT, ACCOUNT.c.id == lots.c.account_id)
                    .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
                )
                .order_by(LOT.c.expires_at, lots.c.id)
                .execution_options(yield_per=10_000)
            )
            for row in rows:
                points = int(row.pending) + int(row.available)
                preview.lots += 1
                preview.points += points
                accounts.add(int(row.account_id))
                if len(preview.shown) < show:
                    preview.shown.append(ExpiringLot(row.customer, row.id, points, row.expires_at, reason))
    preview.accounts = len(accounts)
    return preview
