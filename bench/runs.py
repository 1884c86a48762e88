"""Run benchmark: a campaign run's audience materialised into the outbox, and the memory of a whole run.

Generates customers and purchases inside the database with the generator of
``bench/segments.py`` (the same data for the same sizes), refreshes the
metrics and one segment, ``everyone`` (rule ``true``: every customer), and
writes a throw-away configuration into a temp folder: ``config.toml`` and
``campaigns/newsletter.toml``, a one-off (``at``) campaign with one email step
and a small jinja template, a 5 % control group, quiet hours, a frequency cap
and a budget line that is never reached. Then it prints:

(a) the time of ``start_run`` (the ``campaign_run`` row, one ``INSERT ...
    SELECT`` deciding every outbox row's state in SQL: consent, address,
    suppression, send time by zone out of quiet hours, frequency cap; then the
    control group drawn by hash among the reachable (one UPDATE), the cap
    pre-emption, the budget trim and the run's summary), against a baseline:
    a ``campaign_run`` row and one hand-written
    ``INSERT INTO outbox (...) SELECT ... FROM segment_membership JOIN
    customer`` writing the same number of rows, whose state is only ``CASE
    WHEN consent_email THEN 'queued' ELSE 'no_consent' END`` (recipient the
    email, one send time, no rank). Seconds, rows/s and the ratio engine /
    baseline, best of ``--repeat``, alternating; the outbox and run rows are
    deleted between runs, outside the timing; and the slowest statements of
    the best ``start_run``;
(b) in a fresh process (spawn), the peak RSS of materialising the run and,
    separately (the peak is reset between the two through
    ``/proc/self/clear_refs``), of draining it with ``drain(until_idle=True)``
    into a real transport: Postfix's ``smtp-sink`` on loopback when it is
    installed (``scripts/install-postfix``), else a Maildir in the temp folder
    (about 3 KB of disk per message); with messages/s of the drain and the
    RSS at each tenth of it (goal: peak < 300 MB, flat in the run's size).

Usage::

    python bench/runs.py                                   # SQLite file in a temp folder
    python bench/runs.py --postgresql                      # throw-away crm_bench_<random>
    python bench/runs.py --customers 200000 --purchases 1000000
    python bench/runs.py --database-url sqlite:///bench.db --keep   # generate once, reuse
    python bench/runs.py --only materialise                # (a) only; --only memory: (b) only
    python bench/runs.py --index "outbox(state, channel, scheduled_at, id)"   # try an index, dropped after

``--keep`` keeps the database (and reuses its data when it already holds the
requested counts; a database kept by ``bench/segments.py`` with the same sizes
holds the same data); without it a generated database is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import multiprocessing
import sys
import tempfile
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, bindparam, event, insert, text

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script: the other benchmarks are modules beside this one
    sys.path.insert(0, str(BENCH))

from segments import (  # noqa: E402  (segments.py also puts the checkout on sys.path)
    Timing,
    analyze,
    database,
    database_parser,
    ensure_data,
    extra_indexes,
    peak_rss_mib,
    timed,
)
from send import find_tool, smtp_sink  # noqa: E402

from engine.campaigns.loading import CampaignFile, load_campaigns  # noqa: E402
from engine.config.checked import Config, load_config  # noqa: E402
from engine.db.engines import make_engine  # noqa: E402
from engine.db.schema import upgrade  # noqa: E402
from engine.metrics.customer_metrics import refresh_metrics  # noqa: E402
from engine.models import outbox as states  # noqa: E402
from engine.models.tables import RUN  # noqa: E402
from engine.outbox import DrainSummary, drain  # noqa: E402
from engine.runs.runner import RunSummary, start_run  # noqa: E402
from engine.segments.membership import refresh_segments  # noqa: E402
from engine.sql.types import UtcDateTime  # noqa: E402

ZONE = "Europe/Moscow"
CAMPAIGN = "newsletter"
SEGMENT = "everyone"
UNIT_COST = "0.40"
GOAL_MIB = 300
OUTCOMES = ("sent", "failed", "bounced", "retrying", "expired", "suppressed", "no_consent", "no_address")

CONFIG = """\
# Written by bench/runs.py for one benchmark run.
[engine]
timezone = "{zone}"
currency = "RUB"

[links]
base_url = "https://crm.shop.example"
shop_url = "https://shop.example"
secret = "bench"

[channels.email]
unit_cost = {unit_cost}
transport = "{transport}"
from = "Shop <news@shop.example>"
maildir = "maildir"
concurrency = {sessions}
batch_size = {batch_size}

[channels.email.smtp]
host = "127.0.0.1"
port = {port}
starttls = false

