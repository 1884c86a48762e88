"""``[responses]``, ``[bounces]``, ``[evaluation]`` and ``[api]`` of config.toml.

What the engine needs to read responses (call centre codes per centre,
the satisfaction scale), to act on bounces (when soft bounces suppress an
address), to attribute purchases to contacts and to judge campaigns and the
programme (attribution model, significance, churn period, lifecycle funnel
targets), and to serve the HTTP API.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.settings.limits import MAX_COUNT, Count, Days

#: what a call, a reply or a survey can come back as (``contact_response.kind``)
CALL_OUTCOMES: tuple[str, ...] = (
    "reached",
    "no_answer",
    "callback",
    "interested",
    "purchased",
    "refused",
    "wrong_number",
)
#: the lifecycle funnel, in order: each stage's target is the share of the previous one reaching it
FUNNEL_STAGES: tuple[str, ...] = ("identified", "client", "regular", "partner")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallCentreSection(_Strict):
    """``[responses.call_centres.NAME]``: how one call centre writes its outcomes.

    ``codes`` maps the centre's own codes to outcomes, e.g.
    ``{ "01" = "reached", "NA" = "no_answer", "WN" = "wrong_number" }``; the
    outcome names themselves are always understood.
    """

    codes: dict[str, str] = Field(default_factory=dict)

    @field_validator("codes")
    @classmethod
    def _known_outcomes(cls, value: dict[str, str]) -> dict[str, str]:
        for code, outcome in value.items():
            if outcome not in CALL_OUTCOMES:
                raise ValueError(
                    f"code {code!r}: unknown outcome {outcome!r} (known: {', '.join(CALL_OUTCOMES)})"
                )
        return value


class ResponsesSection(_Strict):
    """``[responses]``: reading call outcomes, replies and survey scores."""

    satisfaction_scale: int = Field(5, ge=2, le=100, description="survey scores run from 1 to this")
    call_centres: dict[str, CallCentreSection] = Field(default_factory=dict)


class BouncesSection(_Strict):
    """``[bounces]``: when bounced addresses go on the suppression list."""

    hard_threshold: Annotated[Count, Field(ge=1)] = Field(
        1, description="hard bounces that suppress an address"
    )
    soft_threshold: Annotated[Count, Field(ge=1)] = Field(
        3, description="soft bounces within soft_window_days that suppress"
    )
    soft_window_days: int = Field(30, ge=1, le=365)


class EvaluationSection(_Strict):
    """``[evaluation]``: attribution, significance, churn and the lifecycle funnel targets."""

    attribution: Literal["last_touch", "first_touch"] = Field(
        "last_touch", description="which contact a purchase inside several goal windows counts for"
    )
    confidence: Decimal = Field(Decimal("0.95"), gt=Decimal("0.5"), lt=1)
    churn_days: Annotated[Days, Field(ge=7)] = Field(
        180, description="a customer without a purchase this long has churned"
    )
    period: Literal["month", "quarter", "year"] = "month"
    wallet_attribute: str | None = Field(
        None,
        description="custom attribute holding what the customer spends on our categories per year "
        "(share of wallet = revenue / this)",
    )
    funnel_targets: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "identified": Decimal("0.80"),
            "client": Decimal("0.60"),
            "regular": Decimal("0.30"),
            "partner": Decimal("0.05"),
        },
        description="target share of the previous stage reaching each stage",
    )

    @field_validator("funnel_targets")
    @classmethod
    def _stages(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for stage, share in value.items():
            if stage not in FUNNEL_STAGES:
                raise ValueError(f"unknown funnel stage {stage!r} (known: {', '.join(FUNNEL_STAGES)})")
            if not 0 <= share <= 1:
                raise ValueError(f"{stage}: a target is a share between 0 and 1, got {share}")
        return value


class ApiSection(_Strict):
    """``[api]``: the HTTP API (``crm serve``)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(
        65_536, ge=1024, le=MAX_COUNT, description="larger request bodies are refused (413)"
    )
