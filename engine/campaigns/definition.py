"""What a campaign file (``campaigns/*.toml``) may hold: the pydantic models are the truth.

A campaign targets one segment with one strategy, fires on one trigger
(a cron schedule, a one-off time, segment entry, an anniversary of a date
field, or a custom event), keeps a control group, may split its audience
into weighted variants, and contacts customers through ordered steps.
:func:`campaign_json_schema` exports the models as JSON Schema for editors.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.settings import Count, Day, Factor, Moment, Money, Priority, Strategy, Total, parse_duration

#: the kinds of channel a step may use
CHANNELS: tuple[str, ...] = ("call", "email", "meeting", "post", "sms")
#: ``only_if`` shorthands besides any rule
RESPONSE_CONDITIONS: tuple[str, ...] = ("not responded", "opened", "clicked", "not converted")
GOAL_METRICS: tuple[str, ...] = ("response", "conversion", "revenue", "retention")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Goal(_Strict):
    """What evaluation measures the campaign by, and over how many days after a contact."""

    metric: Literal["response", "conversion", "revenue", "retention"] = "conversion"
    window_days: int = Field(30, ge=1, le=365)


#: a language tag as customers carry it: ``ru``, ``en``, ``pt-BR``
LANGUAGE_TAG = r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$"


class Localised(_Strict):
    """A step's (or variant's) content for customers of one language; what it leaves out stays the default."""

    template: str | None = None
    subject: str | None = None
    script: str | None = None
    letter: str | None = None


def _language_tags(value: dict[str, Localised]) -> dict[str, Localised]:
    for tag in value:
        if not re.fullmatch(LANGUAGE_TAG, tag):
            raise ValueError(
                f"{tag!r} is not a language tag: write it as customers carry it, e.g. ru, en, pt-BR"
            )
    return value


def language_candidates(language: str | None) -> tuple[str, ...]:
    """The tags to look for, most specific first: ``ru-RU`` -> ``("ru-ru", "ru")``; none for no language."""
    if not language:
        return ()
    tag = language.strip().replace("_", "-").lower()
    parts = tag.split("-")
    return tuple("-".join(parts[:n]) for n in range(len(parts), 0, -1))


def localised(languages: dict[str, Localised], language: str | None) -> Localised | None:
    """The entry of ``languages`` for a customer of ``language`` (``ru-RU`` takes ``ru``), or None."""
    by_tag = {tag.lower(): entry for tag, entry in languages.items()}
    for tag in language_candidates(language):
        if tag in by_tag:
            return by_tag[tag]
    return None


class Variant(_Strict):
    """One arm of an A/B/n test; steps may use ``{{ variant }}`` or per-variant content."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    weight: Annotated[Factor, Field(gt=0)] = Decimal(1)
    subject: str | None = None
    template: str | None = None
    languages: dict[str, Localised] = Field(
        default_factory=dict, description="the variant's template and subject per customer language"
    )

    _tags = field_validator("languages")(_language_tags)


class Anniversary(_Strict):
    """Fire on the yearly return of a customer date field, ``offset_days`` before (negative) or after."""

    field: Literal["birth_date", "created_at", "first_order_at", "verified_at"]
    offset_days: int = Field(0, ge=-60, le=60)


class Step(_Strict):
    """One contact of the campaign: a channel, its content and when it happens."""

    channel: str
    template: str | None = None
    subject: str | None = None
    script: str | None = None
    letter: str | None = None
    contacts_per_client: Annotated[Factor, Field(gt=0)] = Decimal(1)
    wait: str | None = None
    only_if: str | None = None
    languages: dict[str, Localised] = Field(
        default_factory=dict,
        description="content per customer language, "
        "e.g. [steps.languages.ru] template = 'winback.ru.html.j2'; "
        "customers of other languages (or none) get template, subject, script or letter",
    )

    _tags = field_validator("languages")(_language_tags)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r} (known: {', '.join(CHANNELS)})")
        return value

    @field_validator("wait")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _content(self) -> Step:
        needed = {"email": "template", "call": "script", "post": "letter", "sms": "template"}.get(
            self.channel
        )
        if needed and getattr(self, needed) is None:
            raise ValueError(f"a {self.channel} step needs {needed} = '...'")
        return self

    @property
    def wait_delta(self) -> dt.timedelta:
        """The wait after the previous step."""
        return parse_duration(self.wait) if self.wait else dt.timedelta(0)


