"""``budgets/*.toml``: the approved budget of a period and how it is allocated.

```toml
period = "2027-Q1"                 # 2027-03 | 2027-Q1 | 2027 | { start = ..., end = ... }
approved = 1500000                 # money, the approved total
approved_by = "M. Ivanova, CFO"
approved_at = 2026-12-15
fingerprint = "3f2a9c01b7d4"       # optional: the report the approval was given on

[allocations.strategy]             # optional: loyalty | stimulation | cost_reduction
loyalty = 900000

[allocations.campaign]             # optional: campaign file names
winback = 300000
```

Checked, all problems at once with file and line: the period parses, no two
files' periods share a day, strategy allocations add up to at most the
approved total, campaign allocations name known campaigns and add up to at
most their strategy's allocation (and the total), and every price entry of
``[channels.*]`` names a known segment or campaign.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.campaigns import CampaignFile, load_campaigns
from engine.channels import named_in_prices
from engine.config import Config
from engine.errors import ConfigError, ConfigErrors, ConfigValueError
from engine.reporting import Period
from engine.settings import Day, Strategy, Total, check_date, find_line, read_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Allocations(_Strict):
    """``[allocations]``: parts of the approved total by strategy and by campaign."""

    strategy: dict[Strategy, Total] = Field(default_factory=dict)
    campaign: dict[str, Total] = Field(default_factory=dict)

    @field_validator("strategy", "campaign")
    @classmethod
    def _not_negative(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for name, amount in value.items():
            if amount < 0:
                raise ValueError(f"{name}: an allocation cannot be negative ({amount})")
        return value


class BudgetDefinition(_Strict):
    """One budget file."""

    period: str | dict[str, dt.date]
    approved: Total = Field(description="the approved total, money")
    approved_by: str | None = None
    approved_at: Day | None = None
    fingerprint: str | None = Field(None, description="fingerprint of the report the approval was given on")
    note: str | None = None
    allocations: Allocations = Field(default_factory=Allocations)

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | dict[str, dt.date]) -> str | dict[str, dt.date]:
        period = Period.parse(value)
        check_date(period.start, what="its first day")
        check_date(period.end, what="its last day")
        return value


@dataclass(frozen=True)
class BudgetFile:
    """A checked budget file."""

    key: str  # the file's stem
    path: Path
    period: Period
    definition: BudgetDefinition

    @property
    def approved(self) -> Decimal:
        """The approved total."""
        return self.definition.approved

    def allocation(self, *, strategy: str | None = None, campaign: str | None = None) -> Decimal | None:
        """The allocation of a strategy or campaign, None when the file gives none."""
        allocations = self.definition.allocations
        if campaign is not None:
            return allocations.campaign.get(campaign)
        if strategy is not None:
            return allocations.strategy.get(strategy)  # type: ignore[call-overload]
        return None


@dataclass(frozen=True)
class Budgets:
    """Every budget file of ``budgets/``, periods never overlapping."""

    files: list[BudgetFile] = field(default_factory=list)

    def for_day(self, day: dt.date) -> BudgetFile | None:
        """The budget whose period contains business day ``day``."""
        return next((b for b in self.files if b.period.contains(day)), None)

    def for_period(self, period: Period) -> BudgetFile | None:
        """The budget of exactly ``period``, else the one that contains its first day."""
        exact = next((b for b in self.files if b.period == period), None)
        return exact or self.for_day(period.start)

    def labels(self) -> list[str]:
        """The periods that have a budget."""
        return [b.period.label for b in self.files]


def budgets_folder(config: Config) -> Path:
    """``budgets/`` beside config.toml."""
    return config.path.parent / "budgets"


def _error(path: Path, text: str, toml_path: str, reason: str) -> ConfigValueError:
    return ConfigValueError(str(path), toml_path, reason, line=find_line(text, toml_path))


def _check_allocations(
    path: Path, text: str, budget: BudgetDefinition, campaigns: dict[str, CampaignFile] | None
) -> list[ConfigError]:
    errors: list[ConfigError] = []
    allocations = budget.allocations
    by_strategy = sum(allocations.strategy.values(), Decimal(0))
    if by_strategy > budget.approved:
        errors.append(
            _error(
                path,
                text,
                "allocations.strategy",
                f"strategy allocations add up to {by_strategy}, more than approved {budget.approved}",
            )
        )
    by_campaign = sum(allocations.campaign.values(), Decimal(0))
    if by_campaign > budget.approved:
        errors.append(
            _error(
                path,
                text,
                "allocations.campaign",
                f"campaign allocations add up to {by_campaign}, more than approved {budget.approved}",
            )
        )
    if campaigns is None:
        return errors
    per_strategy: dict[str, Decimal] = defaultdict(Decimal)
    for key, amount in allocations.campaign.items():
        if key not in campaigns:
            close = difflib.get_close_matches(key, list(campaigns), n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(campaigns))})"
            where = f"allocations.campaign.{key}"
            errors.append(_error(path, text, where, f"unknown campaign {key!r}{hint}"))
            continue
        per_strategy[campaigns[key].campaign.strategy] += amount
    for strategy, amount in sorted(per_strategy.items()):
        limit = allocations.strategy.get(strategy)  # type: ignore[call-overload]
        if limit is not None and amount > limit:
            errors.append(
                _error(
                    path,
                    text,
                    f"allocations.strategy.{strategy}",
                    f"campaigns of strategy {strategy} are allocated {amount}, "
                    f"more than the strategy's {limit}",
                )
            )
    return errors


def check_prices(config: Config, campaigns: dict[str, CampaignFile] | None) -> list[ConfigError]:
    """Price entries of ``[channels.*]`` that name an unknown segment or campaign."""
    errors: list[ConfigError] = []
    for channel, n, price in named_in_prices(config.settings.channels):
        where = f"channels.{channel}.prices[{n}]"
        if price.segment is not None and price.segment not in config.segments:
            errors.append(config.settings.error(f"{where}.segment", f"unknown segment {price.segment!r}"))
        if price.campaign is not None and campaigns is not None and price.campaign not in campaigns:
            errors.append(config.settings.error(f"{where}.campaign", f"unknown campaign {price.campaign!r}"))
    return errors


def load_budgets(
    config: Config, campaigns: dict[str, CampaignFile] | None = None, folder: Path | None = None
) -> Budgets:
    """Every budget file in ``folder`` (default budgets/ beside config.toml), checked; all errors at once.

    The campaign allocations and the campaign prices are checked against ``campaigns`` (default:
    the campaigns folder), so validate, plan, run and the scheduler refuse the same files.
    """
    campaigns = campaigns if campaigns is not None else load_campaigns(config)
    folder = folder or budgets_folder(config)
    errors: list[ConfigError] = check_prices(config, campaigns)
    loaded: list[tuple[BudgetFile, str]] = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            definition, text = read_model(path, BudgetDefinition)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        problems = _check_allocations(path, text, definition, campaigns)
        period = Period.parse(definition.period)
        for other, _ in loaded:
            if other.period.overlaps(period):
                problems.append(
                    _error(
                        path,
                        text,
                        "period",
                        f"{period.label} ({period.start}..{period.end}) overlaps {other.period.label} "
                        f"of {other.path.name}: a day belongs to one budget",
                    )
                )
        if problems:
            errors.extend(problems)
            continue
        loaded.append((BudgetFile(path.stem, path, period, definition), text))
    if errors:
        raise ConfigErrors(errors)
    return Budgets(sorted((b for b, _ in loaded), key=lambda b: b.period.start))


def budget_data(budget: BudgetFile) -> dict[str, Any]:
    """The approved side of a budget as plain JSON-ready values."""
    definition = budget.definition
    return {
        "file": budget.path.name,
        "period": budget.period.label,
        "total": str(definition.approved),
        "by_strategy": {k: str(v) for k, v in sorted(definition.allocations.strategy.items())},
        "by_campaign": {k: str(v) for k, v in sorted(definition.allocations.campaign.items())},
        "approved_by": definition.approved_by,
        "approved_at": definition.approved_at.isoformat() if definition.approved_at else None,
        "fingerprint": definition.fingerprint,
    }
