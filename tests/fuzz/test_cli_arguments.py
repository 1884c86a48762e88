"""Every ``crm`` command with generated arguments: exit 0 or 1, never a traceback; a failure writes nothing.

Each example picks a command (all but the long-running ``serve``,
``scheduler`` and ``demo``; ``worker`` always with ``--until-idle``), and
gives each of its arguments and options either a plausible value (a real
campaign, customer, programme, period, format) or a hostile one (markup,
control characters, numbers past every limit, dates in year 1 or 9999, paths
that are folders, missing, under a file or binary), sometimes with an unknown
option or a stray argument. The database has customers, purchases and points.
An exit 1 must leave every table as it was.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from engine.cli import command_tree
from tests.factories import add_customer, add_purchase, utc
from tests.fuzz.hostile import FUZZ, HOSTILE_NUMBERS, HOSTILE_STRINGS, check_outcome, row_counts, run

ROOT = Path(__file__).resolve().parents[2]
LONG_RUNNING = {("serve",), ("scheduler",), ("demo",)}
PATHS = [
    "folder",
    "missing/x.csv",
    "a-file/x.csv",
    "empty.csv",
    "binary.bin",
    "customers.csv",
    "out.xlsx",
    "new.csv",
]
PLAUSIBLE: dict[str, list[str]] = {
    "campaign": ["winback", "churn_call"],
    "customer": ["C1", "C2", "c1@example.ru", "#1", "+79120000001"],
    "ref": ["C1", "c2@example.ru"],
    "source": ["C1", "shop"],
    "target": ["C2"],
    "points": ["10", "150"],
    "order": ["O-1", "SEED-1"],
    "amount": ["2400", "10.50"],
    "order_amount": ["1000"],
    "quantity": ["1", "2.5"],
    "at": ["2027-01-11T09:00", "2026-12-01", "2026-12-01T10:00:00+03:00"],
    "as_of": ["2026-12-31", "2027-01-11T09:00"],
    "since": ["2026-01-01"],
    "until": ["2027-12-31"],
    "days": ["1", "7"],
    "step": ["0", "1"],
    "period": ["2027-Q1", "2026-12", "current", "next", "2026-12-01..2026-12-31", "2026"],
    "periods": ["3", "12"],
    "format": ["table", "json", "csv", "xlsx", "html"],
    "programme": ["bonus"],
    "partner": ["cafe"],
    "reward": ["coffee"],
    "key": ["K-1", "K-2"],
    "reason": ["goodwill", "manual"],
    "name": ["large", "birthday", "lapsing_large", "till-1"],
    "names": ["winback"],
    "channel": ["email", "call", "sms"],
    "address": ["c1@example.ru", "+79120000001"],
    "scope": ["loyalty", "all", "events"],
    "segments": ["large,small", "large"],
    "set": ["channels.call.unit_cost=55", "campaigns.winback.contacts_per_client=2", "gold", "x=y"],
    "from": ["2026-Q4"],
    "to": ["2027-Q1"],
    "by": ["segment", "tier"],
    "limit": ["10"],
    "dialect": ["sqlite", "postgresql"],
    "code": ["5.1.1"],
    "variant": ["a"],
    "run": ["1"],
    "encoding": ["utf-8", "cp1251"],
    "delimiter": [";", ","],
    "date_format": ["%d.%m.%Y"],
    "map": ["Old=email", "Notes=ignore"],
    "centre": ["main"],
    "data": ['{"amount": 10}', "[]", "{"],
    "rev": ["HEAD", "HEAD~1"],
    "diff": ["HEAD"],
    "capture": ["H-1"],
    "void": ["H-1"],
    "expires": ["2027-06-30", "30d"],
    "actor": ["support"],
    "detail": ["asked"],
    "sheet": ["Sheet", "Clients"],
    "category": ["cosmetics"],
    "sku": ["A-1"],
    "event": ["birthday", "referral"],
}
PATH_PARAMETERS = {"out", "output", "rejects", "file", "folder", "dir"}


def _commands() -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        subcommands: dict[str, click.Command] | None = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        elif path not in LONG_RUNNING:
            found.append((path, command))

    walk(command_tree(), ())
    return found


COMMANDS = _commands()
hostile = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.sampled_from(
        [str(n) for n in HOSTILE_NUMBERS] + ["1e30", "-5", "NaN", "0001-01-01", "9999-12-31T23:59"]
    ),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=10),
)


def _key(parameter: click.Parameter) -> str:
    """An argument's name, an option's long name: ``--order-amount`` -> ``order_amount``."""
    if isinstance(parameter, click.Argument):
        return parameter.name or ""
    return parameter.opts[0].lstrip("-").replace("-", "_")


def _value(parameter: click.Parameter, workspace: Path, draw: st.DrawFn) -> str:
    name = _key(parameter)
    if name in PATH_PARAMETERS:
        return str(workspace / draw(st.sampled_from(PATHS)))
    plausible = PLAUSIBLE.get(name)
    if plausible and draw(st.booleans()):
        return draw(st.sampled_from(plausible))
    value = draw(hostile)
    return value.replace("\x00", "")  # a NUL cannot be in an argument of a real process


@st.composite
def invocations(draw: st.DrawFn, workspace: Path) -> list[str]:
    path, command = draw(st.sampled_from(COMMANDS))
    args = list(path)
    for parameter in command.params:
        if parameter.name == "help":
            continue
        if isinstance(parameter, click.Argument):
            if parameter.required or draw(st.booleans()):
                args.append(_value(parameter, workspace, draw))
            continue
        option = parameter.opts[0]
        flag = getattr(parameter, "is_flag", False)
        wanted = parameter.required or draw(st.integers(0, 2)) == 0
        if (path == ("worker",) and parameter.name == "until_idle") or (wanted and flag):
            args.append(option)
        elif wanted:
            args += [option, _value(parameter, workspace, draw)]
    if draw(st.integers(0, 9)) == 0:
        args.append(draw(st.sampled_from(["--nope", "extra", "-x", "--json=yes"])))
    # a value starting with "-" reads as an option to a real shell too: pass it as --opt=value sometimes
    return args


@pytest.fixture
def workspace(db: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example config in a folder (the cwd) and a database with customers, purchases and points."""
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    shutil.copytree(ROOT / "budgets", tmp_path / "budgets")
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "customers.csv").write_text("external_id;email\nC9;c9@example.ru\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_LINKS__SECRET", "fuzz-secret")
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    with db.begin() as connection:
        for n in (1, 2, 3):
            customer = add_customer(
                connection,
                external_id=f"C{n}",
                email=f"c{n}@example.ru",
                phone=f"+7912000000{n}",
                consent_email=True,
                first_name="Анна",
            )
            add_purchase(connection, customer, utc(2026, 9, n), "12000", category="cosmetics")
    config = str(tmp_path / "config.toml")
    assert (
        run("--config", config, "loyalty", "earn", "C1", "--order", "SEED-1", "--amount", "100000").code == 0
    )
    assert run("--config", config, "loyalty", "earn", "C2", "--order", "SEED-2", "--amount", "5000").code == 0
    yield tmp_path


