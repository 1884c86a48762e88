"""The configuration at a git revision: config.toml and the folders beside it, as they were then.

``crm plan --diff`` and ``crm budget --diff`` take config.toml and
``campaigns/`` (templates included) from a revision with ``git archive`` into
a temporary folder, load them there and compare with the working tree.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from engine.errors import ConfigFileError


def _git(folder: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, check=True)
    except FileNotFoundError as exc:
        raise ConfigFileError(str(folder), "git is not installed: --diff needs it") from exc
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigFileError(
            str(folder), f"git {' '.join(args)}: {message[-1] if message else exc}"
        ) from exc
    return done.stdout


def checkout_config(
    config_path: Path, rev: str, target: Path, folders: tuple[str, ...] = ("campaigns",)
) -> Path:
    """config.toml and ``folders`` beside it at ``rev`` into ``target``; the config file's path there."""
    folder = config_path.resolve().parent
    prefix = _git(folder, "rev-parse", "--show-prefix").decode().strip()
    wanted = [f"{prefix}{config_path.name}", *(f"{prefix}{name}" for name in folders)]
    listed = _git(folder, "ls-tree", "-r", "--name-only", rev, "--", *wanted).decode().split()
    if f"{prefix}{config_path.name}" not in listed:
        raise ConfigFileError(str(config_path), f"not in git at {rev}: nothing to compare with")
    archive = _git(
        folder,
        "archive",
        "--format=tar",
        rev,
        "--",
        *[w for w in wanted if any(f.startswith(w) for f in listed)],
    )
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / prefix / config_path.name
