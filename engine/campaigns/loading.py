"""Reading and checking every campaign file against the configuration.

Each ``campaigns/*.toml`` is validated by :class:`~engine.campaigns.definition.Campaign`
and then against what it names: the segment must exist, templates (those of
every language too) must exist in ``campaigns/templates/`` and compile in the sandbox, the cron schedule
must be valid and fire between start and end, ``only_if`` rules must
type-check. Every problem of every file is reported at once as
``campaigns/winback.toml:7 steps[1].channel: unknown channel 'e-mail' (known: ...)``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from engine.campaigns.definition import RESPONSE_CONDITIONS, Campaign, Localised, untranslated_variants
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


def campaign_names(config: Config) -> dict[str, str]:
    """Each campaign file's key and the name it gives (the key when it gives none), read leniently.

    For reading files people send back (a call list names its campaign by
    key and by name): a campaign file that does not pass ``crm validate``
    still names its campaign here.
    """
    import tomllib

    names: dict[str, str] = {}
    for path in sorted(campaigns_folder(config).glob("*.toml")):
        try:
            name = tomllib.loads(path.read_text(encoding="utf-8-sig")).get("name")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            name = None
        names[path.stem] = name if isinstance(name, str) and name.strip() else path.stem
    return names


def _error(path: Path, text: str, toml_path: str, reason: str) -> ConfigValueError:
    return ConfigValueError(
        str(path), toml_path, reason, line=find_line(text, toml_path) if toml_path else None
    )


_SYNTAX = SandboxedEnvironment(autoescape=True)


def template_problem(templates: Path, name: str) -> str | None:
    """Why template ``name`` cannot be used, or None: a UTF-8 file inside ``templates`` that parses.

    A name is relative to ``templates`` and stays in it: ``../config.toml``
    and absolute paths are refused (the renderer would refuse them at every send).
    """
    candidate = Path(name)
    if candidate.is_absolute() or ".." in candidate.parts or "\\" in name:
        return f"{name!r} is not a file of {templates}: a template is named relative to that folder"
    source = templates / candidate
    try:
        if not source.resolve().is_relative_to(templates.resolve()):
            return f"{name!r} is not a file of {templates}: a template is named relative to that folder"
        body = source.read_bytes()
    except IsADirectoryError:
        return f"{name!r} is a folder of {templates}, not a template file"
    except FileNotFoundError:
        return f"no file {name!r} in {templates}"
    except OSError as exc:
        return f"cannot read {source}: {exc.strerror or exc}"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{name} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
    try:
        _SYNTAX.parse(text)
    except TemplateSyntaxError as exc:
        return f"{name}:{exc.lineno}: {exc.message}"
    return None


def subject_problem(subject: str) -> str | None:
    """Why ``subject`` cannot be an email's subject, or None: one line, a valid template."""
    if "\n" in subject or "\r" in subject:
        return "a subject is one line: it holds a line break (a header cannot)"
    try:
        _SYNTAX.parse(subject)
    except TemplateSyntaxError as exc:
        return f"not a valid template: {exc.message}"
    return None


def _check_languages(
    path: Path, text: str, where: str, languages: Mapping[str, Localised], templates: Path
) -> list[ConfigError]:
    """Every template and subject given for a language, checked as the default ones are."""
    errors: list[ConfigError] = []
    for tag, entry in languages.items():
        for kind in ("template", "script", "letter"):
            name = getattr(entry, kind)
            if name is not None:
                reason = template_problem(templates, name)
                if reason is not None:
                    errors.append(_error(path, text, f"{where}.languages.{tag}.{kind}", reason))
        if entry.subject is not None:
            reason = subject_problem(entry.subject)
            if reason is not None:
                errors.append(_error(path, text, f"{where}.languages.{tag}.subject", reason))
    return errors


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
    for n, step in enumerate(campaign.steps):
        for kind in ("template", "script", "letter"):
            name = getattr(step, kind)
            if name is not None:
                reason = template_problem(templates, name)
                if reason is not None:
                    errors.append(_error(path, text, f"steps[{n}].{kind}", reason))
        if step.subject is not None:
            reason = subject_problem(step.subject)
            if reason is not None:
                errors.append(_error(path, text, f"steps[{n}].subject", reason))
        errors += _check_languages(path, text, f"steps[{n}]", step.languages, templates)
    # a variant's content replaces its steps' email template and subject: checked the same way
    for n, variant in enumerate(campaign.variants):
        if variant.template is not None:
            reason = template_problem(templates, variant.template)
            if reason is not None:
                errors.append(_error(path, text, f"variants[{n}].template", reason))
        if variant.subject is not None:
            reason = subject_problem(variant.subject)
            if reason is not None:
                errors.append(_error(path, text, f"variants[{n}].subject", reason))
        errors += _check_languages(path, text, f"variants[{n}]", variant.languages, templates)
    for n, kind, reason in untranslated_variants(campaign):
        errors.append(_error(path, text, f"variants[{n}].{kind}", reason))
    for n, step in enumerate(campaign.steps):
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
