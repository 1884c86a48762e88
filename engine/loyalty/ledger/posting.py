"""The low-level writes of the ledger, always inside one transaction that holds the account locks.

A :class:`Posting` is one command being written: it has inserted its
``loyalty_operation`` row (so entries can name it), and every entry it posts
updates the account's cached bucket and, for ``pending``/``available``, the
lot's ``remaining`` in the same transaction. Nothing here commits: the
caller's :func:`engine.db.write_transaction` does, or rolls everything back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    String,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from engine.errors import NotFoundError
from engine.models import (
    ACCOUNT,
    AVAILABLE,
    BUCKETS,
    CUSTOMER,
    ENTRY,
    EXPIRE,
    LOT,
    OPERATION,
    PENDING,
    TIER_CHANGE,
)
from engine.sql import insert_ignoring


def canonical(value: Any) -> str | None:
    """A request value as text independent of how it was written (1000 and 1000.00 are one amount)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return str(value)


def request_hash(command: str, request: dict[str, Any]) -> str:
    """The fingerprint of a request: the same content gives the same hash, whatever the key order."""
    text = json.dumps({"command": command, **request}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def customer_id_of(connection: Connection, customer: int | str) -> int:
    """A customer's id: an int is the id, a str the customer's external id."""
    if isinstance(customer, int):
        found = connection.execute(select(CUSTOMER.c.id).where(CUSTOMER.c.id == customer)).scalar()
    else:
        found = connection.execute(select(CUSTOMER.c.id).where(CUSTOMER.c.external_id == customer)).scalar()
    if found is None:
        raise NotFoundError("customer", str(customer))
    return int(found)


def ensure_account(connection: Connection, programme: str, customer_id: int, now: dt.datetime) -> int:
    """The id of the customer's account in ``programme``, created when missing (concurrent-safe)."""
    values = {"programme": programme, "customer_id": customer_id, "created_at": now, "updated_at": now}
    connection.execute(insert_ignoring(connection, ACCOUNT).values(**values))
    account_id = connection.execute(
        select(ACCOUNT.c.id).where(ACCOUNT.c.programme == programme, ACCOUNT.c.customer_id == customer_id)
    ).scalar_one()
    return int(account_id)


def surviving_account(connection: Connection, account_id: int) -> int:
    """Follow merges: the account that now holds the points of ``account_id``."""
    seen = {account_id}
    while True:
        merged = connection.execute(
            select(ACCOUNT.c.merged_into_id).where(ACCOUNT.c.id == account_id)
        ).scalar_one()
        if merged is None or merged in seen:
            return account_id
        seen.add(merged)
        account_id = int(merged)


def find_operation(connection: Connection, programme: str, key: str) -> Row[Any] | None:
    """The operation of ``programme`` with idempotency ``key``, if any."""
    return connection.execute(
        select(OPERATION).where(OPERATION.c.programme == programme, OPERATION.c.key == key)
    ).first()


@dataclass
class Posting:
    """One operation being written: its row, and the entries posted so far."""

    connection: Connection
    operation_id: int
    programme: str
    now: dt.datetime
    config_version: str
    entries: list[int] = field(default_factory=list)
    touched: dict[int, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        connection: Connection,
        *,
        programme: str,
        key: str,
        command: str,
        request: dict[str, Any],
        config_version: str,
        now: dt.datetime,
        account_id: int | None = None,
        **columns: Any,
    ) -> Posting:
        """Insert the operation row (its result is filled by :meth:`finish`)."""
        operation_id = connection.execute(
            insert(OPERATION)
            .values(
                programme=programme,
                key=key,
                command=command,
                request_hash=request_hash(command, request),
                account_id=account_id,
                config_version=config_version,
                result={},
                created_at=now,
                **columns,
            )
            .returning(OPERATION.c.id)
        ).scalar_one()
        return cls(connection, int(operation_id), programme, now, config_version)

    def post(
        self,
        account_id: int,
        kind: str,
        bucket: str,
        points: int,
        *,
        lot_id: int | None = None,
        amount: Decimal | None = None,
        related_id: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Post one entry, and move the cached bucket (and the lot's remainder) with it."""
        assert bucket in BUCKETS, bucket
        entry_id = self.connection.execute(
            insert(ENTRY)
            .values(
                operation_id=self.operation_id,
                account_id=account_id,
                lot_id=lot_id,
                kind=kind,
                bucket=bucket,
                points=points,
                amount=amount,
                related_id=related_id,
                detail=detail,
                posted_at=self.now,
            )
            .returning(ENTRY.c.id)
        ).scalar_one()
        self.entries.append(int(entry_id))
        changes = self.touched.setdefault(account_id, {})
        changes[bucket] = changes.get(bucket, 0) + points
        column = ACCOUNT.c[bucket]
        self.connection.execute(
            update(ACCOUNT)
            .where(ACCOUNT.c.id == account_id)
            .values({column: column + points, ACCOUNT.c.updated_at: self.now})
        )
        if lot_id is not None and bucket in (PENDING, AVAILABLE) and points:
            self.connection.execute(
                update(LOT).where(LOT.c.id == lot_id).values(remaining=LOT.c.remaining + points)
            )
        return int(entry_id)

    def new_lot(
        self,
        account_id: int,
        points: int,
        *,
        source: str,
        earned_at: dt.datetime,
        available_at: dt.datetime,
        expires_at: dt.datetime | None,
        partner: str | None = None,
        origin_lot_id: int | None = None,
    ) -> int:
        """A new lot of ``points`` with nothing in it yet: the entry that fills it sets its remainder."""
        lot_id = self.connection.execute(
            insert(LOT)
            .values(
                account_id=account_id,
                operation_id=self.operation_id,
                points=points,
                remaining=0,
                source=source,
                partner=partner,
                earned_at=earned_at,
                available_at=available_at,
                expires_at=expires_at,
                origin_lot_id=origin_lot_id,
            )
            .returning(LOT.c.id)
        ).scalar_one()
        return int(lot_id)

    def touch(self, account_id: int) -> None:
        """Record customer activity on the account (inactivity expiry counts from it)."""
        self.connection.execute(
            update(ACCOUNT)
            .where(ACCOUNT.c.id == account_id)
            .values(last_activity_at=self.now, updated_at=self.now)
        )

    def finish(self, result: dict[str, Any]) -> dict[str, Any]:
        """Store what the command returns, so a replay of its key returns the same."""
        stored = {**result, "operation": self.operation_id}
        self.connection.execute(
            update(OPERATION).where(OPERATION.c.id == self.operation_id).values(result=stored)
        )
        return stored


@dataclass(frozen=True)
class Allocation:
    """Points drawn from (or given back to) one lot by one entry."""

    lot_id: int
    points: int
    entry_id: int
    bucket: str


def spendable_lots(connection: Connection, account_id: int, now: dt.datetime) -> Sequence[Row[Any]]:
    """The account's available lots with points left, soonest-expiring first (never-expiring last)."""
    return connection.execute(
        select(LOT)
        .where(
            LOT.c.account_id == account_id,
            LOT.c.remaining > 0,
            LOT.c.available_at <= now,
            or_(LOT.c.expires_at.is_(None), LOT.c.expires_at > now),
        )
        .order_by(LOT.c.expires_at.is_(None), LOT.c.expires_at, LOT.c.available_at, LOT.c.id)
    ).all()


def pending_lots(connection: Connection, account_id: int, now: dt.datetime) -> Sequence[Row[Any]]:
    """The account's lots still in the return window, soonest-expiring first."""
    return connection.execute(
        select(LOT)
        .where(LOT.c.account_id == account_id, LOT.c.remaining > 0, LOT.c.available_at > now)
        .order_by(LOT.c.expires_at.is_(None), LOT.c.expires_at, LOT.c.available_at, LOT.c.id)
    ).all()


def draw(
    posting: Posting,
    account_id: int,
    points: int,
    kind: str,
    lots: Sequence[Row[Any]],
    *,
    bucket: str = AVAILABLE,
    then_hold: bool = False,
    related_id: int | None = None,
) -> list[Allocation]:
    """Take up to ``points`` from ``lots`` in order: one entry per lot drawn on (its allocation).

    With ``then_hold`` each piece also goes into the ``held`` bucket on the same lot.
    Returns what was taken; the caller checks it covers what it needed.
    """
    allocations: list[Allocation] = []
    left = points
    for lot in lots:
        if left <= 0:
            break
        take = min(left, int(lot.remaining))
        if take <= 0:
            continue
        entry_id = posting.post(account_id, kind, bucket, -take, lot_id=lot.id, related_id=related_id)
        if then_hold:
            posting.post(account_id, kind, "held", take, lot_id=lot.id, related_id=entry_id)
        allocations.append(Allocation(int(lot.id), take, entry_id, bucket))
        left -= take
    return allocations


def lot_row(connection: Connection, lot_id: int) -> Row[Any]:
    """One lot, as it is now."""
    return connection.execute(select(LOT).where(LOT.c.id == lot_id)).one()


def give_back(
    posting: Posting, account_id: int, lot_id: int, points: int, kind: str, *, related_id: int
) -> None:
    """Put ``points`` back into a lot (void, refund of a spend); in an expired lot they expire at once."""
    lot = lot_row(posting.connection, lot_id)
    bucket = PENDING if lot.available_at > posting.now else AVAILABLE
    entry = posting.post(account_id, kind, bucket, points, lot_id=lot_id, related_id=related_id)
    if lot.expires_at is not None and lot.expires_at <= posting.now:
        posting.post(account_id, EXPIRE, bucket, -points, lot_id=lot_id, related_id=entry)


def lots_of_operation(connection: Connection, operation_id: int, kind: str) -> Sequence[Row[Any]]:
    """The entries of ``kind`` an operation posted, per lot (its allocations)."""
    query: Select[Any] = (
        select(ENTRY.c.id, ENTRY.c.lot_id, ENTRY.c.bucket, ENTRY.c.points)
        .where(ENTRY.c.operation_id == operation_id, ENTRY.c.kind == kind)
        .order_by(ENTRY.c.id)
    )
    return connection.execute(query).all()


def returned_to(connection: Connection, entry_ids: Sequence[int], kind: str) -> dict[int, int]:
    """Points already given back against each entry (by ``related_id``)."""
    if not entry_ids:
        return {}
    rows = connection.execute(
        select(ENTRY.c.related_id, func.sum(ENTRY.c.points))
        .where(ENTRY.c.related_id.in_(list(entry_ids)), ENTRY.c.kind == kind)
        .group_by(ENTRY.c.related_id)
    ).all()
    return {int(related): int(total) for related, total in rows}


def account_row(connection: Connection, account_id: int) -> Row[Any]:
    """The account as it is now (read under the lock)."""
    return connection.execute(select(ACCOUNT).where(ACCOUNT.c.id == account_id)).one()


def balances(connection: Connection, account_id: int) -> dict[str, int]:
    """The cached buckets of the account."""
    row = account_row(connection, account_id)
    return {bucket: int(getattr(row, bucket)) for bucket in BUCKETS}


def open_holds(connection: Connection, programme: str, account_id: int) -> Sequence[Row[Any]]:
    """Holds on the account not yet captured or voided."""
    closing = OPERATION.alias("closing")
    return connection.execute(
        select(OPERATION)
        .where(
            OPERATION.c.programme == programme,
            OPERATION.c.account_id == account_id,
            OPERATION.c.command == "hold",
            ~select(closing.c.id).where(closing.c.closes_id == OPERATION.c.id).exists(),
        )
        .order_by(OPERATION.c.id)
    ).all()


def due_lots(
    connection: Connection, account_id: int, now: dt.datetime
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """Lots of the account due for activation, and lots due to expire, as of ``now``."""
    activated = select(ENTRY.c.id).where(ENTRY.c.lot_id == LOT.c.id, ENTRY.c.kind == "activate").exists()
    earned_pending = (
        select(ENTRY.c.id)
        .where(ENTRY.c.lot_id == LOT.c.id, ENTRY.c.bucket == PENDING, ENTRY.c.points > 0)
        .exists()
    )
    to_activate = connection.execute(
        select(LOT)
        .where(
            LOT.c.account_id == account_id,
            LOT.c.available_at <= now,
            earned_pending,
            ~activated,
        )
        .order_by(LOT.c.id)
    ).all()
    to_expire = connection.execute(
        select(LOT)
        .where(
            LOT.c.account_id == account_id,
            LOT.c.remaining > 0,
            LOT.c.expires_at.is_not(None),
            LOT.c.expires_at <= now,
        )
        .order_by(LOT.c.id)
    ).all()
    return list(to_activate), list(to_expire)


def pending_part(connection: Connection, lot_id: int) -> int:
    """Points of the lot still in the pending bucket."""
    total = connection.execute(
        select(func.coalesce(func.sum(ENTRY.c.points), 0)).where(
            and_(ENTRY.c.lot_id == lot_id, ENTRY.c.bucket == PENDING)
        )
    ).scalar_one()
    return int(total)


def earn_entry_of(connection: Connection, lot_id: int) -> int | None:
    """The entry that filled the lot."""
    found = connection.execute(
        select(ENTRY.c.id)
        .where(ENTRY.c.lot_id == lot_id, ENTRY.c.points > 0, ENTRY.c.kind != "activate")
        .order_by(ENTRY.c.id)
        .limit(1)
    ).scalar()
    return int(found) if found is not None else None


def customer_label(connection: Connection, account_id: int) -> str:
    """How reports name the account's customer: the external id, else ``#<id>``."""
    row = connection.execute(
        select(CUSTOMER.c.id, CUSTOMER.c.external_id)
        .select_from(ACCOUNT.join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id))
        .where(ACCOUNT.c.id == account_id)
    ).one()
    return str(row.external_id) if row.external_id is not None else f"#{row.id}"


def customer_label_sql() -> ColumnElement[str]:
    """:func:`customer_label` in SQL, for reports that list many accounts (joined to ``customer``)."""
    return func.coalesce(CUSTOMER.c.external_id, literal("#", String) + cast(CUSTOMER.c.id, String))


def record_tier_changes(connection: Connection, changes: list[dict[str, Any]]) -> list[int]:
    """Append ``loyalty_tier_change`` rows (columns by name); returns their ids, in order."""
    if not changes:
        return []
    return [
        int(i)
        for i in connection.execute(
            insert(TIER_CHANGE).returning(TIER_CHANGE.c.id, sort_by_parameter_order=True), changes
        ).scalars()
    ]
