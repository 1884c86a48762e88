"""The rule language: safe Python-like expressions over customer fields.

A rule is parsed once (a strict whitelist over Python's expression syntax),
type-checked against a :class:`Catalogue`, then either compiled to a
SQLAlchemy Core condition (segments over the whole base run in the database)
or evaluated on one record in Python; both follow SQL's three-valued logic
and give the same answers::

    catalogue = Catalogue({"abc_class": RuleType.STR, "days_since_last_order": RuleType.INT})
    rule = compile_rule("abc_class == 'A' and 90 <= days_since_last_order <= 180", catalogue)
    rule.to_sql(bindings)      # a WHERE clause
    rule.matches(record)       # the same decision for one record

The language (a strict subset of Python expressions):

* literals: ``42``, ``0.05`` (exact decimal), ``'text'``, ``True``/``true``,
  ``False``/``false``, ``None`` (only in ``x is None`` / ``x is not None``);
* fields from the catalogue, dotted for namespaces: ``attr.vip``, ``score.churn``;
* ``== != < <= > >=`` (chainable: ``90 <= x <= 180``), ``and or not``,
  ``x in [1, 2]`` / ``x not in ('a', 'b')`` (literal lists only), ``+ - * /``
  (``/`` is true division; by zero gives NULL), ``+`` joins strings;
* functions: ``lower upper len startswith endswith contains abs min max today
  date days_since in_segment bucket`` (see :mod:`~engine.rules.functions`);
  ``x.startswith('A')``, ``x.endswith(..)``, ``x.lower()``, ``x.upper()``.

Semantics shared by both back ends: NULL is unknown and propagates through
comparisons, arithmetic and functions; ``and``/``or``/``not`` are Kleene; a
rule matches only when it is exactly True. Strings compare by code point and
are case-sensitive; ``lower``/``upper`` change ASCII letters only. A date
compared with a datetime is midnight UTC; ``days_since`` counts whole days
from the UTC date of its argument to ``today``.

Pipeline: :mod:`~engine.rules.parser` -> :mod:`~engine.rules.nodes` ->
:mod:`~engine.rules.checker` -> :mod:`~engine.rules.to_sql` |
:mod:`~engine.rules.evaluate`.
"""

from __future__ import annotations

from engine.rules.bindings import DictRecord, Record, SqlBindings
from engine.rules.catalogue import Catalogue
from engine.rules.evaluate import normalize
from engine.rules.fields import (
    CUSTOMER_FIELDS,
    METRIC_FIELDS,
    PURCHASE_FIELDS,
    CustomerFields,
    CustomerScope,
    PurchaseScope,
    attribute_expression,
    customer_record,
    purchase_catalogue,
)
from engine.rules.rule import Expression, Rule, compile_expression, compile_rule
from engine.rules.to_sql import bucket_expression
from engine.rules.types import RuleType

__all__ = [
    "CUSTOMER_FIELDS",
    "METRIC_FIELDS",
    "PURCHASE_FIELDS",
    "Catalogue",
    "CustomerFields",
    "CustomerScope",
    "DictRecord",
    "Expression",
    "PurchaseScope",
    "Record",
    "Rule",
    "RuleType",
    "SqlBindings",
    "attribute_expression",
    "bucket_expression",
    "compile_expression",
    "compile_rule",
    "customer_record",
    "normalize",
    "purchase_catalogue",
]
