"""One row of a response file: its columns, how it is read and checked, the responses it records.

See :mod:`engine.responses.response_import` for the columns and the rules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.customers.importing import (
    Cell,
    CustomerReference,
    DateReader,
    NumberReader,
    SourceRow,
    clean_text,
    generic_reference,
    is_empty,
    parse_choice,
    parse_email,
    parse_phone,
    row_reference,
    wrong_width,
)
from engine.errors import FieldError
from engine.models import REPLY, SATISFACTION
from engine.responses.call_outcomes import CallOutcomes

RESPONSE_FIELDS: dict[str, tuple[str, ...]] = {
    "key": ("contact key", "call key", "outbox key", "ключ"),
    "customer": ("client", "покупатель", "клиент", "абонент"),
    "customer_external_id": (
        "customer external id", "customer id", "client id", "id клиента", "код клиента", "номер клиента",
    ),
    "customer_email": ("customer email", "email", "e mail", "эл почта", "электронная почта", "email клиента"),
    "customer_phone": ("customer phone", "phone", "телефон", "телефон клиента", "тел", "номер телефона"),
    "campaign": ("campaign key", "кампания", "акция"),
    "occurred_at": (
        "occurred at", "time", "date", "datetime", "called at", "call time", "call date", "replied at",
        "answered at", "дата", "время", "дата и время", "дата звонка", "время звонка", "дата ответа",
    ),
    "outcome": (
        "code", "result", "call result", "outcome code", "status", "исход", "результат",
        "результат звонка", "код", "код результата", "статус",
    ),
    "centre": ("center", "call centre", "call center", "колл центр", "кол центр"),
    "score": ("satisfaction", "rating", "csat", "survey score", "оценка", "балл", "удовлетворенность"),
    "reply": ("reply text", "answer", "message", "text", "ответ", "текст", "текст ответа"),
    "kind": ("type", "response type", "тип", "вид"),
    "note": ("comment", "notes", "remark", "комментарий", "примечание"),
}  # fmt: skip
#: the other columns of a call list (besides key, customer, phone, campaign and the columns the centre
#: fills in: called_at, outcome, centre, note): a returned call list imports as it is
CALL_LIST_COLUMNS = (
    "name", "phone_national", "calling_window", "timezone", "centre_window", "priority", "segment",
    "script", "last_purchases", "loyalty_balance", "tier", "curator", "campaign_name",
)  # fmt: skip
REFERENCES = ("key", "customer", "customer_external_id", "customer_email", "customer_phone")
CALL = "call"
KINDS = (CALL, REPLY, SATISFACTION)
KIND_ALIASES = {
    "звонок": CALL, "outcome": CALL, "call outcome": CALL, "ответ": REPLY, "answer": REPLY,
    "оценка": SATISFACTION, "score": SATISFACTION, "survey": SATISFACTION, "опрос": SATISFACTION,
}  # fmt: skip
ContactKey = tuple[int, int, int]
"""A call list row's key: run, customer, step (the outbox row's unique key)."""


@dataclass
class ResponseRow:
    """One good row: what it says, then (once resolved) its customer and contact."""

    source: SourceRow
    reference: CustomerReference
    contact: ContactKey | None
    occurred_at: dt.datetime
    campaign: str | None
    kind: str  # call, reply or satisfaction
    outcome: str | None = None
    code: str | None = None
    score: int | None = None
    reply: str | None = None
    note: str | None = None
    customer_id: int | None = None
    outbox_id: int | None = None
    channel: str | None = None

    def responses(self) -> list[dict[str, Any]]:
        """The one or two responses of the row (a call with a score also records the score)."""
        contact = ":".join(map(str, self.contact)) if self.contact else None
        common = {
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at,
            "outbox_id": self.outbox_id,
            "campaign": self.campaign,
            "channel": self.channel,
            "code": None,
            "score": None,
        }
        note = f"note: {self.note}" if self.note else None
        found: list[dict[str, Any]] = []
        if self.kind == CALL and self.outcome is not None:
            found.append(
                {**common, "kind": self.outcome, "code": self.code, "detail": _detail(self.reply, note),
                 "key": self._key(self.outcome, (self.code, self.campaign, contact, self.reply))}
            )  # fmt: skip
        if self.score is not None:
            found.append(
                {**common, "kind": SATISFACTION, "score": self.score,
                 "detail": _detail(self.reply, note) if self.kind == SATISFACTION else None,
                 "key": self._key(SATISFACTION, (self.score, self.campaign, contact))}
            )  # fmt: skip
        if self.kind == REPLY:
            found.append(
                {**common, "kind": REPLY, "detail": _detail(self.reply, note),
                 "key": self._key(REPLY, (self.reply, self.campaign, contact))}
            )  # fmt: skip
        return found

    def _key(self, kind: str, content: Sequence[Any]) -> str:
        """A response's key: kind, customer and time, readable, then a digest of the rest of its content."""
        digest = hashlib.sha256(json.dumps([*content], ensure_ascii=False).encode()).hexdigest()[:24]
        return f"{kind}:{self.customer_id}:{self.occurred_at:%Y%m%dT%H%M%SZ}:{digest}"


