"""Points for imported purchases, set-based: every purchase earns once, a million in a few statements.

:func:`accrue_purchases` gives a programme's points to every purchase with a
positive amount (refunds excluded) that has not earned in the programme yet:
no operation with the key ``purchase:<external_id>``, the key the POS
``earn`` command uses too, so a purchase earns once whichever way it
arrives. A second run finds nothing to do; a run that stopped halfway
resumes where it stopped.

Purchases go in chunks of ids, each chunk one :func:`~engine.db.write_transaction`
of a handful of statements, whatever its size:

1. ``INSERT ... SELECT`` an account for each customer of the chunk without one
   (``ON CONFLICT DO NOTHING``);
2. the chunk's members: customer -> the account that holds its points (an
   account merged into another one hands over to it), into a scratch table;
   on PostgreSQL the accounts are locked (``SELECT ... FOR UPDATE``, by id);
3. the points of every purchase, into a scratch table: the earn rules
   compiled to SQL (:meth:`EarnRules.purchase_sql`: ``CASE`` per rule, a
   rule stopped by an earlier non-stacking one, multipliers as a product,
   the tier's multiplier, the partner rate), ``per_transaction``, then
   ``per_day`` and ``per_customer`` with window functions:
   ``capped_i = min(L, S_i) - min(L, S_(i-1))`` where ``S`` is the running
   sum in purchase order (``ordered_at``, id) plus what the account earned
   before (as :func:`~engine.loyalty.ledger.earning.earned_so_far` counts it,
   one pass over the accounts' lots). Local days are computed from the
   zone's UTC offsets, listed in Python (exact across DST, the same on
   SQLite, which has no time zones);
4. ``INSERT ... SELECT`` the operations (command ``earn``, ``reference`` and
   ``amount`` of the purchase, ``request_hash`` of :func:`accrual_request`,
   ``result`` with the points and the lot), the lots (points > 0 only, as
   the POS path; ``available_at`` and ``expires_at`` as
   :class:`~engine.loyalty.programme.Programme` computes them), the earn
   entries (``amount`` = the purchase's amount, bucket pending while the
   lot is in its return window; ``detail`` names the rules that applied,
   the tier, the partner, the limits that cut and the config version), then
   one ``UPDATE`` of the accounts' cached buckets and ``last_activity_at``
   (the latest purchase, if later than what the account had).

On PostgreSQL the ledger tables are analysed as a first accrual fills them
(see :class:`_Statistics`), so that each chunk is planned for the tables as
they are.

Within a chunk purchases are taken in (``ordered_at``, id) order; chunks
go in id order. The result is the same as
:meth:`EarnRules.for_purchase` then :meth:`EarnRules.capped` run on each
purchase in that order. Nothing is loaded into Python but counts: memory
stays flat whatever the number of purchases.

Refunds (``refund_of_id`` set) earn nothing here. :attr:`AccrualResult.refunds`
lists those whose order earned in the programme and that the ledger has not
handled yet (no operation ``refund:<external_id>``), for
:func:`engine.loyalty.batch.refund_batch.refund_imported`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, ColumnElement, Connection, Engine, Integer, MetaData, String, Table, select

from engine.clock import utcnow
from engine.db import write_transaction
from engine.loyalty.batch.accrual_sql import LocalDays, LocalShift, aware, plus
from engine.loyalty.programme import EARNING_SOURCES, Programme, PurchaseRuleScope, period_end
from engine.models import ACCOUNT, AVAILABLE, EARN, ENTRY, LOT, OPERATION, PENDING, PURCHASE
from engine.settings import calendar_days, parse_duration
from engine.sql import (
    AmountText,
    Greatest,
    JsonText,
    Least,
    Sha256Hex,
    UtcDateTime,
    analyze,
    drop_temporary,
    insert_ignoring,
    json_object,
    lock_rows,
    new_id,
    planner_rows,
    rowcount,
    typed_text,
)

UTC = dt.UTC
DAY = 86_400
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# scratch tables of one chunk (one transaction): dropped at its end
_SCRATCH = MetaData()
MEMBER = Table(
    "loyalty_accrual_member",
    _SCRATCH,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("account_id", Integer, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
ROW = Table(
    "loyalty_accrual_row",
    _SCRATCH,
    Column("purchase_id", Integer, primary_key=True, autoincrement=False),
    Column("account_id", Integer, nullable=False),
    Column("ordered_at", UtcDateTime, nullable=False),
    Column("flags", String, nullable=False),
    Column("full_points", Integer, nullable=False),  # before any limit
    Column("points", Integer, nullable=False),  # after every limit
    Column("bucket", String(10), nullable=False),
    Column("operation_id", Integer, nullable=False),
    Column("lot_id", Integer, nullable=False),
    Column("entry_id", Integer, nullable=False),
    Column("cut_transaction", Integer, nullable=False),
    Column("cut_day", Integer, nullable=False),
    Column("cut_customer", Integer, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


@dataclass
class AccrualResult:
    """What one accrual run did in one programme."""

    programme: str
    purchases: int = 0  # purchases that earned now (one operation each)
    points: int = 0  # the points they earned, after the limits
    pending: int = 0  # of which still in the return window
    cut: int = 0  # points the limits took off
    accounts_created: int = 0
    skipped: int = 0  # purchases that had earned before (POS, an earlier run)
    refunds: tuple[int, ...] = ()  # refund rows for the ledger (purchase ids, oldest first)
    refunds_applied: int = 0  # of which the ledger applied (set by whoever hands them over)
    chunks: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        data = asdict(self)
        data["refunds"] = list(self.refunds)
        return data

    def describe(self) -> str:
        """One line for people."""
        text = (
            f"loyalty {self.programme}: {self.purchases} purchases earned {self.points} points"
            f" ({self.pending} pending, {self.cut} cut by limits), {self.accounts_created} new accounts,"
            f" {self.skipped} had earned already"
        )
        if self.refunds:
            text += f", {len(self.refunds)} refunds for the ledger ({self.refunds_applied} applied)"
        return text


def accrue_purchases(
    engine: Engine, programme: Programme, *, now: dt.datetime | None = None, chunk: int = 50_000
) -> AccrualResult:
    """Give ``programme``'s points to every purchase that has not earned in it yet; see the module docstring.

    Example::

        result = accrue_purchases(engine, config.programmes["bonus"])
        refund_imported(engine, programme, result.refunds)
    """
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, got {chunk}")
    now = (now or utcnow()).astimezone(UTC)
    result = AccrualResult(programme.name)
    with engine.connect() as connection:
        first, last = connection.execute(select(sa.func.min(PURCHASE.c.id), sa.func.max(PURCHASE.c.id))).one()
    statistics = _Statistics(engine)
    if first is not None:
        for start in range(int(first), int(last) + 1, chunk):
            before = result.purchases
            with write_transaction(engine) as connection:
                _Chunk(connection, programme, now, start, start + chunk - 1).run(result)
            result.chunks += 1
            statistics.wrote(result.purchases - before)
    with engine.connect() as connection:
        result.refunds = tuple(connection.execute(_refunds_to_handle(programme)).scalars())
    return result


class _Statistics:
    """Keeps PostgreSQL's statistics of the ledger tables current while an accrual fills them.

    PostgreSQL plans each chunk from the tables' statistics. A first accrual
    of a million purchases grows the ledger from nothing within minutes,
    before autovacuum looks: a chunk planned as if the lots were still few
    reads them once per member (a nested loop). So the tables are analysed
    whenever the accrual has written as many operations as they held at the
    last analysis (about log2(rows / chunk) times in a first run).
    """

    TABLES = ("loyalty_operation", "loyalty_lot", "loyalty_entry")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.unanalysed = 0

    def wrote(self, operations: int) -> None:
        """Count ``operations`` written; analyse when they double what the statistics know."""
        if not operations:
            return
        self.unanalysed += operations
        with self.engine.connect() as connection:
            known = planner_rows(connection, "loyalty_operation")
            if known is not None and self.unanalysed >= known:
                analyze(connection, *self.TABLES)
                self.unanalysed = 0
            connection.commit()


def _refunds_to_handle(programme: Programme) -> sa.Select[Any]:
    """Refund rows whose order earned in ``programme`` and that have no ``refund:<external_id>`` operation."""
    original = PURCHASE.alias("original")
    return (
        select(PURCHASE.c.id)
        .join(original, original.c.id == PURCHASE.c.refund_of_id)
        .where(
            PURCHASE.c.refund_of_id.is_not(None),
            _has_operation(programme, sa.literal("purchase:", String).concat(original.c.external_id)),
            ~_has_operation(programme, sa.literal("refund:", String).concat(PURCHASE.c.external_id)),
        )
        .order_by(PURCHASE.c.ordered_at, PURCHASE.c.id)
    )


def _has_operation(programme: Programme, key: ColumnElement[str]) -> ColumnElement[bool]:
    return sa.exists().where(OPERATION.c.programme == programme.name, OPERATION.c.key == key)


def purchase_key() -> ColumnElement[str]:
    """``purchase:<external_id>``, the operation key of a purchase's earn."""
    return sa.literal("purchase:", String).concat(PURCHASE.c.external_id)


