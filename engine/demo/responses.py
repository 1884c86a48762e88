"""The demo's weeks after the campaign day: customers answer, the call centre reports, some buy.

Everything goes through the paths a real shop uses: opens and clicks are
requests to the HTTP API's tracking links found in the emails of the
Maildir, a few customers unsubscribe with the one-click link (RFC 8058,
which emails offer when their links are https; else through the link's
page), the call centre hands back its call lists with the outcomes and
survey scores filled in, for ``crm import responses``, the purchases of the following weeks as a file for
``crm import purchases``. Treated customers buy more than the control group,
and more still when they clicked or were reached: the evaluation that
follows has a real effect to find.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import random
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select

from engine.config import Config
from engine.models import CUSTOMER, ENGAGED_KINDS, OUTBOX, RESPONSE, RUN
from engine.models import outbox as states
from engine.reporting import csv_writer

if TYPE_CHECKING:
    import httpx

#: the demo call centre's own codes (``[responses.call_centres.main]`` of the example config)
CALL_CODES = {
    "reached": "01",
    "no_answer": "02",
    "callback": "03",
    "interested": "04",
    "purchased": "05",
    "refused": "06",
    "wrong_number": "07",
}
CALL_OUTCOMES = (
    ("reached", 0.40),
    ("no_answer", 0.24),
    ("callback", 0.08),
    ("interested", 0.10),
    ("purchased", 0.06),
    ("refused", 0.08),
    ("wrong_number", 0.04),
)
#: chance of buying within the goal window: the control group's, and what a contact adds
BASE_RATE = 0.10
CONTACT_LIFT = 0.03
ENGAGED_LIFT = 0.12  # clicked, replied, reached and interested or bought on the phone
OPEN_RATE = 0.42
CLICK_RATE = 0.30  # of openers
UNSUBSCRIBE_RATE = 0.01
REPLY_RATE = 0.02
SURVEY_RATE = 0.35  # of reached calls
CATEGORIES = ("cosmetics", "shoes", "clothes", "home", "accessories")
ONE_CLICK = "List-Unsubscribe=One-Click"  # the List-Unsubscribe-Post header of an email that offers it
_PIXEL = re.compile(r'src="([^"]*/t/o/[^"]+)"')
_CLICK = re.compile(r'href="([^"]*/t/c/[^"]+)"')


@dataclass(frozen=True)
class Exposure:
    """A customer's first contact of a run (treated) or control-group assignment (control)."""

    outbox_id: int
    customer_id: int
    customer: str
    campaign: str
    channel: str
    treated: bool
    at: dt.datetime


@dataclass(frozen=True)
class SimulatedWeeks:
    """What the simulated weeks produced, and the files they left for the importers."""

    opens: int
    clicks: int
    unsubscribes: int
    call_file: Path
    calls: int
    purchase_file: Path
    purchases: int
    until: dt.datetime


def exposures(engine: Engine, run_ids: list[int]) -> Iterator[Exposure]:
    """The exposures of ``run_ids``: streamed, one per run and customer."""
    contacted = (*states.CONTACTED_STATES, states.CONTROL)
    query = (
        select(
            OUTBOX.c.id,
            OUTBOX.c.customer_id,
            func.coalesce(CUSTOMER.c.external_id, CUSTOMER.c.email, CUSTOMER.c.phone),
            RUN.c.campaign,
            OUTBOX.c.channel,
            OUTBOX.c.state,
            func.coalesce(OUTBOX.c.sent_at, OUTBOX.c.scheduled_at),
        )
        .join(RUN, RUN.c.id == OUTBOX.c.run_id)
        .join(CUSTOMER, CUSTOMER.c.id == OUTBOX.c.customer_id)
        .where(OUTBOX.c.run_id.in_(run_ids), OUTBOX.c.step == 0, OUTBOX.c.state.in_(contacted))
        .order_by(OUTBOX.c.id)
    )
    with engine.connect() as connection:
        for row in connection.execution_options(yield_per=2000).execute(query):
            yield Exposure(row[0], row[1], row[2], row[3], row[4], row[5] != states.CONTROL, row[6])


@dataclass(frozen=True)
class EmailResponses:
    """What the customers did with the emails, through the API's tracking and unsubscribe links."""

    opens: int
    clicks: int
    unsubscribes: int


