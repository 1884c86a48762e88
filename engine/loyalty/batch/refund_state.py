"""What a chunk of imported refunds needs from the ledger, read with a fixed number of indexed queries.

Each query goes through one index with a list of ids or keys: the refund
rows by id, the orders' operations by ``(programme, reference)``, the refund
keys by ``(programme, key)``, the earn entries and spend pieces by
``operation_id``, what earlier refunds took or gave back by ``related_id``,
the accounts by id and their lots by id or ``(account_id, expires_at)``
(with what the lots' entries say, through ``(lot_id, bucket)``). Nothing
scans a table, whatever the size of the ledger, so no index was added.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import ColumnElement, Connection, and_, case, func, select

from engine.loyalty.batch.chunk_ledger import Account, Lot
from engine.loyalty.ledger import customer_label_sql
from engine.loyalty.programme import Programme
from engine.models import (
    ACCOUNT,
    ACTIVATE,
    CAPTURE,
    CLAWBACK,
    CUSTOMER,
    DEBT_RECORDED,
    EARN,
    ENTRY,
    EXPIRE,
    LOT,
    OPERATION,
    PENDING,
    PURCHASE,
    REDEEM,
    RETURN,
)

SPENDS = (REDEEM, CAPTURE)


@dataclass(frozen=True)
class RefundRow:
    """One imported refund: ``amount`` of the order ``order`` (positive), key ``refund:<external id>``."""

    purchase_id: int
    external_id: str
    amount: Decimal
    order: str

    @property
    def key(self) -> str:
        return f"refund:{self.external_id}"


@dataclass
class OrderOperation:
    """An operation on the order (``reference``): its earn, its spends, its refunds."""

    id: int
    command: str
    account_id: int | None
    amount: Decimal | None
    refunded: Decimal  # for a refund: what it refunded (its result's detail)


@dataclass
class EarnEntry:
    """The entry an earn posted, and what refunds took against it so far (clawed back or owed)."""

    id: int
    account_id: int
    lot_id: int | None
    points: int
    taken: int


@dataclass
class SpendPiece:
    """One entry of a spend (its allocation on a lot), and the points refunds gave back against it."""

    id: int
    lot_id: int
    points: int
    returned: int


@dataclass
class ChunkState:
    """The ledger as the chunk's refunds see it, read under the accounts' locks."""

    refunds: list[RefundRow]
    orders: dict[str, list[OrderOperation]]
    stored: dict[str, tuple[str, str]]  # refund keys already in the ledger -> (command, request hash)
    earns: dict[int, EarnEntry | None] = field(default_factory=dict)  # earn operation -> its entry
    spends: dict[int, list[SpendPiece]] = field(default_factory=dict)  # spend operation -> its pieces
    accounts: dict[int, Account] = field(default_factory=dict)
    merged: set[int] = field(default_factory=set)  # accounts merged into another one


def read_refunds(connection: Connection, ids: Sequence[int]) -> list[RefundRow]:
    """The refund rows ``ids`` with their order's external id, in the order the ledger takes them."""
    original = PURCHASE.alias("original")
    rows = connection.execute(
        select(
            PURCHASE.c.id, PURCHASE.c.external_id, PURCHASE.c.amount, original.c.external_id.label("order")
        )
        .join(original, original.c.id == PURCHASE.c.refund_of_id)
        .where(PURCHASE.c.id.in_(list(ids)))
        .order_by(PURCHASE.c.ordered_at, PURCHASE.c.id)
    ).all()
    return [RefundRow(int(r.id), str(r.external_id), abs(Decimal(r.amount)), str(r.order)) for r in rows]


def read_orders(
    connection: Connection, programme: Programme, refunds: Sequence[RefundRow]
) -> tuple[dict[str, list[OrderOperation]], dict[str, tuple[str, str]]]:
    """Each order's operations (by id), and the refund keys the ledger holds already."""
    orders: dict[str, list[OrderOperation]] = {}
    for row in connection.execute(
        select(OPERATION.c.id, OPERATION.c.reference, OPERATION.c.command, OPERATION.c.account_id,
               OPERATION.c.amount, OPERATION.c.result)
        .where(OPERATION.c.programme == programme.name, OPERATION.c.reference.in_({r.order for r in refunds}))
        .order_by(OPERATION.c.id)
    ):  # fmt: skip
        refunded = Decimal(0)
        if row.command == "refund":
            refunded = Decimal(str((row.result or {}).get("detail", {}).get("refunded", "0")))
        orders.setdefault(str(row.reference), []).append(
            OrderOperation(int(row.id), str(row.command), row.account_id, row.amount, refunded)
        )
    stored = {
        str(key): (str(command), str(hashed))
        for key, command, hashed in connection.execute(
            select(OPERATION.c.key, OPERATION.c.command, OPERATION.c.request_hash).where(
                OPERATION.c.programme == programme.name, OPERATION.c.key.in_([r.key for r in refunds])
            )
        )
    }
    return orders, stored


