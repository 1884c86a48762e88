"""Emails really sent for API tests: a campaign linking to the shop, sent by the outbox into a Maildir."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from engine.channels.maildir_email import MaildirEmailChannel
from engine.config.checked import Config
from engine.db import installation_id
from engine.models import ContactResponse, Suppression
from engine.models.tables import CUSTOMER
from engine.outbox import drain
from tests.factories import add_customer
from tests.outbox.factories import T0, Clock, add_run, queue, rows_of, workspace

RESPONSE = ContactResponse.__table__  # type: ignore[attr-defined]
SUPPRESSION = Suppression.__table__  # type: ignore[attr-defined]
BASE_URL = "https://crm.shop.example"  # [links].base_url of the outbox workspace

SHOP_NOTE = (
    "<html><head><style>p { color: #333 }</style></head><body>"
    '<p>{{ customer.first_name }}, see <a href="{{ links.shop }}/autumn?utm_source=crm&amp;utm_medium=email">'
    "the autumn sale</a> and <a href='https://shop.example/new'>what is new</a>.</p>"
    '<p><a href="mailto:help@shop.example">Write to us</a> <a href="#top">Top</a></p>'
    '<p><a href="{{ links.unsubscribe }}">Unsubscribe</a></p></body></html>'
)
AUTUMN = "https://shop.example/autumn?utm_source=crm&utm_medium=email"
NEW = "https://shop.example/new"


@dataclass(frozen=True)
class Mailing:
    """One run of the shop note sent to a few customers: each one's outbox row and stored email."""

    config: Config
    run_id: int
    customers: list[int]
    outbox: dict[int, int]  # customer -> outbox id
    emails: dict[int, EmailMessage]  # customer -> the message in the Maildir

    def html(self, customer: int) -> str:
        """The HTML part of the customer's email."""
        part = self.emails[customer].get_body(("html",))
        assert part is not None
        return str(part.get_content())

    def text(self, customer: int) -> str:
        """The text part of the customer's email."""
        part = self.emails[customer].get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    def unsubscribe_header_url(self, customer: int) -> str:
        """The https URL of the customer's ``List-Unsubscribe`` header."""
        header = " ".join(str(self.emails[customer]["List-Unsubscribe"]).split())
        found = re.match(r"<(https://[^>]+)>, <mailto:", header)
        assert found is not None, header
        return found.group(1)


def send_mailing(db: Engine, write_config: Any, tmp_path: Path, count: int = 2) -> Mailing:
    """``count`` customers with every address and consent, sent the shop note by a real worker drain."""
    config = workspace(write_config, tmp_path)
    (tmp_path / "campaigns" / "templates" / "note.html.j2").write_text(SHOP_NOTE, encoding="utf-8")
    with db.begin() as connection:
        customers = [
            add_customer(
                connection,
                first_name=f"Anna{n}",
                email=f"anna{n}@example.ru",
                phone=f"+791655500{n:02d}",
                address=f"Moscow, Tverskaya {n + 1}",
                consent_email=True,
                consent_sms=True,
                consent_call=True,
                consent_post=True,
            )
            for n in range(count)
        ]
        run = add_run(connection)
        queue(connection, run, customers, variant="a")
    summary = drain(db, config, only=["email"], until_idle=True, clock=Clock(T0 + dt.timedelta(minutes=5)))
    assert summary.sent == count, summary
    rows = rows_of(db, run)
    maildir = MaildirEmailChannel(tmp_path / "maildir", sender="news@shop.example", domain="shop.example")
    emails = {}
    installation = installation_id(db)
    for customer in customers:
        stored = tmp_path / "maildir" / "new" / maildir.file_name(f"{run}:{customer}:0", installation)
        parsed = BytesParser(policy=policy.default).parsebytes(stored.read_bytes())
        assert isinstance(parsed, EmailMessage)
        emails[customer] = parsed
    return Mailing(config, run, customers, {c: rows[(c, 0)].id for c in customers}, emails)


def live(url: str, server: str) -> str:
    """``url`` of the engine (under ``BASE_URL``) on the live test server instead."""
    assert url.startswith(BASE_URL + "/"), url
    return server + url.removeprefix(BASE_URL)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("a", "area") and values.get("href") is not None:
            self.hrefs.append(values["href"] or "")
        if tag == "img" and values.get("src") is not None:
            self.images.append(values["src"] or "")


def links_of(html: str) -> tuple[list[str], list[str]]:
    """The hrefs of the links and the srcs of the images of ``html``, as a browser reads them."""
    parser = _Links()
    parser.feed(html)
    return parser.hrefs, parser.images


def responses(db: Engine) -> list[Any]:
    """Every recorded response, oldest first."""
    with db.connect() as connection:
        return list(connection.execute(select(RESPONSE).order_by(RESPONSE.c.id)))


def suppressions(db: Engine) -> set[tuple[str, str, str, int | None]]:
    """The suppression list as (channel, address, reason, customer) tuples."""
    with db.connect() as connection:
        return {
            (r.channel, r.address, r.reason, r.customer_id) for r in connection.execute(select(SUPPRESSION))
        }


def consents(db: Engine, customer: int) -> dict[str, Any]:
    """The consent columns (and their times) of one customer."""
    with db.connect() as connection:
        row = connection.execute(select(CUSTOMER).where(CUSTOMER.c.id == customer)).one()
    return {key: value for key, value in row._mapping.items() if key.startswith("consent_")}


def counts(db: Engine) -> tuple[int, int]:
    """How many responses and suppressions there are."""
    with db.connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(RESPONSE)).scalar_one(),
            connection.execute(select(func.count()).select_from(SUPPRESSION)).scalar_one(),
        )
