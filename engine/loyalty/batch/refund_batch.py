"""Imported refunds in chunks: what :func:`engine.loyalty.ledger.refund` posts, a chunk at a time.

A refund imported with ``crm import purchases`` reverses its order in the
programme exactly as the command :func:`~engine.loyalty.ledger.refund` would
(operation ``refund:<refund id>``, the same entries, lots and buckets, the
same stored result), but a chunk of refunds costs a fixed number of
statements instead of two dozen per refund:

1. the chunk's refund rows, their orders' operations and the refund keys the
   ledger holds are read (:mod:`~engine.loyalty.batch.refund_state`: one
   indexed query each), the orders' accounts are locked (in id order), the
   operations read again under the locks, then the earn entries, the spend
   pieces, what earlier refunds took or gave back, and the lots that matter
   (named by an earn or a spend, or due for activation or expiry; an
   account's other lots are read when a refund draws on them);
2. the refunds are worked out in the order the ledger takes them
   (``ordered_at``, id) on a copy of those accounts in memory
   (:class:`~engine.loyalty.batch.chunk_ledger.ChunkLedger`), with the
   command's own steps and arithmetic: the account brought up to date first
   (activations, expiries, debts repaid), ``floor(earned x refunded so far /
   order amount)`` in Decimal less what was taken before, the order's own lot
   first (pending, then available), then the ``spent_refund`` policy (other
   lots soonest-expiring first, pending lots, a recorded debt), the points
   spent on the order given back pro rata into the lots they came from
   (latest-expiring first; into an expired lot they expire at once);
3. everything is written with one ``executemany`` per table.

A refund already in the ledger (same key, same request) is skipped; one the
command refuses (over the order's amount, an order of unknown amount) is
logged and skipped, as the command would refuse it. The rare cases the copy
does not model go through the command itself, after the chunk and in order:
accounts merged into another one (or lots and spends that moved with a
merge), a key that names another request. All refunds of such an account in
the chunk go with them, so each account's refunds keep their order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal
from functools import partial

from sqlalchemy import Connection, Engine, select

from engine.clock import utcnow
from engine.db import write_transaction
from engine.errors import IdempotencyConflictError, LoyaltyError
from engine.loyalty.batch.chunk_ledger import Account, ChunkLedger, NewOperation
from engine.loyalty.batch.refund_state import (
    SPENDS,
    ChunkState,
    OrderOperation,
    RefundRow,
    all_lots,
    read_ledger,
    read_orders,
    read_refunds,
    taken_keys,
)
from engine.loyalty.ledger import canonical, lock_accounts, refund, request_hash, surviving_account
from engine.loyalty.programme import Programme
from engine.models import (
    ACTIVATE,
    AVAILABLE,
    CLAWBACK,
    DEBT,
    DEBT_RECORDED,
    EARN,
    EXPIRE,
    PENDING,
    PURCHASE,
    RETURN,
)

log = logging.getLogger("engine.loyalty")

#: refunds per transaction
CHUNK = 5_000
REFUND = "refund"


def refund_imported(
    engine: Engine,
    programme: Programme,
    purchase_ids: Sequence[int],
    now: dt.datetime | None = None,
    *,
    chunk: int = CHUNK,
) -> int:
    """Refunds from ``crm import purchases``: each refund row reverses its order (key ``refund:<id>``).

    Chunk by chunk (see the module docstring); the refunds a chunk leaves to
    the command go through :func:`~engine.loyalty.ledger.refund` right after
    it. A refund of an order the programme never saw changes nothing.
    Returns how many were applied (a refund already in the ledger is not counted).
    """
    now = now or utcnow()
    applied = 0
    for ids in _chunks(engine, purchase_ids, chunk):
        with write_transaction(engine) as connection:
            posted, rest = _Chunk(connection, programme, now).run(ids)
        applied += posted + _one_by_one(engine, programme, rest, now)
    return applied


def refund_in_batches(
    engine: Engine, programme: Programme, purchase_ids: Sequence[int], now: dt.datetime, *, chunk: int = CHUNK
) -> tuple[int, list[RefundRow]]:
    """Only the chunked part of :func:`refund_imported`: how many it applied, and the refunds it left."""
    applied, left = 0, []
    for ids in _chunks(engine, purchase_ids, chunk):
        with write_transaction(engine) as connection:
            posted, rest = _Chunk(connection, programme, now).run(ids)
        applied += posted
        left.extend(rest)
    return applied, left


def _chunks(engine: Engine, purchase_ids: Sequence[int], chunk: int) -> list[list[int]]:
    """The refund rows in the order the ledger takes them (``ordered_at``, id), cut into chunks."""
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, got {chunk}")
    ids = sorted(set(purchase_ids))
    ordered: list[tuple[dt.datetime, int]] = []
    with engine.connect() as connection:
        for start in range(0, len(ids), chunk):
            query = select(PURCHASE.c.ordered_at, PURCHASE.c.id).where(
                PURCHASE.c.id.in_(ids[start : start + chunk])
            )
            ordered.extend((row.ordered_at, int(row.id)) for row in connection.execute(query))
    ordered.sort()
    return [
        [purchase for _, purchase in ordered[start : start + chunk]]
        for start in range(0, len(ordered), chunk)
    ]


def _one_by_one(engine: Engine, programme: Programme, rows: list[RefundRow], now: dt.datetime) -> int:
    applied = 0
    for row in rows:
        try:
            done = refund(engine, programme, key=row.key, order=row.order, amount=row.amount, now=now)
            applied += 0 if done.replayed else 1
        except (LoyaltyError, IdempotencyConflictError) as exc:  # e.g. refunds over the order: left to see
            _refused(programme, row, exc)
    return applied


def _refused(programme: Programme, row: RefundRow, reason: object) -> None:
    log.warning("loyalty %s: refund %s not applied: %s", programme.name, row.external_id, reason)


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


class _Chunk:
    """One chunk of refunds, in one transaction."""

    def __init__(self, connection: Connection, programme: Programme, now: dt.datetime) -> None:
        self.connection = connection
        self.programme = programme
        self.now = now

    def run(self, ids: list[int]) -> tuple[int, list[RefundRow]]:
        """Post the chunk's refunds; returns how many, and those left to the command."""
        connection, programme = self.connection, self.programme
        refunds = read_refunds(connection, ids)
        orders, _ = read_orders(connection, programme, refunds)
        lock_accounts(
            connection, {ops[0].account_id for ops in orders.values() if ops[0].account_id is not None}
        )
        orders, stored = read_orders(connection, programme, refunds)  # again, under the locks
        refunds = [row for row in refunds if row.order in orders]  # an order the programme never saw
        state = ChunkState(refunds, orders, stored)
        accounts = {ops[0].account_id for ops in orders.values() if ops[0].account_id is not None}
        read_ledger(connection, state, accounts, self.now)
        refunds_aside, accounts_aside = self._aside(state)
        ledger = ChunkLedger(programme, self.now, state.accounts, {}, partial(all_lots, connection))
        bases = [
            f"{command}:{lot.id}"
            for account in state.accounts.values()
            if account.id not in state.merged
            for command, lots in zip((ACTIVATE, EXPIRE), ledger.due(account), strict=True)
            for lot in lots
        ]
        ledger.keys = taken_keys(connection, programme, bases)
        applied, rest = 0, []
        for row in refunds:
            account_id = state.orders[row.order][0].account_id
            if row.purchase_id in refunds_aside or account_id in accounts_aside:
                rest.append(row)
            elif row.key in state.stored:
                continue  # posted before: the command would replay it
            else:
                assert account_id is not None  # else set aside
                applied += self._refund(ledger, state, row, state.accounts[account_id])
        ledger.write(connection)
        return applied, rest

    def _aside(self, state: ChunkState) -> tuple[set[int], set[int]]:
        """Refunds (purchase ids) and accounts left to the command: merges, keys of other requests."""
        refunds: set[int] = set()
        accounts: set[int] = set()
        for row in state.refunds:
            ops = state.orders[row.order]
            account_id = ops[0].account_id
            if (
                len(row.key) > 300
                or account_id is None
                or account_id in state.merged
                or self._conflict(state, row)
                or not self._in_account(state, ops, state.accounts[account_id])
            ):
                refunds.add(row.purchase_id)
                if account_id is not None:  # the account that holds its points keeps its order too
                    accounts.add(surviving_account(self.connection, account_id))
        return refunds, accounts

    def _conflict(self, state: ChunkState, row: RefundRow) -> bool:
        if row.key not in state.stored:
            return False
        request = {"order": row.order, "amount": canonical(row.amount)}
        return state.stored[row.key] != (REFUND, request_hash(REFUND, request))

    @staticmethod
    def _in_account(state: ChunkState, ops: list[OrderOperation], account: Account) -> bool:
        """Every earn and spend of the order, and the lots they name, are in the order's account."""
        for op in ops:
            if op.command not in (EARN, *SPENDS):
                continue
            if op.account_id != account.id:
                return False
            entry = state.earns.get(op.id)
            if entry is not None and (
                entry.account_id != account.id
                or (entry.lot_id is not None and entry.lot_id not in account.lots)
            ):
                return False
            if any(piece.lot_id not in account.lots for piece in state.spends.get(op.id, [])):
                return False
        return True

    # --- one refund, as the command posts it ---------------------------------------------------

    def _refund(self, ledger: ChunkLedger, state: ChunkState, row: RefundRow, account: Account) -> bool:
        order, this = row.order, row.amount
        if this <= 0:
            _refused(
                self.programme,
                row,
                f"refund of order {order!r}: the amount refunded must be positive, got {this}",
            )
            return False
        operations = state.orders[order]
        earns = [op for op in operations if op.command == EARN]
        spends = [op for op in operations if op.command in SPENDS]
        before = sum((op.refunded for op in operations if op.command == REFUND), Decimal(0))
        base = next((op.amount for op in earns + spends if op.amount is not None), None)
        if base is None or base <= 0:
            _refused(
                self.programme, row, f"order {order!r}: its amount is unknown, so a refund cannot be pro rata"
            )
            return False
        if before + this > base:
            _refused(
                self.programme,
                row,
                f"order {order!r}: {base - before} of {base} is left to refund, {this} asked",
            )
            return False
        ledger.settle(account)
        request = {"order": order, "amount": canonical(this)}
        operation = ledger.start(row.key, REFUND, request, account.id, reference=order, amount=this)
        share = (before + this) / base
        clawed = sum(self._claw_back(ledger, state, account, operation, op.id, share, this) for op in earns)
        returned = sum(
            self._give_back_spent(ledger, state, account, operation, op.id, share) for op in spends
        )
        detail = {
            "refunded": str(this),
            "refunded_total": str(before + this),
            "of": str(base),
            "clawed_back": clawed,
            "returned": returned,
        }
        operation.result = {  # the command's stored Receipt, field for field
            "programme": self.programme.name,
            "key": row.key,
            "command": REFUND,
            "customer": account.customer,
            "points": returned - clawed,
            **account.buckets(),
            "detail": detail,
        }
        operations.append(
            OrderOperation(0, REFUND, account.id, this, this)
        )  # the order's next refund counts it
        state.stored[row.key] = (REFUND, request_hash(REFUND, request))
        return True

    def _claw_back(
        self,
        ledger: ChunkLedger,
        state: ChunkState,
        account: Account,
        operation: NewOperation,
        earn: int,
        share: Decimal,
        refunded: Decimal,
    ) -> int:
        """``refunds._claw_back``: take back ``share`` of what the earn gave, less what was taken before."""
        entry = state.earns.get(earn)
        if entry is None:
            return 0
        lot = account.lots[entry.lot_id] if entry.lot_id is not None else None
        earned = entry.points
        expired = lot.expired if lot is not None else 0  # expired unused: not taken again
        owed = max(0, min(earned, _floor(Decimal(earned) * share)) - entry.taken - expired)
        left = owed
        if lot is not None:  # its own lot first, wherever its points are (pending or available)
            for bucket, room in ((PENDING, lot.pending), (AVAILABLE, lot.remaining - lot.pending)):
                take = min(left, room)
                if take > 0:
                    ledger.post(operation, account, CLAWBACK, bucket, -take, lot=lot, related=entry.id)
                    left -= take
        if left > 0 and self.programme.settings.spent_refund == "clawback":
            for lots, bucket in (
                (ledger.spendable(account), AVAILABLE),
                (ledger.still_pending(account), PENDING),
            ):
                left -= ledger.draw(operation, account, left, CLAWBACK, lots, bucket=bucket, related=entry.id)
                if left <= 0:
                    break
        if left > 0:
            ledger.post(operation, account, DEBT_RECORDED, DEBT, left, related=entry.id)
        # the qualifying spend goes down by what was refunded, even when no points move
        ledger.post(operation, account, CLAWBACK, AVAILABLE, 0, amount=-refunded, related=entry.id)
        entry.taken += owed
        return owed

    @staticmethod
    def _give_back_spent(
        ledger: ChunkLedger,
        state: ChunkState,
        account: Account,
        operation: NewOperation,
        spend: int,
        share: Decimal,
    ) -> int:
        """``refunds._give_back_spent``: ``share`` of what the spend took, back into the lots it came from."""
        pieces = state.spends.get(spend, [])
        spent = sum(abs(piece.points) for piece in pieces)
        owed = min(spent, _floor(Decimal(spent) * share)) - sum(piece.returned for piece in pieces)
        left = owed
        for piece in reversed(pieces):  # latest-expiring first: the customer keeps the longest-lived points
            give = min(left, abs(piece.points) - piece.returned)
            if give > 0:
                ledger.give_back(
                    operation, account, account.lots[piece.lot_id], give, RETURN, related=piece.id
                )
                piece.returned += give
                left -= give
        return owed
