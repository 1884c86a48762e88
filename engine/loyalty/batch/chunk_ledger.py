"""The accounts of one chunk of refunds, held in memory and posted to as the ledger posts, written in bulk.

A :class:`ChunkLedger` holds the lots that matter (named by a refund, due
for activation or expiry, and all those with points left once a refund draws
on them) of a set of locked accounts, with what their entries say about
them: the points in ``pending``, the points that expired, whether they were
activated. Its methods post what :mod:`engine.loyalty.ledger` posts, in the
same order and with the same arithmetic: :meth:`ChunkLedger.post` is
``Posting.post`` (an entry moves the account's cached bucket, and the lot's
remainder for ``pending``/``available``), :meth:`~ChunkLedger.draw` and
:meth:`~ChunkLedger.give_back` are the ledger's, :meth:`~ChunkLedger.settle`
is ``settle`` (activations, expiries, then debts repaid when points became
available). Nothing reaches the database until :meth:`~ChunkLedger.write`:
ids drawn in bulk, one ``executemany`` for the operations, one for the
entries, one ``UPDATE`` per table for the lots' remainders and the accounts'
buckets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update

from engine.loyalty.ledger import request_hash
from engine.loyalty.programme import Programme
from engine.models import (
    ACCOUNT,
    ACTIVATE,
    AVAILABLE,
    BUCKETS,
    DEBT,
    ENTRY,
    EXPIRE,
    LOT,
    OPERATION,
    PENDING,
    REPAY,
)
from engine.sql import allocate_ids

FAR = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(eq=False)
class Lot:
    """A lot as the ledger would read it now."""

    id: int
    account_id: int
    remaining: int
    available_at: dt.datetime
    expires_at: dt.datetime | None
    pending: int  # its points in the pending bucket (``pending_part``)
    expired: int  # its points that expired (minus the sum of its expire entries)
    earned_pending: bool  # an entry put points into pending: activated once out of the return window
    activated: bool
    filled_by: int | None  # the entry that filled it (``earn_entry_of``)

    def spend_order(self) -> tuple[bool, dt.datetime, dt.datetime, int]:
        """``spendable_lots``' order: soonest-expiring first, never-expiring last, then oldest."""
        return (self.expires_at is None, self.expires_at or FAR, self.available_at, self.id)


@dataclass(eq=False)
class Account:
    """A locked account: its cached buckets and the lots that matter."""

    id: int
    customer: str
    pending: int
    available: int
    held: int
    debt: int
    lots: dict[int, Lot] = field(default_factory=dict)
    settled: bool = False
    complete: bool = (
        False  # every lot with points left is in ``lots`` (else: those a refund names, and due ones)
    )

    def buckets(self) -> dict[str, int]:
        return {"available": self.available, "pending": self.pending, "held": self.held, "debt": self.debt}


@dataclass(eq=False)
class NewOperation:
    """An operation to write; its id is drawn in :meth:`ChunkLedger.write`."""

    key: str
    command: str
    request: dict[str, Any]
    account_id: int
    columns: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass(eq=False)
class NewEntry:
    """An entry to write; ``related`` is an entry already written or one of this chunk."""

    operation: NewOperation
    account_id: int
    kind: str
    bucket: str
    points: int
    lot_id: int | None
    amount: Decimal | None
    related: int | NewEntry | None
    id: int = 0


