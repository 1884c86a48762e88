"""Budget benchmark: the plan of 200 campaigns over 1,000,000 customers against one scan of the customers.

Generates customers and purchases inside the database with the generator of
``bench/segments.py`` (the same data for the same sizes), refreshes the
metrics and the twelve segments of a throw-away configuration written into a
temp folder (ABC classes, lifecycle stages, consent rules, a bucket, an
attribute, ``in_segment``, ``true``: several million current memberships),
suppresses about 1 % of the email addresses and 0.5 % of the phones, and
writes 200 campaign files: varied segments, channels (email, sms, call,
post; two-step campaigns on two channels), schedules (weekly, monthly,
twice-monthly, one-off ``at``), control groups, preparation costs, triggered
campaigns with ``expected_audience`` (and two without, planned from the
previous quarter's outbox); dated, segment and campaign prices; a budget file
for the quarter. Then it prints:

(a) the time of ``budget_report`` for the quarter (plan, actual, segment
    refresh times; the campaign files are loaded once beforehand and timed on
    their own), against a baseline measured in the same run: one full scan
    of the customer table, ``SELECT count(*), count(email), sum(CASE WHEN
    consent_email ...) FROM customer``. ``consent_email`` is in no index, so
    neither SQLite nor PostgreSQL can answer from an index alone (as they
    could for ``count(*)`` or ``count(email)`` alone): both read every row of
    the table; the plan the database chose is printed to show it. Each round
    runs the report, the scan, ``segment_reach`` alone (the plan's one
    ``GROUP BY``, its rows fetched) and the report of 20 campaigns, in
    reverse order every other round; best of ``--repeat``. Printed: the
    ratio report / scan (goal <= 3), the number of SQL statements the report
    executed (a ``before_cursor_execute`` listener), the memberships its
    ``GROUP BY`` counted, each statement's time, and what is left for Python;
(b) the report of 20 campaigns that name every segment and kind of trigger
    of the 200, against the 200: the statements and the memberships counted
    are the same, so the difference is the Python per campaign (the time of
    the campaigns' firings alone is printed);
``--decompose``: ``segment_reach``'s query written by hand one part at a time
    (memberships alone, + the customer join, + the reach flags, + grouping by
    them, + the suppression joins) and an alternative shape, each against the
    scan: what each part of the statement costs.

Usage::

    python bench/budget.py                                   # SQLite file in a temp folder
    python bench/budget.py --postgresql                      # throw-away crm_bench_<random>
    python bench/budget.py --customers 50000 --purchases 100000
    python bench/budget.py --database-url sqlite:///bench.db --keep   # generate once, reuse
    python bench/budget.py --database-url ... --keep --no-refresh     # and skip the segments refresh
    python bench/budget.py --explain                         # the query plan of the slowest statement
    python bench/budget.py --index "segment_membership(segment, left_at, customer_id)"   # dropped after

``--keep`` keeps the database (and reuses its data when it already holds the
requested counts); without it a generated database is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import tempfile
import time
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script: the other benchmarks are modules beside this one
    sys.path.insert(0, str(BENCH))

from segments import (  # noqa: E402  (segments.py also puts the checkout on sys.path)
    Timing,
    _execute,
    analyze,
    database,
    database_parser,
    ensure_data,
    extra_indexes,
    timed,
)

from engine.budget.audience_counts import segment_reach  # noqa: E402
from engine.budget.contact_matrix import TRIGGERED, active_days, budget_report  # noqa: E402
from engine.budget.report import BudgetReport  # noqa: E402
from engine.campaigns.firings import firings  # noqa: E402
from engine.campaigns.loading import CampaignFile, load_campaigns  # noqa: E402
from engine.config.checked import Config, load_config  # noqa: E402
from engine.db.engines import make_engine  # noqa: E402
from engine.db.schema import upgrade  # noqa: E402
from engine.metrics.customer_metrics import refresh_metrics  # noqa: E402
from engine.reporting.periods import Period  # noqa: E402
from engine.segments.membership import refresh_segments  # noqa: E402

ZONE = "Europe/Moscow"
GOAL = 3.0
CAMPAIGNS = 200
FEW = 20

BASELINE_SQL = "SELECT count(*), count(email), sum(CASE WHEN consent_email THEN 1 ELSE 0 END) FROM customer"

CONFIG = """\
# Written by bench/budget.py for one benchmark run.
[engine]
timezone = "{zone}"
currency = "RUB"

