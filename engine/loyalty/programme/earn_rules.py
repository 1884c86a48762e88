"""How many points a purchase or an event earns: a programme's ``earn`` rules, compiled once.

Two paths compute the same points: :meth:`EarnRules.for_purchase` (one
purchase, in Python: the ledger's ``earn`` command) and
:meth:`EarnRules.purchase_sql` (every purchase of a chunk, in SQL: the
set-based accrual of :mod:`engine.loyalty.batch.accrual`). Both follow these rules:

* **What a rule sees.** A purchase rule (``on = "purchase"``, the default)
  names the purchase's fields bare (``amount``, ``category``, ``sku``,
  ``quantity``, ``margin``, ``currency``, ``ordered_at``, ``source``),
  ``partner`` (the purchase's partner; a partner purchase runs no rules, so
  a rule always reads None here), ``tier`` (the account's tier, None without
  one), every field of the customer catalogue under ``customer.``
  (``customer.abc_class``, ``customer.attr.vip``, ``customer.score.churn``)
  and ``in_segment('name')`` for the customer's segments. An event rule
  (``on`` = birthday, signup, referral or a custom event) sees only
  ``customer.*``, ``tier`` and segments; naming a purchase field there is a
  config error.
* **Which rules apply.** Rules run by ``priority``, highest first, ties in
  file order. A rule applies when its ``when`` is exactly True (unknown is
  not) and no earlier rule that applied has ``stack = false``; that is, when
  no earlier rule with ``stack = false`` has its ``when`` True.
* **Points.** (the sum of the ``points`` of the applying points rules; a
  points expression that is unknown counts 0) x (the product of the
  applying multipliers) x the tier's multiplier (1 without a tier, or for a
  tier the programme no longer has); rounded to 6 decimals (half away from
  zero), floored, never below 0; then at most ``limits.per_transaction``.
* **Partners.** A purchase whose ``source`` is a partner of the programme
  earns floor(amount x earn_rate x tier multiplier), rounded the same way,
  and no programme rule runs; ``per_transaction`` still applies.
* **No positive amount, no points.** A purchase whose amount is zero or
  negative (a refund) earns nothing here: taking points back is the
  ledger's job.
* **Events.** The sum of the points of the event's applying rules x the
  product of its applying multipliers, rounded and floored the same way; no
  tier multiplier and no ``per_transaction`` (an event is not a
  transaction).
* **Per day and per customer.** :meth:`EarnRules.capped` applies
  ``per_day`` (given the points the customer earned on the purchase's day,
  in the programme's zone) and then ``per_customer`` (given everything the
  customer earned); both count as :func:`earned_so_far` does: ``earn``
  entries on lots from purchases and events.
* **Today.** ``today()`` and ``days_since()`` count from the date passed
  (the accrual passes the programme's day of its ``now``).

SQL and Python agree to the point: SQLite computes with floats, PostgreSQL
and Python with decimals, and the rounding to 6 decimals before the floor
absorbs the float error.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, FromClause, Numeric, String, select

from engine.errors import ConfigError, NotFoundError, RuleError, UnknownFieldError
from engine.models import ACCOUNT, MEMBERSHIP, PURCHASE
from engine.rules import (
    PURCHASE_FIELDS,
    Catalogue,
    CustomerFields,
    CustomerScope,
    DictRecord,
    Expression,
    Rule,
    RuleType,
    compile_expression,
    compile_rule,
    customer_record,
    normalize,
)
from engine.settings import ProgrammeSection, Settings
from engine.sql import FloorPoints

PURCHASE_EVENT = "purchase"
CUSTOMER_PREFIX = "customer."
#: lots whose points count toward the per_day and per_customer limits
EARNING_SOURCES = ("purchase", "event")
STEP = Decimal("0.000001")
_CONTEXT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_UP)
_UNKNOWN_FIELD = re.compile(r"unknown field '([^']+)'")


@dataclass(frozen=True)
class Earned:
    """Points earned and why: which rule gave what, multipliers, tier, partner, limits that cut.

    ``explain`` holds JSON-ready dicts (decimals as strings), e.g.
    ``({"rule": "earn[0]", "points": "60.00"}, {"rule": "cosmetics x2", "multiplier": "2"},
    {"tier": "gold", "multiplier": "1.5"}, {"limit": "per_day", "cut": 30})``.
    """

    points: int
    explain: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class CompiledEarnRule:
    """One compiled entry of ``earn``."""

    index: int  # position in the file: earn[index]
    label: str  # its name, else earn[index]
    on: str
    when: Rule
    points: Expression | Decimal | None
    multiplier: Decimal | None
    priority: int
    stack: bool

    @property
    def fields(self) -> frozenset[str]:
        """The catalogue fields ``when`` and ``points`` read."""
        extra = self.points.fields if isinstance(self.points, Expression) else frozenset()
        return self.when.fields | extra

    @property
    def segments(self) -> frozenset[str]:
        """The segments ``when`` and ``points`` name."""
        extra = self.points.segments if isinstance(self.points, Expression) else frozenset()
        return self.when.segments | extra


@dataclass(frozen=True)
class PointsSql:
    """The SQL of a purchase's points, for one row of ``purchase`` joined to its account.

    ``flags`` is a string with one character per purchase rule (``1``: it
    applied), in :attr:`EarnRules.purchase_rules` order; ``full`` the points
    before ``per_transaction`` (which the caller applies with :class:`Least`,
    one level up, so that ``full`` is computed once).
    """

    flags: ColumnElement[str]
    full: ColumnElement[int]


class EarnRules:
    """The earn rules and limits of one programme, compiled; see the module docstring for the semantics."""

    def __init__(
        self,
        programme: str,
        section: ProgrammeSection,
        fields: CustomerFields,
        rules: Sequence[CompiledEarnRule],
    ) -> None:
        self.programme = programme
        self.section = section
        self.fields = fields
        ordered = sorted(rules, key=lambda rule: (-rule.priority, rule.index))
        self.purchase_rules = tuple(rule for rule in ordered if rule.on == PURCHASE_EVENT)
        self.event_rules: dict[str, tuple[CompiledEarnRule, ...]] = {}
        for rule in ordered:
            if rule.on != PURCHASE_EVENT:
                self.event_rules[rule.on] = (*self.event_rules.get(rule.on, ()), rule)
        self.tier_multipliers = {tier.name: tier.multiplier for tier in section.tiers}
        self._customer_fields = frozenset(
            name.removeprefix(CUSTOMER_PREFIX)
            for rule in rules
            for name in rule.fields
            if name.startswith(CUSTOMER_PREFIX)
        )
        self._segments = frozenset(segment for rule in rules for segment in rule.segments)

    # --- what the rules need ---------------------------------------------------------------------

    def has_event(self, event: str) -> bool:
        """Whether any rule gives points for ``event`` (``purchase`` included)."""
        if event == PURCHASE_EVENT:
            return bool(self.purchase_rules) or bool(self.section.partners)
        return event in self.event_rules

    @property
    def customer_fields(self) -> frozenset[str]:
        """The customer catalogue fields the rules read (without the ``customer.`` prefix)."""
        return self._customer_fields

    @property
    def reads_customer(self) -> bool:
        """Whether any rule reads a customer field or a segment."""
        return bool(self._customer_fields or self._segments)

    def tier_multiplier(self, tier: str | None) -> Decimal:
        """The earn multiplier of ``tier``; 1 without a tier or for a tier the programme no longer has."""
        return self.tier_multipliers.get(tier, Decimal(1)) if tier else Decimal(1)

    # --- Python: one purchase, one event -------------------------------------------------------

    def for_purchase(
        self,
        connection: Connection,
        *,
        customer_id: int,
        purchase: Mapping[str, Any],
        tier: str | None,
        partner: str | None,
        today: dt.date,
    ) -> Earned:
        """The points ``purchase`` earns before the per_day and per_customer limits (see :meth:`capped`).

        ``purchase`` has the keys amount (Decimal), category, sku, quantity,
        margin, currency, ordered_at (aware) and source; ``partner`` is the
        partner that issues the points (default: the purchase's source when it
        names a partner).
        """
        amount = Decimal(purchase["amount"])
        if amount <= 0:
            return Earned(0, ({"skipped": "the amount is not positive: a refund earns nothing"},))
        source = purchase.get("source")
        if partner is None and source in self.section.partners:
            partner = source
        tier_multiplier = self.tier_multiplier(tier)
        tier_explain = [{"tier": tier, "multiplier": _text(tier_multiplier)}] if tier else []
        if partner is not None:
            if partner not in self.section.partners:
                raise NotFoundError(
                    f"partner of programme {self.programme!r}", partner, list(self.section.partners)
                )
            rate = self.section.partners[partner].earn_rate
            value = _CONTEXT.multiply(_CONTEXT.multiply(amount, rate), tier_multiplier)
            explain = [{"partner": partner, "earn_rate": _text(rate), "amount": _text(amount)}, *tier_explain]
            return self._per_transaction(floor_points(value), explain)
        record = self._record(connection, customer_id, purchase, tier=tier, today=today)
        total, product, explain = self._apply(self.purchase_rules, record)
        value = _CONTEXT.multiply(_CONTEXT.multiply(total, product), tier_multiplier)
        return self._per_transaction(floor_points(value), [*explain, *tier_explain])

    def for_event(self, connection: Connection, *, customer_id: int, event: str, today: dt.date) -> Earned:
        """The points ``event`` (birthday, signup, referral, custom) earns, before per_day/per_customer.

        ``tier`` in the rules is the customer's tier in this programme: a
        manual override that has not ended by the start of ``today`` (UTC),
        else the account's tier; None without an account.
        """
        rules = self.event_rules.get(event, ())
        if not rules:
            return Earned(0, ())
        account = connection.execute(
            select(ACCOUNT.c.tier, ACCOUNT.c.tier_override, ACCOUNT.c.override_until).where(
                ACCOUNT.c.programme == self.programme, ACCOUNT.c.customer_id == customer_id
            )
        ).first()
        tier = None
        if account is not None:
            start = dt.datetime.combine(today, dt.time(0), tzinfo=dt.UTC)
            until = account.override_until
            if until is not None and until.tzinfo is None:
                until = until.replace(tzinfo=dt.UTC)
            overridden = account.tier_override is not None and (until is None or until > start)
            tier = account.tier_override if overridden else account.tier
        record = self._record(connection, customer_id, None, tier=tier, today=today)
        total, product, explain = self._apply(rules, record)
        return Earned(floor_points(_CONTEXT.multiply(total, product)), tuple(explain))

    def capped(self, earned: Earned, *, earned_today: int, earned_total: int) -> Earned:
        """``earned`` within per_day (given ``earned_today``) then per_customer (given ``earned_total``)."""
        points, explain = earned.points, list(earned.explain)
        limits = self.section.limits
        for name, limit, before in (
            ("per_day", limits.per_day, earned_today),
            ("per_customer", limits.per_customer, earned_total),
        ):
            if limit is None:
                continue
            allowed = min(points, max(0, limit - before))
            if allowed < points:
                explain.append({"limit": name, "cut": points - allowed})
                points = allowed
        return Earned(points, tuple(explain))

    def _per_transaction(self, points: int, explain: list[dict[str, Any]]) -> Earned:
        limit = self.section.limits.per_transaction
        if limit is not None and points > limit:
            explain.append({"limit": "per_transaction", "cut": points - limit})
            points = limit
        return Earned(points, tuple(explain))

    def _record(
        self,
        connection: Connection,
        customer_id: int,
        purchase: Mapping[str, Any] | None,
        *,
        tier: str | None,
        today: dt.date,
    ) -> DictRecord:
        values: dict[str, Any] = {"tier": tier}
        if purchase is not None:
            values.update({name: purchase.get(name) for name in PURCHASE_FIELDS})
            values["partner"] = None  # a partner purchase runs no rules
        segments: frozenset[str] | set[str] = frozenset()
        if self.reads_customer:
            customer = customer_record(
                connection, customer_id, self.fields, today, sorted(self._customer_fields)
            )
            values.update({CUSTOMER_PREFIX + name: value for name, value in customer.fields.items()})
            segments = set(customer.segments)
        return DictRecord(values, segments=segments, row_key=customer_id, today=today)

    @staticmethod
    def _apply(
        rules: Sequence[CompiledEarnRule], record: DictRecord
    ) -> tuple[Decimal, Decimal, list[dict[str, Any]]]:
        """(sum of points, product of multipliers, explain) of the rules that apply, in order."""
        total, product = Decimal(0), Decimal(1)
        explain: list[dict[str, Any]] = []
        for rule in rules:
            if not rule.when.matches(record):
                continue
            if rule.multiplier is not None:
                product = _CONTEXT.multiply(product, rule.multiplier)
                explain.append({"rule": rule.label, "multiplier": _text(rule.multiplier)})
            else:
                value = rule.points.evaluate(record) if isinstance(rule.points, Expression) else rule.points
                value = normalize(value, RuleType.NUMBER)
                if value is not None:
                    total = _CONTEXT.add(total, value)
                explain.append({"rule": rule.label, "points": None if value is None else _text(value)})
            if not rule.stack:
                explain[-1]["stack"] = False
                break
        return total, product, explain

    # --- SQL: every purchase of a chunk --------------------------------------------------------

    def purchase_sql(self, scope: PurchaseRuleScope) -> PointsSql:
        """The points of the purchase row of ``scope`` as SQL: the same decision as :meth:`for_purchase`.

        The caller selects from ``scope.from_clause()`` and keeps only
        purchases with a positive amount.
        """
        stops: list[ColumnElement[bool]] = []  # conditions of earlier rules with stack = false
        flags: list[ColumnElement[str]] = []
        total: ColumnElement[Any] = sa.literal(Decimal(0), Numeric())
        product: ColumnElement[Any] = sa.literal(Decimal(1), Numeric())
        for rule in self.purchase_rules:
            condition = rule.when.to_sql(scope)
            flags.append(sa.case(*[(stop, "0") for stop in stops], (condition, "1"), else_="0"))
            if rule.multiplier is not None:
                stopped = [(stop, 1) for stop in stops]
                factor = sa.case(*stopped, (condition, sa.literal(rule.multiplier, Numeric())), else_=1)
                product = product * factor
            else:
                given = (
                    rule.points.to_sql(scope)
                    if isinstance(rule.points, Expression)
                    else sa.literal(rule.points, Numeric())
                )
                stopped = [(stop, 0) for stop in stops]
                total = total + sa.case(*stopped, (condition, sa.func.coalesce(given, 0)), else_=0)
            if not rule.stack:
                stops.append(condition)
        tier = _decimal_case(scope.tier, self.tier_multipliers)
        value = total * product * tier
        partners = self.section.partners
        if partners:
            is_partner = PURCHASE.c.source.in_(list(partners))
            rate = _decimal_case(PURCHASE.c.source, {name: p.earn_rate for name, p in partners.items()})
            value = sa.case((is_partner, PURCHASE.c.amount * rate * tier), else_=value)
            flags = [sa.case((is_partner, "0"), else_=flag) for flag in flags]
        flag_text: ColumnElement[str] = sa.literal("", String())
        for flag in flags:
            flag_text = flag_text.concat(flag)
        return PointsSql(flags=flag_text, full=FloorPoints(value))

    def explain_sql(
        self,
        *,
        flags: ColumnElement[str],
        tier: ColumnElement[str],
        source: ColumnElement[str],
        cuts: Mapping[str, ColumnElement[int]],
    ) -> ColumnElement[str]:
        """A compact explain as JSON text: the rules that applied, tier, partner, limits that cut.

        Like :attr:`Earned.explain` without each rule's points: ``[{"rule": "earn[0]"},
        {"rule": "x2", "multiplier": "2"}, {"tier": "gold", ...}, {"limit": ..., "cut": 3}]``.
        """
        parts: list[ColumnElement[str]] = []
        for n, rule in enumerate(self.purchase_rules):
            item: dict[str, Any] = {"rule": rule.label}
            if rule.multiplier is not None:
                item["multiplier"] = _text(rule.multiplier)
            if not rule.stack:
                item["stack"] = False
            parts.append(sa.case((sa.func.substr(flags, n + 1, 1) == "1", "," + json.dumps(item)), else_=""))
        for name, partner in self.section.partners.items():
            item = {"partner": name, "earn_rate": _text(partner.earn_rate)}
            parts.append(sa.case((source == name, "," + json.dumps(item)), else_=""))
        for name, multiplier in self.tier_multipliers.items():
            item = {"tier": name, "multiplier": _text(multiplier)}
            parts.append(sa.case((tier == name, "," + json.dumps(item)), else_=""))
        for name, cut in cuts.items():
            text = (
                sa.literal(f',{{"limit": "{name}", "cut": ', String())
                .concat(sa.cast(cut, String()))
                .concat("}")
            )
            parts.append(sa.case((cut > 0, text), else_=""))
        joined: ColumnElement[str] = sa.literal("", String())
        for part in parts:
            joined = joined.concat(part)
        return sa.literal("[", String()).concat(sa.func.substr(joined, 2)).concat("]")


class PurchaseRuleScope:
    """``SqlBindings`` of purchase rules over ``joined``: ``purchase`` joined to the account that earns.

    ``tier`` is the account's tier as SQL (the caller decides overrides);
    ``customer.*`` fields go through :class:`~engine.rules.fields.CustomerScope`,
    whose joins :meth:`from_clause` adds when a rule reads them.
    """

    def __init__(
        self, fields: CustomerFields, today: dt.date, *, joined: FromClause, tier: ColumnElement[Any]
    ) -> None:
        self.today = today
        self.joined = joined
        self.tier = tier
        self.customer = CustomerScope(fields, today)
        self._reads_customer = False

    def field(self, name: str) -> ColumnElement[Any]:
        """The SQL of rule field ``name``."""
        if name in PURCHASE_FIELDS:
            return PURCHASE.c[PURCHASE_FIELDS[name][0]]
        if name == "partner":
            return sa.null()  # a partner purchase runs no rules
        if name == "tier":
            return self.tier
        if name.startswith(CUSTOMER_PREFIX):
            self._reads_customer = True
            return self.customer.field(name.removeprefix(CUSTOMER_PREFIX))
        raise KeyError(name)

    def in_segment(self, name: str) -> ColumnElement[bool]:
        """The purchase's customer is a current member of segment ``name``."""
        return sa.exists().where(
            MEMBERSHIP.c.segment == name,
            MEMBERSHIP.c.customer_id == PURCHASE.c.customer_id,
            MEMBERSHIP.c.left_at.is_(None),
        )

    def row_key(self) -> ColumnElement[int]:
        """The customer id (as the Python path's record)."""
        return PURCHASE.c.customer_id

    def from_clause(self) -> FromClause:
        """``joined``, plus the customer and its joins when a rule reads them (call after compiling)."""
        if not self._reads_customer:
            return self.joined
        customer = self.customer.from_clause()
        return self.joined.join(customer, self.customer.row_key() == PURCHASE.c.customer_id)


