"""What the points are worth to finance: liability, breakage and partner settlement, from the ledger.

Everything is computed from ``loyalty_entry`` (append-only) with one
``GROUP BY`` per figure, never by loading rows, so a report for a past
instant or a past period is exact whatever happened since.

* **Liability** (:func:`liability`): the points customers still hold, per
  programme and per issuer (the lot's ``partner``; ``None`` is the programme
  itself), split into pending, available and held; ``outstanding =
  pending + available + held`` and ``value = outstanding x point_value``.
  **Debt** (points customers owe after a refund of points already spent) is
  shown beside it, never subtracted: it is only recovered from points earned
  later (``repay``), so the liability stays the gross figure.
* **Breakage** (in the liability report): per issuer, for a period and for the
  whole life of the programme, ``issued`` (earn entries plus positive
  adjustments), ``expired``, ``redeemed``, ``returned``, ``clawed_back`` and
  ``adjusted_out``; ``breakage_rate = expired / issued`` (None when nothing
  was issued).
* **Settlement** (:func:`settlement`): per partner and period, points the
  partner issued (earned on its lots minus clawed back from them) at its
  ``price_per_point``, against points burnt at the partner (redemptions and
  captures whose operation names it, minus the points refunds gave back to
  them) at its ``burn_rate``; ``net = owed_by_partner - owed_to_partner``
  (positive: the partner pays the programme).

Money is ``Decimal`` rounded half-up to the cent per figure; points are ints.
``as_dict`` gives the stable JSON forms ``crm-engine/loyalty-liability/1``
and ``crm-engine/loyalty-settlement/1`` (docs/loyalty.md); the other output
formats are in :mod:`engine.loyalty.finance.output`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, select

from engine.clock import utcnow
from engine.errors import NotFoundError
from engine.loyalty.programme import Programme
from engine.models import (
    ACCOUNT,
    ADJUST,
    AVAILABLE,
    CAPTURE,
    CLAWBACK,
    DEBT,
    EARN,
    ENTRY,
    EXPIRE,
    HELD,
    LOT,
    OPERATION,
    PENDING,
    REDEEM,
    RETURN,
)
from engine.reporting import Period

LIABILITY_SCHEMA = "crm-engine/loyalty-liability/1"
SETTLEMENT_SCHEMA = "crm-engine/loyalty-settlement/1"
CENT = Decimal("0.01")
RATE = Decimal("0.0001")


#: entries that spend points: one-phase redemptions and captured holds (their held entries)
SPEND_KINDS = (REDEEM, CAPTURE)
#: what outstanding points are made of; debt is owed by the customer and kept apart
BALANCE_BUCKETS = (PENDING, AVAILABLE, HELD)
#: entries that count in breakage (flows); the rest move points inside the programme
FLOW_KINDS = (EARN, ADJUST, EXPIRE, REDEEM, CAPTURE, RETURN, CLAWBACK)


def as_money(value: Decimal) -> Decimal:
    """``value`` rounded half-up (away from zero, as a spreadsheet's ROUND) to the cent."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> str:
    """Money as a string with two decimals (JSON keeps it exact)."""
    return str(as_money(value))


def _decimal(value: Decimal) -> str:
    """A rate or price without trailing zeros, e.g. ``0.45``."""
    text = format(value.normalize(), "f")
    return text


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def period_bounds(programme: Programme, period: Period) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants of the period's first local midnight and of the one after its last day."""
    return programme.day_start(period.start), programme.day_start(period.end + dt.timedelta(days=1))


# ---------------------------------------------------------------------------- liability


@dataclass(frozen=True)
class Outstanding:
    """Points still held by customers on the lots of one issuer (or a whole programme), and debt."""

    partner: str | None  # None: the programme's own lots (or, for a total, every issuer)
    pending: int
    available: int
    held: int
    debt: int
    accounts: int  # accounts with outstanding points on these lots
    debtors: int  # accounts with debt on these lots (or without a lot, for the programme)
    point_value: Decimal

    @property
    def points(self) -> int:
        """pending + available + held."""
        return self.pending + self.available + self.held

    @property
    def value(self) -> Decimal:
        """The liability: outstanding points x point value, to the cent."""
        return as_money(self.points * self.point_value)

    @property
    def debt_value(self) -> Decimal:
        """Debt points x point value, to the cent (not deducted from :attr:`value`)."""
        return as_money(self.debt * self.point_value)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "partner": self.partner,
            "pending": self.pending,
            "available": self.available,
            "held": self.held,
            "outstanding": self.points,
            "value": money(self.value),
            "debt": self.debt,
            "debt_value": money(self.debt_value),
            "accounts": self.accounts,
            "debtors": self.debtors,
        }