def read_ledger(
    connection: Connection, state: ChunkState, account_ids: Iterable[int], now: dt.datetime
) -> None:
    """The accounts, the orders' earn entries and spend pieces, and the lots that matter, into ``state``."""
    accounts = sorted(set(account_ids))
    operations = [op for ops in state.orders.values() for op in ops]
    earn_ops = [op.id for op in operations if op.command == EARN]
    spend_ops = [op.id for op in operations if op.command in SPENDS]
    state.earns = dict.fromkeys(earn_ops)
    for row in connection.execute(
        select(ENTRY.c.id, ENTRY.c.operation_id, ENTRY.c.account_id, ENTRY.c.lot_id, ENTRY.c.points)
        .where(ENTRY.c.operation_id.in_(earn_ops), ENTRY.c.kind == EARN)
        .order_by(ENTRY.c.id)
    ):
        if state.earns.get(row.operation_id) is None:  # the first earn entry, as the command reads it
            state.earns[row.operation_id] = EarnEntry(
                int(row.id), int(row.account_id), row.lot_id, int(row.points), 0
            )
    earned = {entry.id: entry for entry in state.earns.values() if entry is not None}
    taken = case((ENTRY.c.kind == CLAWBACK, -ENTRY.c.points), else_=ENTRY.c.points)
    for related, total in connection.execute(
        select(ENTRY.c.related_id, func.sum(taken))
        .where(ENTRY.c.related_id.in_(list(earned)), ENTRY.c.kind.in_((CLAWBACK, DEBT_RECORDED)))
        .group_by(ENTRY.c.related_id)
    ):
        earned[related].taken = int(total)
    for op_id in spend_ops:
        state.spends[op_id] = []
    command = {op.id: op.command for op in operations}
    for row in connection.execute(
        select(ENTRY.c.id, ENTRY.c.operation_id, ENTRY.c.lot_id, ENTRY.c.points, ENTRY.c.kind)
        .where(ENTRY.c.operation_id.in_(spend_ops), ENTRY.c.kind.in_(SPENDS))
        .order_by(ENTRY.c.id)
    ):
        kind = REDEEM if command[row.operation_id] == REDEEM else CAPTURE
        if row.kind == kind and (row.points < 0 or kind == CAPTURE):  # as ``_give_back_spent`` picks them
            state.spends[row.operation_id].append(
                SpendPiece(int(row.id), int(row.lot_id), int(row.points), 0)
            )
    pieces = {piece.id: piece for ops in state.spends.values() for piece in ops}
    for related, total in connection.execute(
        select(ENTRY.c.related_id, func.sum(ENTRY.c.points))
        .where(ENTRY.c.related_id.in_(list(pieces)), ENTRY.c.kind == RETURN)
        .group_by(ENTRY.c.related_id)
    ):
        pieces[related].returned = int(total)
    named = {e.lot_id for e in earned.values() if e.lot_id is not None} | {p.lot_id for p in pieces.values()}
    _read_accounts(connection, state, accounts, named, now)