def compile_earn_rules(
    settings: Settings,
    programme: str,
    section: ProgrammeSection,
    fields: CustomerFields,
    errors: list[ConfigError],
) -> EarnRules:
    """The compiled ``earn`` rules of ``programme``; each bad rule goes to ``errors`` with file and line."""
    customer = fields.catalogue()
    customer_fields = {CUSTOMER_PREFIX + name: kind for name, kind in customer.fields.items()}
    event_catalogue = Catalogue({"tier": RuleType.STR, **customer_fields}, segments=customer.segments)
    purchase_catalogue = Catalogue(
        {
            **{name: kind for name, (_, kind) in PURCHASE_FIELDS.items()},
            "partner": RuleType.STR,
            "tier": RuleType.STR,
            **customer_fields,
        },
        segments=customer.segments,
    )
    rules = []
    for n, earn in enumerate(section.earn):
        base = f"loyalty.programmes.{programme}.earn[{n}]"
        catalogue = purchase_catalogue if earn.on == PURCHASE_EVENT else event_catalogue
        try:
            when = compile_rule(earn.when, catalogue)
        except RuleError as exc:
            errors.append(settings.rule_error(f"{base}.when", _event_error(exc, earn.on, purchase_catalogue)))
            continue
        points: Expression | Decimal | None = None
        if isinstance(earn.points, str):
            try:
                points = compile_expression(earn.points, catalogue, RuleType.NUMBER)
            except RuleError as exc:
                errors.append(
                    settings.rule_error(f"{base}.points", _event_error(exc, earn.on, purchase_catalogue))
                )
                continue
        elif earn.points is not None:
            points = Decimal(earn.points)
        label = earn.name or f"earn[{n}]"
        rules.append(
            CompiledEarnRule(n, label, earn.on, when, points, earn.multiplier, earn.priority, earn.stack)
        )
    return EarnRules(programme, section, fields, rules)