@dataclass(frozen=True)
class Flows:
    """Points that moved in a window (all counted positive)."""

    issued: int = 0  # earn entries + positive adjust entries
    expired: int = 0  # -(expire entries)
    redeemed: int = 0  # -(redeem + capture entries): points spent
    returned: int = 0  # return entries: spent points a refund gave back
    clawed_back: int = 0  # -(clawback entries): earned points a refund took back
    adjusted_out: int = 0  # -(negative adjust entries)

    @property
    def breakage_rate(self) -> Decimal | None:
        """expired / issued to 4 decimals (0.1250 = 12.5 %); None when nothing was issued."""
        if self.issued == 0:
            return None
        return (Decimal(self.expired) / Decimal(self.issued)).quantize(RATE, rounding=ROUND_HALF_UP)

    def __add__(self, other: Flows) -> Flows:
        return Flows(
            self.issued + other.issued,
            self.expired + other.expired,
            self.redeemed + other.redeemed,
            self.returned + other.returned,
            self.clawed_back + other.clawed_back,
            self.adjusted_out + other.adjusted_out,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        rate = self.breakage_rate
        return {
            "issued": self.issued,
            "expired": self.expired,
            "redeemed": self.redeemed,
            "returned": self.returned,
            "clawed_back": self.clawed_back,
            "adjusted_out": self.adjusted_out,
            "breakage_rate": None if rate is None else str(rate),
        }


@dataclass(frozen=True)
class Breakage:
    """Flows of one issuer's points (``partner`` None: the programme's own) in the period and ever."""

    partner: str | None
    period: Flows
    lifetime: Flows

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"partner": self.partner, "period": self.period.as_dict(), "lifetime": self.lifetime.as_dict()}


@dataclass(frozen=True)
class ProgrammeLiability:
    """The liability and breakage of one programme."""

    programme: str
    currency: str
    point_value: Decimal
    zone: str
    period_start: dt.datetime  # breakage period, UTC, inclusive
    period_end: dt.datetime  # exclusive; never after the report's as_of
    total: Outstanding
    by_partner: list[Outstanding]  # the programme's own lots first, then partners by name
    breakage: Breakage
    breakage_by_partner: list[Breakage]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "programme": self.programme,
            "currency": self.currency,
            "point_value": _decimal(self.point_value),
            "timezone": self.zone,
            "period": {"start": _instant(self.period_start), "end": _instant(self.period_end)},
            "total": {**self.total.as_dict(), "partner": None},
            "by_partner": [row.as_dict() for row in self.by_partner],
            "breakage": {
                "total": {
                    "period": self.breakage.period.as_dict(),
                    "lifetime": self.breakage.lifetime.as_dict(),
                },
                "by_partner": [row.as_dict() for row in self.breakage_by_partner],
            },
        }


@dataclass(frozen=True)
class LiabilityReport:
    """Outstanding points and their value at ``as_of``, with breakage, for one or more programmes."""

    as_of: dt.datetime
    generated_at: dt.datetime
    period: Period  # of breakage, in each programme's local days, cut at as_of
    programmes: list[ProgrammeLiability]

    @property
    def value(self) -> Decimal:
        """The liability of every programme in the report."""
        return sum((p.total.value for p in self.programmes), Decimal(0))

    @property
    def debt_value(self) -> Decimal:
        """Customer debt of every programme in the report, valued at each programme's point value."""
        return sum((p.total.debt_value for p in self.programmes), Decimal(0))

    @property
    def currency(self) -> str:
        """The currency (every programme shares the engine's)."""
        return self.programmes[0].currency if self.programmes else ""

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (schema ``crm-engine/loyalty-liability/1``)."""
        return {
            "schema": LIABILITY_SCHEMA,
            "as_of": _instant(self.as_of),
            "generated_at": _instant(self.generated_at),
            "currency": self.currency,
            "period": {
                "label": self.period.label,
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
            },
            "programmes": [p.as_dict() for p in self.programmes],
            "totals": {"value": money(self.value), "debt_value": money(self.debt_value)},
        }


def _bucket_sum(bucket: str) -> Any:
    return func.coalesce(func.sum(case((ENTRY.c.bucket == bucket, ENTRY.c.points), else_=0)), 0)


def _entries_of() -> Any:
    """Entries of the programme's accounts with their lot (outer: debt may have none)."""
    return ENTRY.join(ACCOUNT, ACCOUNT.c.id == ENTRY.c.account_id).outerjoin(LOT, LOT.c.id == ENTRY.c.lot_id)


