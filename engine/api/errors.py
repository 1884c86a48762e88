"""How the API answers errors: JSON ``{"error": <code>, "detail": <sentence>}``, never a 5xx for bad input.

Engine errors are mapped where they leave the engine:

============================== ====== ==========================
error                          status ``error``
============================== ====== ==========================
InsufficientPointsError        409    ``insufficient_points``
IdempotencyConflictError       409    ``idempotency_conflict``
HoldClosedError                409    ``hold_closed``
NotFoundError                  404    ``not_found``
other LoyaltyError             422    ``refused``
ConfigError (a bad value)      422    ``invalid_value``
InvalidValueError (limits)     422    ``invalid_value``
DatabaseError                  503    ``database_unavailable``
SQLAlchemy OperationalError    503    ``database_unavailable``
request validation             422    ``invalid_request``
a body that is no JSON         422    ``invalid_request``
============================== ====== ==========================

Every malformed body answers 422, whatever the parser stumbled on: FastAPI
answers a body its JSON parser refuses with 422, but one it cannot decode
(bytes that are no UTF-8, nesting deeper than the parser goes) with 400;
:func:`_http_error` turns those into the same 422.

A refused ledger command or event posts nothing (the engine's guarantee);
the handlers only translate.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import (
    ApiError,
    ConfigError,
    DatabaseError,
    EngineError,
    HoldClosedError,
    IdempotencyConflictError,
    InsufficientPointsError,
    InvalidValueError,
    LoyaltyError,
    NotFoundError,
)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


_MEANINGS = {
    400: "`Idempotency-Key` missing or malformed",
    401: "API key missing, unknown or revoked",
    403: "the API key lacks the scope",
    404: "unknown programme, customer, member, hold, order, reward or partner",
    409: "insufficient points, a key used for another request, or a closed hold",
    413: "request body larger than [api].max_body_bytes",
    422: "malformed JSON, wrong types, naive times, unknown fields; or refused by the ledger",
    503: "the database cannot be reached",
}


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str = Field(description="a stable code", examples=["insufficient_points"])
    detail: str = Field(
        description="what went wrong, in a sentence",
        examples=["programme 'bonus', customer C-1001: 500 points asked, 120 available"],
    )
    errors: list[dict[str, Any]] | None = Field(None, description="one per invalid field (422 only)")


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the :class:`ErrorBody` schema."""
    return {status: {"model": ErrorBody, "description": _MEANINGS[status]} for status in statuses}


def error_body(code: str, detail: Any, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"error": code, "detail": detail, **extra}


def _engine_status(exc: EngineError) -> tuple[int, str]:
    if isinstance(exc, InsufficientPointsError):
        return 409, "insufficient_points"
    if isinstance(exc, IdempotencyConflictError):
        return 409, "idempotency_conflict"
    if isinstance(exc, HoldClosedError):
        return 409, "hold_closed"
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    if isinstance(exc, LoyaltyError):
        return 422, "refused"
    if isinstance(exc, DatabaseError):
        return 503, "database_unavailable"
    if isinstance(exc, ConfigError | InvalidValueError):
        return 422, "invalid_value"
    return 422, "refused"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(exc.code, exc.detail), status_code=exc.status, headers=exc.headers)


async def _engine_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EngineError)
    status, code = _engine_status(exc)
    return JSONResponse(error_body(code, str(exc)), status_code=status)


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = f"the database cannot serve this request now: {reason[0] if reason else 'unknown reason'}"
    return JSONResponse(error_body("database_unavailable", detail), status_code=503)


def _where(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location) or "request"


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]
    sentence = "; ".join(f"{_where(tuple(e['loc']))}: {e['msg']}" for e in errors) or "invalid request"
    return JSONResponse(error_body("invalid_request", sentence, errors=errors), status_code=422)


def _unparsable_body(exc: StarletteHTTPException) -> bool:
    """FastAPI's 400 for a body its JSON parser could not even decode (the cause is kept as ``__cause__``)."""
    return exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if _unparsable_body(exc):
        cause = exc.__cause__
        reason = (
            "not valid UTF-8"
            if isinstance(cause, UnicodeError)
            else "nested too deeply"
            if isinstance(cause, RecursionError)
            else "unreadable"
        )
        error = {"loc": ["body"], "msg": f"JSON decode error: {reason}", "type": "json_invalid"}
        detail = f"body: JSON decode error: {reason}"
        return JSONResponse(error_body("invalid_request", detail, errors=[error]), status_code=422)
    code = _STATUS_CODES.get(exc.status_code, "error")
    return JSONResponse(
        error_body(code, exc.detail), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_error)


__all__ = ["ApiError", "ErrorBody", "documented", "error_body", "install_error_handlers"]
