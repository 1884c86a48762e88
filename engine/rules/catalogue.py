"""The catalogue: the fields and segments a rule may name."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from types import MappingProxyType

from engine.rules.types import RuleType

_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name``, if any is close enough to suggest."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


class Catalogue:
    """The known fields (with their types) and segment names rules may refer to.

    Field names are identifiers, optionally dotted for namespaces
    (``attr.vip``, ``score.churn``)::

        Catalogue({"abc_class": RuleType.STR, "score.churn": RuleType.INT}, segments=["large"])
    """

    __slots__ = ("_fields", "_segments")

    def __init__(self, fields: Mapping[str, RuleType], segments: Collection[str] = ()) -> None:
        for name, type_ in fields.items():
            if not _FIELD_NAME.fullmatch(name) or "__" in name:
                raise ValueError(f"invalid field name {name!r}")
            if type_ is RuleType.NULL:
                raise ValueError(f"field {name!r} cannot have type null")
        self._fields: Mapping[str, RuleType] = MappingProxyType(dict(fields))
        self._segments: frozenset[str] = frozenset(segments)

    @property
    def fields(self) -> Mapping[str, RuleType]:
        """Field name to type (read only)."""
        return self._fields

    @property
    def segments(self) -> frozenset[str]:
        """Names of the segments ``in_segment('...')`` may name."""
        return self._segments

    def type_of(self, name: str) -> RuleType | None:
        """The type of field ``name``, or ``None`` when it is unknown."""
        return self._fields.get(name)

    def suggest(self, name: str) -> str | None:
        """The known field closest to an unknown ``name``, for "did you mean ...?"."""
        return closest(name, self._fields)

    def suggest_segment(self, name: str) -> str | None:
        """The known segment closest to an unknown ``name``."""
        return closest(name, self._segments)

    def __repr__(self) -> str:
        return f"Catalogue({len(self._fields)} fields, {len(self._segments)} segments)"
