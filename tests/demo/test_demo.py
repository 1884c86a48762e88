"""`crm demo`: a fresh SQLite workspace, refreshed, printed; run again, fresh again."""

from __future__ import annotations

import csv
import email
import email.policy
import json
import shlex
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from engine.config.checked import load_config
from engine.db.engines import make_engine
from engine.models import ContactResponse, Conversion, OutboxMessage, Purchase
from engine.models import outbox as states
from engine.models.tables import CUSTOMER, MEMBERSHIP
from tests.cli.test_cli import crm

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
RESPONSE = ContactResponse.__table__  # type: ignore[attr-defined]
CONVERSION = Conversion.__table__  # type: ignore[attr-defined]
PURCHASE = Purchase.__table__  # type: ignore[attr-defined]


def test_demo_builds_a_workspace_that_the_other_commands_read(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    result = crm("demo", "--dir", str(folder), "--customers", "1500", "--purchases", "15000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for heading in ("ABC class", "lifecycle stage", "time zone", "scores", "segments", "lapsing_large"):
        assert heading in result.stdout, heading
    # the call-centre export goes through the real importer: new people, merges and 4 rejects
    assert "104 rows, 60 inserted" in result.stdout and "4 rejected" in result.stdout
    assert "encoding cp1251 (detected)" in result.stdout
    assert (folder / "call_centre_export.csv.rejects.csv").read_text(encoding="utf-8").count("\n") == 5
    config = load_config(folder / "config.toml")
    assert config.database_url == f"sqlite:///{folder / 'demo.db'}"
    env = {"CRM_CONFIG": str(folder / "config.toml")}
    listing = json.loads(crm("segments", "--json", env=env).stdout)
    members = {s["name"]: s["members"] for s in listing}
    assert set(members) == set(config.segments)
    assert members["large"] > 0 and members["holdout"] > 0
    engine = make_engine(config.database_url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(CUSTOMER)).scalar_one() == 1560
        large = connection.execute(
            select(func.count()).where(MEMBERSHIP.c.segment == "large", MEMBERSHIP.c.left_at.is_(None))
        ).scalar_one()
        outbox = dict(
            connection.execute(
                select(OUTBOX.c.channel, func.count())
                .where(OUTBOX.c.state.in_(("sent", "delivered")))
                .group_by(OUTBOX.c.channel)
            ).all()
        )
        stateless = connection.execute(
            select(func.count()).where(OUTBOX.c.state.not_in(states.STATES))
        ).scalar_one()
    engine.dispose()
    assert large == members["large"]
    # the campaign day: emails in the Maildir and calls in the lists, as many as the outbox says
    assert "campaign day" in result.stdout and stateless == 0
    emails = list((folder / "outbox" / "maildir" / "new").iterdir())
    assert len(emails) == outbox["email"] > 0
    message = email.message_from_bytes(emails[0].read_bytes(), policy=email.policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    calls = list((folder / "outbox" / "calls").glob("calls-*.csv"))
    listed = 0
    for path in calls:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            listed += sum(1 for row in csv.DictReader(handle, delimiter=";") if row["phone"].startswith("+"))
    assert listed == outbox["call"] > 0

    assert crm("plan", "--days", "31", env=env).returncode == 0

    # the quarter's budget: printed, written for finance, and its actual is what the outbox recorded
    assert "contact matrix" in result.stdout and "by strategy" in result.stdout

    # the loyalty programme ran over the shop: points, a till session, the nightly jobs, a clean audit
    assert "loyalty programme bonus" in result.stdout and "entries: consistent" in result.stdout
    assert crm("loyalty", "audit", env=env).returncode == 0
    liability = json.loads(crm("loyalty", "liability", "--format", "json", env=env).stdout)
    assert liability["programmes"][0]["total"]["outstanding"] > 0
    assert (folder / "budget.xlsx").stat().st_size > 0
    assert "<img" in (folder / "budget.html").read_text(encoding="utf-8")
    budget = json.loads(crm("budget", "--format", "json", env=env).stdout)
    assert Decimal(budget["totals"]["plan"]) > 0 and budget["approved"]["total"] == "1500000"
    engine = make_engine(config.database_url)
    with engine.connect() as connection:
        recorded = connection.execute(
            select(func.sum(OUTBOX.c.unit_cost * OUTBOX.c.contacts)).where(
                OUTBOX.c.state.in_(states.CONTACTED_STATES)
            )
        ).scalar_one()
    engine.dispose()
    contact_cost = sum(Decimal(line["contact_cost"]) for line in budget["actual"])
    assert contact_cost == Decimal(str(recorded)).quantize(Decimal("0.01")) > 0

    _check_evaluation(result.stdout, folder, config.database_url)

    again = crm("demo", "--dir", str(folder), "--customers", "1000", "--purchases", "5000", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    engine = make_engine(config.database_url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(CUSTOMER)).scalar_one() == 1060
        sent = connection.execute(
            select(func.count()).where(OUTBOX.c.channel == "email", OUTBOX.c.state == "delivered")
        ).scalar_one()
    engine.dispose()
    assert len(list((folder / "outbox" / "maildir" / "new").iterdir())) == sent


def _check_evaluation(stdout: str, folder: Path, url: str) -> None:
    """The simulated weeks went through the API and the importers; the report traces to what they recorded."""
    assert "evaluation: the 30 days after the campaign day" in stdout
    assert "uplift over control" in stdout and "lifecycle funnel" in stdout
    with (folder / "call_outcomes.csv").open(encoding="utf-8") as handle:
        calls = sum(1 for _ in handle) - 1
    engine = make_engine(url)
    with engine.connect() as connection:
        by_source = dict(
            connection.execute(select(RESPONSE.c.source, func.count()).group_by(RESPONSE.c.source)).all()
        )
        scores = connection.execute(
            select(func.count()).where(RESPONSE.c.kind == "satisfaction")
        ).scalar_one()
        conversions = connection.execute(
            select(CONVERSION.c.revenue, PURCHASE.c.amount, CONVERSION.c.contact_at, PURCHASE.c.ordered_at)
            .join(PURCHASE, PURCHASE.c.id == CONVERSION.c.purchase_id)
            .join(OUTBOX, OUTBOX.c.id == CONVERSION.c.outbox_id)
        ).all()
    engine.dispose()
    # opens and clicks were requests to the tracking links; every call outcome came back through the import
    assert by_source["tracking"] > 0
    assert by_source["call_centre"] == calls + scores > 0
    # every conversion is a real purchase after a recorded contact, for the amount bought
    assert conversions and all(row.ordered_at >= row.contact_at for row in conversions)
    assert all(row.revenue == row.amount for row in conversions)  # the simulation refunds nothing
    index = (folder / "report" / "index.html").read_text(encoding="utf-8")
    for key in ("winback", "churn_call"):
        assert f"campaign-{key}.html" in index
        assert (folder / "report" / f"campaign-{key}.html").stat().st_size > 0


def test_the_readmes_loyalty_examples_run_in_the_order_given_on_the_demo(tmp_path: Path) -> None:
    """A newcomer copies the README's lines one after the other: each must work on the demo's data."""
    folder = tmp_path / "shop"
    built = crm("demo", "--dir", str(folder), "--customers", "300", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    examples = [
        line.split("  #")[0].strip() for line in readme.splitlines() if line.startswith("crm loyalty ")
    ]
    assert len(examples) >= 10
    env = {"CRM_CONFIG": str(folder / "config.toml")}
    for example in examples:
        done = crm(*shlex.split(example)[1:], env=env, cwd=tmp_path)
        assert done.returncode == 0, f"{example}\n{done.stdout}\n{done.stderr}"