[channels.email]
unit_cost = 0.40

[[channels.email.prices]]
campaign = "bench_000"
unit_cost = 0.30

[channels.sms]
unit_cost = 3.50

[channels.call]
unit_cost = 60.0

[[channels.call.prices]]
from = {price_change}
unit_cost = 65.0

[[channels.call.prices]]
segment = "large"
unit_cost = 80.0

[channels.post]
unit_cost = 45.0

[customers]
attributes = {{ vip = "bool", children = "int" }}

[metrics]
abc = {{ A = 0.80, B = 0.95 }}
regular_min_orders = 3
regular_window_days = 365
"""

#: the segments of the configuration: several million current memberships at 1,000,000 customers
SEGMENTS = {
    "everyone": "true",
    "large": "abc_class == 'A'",
    "medium": "abc_class == 'B'",
    "small": "abc_class == 'C'",
    "regulars": "lifecycle_stage == 'regular'",
    "clients": "lifecycle_stage == 'client'",
    "prospects": "lifecycle_stage == 'visitor' and (email is not None or phone is not None)",
    "lapsing_large": "in_segment('large') and 90 <= days_since_last_order <= 180",
    "email_subscribers": "consent_email and email is not None",
    "phone_reachable": "(consent_sms or consent_call) and phone is not None",
    "test_cell": "bucket(100, 'bench') < 30",
    "vip": "attr.vip",
}

TEMPLATES = {
    "offer.html.j2": "<p>{{ customer.first_name or 'Dear customer' }}, {{ campaign.name }}.</p>\n",
    "offer_sms.txt.j2": "{{ customer.first_name or 'Hello' }}: -10 % until Sunday. shop.example\n",
    "offer_call.md": "Greet {{ customer.first_name }}, present the offer, note the answer.\n",
    "offer_letter.md": "Dear {{ customer.first_name or 'customer' }},\n\nour new catalogue is enclosed.\n",
}
CONTENT = {
    "email": 'template = "offer.html.j2"\nsubject = "{{ customer.first_name or \'Hello\' }}, news"',
    "sms": 'template = "offer_sms.txt.j2"',
    "call": 'script = "offer_call.md"',
    "post": 'letter = "offer_letter.md"',
}
#: the channels of a campaign's steps, by ``n // 10``: one channel, or two steps on two channels
STEPS = (
    ("email",),
    ("sms",),
    ("email", "sms"),
    ("email", "call"),
    ("post",),
    ("sms", "post"),
    ("call",),
    ("email", "post"),
    ("email",),
    ("call", "email"),
)
STRATEGIES = ("loyalty", "stimulation", "cost_reduction")


# -- the throw-away configuration ----------------------------------------------------------------


def campaign_key(n: int) -> str:
    return f"bench_{n:03d}"


def campaign_text(n: int, period: Period) -> str:
    """Campaign ``n``'s file: its kind by ``n % 10``, its steps by ``n // 10``, all active in ``period``."""
    segments = list(SEGMENTS)
    segment = segments[(n * 7) % len(segments)]
    start, end = period.start, period.end
    if n % 7 == 3:
        start = period.start - dt.timedelta(days=30)  # began last quarter: preparation counted there
    if n % 11 == 5:
        end = period.start + dt.timedelta(days=45)  # ends mid-quarter
    kind = n % 10
    if kind <= 4:
        weekday = ("MON", "TUE", "WED", "THU", "FRI")[kind]
        trigger = f'schedule = "0 {9 + n % 9} * * {weekday}"'
    elif kind <= 6:
        trigger = f'schedule = "0 11 {1 + n % 28} * *"'
    elif kind == 7:
        trigger = 'schedule = "30 10 1,15 * *"'
    elif kind == 8:
        first, last = max(start, period.start), min(end, period.end)
        day = first + dt.timedelta(days=(n * 7) % ((last - first).days + 1))
        trigger = f"at = {day}T10:00:00"
    else:
        trigger = (
            "on_segment_entry = true",
            'on_event = "cart_abandoned"',
            'anniversary = { field = "birth_date", offset_days = -3 }',
        )[(n // 10) % 3]
        if n not in (49, 149):  # two are planned from the previous quarter's outbox (empty: 0)
            trigger += f"\nexpected_audience = {500 + 250 * (n % 40)}"
    lines = [
        f"# Written by bench/budget.py: campaign {n} of the benchmark.",
        f'name = "Benchmark campaign {n}"',
        f'segment = "{segment}"',
        f'strategy = "{STRATEGIES[n % 3]}"',
        f"priority = {n % 20}",
        f"start = {start}",
        f"end = {end}",
        trigger,
        f"control_group = {(0, 0.05, 0.10)[n % 3]}",
        f"preparation_cost = {(0, 5000, 15000, 2500)[n % 4]}",
    ]
    for k, channel in enumerate(STEPS[(n // 10) % len(STEPS)]):
        lines += ["", "[[steps]]", f'channel = "{channel}"', CONTENT[channel]]
        if k:
            lines += ['wait = "3d"', 'only_if = "not responded"']
        if channel == "post" and n % 2:
            lines.append("contacts_per_client = 2")
    return "\n".join(lines) + "\n"


def budget_text(period: Period) -> str:
    return (
        "# Written by bench/budget.py: the approved budget of the planned quarter.\n"
        f'period = "{period.label}"\n'
        "approved = 250000000\n\n"
        "[allocations.strategy]\n"
        "loyalty = 120000000\nstimulation = 80000000\ncost_reduction = 40000000\n\n"
        "[allocations.campaign]\n"
        f"{campaign_key(0)} = 1000000\n{campaign_key(1)} = 2000000\n"
    )


def write_setup(folder: Path, period: Period, campaigns: int) -> Path:
    """``config.toml``, the segments, ``campaigns`` campaign files, templates and a budget file."""
    price_change = period.start + dt.timedelta(days=45)
    text = CONFIG.format(zone=ZONE, price_change=price_change)
    text += "".join(f'\n[segments.{name}]\nrule = "{rule}"\n' for name, rule in SEGMENTS.items())
    (folder / "config.toml").write_text(text, encoding="utf-8")
    (folder / "campaigns" / "templates").mkdir(parents=True)
    for name, template in TEMPLATES.items():
        (folder / "campaigns" / "templates" / name).write_text(template, encoding="utf-8")
    for n in range(campaigns):
        (folder / "campaigns" / f"{campaign_key(n)}.toml").write_text(
            campaign_text(n, period), encoding="utf-8"
        )
    (folder / "budgets").mkdir()
    (folder / "budgets" / f"{period.label}.toml").write_text(budget_text(period), encoding="utf-8")
    return folder / "config.toml"


# -- data ----------------------------------------------------------------------------------------

#: about 1 % of the email addresses and 0.5 % of the phones are suppressed (idempotent)
SUPPRESS_SQL = """
INSERT INTO suppression (channel, address, customer_id, reason, source, created_at)
SELECT '{channel}', {column}, id, 'hard_bounce', 'bench', created_at FROM customer
WHERE {column} IS NOT NULL AND id % {every} = 7
  AND NOT EXISTS (SELECT 1 FROM suppression s WHERE s.channel = '{channel}' AND s.address = {column})
"""


def prepare(
    engine: Engine, url: str, args: argparse.Namespace, config: Config, as_of: dt.date, now: dt.datetime
) -> None:
    """Customers and purchases (generated, or reused with ``--keep``), metrics, suppressions, segments."""
    upgrade(engine)
    ensure_data(engine, url, args.customers, args.purchases, keep=args.keep, now=int(now.timestamp()))
    with engine.connect() as connection:
        metrics = connection.exec_driver_sql("SELECT count(*) FROM customer_metrics").scalar_one()
    if not metrics:
        started = time.perf_counter()
        refresh_metrics(engine, config, as_of, now=now)
        print(f"metrics: refreshed in {time.perf_counter() - started:.1f} s", flush=True)
    with engine.begin() as connection:
        for channel, column, every in (("email", "email", 100), ("sms", "phone", 200)):
            _execute(connection, SUPPRESS_SQL.format(channel=channel, column=column, every=every))
    if args.no_refresh:
        print("segments: not refreshed (--no-refresh), memberships used as they are")
    else:
        started = time.perf_counter()
        results = refresh_segments(engine, config, now=now, as_of=as_of)
        sizes = ", ".join(f"{r.name} {r.members:,}" for r in results)
        print(f"segments: refreshed in {time.perf_counter() - started:.1f} s: {sizes}")
    analyze(engine)


# -- timing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One SQL statement the report executed: its seconds (execute, not fetch), text and parameters."""

    seconds: float
    sql: str
    parameters: Any


@contextlib.contextmanager
def recorded(engine: Engine) -> Iterator[list[Statement]]:
    """Every SQL statement run on ``engine`` inside the block, timed, with its parameters."""
    statements: list[Statement] = []

    def before(connection: Connection, *_: object) -> None:
        connection.info["bench_started"] = time.perf_counter()

    def after(connection: Connection, _cursor: object, sql: str, parameters: Any, *_: object) -> None:
        seconds = time.perf_counter() - connection.info.pop("bench_started")
        statements.append(Statement(seconds, sql, parameters))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def baseline(engine: Engine) -> tuple[int, int, int]:
    """One full scan of the customer table."""
    with engine.connect() as connection:
        customers, emails, consents = connection.exec_driver_sql(BASELINE_SQL).one()
    return int(customers), int(emails), int(consents or 0)


def explain(engine: Engine, sql: str, parameters: Any = None, *, analyze_it: bool = False) -> list[str]:
    """The database's plan of ``sql`` (PostgreSQL: ``EXPLAIN ANALYZE`` when ``analyze_it``)."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze_it else "EXPLAIN "
            rows = connection.exec_driver_sql(prefix + sql, parameters or {}).all()
            return [row[0] for row in rows]
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters or ()).all()
        return [row[-1] for row in rows]


def label(sql: str) -> str:
    """What a statement of the report does, told by a fragment of its text."""
    flat = " ".join(sql.split())
    for fragment, name in (
        (
            "segment_membership.segment AS population",
            "segment_reach: members by segment and reach (GROUP BY)",
        ),
        ("campaign_run.campaign AS population", "observed_reach: last period's audiences by reach"),
        ("AS first_run", "actual: preparation of the first runs"),
        ("FROM outbox JOIN campaign_run", "actual: contacts sent in the period (GROUP BY)"),
        ("FROM campaign_run", "observed_reach: runs per campaign"),
        ("segment.refreshed_at", "segment refresh times"),
    ):
        if fragment in flat:
            return name
    return flat[:90]


@dataclass(frozen=True)
class Plan:
    """A set of campaigns and what the plan's ``GROUP BY`` counts for them."""

    campaigns: dict[str, CampaignFile]
    segments: list[str]  # of the scheduled campaigns: counted by segment_reach
    channels: list[str]
    memberships: int  # current memberships of those segments: the rows the GROUP BY aggregates


def plan_of(engine: Engine, campaigns: dict[str, CampaignFile], period: Period) -> Plan:
    """What ``plan_lines`` asks ``segment_reach`` for these campaigns (active ones only)."""
    active = [c.campaign for c in campaigns.values() if active_days(c.campaign, period) is not None]
    segments = sorted({c.segment for c in active if c.trigger not in TRIGGERED})
    channels = sorted({step.channel for c in active for step in c.steps})
    names = ", ".join(f"'{name}'" for name in segments) or "''"
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            f"SELECT count(*) FROM segment_membership WHERE left_at IS NULL AND segment IN ({names})"
        ).scalar_one()
    return Plan(campaigns, segments, channels, int(rows))


def representative(campaigns: dict[str, CampaignFile], size: int) -> dict[str, CampaignFile]:
    """``size`` campaigns, in key order, that together name every segment and kind of trigger of all."""
    chosen: dict[str, CampaignFile] = {}
    seen: set[tuple[str, str]] = set()
    for key, c in sorted(campaigns.items()):
        kind = c.campaign.trigger if c.campaign.expected_audience is None else "expected_audience"
        counted = {("segment", c.campaign.segment)} if c.campaign.trigger not in TRIGGERED else set()
        new = ({("kind", kind)} | counted) - seen
        if new and len(chosen) < size:
            chosen[key] = c
            seen |= new
    for key, c in sorted(campaigns.items()):
        if len(chosen) >= size:
            break
        chosen.setdefault(key, c)
    return dict(sorted(chosen.items()))


@dataclass
class Side:
    """The timed runs of one thing, and (for a report) the statements and result of its best run."""

    runs: list[float] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    report: BudgetReport | None = None

    @property
    def timing(self) -> Timing:
        return Timing(self.runs)

    def add(self, seconds: float, statements: list[Statement], report: BudgetReport | None) -> None:
        if not self.runs or seconds < min(self.runs):
            self.statements, self.report = statements, report
        self.runs.append(seconds)


def time_report(engine: Engine, config: Config, period: Period, plan: Plan, side: Side) -> None:
    with recorded(engine) as statements:
        timing, report = timed(
            1, lambda: budget_report(engine, config, period=period, campaigns=plan.campaigns)
        )
    side.add(timing.best, statements, report)


def time_reach(engine: Engine, plan: Plan, side: Side) -> None:
    """``segment_reach`` alone, its rows fetched: the set-based SQL of the plan."""

    def reach() -> int:
        with engine.connect() as connection:
            found = segment_reach(connection, plan.segments, plan.channels)
        return sum(r.members for r in found.values())

    timing, members = timed(1, reach)
    if members != plan.memberships:
        raise SystemExit(
            f"segment_reach counted {members:,} members, the memberships are {plan.memberships:,}"
        )
    side.add(timing.best, [], None)


def time_scan(engine: Engine, side: Side) -> None:
    timing, _ = timed(1, lambda: baseline(engine))
    side.add(timing.best, [], None)


#: the plan's GROUP BY built up step by step by hand (``--decompose``), to see what each part costs
REACH = {"call": ("consent_call", "phone"), "email": ("consent_email", "email")}
REACH |= {"post": ("consent_post", "address"), "sms": ("consent_sms", "phone")}


def decomposition(segments: list[str], channels: list[str]) -> list[tuple[str, str]]:
    """``segment_reach``'s query written by hand, one part added at a time; and an alternative shape."""
    where = "m.left_at IS NULL AND m.segment IN ({})".format(", ".join(f"'{name}'" for name in segments))
    joined = "FROM segment_membership m JOIN customer c ON c.id = m.customer_id"
    suppressed = ""  # the engine's two outer joins a channel: by customer and by address
    for ch in channels:
        suppressed += (
            f" LEFT JOIN (SELECT DISTINCT customer_id FROM suppression WHERE channel = '{ch}' "
            f"AND customer_id IS NOT NULL) sc_{ch} ON sc_{ch}.customer_id = c.id"
            f" LEFT JOIN (SELECT DISTINCT address FROM suppression WHERE channel = '{ch}') sa_{ch} "
            f"ON sa_{ch}.address = c.{REACH[ch][1]}"
        )

    def flag(ch: str, suppression: bool) -> str:
        consent, address = REACH[ch]
        test = f"c.{consent} AND c.{address} IS NOT NULL AND c.{address} <> ''"
        if suppression:
            test += f" AND sc_{ch}.customer_id IS NULL AND sa_{ch}.address IS NULL"
        return f"CASE WHEN {test} THEN 1 ELSE 0 END"

    flags = [flag(ch, False) for ch in channels]
    full = [flag(ch, True) for ch in channels]
    code = " + ".join(f"{flag} * {2**n}" for n, flag in enumerate(full))
    keys = ", ".join(str(n) for n in range(1, len(flags) + 2))
    sums = ", ".join(f"sum({flag})" for flag in flags)
    return [
        (
            "1 memberships by segment, no customer",
            f"SELECT m.segment, count(*) FROM segment_membership m WHERE {where} GROUP BY m.segment",
        ),
        (
            "2 + join customer",
            f"SELECT m.segment, count(*), count(c.email) {joined} WHERE {where} GROUP BY m.segment",
        ),
        (
            "3 + reach flags (consent, address), summed",
            f"SELECT m.segment, {sums}, count(*) {joined} WHERE {where} GROUP BY m.segment",
        ),
        (
            "4 + GROUP BY segment and the flags",
            f"SELECT m.segment, {', '.join(flags)}, count(*) {joined} WHERE {where} GROUP BY {keys}",
        ),
        (
            "5 = 3 + the suppression joins",
            f"SELECT m.segment, {', '.join(f'sum({f})' for f in full)}, count(*) "
            f"{joined}{suppressed} WHERE {where} GROUP BY m.segment",
        ),
        (
            "alt: reach code once a customer, then by segment",
            f"WITH p AS MATERIALIZED (SELECT c.id, {code} AS code FROM customer c{suppressed}) "
            "SELECT m.segment, p.code, count(*) FROM segment_membership m JOIN p ON p.id = m.customer_id "
            f"WHERE {where} GROUP BY m.segment, p.code",
        ),
    ]


def _rows(connection: Connection, sql: str) -> list[Any]:
    return list(connection.exec_driver_sql(sql).all())


def decompose(engine: Engine, plan: Plan, reach: Side, base: float, repeat: int) -> None:
    """Time each part of :func:`decomposition` (best of ``repeat``) and print it beside the engine's."""
    print(f"    segment_reach's query written by hand, part by part; best of {repeat}, ratio to the scan:")
    steps = decomposition(plan.segments, plan.channels)
    for name, sql in steps[:-1]:
        with engine.connect() as connection:
            timing, _ = timed(repeat, partial(_rows, connection, sql))
        print(f"    {name:50}{timing.best:9.3f} s{timing.best / base:8.2f}")
    name = "6 = 4 + the suppression joins: segment_reach"
    print(f"    {name:50}{reach.timing.best:9.3f} s{reach.timing.best / base:8.2f}")
    name, sql = steps[-1]
    with engine.connect() as connection:
        timing, rows = timed(repeat, partial(_rows, connection, sql))
    counted = sum(row[-1] for row in rows)
    if counted != plan.memberships:
        raise SystemExit(f"{name}: counted {counted:,}, the memberships are {plan.memberships:,}")
    print(f"    {name:50}{timing.best:9.3f} s{timing.best / base:8.2f}")


# -- the benchmark -------------------------------------------------------------------------------


def measure(
    engine: Engine,
    config: Config,
    period: Period,
    campaigns: dict[str, CampaignFile],
    args: argparse.Namespace,
) -> None:
    """(a) and (b): each round runs the report of all campaigns, the scan, segment_reach, the few."""
    many = plan_of(engine, campaigns, period)
    few = plan_of(engine, representative(campaigns, FEW), period)
    budget_report(engine, config, period=period, campaigns=campaigns)  # warm both sides' caches
    baseline(engine)
    report, scan, reach, small = Side(), Side(), Side(), Side()
    print()
    print("rounds, alternating:")
    steps: list[Callable[[], object]] = [
        partial(time_report, engine, config, period, many, report),
        partial(time_scan, engine, scan),
        partial(time_reach, engine, many, reach),
        partial(time_report, engine, config, period, few, small),
    ]
    for n in range(args.repeat):
        for step in steps if n % 2 == 0 else reversed(steps):  # neither always runs first
            step()
        print(
            f"  round {n + 1}: report {report.runs[-1]:.3f} s, scan {scan.runs[-1]:.3f} s, "
            f"segment_reach {reach.runs[-1]:.3f} s, report of {FEW} {small.runs[-1]:.3f} s",
            flush=True,
        )
    scanned = baseline(engine)
    base = scan.timing.best
    ratio = report.timing.best / base
    assert report.report is not None
    customers, emails, consents = scanned
    print()
    print(f"(a) budget_report for {period.label}, {len(campaigns)} campaigns; best of {args.repeat}")
    print(f"    baseline: {BASELINE_SQL}")
    print(f"      = {customers:,} customers, {emails:,} emails, {consents:,} email consents")
    print("      plan: " + " / ".join(" ".join(line.split()) for line in explain(engine, BASELINE_SQL)))
    print(f"    {'':40}{'best s':>9}{'median s':>10}{'ratio':>8}")
    for name, side in (
        ("engine: budget_report", report),
        ("  of which segment_reach alone", reach),
        ("baseline: one scan of customer", scan),
    ):
        timing = side.timing
        print(f"    {name:40}{timing.best:9.3f}{timing.median:10.3f}{timing.best / base:8.2f}")
    verdict = "ok" if ratio <= GOAL else "MISSED"
    print(f"    ratio engine / baseline: {ratio:.2f} (goal <= {GOAL:g}): {verdict}")
    print(
        f"    SQL statements per report: {len(report.statements)}; memberships counted by its GROUP BY: "
        f"{many.memberships:,} in {len(many.segments)} segments, {len(many.channels)} channels"
    )
    lines = report.report.lines
    print(
        f"    plan: {len(lines)} lines, {sum(line.clients for line in lines):,} clients, "
        f"total {report.report.plan_total:,.2f} {report.report.currency}; {len(report.report.notes)} notes"
    )
    print("    where the best report went: its statements, execute only (SQLite still works while rows")
    print("    are fetched: segment_reach timed alone, its rows fetched, says what the statement costs):")
    slowest = sorted(report.statements, key=lambda s: s.seconds, reverse=True)
    for statement in slowest:
        print(f"    {statement.seconds:8.3f} s  {label(statement.sql)}")
    others = sum(s.seconds for s in slowest[1:])
    rest = report.timing.best - reach.timing.best - others
    print(f"    {reach.timing.best:8.3f} s  segment_reach alone, rows fetched")
    print(f"    {rest:8.3f} s  report - segment_reach alone - the other statements: Python (firings, lines,")
    print("                files' fingerprint)")
    if args.decompose:
        decompose(engine, many, reach, base, args.repeat)
    if args.explain and slowest:
        print("    plan of the slowest statement:")
        for line in explain(engine, slowest[0].sql, slowest[0].parameters, analyze_it=True):
            print(f"      {line}")

    print()
    print(f"(b) the report by number of campaigns; best of {args.repeat}, alternating with (a)")
    print(f"    the {FEW} name every segment and kind of trigger the {len(campaigns)} do")
    print(
        f"    {'campaigns':>10}{'segments':>10}{'memberships':>13}{'best s':>9}{'median s':>10}"
        f"{'statements':>12}{'lines':>7}{'ratio':>8}"
    )
    for plan, side in ((few, small), (many, report)):
        assert side.report is not None
        print(
            f"    {len(plan.campaigns):>10}{len(plan.segments):>10}{plan.memberships:>13,}"
            f"{side.timing.best:9.3f}{side.timing.median:10.3f}{len(side.statements):>12}"
            f"{len(side.report.lines):>7}{side.timing.best / base:>8.2f}"
        )
    print(
        f"    {len(campaigns)} / {FEW} campaigns: time x{report.timing.best / small.timing.best:.2f}, "
        f"+{report.timing.best - small.timing.best:.3f} s; statements {len(report.statements)} vs "
        f"{len(small.statements)} (ratio: against the scan)"
    )
    timing, count = timed(args.repeat, lambda: all_firings(config, period, campaigns))
    print(
        f"    of which Python: the firings of the {len(campaigns)} campaigns in {period.label} alone "
        f"(the scheduler's cron): {timing.best:.3f} s for {count:,} firings"
    )


def all_firings(config: Config, period: Period, campaigns: dict[str, CampaignFile]) -> int:
    """The firings of every scheduled campaign in ``period``, as ``plan_lines`` computes them."""
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    start, end = period.bounds(zone)
    anniversary_at = config.settings.scheduler.anniversary_at
    return sum(
        len(firings(c.campaign, zone, start, end, anniversary_at=anniversary_at))
        for c in campaigns.values()
        if c.campaign.trigger not in TRIGGERED
    )


def run(args: argparse.Namespace) -> None:
    zone = zoneinfo.ZoneInfo(ZONE)
    as_of: dt.date = args.as_of or dt.datetime.now(zone).date()
    now = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    period = Period.parse(args.period) if args.period else next_quarter(as_of)
    with database(args) as url, tempfile.TemporaryDirectory(prefix="crm_bench_budget_") as tmp:
        config = load_config(write_setup(Path(tmp), period, args.campaigns))
        engine = make_engine(url)
        print(f"database: {engine.url.render_as_string(hide_password=True)} ({engine.dialect.name})")
        print(
            f"size: {args.customers:,} customers, {args.purchases:,} purchases; as of {as_of}; "
            f"plan {period.label} ({period.start}..{period.end}); repeat {args.repeat}"
        )
        prepare(engine, url, args, config, as_of, now)
        loading, campaigns = timed(1, lambda: load_campaigns(config))
        print(
            f"campaigns: {len(campaigns)} files loaded and checked in {loading.best:.2f} s (not timed below)"
        )
        with extra_indexes(engine, args.index):
            measure(engine, config, period, campaigns, args)
        engine.dispose()


def next_quarter(day: dt.date) -> Period:
    """The quarter after the one containing ``day``."""
    return Period.containing(day).following()


def main(argv: list[str] | None = None) -> None:
    parser = database_parser(__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--purchases", type=int, default=2_000_000, help="for the metrics (ABC classes, lifecycle stages)"
    )
    parser.add_argument("--campaigns", type=int, default=CAMPAIGNS, help=f"campaign files (at least {FEW})")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (best is reported)")
    parser.add_argument(
        "--no-refresh", action="store_true", help="use the segment memberships already in the database"
    )
    parser.add_argument("--period", help="the period planned (default: the quarter after --as-of)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="business date (default today)")
    parser.add_argument(
        "--explain", action="store_true", help="print the query plan of the report's slowest statement"
    )
    parser.add_argument(
        "--decompose",
        action="store_true",
        help="time segment_reach's query built up by hand, step by step, to see what each part costs",
    )
    parser.add_argument(
        "--index",
        action="append",
        default=[],
        metavar="TABLE(COLUMNS)",
        help="an extra index for this run, e.g. 'segment_membership(segment, customer_id)' (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.database_url and args.postgresql is not None:
        parser.error("give --database-url or --postgresql, not both")
    if args.campaigns < FEW:
        parser.error(f"--campaigns must be at least {FEW}")
    run(args)


if __name__ == "__main__":
    main()
