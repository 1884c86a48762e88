"""`crm demo`: a fresh SQLite workspace, refreshed, printed; run again, fresh again."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from engine.catalogue import CUSTOMER, MEMBERSHIP
from engine.config import load_config
from engine.db import make_engine
from tests.test_cli import crm


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
    engine.dispose()
    assert large == members["large"]

    again = crm("demo", "--dir", str(folder), "--customers", "1000", "--purchases", "5000", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    engine = make_engine(config.database_url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(CUSTOMER)).scalar_one() == 1060
    engine.dispose()
