"""``crm import responses``: call outcomes, replies and survey scores from a CSV or XLSX file.

Columns (headers matched like the other imports, in English or Russian):

* the customer: ``customer`` (external id, email or phone), or
  ``customer_external_id`` / ``customer_email`` / ``customer_phone``; or
  ``key``, the contact key of a call list row (``run:customer:step``), which
  names the contact itself and then decides the customer;
* ``occurred_at`` (required): when the call, reply or score happened; a
  time without an offset is read in the business time zone;
* ``campaign`` (optional): the campaign the response answers, by key or by name (when the caller
  gives the names: ``campaigns`` as a mapping of key to name);
* ``outcome`` (``code``, ``result``...): a call outcome, as the centre's own
  code (``[responses.call_centres.NAME].codes``) or an outcome name;
* ``centre`` (optional, else ``--centre``): whose codes ``outcome`` uses;
* ``score``: a survey score from 1 to ``[responses].satisfaction_scale``;
* ``reply``: the text of a reply; ``note`` (``comment``): kept in the detail;
* ``kind`` (optional): ``call``, ``reply`` or ``satisfaction``; otherwise a
  row with an outcome is a call, else one with a score a survey score, else
  one with a reply text a reply.

A call row records its outcome (``kind`` = the outcome, ``code`` = the code as
written) and, when it carries a score, the survey score too. Each response
has a key derived from its content (customer, kind, time, code, score,
campaign, contact, reply), and an imported response is unique by that key
whatever ``source`` the import names (``source`` labels where the file came
from; it is no part of the response's identity): importing a file again,
under any source, or another file repeating its rows, records nothing new;
such rows count as ``unchanged``. Responses are linked to the contact they
answer (:mod:`engine.responses.contact_links`); wrong numbers and refusals
change the contact policy in the same transaction
(:mod:`engine.responses.policy_effects`). Bad rows go to the rejects file
with their reasons; good rows go in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, tuple_

from engine.customers.importing import (
    ImportOptions,
    ImportSummary,
    PreparedImport,
    References,
    Rejected,
    SourceRow,
    customer_of,
    phone_region,
    prepare_import,
    read_chunk,
    resolve_references,
    run_import,
)
from engine.errors import ImportFileError
from engine.models import OUTBOX, RESPONSE, RUN
from engine.responses.call_outcomes import CallOutcomes
from engine.responses.contact_links import link_to_contacts
from engine.responses.policy_effects import apply_contact_policy
from engine.responses.response_rows import (
    CALL,
    CALL_LIST_COLUMNS,
    REFERENCES,
    RESPONSE_FIELDS,
    ContactKey,
    ResponseRow,
    ResponseRowReader,
)
from engine.settings import ResponsesSection
from engine.sql import insert_ignoring


def import_responses(
    engine: Engine,
    path: Path,
    *,
    source: str = "responses",
    options: ImportOptions = ImportOptions(),
    settings: ResponsesSection = ResponsesSection(),
    centre: str | None = None,
    campaigns: Collection[str] | Mapping[str, str] = (),
    timezone: str = "Europe/Moscow",
    default_region: str = "RU",
    now: dt.datetime | None = None,
) -> ResponseImportSummary:
    """Import call outcomes, replies and survey scores from a CSV or XLSX file; return what happened.

    ``source`` labels where the file came from (on each response and on the
    suppressions it causes); it is no part of a response's identity, so the
    same file imported again under another source records nothing new.
    ``centre`` names the call centre whose codes the whole file uses (a
    ``centre`` column overrides it per row); ``campaigns`` are the known
    campaign keys besides those that have runs in the database; given as a
    mapping of key to name, a ``campaign`` cell may name a campaign by its
    name too (ignoring case and spacing; a name two campaigns share is
    refused, naming their keys). Raises
    :class:`~engine.errors.ImportFileError` (nothing imported) when the file
    cannot be read or lacks a required column, and
    :class:`~engine.errors.ConfigValueError` for an unknown ``centre``.

    Example::

        summary = import_responses(engine, Path("calls.csv"), settings=config.settings.responses,
                                   centre="main")
    """
    outcomes = CallOutcomes(settings.call_centres)
    if centre is not None:
        outcomes.check_centre(centre)
    ignored = {name: "ignore" for name in CALL_LIST_COLUMNS}
    options = replace(options, column_map={**ignored, **options.column_map})
    prepared = prepare_import(
        path,
        kind="responses",
        source=source,
        options=options,
        fields=RESPONSE_FIELDS,
        attributes=None,
        date_fields={"occurred_at"},
        number_fields={"score"},
        timezone=timezone,
        now=now,
    )
    present = prepared.mapping.fields
    missing = [] if "occurred_at" in present else ["occurred_at"]
    if not any(name in present for name in REFERENCES):
        missing.append("a customer reference (" + " or ".join(REFERENCES) + ")")
    if not any(name in present for name in ("outcome", "score", "reply")):
        missing.append("something to record (outcome, score or reply)")
    if missing:
        raise ImportFileError(str(path), "missing required columns: " + ", ".join(missing))
    prepared.summary = ResponseImportSummary.of(prepared.summary)
    names = dict(campaigns) if isinstance(campaigns, Mapping) else {}
    importer = _ResponseImport(
        prepared, source, outcomes, settings.satisfaction_scale, centre, names or set(campaigns),
        default_region,
    )  # fmt: skip
    summary = run_import(engine, prepared, importer.process_chunk)
    assert isinstance(summary, ResponseImportSummary)
    return summary


@dataclass
class ResponseImportSummary(ImportSummary):
    """A response import: rows as every import counts them, plus the responses and their effects.

    A row is ``inserted`` when it recorded at least one new response,
    ``unchanged`` when all its responses were there already (an earlier import
    of the same file under any source, or the same row earlier in this file).
    """

    responses: int = 0
    already: int = 0
    linked: int = 0
    consent_withdrawn: int = 0
    suppressed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, summary: ImportSummary) -> ResponseImportSummary:
        """A response summary carrying what ``summary`` holds so far."""
        return cls(**{item.name: getattr(summary, item.name) for item in fields(ImportSummary)})

    def describe(self) -> list[str]:
        """The import's lines, then the responses and what they changed."""
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.by_kind.items()))
        line = (
            f"{self.responses} responses recorded ({kinds or 'none'}), {self.already} already there, "
            f"{self.linked} linked to a contact; call consent withdrawn for {self.consent_withdrawn}, "
            f"{self.suppressed} numbers suppressed"
        )
        lines = super().describe()
        return [lines[0], line, *lines[1:]]