@settings(FUZZ, max_examples=FUZZ.max_examples * 4)
@given(data=st.data())
def test_every_command_answers_generated_arguments_with_0_or_1(
    workspace: Path, db: Engine, data: st.DataObject
) -> None:
    args = data.draw(invocations(workspace))
    note(f"crm {' '.join(args)}")
    before = row_counts(db)
    outcome = run("--config", str(workspace / "config.toml"), *args)
    event(f"exit {outcome.code}")
    check_outcome(outcome)
    if outcome.code == 1:
        changed = {t: (n, row_counts(db)[t]) for t, n in before.items() if row_counts(db)[t] != n}
        assert not changed, f"crm {' '.join(args)} failed yet changed {changed}\n{outcome.err}"


@pytest.mark.parametrize(
    "config",
    ["folder", "missing/config.toml", "a-file/config.toml", "binary.bin"],
)
def test_a_config_path_that_is_not_a_config_is_named(workspace: Path, config: str) -> None:
    outcome = run("--config", str(workspace / config), "validate")
    check_outcome(outcome, names=[config.split("/")[0]])
    assert outcome.code == 1


def test_the_commands_cover_the_app() -> None:
    """The fuzz test reaches every command but the long-running ones."""
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"loyalty earn", "import customers", "budget", "report html", "worker"} <= names
    assert not names & {"serve", "scheduler", "demo"}
    unknown: set[str] = set()
    for _, command in COMMANDS:
        for parameter in command.params:
            name = _key(parameter)
            if name not in {*PLAUSIBLE, *PATH_PARAMETERS, "help"} and not getattr(
                parameter, "is_flag", False
            ):
                unknown.add(name)
    assert not unknown, f"give these a plausible value: {unknown}"
