"""The low-level writes of the ledger, always inside one transaction that holds the account locks.

A :class:`Posting` is one command being written: it has inserted its
``loyalty_operation`` row (so entries can name it), and every entry it posts
updates the account's cached bucket and, for ``pending``/``available``, the
lot's ``remaining`` in the same transaction. Nothing here commits: the
caller's :func:`engine.db.write_transaction` does, or rolls everything back.

A command is a few statements, each sent once: :meth:`Posting.post_many`
inserts a batch of entries with one ``INSERT ... RETURNING``, then moves each
account's buckets with one ``UPDATE`` and the lots' remainders with one
executemany; the statements every command runs are built once, at import.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Row,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.sql.dml import Insert, Update

from engine.errors import NotFoundError
from engine.models import (
    ACCOUNT,
    AVAILABLE,
    BUCKETS,
    CUSTOMER,
    ENTRY,
    EXPIRE,
    HELD,
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


# Statements of every command, built once (a command executes them with its values): building a
# statement anew per call costs more Python than sending it.
_INSERT_ENTRY = insert(ENTRY).returning(ENTRY.c.id)
_INSERT_ENTRIES = insert(ENTRY).returning(ENTRY.c.id, sort_by_parameter_order=True)
_INSERT_OPERATION = insert(OPERATION).returning(OPERATION.c.id)
_MOVE_LOT = (
    update(LOT).where(LOT.c.id == bindparam("lot")).values(remaining=LOT.c.remaining + bindparam("delta"))
)
_INSERT_KNOWN: weakref.WeakKeyDictionary[Engine, Insert] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=64)
def _move_buckets(buckets: tuple[str, ...], touch: bool) -> Update:
    """``UPDATE loyalty_account`` adding ``:add_<bucket>`` to each of ``buckets`` (``:now``: activity)."""
    values: dict[Any, Any] = {
        ACCOUNT.c[b]: ACCOUNT.c[b] + bindparam(f"add_{b}", type_=Integer) for b in buckets
    }
    values[ACCOUNT.c.updated_at] = bindparam("now", type_=ACCOUNT.c.updated_at.type)
    if touch:
        values[ACCOUNT.c.last_activity_at] = bindparam("now", type_=ACCOUNT.c.updated_at.type)
    return update(ACCOUNT).where(ACCOUNT.c.id == bindparam("account")).values(values)


@functools.lru_cache(maxsize=64)
def _finishing(columns: tuple[str, ...]) -> Update:
    """``UPDATE loyalty_operation`` setting its result and ``columns`` (bound as ``:set_<name>``)."""
    values = {OPERATION.c.result: bindparam("set_result", type_=OPERATION.c.result.type)}
    values.update({OPERATION.c[c]: bindparam(f"set_{c}", type_=OPERATION.c[c].type) for c in columns})
    return update(OPERATION).where(OPERATION.c.id == bindparam("operation")).values(values)


@dataclass(frozen=True)
class NewEntry:
    """An entry to post: a signed change of one bucket of one account, about at most one lot.

    ``moves_lot=False`` leaves the lot's ``remaining`` alone (a new lot inserted already filled).
    """

    account_id: int
    kind: str
    bucket: str
    points: int
    lot_id: int | None = None
    amount: Decimal | None = None
    related_id: int | None = None
    detail: dict[str, Any] | None = None
    moves_lot: bool = True


_TALLY = "loyalty_bucket_tally"


def start_tally(connection: Connection) -> dict[int, dict[str, int]]:
    """Count, from now until the transaction ends, what every posting moves per account and bucket.

    The command that opened the transaction read its accounts under the lock;
    their buckets after the command are that row plus the tally, so nothing
    is read back after it is written (:func:`engine.loyalty.ledger.core.run_command`).
    """
    tally: dict[int, dict[str, int]] = {}
    connection.info[_TALLY] = tally
    return tally


def stop_tally(connection: Connection) -> None:
    """Stop counting (the command's transaction ends)."""
    connection.info.pop(_TALLY, None)


def _operation(
    programme: str,
    key: str,
    command: str,
    request: dict[str, Any],
    config_version: str,
    now: dt.datetime,
    account_id: int | None,
    columns: dict[str, Any],
) -> dict[str, Any]:
    return {
        "programme": programme,
        "key": key,
        "command": command,
        "request_hash": request_hash(command, request),
        "account_id": account_id,
        "config_version": config_version,
        "result": {},
        "created_at": now,
        **columns,
    }


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
    _accounts: dict[int, dict[str, int]] = field(default_factory=dict)  # deltas not yet applied
    _lots: dict[int, int] = field(default_factory=dict)

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
        values = _operation(programme, key, command, request, config_version, now, account_id, columns)
        operation_id = connection.execute(_INSERT_OPERATION, values).scalar_one()
        return cls(connection, int(operation_id), programme, now, config_version)

    @classmethod
    def start_unless_known(
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
    ) -> Posting | None:
        """:meth:`start`, or None (and nothing inserted) when the programme holds ``key`` already.

        One statement looks the key up and inserts (``INSERT ... ON CONFLICT DO NOTHING
        RETURNING``); a concurrent command holding the key uncommitted is waited for.
        """
        values = _operation(programme, key, command, request, config_version, now, account_id, columns)
        statement = _INSERT_KNOWN.get(connection.engine)
        if statement is None:
            statement = insert_ignoring(connection, OPERATION, index_elements=["programme", "key"])
            statement = _INSERT_KNOWN[connection.engine] = statement.returning(OPERATION.c.id)
        operation_id = connection.execute(statement, values).scalar()
        if operation_id is None:
            return None
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
        entry = NewEntry(account_id, kind, bucket, points, lot_id, amount, related_id, detail)
        return self.post_many([entry])[0]

    def post_many(
        self, entries: Sequence[NewEntry], *, touch: bool = False, defer: bool = False
    ) -> list[int]:
        """Post ``entries`` (one ``INSERT ... RETURNING`` for all) and move the buckets and lots with them.

        The cached buckets move in one ``UPDATE`` per account and the lots' remainders in one
        executemany; ``touch`` records customer activity in the same ``UPDATE``. ``defer`` leaves
        the buckets and lots to the next call that does not defer (entries that name these
        ones by id come next). Returns the entries' ids, in order.
        """
        if not entries:
            if not defer:
                self._apply(touch)
            return []
        rows = [
            {
                "operation_id": self.operation_id,
                "account_id": e.account_id,
                "lot_id": e.lot_id,
                "kind": e.kind,
                "bucket": e.bucket,
                "points": e.points,
                "amount": e.amount,
                "related_id": e.related_id,
                "detail": e.detail,
                "posted_at": self.now,
            }
            for e in entries
        ]
        for e in entries:
            assert e.bucket in BUCKETS, e.bucket
        if len(rows) == 1:
            ids = [self.connection.execute(_INSERT_ENTRY, rows[0]).scalar_one()]
        else:
            ids = list(self.connection.execute(_INSERT_ENTRIES, rows).scalars())
        tally = self.connection.info.get(_TALLY)
        for e in entries:
            for changes in (self.touched, self._accounts, tally):
                if changes is not None:
                    moved = changes.setdefault(e.account_id, {})
                    moved[e.bucket] = moved.get(e.bucket, 0) + e.points
            if e.lot_id is not None and e.moves_lot and e.bucket in (PENDING, AVAILABLE) and e.points:
                self._lots[e.lot_id] = self._lots.get(e.lot_id, 0) + e.points
        if not defer:
            self._apply(touch)
        self.entries.extend(int(i) for i in ids)
        return [int(i) for i in ids]

    def flush(self) -> None:
        """Move the buckets and lots of entries posted with ``defer`` (a no-op when nothing waits)."""
        if self._accounts or self._lots:
            self._apply(touch=False)

    def _apply(self, touch: bool) -> None:
        for account_id, moved in self._accounts.items():
            buckets = tuple(sorted(bucket for bucket, points in moved.items() if points))
            values: dict[str, Any] = {f"add_{bucket}": moved[bucket] for bucket in buckets}
            values.update(account=account_id, now=self.now)
            self.connection.execute(_move_buckets(buckets, touch), values)
        self._accounts.clear()
        lots = [{"lot": lot, "delta": delta} for lot, delta in self._lots.items() if delta]
        self._lots.clear()
        if lots:
            self.connection.execute(_MOVE_LOT, lots[0] if len(lots) == 1 else lots)

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
        filled: bool = False,
    ) -> int:
        """A new lot of ``points``: empty (the entry that fills it sets its remainder), or already
        ``filled`` when the entry that fills it is posted with ``moves_lot=False``."""
        lot_id = self.connection.execute(
            insert(LOT)
            .values(
                account_id=account_id,
                operation_id=self.operation_id,
                points=points,
                remaining=points if filled else 0,
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

    def finish(self, result: dict[str, Any], **columns: Any) -> dict[str, Any]:
        """Store what the command returns (and ``columns`` of the operation known only now), so a replay
        of its key returns the same."""
        stored = {**result, "operation": self.operation_id}
        values = {
            **{f"set_{c}": v for c, v in columns.items()},
            "set_result": stored,
            "operation": self.operation_id,
        }
        self.connection.execute(_finishing(tuple(sorted(columns))), values)
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


_LOTS_WITH_POINTS = (
    select(LOT)
    .where(LOT.c.account_id == bindparam("account"), LOT.c.remaining > 0)
    .order_by(LOT.c.expires_at.is_(None), LOT.c.expires_at, LOT.c.available_at, LOT.c.id)
)


def lots_with_points(connection: Connection, account_id: int) -> list[Row[Any]]:
    """The account's lots with points left (pending, spendable or past expiry), soonest-expiring first.

    One read serves a command: what is due (:func:`engine.loyalty.ledger.core.settle`) and what
    it can spend (:func:`spendable`), in the order :func:`spendable_lots` gives.
    """
    return list(connection.execute(_LOTS_WITH_POINTS, {"account": account_id}).all())


def spendable(lots: Sequence[Row[Any]], now: dt.datetime) -> list[Row[Any]]:
    """Of ``lots`` (:func:`lots_with_points`), those available and not expired at ``now``, in order."""
    return [
        lot
        for lot in lots
        if lot.remaining > 0 and lot.available_at <= now and (lot.expires_at is None or lot.expires_at > now)
    ]


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
    touch: bool = False,
) -> list[Allocation]:
    """Take up to ``points`` from ``lots`` in order: one entry per lot drawn on (its allocation).

    With ``then_hold`` each piece also goes into the ``held`` bucket on the same lot; ``touch``
    records customer activity on the account. All entries go in with one ``INSERT`` (two with
    ``then_hold``), the account's buckets with one ``UPDATE``.
    Returns what was taken; the caller checks it covers what it needed.
    """
    pieces: list[tuple[int, int]] = []
    left = points
    for lot in lots:
        if left <= 0:
            break
        take = min(left, int(lot.remaining))
        if take <= 0:
            continue
        pieces.append((int(lot.id), take))
        left -= take
    spent = [NewEntry(account_id, kind, bucket, -take, lot, related_id=related_id) for lot, take in pieces]
    ids = posting.post_many(spent, touch=touch and not then_hold, defer=then_hold)
    if then_hold:
        held = [
            NewEntry(account_id, kind, HELD, take, lot, related_id=entry)
            for (lot, take), entry in zip(pieces, ids, strict=True)
        ]
        posting.post_many(held, touch=touch)
    return [Allocation(lot, take, entry, bucket) for (lot, take), entry in zip(pieces, ids, strict=True)]


def give_back_many(
    posting: Posting,
    account_id: int,
    pieces: Sequence[tuple[int, int, int]],
    kind: str,
    *,
    defer: bool = False,
    lots: Mapping[int, Any] | None = None,
) -> None:
    """Put each ``(lot, points, related entry)`` back into its lot (void, refund of a spend): points
    given back into a lot that has expired expire at once. One read of the lots, one ``INSERT``.

    ``lots`` (by id, with ``available_at`` and ``expires_at``) spares the read when the caller has
    them; ``defer`` as :meth:`Posting.post_many` (the buckets move with the next posting that does not).
    """
    if not pieces:
        posting.post_many([], defer=defer)  # what earlier postings deferred moves now
        return
    now = posting.now
    if lots is None:
        found = posting.connection.execute(select(LOT).where(LOT.c.id.in_({p[0] for p in pieces})))
        lots = {row.id: row for row in found}
    back = [
        NewEntry(
            account_id,
            kind,
            PENDING if lots[lot].available_at > now else AVAILABLE,
            points,
            lot,
            related_id=related,
        )
        for lot, points, related in pieces
    ]
    ends = [lots[lot].expires_at for lot, _points, _related in pieces]
    expired = [end is not None and end <= now for end in ends]
    ids = posting.post_many(back, defer=defer or any(expired))
    gone = [
        NewEntry(account_id, EXPIRE, e.bucket, -e.points, e.lot_id, related_id=entry)
        for e, entry, out in zip(back, ids, expired, strict=True)
        if out
    ]
    posting.post_many(gone, defer=defer)


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
