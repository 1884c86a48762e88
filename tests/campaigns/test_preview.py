"""`crm preview`: a campaign step rendered for one real customer, on both databases."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest

from engine.config.checked import load_config
from engine.contact_policy.links import verify
from engine.errors import NotFoundError
from tests.cli.test_cli import crm
from tests.factories import add_customer

ROOT = Path(__file__).resolve().parents[2]


def test_preview_renders_email_and_call_script_for_a_customer(
    db, db_url: str, write_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config_path = write_config()
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    with db.begin() as connection:
        customer_id = add_customer(
            connection, external_id="C7", first_name="Анна <b>", email="anna@example.ru"
        )
    env = {"CRM_CONFIG": str(config_path), "CRM_DATABASE_URL": db_url, "CRM_LINKS__SECRET": "s3cret"}
    result = crm("preview", "winback", "--customer", "C7", env=env)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "previews" / f"winback-{customer_id}-step0.html").read_text(encoding="utf-8")
    assert "<b>Subject:</b> Анна &lt;b&gt;, we kept something for you" in page
    assert "<p>Анна &lt;b&gt;,</p>" in page and "valid until 28 February" in page
    signed = re.search(r"http://localhost:8000/u/([^?\"]+)\?s=([\w-]+)", page)
    assert signed is not None
    assert verify(unquote(signed.group(1)), signed.group(2), "s3cret")

    out = tmp_path / "call.html"
    call = crm(
        "preview", "winback", "--customer", "anna@example.ru", "--step", "1", "--out", str(out), env=env
    )
    assert call.returncode == 0, call.stderr
    assert "Greet Анна &lt;b&gt; by name" in out.read_text(encoding="utf-8")


def test_unknown_campaign_step_or_customer_is_a_user_error(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from engine.campaigns.preview import preview

    config = load_config(write_config())
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    with db.begin() as connection:
        add_customer(connection, external_id="C1", first_name="Олег")
    with pytest.raises(NotFoundError, match=r"unknown campaign 'winbak' \(known: churn_call, winback\)"):
        preview(db, config, "winbak", "C1")
    with pytest.raises(NotFoundError, match="unknown step '5'"):
        preview(db, config, "winback", "C1", step=5)
    with pytest.raises(NotFoundError, match="unknown customer 'C2'"):
        preview(db, config, "winback", "C2")
