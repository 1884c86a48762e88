"""Reading and checking every campaign file against the configuration.

Each ``campaigns/*.toml`` is validated by :class:`~engine.campaigns.definition.Campaign`
and then against what it names: the segment must exist, templates must exist
in ``campaigns/templates/`` and compile in the sandbox, the cron schedule
must be valid and fire between start and end, ``only_if`` rules must
type-check. Every problem of every file is reported at once as
``campaigns/winback.toml:7 steps[1].channel: unknown channel 'e-mail' (known: ...)``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from engine.campaigns.definition import RESPONSE_CONDITIONS, Campaign
from engine.campaigns.schedules import BusinessCronTrigger
from engine.config import Config
from engine.errors import ConfigError, ConfigErrors, ConfigValueError, RuleError
from engine.rules import RuleType, compile_expression, compile_rule
from engine.settings import find_line, read_model


@dataclass(frozen=True)
class CampaignFile:
    """A checked campaign and where it came from."""

    key: str  # the file's stem: how commands name the campaign
    path: Path
    campaign: Campaign


def campaigns_folder(config: Config) -> Path:
    """``campaigns/`` beside config.toml."""
    return config.path.parent / "campaigns"


def _error(path: Path, text: str, toml_path: str, reason: str) -> ConfigValueError:
    return ConfigValueError(
        str(path), toml_path, reason, line=find_line(text, toml_path) if toml_path else None
    )


def _check_against_config(
    path: Path, text: str, campaign: Campaign, config: Config, templates: Path
) -> list[ConfigError]:
    errors: list[ConfigError] = []
    if campaign.segment not in config.segments:
        close = difflib.get_close_matches(campaign.segment, list(config.segments), n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(config.segments))})"
        errors.append(_error(path, text, "segment", f"unknown segment {campaign.segment!r}{hint}"))
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    if campaign.schedule is not None:
        try:
            trigger = BusinessCronTrigger.from_crontab(campaign.schedule, timezone=zone)
        except ValueError as exc:
            errors.append(_error(path, text, "schedule", f"not a cron expression: {exc}"))
        else:
            start = dt.datetime.combine(campaign.start, dt.time(), zone)
            first = trigger.get_next_fire_time(None, start)
            last = dt.datetime.combine(campaign.end, dt.time.max, zone) if campaign.end else None
            if first is None or (last is not None and first > last):
                errors.append(
                    _error(path, text, "schedule", f"{campaign.schedule!r} never fires between start and end")
                )
    environment = SandboxedEnvironment(autoescape=True)
    for n, step in enumerate(campaign.steps):
        for kind in ("template", "script", "letter"):
            name = getattr(step, kind)
            if name is None:
                continue
            where = f"steps[{n}].{kind}"
            source = templates / name
            if not source.is_file():
                errors.append(_error(path, text, where, f"no file {name!r} in {templates}"))
                continue
            try:
                environment.parse(source.read_text(encoding="utf-8"))
            except TemplateSyntaxError as exc:
                errors.append(_error(path, text, where, f"{name}:{exc.lineno}: {exc.message}"))
        if step.subject is not None:
            try:
                environment.parse(step.subject)
            except TemplateSyntaxError as exc:
                errors.append(
                    _error(path, text, f"steps[{n}].subject", f"not a valid template: {exc.message}")
                )
        if step.only_if is not None and step.only_if not in RESPONSE_CONDITIONS:
            try:
                compile_rule(step.only_if, config.fields.catalogue())
            except RuleError as exc:
                errors.append(_error(path, text, f"steps[{n}].only_if", str(exc)))
    if campaign.rank_by is not None:
        try:
            compile_expression(campaign.rank_by, config.fields.catalogue(), RuleType.NUMBER)
        except RuleError as exc:
            errors.append(_error(path, text, "rank_by", str(exc)))
    return errors


def load_campaigns(config: Config, folder: Path | None = None) -> dict[str, CampaignFile]:
    """Every campaign in ``folder`` (default: campaigns/ beside config.toml), checked; all errors at once."""
    folder = folder or campaigns_folder(config)
    templates = folder / "templates"
    loaded: dict[str, CampaignFile] = {}
    errors: list[ConfigError] = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            campaign, text = read_model(path, Campaign)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        problems = _check_against_config(path, text, campaign, config, templates)
        if problems:
            errors.extend(problems)
            continue
        loaded[path.stem] = CampaignFile(path.stem, path, campaign)
    if errors:
        raise ConfigErrors(errors)
    return loaded
