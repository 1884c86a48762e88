"""The ledger's core: how every command runs, and what brings an account up to date.

Every command is idempotent by its key (the POS transaction id): the same
key with the same request returns the stored :class:`Receipt` and posts
nothing; the same key with a different request raises
:class:`~engine.errors.IdempotencyConflictError`. :func:`run_command` runs a
command in one transaction that first locks the accounts it touches
(:mod:`~engine.loyalty.ledger.account_lock`), then brings them up to date
(:func:`settle`: lots due for activation are activated, lots past their
expiry expire), then lets the command check what it needs under the lock
and post, then repays debts from new points (:func:`repay_debts`). A refused
command posts nothing.

The till's path is a few statements: one locks the account and reads its
buckets and its customer's label (:func:`~engine.loyalty.ledger.account_lock.lock_member`),
one reads its lots with points (what is due, what can be spent), one looks the
key up and inserts the operation (``INSERT ... ON CONFLICT DO NOTHING``), the
command's entries and bucket moves follow, and the receipt is built from the
locked row plus what the transaction posted (:func:`~engine.loyalty.ledger.posting.start_tally`),
never read back. Anything unusual (no account yet, a merged account, lots due
for activation or expiry) takes the general path: create, follow merges, lock
in id order, replay a known key before settling.

The commands themselves: :mod:`~engine.loyalty.ledger.earning`,
:mod:`~engine.loyalty.ledger.redemption`, :mod:`~engine.loyalty.ledger.refunds`,
:mod:`~engine.loyalty.ledger.member_moves`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, select
from sqlalchemy.exc import IntegrityError

from engine.clock import utcnow
from engine.db import write_transaction
from engine.errors import (
    IdempotencyConflictError,
    LoyaltyError,
)
from engine.loyalty.ledger.account_lock import lock_account, lock_accounts, lock_member
from engine.loyalty.ledger.posting import (
    Posting,
    account_row,
    customer_id_of,
    customer_label,
    draw,
    due_lots,
    earn_entry_of,
    ensure_account,
    find_operation,
    lots_with_points,
    pending_part,
    request_hash,
    spendable,
    spendable_lots,
    start_tally,
    stop_tally,
    surviving_account,
)
from engine.loyalty.programme import Programme
from engine.models import ACTIVATE, AVAILABLE, BUCKETS, DEBT, ENTRY, EXPIRE, LOT, OPERATION, PENDING, REPAY

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Receipt:
    """What a command did: the points it moved and the account's buckets after it."""

    programme: str
    key: str
    command: str
    customer: str
    points: int
    available: int
    pending: int
    held: int
    debt: int
    detail: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> Receipt:
        """The receipt a replayed key returns."""
        known = {name: stored[name] for name in cls.__dataclass_fields__ if name in stored}
        return cls(**{**known, "replayed": True})


@dataclass
class Context:
    """A command being written: its posting, the programme, and the accounts it locked.

    ``locked`` holds each account's row as read under the lock (before the command posted);
    :meth:`buckets` adds what the transaction has posted since, :meth:`spendable` gives the
    lots it can spend, read once per command.
    """

    posting: Posting
    programme: Programme
    accounts: list[int]
    locked: dict[int, Row[Any]] = field(default_factory=dict)
    tally: dict[int, dict[str, int]] = field(default_factory=dict)
    lots: dict[int, list[Row[Any]]] = field(default_factory=dict)
    finishing: dict[str, Any] = field(default_factory=dict)  # columns of the operation known only at the end
    finished_here: bool = True  # run_command finishes the posting (a sub-command's is not finished)

    @property
    def connection(self) -> Connection:
        """The transaction."""
        return self.posting.connection

    @property
    def now(self) -> dt.datetime:
        """The time the command is posted at."""
        return self.posting.now

    def set_operation(self, **columns: Any) -> None:
        """Set ``columns`` of the command's operation: with its result when run_command stores it."""
        if self.finished_here:
            self.finishing.update(columns)
        else:
            self.connection.execute(
                OPERATION.update().where(OPERATION.c.id == self.posting.operation_id).values(**columns)
            )

    def account(self, account_id: int) -> Row[Any]:
        """The account's row as locked (its buckets as they were then: see :meth:`buckets`)."""
        if account_id not in self.locked:
            self.locked[account_id] = account_row(self.connection, account_id)
            self.tally.pop(account_id, None)
        return self.locked[account_id]

    def buckets(self, account_id: int) -> dict[str, int]:
        """The account's buckets now: as locked, plus what this transaction has posted since."""
        row, moved = self.account(account_id), self.tally.get(account_id, {})
        return {bucket: int(getattr(row, bucket)) + moved.get(bucket, 0) for bucket in BUCKETS}

    def spendable(self, account_id: int) -> list[Row[Any]]:
        """The account's spendable lots, soonest-expiring first (as :func:`spendable_lots`), as read
        before the command posted: for a command that spends once, first."""
        if account_id not in self.lots:
            self.lots[account_id] = lots_with_points(self.connection, account_id)
        return spendable(self.lots[account_id], self.now)


