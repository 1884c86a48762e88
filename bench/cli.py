"""CLI start-up benchmark: ``crm`` commands against ``python -c pass``, in one run.

Every command is run ``--repeat`` times in a fresh interpreter (the
installed ``crm`` console script, as a user runs it) in a workspace copied
from the repository's example (config.toml, campaigns/, budgets/) with its
schema created; the baseline is ``python -c pass`` of the same interpreter.
For each it prints the median wall time, the ratio to the baseline and the
peak memory of the child (maximum resident set size).

The commands: ``crm --help`` (the start-up every command pays: the goal is
<= 0.25 s), ``crm validate``, ``crm segments --help``, ``crm plan --days 1``
and ``crm loyalty --help``.

Usage::

    python bench/cli.py
    python bench/cli.py --repeat 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CRM = Path(sys.executable).with_name("crm")

COMMANDS: list[tuple[str, list[str]]] = [
    ("crm --help", [str(CRM), "--help"]),
    ("crm validate", [str(CRM), "validate"]),
    ("crm segments --help", [str(CRM), "segments", "--help"]),
    ("crm loyalty --help", [str(CRM), "loyalty", "--help"]),
    ("crm plan --days 1", [str(CRM), "plan", "--days", "1"]),
]


def _workspace(folder: Path) -> None:
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    for name in ("campaigns", "budgets"):
        shutil.copytree(ROOT / name, folder / name)
    subprocess.run([str(CRM), "init"], cwd=folder, check=True, capture_output=True)


def _run(command: list[str], cwd: Path) -> float:
    """Wall seconds of one run."""
    start = time.perf_counter()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    done = subprocess.run(command, cwd=cwd, capture_output=True, env=environment)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-bench-cli-") as temporary:
        folder = Path(temporary)
        _workspace(folder)
        baseline_command = [sys.executable, "-c", "pass"]
        rows: list[tuple[str, float, int]] = []
        for name, command in [("python -c pass", baseline_command), *COMMANDS]:
            _run(command, folder)  # warm the file cache and .pyc files
            times = [_run(command, folder) for _ in range(args.repeat)]
            peak = _peak_of(command, folder)
            rows.append((name, statistics.median(times), peak))
    base = rows[0][1]
    print(f"{'command':24} {'median s':>9} {'x python -c pass':>17} {'peak MB':>8}")
    for name, seconds, peak in rows:
        print(f"{name:24} {seconds:9.3f} {seconds / base:17.1f} {peak / 1024:8.0f}")
    help_seconds = rows[1][1]
    verdict = "meets" if help_seconds <= 0.25 else "misses"
    print(f"\ncrm --help: {help_seconds:.3f} s {verdict} the goal of 0.25 s")


def _peak_of(command: list[str], cwd: Path) -> int:
    """The peak memory of one run of ``command`` in KB, measured in a fresh child of its own."""
    probe = (  # a child of a fresh process: RUSAGE_CHILDREN holds that one run only
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *command], cwd=cwd, capture_output=True, text=True)
    return int(done.stdout.strip() or 0)


if __name__ == "__main__":
    main()