def accrual_request(purchase_id: int, amount: str) -> dict[str, Any]:
    """The request an accrual operation's ``request_hash`` fingerprints (with command ``earn``).

    ``request_hash("earn", accrual_request(id, "123.45"))`` of
    :mod:`engine.loyalty.ledger.posting` gives the stored hash.
    """
    return {"accrual": True, "amount": amount, "purchase_id": purchase_id}


class _Chunk:
    """The accrual of the purchases with ids ``first``..``last``, in one transaction."""

    def __init__(
        self, connection: Connection, programme: Programme, now: dt.datetime, first: int, last: int
    ) -> None:
        self.connection = connection
        self.programme = programme
        self.now = now
        self.first, self.last = first, last
        self.limits = programme.settings.limits

    @property
    def candidates(self) -> ColumnElement[bool]:
        """Purchases of the chunk that may earn (before the check that they have not yet)."""
        return sa.and_(
            PURCHASE.c.id.between(self.first, self.last),
            PURCHASE.c.refund_of_id.is_(None),
            PURCHASE.c.amount > 0,
        )

    @property
    def due(self) -> ColumnElement[bool]:
        """Purchases of the chunk that earn now: candidates without their operation yet."""
        return sa.and_(self.candidates, ~_has_operation(self.programme, purchase_key()))

    def run(self, result: AccrualResult) -> None:
        due = sa.case((~_has_operation(self.programme, purchase_key()), 1), else_=0)
        count, pending, earliest, latest = self.connection.execute(
            select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(due), 0),
                sa.func.min(PURCHASE.c.ordered_at),
                sa.func.max(PURCHASE.c.ordered_at),
            ).where(self.candidates)
        ).one()
        result.skipped += int(count) - int(pending)
        if not pending:  # a chunk that earned already costs one look at its keys
            return
        self.earliest, self.latest = aware(earliest), aware(latest)
        result.accounts_created += self._create_accounts()
        MEMBER.create(self.connection)
        ROW.create(self.connection)
        try:
            self._members()
            if self._compute(earliest, latest):
                self._post()
                self._count(result)
        finally:
            drop_temporary(self.connection, ROW, MEMBER)

    # --- 1, 2: accounts and members ------------------------------------------------------------

    def _create_accounts(self) -> int:
        known = sa.exists().where(
            ACCOUNT.c.programme == self.programme.name, ACCOUNT.c.customer_id == PURCHASE.c.customer_id
        )
        customers = (
            select(
                sa.literal(self.programme.name, String),
                PURCHASE.c.customer_id,
                *[sa.literal(0, Integer) for _ in range(4)],
                sa.literal(self.now, UtcDateTime()),
                sa.literal(self.now, UtcDateTime()),
            )
            .where(self.due, ~known)
            .distinct()
        )
        columns = [
            "programme",
            "customer_id",
            "pending",
            "available",
            "held",
            "debt",
            "created_at",
            "updated_at",
        ]
        statement = insert_ignoring(self.connection, ACCOUNT).from_select(columns, customers)
        return rowcount(self.connection, statement)

    def _members(self) -> None:
        """Each customer with a purchase due -> the account that holds its points (following merges)."""
        chain = (
            select(
                ACCOUNT.c.customer_id.label("customer_id"),
                ACCOUNT.c.id.label("account_id"),
                ACCOUNT.c.merged_into_id.label("merged_into_id"),
            )
            .where(
                ACCOUNT.c.programme == self.programme.name,
                ACCOUNT.c.customer_id.in_(select(PURCHASE.c.customer_id).where(self.due)),
            )
            .cte("chain", recursive=True)
        )
        step = ACCOUNT.alias("merged")
        chain = chain.union(
            select(chain.c.customer_id, step.c.id, step.c.merged_into_id).join(
                step, step.c.id == chain.c.merged_into_id
            )
        )
        self.connection.execute(
            MEMBER.insert().from_select(
                ["customer_id", "account_id"],
                select(chain.c.customer_id, chain.c.account_id).where(chain.c.merged_into_id.is_(None)),
            )
        )
        lock_rows(
            self.connection,
            select(ACCOUNT.c.id).where(ACCOUNT.c.id.in_(select(MEMBER.c.account_id))).order_by(ACCOUNT.c.id),
        )
        analyze(self.connection, MEMBER.name)

    # --- 3: the points -------------------------------------------------------------------------

    def _compute(self, earliest: dt.datetime, latest: dt.datetime) -> int:
        """Fill the scratch table with every purchase that earns now and its points; returns how many."""
        programme, now = self.programme, self.now
        tier = effective_tier_sql(ACCOUNT, now)
        joined = PURCHASE.join(MEMBER, MEMBER.c.customer_id == PURCHASE.c.customer_id).join(
            ACCOUNT, ACCOUNT.c.id == MEMBER.c.account_id
        )
        scope = PurchaseRuleScope(programme.earn.fields, programme.local_day(now), joined=joined, tier=tier)
        points = programme.earn.purchase_sql(scope)
        days = LocalDays(programme, earliest, latest)
        rows = (
            select(
                PURCHASE.c.id.label("purchase_id"),
                MEMBER.c.account_id.label("account_id"),
                PURCHASE.c.ordered_at.label("ordered_at"),
                days.number(PURCHASE.c.ordered_at).label("day"),
                points.flags.label("flags"),
                points.full.label("full_points"),
            )
            .select_from(scope.from_clause())
            .where(self.due)
            .subquery("raw")
        )
        order = (rows.c.ordered_at, rows.c.purchase_id)
        level = rows
        after_transaction: ColumnElement[int] = rows.c.full_points
        if self.limits.per_transaction is not None:
            after_transaction = Least(rows.c.full_points, sa.literal(self.limits.per_transaction, Integer))
        after_day: ColumnElement[int] = after_transaction
        earned_before = self._earned_before(days)
        before: sa.FromClause = earned_before
        if self.limits.per_day is not None:
            running = sa.func.sum(after_transaction).over(
                partition_by=(rows.c.account_id, rows.c.day), order_by=order, rows=(None, 0)
            )
            level = (
                select(
                    *rows.c,
                    after_transaction.label("after_transaction"),
                    sa.func.coalesce(before.c.points, 0).label("day_before"),
                    (sa.func.coalesce(before.c.points, 0) + running).label("day_sum"),
                )
                .select_from(
                    rows.outerjoin(
                        before, sa.and_(before.c.account_id == rows.c.account_id, before.c.day == rows.c.day)
                    )
                )
                .subquery("per_day")
            )
            limit = sa.literal(self.limits.per_day, Integer)
            after_transaction = level.c.after_transaction
            after_day = Least(level.c.day_sum, limit) - Least(
                level.c.day_sum - level.c.after_transaction, limit
            )
        after_customer: ColumnElement[int] = after_day
        if self.limits.per_customer is not None:
            before = (
                select(earned_before.c.account_id, sa.func.sum(earned_before.c.points).label("points"))
                .group_by(earned_before.c.account_id)
                .subquery("earned_total")
            )
            running = sa.func.sum(after_day).over(
                partition_by=level.c.account_id,
                order_by=(level.c.ordered_at, level.c.purchase_id),
                rows=(None, 0),
            )
            level = (
                select(
                    *[c for c in level.c if c.name not in ("after_transaction", "after_day")],
                    after_transaction.label("after_transaction"),
                    after_day.label("after_day"),
                    (sa.func.coalesce(before.c.points, 0) + running).label("total_sum"),
                )
                .select_from(level.outerjoin(before, before.c.account_id == level.c.account_id))
                .subquery("per_customer")
            )
            limit = sa.literal(self.limits.per_customer, Integer)
            after_transaction, after_day = level.c.after_transaction, level.c.after_day
            after_customer = Least(level.c.total_sum, limit) - Least(
                level.c.total_sum - level.c.after_day, limit
            )
        cut_day = after_transaction - after_day
        if self.limits.per_day is not None and self.limits.per_customer is not None:
            # say what each limit cut as EarnRules.capped does: the day's room is what the day kept
            # after both limits (once per_customer has cut, the day has more room than it used)
            kept = sa.func.sum(after_customer).over(
                partition_by=(level.c.account_id, level.c.day),
                order_by=(level.c.ordered_at, level.c.purchase_id),
                rows=(None, 0),
            )
            room = Greatest(
                sa.literal(self.limits.per_day, Integer) - (level.c.day_before + kept - after_customer), 0
            )
            cut_day = after_transaction - Least(after_transaction, room)
        available_at = self._available_at(level.c.ordered_at)
        pending = sa.and_(after_customer > 0, available_at > sa.literal(now, UtcDateTime()))
        ids = [
            new_id(self.connection, table, level.c.purchase_id)
            for table in ("loyalty_operation", "loyalty_lot", "loyalty_entry")
        ]
        final = select(
            level.c.purchase_id,
            level.c.account_id,
            level.c.ordered_at,
            level.c.flags,
            level.c.full_points,
            after_customer,
            sa.case((pending, PENDING), else_=AVAILABLE),
            *ids,
            level.c.full_points - after_transaction,
            cut_day,
            after_transaction - after_customer - cut_day,
        )
        self.connection.execute(ROW.insert().from_select([c.name for c in ROW.c], final))
        # counted, not taken from rowcount: Python's sqlite3 reports none for a statement starting WITH
        inserted = int(self.connection.execute(select(sa.func.count()).select_from(ROW)).scalar_one())
        if inserted:
            analyze(self.connection, ROW.name)
        return inserted

    def _earned_before(self, days: LocalDays) -> sa.CTE:
        """What the chunk's accounts earned before: per account and local day of the chunk (else NULL).

        One pass over the accounts' lots from purchases and events (each is
        filled by exactly one earn entry of its points, so their points are
        what :func:`earned_so_far` sums); per_day joins it by day, per_customer
        adds it up per account.
        """
        in_days = sa.and_(LOT.c.earned_at >= days.start, LOT.c.earned_at < days.end)
        day = sa.case((in_days, days.number(LOT.c.earned_at)), else_=sa.null())
        return (
            select(LOT.c.account_id, day.label("day"), sa.func.sum(LOT.c.points).label("points"))
            .where(LOT.c.account_id.in_(select(MEMBER.c.account_id)), LOT.c.source.in_(EARNING_SOURCES))
            .group_by(LOT.c.account_id, day)
            .cte("earned_before")
            .prefix_with("MATERIALIZED")
        )

    # --- 4: operations, lots, entries, accounts ------------------------------------------------

    def _post(self) -> None:
        programme, now = self.programme, self.now
        source = self._with_purchase()
        partners = list(programme.settings.partners)
        partner = (
            sa.case((PURCHASE.c.source.in_(partners), PURCHASE.c.source), else_=sa.null())
            if partners
            else sa.null()
        )
        key = purchase_key()
        request = (
            sa.literal('{"accrual":true,"amount":"', String)
            .concat(AmountText(PURCHASE.c.amount))
            .concat('","command":"earn","purchase_id":')
            .concat(sa.cast(PURCHASE.c.id, String))
            .concat("}")
        )
        lot = sa.case((ROW.c.points > 0, ROW.c.lot_id), else_=sa.null())
        result = json_object(
            programme=typed_text(programme.name),
            key=key,
            command=typed_text(EARN),
            points=ROW.c.points,
            detail=json_object(
                lot=lot,
                config_version=typed_text(programme.config_version),
                source=typed_text("accrual"),
            ),
            operation=ROW.c.operation_id,
        )
        operations = select(
            ROW.c.operation_id,
            sa.literal(programme.name, String),
            key,
            sa.literal(EARN, String),
            Sha256Hex(request),
            ROW.c.account_id,
            PURCHASE.c.id,
            PURCHASE.c.external_id,
            partner,
            PURCHASE.c.amount,
            sa.literal(programme.config_version, String),
            JsonText(result),
            sa.literal(now, UtcDateTime()),
        ).select_from(source)
        self.connection.execute(
            OPERATION.insert().from_select(
                [
                    "id", "programme", "key", "command", "request_hash", "account_id", "purchase_id",
                    "reference", "partner", "amount", "config_version", "result", "created_at",
                ],
                operations,
            )
        )  # fmt: skip
        available_at = self._available_at(PURCHASE.c.ordered_at)
        lots = (
            select(
                ROW.c.lot_id,
                ROW.c.account_id,
                ROW.c.operation_id,
                ROW.c.points,
                ROW.c.points.label("remaining"),
                sa.literal("purchase", String),
                partner,
                PURCHASE.c.ordered_at,
                available_at,
                self._expires_at(),
            )
            .select_from(source)
            .where(ROW.c.points > 0)
        )
        self.connection.execute(
            LOT.insert().from_select(
                [
                    "id", "account_id", "operation_id", "points", "remaining", "source", "partner",
                    "earned_at", "available_at", "expires_at",
                ],
                lots,
            )
        )  # fmt: skip
        rules = programme.earn.explain_sql(
            flags=ROW.c.flags,
            tier=effective_tier_sql(ACCOUNT, now),
            source=PURCHASE.c.source,
            cuts={
                "per_transaction": ROW.c.cut_transaction,
                "per_day": ROW.c.cut_day,
                "per_customer": ROW.c.cut_customer,
            },
        )
        detail = (
            sa.literal('{"rules": ', String)
            .concat(rules)
            .concat(f', "config_version": "{programme.config_version}", "accrual": true}}')
        )
        entries = select(
            ROW.c.entry_id,
            ROW.c.operation_id,
            ROW.c.account_id,
            lot,
            sa.literal(EARN, String),
            ROW.c.bucket,
            ROW.c.points,
            PURCHASE.c.amount,
            JsonText(detail),
            sa.literal(now, UtcDateTime()),
        ).select_from(source.join(ACCOUNT, ACCOUNT.c.id == ROW.c.account_id))
        self.connection.execute(
            ENTRY.insert().from_select(
                ["id", "operation_id", "account_id", "lot_id", "kind", "bucket", "points", "amount", "detail",
                 "posted_at"],
                entries,
            )
        )  # fmt: skip
        self._update_accounts()

    def _with_purchase(self) -> sa.FromClause:
        """The scratch rows joined to their purchases (the id range keeps planners from scanning them all)."""
        return ROW.join(
            PURCHASE,
            sa.and_(PURCHASE.c.id == ROW.c.purchase_id, PURCHASE.c.id.between(self.first, self.last)),
        )

    def _available_at(self, ordered_at: ColumnElement[dt.datetime]) -> ColumnElement[dt.datetime]:
        """``Programme.available_at`` of ``ordered_at``, in SQL: ``pending_days`` local days later."""
        return LocalShift(
            self.programme, self.earliest, self.latest, self.programme.settings.pending_days
        ).at(ordered_at)

    def _expires_at(self) -> ColumnElement[Any]:
        """When the lot of a purchase expires: ``Programme.expires_at`` of its ``ordered_at``, in SQL."""
        return expires_at_sql(self.programme, PURCHASE.c.ordered_at, self.earliest, self.latest)

    def _update_accounts(self) -> None:
        sums = (
            select(
                ROW.c.account_id,
                sa.func.sum(sa.case((ROW.c.bucket == PENDING, ROW.c.points), else_=0)).label("pending"),
                sa.func.sum(sa.case((ROW.c.bucket == AVAILABLE, ROW.c.points), else_=0)).label("available"),
                sa.func.max(ROW.c.ordered_at).label("latest"),
            )
            .group_by(ROW.c.account_id)
            .subquery("earned")
        )
        latest = sa.case(
            (
                sa.or_(ACCOUNT.c.last_activity_at.is_(None), ACCOUNT.c.last_activity_at < sums.c.latest),
                sums.c.latest,
            ),
            else_=ACCOUNT.c.last_activity_at,
        )
        self.connection.execute(
            ACCOUNT.update()
            .where(ACCOUNT.c.id == sums.c.account_id)
            .values(
                pending=ACCOUNT.c.pending + sums.c.pending,
                available=ACCOUNT.c.available + sums.c.available,
                last_activity_at=latest,
                updated_at=sa.literal(self.now, UtcDateTime()),
            )
        )

    def _count(self, result: AccrualResult) -> None:
        row = self.connection.execute(
            select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(ROW.c.points), 0),
                sa.func.coalesce(sa.func.sum(sa.case((ROW.c.bucket == PENDING, ROW.c.points), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(ROW.c.full_points - ROW.c.points), 0),
            )
        ).one()
        result.purchases += int(row[0])
        result.points += int(row[1])
        result.pending += int(row[2])
        result.cut += int(row[3])


