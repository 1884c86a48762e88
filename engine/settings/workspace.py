"""A new workspace from the shipped example: config.toml, campaigns/ (with templates) and budgets/.

``crm init DIR`` in a folder with no config.toml starts the user there: the
example configuration (SQLite beside it, a Maildir outbox), two campaigns
with their templates and an approved budget, all of which ``crm validate``
accepts. Files that are already there are never overwritten.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.errors import OutputError

DEFAULTS = Path(__file__).parents[1] / "defaults"
"""The shipped example workspace (also what the demo starts from)."""

#: what a workspace is made of, as (path in DEFAULTS, path in the workspace)
EXAMPLE_FILES: tuple[tuple[str, str], ...] = (
    ("config.toml", "config.toml"),
    ("campaigns", "campaigns"),
    ("budgets/quarter.toml", "budgets/2027-Q1.toml"),
)


def create_workspace(folder: Path) -> list[Path]:
    """Copy the example workspace into ``folder`` (made if missing); the paths created.

    Nothing that exists is overwritten: a folder that already has campaigns/
    keeps them. A folder that cannot be written raises :class:`OutputError`.
    """
    created: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for source_name, target_name in EXAMPLE_FILES:
            source, target = DEFAULTS / source_name, folder / target_name
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copyfile(source, target)
            created.append(target)
    except OSError as exc:
        reason = f"cannot be written ({exc.strerror or exc}): choose a folder you may write in"
        raise OutputError(str(exc.filename or folder), reason, option="DIR") from exc
    return created
