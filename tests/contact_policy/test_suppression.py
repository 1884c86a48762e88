"""The suppression list on both databases: normalised addresses, linked customers, the CLI."""

from __future__ import annotations

import json

import pytest

from engine.contact_policy.suppression import is_suppressed, list_suppressions, suppress, unsuppress
from engine.errors import ConfigValueError, NotFoundError
from tests.cli.test_cli import crm
from tests.factories import add_customer


def test_addresses_are_normalised_linked_and_kept_once(db) -> None:  # type: ignore[no-untyped-def]
    with db.begin() as connection:
        anna = add_customer(connection, email="anna@example.ru", phone="+79161234567")
    assert suppress(db, "email", " Anna@Example.RU ", "unsubscribe", source="api")
    assert not suppress(db, "email", "anna@example.ru", "hard_bounce")  # already there: unchanged
    assert suppress(db, "sms", "8 (916) 123-45-67", "complaint")
    assert suppress(db, "email", "stranger@example.com", "hard_bounce", detail="550 5.1.1 no such user")
    with db.connect() as connection:
        assert is_suppressed(connection, "email", "ANNA@example.ru")
        assert is_suppressed(connection, "sms", "+7 916 123 45 67")
        assert not is_suppressed(connection, "call", "+79161234567")
    count, entries = list_suppressions(db, "email")
    assert count == 2
    by_address = {e.address: e for e in entries}
    assert (
        by_address["anna@example.ru"].customer_id == anna
        and by_address["anna@example.ru"].reason == "unsubscribe"
    )
    assert by_address["stranger@example.com"].customer_id is None
    unsuppress(db, "email", "anna@example.ru")
    with db.connect() as connection:
        assert not is_suppressed(connection, "email", "anna@example.ru")
    with pytest.raises(NotFoundError):
        unsuppress(db, "email", "anna@example.ru")


def test_bad_channel_reason_or_address_is_refused(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigValueError, match=r"unknown channel 'fax' \(known: email, sms, call, post\)"):
        suppress(db, "fax", "x", "manual")
    with pytest.raises(ConfigValueError, match="unknown reason 'spam'"):
        suppress(db, "email", "a@example.ru", "spam")
    with pytest.raises(ConfigValueError, match="not a valid phone number"):
        suppress(db, "sms", "12345", "manual")
    assert list_suppressions(db)[0] == 0


def test_suppress_commands(db, db_url: str, write_config) -> None:  # type: ignore[no-untyped-def]
    env = {"CRM_CONFIG": str(write_config()), "CRM_DATABASE_URL": db_url}
    added = crm("suppress", "add", "email", "Anna@Example.ru", "--reason", "unsubscribe", env=env)
    assert added.returncode == 0 and "suppressed" in added.stdout
    listed = json.loads(crm("suppress", "list", "--json", env=env).stdout)
    assert listed["count"] == 1 and listed["entries"][0]["address"] == "anna@example.ru"
    assert crm("suppress", "remove", "email", "anna@example.ru", env=env).returncode == 0
    missing = crm("suppress", "remove", "email", "anna@example.ru", env=env)
    assert missing.returncode == 1 and "anna@example.ru" in missing.stderr
    bad = crm("suppress", "add", "email", "x", "--reason", "bogus", env=env)
    assert bad.returncode == 1 and "unknown reason 'bogus'" in bad.stderr