def effective_tier_sql(account: sa.FromClause, now: dt.datetime) -> ColumnElement[str]:
    """The account's tier as earning sees it: an override until it ends, else the tier."""
    override = sa.and_(
        account.c.tier_override.is_not(None),
        sa.or_(account.c.override_until.is_(None), account.c.override_until > sa.literal(now, UtcDateTime())),
    )
    return sa.case((override, account.c.tier_override), else_=account.c.tier)


def expires_at_sql(
    programme: Programme, earned_at: ColumnElement[dt.datetime], earliest: dt.datetime, latest: dt.datetime
) -> ColumnElement[Any]:
    """``Programme.expires_at`` of ``earned_at`` (times from ``earliest`` to ``latest``), in SQL.

    Rolling: :class:`LocalShift` for days and weeks, exact seconds for hours
    and minutes. Calendar: the period ends (local midnights, as UTC) from the
    earliest time's to the latest's, a ``CASE`` that takes the first end whose
    threshold comes after the local earn date: the threshold of an end is the
    first day whose date plus the lag reaches it (:meth:`Lag.before`).
    """
    kind = programme.settings.expiry_kind
    if kind in ("never", "inactivity"):
        return sa.null()
    if kind == "rolling":
        days = calendar_days(programme.settings.expiry)
        if days is not None:
            return LocalShift(programme, earliest, latest, days).at(earned_at)
        return plus(earned_at, parse_duration(programme.settings.expiry))
    last = programme.expires_at(aware(latest))
    ends = [programme.expires_at(aware(earliest))]
    while ends[-1] is not None and last is not None and ends[-1] < last:
        ends.append(programme.day_start(period_end(programme.local_day(ends[-1]), kind)))
    lag = programme.expiry_lag
    whens = []
    for end in ends:
        if end is None:
            continue
        threshold = programme.day_start(lag.before(programme.local_day(end)))
        whens.append((earned_at < sa.literal(threshold, UtcDateTime()), sa.literal(end, UtcDateTime())))
    return sa.case(*whens, else_=sa.null())