@dataclass(frozen=True)
class _Contact:
    """An outbox row named by a call list key."""

    id: int
    customer_id: int
    campaign: str
    channel: str


class _ResponseImport:
    """The state of one response import across its chunks."""

    def __init__(
        self,
        prepared: PreparedImport,
        source: str,
        outcomes: CallOutcomes,
        scale: int,
        centre: str | None,
        campaigns: set[str] | dict[str, str],
        default_region: str,
    ) -> None:
        self.prepared = prepared
        summary = prepared.summary
        assert isinstance(summary, ResponseImportSummary)
        self.summary = summary
        self.source = source
        self.campaigns = set(campaigns)
        self.names = dict(campaigns) if isinstance(campaigns, dict) else {}  # campaign key -> name
        self.campaigns_loaded = False
        self.seen: set[str] = set()  # response keys met in this file
        self.reader = ResponseRowReader(
            prepared.mapping.fields,
            prepared.width,
            dates=prepared.dates,
            numbers=prepared.numbers,
            outcomes=outcomes,
            scale=scale,
            centre=centre,
            region=phone_region(default_region),
        )

    # --- a chunk -------------------------------------------------------------------------------

    def process_chunk(self, connection: Connection, rows: list[SourceRow]) -> None:
        read_chunk(
            rows,
            self.reader.read,
            self.summary,
            self.prepared.rejects,
            lambda parsed, rejected: self._process(connection, parsed, rejected),
        )

    def _process(self, connection: Connection, parsed: list[ResponseRow], rejected: Rejected) -> None:
        if not self.campaigns_loaded:
            self.campaigns |= set(connection.execute(select(RUN.c.campaign).distinct()).scalars())
            self.campaigns_loaded = True
        contacts = _load_contacts(connection, {item.contact for item in parsed if item.contact})
        customers = resolve_references(connection, (item.reference for item in parsed if not item.contact))
        accepted: list[ResponseRow] = []
        for item in parsed:
            problems = self._check(item, contacts, customers)
            if problems:
                rejected.append((item.source, problems))
            else:
                accepted.append(item)
        self._record(connection, accepted)

    def _check(
        self, item: ResponseRow, contacts: dict[ContactKey, _Contact], customers: References
    ) -> list[str]:
        """Reasons to reject ``item``; on none, its customer (and contact) are set."""
        problems: list[str] = []
        if item.campaign is not None and item.campaign not in self.campaigns:
            key, problem = self._campaign_named(item.campaign)
            if problem:
                problems.append(f"campaign: {problem}")
            item.campaign = key or item.campaign
        if item.contact is not None:
            contact = contacts.get(item.contact)
            if contact is None:
                return [*problems, f"key: no contact with key {':'.join(map(str, item.contact))!r}"]
            if item.campaign is not None and item.campaign != contact.campaign:
                problems.append(
                    f"campaign: {item.campaign!r} differs from the contact's campaign {contact.campaign!r}"
                )
            item.customer_id, item.outbox_id = contact.customer_id, contact.id
            item.campaign, item.channel = contact.campaign, contact.channel
            return problems
        customer_id, problem = customer_of(item.reference, customers)
        if problem:
            problems.append(problem)
        item.customer_id = customer_id
        if item.kind == CALL:
            item.channel = CALL
        return problems

    def _record(self, connection: Connection, accepted: list[ResponseRow]) -> None:
        """Insert the new responses of ``accepted``; link them; apply the contact policy."""
        values: list[dict[str, Any]] = []
        owner: dict[str, ResponseRow] = {}
        total = 0
        for item in accepted:
            for response in item.responses():
                total += 1
                if response["key"] in self.seen:
                    continue  # the same response earlier in this file
                self.seen.add(response["key"])
                owner[response["key"]] = item
                values.append(
                    {**response, "source": self.source, "import_id": self.summary.import_id,
                     "recorded_at": self.prepared.now}
                )  # fmt: skip
        inserted: dict[int, str] = {}
        if values:
            # any taken key skips the row: the imported responses' key whatever the source (and (source, key))
            statement = insert_ignoring(connection, RESPONSE).returning(RESPONSE.c.id, RESPONSE.c.key)
            inserted = {int(row[0]): str(row[1]) for row in connection.execute(statement, values)}
        fresh = {owner[key].source.line for key in inserted.values()}
        new_keys = set(inserted.values())
        for value in values:
            if value["key"] in new_keys:
                self.summary.by_kind[value["kind"]] = self.summary.by_kind.get(value["kind"], 0) + 1
        self.summary.responses += len(inserted)
        self.summary.already += total - len(inserted)
        for item in accepted:
            if item.source.line in fresh:
                self.summary.inserted += 1
            else:
                self.summary.unchanged += 1
        if inserted:
            import_id = self.summary.import_id
            assert import_id is not None
            first, last = min(inserted), max(inserted)
            self.summary.linked += link_to_contacts(connection, import_id, first, last)
            effects = apply_contact_policy(
                connection, import_id=import_id, first_id=first, last_id=last, source=self.source,
                now=self.prepared.now,
            )  # fmt: skip
            self.summary.consent_withdrawn += effects.consent_withdrawn
            self.summary.suppressed += effects.suppressed

    def _campaign_named(self, text: str) -> tuple[str | None, str | None]:
        """The key of the campaign ``text`` names (a key in other case or spacing, or a name), or why none."""
        wanted = _folded(text)
        keys = sorted({key for key in self.campaigns if _folded(key) == wanted})
        if not keys:
            keys = sorted({key for key, name in self.names.items() if _folded(name) == wanted})
        if len(keys) == 1:
            return keys[0], None
        if keys:
            return None, f"{text!r} names several campaigns ({', '.join(keys)}): give the key"
        return None, _unknown_campaign(text, self.campaigns)


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


def _unknown_campaign(key: str, known: Collection[str]) -> str:
    names = sorted(known)
    listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"unknown campaign {key!r} (known: {listed or 'none'})"


def _load_contacts(
    connection: Connection, keys: set[tuple[int, int, int] | None]
) -> dict[ContactKey, _Contact]:
    wanted = sorted(key for key in keys if key is not None)
    if not wanted:
        return {}
    query = (
        select(
            OUTBOX.c.run_id,
            OUTBOX.c.customer_id,
            OUTBOX.c.step,
            OUTBOX.c.id,
            RUN.c.campaign,
            OUTBOX.c.channel,
        )
        .join(RUN, RUN.c.id == OUTBOX.c.run_id)
        .where(tuple_(OUTBOX.c.run_id, OUTBOX.c.customer_id, OUTBOX.c.step).in_(wanted))
    )
    return {
        (row.run_id, row.customer_id, row.step): _Contact(row.id, row.customer_id, row.campaign, row.channel)
        for row in connection.execute(query)
    }
