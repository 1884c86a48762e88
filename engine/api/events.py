"""``POST /v1/events`` (scope ``events``): custom events about customers, for ``on_event`` campaigns.

The event is recorded by :func:`engine.customers.events.record_event` with
the API key's name as its source and the ``Idempotency-Key`` as its key: a
retry answers 200 with the stored event, the same key for another event 409.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from engine.api.auth import require_scope
from engine.api.customer_ref import find_customer
from engine.api.fields import CustomerRef, EventName, Instant, JsonObject
from engine.api.idempotency import OPENAPI, RESPONSES, idempotency_key, mark_replay
from engine.api.keys import ApiKeyInfo
from engine.customers import record_event

router = APIRouter(prefix="/v1", tags=["events"])


class EventRequest(BaseModel):
    """An event about a customer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer": "C-1001",
                    "name": "cart_abandoned",
                    "occurred_at": "2027-03-01T12:30:00+03:00",
                    "data": {"cart_value": "1990.00", "items": 2},
                }
            ]
        },
    )

    customer: CustomerRef
    name: EventName
    occurred_at: Instant | None = Field(None, description="when it happened (default: when received)")
    data: JsonObject = Field(default_factory=dict, description="anything the templates may use")


class EventOut(BaseModel):
    """The event as recorded."""

    id: int
    customer: str = Field(examples=["C-1001"])
    name: str = Field(examples=["cart_abandoned"])
    occurred_at: dt.datetime
    source: str = Field(description="the API key's name", examples=["web-shop"])
    key: str = Field(examples=["cart-8812"])
    replayed: bool = Field(description="true when the key had been used: nothing changed")


@router.post(
    "/events",
    status_code=201,
    response_model=EventOut,
    responses=RESPONSES,
    openapi_extra=OPENAPI,
    summary="Record an event campaigns can trigger on",
)
def event_route(
    client: Annotated[ApiKeyInfo, Depends(require_scope("events"))],
    key: Annotated[str, Depends(idempotency_key)],
    body: EventRequest,
    request: Request,
    response: Response,
) -> EventOut:
    """Record event ``name`` for ``customer``: a campaign with ``on_event = "<name>"`` picks it up."""
    engine: Engine = request.app.state.engine
    customer = find_customer(engine, body.customer)
    data: dict[str, Any] = body.data
    recorded = record_event(
        engine, customer.id, body.name, occurred_at=body.occurred_at, data=data, source=client.name, key=key
    )
    mark_replay(response, not recorded.created)
    return EventOut(
        id=recorded.id,
        customer=customer.label,
        name=recorded.name,
        occurred_at=recorded.occurred_at,
        source=client.name,
        key=key,
        replayed=not recorded.created,
    )
