"""Reading and normalising cells, without a database."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.customers.importing.columns import CUSTOMER_FIELDS, header_scorer
from engine.customers.importing.normalise import (
    DateReader,
    NumberReader,
    parse_bool,
    parse_email,
    parse_phone,
)
from engine.customers.importing.reader import open_table
from engine.errors import FieldError, ImportFileError


@pytest.mark.parametrize(
    ("text", "value"),
    [("да", True), ("НЕТ", False), ("Yes", True), ("no", False), ("true", True), ("False", False),
     ("1", True), ("0", False), ("y", True), ("N", False), ("+", True), ("-", False)],
)  # fmt: skip
def test_booleans(text: str, value: bool) -> None:
    assert parse_bool(text) is value


@pytest.mark.parametrize(
    ("text", "comma", "value"),
    [("1 234,50", True, "1234.50"), ("1\u00a0234,50", True, "1234.50"), ("1\u202f234", True, "1234"),
     ("1.234.567,8", True, "1234567.8"), ("-12,5", True, "-12.5"), ("1,234.50", False, "1234.50"),
     ("1234.5", False, "1234.5"), ("1 000 000", False, "1000000")],
)  # fmt: skip
def test_numbers(text: str, comma: bool, value: str) -> None:
    assert NumberReader(comma).decimal(text) == Decimal(value)


@pytest.mark.parametrize(
    ("text", "comma"), [("12,5", False), ("1 23,5", True), ("abc", True), ("1,2,3", True)]
)
def test_bad_numbers(text: str, comma: bool) -> None:
    with pytest.raises(FieldError):
        NumberReader(comma).decimal(text)


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2))
def test_numbers_round_trip_with_russian_grouping(value: Decimal) -> None:
    text = f"{value:,.2f}".replace(",", "\u00a0").replace(".", ",")
    assert NumberReader(True).decimal(text) == value


def test_phones_and_emails() -> None:
    assert parse_phone("8 (916) 123-45-67", "RU") == "+79161234567"
    assert parse_phone("+7 916 1234567", "US") == "+79161234567"
    assert parse_email(" Ivan.Petrov@Mail.RU ") == "ivan.petrov@mail.ru"
    assert parse_email("Иван@почта.рф") == "иван@почта.рф"
    for bad in ("a@b", "a@@b.ru", "a@localhost", "user@site.test"):
        with pytest.raises(FieldError):
            parse_email(bad)


def test_dates_in_the_business_zone() -> None:
    reader = DateReader(order="dmy", date_format=None, timezone="Europe/Moscow")
    assert reader.date("05.03.2025") == dt.date(2025, 3, 5)
    assert reader.datetime("05.03.2025 14:20") == dt.datetime(2025, 3, 5, 11, 20, tzinfo=dt.UTC)
    assert reader.datetime("2025-03-05T14:20:00Z") == dt.datetime(2025, 3, 5, 14, 20, tzinfo=dt.UTC)
    custom = DateReader(order=None, date_format="%Y/%m/%d", timezone="Asia/Vladivostok")
    assert custom.datetime("2025/03/05 10:00") == dt.datetime(2025, 3, 5, 0, 0, tzinfo=dt.UTC)
    with pytest.raises(FieldError, match=r"expected dd\.mm\.yyyy"):
        reader.date("30.02.2025")


def test_delimiter_and_encoding_detection(tmp_path: Path) -> None:
    score = header_scorer(CUSTOMER_FIELDS)
    path = tmp_path / "a.csv"
    path.write_bytes("Фамилия;Имя;Сумма\r\nИванов;Иван;1,5\r\n".encode("cp1251"))
    table = open_table(path, encoding=None, delimiter=None, sheet=None, header_score=score)
    assert (table.encoding, table.delimiter, table.header) == ("cp1251", ";", ["Фамилия", "Имя", "Сумма"])
    path.write_bytes(b"email|phone\ta\n")
    with pytest.raises(ImportFileError, match="delimiter"):
        open_table(path, encoding=None, delimiter=None, sheet=None, header_score=lambda _h: 0)
    path.write_bytes("Фамилия;Имя\nИванов;Иван\n".encode("koi8-r"))
    with pytest.raises(ImportFileError, match="encoding"):
        open_table(path, encoding=None, delimiter=None, sheet=None, header_score=score)


def test_paths_that_are_no_file_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder, a pipe, a relative path that leads nowhere: each said so, before anything is read."""
    score = header_scorer(CUSTOMER_FIELDS)

    def reading(path: Path) -> str:
        with pytest.raises(ImportFileError) as refused:
            open_table(path, encoding=None, delimiter=None, sheet=None, header_score=score)
        return str(refused.value)

    assert reading(tmp_path) == f"{tmp_path}: is a folder, not a file: name the file to import"
    pipe = tmp_path / "export.csv"
    os.mkfifo(pipe)
    assert "not a regular file" in reading(pipe)  # and nothing blocks waiting for a writer
    monkeypatch.chdir(tmp_path)
    assert reading(Path("clients.csv")) == (
        f"clients.csv: no such file (relative to the current folder {tmp_path}): check the path"
    )
    assert reading(tmp_path / "export.csv" / "x.csv").endswith("no such file: check the path")