def answer_emails(engine: Engine, config: Config, maildir: Path, rng: random.Random) -> EmailResponses:
    """Customers open, click and unsubscribe: each one an HTTP request to the API on a loopback port."""
    import httpx

    from engine.api import create_app, serving

    public = config.settings.links.base_url.rstrip("/")
    opens = clicks = unsubscribes = 0
    with serving(create_app(config, engine)) as local, httpx.Client(timeout=30) as client:

        def here(url: str) -> str:  # the link as sent, to the API serving this demo
            return local + url.replace("&amp;", "&").removeprefix(public)

        for path in sorted((maildir / "new").iterdir()):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if rng.random() < UNSUBSCRIBE_RATE:
                link = re.search(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"] or ""))
                if link:
                    one_click = str(message["List-Unsubscribe-Post"] or "").strip() == ONE_CLICK
                    unsubscribes += _unsubscribe(client, here(link.group(1)), one_click=one_click)
                continue
            if rng.random() >= OPEN_RATE:
                continue
            body = message.get_body(preferencelist=("html",))
            html = body.get_content() if body is not None else ""
            pixel = _PIXEL.search(html)
            if pixel:
                opens += client.get(here(pixel.group(1))).status_code == 200
            links = _CLICK.findall(html)
            if links and rng.random() < CLICK_RATE:
                clicks += client.get(here(rng.choice(links)), follow_redirects=False).status_code == 302
    return EmailResponses(opens, clicks, unsubscribes)


def _unsubscribe(client: httpx.Client, link: str, *, one_click: bool) -> bool:
    """Unsubscribe as a mail client lets the customer: one-click where the email offers it, else the page.

    RFC 8058 one-click (a POST of ``List-Unsubscribe=One-Click``) only when
    the email carries ``List-Unsubscribe-Post`` (an https link); otherwise
    the customer opens the link's page and submits its form.
    """
    if one_click:
        return client.post(link, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    if client.get(link).status_code != 200:
        return False
    return client.post(link, data={"scope": "email"}).status_code == 200


def engaged_customers(engine: Engine, run_ids: list[int]) -> set[int]:
    """Customers of ``run_ids`` who clicked, replied or engaged on the phone."""
    with engine.connect() as connection:
        return set(
            connection.execute(
                select(RESPONSE.c.customer_id)
                .join(OUTBOX, OUTBOX.c.id == RESPONSE.c.outbox_id)
                .where(OUTBOX.c.run_id.in_(run_ids), RESPONSE.c.kind.in_(ENGAGED_KINDS))
                .distinct()
            ).scalars()
        )


def write_call_outcomes(
    engine: Engine, config: Config, run_ids: list[int], path: Path, rng: random.Random
) -> int:
    """The call centre hands back its call lists filled in: ``called_at``, ``outcome`` in its own codes, a
    ``note``, and a ``score`` column it added for the survey at the end of a call.

    The rows of every list of ``run_ids`` in the call folder, in one file at ``path``, as
    ``crm import responses`` takes it.
    """
    folder = config.path.parent / config.settings.channels.call.folder
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    wanted = {str(run_id) for run_id in run_ids}
    outcomes, weights = zip(*CALL_OUTCOMES, strict=True)
    header: list[str] = []
    returned: list[dict[str, str]] = []
    for listed in sorted(folder.glob("calls-*.csv")) if folder.is_dir() else []:
        day = dt.date.fromisoformat(listed.name.removeprefix("calls-")[:10])
        opens = dt.datetime.combine(day, dt.time(10), tzinfo=zone)
        with listed.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=";")
            header = header or [*(reader.fieldnames or []), "score"]
            for row in reader:
                if row["key"].split(":")[0] not in wanted:
                    continue
                outcome = rng.choices(outcomes, weights)[0]
                called = opens + dt.timedelta(minutes=rng.randint(10, 480))
                score = ""
                if outcome in ("reached", "interested", "purchased") and rng.random() < SURVEY_RATE:
                    score = str(rng.choices((1, 2, 3, 4, 5), (0.04, 0.06, 0.15, 0.40, 0.35))[0])
                row |= {
                    "called_at": f"{called:%Y-%m-%d %H:%M}",
                    "outcome": CALL_CODES[outcome],
                    "note": "asked to call back next week" if outcome == "callback" else "",
                    "score": score,
                }
                returned.append(row)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        out = csv_writer(handle, delimiter=";")
        out.writerow(header)
        out.writerows([row.get(column, "") for column in header] for row in returned)
    return len(returned)


def write_purchases(
    engine: Engine,
    run_ids: list[int],
    windows: dict[str, int],
    path: Path,
    rng: random.Random,
    until: dt.datetime,
) -> int:
    """The purchases of the weeks after the contacts: a file for ``crm import purchases``."""
    engaged = engaged_customers(engine, run_ids)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv_writer(handle, delimiter=";")
        out.writerow(["order id", "customer", "ordered at", "amount", "category", "margin"])
        for exposure in exposures(engine, run_ids):
            chance = BASE_RATE
            if exposure.treated:
                chance += CONTACT_LIFT + (ENGAGED_LIFT if exposure.customer_id in engaged else 0)
            if rng.random() >= chance:
                continue
            window = dt.timedelta(days=windows.get(exposure.campaign, 30))
            ordered = exposure.at + dt.timedelta(seconds=rng.uniform(3600, window.total_seconds() - 3600))
            if ordered >= until:
                continue
            amount = Decimal(str(round(rng.lognormvariate(8.2, 0.6), 2)))
            margin = (amount * Decimal(str(rng.uniform(0.25, 0.4)))).quantize(Decimal("0.01"))
            out.writerow(
                [
                    f"SIM-{exposure.outbox_id}",
                    exposure.customer,
                    ordered.isoformat(timespec="seconds"),
                    f"{amount}",
                    rng.choice(CATEGORIES),
                    f"{margin}",
                ]
            )
            written += 1
    return written