def _per_account(programme: Programme, as_of: dt.datetime, *, by_partner: bool) -> Any:
    """Buckets per account (and issuer) from the entries posted before ``as_of``: a subquery."""
    keys = [LOT.c.partner.label("partner"), ENTRY.c.account_id] if by_partner else [ENTRY.c.account_id]
    return (
        select(*keys, *(_bucket_sum(bucket).label(bucket) for bucket in (*BALANCE_BUCKETS, DEBT)))
        .select_from(_entries_of())
        .where(ACCOUNT.c.programme == programme.name, ENTRY.c.posted_at < as_of)
        .group_by(*keys)
        .subquery()
    )


def _outstanding_rows(
    connection: Connection, programme: Programme, as_of: dt.datetime, *, by_partner: bool
) -> Any:
    inner = _per_account(programme, as_of, by_partner=by_partner)
    balance = inner.c[PENDING] + inner.c[AVAILABLE] + inner.c[HELD]
    sums = [func.coalesce(func.sum(inner.c[bucket]), 0).label(bucket) for bucket in (*BALANCE_BUCKETS, DEBT)]
    counts = [
        func.count(case((balance > 0, 1))).label("accounts"),
        func.count(case((inner.c[DEBT] > 0, 1))).label("debtors"),
    ]
    if by_partner:
        query = select(inner.c.partner, *sums, *counts).group_by(inner.c.partner)
    else:
        query = select(*sums, *counts)
    return connection.execute(query).all()


def _outstanding(row: Any, partner: str | None, point_value: Decimal) -> Outstanding:
    return Outstanding(
        partner,
        int(row.pending),
        int(row.available),
        int(row.held),
        int(row.debt),
        int(row.accounts),
        int(row.debtors),
        point_value,
    )


def _flows(
    connection: Connection, programme: Programme, as_of: dt.datetime, start: dt.datetime, end: dt.datetime
) -> dict[str | None, tuple[Flows, Flows]]:
    """Per issuer: (flows in ``[start, end)``, flows before ``as_of``), one GROUP BY over the entries."""
    points = ENTRY.c.points
    in_period = and_(ENTRY.c.posted_at >= start, ENTRY.c.posted_at < end)
    query = (
        select(
            LOT.c.partner,
            ENTRY.c.kind,
            ENTRY.c.bucket,
            func.coalesce(func.sum(case((in_period, points), else_=0)), 0),
            func.coalesce(func.sum(case((and_(in_period, points > 0), points), else_=0)), 0),
            func.coalesce(func.sum(points), 0),
            func.coalesce(func.sum(case((points > 0, points), else_=0)), 0),
        )
        .select_from(_entries_of())
        .where(
            ACCOUNT.c.programme == programme.name,
            ENTRY.c.posted_at < as_of,
            ENTRY.c.kind.in_(FLOW_KINDS),
        )
        .group_by(LOT.c.partner, ENTRY.c.kind, ENTRY.c.bucket)
    )
    # partner -> kind -> [period net, period positive, lifetime net, lifetime positive]
    found: dict[str | None, dict[str, list[int]]] = {}
    for partner, kind, bucket, *values in connection.execute(query):
        if kind in SPEND_KINDS:
            if bucket not in BALANCE_BUCKETS:
                continue
            kind = REDEEM
        sums = found.setdefault(partner, {}).setdefault(kind, [0, 0, 0, 0])
        for index, value in enumerate(values):
            sums[index] += int(value)

    def flows(kinds: dict[str, list[int]], offset: int) -> Flows:
        def net(kind: str) -> int:
            return kinds.get(kind, [0, 0, 0, 0])[offset]

        def positive(kind: str) -> int:
            return kinds.get(kind, [0, 0, 0, 0])[offset + 1]

        return Flows(
            issued=net(EARN) + positive(ADJUST),
            expired=-net(EXPIRE),
            redeemed=-net(REDEEM),
            returned=net(RETURN),
            clawed_back=-net(CLAWBACK),
            adjusted_out=positive(ADJUST) - net(ADJUST),
        )

    return {partner: (flows(kinds, 0), flows(kinds, 2)) for partner, kinds in found.items()}