Body = Callable[[Context], tuple[int, dict[str, Any]]]


def run_command(
    engine: Engine,
    programme: Programme,
    *,
    key: str,
    command: str,
    request: dict[str, Any],
    customers: Sequence[int | str],
    body: Body,
    now: dt.datetime | None,
    columns: dict[str, Any] | None = None,
    accounts: Sequence[int] = (),
    report: int = 0,
    repay: bool = False,
) -> Receipt:
    """Run one command: lock, replay or refuse a known key, bring accounts up to date, post."""
    if not key or len(key) > 300:
        raise LoyaltyError(f"an idempotency key of 1 to 300 characters is required, got {key!r}")
    now = now or utcnow()
    for attempt in range(2):
        try:
            with write_transaction(engine) as connection:
                return _run_locked(
                    connection,
                    programme,
                    key,
                    command,
                    request,
                    customers,
                    accounts,
                    body,
                    now,
                    columns,
                    report,
                    repay,
                )
        except IntegrityError:
            # the same key was committed by a concurrent command on another account: replay or refuse it
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _run_locked(
    connection: Connection,
    programme: Programme,
    key: str,
    command: str,
    request: dict[str, Any],
    customers: Sequence[int | str],
    accounts: Sequence[int],
    body: Body,
    now: dt.datetime,
    columns: dict[str, Any] | None,
    report: int,
    repay: bool,
) -> Receipt:
    tally = start_tally(connection)
    try:
        ids, locked = _lock(connection, programme, customers, accounts, now)
        unique = list(dict.fromkeys(ids))
        lots = {account_id: lots_with_points(connection, account_id) for account_id in unique}
        posting: Posting | None = None
        operation = {
            "programme": programme.name,
            "key": key,
            "command": command,
            "request": request,
            "config_version": programme.config_version,
            "now": now,
            "account_id": ids[0] if ids else None,
            **(columns or {}),
        }
        due = [a for a in unique if _due(connection, locked.get(a), lots[a], a, now)]
        if not due:  # the usual case: one statement looks the key up and inserts the operation
            posting = Posting.start_unless_known(connection, **operation)
        if posting is None:
            existing = find_operation(connection, programme.name, key)
            if existing is not None:
                return _replay(connection, programme, existing, command, request, ids[report], locked)
            for account_id in due:
                settle(connection, programme, account_id, now)
                lots[account_id] = lots_with_points(connection, account_id)
            posting = Posting.start(connection, **operation)
        context = Context(posting, programme, ids, locked, tally, lots)
        points, detail = body(context)
        posting.flush()
        if repay:  # new points pay debts first; a refund or a spend never does
            owing = [a for a in unique if context.buckets(a)["debt"] > 0]
            if owing:
                repay_debts(connection, programme, owing, now)
        reported = ids[report]
        after = context.buckets(reported)
        receipt = Receipt(
            programme=programme.name,
            key=key,
            command=command,
            customer=_label(connection, locked, reported),
            points=points,
            available=after["available"],
            pending=after["pending"],
            held=after["held"],
            debt=after["debt"],
            detail=detail,
        )
        stored = asdict(receipt)
        stored.pop("replayed")
        posting.finish(stored, **context.finishing)
        return receipt
    finally:
        stop_tally(connection)