class ResponseRowReader:
    """Reads and checks the rows of one file (its columns in ``columns``: field -> index)."""

    def __init__(
        self,
        columns: dict[str, int],
        width: int,
        *,
        dates: DateReader,
        numbers: NumberReader,
        outcomes: CallOutcomes,
        scale: int,
        centre: str | None,
        region: str,
    ) -> None:
        self.columns = columns
        self.width = width
        self.outcomes = outcomes
        self.scale = scale
        self.centre = centre
        self.region = region
        self.parsers: dict[str, Callable[[Cell], Any]] = {
            "key": contact_key,
            "customer": lambda cell: generic_reference(cell, region),
            "customer_external_id": lambda cell: clean_text(cell, 200),
            "customer_email": parse_email,
            "customer_phone": lambda cell: parse_phone(cell, region),
            "occurred_at": dates.datetime,
            "campaign": lambda cell: clean_text(cell, 100),
            "outcome": lambda cell: clean_text(cell, 50),
            "centre": clean_text,
            "score": numbers.integer,
            "reply": lambda cell: clean_text(cell, 2000),
            "note": lambda cell: clean_text(cell, 1000),
            "kind": lambda cell: parse_choice(cell, KIND_ALIASES, KINDS),
        }

    def read(self, row: SourceRow) -> tuple[ResponseRow | None, list[str]]:
        """The row, or None and the reasons to reject it."""
        width_problem = wrong_width(row, self.width)
        if width_problem:
            return None, [width_problem]
        cells = {name: row.cells[i] for name, i in self.columns.items() if not is_empty(row.cells[i])}
        if "key" in cells:  # the contact decides the customer: a phone a spreadsheet mangled cannot reject it
            cells = {name: cell for name, cell in cells.items() if name == "key" or name not in REFERENCES}
        values: dict[str, Any] = {}
        reasons: list[str] = []
        for name, cell in cells.items():
            try:
                values[name] = self.parsers[name](cell)
            except FieldError as exc:
                reasons.append(f"{name}: {exc}")
        if "occurred_at" not in cells:
            reasons.append("occurred_at: missing")
        if not any(name in cells for name in REFERENCES):
            reasons.append("customer: missing (give the customer's external id, email or phone)")
        kind = values.get("kind") or _inferred_kind(cells)
        reasons += _kind_problems(kind, cells)
        centre = values.get("centre", self.centre)
        if centre is not None and centre not in self.outcomes.centres:
            reasons.append(f"centre: {self.outcomes.unknown_centre(centre)}")
        elif kind == CALL and "outcome" in values:
            try:
                values["outcome_name"] = self.outcomes.outcome(values["outcome"], centre)
            except FieldError as exc:
                reasons.append(f"outcome: {exc}")
        score = values.get("score")
        if score is not None and not 1 <= score <= self.scale:
            reasons.append(
                f"score: {score} is out of range (1 to {self.scale}: [responses].satisfaction_scale)"
            )
        if reasons or kind is None:
            return None, reasons
        return ResponseRow(
            source=row,
            reference=row_reference(values),
            contact=values.get("key"),
            occurred_at=values["occurred_at"],
            campaign=values.get("campaign"),
            kind=kind,
            outcome=values.get("outcome_name"),
            code=values.get("outcome"),
            score=score,
            reply=values.get("reply"),
            note=values.get("note"),
        ), []


def contact_key(cell: Cell) -> ContactKey:
    """A call list key ``run:customer:step``."""
    text = clean_text(cell)
    parts = text.split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise FieldError(f"not a contact key {text!r} (expected run:customer:step, as in call lists)")
    run_id, customer_id, step = (int(part) for part in parts)
    return run_id, customer_id, step


def _inferred_kind(cells: dict[str, Cell]) -> str | None:
    for column, kind in (("outcome", CALL), ("score", SATISFACTION), ("reply", REPLY)):
        if column in cells:
            return kind
    return None


def _kind_problems(kind: str | None, cells: dict[str, Cell]) -> list[str]:
    if kind is None:
        return ["nothing to record: give an outcome, a score or a reply"]
    needed = {CALL: "outcome", SATISFACTION: "score", REPLY: "reply"}[kind]
    problems = [] if needed in cells else [f"{needed}: missing (a {kind} row needs one)"]
    if kind != CALL and "outcome" in cells:
        problems.append(f"outcome: a {kind} row has no call outcome")
    if kind == REPLY and "score" in cells:
        problems.append("score: a reply row has no score")
    return problems


def _detail(*parts: str | None) -> str | None:
    text = "\n".join(part for part in parts if part)
    return text[:2000] or None