class Campaign(_Strict):
    """One campaign file."""

    name: str = Field(min_length=1)
    public_name: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="what customers see (unsubscribe page, List-Id, campaign.public_name); default: name",
    )
    segment: str
    strategy: Strategy
    priority: Priority = 0
    start: Day
    end: Day | None = None
    schedule: str | None = Field(None, description="cron in the business time zone, e.g. '0 10 * * MON'")
    at: Moment | None = Field(None, description="one-off run at this time (business time zone if none given)")
    on_segment_entry: bool = False
    anniversary: Anniversary | None = None
    on_event: str | None = Field(None, pattern=r"^[a-z0-9_.-]+$")
    control_group: Decimal = Field(Decimal(0), ge=0, lt=1)
    preparation_cost: Money = Decimal(0)
    budget: Total | None = Field(
        None, description="the campaign's budget line: it never spends more, preparation included"
    )
    rank_by: str | None = Field(
        None,
        description="who comes first when the budget or the call centre's capacity runs out "
        "(a numeric expression, default total_spent)",
    )
    expected_audience: Count | None = None
    max_lateness: str = "1h"
    send_at_local: dt.time | None = None
    goal: Goal = Field(default_factory=Goal)
    context: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="values the templates may use, e.g. { offer_until = '31 March' }"
    )
    variants: list[Variant] = Field(default_factory=list)
    test_share: Decimal | None = Field(
        None,
        description="A/B/n: the share of the reachable, non-control audience the variants are tested on; "
        "the rest is held for the winner (crm run KEY --winner)",
    )
    steps: list[Step] = Field(min_length=1)

    @field_validator("max_lateness")
    @classmethod
    def _lateness(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("test_share")
    @classmethod
    def _test_share(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not 0 < value < 1:
            raise ValueError(
                f"test_share {value} must lie between 0 and 1 (exclusive): the share of the audience "
                "the variants are tested on, e.g. 0.2; the rest waits for the winner"
            )
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Campaign:
        triggers = [
            name
            for name, given in (
                ("schedule", self.schedule is not None),
                ("at", self.at is not None),
                ("on_segment_entry", self.on_segment_entry),
                ("anniversary", self.anniversary is not None),
                ("on_event", self.on_event is not None),
            )
            if given
        ]
        if len(triggers) != 1:
            found = ", ".join(triggers) if triggers else "none"
            raise ValueError(
                "a campaign needs exactly one trigger: schedule, at, on_segment_entry, anniversary "
                f"or on_event (found: {found})"
            )
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.steps[0].wait is not None:
            raise ValueError("the first step cannot wait: there is no step before it")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names repeat: {', '.join(names)}")
        if self.test_share is not None and len(self.variants) < 2:
            raise ValueError(
                f"test_share needs at least two [[variants]] to test (found {len(self.variants)}): "
                "add variants or remove test_share"
            )
        return self

    @property
    def shown_name(self) -> str:
        """The name customers see: ``public_name``, else ``name``."""
        return self.public_name or self.name

    @property
    def trigger(self) -> str:
        """Which trigger fires this campaign."""
        if self.schedule is not None:
            return "schedule"
        if self.at is not None:
            return "at"
        if self.on_segment_entry:
            return "on_segment_entry"
        if self.anniversary is not None:
            return "anniversary"
        return "on_event"


def untranslated_variants(campaign: Campaign) -> list[tuple[int, str, str]]:
    """``(variant index, kind, message)`` for each variant content a language of the steps would miss.

    A variant that replaces the template or subject replaces it for every
    language, so it must give it for each language the steps have; else a
    customer of that language would get the variant's default-language text.
    """
    found = []
    for n, variant in enumerate(campaign.variants):
        for kind in ("template", "subject"):
            if getattr(variant, kind) is None:
                continue
            needed = sorted(
                {
                    tag
                    for step in campaign.steps
                    for tag, entry in step.languages.items()
                    if getattr(entry, kind) is not None
                    and (tag not in variant.languages or getattr(variant.languages[tag], kind) is None)
                }
            )
            if needed:
                found.append(
                    (
                        n,
                        kind,
                        f"variant {variant.name} sets {kind} but not for the steps' languages "
                        f"{', '.join(needed)}: add [variants.languages.{needed[0]}] {kind} = '...'",
                    )
                )
    return found


def step_content(campaign: Campaign, step: Step, variant: str | None, language: str | None) -> Localised:
    """What ``step`` sends to a customer of ``language`` in ``variant``: template, subject, script, letter.

    For the template and the subject, the first given of: the variant's entry
    for the language, the variant's own, the step's entry for the language,
    the step's own. Scripts and letters: the step's entry for the language,
    else the step's own. A language matches its tag or its first part
    (``ru-RU`` takes ``ru``); a customer without a language, or of a language
    the campaign has no entry for, gets the default.
    """
    chosen = next((v for v in campaign.variants if v.name == variant), None)
    own = localised(step.languages, language)
    theirs = localised(chosen.languages, language) if chosen is not None else None

    def pick(kind: str) -> str | None:
        sources: list[Any] = [theirs, chosen] if kind in ("template", "subject") else []
        for source in [*sources, own, step]:
            value = getattr(source, kind, None) if source is not None else None
            if value is not None:
                return str(value)
        return None

    return Localised(
        template=pick("template"), subject=pick("subject"), script=pick("script"), letter=pick("letter")
    )


def campaign_json_schema() -> dict[str, Any]:
    """The JSON Schema of a campaign file, for editors (``crm schema``)."""
    schema = Campaign.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "crm-engine campaign"
    return schema