def _programme_liability(
    connection: Connection, programme: Programme, as_of: dt.datetime, period: Period
) -> ProgrammeLiability:
    value = programme.point_value
    start, end = period_bounds(programme, period)
    end = min(end, as_of)
    start = min(start, end)
    rows = {row.partner: row for row in _outstanding_rows(connection, programme, as_of, by_partner=True)}
    total = _outstanding_rows(connection, programme, as_of, by_partner=False)[0]  # no GROUP BY: one row
    flows = _flows(connection, programme, as_of, start, end)
    partners = sorted(set(programme.settings.partners) | {p for p in (*rows, *flows) if p is not None})
    issuers: list[str | None] = [None, *partners]
    by_partner = [
        _outstanding(rows[p], p, value) if p in rows else Outstanding(p, 0, 0, 0, 0, 0, 0, value)
        for p in issuers
    ]
    breakage = [Breakage(p, *flows.get(p, (Flows(), Flows()))) for p in issuers]
    return ProgrammeLiability(
        programme=programme.name,
        currency=programme.currency,
        point_value=value,
        zone=programme.zone.key,
        period_start=start,
        period_end=end,
        total=_outstanding(total, None, value),
        by_partner=by_partner,
        breakage=Breakage(
            None,
            sum((b.period for b in breakage), Flows()),
            sum((b.lifetime for b in breakage), Flows()),
        ),
        breakage_by_partner=breakage,
    )


def _programme_list(programmes: Mapping[str, Programme] | Iterable[Programme]) -> list[Programme]:
    if isinstance(programmes, Mapping):
        return list(programmes.values())
    return list(programmes)


def _default_period(day: dt.date) -> Period:
    """The breakage period when none is given: the calendar year of ``programme_zone_day``."""
    return Period.containing(day, "year")


def liability(
    engine: Engine,
    programmes: Mapping[str, Programme] | Iterable[Programme],
    *,
    as_of: dt.datetime | None = None,
    period: Period | None = None,
    now: dt.datetime | None = None,
) -> LiabilityReport:
    """Outstanding points and their value at ``as_of`` (default: now), with breakage over ``period``.

    ``as_of`` is an instant: the ledger counts every entry posted *before* it.
    ``period`` (local days of each programme) defaults to the calendar year
    that contains the last moment before ``as_of``; its flows stop at ``as_of``.

    Example::

        report = liability(engine, config.programmes, as_of=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
        report.programmes[0].total.value  # Decimal('125400.00')
    """
    now = now or utcnow()
    as_of = as_of or now
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of.isoformat()} must be an aware datetime")
    chosen = _programme_list(programmes)
    if period is None:
        zone = chosen[0].zone if chosen else dt.UTC
        period = _default_period((as_of - dt.timedelta(microseconds=1)).astimezone(zone).date())
    with engine.connect() as connection:
        reports = [_programme_liability(connection, programme, as_of, period) for programme in chosen]
    return LiabilityReport(as_of=as_of, generated_at=now, period=period, programmes=reports)


# ---------------------------------------------------------------------------- settlement


@dataclass(frozen=True)
class PartnerSettlement:
    """What one partner and the programme owe each other for one period."""

    partner: str
    price_per_point: Decimal
    burn_rate: Decimal
    earned: int  # earn entries on the partner's lots, posted in the period
    clawed_back: int  # -(clawback entries) on the partner's lots, posted in the period
    burnt: int  # -(redeem + capture entries) of operations at the partner, posted in the period
    returned: int  # return entries giving back those spends, posted in the period

    @property
    def issued(self) -> int:
        """Points the partner issued, net of clawbacks (may be negative in a period of refunds)."""
        return self.earned - self.clawed_back

    @property
    def redeemed(self) -> int:
        """Points burnt at the partner, net of returns."""
        return self.burnt - self.returned

    @property
    def owed_by_partner(self) -> Decimal:
        """issued x price_per_point, to the cent."""
        return as_money(self.issued * self.price_per_point)

    @property
    def owed_to_partner(self) -> Decimal:
        """redeemed x burn_rate, to the cent."""
        return as_money(self.redeemed * self.burn_rate)

    @property
    def net(self) -> Decimal:
        """owed_by_partner - owed_to_partner: positive, the partner pays the programme."""
        return self.owed_by_partner - self.owed_to_partner

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "partner": self.partner,
            "earned": self.earned,
            "clawed_back": self.clawed_back,
            "issued": self.issued,
            "price_per_point": _decimal(self.price_per_point),
            "owed_by_partner": money(self.owed_by_partner),
            "burnt": self.burnt,
            "returned": self.returned,
            "redeemed": self.redeemed,
            "burn_rate": _decimal(self.burn_rate),
            "owed_to_partner": money(self.owed_to_partner),
            "net": money(self.net),
        }


