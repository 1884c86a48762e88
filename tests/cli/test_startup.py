"""``crm`` starts fast: a command loads only what it uses.

Deterministic, not a timing: ``crm --help`` and ``crm validate`` run in a
fresh interpreter, which then lists the heavy libraries it imported; there
must be none (bench/cli.py measures the time). The table of top-level
commands that ``crm --help`` shows without importing them must match what
each area's module registers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.root import COMMANDS, area_group
from tests.cli.test_cli import ROOT

HEAVY = (
    "pandas",
    "numpy",
    "matplotlib",
    "openpyxl",
    "fastapi",
    "starlette",
    "uvicorn",
    "aiosmtplib",
    "httpx",
    "apscheduler",
    "scipy",
    "statsmodels",
    "css_inline",
)

PROBE = """
import json, sys
from engine.cli import main
code = main(sys.argv[1:])
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.stdin.read())))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _loaded(*args: str, cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        input=json.dumps(HEAVY),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    return list(result["loaded"])


@pytest.mark.parametrize(
    "args",
    [("--help",), ("validate",), ("validate", "--help"), ("plan", "--help"), ("loyalty", "--help")],
)
def test_commands_that_only_read_config_import_no_heavy_library(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    for name in ("config.toml",):
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    for folder in ("campaigns", "budgets"):
        target = tmp_path / folder
        target.mkdir()
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                destination = target / path.relative_to(ROOT / folder)
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(path.read_bytes())
    assert _loaded(*args, cwd=tmp_path) == []


def _first_sentence(text: str | None) -> str:
    words = " ".join((text or "").strip().split("\n\n")[0].split())
    found = re.match(r"(.+?\.)(\s|$)", words)
    return found.group(1) if found else words


def test_the_listed_commands_are_what_the_modules_register() -> None:
    registered: dict[str, tuple[str, str]] = {}
    for module in sorted({listed.module for listed in COMMANDS.values()}):
        for name, command in area_group(module).commands.items():
            registered[name] = (module, _first_sentence(command.help))
    listed = {name: (entry.module, entry.help) for name, entry in COMMANDS.items()}
    assert listed == registered


def test_a_command_says_how_long_the_whole_command_took() -> None:
    """``elapsed`` counts from the process's start, not from where a command's work began."""
    probe = "import time; time.sleep(0.6); from engine.cli.root import elapsed; print(elapsed())"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert float(done.stdout) >= 0.6


def test_a_shell_that_worked_before_it_exec_d_crm_is_not_counted() -> None:
    """``./scripts/demo`` installs, then execs ``crm demo``: the install is not the demo's time."""
    probe = "from engine.cli.root import elapsed; print(elapsed())"
    done = subprocess.run(
        ["bash", "-c", f'sleep 6; exec "{sys.executable}" -c "{probe}"'],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert float(done.stdout) < 6
