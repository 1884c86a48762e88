"""Settings: ``config.toml`` read through pydantic-settings, ``CRM_*`` variables override.

The pydantic models here are the truth about what config.toml may hold.
:func:`load_settings` reads the file, applies the environment
(``CRM_CONFIG``, ``CRM_DATABASE_URL``, ``CRM_TIMEZONE``, ``CRM_CURRENCY``) and
turns every validation error into a :class:`~engine.errors.ConfigError` that
names the file, the line and the TOML path. Rules inside the settings are
checked by :mod:`engine.config`, which builds on this module.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import tomllib
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from engine.errors import ConfigErrors, ConfigFileError, ConfigValueError, RuleError
from engine.settings.channels import ChannelsSection, ContactPolicySection
from engine.settings.durations import parse_duration
from engine.settings.evaluation import ApiSection, BouncesSection, EvaluationSection, ResponsesSection
from engine.settings.limits import MAX_SCORE_POINTS, Count, Days, ScorePoints
from engine.settings.loyalty import LoyaltySection
from engine.settings.strategy import Strategy
from engine.settings.toml_lines import find_line, format_path
from engine.settings.zones import time_zone

AttributeType = Literal["str", "int", "number", "bool", "date"]
Aggregate = Literal["count", "sum", "avg", "max", "min"]
ModelT = TypeVar("ModelT", bound=BaseModel)
#: where the database is when config.toml names none: crm.db beside config.toml
DEFAULT_DATABASE_URL = "sqlite:///crm.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSection(_Strict):
    """``[engine]``: where the data lives and the business defaults."""

    database_url: str = DEFAULT_DATABASE_URL
    timezone: str = "Europe/Moscow"
    currency: str = "RUB"
    default_region: str = Field("RU", description="region for phone numbers written without +country")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        time_zone(value)
        return value

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError(f"currency must be a three-letter ISO 4217 code, not {value!r}")
        return value.upper()

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r} (an ISO 3166 code such as RU, KZ, BY)")
        return value.upper()


class CustomersSection(_Strict):
    """``[customers]``: custom attributes and their types (``attr.NAME`` in rules)."""

    attributes: dict[str, AttributeType] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _identifiers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"attribute name {name!r} must be a plain identifier (letters, digits, _)")
        return value


class CustomMetric(_Strict):
    """``[metrics.custom.NAME]``: an aggregate over each customer's purchases.

    ``count`` counts purchases; the others aggregate ``field``. ``where`` is a
    rule over purchase fields; ``window_days`` limits to recent purchases.
    Refunds are left out unless ``include_refunds`` is true.
    """

    aggregate: Aggregate
    field: Literal["amount", "quantity", "margin"] | None = None
    where: str = "true"
    window_days: Annotated[Days, Field(ge=1)] | None = None
    include_refunds: bool = False
    description: str | None = None

    @model_validator(mode="after")
    def _field_needed(self) -> CustomMetric:
        if self.aggregate != "count" and self.field is None:
            raise ValueError(f"aggregate {self.aggregate!r} needs field = 'amount' | 'quantity' | 'margin'")
        return self


class MetricsSection(_Strict):
    """``[metrics]``: ABC thresholds, the lifecycle 'regular' rule, custom metrics."""

    abc: dict[Literal["A", "B"], Decimal] = Field(
        default_factory=lambda: {"A": Decimal("0.80"), "B": Decimal("0.95")},  # type: ignore[arg-type]
        description="cumulative revenue share where class A (and then B) ends",
    )
    regular_min_orders: Annotated[Count, Field(ge=1)] = 3
    regular_window_days: Annotated[Days, Field(ge=1)] = 365
    custom: dict[str, CustomMetric] = Field(default_factory=dict)

    @field_validator("abc")
    @classmethod
    def _abc_order(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        a, b = value.get("A", Decimal("0.80")), value.get("B", Decimal("0.95"))
        if not (0 < a < b <= 1):
            raise ValueError(f"need 0 < A < B <= 1 (shares of revenue), got A = {a}, B = {b}")
        return {"A": a, "B": b}


class ScoreRule(_Strict):
    """One indicator of a score: ``points`` when the rule ``when`` holds."""

    when: str
    points: ScorePoints


class ScoreSection(_Strict):
    """``[scores.NAME]``: the points of each indicator add up to the score (within ±1,000,000)."""

    rules: list[ScoreRule] = Field(min_length=1)
    description: str | None = None

    @field_validator("rules")
    @classmethod
    def _bounded(cls, value: list[ScoreRule]) -> list[ScoreRule]:
        for sign, side in ((1, "positive"), (-1, "negative")):
            total = sum(rule.points for rule in value if rule.points * sign > 0)
            if abs(total) > MAX_SCORE_POINTS:
                raise ValueError(
                    f"the {side} points of the rules add up to {total:,}: a score lies within "
                    f"-{MAX_SCORE_POINTS:,} .. {MAX_SCORE_POINTS:,}"
                )
        return value


class LinksSection(_Strict):
    """``[links]``: where tracking and unsubscribe links point, and the secret that signs them."""

    base_url: str = Field(
        "http://localhost:8000", description="the crm-engine HTTP API, as customers reach it"
    )
    shop_url: str = "https://shop.example"
    secret: str | None = Field(None, description="signs links; set it with CRM_LINKS__SECRET, not in git")


class SchedulerSection(_Strict):
    """``[scheduler]``: how often triggered campaigns look for news, when anniversaries run."""

    trigger_every: str = Field("5m", description="segment-entry and event campaigns poll this often")
    anniversary_at: dt.time = Field(
        dt.time(6, 0), description="anniversary campaigns run daily, business time"
    )

    @field_validator("trigger_every")
    @classmethod
    def _every(cls, value: str) -> str:
        if parse_duration(value) < dt.timedelta(minutes=1):
            raise ValueError(f"{value!r} is too often: at least 1m")
        return value

    @property
    def trigger_interval(self) -> dt.timedelta:
        """``trigger_every`` as a timedelta."""
        return parse_duration(self.trigger_every)


class SegmentSection(_Strict):
    """``[segments.NAME]``: a rule over customer fields, metrics, scores and other segments."""

    rule: str
    strategy: Strategy | None = None
    description: str | None = None


_CONFIG_FILE: ContextVar[Path] = ContextVar("crm_config_file", default=Path("config.toml"))
_CONFIG_DATA: ContextVar[dict[str, Any] | None] = ContextVar("crm_config_data", default=None)


class _ConfigFileSource(TomlConfigSettingsSource):
    """config.toml as :func:`read_toml` read it (a byte-order mark, CRLF line ends), SQLite beside it.

    A relative SQLite path is taken relative to the file's folder, and so is the
    default database (``crm.db``) when the file names none.
    """

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        self.config_file = _CONFIG_FILE.get()
        super().__init__(settings_cls, toml_file=self.config_file)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        given = _CONFIG_DATA.get()
        if given is not None:  # read once by load_settings: never parsed again by another reader
            return copy.deepcopy(given)
        data, _ = read_toml(Path(file_path))
        return data

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        engine = data.setdefault("engine", {})
        if isinstance(engine, dict):
            url = engine.get("database_url", DEFAULT_DATABASE_URL)
            if isinstance(url, str):
                engine["database_url"] = sqlite_beside(url, self.config_file.parent)
        return data


class _ShortEnvSource(PydanticBaseSettingsSource):
    """``CRM_DATABASE_URL``, ``CRM_TIMEZONE``, ``CRM_CURRENCY``: short names for ``[engine]`` keys."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        given = EnvOverrides().model_dump(exclude={"config"}, exclude_none=True)
        return {"engine": given} if given else {}


