"""The checked configuration: settings plus every rule in it compiled and type-checked.

:func:`load_config` is what every command calls: it reads config.toml
(:mod:`engine.settings`), compiles each rule against the catalogue of fields
it may name, orders segments so that a segment is refreshed after the
segments it references, and refuses cycles. All problems are collected and
reported together, each with file, line and TOML path; a bad config changes
nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.errors import (
    ConfigError,
    ConfigErrors,
    ConfigValueError,
    RuleError,
    SegmentCycleError,
    UnknownFieldError,
)
from engine.loyalty.programme import Programme, compile_programmes
from engine.rules import (
    CUSTOMER_FIELDS,
    METRIC_FIELDS,
    Catalogue,
    CustomerFields,
    Rule,
    compile_rule,
    purchase_catalogue,
)
from engine.settings import Settings, load_settings


@dataclass(frozen=True)
class ScoreIndicator:
    """One compiled indicator of a score."""

    rule: Rule
    points: int


@dataclass(frozen=True)
class Config:
    """Settings with their rules compiled; segments in dependency order."""

    settings: Settings
    fields: CustomerFields
    segments: Mapping[str, Rule]
    segment_order: tuple[str, ...]
    scores: Mapping[str, tuple[ScoreIndicator, ...]]
    metric_filters: Mapping[str, Rule]
    programmes: Mapping[str, Programme]

    @property
    def path(self) -> Path:
        """The config file these came from."""
        return self.settings.path

    @property
    def database_url(self) -> str:
        """The database URL (``CRM_DATABASE_URL`` wins over the file)."""
        return self.settings.engine.database_url

    def fingerprint(self) -> str:
        """A short hash of the config text, kept with what was computed from it."""
        return hashlib.sha256(self.settings.text.encode()).hexdigest()[:12]


def _compile(
    settings: Settings,
    toml_path: str,
    text: str,
    catalogue: Catalogue,
    errors: list[ConfigError],
    *,
    refuse: dict[str, str] | None = None,
) -> Rule | None:
    """Compile one rule; ``refuse`` maps a name prefix to the reason it is not available here."""
    try:
        return compile_rule(text, catalogue)
    except RuleError as exc:
        for prefix, reason in (refuse or {}).items():
            if isinstance(exc, UnknownFieldError) and prefix in exc.message:
                exc = UnknownFieldError(reason, line=exc.line, column=exc.column, text=exc.text)
                break
        errors.append(settings.rule_error(toml_path, exc))
        return None


def segment_order(segments: Mapping[str, Rule]) -> tuple[str, ...]:
    """Segments so that each comes after those it references; a cycle raises :class:`SegmentCycleError`."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            start = path.index(name)
            raise SegmentCycleError([*path[start:], name])
        state[name] = "visiting"
        for used in sorted(segments[name].segments):
            if used in segments:
                visit(used, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in segments:
        visit(name, [])
    return tuple(order)


def check_settings(settings: Settings) -> Config:
    """Compile and check every rule of ``settings``; raise :class:`ConfigErrors` listing all problems."""
    errors: list[ConfigError] = []
    built_in = set(CUSTOMER_FIELDS) | set(METRIC_FIELDS)
    for name in settings.metrics.custom:
        if name in built_in:
            errors.append(settings.error(f"metrics.custom.{name}", f"{name!r} is a built-in field already"))
    fields = CustomerFields(
        custom_metrics={name: metric.aggregate for name, metric in settings.metrics.custom.items()},
        scores=tuple(settings.scores),
        attributes=dict(settings.customers.attributes),
        segments=tuple(settings.segments),
    )
    purchases = purchase_catalogue()
    metric_filters: dict[str, Rule] = {}
    for name, metric in settings.metrics.custom.items():
        rule = _compile(
            settings,
            f"metrics.custom.{name}.where",
            metric.where,
            purchases,
            errors,
            refuse={"unknown segment": "a metric's filter is about one purchase: it cannot use segments"},
        )
        if rule is not None:
            metric_filters[name] = rule

    score_catalogue = fields.catalogue(with_scores=False, with_segments=False)
    scores: dict[str, tuple[ScoreIndicator, ...]] = {}
    for name, score in settings.scores.items():
        indicators = []
        for n, indicator in enumerate(score.rules):
            rule = _compile(
                settings,
                f"scores.{name}.rules[{n}].when",
                indicator.when,
                score_catalogue,
                errors,
                refuse={
                    "'score.": "scores are computed from metrics before segments: they cannot use scores",
                    "unknown segment": "scores are computed before segments: they cannot use segments",
                },
            )
            if rule is not None:
                indicators.append(ScoreIndicator(rule, indicator.points))
        scores[name] = tuple(indicators)

    segment_catalogue = fields.catalogue()
    segments: dict[str, Rule] = {}
    for name, segment in settings.segments.items():
        rule = _compile(settings, f"segments.{name}.rule", segment.rule, segment_catalogue, errors)
        if rule is not None:
            segments[name] = rule
    order: tuple[str, ...] = ()
    try:
        order = segment_order(segments)
    except SegmentCycleError as exc:
        first = exc.cycle[0]
        errors.append(
            ConfigValueError(
                str(settings.path),
                f"segments.{first}.rule",
                str(exc),
                line=settings.line_of(f"segments.{first}.rule"),
            )
        )
    dkim = settings.channels.email.dkim
    if dkim is not None:
        try:
            dkim.read_key(settings.path.parent)
        except ValueError as exc:  # a key that cannot sign is found now, never at the first send
            field = "private_key" if dkim.private_key is not None else "key_file"
            errors.append(settings.error(f"channels.email.dkim.{field}", str(exc)))
    version = hashlib.sha256(settings.text.encode()).hexdigest()[:12]
    programmes = compile_programmes(settings, fields, version, errors)
    if errors:
        raise ConfigErrors(errors)
    return Config(
        settings=settings,
        fields=fields,
        segments=segments,
        segment_order=order,
        scores=scores,
        metric_filters=metric_filters,
        programmes=programmes,
    )


def load_config(path: Path | str | None = None) -> Config:
    """Read and check config.toml (``path``, else ``CRM_CONFIG``, else ./config.toml)."""
    return check_settings(load_settings(path))
