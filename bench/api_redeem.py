"""HTTP API load test: POS redemptions on shared accounts (PostgreSQL), against ``/health`` in the same run.

Creates a throw-away PostgreSQL database (``crm_bench_<random>``, dropped at
the end unless ``--keep``), a programme, ``--accounts`` members for the
latency phase (``M001``...) and as many for the saturation phase (``S1``...),
and an API key, then starts ``crm serve`` (uvicorn, ``--workers`` processes)
on a free loopback port. Then, against the same server:

(1) **at a fixed rate**, open loop: request *i* is due at ``start + i / rate``
    whatever the answers, and its latency runs from when it was due (time
    queued in the client counts). The client is spread over ``--procs``
    processes (request *i* goes to process ``i mod procs``), each keeping
    ``--clients / --procs`` keep-alive connections and writing pre-rendered
    requests on raw asyncio streams, so it stays cheap next to the server:
    (a) ``--seconds`` of ``GET /health`` at ``--rate`` requests/s (one query,
        the same app stack), the baseline;
    (b) ``--seconds`` of ``POST /v1/loyalty/bench/redeem`` of ``--spend``
        points at ``--rate``, each with its own Idempotency-Key, on ``M``
        members drawn at random: each holds 80 % of what is asked of it (at
        least two redemptions), so the accounts run dry and later redemptions
        are refused (409) while others still spend on the same rows.
(2) **at saturation**, closed loop with ``wrk`` (``scripts/install-wrk``):
    ``--saturate`` seconds of ``/health``, then of redemptions on the ``S``
    members (enough points never to run dry), ``--clients`` connections, 2
    threads. ``/health`` going well past the redemptions shows the load
    generator is not the limit.

Printed: p50/p95/p99/max at the fixed rate, requests/s and answers at
saturation, the server's CPU per request (``/proc``), whether redeem p99 <
25 ms and >= 500 redemptions/s (the goals), and the overdraft check:
``engine.loyalty.ledger.audit`` finds the ledger consistent, no balance is
negative, no account made more redemptions than its points afford, every
balance is what was given minus what was spent.

Usage::

    scripts/install-wrk
    python bench/api_redeem.py                               # 5 hot accounts, 200 req/s, 50 clients, 20 s
    python bench/api_redeem.py --accounts 5000               # spread over 5,000 accounts
    python bench/api_redeem.py --seconds 5 --saturate 5      # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
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
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
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
GOAL_RATE = 500
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


def prepare(url: str, folder: Path, accounts: int, points: int) -> tuple[Path, str, list[str], list[str]]:
    """Schema, config, members and an API key; returns (config, key, latency members, saturation members).

    The latency phase's members (``M001``...) get ``points`` each, the saturation phase's (``S1``...)
    and the warm-up's own account enough never to run dry.
    """
    engine = make_engine(url)
    upgrade(engine)
    path = folder / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    programme = load_config(path).programmes["bench"]
    members = [f"M{n:03d}" for n in range(1, accounts + 1)]
    saturated = [f"S{n}" for n in range(1, accounts + 1)]
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(
            CUSTOMER.insert(),
            [
                {"external_id": m, "source": "bench", "attributes": {}, "created_at": now, "updated_at": now}
                for m in [*members, *saturated, "WARM"]
            ],
        )
    plenty = 10_000_000  # the most one command moves

    def seed(member: str) -> None:
        given = points if member.startswith("M") else plenty
        adjust(
            engine,
            programme,
            key=f"seed:{member}",
            customer=member,
            points=given,
            reason="bench",
            actor="bench",
        )

    with ThreadPoolExecutor(4) as pool:  # through the ledger, as a till's points would arrive
        list(pool.map(seed, [*members, *saturated, "WARM"]))
    key = create_api_key(engine, "bench", ["loyalty"]).key
    engine.dispose()
    return path, key, members, saturated


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


def _render(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """One HTTP/1.1 request as bytes (keep-alive)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def requests_for(
    kind: str, count: int, args: argparse.Namespace, key: str, members: list[str]
) -> list[bytes]:
    """``count`` pre-rendered requests: ``health``, ``redeem`` (members at random) or ``warm``."""
    host = f"127.0.0.1:{args.port}"
    if kind == "health":
        return [_render("GET", "/health", host, {})] * count
    pick, run = random.Random(7), secrets.token_hex(3)
    rendered = []
    for i in range(count):
        customer = "WARM" if kind == "warm" else pick.choice(members)
        points = 1 if kind == "warm" else args.spend
        body = json.dumps({"customer": customer, "points": points}).encode()
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"{kind}-{run}-{i}"}
        rendered.append(_render("POST", "/v1/loyalty/bench/redeem", host, headers, body))
    return rendered


