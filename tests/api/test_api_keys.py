"""API keys: shown once, stored as a hash, scoped, revocable; `crm api-keys`; both headers over HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from sqlalchemy import select

from engine.api.keys import TOUCH_EVERY, create_api_key, find_api_key, list_api_keys, revoke_api_key
from engine.cli import main as crm_main
from engine.errors import ConfigValueError, NotFoundError
from engine.models.tables import API_KEY
from tests.api.api_setup import start_api
from tests.factories import utc


def test_a_key_is_stored_as_its_hash_and_found_by_it(db) -> None:  # type: ignore[no-untyped-def]
    created = create_api_key(db, "pos-moscow", ["events", "loyalty", "loyalty"], now=utc(2027, 1, 1))
    assert created.info.scopes == ("loyalty", "events")
    assert created.key.startswith(f"crm_{created.info.prefix}_")
    with db.connect() as connection:
        row = connection.execute(select(API_KEY)).one()
    assert row.key_hash == hashlib.sha256(created.key.encode()).hexdigest()
    assert created.key not in json.dumps([str(v) for v in row])  # the secret is nowhere in the row

    found = find_api_key(db, created.key, now=utc(2027, 1, 2))
    assert found is not None and found.name == "pos-moscow" and found.last_used_at is None
    # the prefix alone, another secret with the right prefix, or nonsense: no key
    assert find_api_key(db, created.key[:-1] + ("A" if created.key[-1] != "A" else "B")) is None
    assert find_api_key(db, f"crm_{created.info.prefix}_") is None
    assert find_api_key(db, "") is None and find_api_key(db, "Bearer x") is None

    # last_used_at is written at most once a minute
    assert list_api_keys(db)[0].last_used_at == utc(2027, 1, 2)
    find_api_key(db, created.key, now=utc(2027, 1, 2) + TOUCH_EVERY / 2)
    assert list_api_keys(db)[0].last_used_at == utc(2027, 1, 2)
    find_api_key(db, created.key, now=utc(2027, 1, 2) + TOUCH_EVERY * 2)
    assert list_api_keys(db)[0].last_used_at == utc(2027, 1, 2) + TOUCH_EVERY * 2

    revoked = revoke_api_key(db, "pos-moscow", now=utc(2027, 2, 1))
    assert revoked.revoked_at == utc(2027, 2, 1) and not revoked.active
    assert revoke_api_key(db, "pos-moscow").revoked_at == utc(2027, 2, 1)  # again: unchanged
    again = find_api_key(db, created.key, now=utc(2027, 3, 1))
    assert again is not None and not again.active
    assert again.last_used_at == utc(2027, 1, 2) + TOUCH_EVERY * 2  # a revoked key is not touched

    with pytest.raises(ConfigValueError, match="exists already"):
        create_api_key(db, "pos-moscow", ["loyalty"])
    with pytest.raises(NotFoundError, match=r"unknown API scope 'admin' \(known: events, loyalty\)"):
        create_api_key(db, "x", ["admin"])
    with pytest.raises(ConfigValueError, match="at least one scope"):
        create_api_key(db, "x", [])
    with pytest.raises(ConfigValueError, match="not a key name"):
        create_api_key(db, "pos moscow", ["loyalty"])
    with pytest.raises(NotFoundError, match="unknown API key 'nope'"):
        revoke_api_key(db, "nope")
    assert [k.name for k in list_api_keys(db)] == ["pos-moscow"]


def test_cli_creates_prints_once_lists_and_revokes(db, write_config, capsys) -> None:  # type: ignore[no-untyped-def]
    write_config()  # CRM_CONFIG and CRM_DATABASE_URL point at the test database

    def crm(*args: str) -> tuple[int, str, str]:
        code = crm_main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = crm("api-keys", "create", "web-shop", "--scope", "loyalty", "--scope", "events")
    assert code == 0
    key = next(word for word in out.split() if word.startswith("crm_"))
    found = find_api_key(db, key)
    assert found is not None and found.scopes == ("loyalty", "events")

    code, listed, _ = crm("api-keys", "list")
    assert code == 0 and "API keys: 1" in listed
    code, as_json, _ = crm("api-keys", "list", "--json")
    assert key not in listed and key not in as_json
    shown = json.loads(as_json)[0]
    assert (shown["name"], shown["scopes"], shown["revoked_at"]) == ("web-shop", ["loyalty", "events"], None)

    code, _, err = crm("api-keys", "create", "web-shop", "--scope", "loyalty")
    assert code == 1 and "exists already" in err

    code, out, _ = crm("api-keys", "revoke", "web-shop")
    assert code == 0 and "revoked" in out
    found = find_api_key(db, key)
    assert found is not None and not found.active
    assert crm("api-keys", "revoke", "nope")[0] == 1


def test_both_headers_carry_a_key_and_scopes_are_enforced(db, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    import httpx

    api = start_api(db, write_config, serve_app)
    path = f"{api.base}/v1/loyalty/shop/customers/C1/statement"
    for headers in (
        {"Authorization": f"Bearer {api.keys['loyalty']}"},
        {"authorization": f"bearer {api.keys['all']}"},
        {"X-API-Key": api.keys["loyalty"]},
    ):
        answer = httpx.get(path, headers=headers, timeout=10)
        assert answer.status_code == 404, answer.text  # through the key check: C1 has no account yet
        assert answer.json()["error"] == "not_found"
    for headers, status, error in (
        ({}, 401, "missing_api_key"),
        ({"Authorization": f"Basic {api.keys['loyalty']}"}, 401, "missing_api_key"),
        ({"Authorization": "Bearer crm_nothere"}, 401, "invalid_api_key"),
        ({"X-API-Key": api.keys["events"]}, 403, "forbidden"),
    ):
        answer = httpx.get(path, headers=headers, timeout=10)
        assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
        if status == 401:
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    used = {k.name: k.last_used_at for k in list_api_keys(db)}
    assert used["pos"] is not None and used["back-office"] is not None
    assert used["pos"] > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    schema = httpx.get(f"{api.base}/openapi.json", timeout=10).json()
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])
    redeem = schema["paths"]["/v1/loyalty/{programme}/redeem"]["post"]
    header = next(p for p in redeem["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and header["required"] is True
    assert set(redeem["responses"]) >= {"200", "201", "400", "401", "403", "404", "409", "413", "422"}
    assert redeem["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    earn = schema["components"]["schemas"]["EarnRequest"]
    assert [e.get("event") for e in earn["examples"]] == [None, "referral"]