def _event_error(exc: RuleError, event: str, purchase_catalogue: Catalogue) -> RuleError:
    """An event rule naming a purchase field: say why it cannot, rather than just "unknown field"."""
    found = _UNKNOWN_FIELD.match(exc.message) if isinstance(exc, UnknownFieldError) else None
    if event == PURCHASE_EVENT or found is None or purchase_catalogue.type_of(found.group(1)) is None:
        return exc
    message = (
        f"'{found.group(1)}' is a purchase field: a rule on '{event}' is not about a purchase"
        " and sees only customer.*, tier and in_segment()"
    )
    return UnknownFieldError(message, line=exc.line, column=exc.column, text=exc.text)


def floor_points(value: Decimal) -> int:
    """``value`` rounded to 6 decimals (half away from zero), floored, never below 0."""
    rounded = value.quantize(STEP, context=_CONTEXT)
    return max(0, int(rounded.to_integral_value(rounding=decimal.ROUND_FLOOR)))


def _text(value: Decimal) -> str:
    """A decimal as JSON-ready text, never in exponent notation."""
    return format(value, "f")


def _decimal_case(column: ColumnElement[Any], values: Mapping[str, Decimal]) -> ColumnElement[Any]:
    """``CASE column WHEN name THEN value ... ELSE 1 END`` (1 when nothing matches)."""
    if not values:
        return sa.literal(Decimal(1), Numeric())
    whens = [(column == name, sa.literal(value, Numeric())) for name, value in values.items()]
    return sa.case(*whens, else_=sa.literal(Decimal(1), Numeric()))