async def _open_loop(
    port: int, requests: list[tuple[int, bytes]], rate: float, start: float, connections: int
) -> dict[str, Any]:
    """Send each ``(i, request)`` when it is due (``start + i / rate``, wall clock), on ``connections``."""
    loop = asyncio.get_running_loop()
    offset = time.time() - loop.time()
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    late = 0.0

    async def send(due: float, request: bytes) -> None:
        reader, writer = await idle.get()  # waiting for a free connection counts in the latency
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors[type(exc).__name__] += 1
            writer.close()
            idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
            return
        statuses[status] += 1
        latencies.append((loop.time() - due) * 1000)
        idle.put_nowait((reader, writer))

    tasks = []
    for i, request in requests:
        due = start + i / rate - offset
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        late = max(late, (loop.time() - due) * 1000)
        tasks.append(asyncio.create_task(send(due, request)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait()[1].close()
    return {"latencies": latencies, "statuses": statuses, "errors": errors, "late": late}


def _client_process(
    port: int, requests: list[tuple[int, bytes]], rate: float, start: float, connections: int
) -> Any:
    return asyncio.run(_open_loop(port, requests, rate, start, connections))


def load(
    phase: Phase, requests: list[bytes], args: argparse.Namespace, pid: int, rate: float | None = None
) -> None:
    """Send ``requests`` open loop at ``rate`` from ``--procs`` processes; fill ``phase``."""
    rate = rate or args.rate
    procs = max(1, args.procs)
    start = time.time() + 0.5  # every process connected and waiting
    used = server_cpu(pid)
    began = time.perf_counter()
    with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("fork")) as pool:
        shares = [[(i, r) for i, r in enumerate(requests) if i % procs == k] for k in range(procs)]
        connections = max(1, args.clients // procs)
        results = list(
            pool.map(
                _client_process,
                *zip(*[(args.port, share, rate, start, connections) for share in shares], strict=True),
            )
        )
    phase.seconds = time.perf_counter() - began - 0.5
    phase.server_cpu = server_cpu(pid) - used
    for result in results:
        phase.latencies += result["latencies"]
        phase.statuses.update(result["statuses"])
        phase.errors.update(result["errors"])
        phase.late = max(phase.late, result["late"])


@dataclass
class Saturation:
    """What ``wrk`` saw: requests/s, answers by status, its latency percentiles, the server's CPU."""

    name: str
    rate: float = 0.0
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    p50: str = "?"
    p99: str = "?"
    server_cpu: float = 0.0
    output: str = ""

    def line(self) -> str:
        """Requests/s, latencies, answers, CPU."""
        return (
            f"{self.name:>7}: {self.rate:7.0f} requests/s  (wrk p50 {self.p50}, p99 {self.p99}, closed loop; "
            f"{self.requests:,} answers {self.statuses}; server CPU "
            f"{self.server_cpu / max(1, self.requests) * 1000:.1f} ms per request)"
        )


WRK_SCRIPT = """\
-- POST /v1/loyalty/bench/redeem: a random saturation member, a unique Idempotency-Key per request
local counter, threads = 0, {}
local key, count, run = os.getenv("BENCH_KEY"), tonumber(os.getenv("BENCH_MEMBERS")), os.getenv("BENCH_RUN")
function setup(thread) thread:set("id", #threads + 1); table.insert(threads, thread) end
function init(args) math.randomseed(id * 7919); statuses = {} end
function request()
  counter = counter + 1
  local body = '{"customer":"S' .. math.random(1, count) .. '","points":10}'
  local headers = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json",
                   ["Idempotency-Key"] = run .. "-" .. id .. "-" .. counter}
  return wrk.format("POST", "/v1/loyalty/bench/redeem", headers, body)
end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("statuses")) do table.insert(parts, k .. "=" .. v) end
  end
  io.write("statuses " .. table.concat(parts, " ") .. "\\n")
end
"""


def saturate(
    name: str, base: str, args: argparse.Namespace, pid: int, env: dict[str, str], script: Path | None
) -> Saturation:
    """``--saturate`` seconds of ``wrk`` (2 threads, ``--clients`` connections): /health or redemptions."""
    result = Saturation(name)
    target = [base + "/health"] if script is None else ["-s", str(script), base + "/"]
    command = ["wrk", "-t2", f"-c{args.clients}", f"-d{args.saturate:g}s", "--latency", *target]
    used = server_cpu(pid)
    done = subprocess.run(
        command,
        env={**os.environ, **env, "BENCH_RUN": secrets.token_hex(3)},
        capture_output=True,
        text=True,
        check=True,
    )
    result.server_cpu = server_cpu(pid) - used
    result.output = done.stdout
    for line in done.stdout.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            result.rate = float(words[1])
        elif "requests in" in line:
            result.requests = int(words[0])
        elif words[:1] == ["50%"]:
            result.p50 = words[1]
        elif words[:1] == ["99%"]:
            result.p99 = words[1]
        elif line.startswith("statuses"):
            for part in words[1:]:
                status, count = part.split("=")
                result.statuses[status] = result.statuses.get(status, 0) + int(count)
    if script is None:
        result.statuses = (
            {"200": result.requests} if "Non-2xx" not in done.stdout else {"mixed": result.requests}
        )
    return result


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
    count = int(args.rate * args.seconds)
    try:
        with database(args) as url:
            config, key, members, saturated = prepare(url, folder, args.accounts, args.points)
            print(
                f"{args.accounts:,} accounts of {args.points:,} points "
                f"(and {args.accounts:,} for saturation), "
                f"{args.clients} connections, {args.rate:.0f} requests/s for {args.seconds:g} s per phase "
                f"from {args.procs} client processes, {args.workers} uvicorn workers; "
                f"wrk {args.saturate:g} s per phase",
                flush=True,
            )
            with server(config, url, args.workers) as (base, process):
                args.port = int(base.rsplit(":", 1)[1])
                pid = process.pid
                # connections opened, statements prepared: both paths warm before anything is measured
                for kind in ("health", "warm"):
                    load(
                        Phase("warm-up"),
                        requests_for(kind, min(400, count), args, key, members),
                        args,
                        pid,
                        args.rate,
                    )
                baseline, redemptions = Phase("health"), Phase("redeem")
                load(baseline, requests_for("health", count, args, key, members), args, pid)
                load(redemptions, requests_for("redeem", count, args, key, members), args, pid)
                saturation: list[Saturation] = []
                if args.saturate > 0 and shutil.which("wrk"):
                    script = folder / "redeem.lua"
                    script.write_text(WRK_SCRIPT, encoding="utf-8")
                    env = {"BENCH_KEY": key, "BENCH_MEMBERS": str(len(saturated))}
                    saturation = [
                        saturate("health", base, args, pid, env, None),
                        saturate("redeem", base, args, pid, env, script),
                    ]
                elif args.saturate > 0:
                    print("wrk is not installed (scripts/install-wrk): no saturation phase", file=sys.stderr)
            ok, summary = overdraft_check(url, members, args.points, args.spend)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("at a fixed rate (open loop):")
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
    p99 = redemptions.quantile(0.99)
    print(f"ratio redeem p99 / health p99: {p99 / baseline.quantile(0.99):.2f}")
    print(
        f"goal redeem p99 < {GOAL_MS:g} ms at {args.rate:.0f}/s: "
        f"{'met' if p99 < GOAL_MS else 'missed'} ({p99:.1f} ms)"
    )
    if saturation:
        print("at saturation (wrk, closed loop):")
        for result in saturation:
            print(result.line())
        spent = saturation[1].rate * saturation[1].statuses.get("201", 0) / max(1, saturation[1].requests)
        print(
            f"goal >= {GOAL_RATE} redemptions/s: {'met' if spent >= GOAL_RATE else 'missed'} ({spent:.0f}/s)"
        )
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
    parser.add_argument("--clients", type=int, default=50, help="connections (split over --procs)")
    parser.add_argument("--procs", type=int, default=2, help="client processes at the fixed rate")
    parser.add_argument("--saturate", type=float, default=10.0, help="seconds of wrk per phase (0: none)")
    parser.add_argument("--accounts", type=int, default=5, help="accounts the redemptions share")
    parser.add_argument(
        "--points",
        type=int,
        help="points per latency account (default: 80 %% of what is asked of it, at least 2 redemptions)",
    )
    parser.add_argument("--spend", type=int, default=10, help="points per redemption")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args(argv)
    signal.signal(
        signal.SIGTERM, lambda *_: sys.exit(143)
    )  # killed: still stop the server, drop the database
    if args.points is None:
        asked = args.rate * args.seconds / args.accounts * args.spend
        args.points = max(2 * args.spend, int(asked * 0.8) // args.spend * args.spend)
    if not run(args):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