def _read_accounts(
    connection: Connection, state: ChunkState, accounts: list[int], named: set[int], now: dt.datetime
) -> None:
    """The accounts, and the lots a refund may need before it draws on other lots.

    Those are the lots named by the orders' earns and spends, and the lots
    bringing the account up to date acts on: points left and past their date
    (to expire), and, on accounts with pending points, points left and out of
    the return window (to activate). The account's other lots are read only
    when a refund or a repayment draws on them (:func:`all_lots`).
    """
    pending = []
    for row in connection.execute(
        select(ACCOUNT, customer_label_sql().label("customer"))
        .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
        .where(ACCOUNT.c.id.in_(accounts))
    ):
        if row.merged_into_id is not None:
            state.merged.add(int(row.id))
        if row.pending > 0:
            pending.append(int(row.id))
        state.accounts[int(row.id)] = Account(
            int(row.id), str(row.customer), int(row.pending), int(row.available), int(row.held), int(row.debt)
        )
    # three lookups, each through an index (an OR of them is planned as a scan of the lots)
    for condition in (
        LOT.c.id.in_(list(named)),
        and_(LOT.c.account_id.in_(accounts), LOT.c.expires_at <= now, LOT.c.remaining > 0),
        and_(LOT.c.account_id.in_(pending), LOT.c.available_at <= now, LOT.c.remaining > 0),
    ):
        for lot in _lots(connection, condition):
            state.accounts[lot.account_id].lots.setdefault(lot.id, lot)


def all_lots(connection: Connection, account: Account) -> None:
    """Complete ``account.lots`` with every lot that has points left (the lots already read are kept).

    Read when a refund draws on the account's other lots, after the account was
    brought up to date: a draw needs only the lot's points left and dates, so
    the lots' entries are not read (their ``pending`` and ``expired`` are not
    needed any more: the lots a refund names, and the due ones, were read before).
    """
    query = select(LOT.c.id, LOT.c.remaining, LOT.c.available_at, LOT.c.expires_at).where(
        LOT.c.account_id == account.id, LOT.c.remaining > 0
    )
    for row in connection.execute(query):
        if row.id not in account.lots:
            account.lots[int(row.id)] = Lot(
                int(row.id), account.id, int(row.remaining), row.available_at, row.expires_at,
                0, 0, False, True, None,
            )  # fmt: skip
    account.complete = True


def _lots(connection: Connection, condition: ColumnElement[bool]) -> list[Lot]:
    """The lots of ``condition``, with what their entries say about them."""
    in_pending = ENTRY.c.bucket == PENDING
    query = (
        select(
            LOT.c.id,
            LOT.c.account_id,
            LOT.c.remaining,
            LOT.c.available_at,
            LOT.c.expires_at,
            func.coalesce(func.sum(case((in_pending, ENTRY.c.points), else_=0)), 0).label("pending"),
            func.coalesce(func.sum(case((ENTRY.c.kind == EXPIRE, -ENTRY.c.points), else_=0)), 0).label(
                "expired"
            ),
            func.max(case((and_(in_pending, ENTRY.c.points > 0), 1), else_=0)).label("earned_pending"),
            func.max(case((ENTRY.c.kind == ACTIVATE, 1), else_=0)).label("activated"),
            func.min(case((and_(ENTRY.c.points > 0, ENTRY.c.kind != ACTIVATE), ENTRY.c.id))).label(
                "filled_by"
            ),
        )
        .select_from(LOT.outerjoin(ENTRY, ENTRY.c.lot_id == LOT.c.id))
        .where(condition)
        .group_by(LOT.c.id, LOT.c.account_id, LOT.c.remaining, LOT.c.available_at, LOT.c.expires_at)
    )
    return [
        Lot(
            int(row.id),
            int(row.account_id),
            int(row.remaining),
            row.available_at,  # aware UTC, as UtcDateTime reads it
            row.expires_at,
            int(row.pending),
            int(row.expired),
            bool(row.earned_pending),
            bool(row.activated),
            int(row.filled_by) if row.filled_by is not None else None,
        )
        for row in connection.execute(query)
    ]


def taken_keys(connection: Connection, programme: Programme, bases: Sequence[str]) -> dict[str, str]:
    """``derived_key`` of each of ``bases`` the ledger holds already (``base:2``, ``base:3`` ...)."""
    if not bases:
        return {}
    found = set(
        connection.execute(
            select(OPERATION.c.key).where(
                OPERATION.c.programme == programme.name, OPERATION.c.key.in_(list(bases))
            )
        ).scalars()
    )
    derived = {}
    for base in found:  # rare: a lot refilled after it expired
        n, key = 1, base
        while _exists(connection, programme, key):
            n += 1
            key = f"{base}:{n}"
        derived[base] = key
    return derived


def _exists(connection: Connection, programme: Programme, key: str) -> bool:
    query = select(OPERATION.c.id).where(OPERATION.c.programme == programme.name, OPERATION.c.key == key)
    return connection.execute(query).first() is not None