def _lock(
    connection: Connection,
    programme: Programme,
    customers: Sequence[int | str],
    accounts: Sequence[int],
    now: dt.datetime,
) -> tuple[list[int], dict[int, Row[Any]]]:
    """Lock the accounts the command touches: their ids (in the command's order) and rows read under the lock.

    One account named by its customer or its id, not merged away: one statement
    (:func:`lock_member`, :func:`lock_account`). Otherwise the accounts are
    created when missing, merges are followed and all are locked in id order.
    """
    if len(customers) + len(accounts) == 1:
        row = (
            lock_member(connection, programme.name, customers[0])
            if customers
            else lock_account(connection, accounts[0])
        )
        if row is not None and row.merged_into_id is None:
            return [int(row.id)], {int(row.id): row}
    ids = [
        surviving_account(
            connection, ensure_account(connection, programme.name, customer_id_of(connection, c), now)
        )
        for c in customers
    ]
    ids += [surviving_account(connection, account) for account in accounts]
    return ids, dict(lock_accounts(connection, ids))


def _due(
    connection: Connection,
    account: Row[Any] | None,
    lots: Sequence[Row[Any]],
    account_id: int,
    now: dt.datetime,
) -> bool:
    """True when the account has lots to activate or expire as of ``now`` (:func:`settle` is needed).

    Read from its lots with points: a lot past its expiry is due; a lot out of its return window
    can only be due while the account has pending points, and then :func:`due_lots` tells.
    """
    if any(lot.expires_at is not None and lot.expires_at <= now for lot in lots):
        return True
    if account is not None and int(account.pending) <= 0:
        return False
    to_activate, to_expire = due_lots(connection, account_id, now)
    return bool(to_activate or to_expire)


def _label(connection: Connection, locked: dict[int, Row[Any]], account_id: int) -> str:
    row = locked.get(account_id)
    if row is not None and "label" in row._fields:
        return str(row.label)
    return customer_label(connection, account_id)


def _replay(
    connection: Connection,
    programme: Programme,
    existing: Row[Any],
    command: str,
    request: dict[str, Any],
    reported: int,
    locked: dict[int, Row[Any]],
) -> Receipt:
    """The stored receipt of a known key: the same request replays it, another one is refused."""
    stored = dict(existing.result)
    # an order that earned through `crm import purchases` has earned: the till's report of it replays that
    imported = command == existing.command == "earn" and stored.get("detail", {}).get("source") == "accrual"
    if not imported and (
        existing.request_hash != request_hash(command, request) or existing.command != command
    ):
        raise IdempotencyConflictError.command(programme.name, key=existing.key, command=existing.command)
    if imported:
        account = locked.get(reported) or account_row(connection, reported)
        stored.update(
            customer=_label(connection, locked, reported),
            **{bucket: int(getattr(account, bucket)) for bucket in ("available", "pending", "held", "debt")},
        )
    return Receipt.from_stored(stored)


def derived_key(connection: Connection, programme: str, base: str) -> str:
    """``base``, or ``base:N`` when the ledger already holds it (a lot refilled after it expired)."""
    key, n = base, 1
    while find_operation(connection, programme, key) is not None:
        n += 1
        key = f"{base}:{n}"
    return key


def system_posting(
    connection: Connection,
    programme: Programme,
    key: str,
    command: str,
    account: int,
    now: dt.datetime,
    request: dict[str, Any],
) -> Posting:
    return Posting.start(
        connection,
        programme=programme.name,
        key=derived_key(connection, programme.name, key),
        command=command,
        request=request,
        config_version=programme.config_version,
        now=now,
        account_id=account,
    )


