"""The engine's limits: the module itself, and config.toml held to them with file, line and field.

Each limit is tried just inside and just outside; a config that breaks one is
refused when it is loaded (``crm validate``), never later by a crash. The file
may carry a byte-order mark and CRLF line ends; a zone folder is no zone; the
default database lies beside config.toml.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from engine.config.checked import load_config
from engine.errors import ConfigErrors, InvalidValueError
from engine.settings import (
    MAX_AMOUNT,
    MAX_POINTS,
    calendar_days,
    check_date,
    check_duration,
    check_instant,
    check_money,
    check_points,
    load_settings,
    parse_duration,
    parse_lag,
    parse_money,
    parse_points,
    parse_quantity,
    time_zone,
)
from engine.settings.toml_lines import find_line
from tests.cli.test_cli import crm

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "config.toml").read_text(encoding="utf-8")


def _write(tmp_path: Path, text: str, *, raw: bytes | None = None) -> Path:
    path = tmp_path / "config.toml"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    return str(caught.value).splitlines()


# --- the module ----------------------------------------------------------------------------------


def test_money_just_inside_and_just_outside() -> None:
    assert parse_money("100000000") == MAX_AMOUNT
    assert parse_money("0.01") == Decimal("0.01")
    assert parse_money("12.50") == Decimal("12.50")
    for text, reason in (
        ("100000000.01", "above the limit of 100,000,000.00"),
        ("1e30", r"amount 1E\+30 is above the limit"),
        ("0", "must be at least 0.01"),
        ("-5", "must be at least 0.01"),
        ("12.345", "more than 2 decimal places"),
        ("NaN", "not a finite number"),
        ("Infinity", "not a finite number"),
        ("lots", "not a number"),
        ("1e99999999999999999999999999999", "not a number"),
    ):
        with pytest.raises(InvalidValueError, match=reason):
            parse_money(text)
    assert check_money(Decimal(0)) == 0  # a unit cost may be free
    with pytest.raises(InvalidValueError, match="is not a number"):
        check_money(True)  # type: ignore[arg-type]


def test_quantity_points_dates_durations_just_inside_and_just_outside() -> None:
    assert parse_quantity("1000000") == Decimal(1_000_000) and parse_quantity("0.001") == Decimal("0.001")
    for text in ("1000000.001", "0", "0.0001"):
        with pytest.raises(InvalidValueError):
            parse_quantity(text)
    assert parse_points("10000000") == MAX_POINTS and parse_points("-10000000", minimum=-MAX_POINTS) < 0
    for text in ("10000001", "0", "9223372036854775808", "1.5", "1e3", "ten"):
        with pytest.raises(InvalidValueError):
            parse_points(text)
    with pytest.raises(InvalidValueError, match="not a whole number"):
        check_points(True)  # type: ignore[arg-type]

    assert check_date(dt.date(1970, 1, 1)) and check_date(dt.date(2199, 12, 31))
    assert check_date(dt.date(1900, 1, 1), earliest=dt.date(1900, 1, 1))
    for day in (dt.date(1969, 12, 31), dt.date(2200, 1, 1), dt.date(1, 1, 1), dt.date(9999, 12, 31)):
        with pytest.raises(InvalidValueError, match=r"is outside 1970-01-01 \.\. 2199-12-31"):
            check_date(day)
    late = dt.datetime(2199, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-12)))
    assert check_instant(late).astimezone(dt.UTC).year == 2200  # the date as written counts
    with pytest.raises(InvalidValueError):
        check_instant(dt.datetime(1, 1, 1, tzinfo=dt.UTC))

    assert parse_duration("3650d") == dt.timedelta(days=3650) == parse_duration("5256000m")
    assert check_duration(dt.timedelta(days=3650))
    for text in ("3651d", "522w", "87601h", "99999999999999d", "9" * 5000 + "d"):
        with pytest.raises(ValueError, match=r"longer than 3650 days|not a duration"):
            parse_duration(text)
    assert parse_lag("10y").months == 120 and parse_lag("3650d").days == 3650
    for text in ("121mo", "11y", "3651d", "99999999999999y"):
        with pytest.raises(ValueError, match="longer than"):
            parse_lag(text)
    assert calendar_days("3650d") == 3650
    with pytest.raises(ValueError):
        calendar_days("99999999999999d")


def test_one_function_turns_a_zone_name_into_a_zone_or_one_clear_error() -> None:
    assert time_zone("Europe/Moscow").key == "Europe/Moscow"
    for name in ("Europe", "Etc", "Mars/Olympus", "", " UTC", "../../etc/passwd", "a\x00b", "zone1970.tab"):
        with pytest.raises(InvalidValueError, match=r"unknown IANA time zone .* \(e.g. Europe/Moscow\)"):
            time_zone(name)


# --- config.toml ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        (
            'timezone = "Europe/Moscow"',
            'timezone = "Europe"',
            "engine.timezone",
            "unknown IANA time zone 'Europe'",
        ),
        ("points = 40", "points = 9223372036854775808", "scores.churn.rules[0].points", "1000000"),
        ("points = 40", "points = 1000001", "scores.churn.rules[0].points", "1000000"),
        ("points = 40", "points = -1000001", "scores.churn.rules[0].points", "-1000000"),
        ("regular_window_days = 365", "regular_window_days = 3651", "metrics.regular_window_days", "3650"),
        ("pending_days = 14", "pending_days = 9223372036854775808", "pending_days", "3650"),
        ('expiry = "365d"', 'expiry = "99999999999999d"', "expiry", "a duration such as 365d"),
        ("point_value = 1.0", "point_value = 1e30", "point_value", "100000000"),
        ("unit_cost = 0.40", "unit_cost = 100000000.01", "channels.email.unit_cost", "100000000"),
        ("unit_cost = 0.40", "unit_cost = nan", "channels.email.unit_cost", "finite number"),
    ],
)
def test_config_values_beyond_the_limits_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    assert old in EXAMPLE, old
    text = EXAMPLE.replace(old, new, 1)
    path = _write(tmp_path, text)
    errors = _errors(path)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if new in row)
    assert any(
        e.startswith(f"{path}:{line} ") and f"{field}: " in e.split(" ", 1)[1] and reason in e for e in errors
    ), errors


def test_a_score_whose_rules_add_up_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    rule = '  { when = "true", points = %s },\n'
    path = _write(tmp_path, "[scores.big]\nrules = [\n" + rule % 600000 + rule % 600000 + "]\n")
    assert _errors(path) == [
        f"{path}:2 scores.big.rules: the positive points of the rules add up to 1,200,000: "
        "a score lies within -1,000,000 .. 1,000,000"
    ]
    path.write_text("[scores.big]\nrules = [\n" + rule % 1000000 + rule % -1000000 + "]\n", encoding="utf-8")
    assert load_config(path).scores  # each side at the limit


def test_config_integers_refuse_booleans_and_2_to_the_63(tmp_path: Path) -> None:
    text = (
        "[metrics]\nregular_min_orders = true\n\n[channels.call]\ncapacity_per_day = 9223372036854775808\n\n"
        '[contact_policy]\nmax_contacts = { email = "99999999999999999999/week" }\n\n'
        "[loyalty.programmes.p]\nrewards = { yacht = 10000001 }\n"
        'earn = [{ when = "true", points = true },\n'
        '  { when = "true", points = 10000001, priority = 2000000 }]\n'
        "limits = { per_customer = 1000000001 }\n"
    )
    errors = _errors(_write(tmp_path, text))
    expected = [
        ":2 metrics.regular_min_orders: true is a yes/no value, not a number",
        ":5 channels.call.capacity_per_day: Input should be less than or equal to 1000000000",
        ":8 contact_policy.max_contacts: email: '99999999999999999999/week' allows more than 1,000,000,000",
        ":11 loyalty.programmes.p.rewards.yacht: Input should be less than or equal to 10000000",
        ":12 loyalty.programmes.p.earn[0].points: points is an expression or a number, not a yes/no value",
        ":13 loyalty.programmes.p.earn[1].priority: Input should be less than or equal to 1000000",
        ":14 loyalty.programmes.p.limits.per_customer: Input should be less than or equal to 1000000000",
    ]
    for part in expected:
        assert any(part in e for e in errors), (part, errors)


def test_values_at_the_limits_are_accepted(tmp_path: Path) -> None:
    text = (
        EXAMPLE.replace("points = 40", "points = 999960", 1)  # with 25 and 15: 1,000,000
        .replace("pending_days = 14", "pending_days = 3650")
        .replace('expiry = "365d"', 'expiry = "3650d"')
        .replace("point_value = 1.0", "point_value = 100000000")
    )
    config = load_config(_write(tmp_path, text))
    assert sum(rule.points for rule in config.settings.scores["churn"].rules) == 1_000_000
    assert config.settings.loyalty.programmes["bonus"].pending_days == 3650


def test_a_config_with_a_byte_order_mark_or_crlf_line_ends_loads(tmp_path: Path) -> None:
    expected = load_config(ROOT / "config.toml").settings
    bom = _write(tmp_path, "", raw=b"\xef\xbb\xbf" + EXAMPLE.encode("utf-8"))
    assert load_config(bom).settings.segments == expected.segments
    crlf = _write(tmp_path, "", raw=EXAMPLE.replace("\n", "\r\n").encode("utf-8"))
    assert load_config(crlf).settings.loyalty == expected.loyalty
    both = _write(tmp_path, "", raw=b"\xef\xbb\xbf" + EXAMPLE.replace("\n", "\r\n").encode("utf-8"))
    broken = load_config(both).settings.text.replace('timezone = "Europe/Moscow"', 'timezone = "Europe"', 1)
    both.write_bytes(b"\xef\xbb\xbf" + broken.encode("utf-8"))
    line = find_line(broken, "engine.timezone")
    assert _errors(both) == [
        f"{both}:{line} engine.timezone: unknown IANA time zone 'Europe' (e.g. Europe/Moscow)"
    ]


def test_every_command_reads_a_bom_config_and_a_zone_folder_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "", raw=b"\xef\xbb\xbf" + EXAMPLE.replace("\n", "\r\n").encode("utf-8"))
    env = {"CRM_CONFIG": str(path)}
    assert crm("init", env=env).returncode == 0
    validate = crm("validate", env=env)
    assert validate.returncode == 0, validate.stderr
    path.write_bytes(path.read_bytes().replace(b'timezone = "Europe/Moscow"', b'timezone = "Europe"', 1))
    broken = crm("validate", env=env)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "engine.timezone: unknown IANA time zone 'Europe' (e.g. Europe/Moscow)" in broken.stderr


def test_the_default_database_lies_beside_config_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text('[engine]\ntimezone = "Europe/Moscow"\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    assert load_settings(path).engine.database_url == f"sqlite:///{folder.resolve() / 'crm.db'}"
    path.write_text("", encoding="utf-8")  # no [engine] at all
    assert load_settings(path).engine.database_url == f"sqlite:///{folder.resolve() / 'crm.db'}"
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql://crm@db/crm")
    assert load_settings(path).engine.database_url == "postgresql://crm@db/crm"
