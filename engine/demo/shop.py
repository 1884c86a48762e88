"""Synthetic customers and purchases that look like the data of a real shop.

:func:`generate_demo_data` fills an empty database with customers (Russian
names, a share of companies, contacts, consents, time zones from Kaliningrad
to Vladivostok, stale and missing verification dates, custom attributes) and
two years of purchases before ``today`` (a December peak, weekday and hour
shapes in each customer's own zone, refunds of earlier purchases). Revenue is
concentrated the way it is in a shop: the top quarter of buyers brings a bit
more than half of it; some buyers buy once, some lapse.

The same seed gives the same rows, on SQLite and on PostgreSQL: every random
choice comes from one ``random.Random(seed)``, in a fixed order, and no clock
is read (``today`` is the only notion of "now").
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, bindparam, func, insert, select

from engine.db import require_schema
from engine.errors import ConfigError, EngineError
from engine.models import CUSTOMER, PURCHASE

__all__ = ["DemoDataSummary", "generate_demo_data"]

UTC = dt.UTC
CHUNK_ROWS = 5_000
HISTORY_DAYS = 730
LAPSED_DAYS = 180
REFUND_SHARE = 0.03
CURRENCY = "RUB"

# -- reference data ------------------------------------------------------------------------------
# fmt: off

# city, country, IANA zone, weight (share of customers)
_CITIES: tuple[tuple[str, str, str, float], ...] = (
    ("Москва", "RU", "Europe/Moscow", 30),
    ("Санкт-Петербург", "RU", "Europe/Moscow", 12),
    ("Казань", "RU", "Europe/Moscow", 4),
    ("Нижний Новгород", "RU", "Europe/Moscow", 4),
    ("Ростов-на-Дону", "RU", "Europe/Moscow", 4),
    ("Краснодар", "RU", "Europe/Moscow", 4),
    ("Воронеж", "RU", "Europe/Moscow", 3),
    ("Самара", "RU", "Europe/Samara", 3),
    ("Екатеринбург", "RU", "Asia/Yekaterinburg", 5),
    ("Челябинск", "RU", "Asia/Yekaterinburg", 3),
    ("Пермь", "RU", "Asia/Yekaterinburg", 2),
    ("Новосибирск", "RU", "Asia/Novosibirsk", 4),
    ("Омск", "RU", "Asia/Omsk", 2),
    ("Красноярск", "RU", "Asia/Krasnoyarsk", 2),
    ("Иркутск", "RU", "Asia/Irkutsk", 1),
    ("Владивосток", "RU", "Asia/Vladivostok", 2),
    ("Хабаровск", "RU", "Asia/Vladivostok", 1),
    ("Калининград", "RU", "Europe/Kaliningrad", 2),
    ("Алматы", "KZ", "Asia/Almaty", 3),
    ("Астана", "KZ", "Asia/Almaty", 2),
    ("Минск", "BY", "Europe/Minsk", 2.5),
    ("Гомель", "BY", "Europe/Minsk", 0.5),
)
_STREETS = (
    "ул. Ленина", "ул. Советская", "ул. Мира", "ул. Гагарина", "ул. Пушкина", "ул. Садовая",
    "ул. Молодёжная", "ул. Лесная", "ул. Школьная", "Набережная ул.", "ул. Кирова",
    "ул. Октябрьская", "пр-т Победы", "ул. Строителей", "ул. Чехова", "пр-т Мира",
)
_MALE_NAMES = (
    "Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Максим", "Иван", "Михаил", "Никита", "Артём",
    "Евгений", "Владимир", "Павел", "Роман", "Николай", "Олег", "Игорь", "Денис", "Кирилл", "Илья", "Антон",
    "Виктор", "Юрий", "Константин", "Тимур", "Георгий", "Егор", "Вадим",
)
_FEMALE_NAMES = (
    "Елена", "Ольга", "Наталья", "Анна", "Татьяна", "Мария", "Ирина", "Екатерина", "Светлана", "Юлия",
    "Анастасия", "Марина", "Дарья", "Ксения", "Виктория", "Полина", "Людмила", "Алина", "Валентина",
    "Софья", "Галина", "Надежда", "Вера", "Евгения", "Кристина", "Алёна", "Лариса",
)
_SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков",
    "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов",
    "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв",
    "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров",
    "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов", "Поляков", "Сорокин", "Виноградов",
    "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров",
    "Давыдов", "Беляев", "Герасимов", "Богданов", "Осипов", "Сидоров", "Матвеев", "Титов", "Марков",
    "Миронов", "Крылов", "Куликов", "Карпов", "Власов", "Мельников", "Денисов", "Гаврилов", "Тихонов",
    "Казаков", "Афанасьев", "Данилов", "Савельев", "Тимофеев", "Фомин", "Чернов", "Абрамов", "Мартынов",
    "Ефимов", "Щербаков", "Назаров", "Калинин", "Исаев", "Быков", "Маслов", "Родионов", "Коновалов",
    "Лазарев", "Воронин", "Климов", "Филатов", "Голубев", "Кудрявцев", "Прохоров", "Наумов", "Журавлёв",
    "Трофимов", "Леонов", "Соболев", "Ермаков", "Гончаров", "Шевченко", "Ткаченко", "Бондаренко",
    "Коваленко", "Черных", "Седых", "Островский", "Покровский", "Вишневский", "Троицкий", "Толстой",
    "Лановой",
)
_FATHER_NAMES = (
    "Александрович", "Сергеевич", "Дмитриевич", "Андреевич", "Алексеевич", "Иванович", "Михайлович",
    "Владимирович", "Викторович", "Николаевич", "Юрьевич", "Петрович", "Анатольевич", "Олегович",
    "Евгеньевич", "Игоревич", "Васильевич", "Павлович", "Геннадьевич", "Валерьевич", "Борисович",
    "Константинович", "Романович", "Максимович",
)
_COMPANY_NAMES = (
    "Ромашка", "Северный ветер", "Альфа-Трейд", "Вектор", "Гранит", "Меридиан", "Техснаб",
    "Стройинвест", "Уральские самоцветы", "Сибирский двор", "Лотос", "Ника", "Орион", "Феникс",
    "Радуга", "Прогресс", "Магистраль", "Каскад", "Эталон", "Восход", "Бьюти Лаб", "Спорт-Профи",
)
_COMPANY_SUFFIXES = ("", "", "", " Плюс", "-М", " Групп", " Сервис", "-Юг", "-Центр")
_CURATORS = (
    "Анна Соколова", "Дмитрий Орлов", "Марина Кузнецова", "Игорь Белов", "Ольга Фролова",
    "Сергей Никитин",
)
_EMAIL_DOMAINS: dict[str, tuple[tuple[str, float], ...]] = {
    "RU": (("mail.ru", 30), ("yandex.ru", 28), ("gmail.com", 18), ("bk.ru", 5), ("list.ru", 5),
           ("inbox.ru", 4), ("rambler.ru", 5), ("icloud.com", 3), ("ya.ru", 2)),
    "KZ": (("mail.ru", 35), ("gmail.com", 30), ("mail.kz", 20), ("yandex.kz", 15)),
    "BY": (("mail.ru", 25), ("gmail.com", 30), ("tut.by", 25), ("yandex.by", 20)),
}
_MOBILE_CODES: dict[str, tuple[str, tuple[str, ...]]] = {
    "RU": ("+7", tuple(str(code) for code in range(900, 1000) if code not in (940, 942, 943, 944))),
    "KZ": ("+7", ("700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778")),
    "BY": ("+375", ("25", "29", "33", "44")),
}
_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ("a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s",
     "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"),
    strict=True,
))
# category, SKU prefix, price range, share of sales, margin range
_CATEGORIES: tuple[tuple[str, str, int, int, float, float, float], ...] = (
    ("cosmetics", "COS", 250, 4_000, 30, 0.35, 0.55),
    ("clothing", "CLO", 900, 9_000, 20, 0.30, 0.50),
    ("shoes", "SHO", 2_000, 14_000, 12, 0.25, 0.45),
    ("accessories", "ACC", 400, 6_000, 12, 0.40, 0.60),
    ("home", "HOM", 300, 7_000, 10, 0.25, 0.40),
    ("kids", "KID", 400, 5_000, 9, 0.20, 0.35),
    ("sport", "SPO", 800, 18_000, 7, 0.20, 0.35),
)
_SKUS_PER_CATEGORY = 240
_MONTH_WEIGHT = (0.85, 0.85, 1.05, 0.9, 0.9, 0.88, 0.88, 0.95, 1.0, 1.0, 1.25, 1.7)
_WEEKDAY_WEIGHT = (0.85, 0.9, 0.95, 1.0, 1.1, 1.3, 1.15)
_SHOP_HOURS = {10: 0.5, 11: 0.7, 12: 0.9, 13: 1.0, 14: 0.95, 15: 0.9, 16: 0.9, 17: 1.0, 18: 1.2,
               19: 1.3, 20: 1.1, 21: 0.6}
_WEB_HOURS = {0: 0.4, 1: 0.2, 2: 0.1, 3: 0.05, 4: 0.05, 5: 0.1, 6: 0.2, 7: 0.4, 8: 0.6, 9: 0.8,
              10: 0.9, 11: 1.0, 12: 1.1, 13: 1.1, 14: 1.0, 15: 1.0, 16: 1.0, 17: 1.0, 18: 1.1,
              19: 1.3, 20: 1.5, 21: 1.6, 22: 1.3, 23: 0.8}
_SOURCES = {  # where a customer record came from, by kind of customer
    "buyer": (("shop", 40), ("loyalty_cards", 30), ("web", 22), ("call_centre", 6), ("bought_list", 2)),
    "prospect": (("web", 45), ("bought_list", 40), ("call_centre", 10), ("shop", 5)),
    "company": (("accounting", 60), ("call_centre", 20), ("web", 20)),
}
# chance of having an email, a phone, an address, a birth date by source
_CONTACT_RATES = {
    "shop": (0.78, 0.92, 0.30, 0.55),
    "loyalty_cards": (0.88, 0.96, 0.60, 0.90),
    "web": (0.99, 0.80, 0.75, 0.60),
    "call_centre": (0.55, 1.00, 0.45, 0.40),
    "bought_list": (0.92, 0.85, 0.40, 0.50),
    "accounting": (0.97, 0.92, 1.00, 0.10),
}
# chance of consent per channel among the customers reachable on it
_CONSENT_RATES = {"email": 0.81, "sms": 0.44, "call": 0.27, "post": 0.28}

# fmt: on


@dataclass(frozen=True)
class DemoDataSummary:
    """What :func:`generate_demo_data` inserted.

    ``purchases`` counts every row of the purchase table, refunds included;
    ``refunds`` how many of them are refunds. ``revenue`` is net of refunds.
    ``bottom75_revenue_share`` is the share of net revenue brought by the 75 %
    of buyers (customers with at least one purchase) who spent least: about
    0.45 in a shop where the top quarter brings 55 %.
    """

    customers: int
    companies: int
    prospects: int
    buyers: int
    one_time_buyers: int
    lapsed_buyers: int
    purchases: int
    refunds: int
    revenue: Decimal
    bottom75_revenue_share: float
    first_order_at: dt.datetime | None
    last_order_at: dt.datetime | None

    @property
    def top25_revenue_share(self) -> float:
        """The share of net revenue brought by the top quarter of buyers."""
        return 1.0 - self.bottom75_revenue_share if self.buyers else 0.0


@dataclass
class _Plan:
    """The buying habits drawn for one customer."""

    index: int
    zone: ZoneInfo
    online_share: float
    favourite: int
    taste: float  # 0..1: how far up the price range this customer buys
    b2b: bool
    has_children: bool
    start_day: int = 0
    stop_day: int = HISTORY_DAYS - 1
    rate: float = 0.0
    orders: int = 0


class _Sale(NamedTuple):
    """One purchase line before it gets its ids; money in kopecks, time in epoch seconds."""

    at: int
    customer: int
    seq: int
    cents: int
    category: str
    sku: str
    quantity: int
    margin_cents: int | None
    source: str
    refund_of: int | None = None  # seq of the refunded sale


def generate_demo_data(
    engine: Engine,
    *,
    customers: int = 20_000,
    purchases: int = 200_000,
    seed: int = 42,
    today: dt.date,
    business_timezone: str = "Europe/Moscow",
) -> DemoDataSummary:
    """Insert ``customers`` customers and ``purchases`` purchase rows (about 3 % refunds) in one transaction.

    Purchases fall in the ``HISTORY_DAYS`` days before ``today`` (local dates
    in ``business_timezone``), everything stored as aware UTC. About 10 % of
    the customers are prospects (declared ``visitor``) without purchases.
    The database must hold the schema and no customers yet::

        summary = generate_demo_data(make_engine("sqlite:///demo.db"), today=date(2026, 11, 22))
        print(f"{summary.top25_revenue_share:.0%} of revenue from the top 25 % of buyers")
    """
    if customers < 0 or purchases < 0:
        raise ValueError(f"customers and purchases must be >= 0, got {customers} and {purchases}")
    try:
        business_zone = ZoneInfo(business_timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown IANA time zone {business_timezone!r} (e.g. Europe/Moscow)") from exc
    require_schema(engine)

    rng = random.Random(seed)
    end = dt.datetime.combine(today, dt.time(0), business_zone).astimezone(UTC)
    first_day = today - dt.timedelta(days=HISTORY_DAYS)
    customer_rows, plans = _customers(rng, customers, first_day, end, business_zone)
    sales = _sales(rng, plans, purchases - round(purchases * REFUND_SHARE), first_day, end)
    refunds = _refunds(rng, sales, round(purchases * REFUND_SHARE), end)
    rows = sorted(sales + refunds, key=lambda sale: (sale.at, sale.customer, sale.seq))
    external_ids = {sale.seq: f"P{number:07d}" for number, sale in enumerate(rows, start=1)}

    with engine.begin() as connection:
        _require_empty(connection)
        customer = CUSTOMER
        for chunk in _chunks(customer_rows):
            connection.execute(insert(customer), chunk)
        ids = dict(connection.execute(select(customer.c.external_id, customer.c.id)).all())
        customer_ids = [ids[f"C{index + 1:06d}"] for index in range(customers)]
        purchase = PURCHASE
        for chunk in _chunks([_purchase_row(sale, customer_ids, external_ids) for sale in sales]):
            connection.execute(insert(purchase), chunk)
        original = select(purchase.c.id).where(purchase.c.external_id == bindparam("refunded_external_id"))
        refund_insert = insert(purchase).values(refund_of_id=original.scalar_subquery())
        for chunk in _chunks([_purchase_row(sale, customer_ids, external_ids) for sale in refunds]):
            connection.execute(refund_insert, chunk)
    return _summarise(customer_rows, sales, refunds, end)


# -- customers -----------------------------------------------------------------------------------


def _customers(
    rng: random.Random, count: int, first_day: dt.date, end: dt.datetime, business_zone: ZoneInfo
) -> tuple[list[dict[str, Any]], list[_Plan]]:
    """The customer rows and, for each buyer, the plan its purchases follow."""
    window_start = dt.datetime.combine(first_day, dt.time(0), business_zone).astimezone(UTC)
    cities = _weighted(_CITIES, [city[3] for city in _CITIES])
    zones = {zone: ZoneInfo(zone) for _, _, zone, _ in _CITIES}
    emails: set[str] = set()
    phones: set[str] = set()
    rows: list[dict[str, Any]] = []
    plans: list[_Plan] = []
    for index in range(count):
        b2b = rng.random() < 0.08
        prospect = rng.random() < (0.04 if b2b else 0.105)
        kind = "company" if b2b else "prospect" if prospect else "buyer"
        source = _pick(rng, _SOURCES[kind])
        city, country, zone_name, _ = cities(rng)
        female = rng.random() < (0.5 if b2b else 0.62)
        first_name, last_name, middle_name = _person(rng, female)
        email_rate, phone_rate, address_rate, birth_rate = _CONTACT_RATES[source]
        company = _company(rng, country, last_name, first_name, middle_name) if b2b else None

        # when the record appeared: half of the buyers were customers before the window
        if not prospect and rng.random() < 0.65:
            created = window_start - dt.timedelta(seconds=rng.randrange(30 * 86_400, 5 * 365 * 86_400))
        else:
            created = window_start + dt.timedelta(seconds=rng.randrange(HISTORY_DAYS * 86_400))
        created = min(created, end - dt.timedelta(hours=1))

        email = (
            _email(rng, emails, index, first_name, last_name, company, country)
            if rng.random() < email_rate
            else None
        )
        phone = _phone(rng, phones, country) if rng.random() < phone_rate else None
        address = (
            f"г. {city}, {rng.choice(_STREETS)}, д. {rng.randint(1, 140)}"
            + ("" if b2b else f", кв. {rng.randint(1, 320)}")
            if rng.random() < address_rate
            else None
        )
        birth_date = (
            _birth_date(rng, end.date(), rng.triangular(18, 78, 34)) if rng.random() < birth_rate else None
        )
        consents: dict[str, Any] = {}
        reachable = {"email": email, "sms": phone, "call": phone, "post": address}
        for channel, rate in _CONSENT_RATES.items():
            given = reachable[channel] is not None and rng.random() < rate
            consents[f"consent_{channel}"] = given
            consents[f"consent_{channel}_at"] = _later(rng, created, end) if given else None
        verified_at = None if rng.random() < 0.10 else _later(rng, created, end, spread=0.6)
        children = rng.choices((0, 1, 2, 3), weights=(45, 30, 20, 5))[0]
        attributes: dict[str, Any] = {}
        if source == "loyalty_cards" or rng.random() < 0.25:
            attributes["card"] = f"2{rng.randrange(10**12):012d}"
        if rng.random() < 0.8:
            attributes["vip"] = rng.random() < (0.25 if b2b else 0.05)
        if not b2b and rng.random() < 0.6:
            attributes["children"] = children
        stage = "visitor" if prospect else "partner" if b2b and rng.random() < 0.6 else None
        stamps = [created, verified_at] + [consents[f"consent_{c}_at"] for c in _CONSENT_RATES]
        rows.append(
            {
                "external_id": f"C{index + 1:06d}",
                "first_name": first_name,
                "last_name": last_name,
                "middle_name": middle_name,
                "company": company,
                "email": email,
                "phone": phone,
                "address": address,
                "country": None if rng.random() < 0.015 else country,
                "timezone": None if rng.random() < 0.12 else zone_name,
                "birth_date": birth_date,
                "language": _language(rng, country),
                "curator": _curator(rng, b2b, source),
                **consents,
                "lifecycle_stage": stage,
                "verified_at": verified_at,
                "attributes": attributes,
                "source": source,
                "created_at": created,
                "updated_at": max(stamp for stamp in stamps if stamp is not None),
            }
        )
        if prospect:
            continue
        plan = _Plan(
            index=index,
            zone=zones[zone_name],
            online_share=0.9 if source == "web" else 0.15 if b2b else rng.uniform(0.05, 0.45),
            favourite=rng.randrange(len(_CATEGORIES)),
            taste=rng.betavariate(10, 12),
            b2b=b2b,
            has_children=children > 0,
        )
        window = created.date() - first_day
        plan.start_day = max(0, window.days)
        if rng.random() < 0.3:  # lapses at some point
            plan.stop_day = min(HISTORY_DAYS - 1, plan.start_day + 1 + int(rng.expovariate(1 / 300)))
        plan.rate = rng.lognormvariate(0, 0.15) * (1.3 if b2b else 1.0)
        plans.append(plan)
    return rows, plans


def _birth_date(rng: random.Random, today: dt.date, years: float) -> dt.date:
    """A birth date ``years`` (fractional) before ``today``, jittered by up to a year."""
    return today - dt.timedelta(days=int(years * 365.25) + rng.randrange(365))


def _person(rng: random.Random, female: bool) -> tuple[str, str, str | None]:
    surname = rng.choice(_SURNAMES)
    father = rng.choice(_FATHER_NAMES)
    if female:
        first = rng.choice(_FEMALE_NAMES)
        middle = father[:-2] + "на"
        if surname.endswith(("ов", "ев", "ёв", "ин")):
            surname += "а"
        elif surname.endswith("ский") or surname.endswith("цкий") or surname.endswith("ой"):
            surname = surname[:-2] + "ая"
    else:
        first = rng.choice(_MALE_NAMES)
        middle = father
    return first, surname, (None if rng.random() < 0.15 else middle)


def _company(rng: random.Random, country: str, last: str, first: str, middle: str | None) -> str:
    if rng.random() < 0.2:
        initials = f"{first[0]}. {middle[0]}." if middle else f"{first[0]}."
        return f"ИП {last} {initials}"
    form = {"KZ": "ТОО", "BY": "ООО"}.get(country) or rng.choice(("ООО", "ООО", "ООО", "АО"))
    return f"{form} «{rng.choice(_COMPANY_NAMES)}{rng.choice(_COMPANY_SUFFIXES)}»"


def _translit(text: str) -> str:
    return "".join(_TRANSLIT.get(char, char) for char in text.lower() if char.isalnum() or char == "-")


def _email(
    rng: random.Random,
    taken: set[str],
    index: int,
    first: str,
    last: str,
    company: str | None,
    country: str,
) -> str:
    if company:
        name = company.split("«")[-1].rstrip("»") if "«" in company else last
        local = rng.choice(("info", "zakaz", "office", _translit(first)))
        domain = _translit(name.replace(" ", "-")) + (".kz" if country == "KZ" else ".ru")
    else:
        f, lst = _translit(first), _translit(last)
        year = rng.randint(60, 99) if rng.random() < 0.5 else rng.randint(1, 30)
        local = rng.choice(
            (
                f"{f}.{lst}",
                f"{lst}{year:02d}",
                f"{f[0]}.{lst}",
                f"{f}{lst[:3]}{year:02d}",
                f"{lst}.{f}",
                f"{f}_{year:02d}",
            )
        )
        domain = _pick(rng, _EMAIL_DOMAINS[country])
    email = f"{local}@{domain}"
    if email in taken:
        email = f"{local}{index}@{domain}"
    taken.add(email)
    return email


def _phone(rng: random.Random, taken: set[str], country: str) -> str:
    prefix, codes = _MOBILE_CODES[country]
    while True:
        phone = f"{prefix}{rng.choice(codes)}{rng.randrange(10**7):07d}"
        if phone not in taken:
            taken.add(phone)
            return phone


def _language(rng: random.Random, country: str) -> str | None:
    roll = rng.random()
    if roll < 0.03:
        return None
    if country == "KZ" and roll < 0.25:
        return "kk"
    if country == "BY" and roll < 0.13:
        return "be"
    return "en" if roll > 0.99 else "ru"


def _curator(rng: random.Random, b2b: bool, source: str) -> str | None:
    if b2b:
        return rng.choice(_CURATORS[:3])
    if rng.random() < (0.5 if source == "bought_list" else 0.2):
        return rng.choice(_CURATORS)
    return None


# -- purchases -----------------------------------------------------------------------------------


def _day_weights(first_day: dt.date) -> list[float]:
    """The relative sales of each day: month, weekday, holidays and Black Friday."""
    weights = []
    for offset in range(HISTORY_DAYS):
        day = first_day + dt.timedelta(days=offset)
        weight = _MONTH_WEIGHT[day.month - 1] * _WEEKDAY_WEIGHT[day.weekday()]
        if day.month == 12 and day.day >= 18:
            weight *= 1.35
        elif day.month == 1 and day.day <= 3:
            weight *= 0.35
        elif (day.month == 3 and day.day <= 7) or (day.month == 2 and 18 <= day.day <= 22):
            weight *= 1.5
        elif day.month == 11 and day.weekday() == 4 and day.day >= 23:  # Black Friday
            weight *= 2.5
        weights.append(weight)
    return weights


def _allocate_orders(rng: random.Random, plans: list[_Plan], count: int) -> None:
    """Set ``orders`` of every plan so they add up to ``count``.

    One-time buyers (one in eight) get one purchase, the others two plus a
    share of the rest by their rate and (damped) length of their active
    window; this is what sets the revenue concentration.
    """
    once = [rng.random() < 0.12 for _ in plans]
    base = [1 if single else 2 for single in once]
    if sum(base) > count:
        base = [1 if position < count else 0 for position in range(len(plans))]
    weights = [
        0.0 if single else plan.rate * (plan.stop_day - plan.start_day + 60) ** 0.85
        for plan, single in zip(plans, once, strict=True)
    ]
    extra = count - sum(base)
    if extra > 0 and sum(weights) > 0:
        cumulative = list(itertools.accumulate(weights))
        for position in rng.choices(range(len(plans)), cum_weights=cumulative, k=extra):
            base[position] += 1
    elif extra > 0:
        base[0] += extra
    for plan, orders, single in zip(plans, base, once, strict=True):
        plan.orders = orders
        if single:
            plan.stop_day = min(plan.stop_day, plan.start_day + 20)


def _sales(
    rng: random.Random, plans: list[_Plan], count: int, first_day: dt.date, end: dt.datetime
) -> list[_Sale]:
    """``count`` purchases spread over the buyers according to their plans."""
    if not plans or count <= 0:
        return []
    _allocate_orders(rng, plans, count)
    cumulative = [0.0, *itertools.accumulate(_day_weights(first_day))]
    shop_hours = _weighted(tuple(_SHOP_HOURS), list(_SHOP_HOURS.values()))
    web_hours = _weighted(tuple(_WEB_HOURS), list(_WEB_HOURS.values()))
    discounts = _weighted((100, 90, 85, 70), (72, 12, 8, 8))  # percent of the shelf price
    skus = _sku_prices(rng)
    category_cum = list(itertools.accumulate(category[4] for category in _CATEGORIES))
    end_epoch = int(end.timestamp())
    days = [first_day + dt.timedelta(days=offset) for offset in range(HISTORY_DAYS)]
    sales: list[_Sale] = []
    for plan in plans:
        low, high = cumulative[plan.start_day], cumulative[plan.stop_day + 1]
        for _ in range(plan.orders):
            day = bisect.bisect_right(cumulative, rng.uniform(low, high)) - 1
            day = min(max(day, plan.start_day), plan.stop_day)
            online = rng.random() < plan.online_share
            hour = (web_hours if online else shop_hours)(rng)
            seconds = int(rng.random() * 3600)
            local = dt.datetime.combine(days[day], dt.time(hour, seconds // 60, seconds % 60), plan.zone)
            at = min(int(local.timestamp()), end_epoch - 1)
            if rng.random() < 0.35:
                kind = plan.favourite
            else:
                kind = bisect.bisect_right(category_cum, rng.uniform(0, category_cum[-1]))
                kind = min(kind, len(_CATEGORIES) - 1)
            if _CATEGORIES[kind][0] == "kids" and not plan.has_children and rng.random() < 0.8:
                kind = plan.favourite if _CATEGORIES[plan.favourite][0] != "kids" else 0
            category, prefix, *_, margin_low, margin_high = _CATEGORIES[kind]
            # the customer's taste picks where in the (price-sorted) range the SKU lies
            position = min(
                _SKUS_PER_CATEGORY - 1, int(_SKUS_PER_CATEGORY * _clamp(rng.gauss(plan.taste, 0.25)))
            )
            price = skus[kind][position]
            quantity = 1 if rng.random() < 0.8 else rng.choice((2, 2, 2, 3, 4))
            if plan.b2b:
                quantity *= rng.choice((1, 1, 2, 3))
            discount = discounts(rng)
            cents = price * quantity * discount  # price in roubles x percent = kopecks
            margin = None if rng.random() < 0.08 else int(cents * rng.uniform(margin_low, margin_high))
            sales.append(
                _Sale(
                    at,
                    plan.index,
                    len(sales),
                    cents,
                    category,
                    f"{prefix}-{position + 1:05d}",
                    quantity,
                    margin,
                    "web" if online else "shop",
                )
            )
    return sales


def _sku_prices(rng: random.Random) -> list[list[int]]:
    """For each category, the shelf prices (roubles, ending in 9 or 90) of its SKUs, cheapest first."""
    prices = []
    for _, _, low, high, *_ in _CATEGORIES:
        shelf = []
        for _ in range(_SKUS_PER_CATEGORY):
            raw = low * (high / low) ** rng.random()
            shelf.append(round(raw / 10) * 10 - 1 if raw < 1000 else round(raw / 100) * 100 - 10)
        prices.append(sorted(shelf))
    return prices


def _refunds(rng: random.Random, sales: list[_Sale], count: int, end: dt.datetime) -> list[_Sale]:
    """``count`` refunds of distinct sales, each later than its sale and before ``end``."""
    end_epoch = int(end.timestamp())
    eligible = [sale for sale in sales if sale.at < end_epoch - 86_400]
    refunds = []
    for offset, sale in enumerate(rng.sample(eligible, min(count, len(eligible)))):
        delay = rng.randint(3_600, min(14 * 86_400, end_epoch - sale.at - 60))
        roll = rng.random()
        if roll < 0.06:  # compensation for a defect, goods kept
            units, cents = 0, sale.cents * rng.randint(10, 30) // 100
        elif roll < 0.25 and sale.quantity > 1:  # part of the units brought back
            units = rng.randint(1, sale.quantity - 1)
            cents = sale.cents * units // sale.quantity
        else:
            units, cents = sale.quantity, sale.cents
        margin = None if sale.margin_cents is None else -(sale.margin_cents * cents // max(sale.cents, 1))
        refunds.append(
            _Sale(
                sale.at + delay,
                sale.customer,
                len(sales) + offset,
                -cents,
                sale.category,
                sale.sku,
                -units,
                margin,
                sale.source,
                refund_of=sale.seq,
            )
        )
    return refunds


def _purchase_row(sale: _Sale, customer_ids: Sequence[int], external_ids: dict[int, str]) -> dict[str, Any]:
    ordered_at = dt.datetime.fromtimestamp(sale.at, UTC)
    row: dict[str, Any] = {
        "external_id": external_ids[sale.seq],
        "customer_id": customer_ids[sale.customer],
        "ordered_at": ordered_at,
        "amount": _money(sale.cents),
        "currency": CURRENCY,
        "category": sale.category,
        "sku": sale.sku,
        "quantity": Decimal(sale.quantity),
        "margin": None if sale.margin_cents is None else _money(sale.margin_cents),
        "source": sale.source,
        "created_at": ordered_at + dt.timedelta(minutes=5 + sale.seq % 55),
    }
    if sale.refund_of is not None:
        row["refunded_external_id"] = external_ids[sale.refund_of]
    return row


# -- summary and helpers -------------------------------------------------------------------------


def _summarise(
    customer_rows: list[dict[str, Any]], sales: list[_Sale], refunds: list[_Sale], end: dt.datetime
) -> DemoDataSummary:
    net: dict[int, int] = {}
    last: dict[int, int] = {}
    orders: dict[int, int] = {}
    for sale in sales:
        net[sale.customer] = net.get(sale.customer, 0) + sale.cents
        last[sale.customer] = max(last.get(sale.customer, 0), sale.at)
        orders[sale.customer] = orders.get(sale.customer, 0) + 1
    for refund in refunds:
        net[refund.customer] += refund.cents
    ranked = sorted(net.values())
    bottom = sum(ranked[: len(ranked) * 3 // 4])
    total = sum(ranked)
    lapsed_before = int(end.timestamp()) - LAPSED_DAYS * 86_400
    times = [sale.at for sale in itertools.chain(sales, refunds)]
    return DemoDataSummary(
        customers=len(customer_rows),
        companies=sum(1 for row in customer_rows if row["company"]),
        prospects=sum(1 for row in customer_rows if row["lifecycle_stage"] == "visitor"),
        buyers=len(net),
        one_time_buyers=sum(1 for count in orders.values() if count == 1),
        lapsed_buyers=sum(1 for at in last.values() if at < lapsed_before),
        purchases=len(sales) + len(refunds),
        refunds=len(refunds),
        revenue=_money(total),
        bottom75_revenue_share=bottom / total if total else 0.0,
        first_order_at=dt.datetime.fromtimestamp(min(times), UTC) if times else None,
        last_order_at=dt.datetime.fromtimestamp(max(times), UTC) if times else None,
    )


def _require_empty(connection: Connection) -> None:
    for table in (CUSTOMER, PURCHASE):
        if connection.execute(select(func.count()).select_from(table)).scalar_one():
            raise EngineError(
                f"the {table.name} table is not empty: demo data goes into a new, empty database"
            )


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _clamp(value: float) -> float:
    return min(max(value, 0.0), 0.999)


def _later(rng: random.Random, start: dt.datetime, end: dt.datetime, spread: float = 0.3) -> dt.datetime:
    """A time between ``start`` and ``end``, nearer ``start`` the smaller ``spread`` is."""
    span = max(int((end - start).total_seconds()), 1)
    return start + dt.timedelta(seconds=int(span * rng.random() ** (1 / spread)))


def _pick(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    return rng.choices([name for name, _ in options], weights=[weight for _, weight in options])[0]


def _weighted(options: Sequence[Any], weights: Sequence[float]) -> Any:
    """A picker ``pick(rng)`` drawing from ``options`` with the given weights."""
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]

    def pick(rng: random.Random) -> Any:
        return options[min(bisect.bisect_right(cumulative, rng.uniform(0, total)), len(options) - 1)]

    return pick


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK_ROWS):
        yield rows[start : start + CHUNK_ROWS]
