"""Customer import against real SQLite and PostgreSQL: files, normalisation, merges, rejects."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, func, select

from engine.customers.importing import ImportOptions, import_customers
from engine.errors import ImportFileError
from engine.models import Customer, CustomerSourceRecord, ImportBatch

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ATTRIBUTES = {"vip": "bool", "limit": "number", "card": "str", "children": "int", "since": "date"}


def customers(db: Engine) -> dict[str, dict[str, Any]]:
    """Every customer as a dict, by external id (or email when it has none)."""
    table = Customer.__table__  # type: ignore[attr-defined]
    with db.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).mappings().all()
    return {row["external_id"] or row["email"]: dict(row) for row in rows}


def count(db: Engine, model: Any) -> int:
    with db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model.__table__)).scalar_one())


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_cp1251_semicolons_russian_headers(import_db: Engine, import_fixtures: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(import_fixtures / "customers_cp1251.csv", tmp_path))
    summary = import_customers(import_db, path, source="shop", attributes=ATTRIBUTES, now=NOW)

    assert (summary.rows, summary.inserted, summary.rejected) == (3, 3, 0)
    assert (summary.encoding, summary.delimiter) == ("cp1251", ";")
    assert (summary.date_format, summary.decimal_comma) == ("%d.%m.%Y", True)
    assert set(summary.detected) == {"encoding", "delimiter", "date_format", "decimal_comma"}
    assert summary.rejects_path is None and not (tmp_path / "customers_cp1251.csv.rejects.csv").exists()
    rows = customers(import_db)
    ivan = rows["1001"]
    assert (ivan["last_name"], ivan["first_name"], ivan["middle_name"]) == ("Иванов", "Иван", "Иванович")
    assert ivan["phone"] == "+79161234567"
    assert ivan["email"] == "ivan.ivanov@mail.ru"
    assert ivan["birth_date"] == dt.date(1985, 3, 25)
    assert ivan["address"] == "Москва, ул. Ленина, 1"
    assert ivan["consent_email"] is True
    assert ivan["consent_email_at"] == dt.datetime(2024, 1, 15, 7, 30, tzinfo=UTC)  # 10:30 Moscow
    assert ivan["lifecycle_stage"] == "client"
    assert ivan["curator"] == "Петрова А."
    assert ivan["attributes"] == {"vip": True, "limit": 150000.5}
    assert ivan["source"] == "shop"
    assert ivan["created_at"] == ivan["updated_at"] == NOW
    maria = rows["1002"]
    assert maria["birth_date"] == dt.date(1990, 4, 3)  # dd.mm decided by 25.03.1985 elsewhere
    assert (maria["consent_email"], maria["consent_email_at"]) == (False, None)
    assert (maria["lifecycle_stage"], maria["attributes"]) == ("regular", {"vip": False, "limit": 1000})
    petr = rows["1003"]
    assert (petr["phone"], petr["email"], petr["address"]) == ("+79261112233", None, "Казань")
    assert petr["lifecycle_stage"] == "visitor"
    with import_db.connect() as connection:
        batch = connection.execute(select(ImportBatch.__table__)).mappings().one()  # type: ignore[attr-defined]
    assert (batch["kind"], batch["source"], batch["rows"], batch["inserted"]) == ("customers", "shop", 3, 3)
    assert batch["id"] == summary.import_id and batch["finished_at"] == NOW and len(batch["sha256"]) == 64


def test_utf8_bom_commas_iso_dates(import_db: Engine, import_fixtures: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(import_fixtures / "customers_utf8_bom.csv", tmp_path))
    summary = import_customers(import_db, path, source="web", now=NOW)

    assert (summary.inserted, summary.encoding, summary.delimiter) == (2, "utf-8-sig", ",")
    assert summary.date_format == "%Y-%m-%d" and summary.decimal_comma is None
    rows = customers(import_db)
    anna = rows["W-1"]
    assert (anna["email"], anna["phone"], anna["country"]) == ("anna@example.com", "+442079460958", "GB")
    assert (anna["timezone"], anna["language"], anna["birth_date"]) == (
        "Europe/London",
        "en",
        dt.date(1990, 12, 31),
    )
    assert anna["consent_sms"] is True
    assert anna["consent_sms_at"] == dt.datetime(2024, 6, 1, 11, 0, tzinfo=UTC)  # explicit +01:00
    assert anna["verified_at"] == dt.datetime(2025, 1, 10, 6, 0, tzinfo=UTC)  # no zone: business zone
    oleg = rows["W-2"]
    assert (oleg["country"], oleg["timezone"], oleg["language"]) == ("RU", "Europe/Moscow", "ru-RU")
    assert oleg["company"] == 'ООО "Ромашка", филиал'
    assert oleg["consent_sms"] is False and oleg["lifecycle_stage"] == "partner"


def test_xlsx_with_typed_cells(import_db: Engine, tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "Notes"
    notes.append(["not the data"])
    sheet = workbook.create_sheet("Clients")
    sheet.append([])
    sheet.append(
        ["ID", "Фамилия", "Имя", "Телефон", "E-mail", "Дата рождения", "verified_at", "attr_children"]
    )
    sheet.append(
        [
            501,
            "Орлова",
            "Анна",
            79161234567,
            "Anna@Shop.RU",
            dt.datetime(1991, 7, 8),
            dt.datetime(2025, 5, 1, 12, 0),
            2,
        ]
    )
    sheet.append([502.0, "Лис", "Ян", "+7 916 765-43-21", None, "28.07.1992", None, None])
    sheet.append([None, None, None, None, None, None, None, None])
    path = tmp_path / "clients.xlsx"
    workbook.save(path)

    summary = import_customers(
        import_db, path, source="crm", options=ImportOptions(sheet="Clients"), attributes=ATTRIBUTES, now=NOW
    )

    assert (summary.rows, summary.inserted, summary.rejected, summary.sheet) == (2, 2, 0, "Clients")
    assert summary.encoding is None and summary.delimiter is None
    rows = customers(import_db)
    assert rows["501"]["phone"] == "+79161234567" and rows["501"]["email"] == "anna@shop.ru"
    assert rows["501"]["birth_date"] == dt.date(1991, 7, 8)
    assert rows["501"]["verified_at"] == dt.datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    assert rows["501"]["attributes"] == {"children": 2}
    assert rows["502"]["birth_date"] == dt.date(1992, 7, 28) and rows["502"]["phone"] == "+79167654321"
    with pytest.raises(ImportFileError, match=r"no sheet 'Other'.*Notes, Clients"):
        import_customers(import_db, path, source="crm", options=ImportOptions(sheet="Other"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty"),
        ("garbage.bin", None, "binary|encoding"),
        ("blank.csv", b"\r\n  \r\n\r\n", "no header"),
        ("broken.xlsx", b"PK\x03\x04this is not a zip archive at all", "XLSX"),
        ("latin.csv", "id;name\n1;Ünïcödé Ørsted façade\n".encode("latin-1"), "--encoding cp1251"),
        ("missing.csv", None, "no such file"),
    ],
)
def test_unreadable_files_change_nothing(
    import_db: Engine, import_fixtures: Path, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if name == "garbage.bin":
        shutil.copy(import_fixtures / name, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message) as error:
        import_customers(import_db, path, source="shop")
    assert str(path) in str(error.value)
    assert count(import_db, Customer) == 0 and count(import_db, ImportBatch) == 0
    assert not list(tmp_path.glob("*.rejects.csv"))


def test_bad_rows_go_to_the_rejects_file(import_db: Engine, import_fixtures: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(import_fixtures / "customers_bad_rows.csv", tmp_path))
    summary = import_customers(import_db, path, source="shop", now=NOW)

    assert (summary.rows, summary.inserted, summary.rejected) == (11, 2, 9)
    assert summary.rejects_path == tmp_path / "customers_bad_rows.csv.rejects.csv"
    rejects = read_rejects(summary.rejects_path)
    reasons = {int(row["line"]): row["reason"] for row in rejects}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 13]  # line 11-12 is one good row over two lines
    assert reasons[3].startswith("email: invalid email 'not-an-email'")
    assert reasons[4].startswith("birth_date: not a valid date '31.02.1990'")
    assert reasons[5].startswith("timezone: unknown time zone 'Mars/Base'")
    assert reasons[6].startswith("phone: invalid phone '12345'")
    assert reasons[7].startswith(
        "lifecycle_stage: unknown value 'vip' (known: visitor, client, regular, partner)"
    )
    assert reasons[8] == "the row has 8 cells, the header has 7"
    assert reasons[9] == "the row has 5 cells, the header has 7"
    assert "email: invalid email 'x@'" in reasons[10] and "; phone: invalid phone 'abc'" in reasons[10]
    assert "nothing identifies the customer" in reasons[13]
    first = rejects[0]
    assert (first["external_id"], first["email"], first["first_name"]) == ("B2", "not-an-email", "Bad email")
    assert list(first)[:3] == ["line", "reason", "external_id"]
    rows = customers(import_db)
    assert set(rows) == {"B1", "B10"}
    assert rows["B10"]["first_name"] == "Good Two lines" and rows["B10"]["birth_date"] == dt.date(1981, 2, 1)
    with import_db.connect() as connection:
        batch = connection.execute(select(ImportBatch.__table__)).mappings().one()  # type: ignore[attr-defined]
    assert (batch["rejected"], batch["rejects_path"]) == (9, str(summary.rejects_path))

    given = tmp_path / "out" / "bad.csv"
    again = import_customers(import_db, path, source="shop", options=ImportOptions(rejects_path=given))
    assert again.rejects_path == given and len(read_rejects(given)) == 9 and again.unchanged == 2


def test_reimport_changes_nothing(import_db: Engine, import_fixtures: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(import_fixtures / "customers_cp1251.csv", tmp_path))
    import_customers(import_db, path, source="shop", attributes=ATTRIBUTES, now=NOW)
    before = customers(import_db)
    later = NOW + dt.timedelta(days=3)

    summary = import_customers(import_db, path, source="shop", attributes=ATTRIBUTES, now=later)

    assert (summary.rows, summary.inserted, summary.updated, summary.merged) == (3, 0, 0, 0)
    assert summary.unchanged == 3
    assert customers(import_db) == before  # updated_at untouched
    assert count(import_db, CustomerSourceRecord) == 3 and count(import_db, ImportBatch) == 2
    with import_db.connect() as connection:
        seen = connection.execute(select(CustomerSourceRecord.__table__.c.last_seen_at)).scalars().all()  # type: ignore[attr-defined]
    assert set(seen) == {later}


def test_update_only_given_fields(import_db: Engine, tmp_path: Path) -> None:
    first = write(
        tmp_path / "a.csv", "id;email;phone;first_name;attr.card\n1;a@shop.ru;+79161234567;Аня;C-1\n"
    )
    import_customers(import_db, first, source="shop", attributes=ATTRIBUTES, now=NOW)
    second = write(tmp_path / "b.csv", "id;email;phone;first_name;attr.vip\n1;;;Анна;да\n")
    later = NOW + dt.timedelta(hours=1)

    summary = import_customers(import_db, second, source="shop", attributes=ATTRIBUTES, now=later)

    assert (summary.updated, summary.inserted) == (1, 0)
    row = customers(import_db)["1"]
    assert (row["email"], row["phone"], row["first_name"]) == ("a@shop.ru", "+79161234567", "Анна")
    assert row["attributes"] == {"card": "C-1", "vip": True}
    assert (row["created_at"], row["updated_at"]) == (NOW, later)


def test_duplicates_within_a_file(import_db: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path / "dups.csv",
        "external_id,email,phone,first_name,company\n"
        "A1,one@shop.ru,,Ann,\n"
        "A1,,+79160000001,,\n"  # same external id: adds the phone
        ",ONE@shop.ru,,,Acme\n"  # same email, other case
        ",,8 916 000-00-01,Annie,\n"  # same phone in national form
        "A2,two@shop.ru,,Bob,\n",
    )
    summary = import_customers(import_db, path, source="shop", now=NOW)

    assert (summary.inserted, summary.merged, summary.updated, summary.unchanged) == (2, 3, 0, 0)
    rows = customers(import_db)
    assert set(rows) == {"A1", "A2"}
    assert rows["A1"]["phone"] == "+79160000001" and rows["A1"]["company"] == "Acme"
    assert rows["A1"]["first_name"] == "Annie"

    again = import_customers(import_db, path, source="shop", now=NOW + dt.timedelta(days=1))
    assert (again.unchanged, again.inserted, again.updated, again.merged) == (5, 0, 0, 0)
    assert customers(import_db) == rows


def test_merge_across_sources_by_external_id_then_email_then_phone(import_db: Engine, tmp_path: Path) -> None:
    shop = write(
        tmp_path / "shop.csv",
        "external_id;email;phone;first_name\n"
        "S1;s1@shop.ru;+79160000001;Сергей\n"
        "S2;s2@shop.ru;+79160000002;Светлана\n"
        "S3;s3@shop.ru;+79160000003;Семён\n",
    )
    import_customers(import_db, shop, source="shop", now=NOW)
    loyalty = write(
        tmp_path / "loyalty.csv",
        "card;email;phone;last_name\n"
        "L1;S2@SHOP.RU;;Смирнова\n"  # email of S2
        "L2;;8 (916) 000-00-03;Соколов\n"  # phone of S3
        "L3;new@shop.ru;;Новиков\n",
        # no match: a new customer
    )
    later = NOW + dt.timedelta(hours=2)
    summary = import_customers(
        import_db,
        loyalty,
        source="loyalty",
        options=ImportOptions(column_map={"card": "external_id"}),
        now=later,
    )
    assert (summary.merged, summary.inserted, summary.updated) == (2, 1, 0)
    rows = customers(import_db)
    assert set(rows) == {"S1", "S2", "S3", "L3"}  # an existing external id is kept
    assert (rows["S2"]["last_name"], rows["S2"]["source"], rows["S2"]["updated_at"]) == (
        "Смирнова",
        "shop",
        later,
    )
    assert rows["S3"]["last_name"] == "Соколов"
    assert rows["L3"]["source"] == "loyalty"
    with import_db.connect() as connection:
        table = CustomerSourceRecord.__table__  # type: ignore[attr-defined]
        records = connection.execute(
            select(table.c.source, table.c.source_key, table.c.data).order_by(table.c.id)
        ).all()
    assert [(r.source, r.source_key) for r in records][3:] == [
        ("loyalty", "L1"),
        ("loyalty", "L2"),
        ("loyalty", "L3"),
    ]
    assert records[3].data == {"external_id": "L1", "email": "s2@shop.ru", "last_name": "Смирнова"}

    # the shop's own file again: it still names S1..S3 by external id, nothing changes
    again = import_customers(import_db, shop, source="shop", now=later)
    assert again.unchanged == 3
    # the loyalty file again: matched through its own source records
    again = import_customers(
        import_db,
        loyalty,
        source="loyalty",
        options=ImportOptions(column_map={"card": "external_id"}),
        now=later,
    )
    assert (again.unchanged, again.merged, again.inserted) == (3, 0, 0)


def test_ambiguous_dates_are_refused(import_db: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "dates.csv", "id;birth_date\n1;03/04/2025\n2;05/06/1990\n")
    with pytest.raises(ImportFileError, match=r"ambiguous dates.*'03/04/2025'.*--date-format"):
        import_customers(import_db, path, source="shop")
    assert count(import_db, Customer) == 0

    summary = import_customers(import_db, path, source="shop", options=ImportOptions(date_format="%m/%d/%Y"))
    assert summary.date_format == "%m/%d/%Y" and "date_format" not in summary.detected
    assert customers(import_db)["1"]["birth_date"] == dt.date(2025, 3, 4)


def test_dotted_dates_are_day_first(import_db: Engine, tmp_path: Path) -> None:
    """dd.mm.yyyy is how every locale that writes dots writes dates (Russian Excel saves 01.12.2026)."""
    path = write(tmp_path / "dates.csv", "id;birth_date\n7;03.04.2025\n8;05.06.1990\n")
    summary = import_customers(import_db, path, source="shop")
    assert summary.date_format == "%d.%m.%Y"
    assert customers(import_db)["7"]["birth_date"] == dt.date(2025, 4, 3)

    mixed = write(tmp_path / "mixed.csv", "id;birth_date\n1;25.04.2025\n2;04.25.1990\n")
    with pytest.raises(ImportFileError, match=r"dates disagree.*line 2.*line 3"):
        import_customers(import_db, mixed, source="shop")


def test_columns_unknown_mapped_ignored_and_attributes(import_db: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "cols.csv", "ID;Emial;Notes;attr.vip\n1;a@shop.ru;x;да\n")
    with pytest.raises(ImportFileError, match=r"unknown columns: 'Emial' \(did you mean email\?\), 'Notes'"):
        import_customers(import_db, path, source="shop", attributes={"vip": "bool"})
    with pytest.raises(ImportFileError, match=r"undeclared attribute columns: 'attr.vip' \(declared: card\)"):
        import_customers(
            import_db,
            path,
            source="shop",
            attributes={"card": "str"},
            options=ImportOptions(ignore_unknown=True),
        )

    summary = import_customers(
        import_db,
        path,
        source="shop",
        attributes={"vip": "bool"},
        options=ImportOptions(column_map={"Emial": "email", "Notes": "ignore"}),
    )
    assert summary.inserted == 1
    assert customers(import_db)["1"]["email"] == "a@shop.ru"
    assert customers(import_db)["1"]["attributes"] == {"vip": True}


def test_booleans_and_attribute_types(import_db: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path / "flags.csv",
        "id;consent_call;consent_post;attr_vip;attr_children;attr_limit;attr_since\n"
        "1;+;-;Y;3;1 500,5;01.02.2024\n"
        "2;нет;ДА;false;2;10;13.02.2024\n"
        "3;maybe;;;2,5;;\n",
    )
    summary = import_customers(import_db, path, source="shop", attributes=ATTRIBUTES, now=NOW)
    assert (summary.inserted, summary.rejected) == (2, 1)
    rows = customers(import_db)
    assert (rows["1"]["consent_call"], rows["1"]["consent_call_at"], rows["1"]["consent_post"]) == (
        True,
        NOW,
        False,
    )
    assert rows["1"]["attributes"] == {"vip": True, "children": 3, "limit": 1500.5, "since": "2024-02-01"}
    assert (rows["2"]["consent_post"], rows["2"]["attributes"]["vip"]) == (True, False)
    reason = read_rejects(summary.rejects_path)[0]["reason"]  # type: ignore[arg-type]
    assert (
        "consent_call: not a yes/no value: 'maybe'" in reason
        and "attr.children: not a whole number" in reason
    )


def test_failure_midway_rolls_everything_back(
    import_db: Engine, import_fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = Path(shutil.copy(import_fixtures / "customers_bad_rows.csv", tmp_path))
    from engine.customers.importing import pipeline

    def crash(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "finish_batch", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        import_customers(import_db, path, source="shop")
    assert count(import_db, Customer) == 0 and count(import_db, ImportBatch) == 0
    assert count(import_db, CustomerSourceRecord) == 0
    assert [p.name for p in tmp_path.iterdir() if "rejects" in p.name or p.suffix == ".part"] == []


def test_rejects_file_cannot_carry_spreadsheet_formulas(import_db: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path / "evil.csv",
        'external_id,email,first_name\nE1,=HYPERLINK("http://x"),@SUM(A1)\nE2,ok@example.ru,-2+3\n',
    )
    summary = import_customers(import_db, path, source="web")
    assert (summary.inserted, summary.rejected) == (1, 1)
    assert summary.rejects_path is not None
    [row] = read_rejects(summary.rejects_path)
    assert row["email"] == '\'=HYPERLINK("http://x")' and row["first_name"] == "'@SUM(A1)"
    # good rows keep their text as given: only the rejects file is guarded
    assert customers(import_db)["E2"]["first_name"] == "-2+3"


def test_the_city_is_a_field_of_its_own_and_part_of_the_postal_address(
    import_db: Engine, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "cities.csv",
        "Код;Город;Адрес\nK-1;Казань;ул. Баумана, 1\nK-2;Москва;Москва, Тверская, 7\nK-3;Тула;\n",
    )
    summary = import_customers(import_db, path, source="shop", now=NOW)
    assert summary.inserted == 3
    rows = customers(import_db)
    assert [(rows[k]["city"], rows[k]["address"]) for k in ("K-1", "K-2", "K-3")] == [
        ("Казань", "Казань, ул. Баумана, 1"),
        ("Москва", "Москва, Тверская, 7"),
        ("Тула", "Тула"),
    ]
