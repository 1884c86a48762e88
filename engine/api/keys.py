"""API keys of the shop's systems: create (shown once), list, revoke, and check a presented key.

A key reads ``crm_<prefix>_<secret>``. The database keeps the prefix (to find
the key without scanning) and the SHA-256 of the whole key; the secret itself
is never stored, so ``crm api-keys create`` prints it once and only once. A
presented key is found by its prefix and its hash compared in constant time.
Each key has scopes (``loyalty``, ``events``: :data:`~engine.models.api_key.API_SCOPES`)
and stays in the table when revoked, so its name cannot be reused by mistake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from engine.clock import utcnow
from engine.errors import ConfigValueError, NotFoundError
from engine.models import API_KEY, API_SCOPES

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_KEY = re.compile(r"^crm_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
TOUCH_EVERY = dt.timedelta(seconds=60)  # last_used_at is written at most once a minute per key
_DUMMY_HASH = hashlib.sha256(b"crm-engine: no such key").hexdigest()


@dataclass(frozen=True)
class ApiKeyInfo:
    """A key as stored (never its secret)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        """True unless the key was revoked."""
        return self.revoked_at is None


@dataclass(frozen=True)
class NewApiKey:
    """A key just created: ``key`` is the secret to hand to the client system, shown this once."""

    info: ApiKeyInfo
    key: str


def hash_key(key: str) -> str:
    """The SHA-256 (hex) a key is stored as."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _info(row: Any) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=int(row.id),
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(s for s in row.scopes.split(",") if s),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = set(scopes)
    if not chosen:
        raise ConfigValueError("api key", "scopes", f"give at least one scope ({', '.join(API_SCOPES)})")
    for scope in chosen:
        if scope not in API_SCOPES:
            raise NotFoundError("API scope", scope, list(API_SCOPES))
    return tuple(s for s in API_SCOPES if s in chosen)


def create_api_key(
    engine: Engine, name: str, scopes: Iterable[str], *, now: dt.datetime | None = None
) -> NewApiKey:
    """Create the key ``name`` with ``scopes``; the returned secret is not stored anywhere."""
    if not _NAME.match(name):
        raise ConfigValueError(
            "api key", "name", f"{name!r} is not a key name (1 to 100 of A-Z a-z 0-9 _ . -, e.g. pos-moscow)"
        )
    chosen = _scopes(scopes)
    now = now or utcnow()
    prefix = secrets.token_hex(6)
    key = f"crm_{prefix}_{secrets.token_urlsafe(32)}"
    values = {
        "name": name,
        "prefix": prefix,
        "key_hash": hash_key(key),
        "scopes": ",".join(chosen),
        "created_at": now,
    }
    try:
        with engine.begin() as connection:
            new_id = connection.execute(insert(API_KEY).values(**values).returning(API_KEY.c.id)).scalar_one()
    except IntegrityError as exc:
        raise ConfigValueError(
            "api key", "name", f"a key named {name!r} exists already (revoked keys keep their names)"
        ) from exc
    info = ApiKeyInfo(int(new_id), name, prefix, chosen, now, None, None)
    return NewApiKey(info, key)


def list_api_keys(engine: Engine) -> list[ApiKeyInfo]:
    """Every key, active and revoked, by name."""
    with engine.connect() as connection:
        rows = connection.execute(select(API_KEY).order_by(API_KEY.c.name)).all()
    return [_info(row) for row in rows]


def revoke_api_key(engine: Engine, name: str, *, now: dt.datetime | None = None) -> ApiKeyInfo:
    """Revoke the key ``name`` (from now on refused); revoking a revoked key changes nothing."""
    now = now or utcnow()
    with engine.begin() as connection:
        connection.execute(
            update(API_KEY)
            .where(API_KEY.c.name == name, API_KEY.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        row = connection.execute(select(API_KEY).where(API_KEY.c.name == name)).first()
        if row is None:
            known = connection.execute(select(API_KEY.c.name)).scalars().all()
            raise NotFoundError("API key", name, list(known))
    return _info(row)


def find_api_key(engine: Engine, presented: str, *, now: dt.datetime | None = None) -> ApiKeyInfo | None:
    """The key ``presented`` is (revoked or not), or None when it is no key of ours.

    The hash is compared in constant time (also when the prefix is unknown).
    An active key's ``last_used_at`` is brought up to date when older than
    :data:`TOUCH_EVERY`, so a busy key costs one read per request and one
    write a minute.
    """
    match = _KEY.match(presented)
    # one read, no transaction around it: one round trip rather than BEGIN, SELECT and ROLLBACK
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = (
            connection.execute(select(API_KEY).where(API_KEY.c.prefix == match.group(1))).first()
            if match
            else None
        )
    stored = row.key_hash if row is not None else _DUMMY_HASH
    if not hmac.compare_digest(hash_key(presented), stored) or row is None:
        return None
    info = _info(row)
    now = now or utcnow()
    if info.active and (info.last_used_at is None or info.last_used_at < now - TOUCH_EVERY):
        with engine.begin() as connection:
            connection.execute(
                update(API_KEY)
                .where(
                    API_KEY.c.id == info.id,
                    or_(API_KEY.c.last_used_at.is_(None), API_KEY.c.last_used_at < now - TOUCH_EVERY),
                )
                .values(last_used_at=now)
            )
    return info


__all__ = [
    "ApiKeyInfo",
    "NewApiKey",
    "create_api_key",
    "find_api_key",
    "hash_key",
    "list_api_keys",
    "revoke_api_key",
]