@dataclass(frozen=True)
class SettlementReport:
    """Partner settlement of one programme over ``[start, end)``."""

    programme: str
    currency: str
    label: str  # the period as given (2027-03, 2027-Q1...) or the two instants
    start: dt.datetime
    end: dt.datetime
    generated_at: dt.datetime
    partners: list[PartnerSettlement]
    timezone: str = "UTC"  # the programme's: the zone whose days the period's label names
    notes: list[str] = field(default_factory=list)

    @property
    def owed_by_partners(self) -> Decimal:
        """What the partners owe the programme, together."""
        return sum((p.owed_by_partner for p in self.partners), Decimal(0))

    @property
    def owed_to_partners(self) -> Decimal:
        """What the programme owes the partners, together."""
        return sum((p.owed_to_partner for p in self.partners), Decimal(0))

    @property
    def net(self) -> Decimal:
        """Positive: the partners pay the programme on balance."""
        return self.owed_by_partners - self.owed_to_partners

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (schema ``crm-engine/loyalty-settlement/1``)."""
        return {
            "schema": SETTLEMENT_SCHEMA,
            "programme": self.programme,
            "currency": self.currency,
            "period": {
                "label": self.label,
                "start": _instant(self.start),
                "end": _instant(self.end),
                "timezone": self.timezone,
            },
            "generated_at": _instant(self.generated_at),
            "partners": [p.as_dict() for p in self.partners],
            "totals": {
                "earned": sum(p.earned for p in self.partners),
                "clawed_back": sum(p.clawed_back for p in self.partners),
                "issued": sum(p.issued for p in self.partners),
                "owed_by_partners": money(self.owed_by_partners),
                "burnt": sum(p.burnt for p in self.partners),
                "returned": sum(p.returned for p in self.partners),
                "redeemed": sum(p.redeemed for p in self.partners),
                "owed_to_partners": money(self.owed_to_partners),
                "net": money(self.net),
            },
            "notes": list(self.notes),
        }


def _issued_at_partners(
    connection: Connection, programme: Programme, start: dt.datetime, end: dt.datetime
) -> dict[str, tuple[int, int]]:
    """Per partner: (earned, clawed back) in ``[start, end)``.

    Earned: earn entries on the partner's lots. Clawed back: clawback entries
    reversing those earn entries (their ``related_id``), whichever lot the
    points were taken from (a refund of spent points draws on other lots).
    """
    earn_entry = ENTRY.alias("earn_entry")
    earned_lot = LOT.alias("earned_lot")
    partner = case((ENTRY.c.related_id.is_not(None), earned_lot.c.partner), else_=LOT.c.partner)
    pieces = (
        select(
            partner.label("partner"),
            case((ENTRY.c.kind == EARN, ENTRY.c.points), else_=0).label("earned"),
            case((ENTRY.c.kind == CLAWBACK, -ENTRY.c.points), else_=0).label("clawed_back"),
        )
        .select_from(
            ENTRY.join(ACCOUNT, ACCOUNT.c.id == ENTRY.c.account_id)
            .outerjoin(LOT, LOT.c.id == ENTRY.c.lot_id)
            .outerjoin(earn_entry, earn_entry.c.id == ENTRY.c.related_id)
            .outerjoin(earned_lot, earned_lot.c.id == earn_entry.c.lot_id)
        )
        .where(
            ACCOUNT.c.programme == programme.name,
            ENTRY.c.kind.in_((EARN, CLAWBACK)),
            ENTRY.c.posted_at >= start,
            ENTRY.c.posted_at < end,
        )
        .subquery()
    )
    query = (
        select(pieces.c.partner, func.sum(pieces.c.earned), func.sum(pieces.c.clawed_back))
        .where(pieces.c.partner.is_not(None))
        .group_by(pieces.c.partner)
    )
    return {name: (int(earned), int(clawed)) for name, earned, clawed in connection.execute(query)}


def _partner_of(operation: Any, closed: Any) -> Any:
    """The partner of a spend: its operation's, else (a capture) the hold's it closes."""
    return func.coalesce(operation.c.partner, closed.c.partner)


def _burnt_at_partners(
    connection: Connection, programme: Programme, start: dt.datetime, end: dt.datetime
) -> dict[str, tuple[int, int]]:
    """Per partner: (burnt, returned) in ``[start, end)``.

    Burnt: -(redeem + capture entries in pending/available/held) of operations
    naming the partner (a capture without one takes the hold's). Returned:
    ``return`` entries whose ``related_id`` names such a spending entry.
    """
    operation = OPERATION.alias("operation")
    closed = OPERATION.alias("closed")
    spends = (
        select(
            _partner_of(operation, closed).label("partner"),
            (-ENTRY.c.points).label("burnt"),
        )
        .select_from(
            ENTRY.join(operation, operation.c.id == ENTRY.c.operation_id).outerjoin(
                closed, closed.c.id == operation.c.closes_id
            )
        )
        .where(
            operation.c.programme == programme.name,
            ENTRY.c.kind.in_(SPEND_KINDS),
            ENTRY.c.bucket.in_(BALANCE_BUCKETS),
            ENTRY.c.posted_at >= start,
            ENTRY.c.posted_at < end,
        )
        .subquery()
    )
    burnt = {
        partner: int(points)
        for partner, points in connection.execute(
            select(spends.c.partner, func.sum(spends.c.burnt))
            .where(spends.c.partner.is_not(None))
            .group_by(spends.c.partner)
        )
    }
    spent = ENTRY.alias("spent")
    returns = (
        select(_partner_of(operation, closed).label("partner"), ENTRY.c.points.label("returned"))
        .select_from(
            ENTRY.join(spent, spent.c.id == ENTRY.c.related_id)
            .join(operation, operation.c.id == spent.c.operation_id)
            .outerjoin(closed, closed.c.id == operation.c.closes_id)
        )
        .where(
            operation.c.programme == programme.name,
            ENTRY.c.kind == RETURN,
            spent.c.kind.in_(SPEND_KINDS),
            ENTRY.c.posted_at >= start,
            ENTRY.c.posted_at < end,
        )
        .subquery()
    )
    returned = {
        partner: int(points)
        for partner, points in connection.execute(
            select(returns.c.partner, func.sum(returns.c.returned))
            .where(returns.c.partner.is_not(None))
            .group_by(returns.c.partner)
        )
    }
    return {p: (burnt.get(p, 0), returned.get(p, 0)) for p in set(burnt) | set(returned)}


def settlement(
    engine: Engine,
    programme: Programme,
    period_start: dt.datetime,
    period_end: dt.datetime,
    *,
    partner: str | None = None,
    label: str | None = None,
    now: dt.datetime | None = None,
) -> SettlementReport:
    """What each partner of ``programme`` and the programme owe each other for ``[period_start, period_end)``.

    Every configured partner gets a row (``partner``: only that one); a
    partner found in the ledger but no longer configured has no rates and is
    named in the notes instead. See the module docstring for the definitions.

    Example::

        start, end = period_bounds(programme, Period.parse("2027-Q1"))
        report = settlement(engine, programme, start, end, label="2027-Q1")
        report.net  # Decimal('1250.00'): the partners pay the programme
    """
    if period_start.tzinfo is None or period_end.tzinfo is None:
        raise ValueError("period_start and period_end must be aware datetimes")
    configured = programme.settings.partners
    if partner is not None and partner not in configured:
        raise NotFoundError(f"partner of programme {programme.name!r}", partner, list(configured))
    with engine.connect() as connection:
        issued = _issued_at_partners(connection, programme, period_start, period_end)
        burnt = _burnt_at_partners(connection, programme, period_start, period_end)
    names = [partner] if partner is not None else sorted(configured)
    rows = [
        PartnerSettlement(
            name,
            configured[name].price_per_point,
            configured[name].burn_rate,
            *issued.get(name, (0, 0)),
            *burnt.get(name, (0, 0)),
        )
        for name in names
    ]
    unknown = sorted((set(issued) | set(burnt)) - set(configured))
    notes = [
        f"partner {name!r} has entries in the period but is not in"
        f" [loyalty.programmes.{programme.name}.partners]: not settled"
        for name in unknown
        if partner is None
    ]
    return SettlementReport(
        programme=programme.name,
        currency=programme.currency,
        label=label or f"{_instant(period_start)}..{_instant(period_end)}",
        start=period_start,
        end=period_end,
        generated_at=now or utcnow(),
        partners=rows,
        timezone=programme.zone.key,
        notes=notes,
    )
