"""``crm import responses`` on SQLite and PostgreSQL: codes per centre, links, rejects, the contact policy."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from engine.campaigns.loading import load_campaigns
from engine.customers.importing import ImportOptions
from engine.errors import ConfigValueError, ImportFileError
from engine.models import outbox as states
from engine.responses.response_import import ResponseImportSummary, import_responses
from engine.runs.runner import start_run
from engine.segments.membership import refresh_segments
from tests.cli.test_cli import crm, crm_main
from tests.factories import CUSTOMER, utc
from tests.outbox.factories import OUTBOX
from tests.responses.workspace import (
    FIXTURES,
    RESPONSE,
    SUPPRESSION,
    add_contacted,
    msk,
    outbox_ids,
    responses,
    setup,
    suppressions,
)

NOW = utc(2026, 12, 20, 9)
EMAILS = {
    f"C{n}": f"{name}@mail.example"
    for n, name in enumerate(("anna", "boris", "vera", "gleb", "dina", "egor"), 1)
}


def run_import(db: Engine, config: Any, path: Path, **kwargs: Any) -> ResponseImportSummary:
    return import_responses(
        db,
        path,
        settings=config.settings.responses,
        campaigns={"note", "calls"},
        timezone="Europe/Moscow",
        now=NOW,
        **kwargs,
    )


def rejects_of(summary: ResponseImportSummary) -> dict[int, str]:
    assert summary.rejects_path is not None
    with summary.rejects_path.open(encoding="utf-8", newline="") as handle:
        return {int(row["line"]): row["reason"] for row in csv.DictReader(handle)}


def test_call_outcomes_scores_and_replies_go_in_linked_bad_rows_are_rejected_and_a_second_import_adds_nothing(
    db: Engine, write_config: Any, tmp_path: Path
) -> None:
    config = setup(write_config, tmp_path)
    run_id, ids = add_contacted(db, EMAILS)
    rows = outbox_ids(db, run_id)
    path = Path(shutil.copy(FIXTURES / "responses" / "calls_main.csv", tmp_path))

    summary = run_import(db, config, path, centre="main")

    assert (summary.rows, summary.inserted, summary.unchanged, summary.rejected) == (12, 6, 1, 5)
    assert (summary.responses, summary.already, summary.linked) == (7, 2, 7)
    assert summary.by_kind == {"reached": 2, "satisfaction": 2, "wrong_number": 1, "refused": 1, "reply": 1}
    assert (summary.consent_withdrawn, summary.suppressed) == (1, 3)
    assert (summary.date_format, summary.delimiter) == ("%d.%m.%Y", ";")
    reasons = rejects_of(summary)
    assert sorted(reasons) == [8, 9, 10, 11, 12]
    assert reasons[8] == "customer: unknown customer (external_id 'C9')"
    assert reasons[9].startswith(
        "outcome: unknown code '99' for call centre 'main' (its codes: 01, 02, 03, 04"
    )
    assert "outcomes: reached, no_answer, callback" in reasons[9]
    assert reasons[10] == "score: 9 is out of range (1 to 5: [responses].satisfaction_scale)"
    assert reasons[11] == "campaign: unknown campaign 'nope' (known: calls, note)"
    assert reasons[12] == "centre: unknown call centre 'ghost' (known: main, other)"

    got = {(r["customer_id"], r["kind"]): r for r in responses(db)}
    c = ids
    reached = got[(c["C1"], "reached")]
    assert (reached["code"], reached["occurred_at"], reached["source"]) == ("01", msk(8, 14), "responses")
    assert (reached["outbox_id"], reached["campaign"]) == (rows[(c["C1"], 1)], "note")
    assert reached["channel"] == "call"
    assert reached["import_id"] == summary.import_id
    score = got[(c["C1"], "satisfaction")]
    assert (score["score"], score["outbox_id"], score["channel"]) == (5, rows[(c["C1"], 1)], "call")
    wrong = got[(c["C2"], "wrong_number")]  # no campaign in the row: the latest call before it
    assert (wrong["code"], wrong["outbox_id"], wrong["campaign"]) == ("07", rows[(c["C2"], 1)], "note")
    assert wrong["detail"] == "note: номер принадлежит другому человеку"
    assert got[(c["C3"], "refused")]["outbox_id"] == rows[(c["C3"], 1)]
    reply = got[(c["C4"], "reply")]  # a bare date: midnight in Moscow
    assert (reply["occurred_at"], reply["detail"]) == (msk(9, 0), "Спасибо, перезвоните в январе")
    assert (reply["outbox_id"], reply["channel"]) == (
        rows[(c["C4"], 1)],
        "call",
    )  # latest contact, any channel
    survey = got[(c["C5"], "satisfaction")]
    assert (survey["score"], survey["code"], survey["campaign"]) == (4, None, "note")
    other = got[(c["C6"], "reached")]  # the row's own centre, its code in another case
    assert (other["code"], other["outbox_id"]) == ("OK", rows[(c["C6"], 1)])

    # wrong number: the number is suppressed for calls and SMS, not linked to the customer, who keeps consent
    # refused: call consent withdrawn as of the call, the number suppressed for calls, linked to the customer
    assert suppressions(db) == {
        ("call", "+79160000002", "wrong_number", None),
        ("sms", "+79160000002", "wrong_number", None),
        ("call", "+79160000003", "refused", c["C3"]),
    }
    with db.connect() as connection:
        consent = {
            row.id: (row.consent_call, row.consent_call_at, row.consent_sms)
            for row in connection.execute(select(CUSTOMER).where(CUSTOMER.c.id.in_([c["C2"], c["C3"]])))
        }
    assert consent[c["C2"]] == (True, utc(2025, 1, 1), True)
    assert consent[c["C3"]] == (False, msk(8, 14, 20), True)

    again = run_import(db, config, path, centre="main")
    assert (again.rows, again.inserted, again.unchanged, again.rejected) == (12, 0, 7, 5)
    assert (again.responses, again.already, again.consent_withdrawn, again.suppressed) == (0, 9, 0, 0)
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(RESPONSE)).scalar_one() == 7
        assert connection.execute(select(func.count()).select_from(SUPPRESSION)).scalar_one() == 3

    # the next campaign with calls leaves out the wrong number and the customer who refused
    refresh_segments(db, config, now=utc(2027, 1, 11, 9))
    calls = load_campaigns(config)["calls"]
    later = start_run(db, config, calls, scheduled_for=utc(2027, 1, 11, 9), now=utc(2027, 1, 11, 9))
    with db.connect() as connection:
        query = select(OUTBOX.c.customer_id, OUTBOX.c.state).where(OUTBOX.c.run_id == later.run_id)
        found = dict(connection.execute(query).all())
    assert found[c["C2"]] == states.SUPPRESSED
    assert found[c["C3"]] == states.NO_CONSENT
    assert {found[c[key]] for key in ("C1", "C4", "C5", "C6")} == {states.QUEUED}


def test_the_same_file_under_another_source_or_the_default_records_nothing_new(
    db: Engine, write_config: Any, tmp_path: Path
) -> None:
    config = setup(write_config, tmp_path)
    add_contacted(db, EMAILS)
    path = Path(shutil.copy(FIXTURES / "responses" / "calls_main.csv", tmp_path))

    def counts() -> dict[str, int]:
        with db.connect() as connection:
            query = select(RESPONSE.c.kind, func.count()).group_by(RESPONSE.c.kind)
            return {str(kind): int(n) for kind, n in connection.execute(query).all()}

    first = run_import(db, config, path, centre="main", source="call_centre")
    assert first.responses == 7
    before = counts()
    assert before["satisfaction"] == 2
    # the same rows are the same responses, whatever the import says the file is
    for source in ("main-centre-export", None):
        again = run_import(db, config, path, centre="main", **({"source": source} if source else {}))
        assert (again.inserted, again.unchanged, again.responses, again.already) == (0, 7, 0, 9)
        assert (again.consent_withdrawn, again.suppressed) == (0, 0)
        assert counts() == before
    with db.connect() as connection:
        assert set(connection.execute(select(RESPONSE.c.source).distinct()).scalars()) == {"call_centre"}
        assert connection.execute(select(func.count()).select_from(SUPPRESSION)).scalar_one() == 3


def test_a_returned_call_list_links_each_outcome_to_its_own_call(
    db: Engine, write_config: Any, tmp_path: Path
) -> None:
    config = setup(write_config, tmp_path)
    run_id, ids = add_contacted(db, {"C1": "anna@mail.example", "C2": "boris@mail.example"})
    rows = outbox_ids(db, run_id)
    c1, c2 = ids["C1"], ids["C2"]
    path = tmp_path / "calls-returned.csv"
    header = (
        "key,customer_id,name,phone,phone_national,calling_window,timezone,segment,campaign,script,"
        "last_purchases,loyalty_balance,curator,result,call time"
    )
    path.write_text(
        f"{header}\n"
        f"{run_id}:{c1}:1,{c1},C1,+79160000001,8 (916) 000-00-01,10:00-19:00,Europe/Moscow,everyone,note,,,,"
        ",no answer,2026-12-08T15:00:00+03:00\n"
        f"{run_id}:{c2}:1,{c2},C2,+79160000002,8 (916) 000-00-02,10:00-19:00,Europe/Moscow,everyone,note,,,,"
        ",Interested,2026-12-08 15:30\n"
        f"{run_id}:{c2}:7,{c2},C2,+79160000002,,,,,note,,,,,reached,2026-12-08 15:40\n"
        f"12:34,{c2},C2,+79160000002,,,,,note,,,,,reached,2026-12-08 15:50\n",
        encoding="utf-8",
    )
    summary = run_import(db, config, path)
    assert (summary.rows, summary.inserted, summary.rejected) == (4, 2, 2)
    assert rejects_of(summary) == {
        4: f"key: no contact with key '{run_id}:{c2}:7'",
        5: "key: not a contact key '12:34' (expected run:customer:step, as in call lists)",
    }
    got = {(r["customer_id"], r["kind"]): r for r in responses(db)}
    assert got[(c1, "no_answer")]["outbox_id"] == rows[(c1, 1)]
    assert got[(c1, "no_answer")]["occurred_at"] == msk(8, 15)
    assert (got[(c2, "interested")]["outbox_id"], got[(c2, "interested")]["code"]) == (
        rows[(c2, 1)],
        "Interested",
    )


def test_files_that_cannot_be_imported_change_nothing(db: Engine, write_config: Any, tmp_path: Path) -> None:
    config = setup(write_config, tmp_path)
    add_contacted(db, {"C1": "anna@mail.example"})
    path = tmp_path / "calls.csv"
    path.write_text("customer;called at;code\nC1;2026-12-08 15:00;01\n", encoding="utf-8")
    with pytest.raises(ConfigValueError, match=r"unknown call centre 'ghost' \(known: main, other\)"):
        run_import(db, config, path, centre="ghost")
    without_codes = run_import(db, config, path)  # no centre: only outcome names
    assert without_codes.rejected == 1
    assert "a call centre's own codes need --centre or a centre column" in rejects_of(without_codes)[2]
    path.write_text("customer;code\nC1;01\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="missing required columns: occurred_at"):
        run_import(db, config, path, centre="main")
    path.write_text("customer;called at;comment\nC1;2026-12-08 15:00;hello\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"something to record \(outcome, score or reply\)"):
        run_import(db, config, path, centre="main", options=ImportOptions())
    assert responses(db) == []


def test_a_consent_given_after_the_refusal_wins(db: Engine, write_config: Any, tmp_path: Path) -> None:
    config = setup(write_config, tmp_path)
    _run_id, ids = add_contacted(db, {"C1": "anna@mail.example"})
    with db.begin() as connection:
        connection.execute(
            CUSTOMER.update().where(CUSTOMER.c.id == ids["C1"]).values(consent_call_at=msk(10, 9))
        )
    path = tmp_path / "calls.csv"
    path.write_text("customer;called at;code\nC1;08.12.2026 15:00;06\n", encoding="utf-8")
    summary = run_import(db, config, path, centre="main", options=ImportOptions(date_format="%d.%m.%Y"))
    assert (summary.responses, summary.consent_withdrawn, summary.suppressed) == (1, 0, 0)
    assert suppressions(db) == set()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the command line: one database is enough
def test_crm_import_responses(
    db: Engine, write_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(write_config, tmp_path)
    add_contacted(db, EMAILS)
    path = Path(shutil.copy(FIXTURES / "responses" / "calls_main.csv", tmp_path))
    done = crm("import", "responses", str(path), "--centre", "main", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["inserted"], summary["rejected"], summary["responses"]) == (12, 6, 5, 7)
    assert summary["rejects_path"] == str(path) + ".rejects.csv"
    assert crm_main(["import", "responses", str(path), "--centre", "main"]) == 0
    assert "0 responses recorded (none), 9 already there" in capsys.readouterr().out
    assert crm_main(["import", "responses", str(path), "--centre", "ghost"]) == 1
    assert "unknown call centre 'ghost' (known: main, other)" in capsys.readouterr().err
