"""Every table fits the terminal: at 80 columns no line is longer and no e-mail or phone is split."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from engine.config.checked import load_config
from engine.segments.membership import refresh_segments
from tests.cli.test_cli import crm
from tests.factories import add_customer

LONG_EMAIL = "anastasia.konstantinopolskaya-rimskaya@very-long-company-name.example.com"


def test_tables_fit_80_columns_without_splitting_words(
    db: Engine, db_url: str, write_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    path = write_config(
        "[segments.with_a_rather_long_name_for_a_segment]\n"
        "rule = \"email.endswith('.example.com') and consent_email and first_name != 'nobody at all'\"\n"
    )
    with db.begin() as connection:
        add_customer(
            connection, external_id="C-1", email=LONG_EMAIL, phone="+79161234567", first_name="Анастасия"
        )
    refresh_segments(db, load_config(path))
    env = {"COLUMNS": "80", "CRM_CONFIG": str(path), "CRM_DATABASE_URL": db_url}
    for command in (("segments",), ("customers", "show", "C-1"), ("budget",), ("runs",)):
        done = crm(*command, env=env)
        assert done.returncode == 0, done.stderr
        too_long = [line for line in done.stdout.splitlines() if len(line) > 80]
        assert not too_long, (command, too_long)
        if command[0] in ("segments", "customers"):
            assert LONG_EMAIL in done.stdout or "with_a_rather_long_name_for_a_segment" in done.stdout
    shown = crm("customers", "show", "C-1", env=env).stdout
    assert LONG_EMAIL in shown and "+79161234567" in shown
