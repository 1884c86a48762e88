"""The loyalty API for the POS and the web shop: ``/v1/loyalty/{programme}/...`` (scope ``loyalty``).

Each route calls the ledger function of the same name
(:mod:`engine.loyalty.ledger.earning`, :mod:`~engine.loyalty.ledger.redemption`,
:mod:`~engine.loyalty.ledger.refunds`, :mod:`~engine.loyalty.ledger.statement`), as
``crm loyalty`` does. The routes are coroutines that hand the ledger call (which
blocks on the database) to the thread pool in one hop; a plain ``def`` route
would cost FastAPI a second hop to check the answer. Commands take the ``Idempotency-Key`` header as the
ledger operation's key (:mod:`engine.api.idempotency`); a refused command
posts nothing and answers 4xx (:mod:`engine.api.errors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from engine.api.auth import require_scope
from engine.api.customer_ref import find_customer
from engine.api.errors import documented
from engine.api.fields import Instant
from engine.api.idempotency import OPENAPI, RESPONSES, idempotency_key, mark_replay
from engine.api.loyalty_models import (
    BalanceOut,
    EarnRequest,
    ReceiptOut,
    RedeemRequest,
    RefundRequest,
    StatementOut,
)
from engine.errors import ApiError, NotFoundError
from engine.loyalty.ledger import (
    Receipt,
    balance,
    capture,
    earn_event,
    earn_purchase,
    redeem,
    refund,
    statement,
    void,
)
from engine.loyalty.programme import Programme, programme_named

T = TypeVar("T")
READS = documented(401, 403, 404, 422, 503)
router = APIRouter(
    prefix="/v1/loyalty/{programme}", tags=["loyalty"], dependencies=[Depends(require_scope("loyalty"))]
)

ProgrammeName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=50,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the programme's name in config.toml",
        examples=["bonus"],
    ),
]
Key = Annotated[str, Depends(idempotency_key)]
HoldKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="the Idempotency-Key the hold was made with",
        examples=["H-1"],
    ),
]
CustomerPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=320,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="external id, email, phone (+7...) or #id",
        examples=["C-1001"],
    ),
]


def _command(
    path: str, summary: str
) -> Callable[[Callable[..., Awaitable[ReceiptOut]]], Callable[..., Awaitable[ReceiptOut]]]:
    """A route that changes the ledger: 201, or 200 for a replay; it takes the Idempotency-Key."""
    return router.post(
        path,
        status_code=201,
        response_model=ReceiptOut,
        responses=RESPONSES,
        openapi_extra=OPENAPI,
        summary=summary,
    )


def _context(request: Request, name: str) -> tuple[Engine, Programme]:
    engine: Engine = request.app.state.engine
    return engine, programme_named(request.app.state.config.programmes, name)


def _for_customer(engine: Engine, ref: str, call: Callable[[int | str], T]) -> T:
    """``call`` with the customer ``ref`` names: first as an external id, then as an email, phone or ``#id``.

    A till sends external ids: they reach the ledger without a lookup of their own.
    """
    try:
        return call(ref)
    except NotFoundError as exc:
        if exc.kind != "customer":
            raise
    found = find_customer(engine, ref)
    if found.ledger == ref:  # pragma: no cover - deleted in between
        raise NotFoundError("customer", ref)
    return call(found.ledger)


async def _blocking(call: Callable[[], T]) -> T:
    """``call()`` (ledger work that waits on the database) in the thread pool, off the event loop."""
    return await run_in_threadpool(call)


def _answer(response: Response, receipt: Receipt) -> ReceiptOut:
    mark_replay(response, receipt.replayed)
    return ReceiptOut.of(receipt)


@_command("/earn", "Points for a purchase or an event")
async def earn_route(
    programme: ProgrammeName, body: EarnRequest, key: Key, request: Request, response: Response
) -> ReceiptOut:
    """Points by the programme's earn rules for a purchase (``order``, ``amount``...) or an ``event``.

    For a purchase the ``Idempotency-Key`` must be the order id: the ledger keys
    a purchase by its order (``purchase:<order>``), so an order earns once,
    whether it comes from the till or from ``crm import purchases``.
    """
    engine, chosen = _context(request, programme)
    event, order, amount = body.event, body.order, body.amount
    if event is not None:
        receipt = await _blocking(
            lambda: _for_customer(
                engine, body.customer, lambda c: earn_event(engine, chosen, key=key, customer=c, event=event)
            )
        )
        return _answer(response, receipt)
    assert order is not None and amount is not None
    if key != order:
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"for a purchase the Idempotency-Key is the order id ({order!r}), got {key!r}",
        )
    receipt = await _blocking(
        lambda: _for_customer(
            engine,
            body.customer,
            lambda c: earn_purchase(
                engine,
                chosen,
                order=order,
                customer=c,
                amount=amount,
                ordered_at=body.occurred_at,
                category=body.category,
                sku=body.sku,
                quantity=body.quantity,
                source=body.source,
            ),
        )
    )
    return _answer(response, receipt)


@_command("/redeem", "Spend points, at once or as a hold")
async def redeem_route(
    programme: ProgrammeName, body: RedeemRequest, key: Key, request: Request, response: Response
) -> ReceiptOut:
    """Spend ``points`` or a ``reward``; with ``hold: true`` only reserve them (then capture or void).

    An account never goes below zero: a redemption it cannot afford answers 409
    ``insufficient_points`` and posts nothing.
    """
    engine, chosen = _context(request, programme)
    receipt = await _blocking(
        lambda: _for_customer(
            engine,
            body.customer,
            lambda c: redeem(
                engine,
                chosen,
                key=key,
                customer=c,
                points=body.points,
                reward=body.reward,
                order=body.order,
                order_amount=body.order_amount,
                partner=body.partner,
                hold=body.hold,
            ),
        )
    )
    return _answer(response, receipt)


@_command("/holds/{hold:path}/capture", "Spend the points of a hold")
async def capture_route(
    programme: ProgrammeName, hold: HoldKey, key: Key, request: Request, response: Response
) -> ReceiptOut:
    """Spend the points a hold reserved, before its timeout (409 ``hold_closed`` after it)."""
    engine, chosen = _context(request, programme)
    return _answer(response, await _blocking(lambda: capture(engine, chosen, key=key, hold_key=hold)))


@_command("/holds/{hold:path}/void", "Release the points of a hold")
async def void_route(
    programme: ProgrammeName, hold: HoldKey, key: Key, request: Request, response: Response
) -> ReceiptOut:
    """Give back the points a hold reserved."""
    engine, chosen = _context(request, programme)
    return _answer(response, await _blocking(lambda: void(engine, chosen, key=key, hold_key=hold)))


@_command("/refund", "Refund an order, fully or partly")
async def refund_route(
    programme: ProgrammeName, body: RefundRequest, key: Key, request: Request, response: Response
) -> ReceiptOut:
    """The order's earned points go back pro rata; points spent on it come back pro rata."""
    engine, chosen = _context(request, programme)
    receipt = await _blocking(lambda: refund(engine, chosen, key=key, order=body.order, amount=body.amount))
    return _answer(response, receipt)


@router.get(
    "/customers/{customer}/balance",
    response_model=BalanceOut,
    responses=READS,
    summary="A member's points",
)
async def balance_route(programme: ProgrammeName, customer: CustomerPath, request: Request) -> BalanceOut:
    """Available, pending, held and owed points, their value, tier, discount, lots by expiry, open holds."""
    engine, chosen = _context(request, programme)
    found = await _blocking(lambda: _for_customer(engine, customer, lambda c: balance(engine, chosen, c)))
    return BalanceOut.of(found)


@router.get(
    "/customers/{customer}/statement",
    response_model=StatementOut,
    responses=READS,
    summary="A member's entries",
)
async def statement_route(
    programme: ProgrammeName,
    customer: CustomerPath,
    request: Request,
    since: Annotated[Instant | None, Query(description="from this instant (with offset)")] = None,
    until: Annotated[Instant | None, Query(description="before this instant (with offset)")] = None,
) -> StatementOut:
    """Every entry of the member's account in ``[since, until)``, explained, with the running balance."""
    engine, chosen = _context(request, programme)
    found = await _blocking(
        lambda: _for_customer(
            engine, customer, lambda c: statement(engine, chosen, c, since=since, until=until)
        )
    )
    return StatementOut.of(found)
