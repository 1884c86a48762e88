"""HTTP API load test: redemptions on a few shared accounts at a fixed rate (PostgreSQL) against ``/health``.

Creates a throw-away PostgreSQL database (``crm_bench_<random>``, dropped at
the end unless ``--keep``), a programme, ``--accounts`` members with
``--points`` each and an API key, then starts ``crm serve`` (uvicorn,
``--workers`` processes) on a free loopback port. Then it sends, open loop
(request *i* is due at ``start + i / rate`` whatever the answers), from
``--clients`` coroutines sharing one ``httpx.AsyncClient``:

(a) the baseline: ``--seconds`` of ``GET /health`` at ``--rate`` requests/s
    (one query on the same database and the same app stack);
(b) ``--seconds`` of ``POST /v1/loyalty/bench/redeem`` of ``--spend`` points
    at ``--rate`` requests/s, each with its own Idempotency-Key, on accounts
    drawn at random: the accounts run dry before the end, so later
    redemptions are refused (409) under contention.

A latency runs from when the request was due to when its answer arrived
(queueing in the client counts). Printed: p50/p95/p99/max of both, the
ratio redeem p99 / health p99, whether redeem p99 < 25 ms (the goal), the
answers by status, and the overdraft check: ``engine.loyalty.ledger.audit`` finds
the ledger consistent, no balance is negative, no account made more
redemptions than its points afford (and how many were drained to the last one).

Usage::

    python bench/api_redeem.py                               # 200 req/s, 50 clients, 20 s each
    python bench/api_redeem.py --seconds 5 --rate 100        # a quick look
    python bench/api_redeem.py --profile /tmp/p.json         # py-spy (pip install py-spy) records the server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from engine.api.keys import create_api_key  # noqa: E402
from engine.clock import utcnow  # noqa: E402
from engine.config.checked import load_config  # noqa: E402
from engine.db.engines import make_engine  # noqa: E402
from engine.db.schema import upgrade  # noqa: E402
from engine.loyalty.ledger.audit import audit  # noqa: E402
from engine.loyalty.ledger.member_moves import adjust  # noqa: E402
from engine.models.tables import ACCOUNT, CUSTOMER, OPERATION  # noqa: E402

GOAL_MS = 25.0
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CRM = Path(sys.executable).parent / "crm"
CONFIG = """\
# Written by bench/api_redeem.py for one benchmark run.
[engine]
timezone = "Europe/Moscow"
currency = "RUB"

[loyalty.programmes.bench]
point_value = 1.0
pending_days = 0
expiry = "365d"
earn = [{ name = "base", when = "true", points = "amount * 0.05" }]
"""


@dataclass
class Phase:
    """What one phase of load saw: latencies (ms) by outcome and the answers by status."""

    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    late: float = 0.0  # the most a request was sent after it was due (ms)
    seconds: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the server's processes used during the phase

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of all latencies (ms)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    def line(self) -> str:
        """p50/p95/p99/max and the rate achieved."""
        rate = len(self.latencies) / self.seconds if self.seconds else 0.0
        return (
            f"{self.name:>7}: p50 {self.quantile(0.50):6.1f} ms  p95 {self.quantile(0.95):6.1f} ms  "
            f"p99 {self.quantile(0.99):6.1f} ms  max {max(self.latencies, default=0):6.1f} ms  "
            f"mean {statistics.fmean(self.latencies) if self.latencies else 0:6.1f} ms  "
            f"({len(self.latencies):,} answers, {rate:.0f}/s, sent at most {self.late:.1f} ms late; "
            f"server CPU {self.server_cpu / max(1, len(self.latencies)) * 1000:.1f} ms per request)"
        )


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    """A throw-away database on the server, dropped at the end unless ``--keep``."""
    name = f"crm_bench_{secrets.token_hex(4)}"
    server = create_engine(args.server_url, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(args.server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        if args.keep:
            print(f"kept: {url}", file=sys.stderr)
        else:
            with server.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.dispose()


def prepare(url: str, folder: Path, accounts: int, points: int) -> tuple[Path, str, list[str]]:
    """Schema, config, members with ``points`` each and an API key; returns (config, key, members)."""
    engine = make_engine(url)
    upgrade(engine)
    path = folder / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    programme = load_config(path).programmes["bench"]
    members = [f"M{n:03d}" for n in range(1, accounts + 1)] + ["WARM"]
    now = utcnow()
    with engine.begin() as connection:
        for member in members:
            connection.execute(
                CUSTOMER.insert().values(
                    external_id=member, source="bench", attributes={}, created_at=now, updated_at=now
                )
            )
    for member in members:
        given = points if member != "WARM" else 10**8  # the warm-up's own account never runs dry
        adjust(
            engine,
            programme,
            key=f"seed:{member}",
            customer=member,
            points=given,
            reason="bench",
            actor="bench",
        )
    key = create_api_key(engine, "bench", ["loyalty"]).key
    engine.dispose()
    return path, key, members[:-1]


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(config: Path, url: str, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``crm serve`` on a free port, until the block ends."""
    port = _free_port()
    env = {**os.environ, "CRM_CONFIG": str(config), "CRM_DATABASE_URL": url}
    command = [str(CRM), "serve", "--port", str(port), "--workers", str(workers), "--no-access-log"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"crm serve did not start: {process.communicate()[1].decode()}")
            time.sleep(0.2)
        time.sleep(1.0 * workers)  # every worker up, not only the first
        yield base, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