class Settings(BaseSettings):
    """The whole of config.toml, read through pydantic-settings.

    Sources, strongest first: ``CRM_DATABASE_URL`` / ``CRM_TIMEZONE`` /
    ``CRM_CURRENCY``; nested variables such as ``CRM_ENGINE__DEFAULT_REGION``;
    the TOML file.
    """

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="CRM_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )

    engine: EngineSection = Field(default_factory=EngineSection)
    customers: CustomersSection = Field(default_factory=CustomersSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    scores: dict[str, ScoreSection] = Field(default_factory=dict)
    segments: dict[str, SegmentSection] = Field(default_factory=dict)
    links: LinksSection = Field(default_factory=LinksSection)
    channels: ChannelsSection = Field(default_factory=ChannelsSection)
    contact_policy: ContactPolicySection = Field(default_factory=ContactPolicySection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)
    loyalty: LoyaltySection = Field(default_factory=LoyaltySection)
    responses: ResponsesSection = Field(default_factory=ResponsesSection)
    bounces: BouncesSection = Field(default_factory=BouncesSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    api: ApiSection = Field(default_factory=ApiSection)
    _path: Path = PrivateAttr(default=Path("config.toml"))
    _text: str = PrivateAttr(default="")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _ShortEnvSource(settings_cls), env_settings, _ConfigFileSource(settings_cls))

    @property
    def path(self) -> Path:
        """The config file these settings came from."""
        return self._path

    @property
    def text(self) -> str:
        """The text of that file, to locate errors by line."""
        return self._text

    @field_validator("scores", "segments")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.replace("-", "_").isidentifier():
                raise ValueError(f"name {name!r} must be letters, digits and _")
        return value

    def line_of(self, toml_path: str) -> int | None:
        """The line of ``toml_path`` in the file these settings came from."""
        return find_line(self.text, toml_path) if self.text else None

    def error(self, toml_path: str, reason: str) -> ConfigValueError:
        """A :class:`ConfigValueError` located at ``toml_path`` of this file."""
        return ConfigValueError(str(self.path), toml_path, reason, line=self.line_of(toml_path))

    def rule_error(self, toml_path: str, exc: RuleError) -> ConfigValueError:
        """A rule's error placed at its line in this file, with the rule and a caret under the column."""
        line = self.line_of(toml_path)
        if line is not None and exc.line is not None:
            key_line = self.text.splitlines()[line - 1]
            opens_block = key_line.rstrip().endswith(('"""', "'''"))
            line += exc.line - 1 + (1 if opens_block else 0)
        reason = exc.message + (f" (did you mean {exc.suggestion}?)" if exc.suggestion else "")
        if exc.text is not None and exc.line is not None:
            rule_line = exc.text.splitlines()[exc.line - 1] if exc.text.splitlines() else exc.text
            reason += f"\n    {rule_line}\n    {' ' * ((exc.column or 1) - 1)}^"
        return ConfigValueError(str(self.path), toml_path, reason, line=line)


class EnvOverrides(BaseSettings):
    """``CRM_*`` environment variables, which win over config.toml."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    config: Path = Path("config.toml")
    database_url: str | None = None
    timezone: str | None = None
    currency: str | None = None


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Read a TOML file; a missing, unreadable or malformed file raises :class:`ConfigFileError`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigFileError(str(path), "no such file (set CRM_CONFIG or pass --config)") from exc
    except OSError as exc:
        raise ConfigFileError(str(path), f"cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(str(path), "not UTF-8 text (TOML files are UTF-8)") from exc
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)$", str(exc))
        line = int(found.group(1)) if found else None
        message = str(exc)[: found.start()].strip() if found else str(exc)
        raise ConfigFileError(str(path), f"not valid TOML: {message}", line=line) from exc


def read_model(path: Path, model: type[ModelT]) -> tuple[ModelT, str]:
    """A TOML file validated by ``model``, and its text; every problem raised as :class:`ConfigErrors`."""
    try:
        data, text = read_toml(path)
    except ConfigFileError as exc:
        raise ConfigErrors([exc]) from exc
    try:
        return model.model_validate(data), text
    except ValidationError as exc:
        raise validation_errors(path, text, exc) from exc


def _location(loc: tuple[Any, ...]) -> str:
    return format_path([part for part in loc if isinstance(part, int | str)])


def validation_errors(path: Path, text: str, exc: ValidationError) -> ConfigErrors:
    """Turn a pydantic error into one located error per problem."""
    errors: list[ConfigValueError] = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part not in ("function-after", "function-before"))
        toml_path = _location(loc)
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            parent = loc[:-1]
            reason = f"unknown field {loc[-1]!r}" + (f" in {_location(parent)}" if parent else "")
        elif error["type"] == "missing":
            reason = "required field is missing"
        elif error["type"] == "literal_error":
            reason = f"{error['input']!r} is not allowed: {reason.removeprefix('Input should be ')}"
        line = find_line(text, toml_path) or find_line(text, _location(loc[:-1]))
        errors.append(ConfigValueError(str(path), toml_path, reason, line=line))
    return ConfigErrors(list(errors))


def sqlite_beside(url: str, folder: Path) -> str:
    """A relative SQLite path in config.toml is relative to the folder of config.toml."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((folder / url.removeprefix(prefix)).resolve())
    return url


def load_settings(path: Path | str | None = None) -> Settings:
    """Read config.toml (``path``, else ``CRM_CONFIG``, else ./config.toml) with ``CRM_*`` overrides."""
    config_path = Path(path) if path is not None else EnvOverrides().config
    data, text = read_toml(config_path)  # a missing or malformed file is reported with its line first
    token = _CONFIG_FILE.set(config_path)
    data_token = _CONFIG_DATA.set(data)
    try:
        settings = Settings()
    except ValidationError as exc:
        raise validation_errors(config_path, text, exc) from exc
    finally:
        _CONFIG_DATA.reset(data_token)
        _CONFIG_FILE.reset(token)
    settings._path = config_path
    settings._text = text
    return settings
