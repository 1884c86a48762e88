"""A newcomer's first minutes: a workspace from the example, the version, the runs, files where -o says."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import Engine

from engine.cli import main as crm_main
from engine.runs.runner import start_run
from engine.segments.membership import refresh_segments
from tests.cli.test_cli import crm
from tests.factories import add_customer
from tests.runs.test_runner import NOON, campaign, setup


def _without_config() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}


def test_init_in_an_empty_folder_starts_a_working_workspace(tmp_path: Path) -> None:
    env = _without_config()
    done = crm("init", "shop", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shop = tmp_path / "shop"
    assert {p.name for p in shop.iterdir()} >= {"config.toml", "campaigns", "budgets", "crm.db"}
    assert list((shop / "campaigns").glob("*.toml")) and list((shop / "campaigns" / "templates").iterdir())
    assert "created" in done.stdout and "revision" in done.stdout
    checked = crm("validate", env=env, cwd=shop)
    assert checked.returncode == 0, checked.stderr
    planned = crm("plan", "--days", "7", env=env, cwd=shop)
    assert planned.returncode == 0, planned.stderr

    (shop / "campaigns" / "winback.toml").write_text("# mine\n", encoding="utf-8")
    again = crm("init", env=env, cwd=shop)  # a workspace is there: only the schema, nothing overwritten
    assert again.returncode == 0 and "up to date" in again.stdout and "created" not in again.stdout
    assert (shop / "campaigns" / "winback.toml").read_text(encoding="utf-8") == "# mine\n"


def test_init_with_a_folder_and_a_config_is_refused(tmp_path: Path) -> None:
    done = crm("--config", str(tmp_path / "a.toml"), "init", str(tmp_path / "b"), env=_without_config())
    assert done.returncode == 1 and "not both" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "b").exists()


def test_version() -> None:
    done = crm("--version")
    assert done.returncode == 0 and done.stdout.startswith("crm-engine ")
    assert done.stdout.split()[1][0].isdigit()


def test_runs_lists_ids_states_and_counts(db: Engine, write_config, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = setup(write_config, tmp_path, {"hello": campaign()})
    with db.begin() as connection:
        for n in range(3):
            add_customer(connection, email=f"c{n}@example.com", consent_email=True)
        add_customer(connection, email="nc@example.com", consent_email=False)
    refresh_segments(db, config, now=NOON)
    from engine.campaigns.loading import load_campaigns

    run = start_run(db, config, load_campaigns(config)["hello"], scheduled_for=NOON, now=NOON)
    assert crm_main(["runs", "--json"]) == 0
    lines = json.loads(capsys.readouterr().out)
    assert [line["run_id"] for line in lines] == [run.run_id]
    assert lines[0]["campaign"] == "hello" and lines[0]["rows"] == {"queued": 3, "no_consent": 1}
    assert crm_main(["runs", "hello"]) == 0
    out = capsys.readouterr().out
    assert f"{run.run_id} " in out and "queued 3" in out
    assert crm_main(["runs", "nope"]) == 1
    assert "unknown campaign 'nope'" in capsys.readouterr().err


def test_budget_json_goes_to_the_file_given(db: Engine, write_config, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    setup(write_config, tmp_path, {"hello": campaign()})
    target = tmp_path / "out" / "budget.json"
    assert crm_main(["budget", "--format", "json", "-o", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    assert json.loads(target.read_text(encoding="utf-8"))["schema"].startswith("crm-engine/budget/")


def test_customers_show_has_consents_contacts_and_responses(
    db: Engine, write_config, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from engine.campaigns.loading import load_campaigns
    from engine.responses import record_open

    config = setup(write_config, tmp_path, {"hello": campaign()})
    with db.begin() as connection:
        add_customer(connection, external_id="C-7", email="c7@example.com", consent_email=True)
    refresh_segments(db, config, now=NOON)
    start_run(db, config, load_campaigns(config)["hello"], scheduled_for=NOON, now=NOON)
    with db.connect() as connection:
        outbox_id = connection.exec_driver_sql("SELECT id FROM outbox").scalar_one()
    record_open(db, outbox_id)
    assert crm_main(["customers", "show", "C-7"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "consents: email yes" in out and "sms no" in out
    assert "contact hello email: queued" in out and "response hello email: open" in out
    assert crm_main(["customers", "show", "C-7", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(event["state"] for event in shown["timeline"]) == ["open", "queued"]
    assert shown["loyalty"] == []


def test_customers_show_has_the_loyalty_balance_and_tier(db: Engine, write_config, capsys) -> None:  # type: ignore[no-untyped-def]
    from tests.loyalty.ledger_setup import customers, shop_programme

    shop_programme(write_config, pending_days="0")
    customers(db, "C-1")
    assert (
        crm_main(["loyalty", "earn", "C-1", "--order", "O-1", "--amount", "2000", "--programme", "shop"]) == 0
    )
    capsys.readouterr()
    assert crm_main(["customers", "show", "C-1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["loyalty"] == [{"programme": "shop", "available": 100, "pending": 0, "tier": None}]
    assert crm_main(["customers", "show", "C-1"]) == 0
    assert "loyalty shop: 100 points to spend, 0 pending" in capsys.readouterr().out