@dataclass
class ChunkLedger:
    """The chunk's accounts and what was posted to them, not yet written."""

    programme: Programme
    now: dt.datetime
    accounts: dict[int, Account]
    keys: dict[str, str]  # system keys already taken in the ledger -> the key to use instead
    complete: Callable[[Account], None]  # reads the rest of the account's lots with points left
    operations: list[NewOperation] = field(default_factory=list)
    entries: list[NewEntry] = field(default_factory=list)
    lots_moved: dict[int, int] = field(default_factory=dict)
    accounts_moved: dict[int, dict[str, int]] = field(default_factory=dict)

    # --- posting ---------------------------------------------------------------------------------

    def start(
        self, key: str, command: str, request: dict[str, Any], account_id: int, **columns: Any
    ) -> NewOperation:
        """``Posting.start``: a new operation."""
        operation = NewOperation(key, command, request, account_id, columns)
        self.operations.append(operation)
        return operation

    def post(
        self,
        operation: NewOperation,
        account: Account,
        kind: str,
        bucket: str,
        points: int,
        *,
        lot: Lot | None = None,
        amount: Decimal | None = None,
        related: int | NewEntry | None = None,
    ) -> NewEntry:
        """``Posting.post``: one entry, the account's bucket and the lot's remainder moved with it."""
        entry = NewEntry(
            operation, account.id, kind, bucket, points, lot.id if lot else None, amount, related
        )
        self.entries.append(entry)
        setattr(account, bucket, getattr(account, bucket) + points)
        moved = self.accounts_moved.setdefault(account.id, {})
        moved[bucket] = moved.get(bucket, 0) + points
        if lot is not None:
            if bucket in (PENDING, AVAILABLE) and points:
                lot.remaining += points
                self.lots_moved[lot.id] = self.lots_moved.get(lot.id, 0) + points
            if bucket == PENDING:
                lot.pending += points
                lot.earned_pending = lot.earned_pending or points > 0
            if kind == EXPIRE:
                lot.expired -= points
            if kind == ACTIVATE:
                lot.activated = True
        return entry

    def spendable(self, account: Account) -> list[Lot]:
        """``spendable_lots``: available, not expired, points left, soonest-expiring first."""
        if not account.complete:
            self.complete(account)
        now = self.now
        lots = [
            lot
            for lot in account.lots.values()
            if lot.remaining > 0
            and lot.available_at <= now
            and (lot.expires_at is None or lot.expires_at > now)
        ]
        return sorted(lots, key=Lot.spend_order)

    def still_pending(self, account: Account) -> list[Lot]:
        """``pending_lots``: in the return window with points left, soonest-expiring first."""
        if not account.complete:
            self.complete(account)
        lots = [lot for lot in account.lots.values() if lot.remaining > 0 and lot.available_at > self.now]
        return sorted(lots, key=Lot.spend_order)

    def draw(
        self,
        operation: NewOperation,
        account: Account,
        points: int,
        kind: str,
        lots: Sequence[Lot],
        *,
        bucket: str = AVAILABLE,
        related: int | NewEntry | None = None,
    ) -> int:
        """``draw``: up to ``points`` from ``lots`` in order, an entry per lot; returns the points taken."""
        left = points
        for lot in lots:
            if left <= 0:
                break
            take = min(left, lot.remaining)
            if take <= 0:
                continue
            self.post(operation, account, kind, bucket, -take, lot=lot, related=related)
            left -= take
        return points - left

    def give_back(
        self, operation: NewOperation, account: Account, lot: Lot, points: int, kind: str, *, related: int
    ) -> None:
        """``give_back``: points back into a lot; in a lot that has expired they expire at once."""
        bucket = PENDING if lot.available_at > self.now else AVAILABLE
        entry = self.post(operation, account, kind, bucket, points, lot=lot, related=related)
        if lot.expires_at is not None and lot.expires_at <= self.now:
            self.post(operation, account, EXPIRE, bucket, -points, lot=lot, related=entry)

    # --- bringing an account up to date ----------------------------------------------------------

    def due(self, account: Account) -> tuple[list[Lot], list[Lot]]:
        """``due_lots``: lots to activate, lots to expire (by id)."""
        now = self.now
        lots = sorted(account.lots.values(), key=lambda lot: lot.id)
        activate = [
            lot for lot in lots if lot.available_at <= now and lot.earned_pending and not lot.activated
        ]
        expire = [
            lot for lot in lots if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= now
        ]
        return activate, expire

    def settle(self, account: Account) -> None:
        """``settle``: activate lots out of the return window, expire lots past date, repay debts."""
        if account.settled:
            return
        account.settled = True
        to_activate, to_expire = self.due(account)
        activated = False
        for lot in to_activate:
            moving = lot.pending
            if moving <= 0:
                continue
            activated = True
            operation = self._system(f"{ACTIVATE}:{lot.id}", ACTIVATE, account, {"lot": lot.id})
            self.post(operation, account, ACTIVATE, PENDING, -moving, lot=lot, related=lot.filled_by)
            self.post(operation, account, ACTIVATE, AVAILABLE, moving, lot=lot, related=lot.filled_by)
            operation.result = {"points": moving, "lot": lot.id}
        for lot in to_expire:
            current = lot.remaining
            if current <= 0:
                continue
            operation = self._system(f"{EXPIRE}:{lot.id}", EXPIRE, account, {"lot": lot.id})
            pending = lot.pending
            if pending > 0:
                self.post(operation, account, EXPIRE, PENDING, -pending, lot=lot)
            if current - pending > 0:
                self.post(operation, account, EXPIRE, AVAILABLE, -(current - pending), lot=lot)
            operation.result = {"points": current, "lot": lot.id}
        if activated:
            self._repay(account)

    def _repay(self, account: Account) -> None:
        """``repay_debts`` of one account (its last entry is one of this chunk: the activation)."""
        owed = min(account.debt, account.available)
        if owed <= 0:
            return
        last = next(entry for entry in reversed(self.entries) if entry.account_id == account.id)
        operation = self.start("", REPAY, {"account": account.id, "points": owed}, account.id)
        operation.columns["last_entry"] = last  # the key names its id, known when ids are drawn
        paid = self.draw(operation, account, owed, REPAY, self.spendable(account))
        self.post(operation, account, REPAY, DEBT, -paid)
        operation.result = {"points": paid}

    def _system(self, base: str, command: str, account: Account, request: dict[str, Any]) -> NewOperation:
        return self.start(self.keys.get(base, base), command, request, account.id)

    # --- writing ---------------------------------------------------------------------------------

    def write(self, connection: Connection) -> None:
        """Write every operation and entry, then the lots' remainders and the accounts' buckets."""
        if not self.operations:
            return
        for operation, drawn in zip(
            self.operations, allocate_ids(connection, "loyalty_operation", len(self.operations)), strict=True
        ):
            operation.id = drawn
        for entry, drawn in zip(
            self.entries, allocate_ids(connection, "loyalty_entry", len(self.entries)), strict=True
        ):
            entry.id = drawn
        config_version, now = self.programme.config_version, self.now
        rows = []
        for operation in self.operations:
            columns = dict(operation.columns)
            last = columns.pop("last_entry", None)
            if last is not None:
                operation.key = f"{REPAY}:{operation.account_id}:{last.id}"
            rows.append(
                {
                    "id": operation.id,
                    "programme": self.programme.name,
                    "key": operation.key,
                    "command": operation.command,
                    "request_hash": _hash(operation.command, operation.request),
                    "account_id": operation.account_id,
                    "reference": columns.get("reference"),
                    "amount": columns.get("amount"),
                    "config_version": config_version,
                    "result": {**operation.result, "operation": operation.id},
                    "created_at": now,
                }
            )
        connection.execute(insert(OPERATION), rows)
        connection.execute(
            insert(ENTRY),
            [
                {
                    "id": entry.id,
                    "operation_id": entry.operation.id,
                    "account_id": entry.account_id,
                    "lot_id": entry.lot_id,
                    "kind": entry.kind,
                    "bucket": entry.bucket,
                    "points": entry.points,
                    "amount": entry.amount,
                    "related_id": entry.related.id if isinstance(entry.related, NewEntry) else entry.related,
                    "detail": None,
                    "posted_at": now,
                }
                for entry in self.entries
            ],
        )
        lots = [{"lot": lot, "delta": delta} for lot, delta in self.lots_moved.items() if delta]
        if lots:
            connection.execute(
                update(LOT)
                .where(LOT.c.id == bindparam("lot"))
                .values(remaining=LOT.c.remaining + bindparam("delta")),
                lots,
            )
        connection.execute(
            update(ACCOUNT)
            .where(ACCOUNT.c.id == bindparam("account"))
            .values(
                pending=ACCOUNT.c.pending + bindparam("d_pending"),
                available=ACCOUNT.c.available + bindparam("d_available"),
                held=ACCOUNT.c.held + bindparam("d_held"),
                debt=ACCOUNT.c.debt + bindparam("d_debt"),
                updated_at=now,
            ),
            [
                {"account": account, **{f"d_{bucket}": moved.get(bucket, 0) for bucket in BUCKETS}}
                for account, moved in self.accounts_moved.items()
            ],
        )


def _hash(command: str, request: dict[str, Any]) -> str:
    """:func:`engine.loyalty.ledger.request_hash`; a request of whole numbers (the system's) without json."""
    if not all(type(value) is int for value in request.values()):
        return request_hash(command, request)
    fields = sorted({**request, "command": command}.items())
    text = ",".join(f'"{k}":"{v}"' if k == "command" else f'"{k}":{v}' for k, v in fields)
    return hashlib.sha256(("{" + text + "}").encode()).hexdigest()
