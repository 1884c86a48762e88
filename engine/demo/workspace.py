"""``crm demo``: a fresh SQLite workspace with a synthetic shop, refreshed, its campaigns run.

The workspace is a folder holding ``config.toml`` (the example configuration
shipped with crm-engine, or the one given) and ``demo.db``. Running the demo
again starts the database afresh.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, case, func, select

from engine.config import Config, load_config
from engine.customers.importing import ImportSummary, import_customers
from engine.db import make_engine, upgrade
from engine.demo.budget import DemoBudget, demo_budget_reports, write_demo_budget
from engine.demo.campaigns import DemoCampaigns, run_campaign_day
from engine.demo.evaluation import DemoEvaluation, evaluate_demo
from engine.demo.loyalty import DemoLoyalty, run_demo_loyalty
from engine.demo.shop import DemoDataSummary, generate_demo_data
from engine.metrics import business_today
from engine.models import CUSTOMER, METRICS
from engine.outbox import offers_one_click
from engine.segments import RefreshResult, refresh_all
from engine.settings import read_toml

DEFAULT_CONFIG = Path(__file__).parents[1] / "defaults" / "config.toml"
DATABASE = "demo.db"
#: where the demo's customers reach the API (its links); the demo answers them on a loopback port
DEMO_BASE_URL = "https://crm.shop.example"


@dataclass(frozen=True)
class ClassShare:
    """One row of a distribution: customers and revenue of one class (ABC, stage, zone)."""

    name: str
    customers: int
    customer_share: float
    revenue: Decimal
    revenue_share: float


@dataclass(frozen=True)
class DemoResult:
    """What the demo built, for printing."""

    folder: Path
    config_path: Path
    data: DemoDataSummary
    call_centre_import: ImportSummary
    refresh: RefreshResult
    abc: list[ClassShare]
    lifecycle: list[ClassShare]
    timezones: list[ClassShare]
    campaigns: DemoCampaigns
    budget: DemoBudget
    loyalty: DemoLoyalty | None
    evaluation: DemoEvaluation
    seconds: float


def prepare_workspace(folder: Path, source_config: Path | None = None) -> Path:
    """Create ``folder`` with a config.toml pointing at ``demo.db`` inside it; remove an old database."""
    folder.mkdir(parents=True, exist_ok=True)
    source = source_config or DEFAULT_CONFIG
    data, text = read_toml(source)
    url = data.get("engine", {}).get("database_url")
    target = folder / "config.toml"
    if url:
        text = text.replace(f'"{url}"', f'"sqlite:///{DATABASE}"', 1)
    else:
        text = f'[engine]\ndatabase_url = "sqlite:///{DATABASE}"\n\n' + text
    base_url = data.get("links", {}).get("base_url")
    if not offers_one_click(base_url or ""):
        # customers reach the API at an https address (a TLS proxy in front of `crm serve`), so the
        # demo's emails offer one-click unsubscribe as real ones do; the demo serves it on loopback
        line = f'base_url = "{DEMO_BASE_URL}"   # the demo API as customers would reach it, behind TLS\n'
        if base_url:
            text = re.sub(rf'(?m)^base_url\s*=\s*"{re.escape(base_url)}".*\n', lambda _: line, text, count=1)
        elif "[links]\n" in text:
            text = text.replace("[links]\n", "[links]\n" + line, 1)
        else:
            text += "\n[links]\n" + line
    if not data.get("links", {}).get("secret"):
        # the demo sends real emails into its Maildir: their unsubscribe links need a key
        secret = (
            f'secret = "demo-{secrets.token_hex(16)}"   # a demo key; set CRM_LINKS__SECRET in production\n'
        )
        text = (
            text.replace("[links]\n", "[links]\n" + secret, 1)
            if "[links]\n" in text
            else (text + "\n[links]\n" + secret)
        )
    if source.resolve() != target.resolve() or text != source.read_text(encoding="utf-8"):
        target.write_text(text, encoding="utf-8")
    for suffix in ("", "-wal", "-shm"):
        (folder / f"{DATABASE}{suffix}").unlink(missing_ok=True)
    # what the previous demo sent belongs to the database just removed
    shutil.rmtree(folder / "outbox", ignore_errors=True)
    return target


_NEW_PEOPLE = (
    ("Смирнова", "Ольга", "Игоревна"),
    ("Кузнецов", "Артём", "Сергеевич"),
    ("Попова", "Екатерина", "Андреевна"),
    ("Лебедев", "Никита", "Олегович"),
    ("Соколова", "Дарья", "Павловна"),
    ("Новиков", "Илья", "Дмитриевич"),
    ("Морозова", "Алёна", "Викторовна"),
    ("Волков", "Степан", "Ильич"),
)
_BAD_ROWS = (
    "CC-BAD1;Орлова;Анна;;+7 916 000-00-00;anna.orlova@@mail.ru;01.02.1990;да;Europe/Moscow",
    "CC-BAD2;Зайцев;Павел;;8 (903) 111-22-33;pavel@yandex.ru;31.02.1988;нет;Europe/Moscow",
    "CC-BAD3;Егорова;Мария;;+7 921 555-44-33;maria.e@bk.ru;12.07.1979;да;Europe/Moskva",
    "CC-BAD4;Титов;Глеб;;12345;;05.05.1995;да;Asia/Yekaterinburg",
)


def write_call_centre_file(engine: Engine, path: Path, *, known: int = 40, new: int = 60) -> Path:
    """Write the kind of file a call centre exports: cp1251, ``;``, dd.mm.yyyy, Russian headers.

    ``known`` rows are customers of the shop met again (matched by email, so
    they merge), ``new`` rows are new people, and a few rows are bad (a broken
    email, 31 February, a misspelt time zone, a short phone) so the import
    shows its rejects file.
    """
    with engine.connect() as connection:
        emails = (
            connection.execute(
                select(CUSTOMER.c.email)
                .where(CUSTOMER.c.email.is_not(None))
                .order_by(CUSTOMER.c.id)
                .limit(known)
            )
            .scalars()
            .all()
        )
    lines = [
        "Код клиента;Фамилия;Имя;Отчество;Телефон;Эл. почта;Дата рождения;Согласие на звонки;Часовой пояс"
    ]
    for n, email in enumerate(emails):
        lines.append(f"CC-{n + 1:05d};;;;;{email};;да;")
    for n in range(new):
        last, first, middle = _NEW_PEOPLE[n % len(_NEW_PEOPLE)]
        phone = f"8 (9{n % 10}{(n * 7) % 10}) {100 + n:03d}-{n % 90 + 10:02d}-{(n * 3) % 90 + 10:02d}"
        born = f"{(n % 28) + 1:02d}.{(n % 12) + 1:02d}.{1960 + n % 40}"
        zone = "Asia/Novosibirsk" if n % 4 == 0 else ""
        consent = "да" if n % 3 else "нет"
        lines.append(f"CC-{known + n + 1:05d};{last};{first};{middle};{phone};;{born};{consent};{zone}")
    lines.extend(_BAD_ROWS)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1251"))
    return path


def _distribution(engine: Engine, column: object, order: list[str] | None = None) -> list[ClassShare]:
    label = func.coalesce(column, "-")
    query = (
        select(label, func.count(), func.coalesce(func.sum(METRICS.c.total_spent), 0))
        .select_from(CUSTOMER.join(METRICS, METRICS.c.customer_id == CUSTOMER.c.id))
        .group_by(label)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    customers = sum(r[1] for r in rows) or 1
    revenue = sum(Decimal(r[2]) for r in rows) or Decimal(1)
    shares = [
        ClassShare(
            str(r[0]),
            r[1],
            r[1] / customers,
            Decimal(r[2]).quantize(Decimal("0.01")),
            float(Decimal(r[2]) / revenue),
        )
        for r in rows
    ]
    rank = {name: n for n, name in enumerate(order or [])}
    return sorted(shares, key=lambda s: (rank.get(s.name, len(rank)), -s.customers, s.name))


#: purchases per customer when the demo is not told how many (two years of a shop)
PURCHASES_PER_CUSTOMER = 10

Phase = Callable[[str], contextlib.AbstractContextManager[None]]
"""Announces a phase of the demo by name for as long as it runs (``crm demo`` shows a progress line)."""


@contextlib.contextmanager
def _quiet(_name: str) -> Iterator[None]:
    yield


def run_demo(
    folder: Path,
    *,
    customers: int = 20_000,
    purchases: int | None = None,
    seed: int = 42,
    config_path: Path | None = None,
    today: dt.date | None = None,
    phase: Phase = _quiet,
) -> DemoResult:
    """Build the demo workspace in ``folder`` and return what it holds.

    ``purchases`` defaults to ten per customer, so everything scales with
    ``customers``. ``phase`` is entered around each phase of the work.
    """
    started = time.perf_counter()
    purchases = customers * PURCHASES_PER_CUSTOMER if purchases is None else purchases
    workspace_config = prepare_workspace(folder, config_path)
    config: Config = load_config(workspace_config)
    engine = make_engine(config.database_url)
    try:
        with phase("database schema"):
            upgrade(engine)
        # yesterday in the business zone: everything the demo simulates on its day (the loyalty
        # night, the campaigns at 10:00, the till at noon) has happened, whatever the hour now
        day = today or business_today(config) - dt.timedelta(days=1)
        with phase(f"{customers:,} customers and {purchases:,} purchases"):
            data = generate_demo_data(
                engine,
                customers=customers,
                purchases=purchases,
                seed=seed,
                today=day,
                business_timezone=config.settings.engine.timezone,
            )
        with phase("import of a call-centre export"):
            sample = write_call_centre_file(engine, folder / "call_centre_export.csv")
            call_centre_import = import_customers(
                engine,
                sample,
                source="call_centre",
                default_region=config.settings.engine.default_region,
                timezone=config.settings.engine.timezone,
                attributes=dict(config.settings.customers.attributes),
            )
        with phase("metrics, scores and segments"):
            refresh = refresh_all(engine, config, as_of=day)
        abc = _distribution(engine, METRICS.c.abc_class, ["A", "B", "C", "-"])
        lifecycle = _distribution(
            engine, METRICS.c.lifecycle_stage, ["visitor", "client", "regular", "partner"]
        )
        zone = case(
            (CUSTOMER.c.timezone.is_(None), f"(default) {config.settings.engine.timezone}"),
            else_=CUSTOMER.c.timezone,
        )
        timezones = _distribution(engine, zone)
        with phase("loyalty: accrual, refunds, the till, the nightly batch"):
            loyalty = run_demo_loyalty(engine, config, day)
        with phase("campaign day: runs, emails and call lists"):
            write_demo_budget(folder, day)
            campaigns = run_campaign_day(engine, config, day)
        with phase("budget: contact matrix, workbook, page"):
            budget = demo_budget_reports(engine, load_config(workspace_config), day)
        with phase("30 days later: responses, purchases, evaluation"):
            evaluation = evaluate_demo(engine, load_config(workspace_config), campaigns, day, seed=seed)
    finally:
        engine.dispose()
    return DemoResult(
        folder=folder,
        config_path=workspace_config,
        data=data,
        call_centre_import=call_centre_import,
        refresh=refresh,
        abc=abc,
        lifecycle=lifecycle,
        timezones=timezones,
        campaigns=campaigns,
        budget=budget,
        loyalty=loyalty,
        evaluation=evaluation,
        seconds=time.perf_counter() - started,
    )