async def load(
    client: httpx.AsyncClient,
    phase: Phase,
    rate: float,
    count: int,
    clients: int,
    request: Any,
) -> None:
    """Send ``count`` requests, request *i* due at ``start + i / rate``, from ``clients`` coroutines."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    following = iter(range(count))

    async def worker() -> None:
        for i in following:
            due = start + i / rate
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            phase.late = max(phase.late, (loop.time() - due) * 1000)
            try:
                answer = await request(client, i)
                phase.statuses[answer.status_code] += 1
            except httpx.HTTPError as exc:
                phase.errors[type(exc).__name__] += 1
                continue
            phase.latencies.append((loop.time() - due) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    phase.seconds = time.perf_counter() - began


async def drive(
    base: str, key: str, members: list[str], args: argparse.Namespace, pid: int
) -> tuple[Phase, Phase]:
    """The baseline phase, then the redemptions, on one client."""
    count = int(args.rate * args.seconds)
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    pick = random.Random(7)
    run = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:

        async def health(c: httpx.AsyncClient, _i: int) -> httpx.Response:
            return await c.get("/health")

        async def redeem(c: httpx.AsyncClient, i: int) -> httpx.Response:
            body = {"customer": pick.choice(members), "points": args.spend}
            return await c.post(
                "/v1/loyalty/bench/redeem", json=body, headers={"Idempotency-Key": f"bench-{run}-{i}"}
            )

        async def warm_redeem(c: httpx.AsyncClient, i: int) -> httpx.Response:
            body = {"customer": "WARM", "points": 1}
            return await c.post(
                "/v1/loyalty/bench/redeem", json=body, headers={"Idempotency-Key": f"warm-{run}-{i}"}
            )

        # connections opened, statements prepared: both paths warm before anything is measured
        for request in (health, warm_redeem):
            await load(client, Phase("warm-up"), args.rate / 2, min(300, count), args.clients, request)
        baseline, redemptions = Phase("health"), Phase("redeem")
        for phase, request in ((baseline, health), (redemptions, redeem)):
            used = server_cpu(pid)
            await load(client, phase, args.rate, count, args.clients, request)
            phase.server_cpu = server_cpu(pid) - used
    return baseline, redemptions


def overdraft_check(url: str, members: list[str], points: int, spend: int) -> tuple[bool, str]:
    """Audit clean, no negative bucket, no account redeemed more than its points afford."""
    engine = make_engine(url)
    report = audit(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            select(CUSTOMER.c.external_id, ACCOUNT.c.available, ACCOUNT.c.held, ACCOUNT.c.debt)
            .join(ACCOUNT, ACCOUNT.c.customer_id == CUSTOMER.c.id)
            .order_by(CUSTOMER.c.external_id)
        ).all()
        redeemed = Counter(
            connection.execute(
                select(CUSTOMER.c.external_id)
                .select_from(OPERATION.join(ACCOUNT, ACCOUNT.c.id == OPERATION.c.account_id))
                .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
                .where(OPERATION.c.command == "redeem")
            ).scalars()
        )
    engine.dispose()
    negative = [row.external_id for row in rows if min(row.available, row.held, row.debt) < 0]
    rows = [row for row in rows if row.external_id in members]  # not the warm-up's account
    lines = [
        f"{row.external_id}: {redeemed[row.external_id]} redemptions, {row.available} points left"
        for row in rows
    ]
    afford = points // spend
    drained = [m for m in members if redeemed[m] == afford]
    ok = (
        report.ok
        and not negative
        and all(redeemed[m] <= afford for m in members)
        and all(row.available == points - spend * redeemed[row.external_id] for row in rows)
    )
    summary = (
        f"audit {'consistent' if report.ok else f'{len(report.problems)} problems'}, "
        f"negative balances: {len(negative)}, accounts drained to the last affordable redemption: "
        f"{len(drained)}/{len(members)} ({afford} each)\n  " + "\n  ".join(lines)
    )
    return ok, summary


def run(args: argparse.Namespace) -> bool:
    folder = Path(tempfile.mkdtemp(prefix="crm_bench_api_"))
    try:
        with database(args) as url:
            config, key, members = prepare(url, folder, args.accounts, args.points)
            print(
                f"{args.accounts} accounts of {args.points:,} points, {args.clients} clients, "
                f"{args.rate:.0f} requests/s for {args.seconds:g} s per phase, {args.workers} uvicorn workers"
            )
            with server(config, url, args.workers) as (base, process):
                profiler = None
                if args.profile:
                    spy = Path(sys.executable).parent / "py-spy"
                    profiler = subprocess.Popen(
                        [
                            str(spy),
                            "record",
                            "--subprocesses",
                            "-o",
                            args.profile,
                            "--pid",
                            str(process.pid),
                            "-f",
                            "speedscope",
                        ],
                    )
                    time.sleep(1)
                baseline, redemptions = asyncio.run(drive(base, key, members, args, process.pid))
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    profiler.wait(timeout=60)
            ok, summary = overdraft_check(url, members, args.points, args.spend)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(baseline.line())
    print(redemptions.line())
    print(
        f" health answers: {dict(baseline.statuses)}"
        + (f", errors {dict(baseline.errors)}" if baseline.errors else "")
    )
    print(
        f" redeem answers: {dict(redemptions.statuses)} (201 spent, 409 refused: not enough points)"
        + (f", errors {dict(redemptions.errors)}" if redemptions.errors else "")
    )
    ratio = redemptions.quantile(0.99) / baseline.quantile(0.99)
    p99 = redemptions.quantile(0.99)
    met = p99 < GOAL_MS
    print(f"ratio redeem p99 / health p99: {ratio:.2f}")
    print(f"goal redeem p99 < {GOAL_MS:g} ms: {'met' if met else 'missed'} ({p99:.1f} ms)")
    print(f"overdraft check: {'ok' if ok else 'FAILED'}: {summary}")
    unexpected = set(redemptions.statuses) - {201, 409} or redemptions.errors or baseline.errors
    return ok and not unexpected


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--server-url", default=POSTGRES_SERVER, help=f"PostgreSQL server (default {POSTGRES_SERVER})"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=50, help="client coroutines")
    parser.add_argument("--accounts", type=int, default=5, help="accounts the redemptions share")
    parser.add_argument(
        "--points", type=int, help="points per account (default: 80 %% of what is asked of it)"
    )
    parser.add_argument("--spend", type=int, default=10, help="points per redemption")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--profile", help="record the server with py-spy into this file (speedscope)")
    args = parser.parse_args(argv)
    signal.signal(
        signal.SIGTERM, lambda *_: sys.exit(143)
    )  # killed: still stop the server, drop the database
    if args.points is None:
        asked = args.rate * args.seconds / args.accounts * args.spend
        args.points = int(asked * 0.8) // args.spend * args.spend
    if not run(args):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
