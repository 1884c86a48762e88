"""What-if: ``crm budget --set PATH=VALUE`` recomputes the budget with changed settings, files untouched.

Paths name what finance and marketers adjust:

* ``channels.call.unit_cost=55`` (any field of ``[channels.NAME]``);
* ``campaigns.winback.contacts_per_client=2`` (every step of the campaign),
  ``campaigns.winback.steps[1].contacts_per_client=2`` (one step), or any
  field of a campaign file: ``campaigns.winback.control_group=0.2``;
* ``budget.approved=1200000``, ``budget.allocations.strategy.loyalty=800000``
  (the budget file of the period).

Values are read as TOML (``55``, ``0.2``, ``"0 10 * * MON"``, ``2027-01-01``);
anything that is not valid TOML is taken as a string. Each change is checked
by the same models as the files, so a what-if cannot produce a plan the files
could not.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.budget.budget_files import BudgetDefinition, BudgetFile, Budgets
from engine.campaigns import Campaign, CampaignFile
from engine.config import Config
from engine.errors import ConfigValueError, NotFoundError
from engine.reporting import Period
from engine.settings import ChannelsSection

_PART = re.compile(r"([A-Za-z0-9_-]+)(?:\[(\d+)\])?")


@dataclass(frozen=True)
class WhatIf:
    """The settings with every ``--set`` applied."""

    config: Config
    campaigns: dict[str, CampaignFile]
    budgets: Budgets
    applied: list[str]


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _path(text: str, where: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in text.split("."):
        found = _PART.fullmatch(piece)
        if not found:
            raise ConfigValueError("--set", where, f"{piece!r} is not a field name")
        parts.append(found.group(1))
        if found.group(2) is not None:
            parts.append(int(found.group(2)))
    return parts


def _assign(data: Any, path: list[str | int], value: Any, where: str) -> None:
    for n, part in enumerate(path[:-1]):
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                raise ConfigValueError("--set", where, f"there is no item [{part}]")
            data = data[part]
        else:
            if not isinstance(data, dict):
                raise ConfigValueError("--set", where, f"{path[n - 1]} has no fields")
            data = data.setdefault(part, {})
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(data, list) or last >= len(data):
            raise ConfigValueError("--set", where, f"there is no item [{last}]")
        data[last] = value
    else:
        data[last] = value


def _changed(model: BaseModel, path: list[str | int], value: Any, where: str) -> Any:
    data = model.model_dump(by_alias=True, exclude_unset=False)
    _assign(data, path, value, where)
    try:
        return type(model).model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        reason = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            reason = f"unknown field {problem['loc'][-1]!r}"
        raise ConfigValueError("--set", where, reason) from exc


def _split(assignment: str) -> tuple[str, Any]:
    if "=" not in assignment:
        raise ConfigValueError("--set", assignment, "write PATH=VALUE, e.g. channels.call.unit_cost=55")
    path, _, text = assignment.partition("=")
    return path.strip(), _value(text.strip())


def apply_overrides(
    config: Config,
    campaigns: dict[str, CampaignFile],
    budgets: Budgets,
    assignments: Sequence[str],
    *,
    period: Period | None = None,
) -> WhatIf:
    """``config``, ``campaigns`` and ``budgets`` with each ``PATH=VALUE`` of ``assignments`` applied."""
    campaigns = dict(campaigns)
    files = list(budgets.files)
    applied: list[str] = []
    for assignment in assignments:
        where, value = _split(assignment)
        path = _path(where, where)
        root = path[0]
        if root == "channels" and len(path) >= 3:
            channels = _changed(config.settings.channels, path[1:], value, where)
            assert isinstance(channels, ChannelsSection)
            settings = config.settings.model_copy(update={"channels": channels})
            config = dataclasses.replace(config, settings=settings)
        elif root == "campaigns" and len(path) >= 3:
            key = str(path[1])
            if key not in campaigns:
                raise NotFoundError("campaign", key, list(campaigns))
            found = campaigns[key]
            rest = path[2:]
            if rest == ["contacts_per_client"]:
                campaign = found.campaign
                for k in range(len(campaign.steps)):
                    campaign = _changed(campaign, ["steps", k, "contacts_per_client"], value, where)
            else:
                campaign = _changed(found.campaign, rest, value, where)
            assert isinstance(campaign, Campaign)
            campaigns[key] = dataclasses.replace(found, campaign=campaign)
        elif root == "budget" and len(path) >= 2:
            target = next((b for b in files if period is not None and b.period == period), None)
            if target is None:
                label = period.label if period else "the period"
                raise ConfigValueError("--set", where, f"there is no budget file for {label} to change")
            definition = _changed(target.definition, path[1:], value, where)
            assert isinstance(definition, BudgetDefinition)
            changed = BudgetFile(target.key, target.path, Period.parse(definition.period), definition)
            files = [changed if b is target else b for b in files]
        else:
            raise ConfigValueError(
                "--set",
                where,
                "only channels.NAME.FIELD, campaigns.KEY.FIELD and budget.FIELD can be set",
            )
        applied.append(f"{where}={assignment.partition('=')[2].strip()}")
    return WhatIf(config, campaigns, Budgets(files), applied)