[contact_policy]
quiet_hours = "21:00-09:00"
max_contacts = {{ email = "2/week", sms = "1/week" }}

[metrics]
abc = {{ A = 0.80, B = 0.95 }}

[segments.{segment}]
rule = "true"
"""
CAMPAIGN_FILE = """\
# Written by bench/runs.py: one email to every customer, once.
name = "Autumn newsletter"
segment = "{segment}"
strategy = "stimulation"
priority = 5
start = {start}
end = {end}
at = {at}
max_lateness = "3d"
control_group = 0.05
budget = 10000000
preparation_cost = 5000
context = {{ offer_until = "31 December" }}

[[steps]]
channel = "email"
template = "newsletter.html.j2"
subject = "{{{{ customer.first_name or 'Dear customer' }}}}, our autumn news"
"""
TEMPLATE = """\
<html>
  <body>
    <p>{{ customer.first_name or "Dear customer" }},</p>
    <p>the autumn collection is in the shop, and your discount of 10 % is valid
       until {{ offer_until }}.</p>
    <p><a href="{{ links.shop }}/autumn?c={{ customer.id }}">See the collection</a></p>
    <p style="font-size: 12px"><a href="{{ links.unsubscribe }}">Unsubscribe</a></p>
  </body>
</html>
"""

#: the baseline: the same rows, with only the consent check deciding the state
BASELINE_SQL = f"""
INSERT INTO outbox (run_id, customer_id, step, channel, variant, state, recipient, scheduled_at,
                    rank, unit_cost, contacts, attempts, created_at, updated_at)
SELECT :run_id, c.id, 0, 'email', NULL,
       CASE WHEN c.consent_email THEN '{states.QUEUED}' ELSE '{states.NO_CONSENT}' END,
       c.email, :at, 0, {UNIT_COST}, 1, 0, :now, :now
FROM segment_membership m JOIN customer c ON c.id = m.customer_id
WHERE m.segment = '{SEGMENT}' AND m.left_at IS NULL
"""
BASELINE_TEXT = (
    "baseline: INSERT INTO outbox SELECT ... FROM segment_membership JOIN customer, "
    "state = CASE WHEN consent_email THEN 'queued' ELSE 'no_consent' END, "
    "recipient = email, one send time, rank 0 (no control group, address, suppression, "
    "zones, caps or budget)"
)


@dataclass(frozen=True)
class Setup:
    """The benchmark's configuration folder and the instant the run fires at."""

    folder: Path
    at: dt.datetime  # the run's scheduled time and the ``now`` it is materialised at (UTC)

    @property
    def config_path(self) -> Path:
        return self.folder / "config.toml"


def write_setup(folder: Path, at: dt.datetime, *, port: int | None, sessions: int, batch_size: int) -> Setup:
    """``config.toml``, the campaign and its template in ``folder``; SMTP to ``port``, else a Maildir."""
    local = at.astimezone(zoneinfo.ZoneInfo(ZONE))
    (folder / "campaigns" / "templates").mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(
        CONFIG.format(
            zone=ZONE,
            unit_cost=UNIT_COST,
            transport="maildir" if port is None else "smtp",
            port=port or 25,
            sessions=sessions,
            batch_size=batch_size,
            segment=SEGMENT,
        ),
        encoding="utf-8",
    )
    (folder / "campaigns" / f"{CAMPAIGN}.toml").write_text(
        CAMPAIGN_FILE.format(
            segment=SEGMENT,
            start=local.date() - dt.timedelta(days=1),
            end=local.date() + dt.timedelta(days=30),
            at=local.isoformat(),
        ),
        encoding="utf-8",
    )
    (folder / "campaigns" / "templates" / "newsletter.html.j2").write_text(TEMPLATE, encoding="utf-8")
    return Setup(folder, at)


def default_at() -> dt.datetime:
    """Noon of yesterday in the business zone: daytime in every customer's zone, and already due."""
    zone = zoneinfo.ZoneInfo(ZONE)
    yesterday = dt.datetime.now(zone).date() - dt.timedelta(days=1)
    return dt.datetime.combine(yesterday, dt.time(12), zone).astimezone(dt.UTC)


# -- data ----------------------------------------------------------------------------------------


