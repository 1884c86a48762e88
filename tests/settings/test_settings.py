"""Settings: config.toml through pydantic-settings, CRM_* overrides, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.checked import load_config
from engine.errors import ConfigErrors, ConfigFileError
from engine.settings.config_toml import load_settings
from engine.settings.toml_lines import find_line

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_shipped_with_the_package() -> None:
    config = load_config(ROOT / "config.toml")
    assert "lapsing_large" in config.segments and "churn" in config.scores
    shipped = ROOT / "engine" / "defaults" / "config.toml"
    assert shipped.read_text(encoding="utf-8") == (ROOT / "config.toml").read_text(encoding="utf-8")


def test_example_campaigns_are_shipped_with_the_package() -> None:
    example = ROOT / "campaigns"
    shipped = ROOT / "engine" / "defaults" / "campaigns"
    names = sorted(p.relative_to(example).as_posix() for p in example.rglob("*") if p.is_file())
    names.remove("README.md")
    assert names == sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file())
    for name in names:
        assert (shipped / name).read_bytes() == (example / name).read_bytes(), name


def test_example_budget_is_shipped_with_the_package() -> None:
    from engine.budget.budget_files import load_budgets
    from engine.campaigns.loading import load_campaigns

    config = load_config(ROOT / "config.toml")
    budgets = load_budgets(config, load_campaigns(config))
    assert budgets.labels() == ["2027-Q1"]
    shipped = ROOT / "engine" / "defaults" / "budgets" / "quarter.toml"
    assert shipped.read_bytes() == (ROOT / "budgets" / "2027-Q1.toml").read_bytes()


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, '[engine]\ndatabase_url = "sqlite:///x.db"\ntimezone = "Europe/Moscow"\n')
    assert load_settings(path).engine.database_url == f"sqlite:///{tmp_path / 'x.db'}"  # beside the file
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql://crm@db/crm")
    monkeypatch.setenv("CRM_TIMEZONE", "Asia/Vladivostok")
    settings = load_settings(path)
    assert settings.engine.database_url == "postgresql://crm@db/crm"
    assert settings.engine.timezone == "Asia/Vladivostok"
    monkeypatch.setenv("CRM_ENGINE__DEFAULT_REGION", "KZ")  # any key, by its nested name
    assert load_settings(path).engine.default_region == "KZ"
    monkeypatch.setenv("CRM_ENGINE__TIMEZONE", "Asia/Almaty")  # the short name wins
    assert load_settings(path).engine.timezone == "Asia/Vladivostok"
    monkeypatch.setenv("CRM_CONFIG", str(path))
    assert load_settings().path == path


def test_unknown_field_in_a_rule_names_file_line_path_and_suggestion(tmp_path: Path) -> None:
    text = (
        (ROOT / "config.toml")
        .read_text(encoding="utf-8")
        .replace("90 <= days_since_last_order <= 180", "90 <= days_since_last_ordr <= 180")
    )
    path = _write(tmp_path, text)
    line = find_line(text, "segments.lapsing_large.rule")
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(
        f"{path}:{line} segments.lapsing_large.rule: unknown field 'days_since_last_ordr' "
        "(did you mean days_since_last_order?)"
    )
    assert "^" in message  # a caret under the column


def test_multiline_rule_errors_point_at_the_line_inside_the_rule(tmp_path: Path) -> None:
    text = '[segments.x]\nstrategy = "loyalty"\nrule = """\norders_count > 1\n  and totl_spent > 5\n"""\n'
    path = _write(tmp_path, text)
    with pytest.raises(ConfigErrors, match=rf"^{path}:5 segments.x.rule: unknown field 'totl_spent'"):
        load_config(path)


def test_structure_errors_are_all_listed_with_lines(tmp_path: Path) -> None:
    text = """[engine]
timezone = "Europe/Moskow"

[segments.a]
rule = "true"
strategy = "loyality"

[segments.b]
rul = "true"

[metrics]
abc = { A = 0.9, B = 0.8 }
"""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigErrors) as caught:
        load_settings(path)
    lines = str(caught.value).splitlines()
    assert f"{path}:2 engine.timezone: unknown IANA time zone 'Europe/Moskow' (e.g. Europe/Moscow)" in lines
    assert any(line.startswith(f"{path}:6 segments.a.strategy: 'loyality' is not allowed") for line in lines)
    assert f"{path}:9 segments.b.rul: unknown field 'rul' in segments.b" in lines
    assert any(line.startswith(f"{path}:8 segments.b.rule: required field is missing") for line in lines)
    assert any(line.startswith(f"{path}:12 metrics.abc: need 0 < A < B <= 1") for line in lines)


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[engine]\ntimezone = "Europe/Moscow"\n[segments.a\nrule = "x"\n')
    with pytest.raises(ConfigFileError, match=rf"^{path}:3: not valid TOML"):
        load_settings(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"\xff\xfe[\x00e\x00", "not UTF-8"),
        (b"", None),
    ],
)
def test_missing_unreadable_and_empty_files(
    tmp_path: Path, content: bytes | None, message: str | None
) -> None:
    path = tmp_path / "config.toml"
    if content is not None:
        path.write_bytes(content)
    if message is None:  # an empty file is a valid config with every default
        assert load_config(path).segments == {}
        return
    with pytest.raises(ConfigFileError, match=message):
        load_settings(path)


def test_rule_type_errors_and_refused_constructs(tmp_path: Path) -> None:
    text = """[segments.a]
rule = "orders_count > 'many'"
[segments.b]
rule = "email.__class__ == 1"
[segments.c]
rule = "in_segment('nope')"
[scores.s]
rules = [{ when = "score.s > 1", points = 1 }]
[metrics.custom.m]
aggregate = "count"
where = "in_segment('a')"
"""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    errors = {e.toml_path: e for e in caught.value.errors}  # type: ignore[attr-defined]
    assert set(errors) == {
        "segments.a.rule",
        "segments.b.rule",
        "segments.c.rule",
        "scores.s.rules[0].when",
        "metrics.custom.m.where",
    }
    assert errors["segments.a.rule"].line == 2 and errors["scores.s.rules[0].when"].line == 8
    assert "nope" in str(errors["segments.c.rule"])


def test_channel_policy_and_scheduler_sections_are_checked_with_their_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[channels.email]\nunit_cost = -1\n\n[channels.call]\nwindow = "19:00-19:00"\n\n'
        '[contact_policy]\nmax_contacts = { email = "2/fortnight", fax = "1/day" }\n\n'
        '[scheduler]\ntrigger_every = "10s"\n',
    )
    with pytest.raises(ConfigErrors) as caught:
        load_settings(path)
    text = str(caught.value)
    assert f"{path}:2 channels.email.unit_cost: Input should be greater than or equal to 0" in text
    assert f"{path}:5 channels.call.window: '19:00-19:00' is empty" in text
    assert f"{path}:8 contact_policy.max_contacts: '2/fortnight' is not a frequency cap" in text
    assert f"{path}:11 scheduler.trigger_every: '10s' is not a duration" in text
    settings = load_settings(_write(tmp_path, "[scheduler]\nanniversary_at = 07:30:00\n"))
    assert settings.scheduler.anniversary_at.hour == 7 and settings.channels.email.domain == "shop.example"
