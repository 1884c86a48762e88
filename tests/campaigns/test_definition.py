"""Campaign files: validated with file:line errors against the config, templates and schedules."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from engine.campaigns import load_campaigns
from engine.config.checked import load_config
from engine.errors import ConfigErrors
from tests.cli.test_cli import crm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the example config and campaigns."""
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    return tmp_path


def _errors(workspace: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_campaigns(load_config(workspace / "config.toml"))
    return str(caught.value).splitlines()


def _edit(workspace: Path, old: str, new: str) -> Path:
    path = workspace / "campaigns" / "winback.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_the_example_campaign_is_valid(workspace: Path) -> None:
    loaded = load_campaigns(load_config(workspace / "config.toml"))
    assert sorted(loaded) == ["churn_call", "winback"]
    winback = loaded["winback"]
    campaign = winback.campaign
    assert (winback.key, campaign.segment, campaign.trigger) == ("winback", "lapsing_large", "schedule")
    assert [s.channel for s in campaign.steps] == ["email", "call"]
    assert campaign.steps[1].wait_delta.days == 7 and campaign.control_group == Decimal("0.1")
    churn = loaded["churn_call"].campaign
    assert (churn.budget, churn.rank_by, churn.steps[0].channel) == (Decimal(400000), "total_spent", "call")


def test_unknown_channel_lists_the_known_ones_with_file_and_line(workspace: Path) -> None:
    path = _edit(workspace, 'channel = "call"', 'channel = "phone"')
    assert (
        f"{path}:27 steps[1].channel: unknown channel 'phone' (known: call, email, meeting, post, sms)"
        in _errors(workspace)
    )


def test_unknown_segment_suggests_the_closest(workspace: Path) -> None:
    path = _edit(workspace, 'segment = "lapsing_large"', 'segment = "lapsing_larg"')
    assert f"{path}:5 segment: unknown segment 'lapsing_larg' (did you mean lapsing_large?)" in _errors(
        workspace
    )


def test_missing_and_broken_templates(workspace: Path) -> None:
    path = _edit(workspace, 'script = "winback_call.md"', 'script = "nope.md"')
    (workspace / "campaigns" / "templates" / "winback.html.j2").write_text("<p>{{ customer.first_name </p>\n")
    errors = _errors(workspace)
    assert any(e.startswith(f"{path}:30 steps[1].script: no file 'nope.md'") for e in errors)
    assert any(e.startswith(f"{path}:18 steps[0].template: winback.html.j2:1: ") for e in errors)


def test_a_schedule_that_never_fires_or_is_not_cron(workspace: Path) -> None:
    path = _edit(workspace, 'schedule = "0 10 * * MON"', 'schedule = "0 10 31 2 *"')
    assert f"{path}:10 schedule: '0 10 31 2 *' never fires between start and end" in _errors(workspace)
    _edit(workspace, 'schedule = "0 10 31 2 *"', 'schedule = "0 25 * * *"')
    assert any("schedule: not a cron expression" in e for e in _errors(workspace))


def test_wait_before_the_first_step_and_two_triggers_are_refused(workspace: Path) -> None:
    path = _edit(workspace, 'template = "winback.html.j2"', 'template = "winback.html.j2"\nwait = "1d"')
    assert any("the first step cannot wait" in e for e in _errors(workspace))
    _edit(workspace, '\nwait = "1d"', "")
    _edit(workspace, 'schedule = "0 10 * * MON"', 'schedule = "0 10 * * MON"\non_segment_entry = true')
    assert any(e.startswith(f"{path}: a campaign needs exactly one trigger") for e in _errors(workspace))


def test_only_if_rules_type_check(workspace: Path) -> None:
    _edit(workspace, 'only_if = "not responded"', 'only_if = "orders_cnt > 1"')
    assert any("unknown field 'orders_cnt' (did you mean orders_count?)" in e for e in _errors(workspace))


def test_validate_and_schema_commands(workspace: Path) -> None:
    env = {"CRM_CONFIG": str(workspace / "config.toml")}
    result = crm("validate", env=env)
    assert result.returncode == 0 and "2 campaigns" in result.stdout
    schema = json.loads(crm("schema", env=env).stdout)
    assert "steps" in schema["required"] and schema["properties"]["strategy"]
    _edit(workspace, 'channel = "call"', 'channel = "e-mail"')
    bad = crm("validate", env=env)
    assert bad.returncode == 1 and "unknown channel 'e-mail'" in bad.stderr


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        (
            "end = 2027-02-28",
            "end = 9999-12-31",
            "end",
            "date 9999-12-31 is outside 1970-01-01 .. 2199-12-31",
        ),
        ("start = 2026-12-01", "start = 0001-01-01", "start", "is outside 1970-01-01 .. 2199-12-31"),
        ("priority = 10", "priority = 9223372036854775808", "priority", "less than or equal to 1000000"),
        ("priority = 10", "priority = -1000001", "priority", "greater than or equal to -1000000"),
        ("priority = 10", "priority = true", "priority", "true is a yes/no value, not a number"),
        ('wait = "7d"', 'wait = "99999999999999d"', "steps[1].wait", "longer than 3650 days"),
        ('wait = "7d"', 'wait = "3651d"', "steps[1].wait", "longer than 3650 days"),
        ("preparation_cost = 15000", "preparation_cost = 1e30", "preparation_cost", "100000000"),
        ("preparation_cost = 15000", "preparation_cost = inf", "preparation_cost", "finite number"),
        (
            "contacts_per_client = 1\n\n",
            "contacts_per_client = 1001\n\n",
            "steps[0].contacts_per_client",
            "1000",
        ),
    ],
)
def test_values_beyond_the_limits_name_file_line_and_field(
    workspace: Path, old: str, new: str, field: str, reason: str
) -> None:
    path = _edit(workspace, old, new)
    line = next(
        n
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if new.split("\n")[0] in text
    )
    errors = _errors(workspace)
    assert any(e.startswith(f"{path}:{line} {field}: ") and reason in e for e in errors), errors


def test_values_at_the_limits_are_accepted(workspace: Path) -> None:
    _edit(workspace, "end = 2027-02-28", "end = 2199-12-31")
    _edit(workspace, "start = 2026-12-01", "start = 1970-01-01")
    _edit(workspace, "priority = 10", "priority = 1000000")
    _edit(workspace, 'wait = "7d"', 'wait = "3650d"')
    _edit(workspace, "preparation_cost = 15000", "preparation_cost = 100000000")
    campaign = load_campaigns(load_config(workspace / "config.toml"))["winback"].campaign
    assert (campaign.end, campaign.priority, campaign.steps[1].wait_delta.days) == (
        dt.date(2199, 12, 31),
        1_000_000,
        3650,
    )


def test_a_campaign_ending_in_year_9999_is_refused_by_validate_not_a_crash_later(workspace: Path) -> None:
    env = {"CRM_CONFIG": str(workspace / "config.toml")}
    assert crm("init", env=env).returncode == 0  # crm.db beside config.toml
    _edit(workspace, "end = 2027-02-28", "end = 9999-12-31")
    for command in (("validate",), ("plan", "--campaign", "winback")):
        result = crm(*command, env=env)
        assert result.returncode == 1, (command, result.stderr)
        assert "winback.toml:9 end: date 9999-12-31 is outside 1970-01-01 .. 2199-12-31" in result.stderr
        assert "Traceback" not in result.stderr
