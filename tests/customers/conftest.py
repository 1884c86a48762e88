"""Fixtures of the import tests: ``import_db`` is the shared ``db`` (real SQLite file, real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"


@pytest.fixture
def import_db(db: Engine) -> Engine:
    """An engine on an empty crm-engine schema: SQLite file or PostgreSQL (see tests/conftest.py)."""
    return db


@pytest.fixture
def import_fixtures() -> Path:
    """The folder of the committed sample import files."""
    return FIXTURES