def settle(connection: Connection, programme: Programme, account_id: int, now: dt.datetime) -> None:
    """Bring a locked account up to ``now``: activate lots out of the return window, expire lots past date.

    Posts the same operations as the daily batch (``activate:<lot>``,
    ``expire:<lot>``), so whichever comes first does it and the other finds nothing.
    """
    to_activate, to_expire = due_lots(connection, account_id, now)
    activated = False
    for lot in to_activate:
        moving = pending_part(connection, lot.id)
        if moving <= 0:  # refunded whole while pending: nothing to activate
            continue
        activated = True
        posting = system_posting(
            connection, programme, f"activate:{lot.id}", ACTIVATE, account_id, now, {"lot": lot.id}
        )
        related = earn_entry_of(connection, lot.id)
        if moving > 0:
            posting.post(account_id, ACTIVATE, PENDING, -moving, lot_id=lot.id, related_id=related)
            posting.post(account_id, ACTIVATE, AVAILABLE, moving, lot_id=lot.id, related_id=related)
        posting.finish({"points": moving, "lot": lot.id})
    for lot in to_expire:
        current = connection.execute(select(LOT.c.remaining).where(LOT.c.id == lot.id)).scalar_one()
        if current <= 0:
            continue
        posting = system_posting(
            connection, programme, f"expire:{lot.id}", EXPIRE, account_id, now, {"lot": lot.id}
        )
        pending = pending_part(connection, lot.id)
        if pending > 0:
            posting.post(account_id, EXPIRE, PENDING, -pending, lot_id=lot.id)
        if current - pending > 0:
            posting.post(account_id, EXPIRE, AVAILABLE, -(current - pending), lot_id=lot.id)
        posting.finish({"points": int(current), "lot": lot.id})
    if activated:  # points that just became spendable (and did not expire) pay debts first
        repay_debts(connection, programme, [account_id], now)


def bring_up_to_date(engine: Engine, programme: Programme, account_id: int, now: dt.datetime) -> bool:
    """Settle one account as of ``now`` when something is due (points out of the return window, lots
    past their expiry); True when it posted. What is read afterwards is the balance as it is now.

    Reading stays a read when nothing is due; otherwise it posts what the daily batch would post
    (``activate:<lot>``, ``expire:<lot>``, repayments of debt), under the account's lock, once.
    """
    with engine.connect() as connection:
        to_activate, to_expire = due_lots(connection, account_id, now)
    if not to_activate and not to_expire:
        return False
    with write_transaction(engine) as connection:
        lock_accounts(connection, [account_id])
        settle(connection, programme, account_id, now)
    return True


def repay_debts(
    connection: Connection, programme: Programme, account_ids: Sequence[int], now: dt.datetime
) -> int:
    """Pay the debts of the (locked) accounts from their available points; returns the points repaid."""
    repaid = 0
    for account_id in account_ids:
        account = account_row(connection, account_id)
        owed = min(int(account.debt), int(account.available))
        if owed <= 0:
            continue
        last = connection.execute(
            select(func.max(ENTRY.c.id)).where(ENTRY.c.account_id == account_id)
        ).scalar_one()
        posting = system_posting(
            connection,
            programme,
            f"repay:{account_id}:{last}",
            REPAY,
            account_id,
            now,
            {"account": account_id, "points": owed},
        )
        taken = draw(posting, account_id, owed, REPAY, spendable_lots(connection, account_id, now))
        paid = sum(piece.points for piece in taken)
        posting.post(account_id, REPAY, DEBT, -paid)
        posting.finish({"points": paid})
        repaid += paid
    return repaid


def effective_tier(account: Row[Any], now: dt.datetime) -> str | None:
    if account.tier_override is not None and (account.override_until is None or account.override_until > now):
        return str(account.tier_override)
    return str(account.tier) if account.tier is not None else None


def sub_context(context: Context, key: str, command: str, account_id: int) -> Context:
    posting = system_posting(
        context.connection,
        context.programme,
        key,
        command,
        account_id,
        context.now,
        {"parent": context.posting.operation_id},
    )
    # the same locked rows and tally as the command: both count what the transaction posted
    return Context(
        posting, context.programme, [account_id], context.locked, context.tally, finished_here=False
    )
