"""Campaign files: validated with file:line errors against the config, templates and schedules."""

from __future__ import annotations

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
        f"{path}:22 steps[1].channel: unknown channel 'phone' (known: call, email, meeting, post, sms)"
        in _errors(workspace)
    )


def test_unknown_segment_suggests_the_closest(workspace: Path) -> None:
    path = _edit(workspace, 'segment = "lapsing_large"', 'segment = "lapsing_larg"')
    assert f"{path}:4 segment: unknown segment 'lapsing_larg' (did you mean lapsing_large?)" in _errors(
        workspace
    )


def test_missing_and_broken_templates(workspace: Path) -> None:
    path = _edit(workspace, 'script = "winback_call.md"', 'script = "nope.md"')
    (workspace / "campaigns" / "templates" / "winback.html.j2").write_text("<p>{{ customer.first_name </p>\n")
    errors = _errors(workspace)
    assert any(e.startswith(f"{path}:25 steps[1].script: no file 'nope.md'") for e in errors)
    assert any(e.startswith(f"{path}:17 steps[0].template: winback.html.j2:1: ") for e in errors)


def test_a_schedule_that_never_fires_or_is_not_cron(workspace: Path) -> None:
    path = _edit(workspace, 'schedule = "0 10 * * MON"', 'schedule = "0 10 31 2 *"')
    assert f"{path}:9 schedule: '0 10 31 2 *' never fires between start and end" in _errors(workspace)
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