def prepare(engine: Engine, url: str, args: argparse.Namespace, config: Config, at: dt.datetime) -> None:
    """Customers and purchases (generated, or reused with ``--keep``), their metrics and the segment."""
    upgrade(engine)
    as_of = at.astimezone(zoneinfo.ZoneInfo(ZONE)).date()
    ensure_data(engine, url, args.customers, args.purchases, keep=args.keep, now=int(at.timestamp()))
    with engine.connect() as connection:
        metrics = connection.exec_driver_sql("SELECT count(*) FROM customer_metrics").scalar_one()
    if args.purchases and not metrics:
        started = time.perf_counter()
        refresh_metrics(engine, config, as_of, now=at)
        print(f"metrics: refreshed in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    (result,) = refresh_segments(engine, config, now=at, as_of=as_of)
    print(
        f"segment {SEGMENT}: {result.members:,} members, refreshed in {time.perf_counter() - started:.1f} s"
    )
    clear_runs(engine)


def clear_runs(engine: Engine) -> None:
    """Delete every run, outbox row, response and worker: the next run starts from an empty outbox."""
    tables = ("contact_response", "outbox", "campaign_run", "outbox_worker")
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {', '.join(tables)}")
    else:
        with engine.begin() as connection:
            for table in tables:
                connection.exec_driver_sql(f"DELETE FROM {table}")
    analyze(engine)


# -- (a) materialising the audience against the baseline ---------------------------------------------


def engine_run(engine: Engine, config: Config, campaign: CampaignFile, at: dt.datetime) -> RunSummary:
    return start_run(engine, config, campaign, scheduled_for=at, now=at)


def baseline_run(engine: Engine, campaign: CampaignFile, at: dt.datetime) -> int:
    """A run row and the hand-written INSERT ... SELECT; the number of outbox rows written."""
    statement = text(BASELINE_SQL).bindparams(
        bindparam("at", type_=UtcDateTime()), bindparam("now", type_=UtcDateTime())
    )
    with engine.begin() as connection:
        run_id = connection.execute(
            insert(RUN)
            .values(
                campaign=f"{campaign.key}-baseline",
                trigger="at",
                scheduled_for=at,
                state=states.RUN_QUEUED,
                segment=SEGMENT,
                strategy="stimulation",
                config_fingerprint="baseline",
                campaign_fingerprint="baseline",
                started_at=at,
            )
            .returning(RUN.c.id)
        ).scalar_one()
        return int(connection.execute(statement, {"run_id": run_id, "at": at, "now": at}).rowcount)


def against_baseline(
    engine: Engine, config: Config, campaign: CampaignFile, setup: Setup, repeat: int
) -> None:
    """(a): ``start_run`` and the baseline, alternating, each on an empty outbox."""
    engine_runs: list[float] = []
    baseline_runs: list[float] = []
    breakdowns: list[list[tuple[float, str]]] = []
    summary: RunSummary | None = None
    rows = set()
    for n in range(repeat):
        clear_runs(engine)
        with statement_times(engine) as statements:
            timing, summary = timed(1, lambda: engine_run(engine, config, campaign, setup.at))
        engine_runs += timing.runs
        breakdowns.append(statements)
        rows.add(summary.steps[0].audience)
        clear_runs(engine)
        timing, written = timed(1, lambda: baseline_run(engine, campaign, setup.at))
        baseline_runs += timing.runs
        rows.add(written)
        print(
            f"  round {n + 1}: engine {engine_runs[-1]:.2f} s, baseline {baseline_runs[-1]:.2f} s", flush=True
        )
    clear_runs(engine)
    if len(rows) != 1 or summary is None:
        raise SystemExit(f"the engine and the baseline wrote different numbers of rows: {sorted(rows)}")
    count = rows.pop()
    ours, theirs = Timing(engine_runs), Timing(baseline_runs)
    print()
    print(f"(a) materialising the audience of one email step, {count:,} outbox rows; best of {repeat}")
    print(f"    {BASELINE_TEXT}")
    print(f"    {'':34}{'seconds':>9}{'rows/s':>11}")
    print(f"    {'engine: start_run':34}{ours.best:9.2f}{count / ours.best:11,.0f}")
    print(f"    {'baseline: INSERT ... SELECT':34}{theirs.best:9.2f}{count / theirs.best:11,.0f}")
    print(f"    ratio engine / baseline: {ours.best / theirs.best:.2f}")
    print(f"    medians: engine {ours.median:.2f} s, baseline {theirs.median:.2f} s")
    print("    states: " + ", ".join(f"{state} {n:,}" for state, n in sorted(summary.counts.items())))
    print("    where the best start_run went (its slowest statements):")
    best = breakdowns[engine_runs.index(ours.best)]
    for seconds, statement in sorted(best, reverse=True)[:5]:
        print(f"    {seconds:8.2f} s  {label(statement)}")


@contextlib.contextmanager
def statement_times(engine: Engine) -> Iterator[list[tuple[float, str]]]:
    """The seconds of each SQL statement run on ``engine`` inside the block, with its text."""
    times: list[tuple[float, str]] = []

    def before(connection: Connection, *_: object) -> None:
        connection.info["bench_started"] = time.perf_counter()

    def after(connection: Connection, _cursor: object, statement: str, *_: object) -> None:
        times.append((time.perf_counter() - connection.info.pop("bench_started"), statement))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield times
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


#: what the statements of ``start_run`` do, told by a fragment of their text
LABELS = (
    ("INSERT INTO outbox", "INSERT INTO outbox ... SELECT: the audience and every row's state"),
    ("SELECT counted.id", "UPDATE outbox: lower-priority contacts over the cap pre-empted"),
    ("SELECT running.id", "UPDATE outbox: the budget line (a running sum by rank)"),
    ("GROUP BY outbox.step", "SELECT ... GROUP BY step, channel, state: the run's summary"),
)


def label(statement: str) -> str:
    flat = " ".join(statement.split())
    for fragment, name in LABELS:
        if fragment in flat:
            return name
    return flat[:90]


# -- (b) memory of a whole run in a fresh process --------------------------------------------------


def rss_mib() -> float:
    """The current resident set size of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux: ``5`` into ``/proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Sample:
    """The drain at one moment: rows processed, seconds since it started, RSS."""

    done: int
    seconds: float
    rss: float


@dataclass
class RunMemory:
    """What the child process measured."""

    rss_start: float = 0.0
    materialise_seconds: float = 0.0
    materialise_peak: float = 0.0
    rows: int = 0
    queued: int = 0
    peak_reset: bool = False
    drain_start: float = 0.0
    drain_seconds: float = 0.0
    drain_peak: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)


class Sampler:
    """The drain's progress callback: notes the time and the RSS at each tenth of the rows due."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        self.started = time.perf_counter()
        self.next = 0

    def __call__(self, summary: DrainSummary) -> None:
        done = summary.processed
        if summary.due and done >= self.next:
            self.samples.append(Sample(done, time.perf_counter() - self.started, rss_mib()))
            self.next = done + max(1, summary.due // 10)


def _run_in_child(url: str, config_path: str, at: dt.datetime) -> RunMemory:
    config = load_config(config_path)
    campaign = load_campaigns(config)[CAMPAIGN]
    engine = make_engine(url)
    with engine.connect():
        pass  # the driver and the connection belong to the baseline
    gc.collect()
    memory = RunMemory(rss_start=peak_rss_mib())
    started = time.perf_counter()
    summary = start_run(engine, config, campaign, scheduled_for=at, now=at)
    memory.materialise_seconds = time.perf_counter() - started
    memory.materialise_peak = peak_rss_mib()
    memory.rows = summary.steps[0].audience
    memory.queued = summary.counts.get(states.QUEUED, 0)
    gc.collect()
    memory.peak_reset = reset_peak()
    memory.drain_start = rss_mib()
    started = time.perf_counter()
    drained = drain(
        engine,
        config,
        only=["email"],
        until_idle=True,
        run_id=summary.run_id,
        progress=Sampler(memory.samples),
    )
    memory.drain_seconds = time.perf_counter() - started
    memory.drain_peak = peak_rss_mib()
    memory.counts = {name: getattr(drained, name) for name in OUTCOMES if getattr(drained, name)}
    engine.dispose()
    return memory


def run_memory(url: str, setup: Setup) -> RunMemory:
    """Materialise and drain one run in a fresh process: its peaks are not hidden by the data load's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        memory: RunMemory = pool.apply(_run_in_child, (url, str(setup.config_path), setup.at))
    return memory


@contextlib.contextmanager
def transport(args: argparse.Namespace) -> Iterator[tuple[int | None, str]]:
    """Postfix's smtp-sink on a loopback port (as bench/send.py starts it), else None for a Maildir."""
    sink = None if args.transport == "maildir" else find_tool("smtp-sink")
    if sink is None and args.transport == "smtp":
        raise SystemExit("smtp-sink (Debian package postfix) is needed: run scripts/install-postfix")
    if sink is None:
        yield None, "Maildir in the temp folder (about 3 KB of disk a message)"
        return
    with smtp_sink(sink, args.sessions) as port:
        yield port, f"SMTP to Postfix's smtp-sink on 127.0.0.1:{port}, {args.sessions} sessions"


def memory_of_a_run(url: str, engine: Engine, setup: Setup, what: str, batch_size: int) -> None:
    """(b): print the peaks, the drain's rate and its RSS along the way."""
    clear_runs(engine)
    memory = run_memory(url, setup)
    mib_per_mb = 2**20 / 10**6
    rate = memory.counts.get("sent", 0) / memory.drain_seconds if memory.drain_seconds else 0.0
    print()
    print(f"(b) one run in a fresh process: {memory.rows:,} outbox rows, {memory.queued:,} queued")
    print(f"    transport: {what}; batch size {batch_size}")
    seconds = memory.materialise_seconds
    print(
        f"    materialise: {seconds:.2f} s ({memory.rows / seconds:,.0f} rows/s), "
        f"peak RSS {memory.rss_start:.0f} -> {memory.materialise_peak:.0f} MiB"
    )
    reset = "" if memory.peak_reset else " (peak not reset: includes the materialising)"
    print(
        f"    drain: {memory.drain_seconds:.1f} s, {rate:,.0f} messages/s, "
        f"peak RSS {memory.drain_start:.0f} -> {memory.drain_peak:.0f} MiB{reset}"
    )
    print("    drain outcomes: " + ", ".join(f"{name} {n:,}" for name, n in memory.counts.items()))
    along = ", ".join(f"{s.done:,}: {s.rss:.0f}" for s in memory.samples)
    print(f"    RSS along the drain (rows done: MiB): {along}")
    pairs = zip(memory.samples, memory.samples[1:], strict=False)
    rates = ", ".join(f"{(b.done - a.done) / (b.seconds - a.seconds):,.0f}" for a, b in pairs)
    print(f"    rows/s of the drain, tenth by tenth: {rates}")
    peak = max(memory.materialise_peak, memory.drain_peak)
    verdict = "ok" if peak * mib_per_mb < GOAL_MIB else "MISSED"
    megabytes = peak * mib_per_mb
    print(f"    peak of the run {peak:.0f} MiB = {megabytes:.0f} MB (goal < {GOAL_MIB} MB): {verdict}")
    if memory.counts.get("sent", 0) != memory.queued:
        print(f"    WARNING: {memory.queued:,} rows were queued but {memory.counts.get('sent', 0):,} sent")


# -- main --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    at: dt.datetime = args.now.astimezone(dt.UTC) if args.now else default_at()
    with (
        database(args) as url,
        tempfile.TemporaryDirectory(prefix="crm_bench_runs_") as tmp,
        transport(args) as (port, what),
    ):
        setup = write_setup(Path(tmp), at, port=port, sessions=args.sessions, batch_size=args.batch_size)
        config = load_config(setup.config_path)
        campaign = load_campaigns(config)[CAMPAIGN]
        engine = make_engine(url)
        print(f"database: {engine.url.render_as_string(hide_password=True)} ({engine.dialect.name})")
        print(
            f"size: {args.customers:,} customers, {args.purchases:,} purchases; "
            f"run at {at.astimezone(zoneinfo.ZoneInfo(ZONE)):%Y-%m-%d %H:%M} {ZONE}; repeat {args.repeat}"
        )
        prepare(engine, url, args, config, at)
        with extra_indexes(engine, args.index):
            if args.only in (None, "materialise"):
                against_baseline(engine, config, campaign, setup, args.repeat)
            if args.only in (None, "memory"):
                memory_of_a_run(url, engine, setup, what, args.batch_size)
        clear_runs(engine)
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = database_parser(__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000, help="the segment and the run's audience")
    parser.add_argument("--purchases", type=int, default=5_000_000, help="for the metrics (the rank)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of (a) (best is reported)")
    parser.add_argument("--only", choices=["materialise", "memory"], help="measure (a) or (b) only")
    parser.add_argument(
        "--transport",
        choices=["auto", "smtp", "maildir"],
        default="auto",
        help="(b): smtp-sink when installed (auto), smtp-sink or fail (smtp), or a Maildir",
    )
    parser.add_argument("--sessions", type=int, default=16, help="SMTP connections of the drain")
    parser.add_argument("--batch-size", type=int, default=500, help="rows the worker claims at a time")
    parser.add_argument(
        "--index",
        action="append",
        default=[],
        metavar="TABLE(COLUMNS)",
        help="an extra index for this run, e.g. 'outbox(state, channel, scheduled_at, id)' (repeatable)",
    )
    parser.add_argument(
        "--now",
        type=dt.datetime.fromisoformat,
        help="when the run fires, with its offset (default: yesterday 12:00 in the business zone)",
    )
    args = parser.parse_args(argv)
    if args.database_url and args.postgresql is not None:
        parser.error("give --database-url or --postgresql, not both")
    if args.now is not None and args.now.tzinfo is None:
        parser.error("--now needs an offset, e.g. 2026-11-18T12:00+03:00")
    run(args)


if __name__ == "__main__":
    main()
