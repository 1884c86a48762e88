"""Sending benchmark: personalised emails over SMTP into Postfix's smtp-sink, against smtp-source.

Starts Postfix's ``smtp-sink`` on a loopback port, then:

(a) renders ``--messages`` personalised emails from a realistic template
    (Russian text, a style sheet, four recommended products, loyalty points,
    a signed unsubscribe link) with the engine's sandboxed
    ``ContentRenderer`` (jinja2, CSS inlined, text part made from the HTML),
    builds their MIME and sends them with ``SmtpEmailChannel`` over
    ``--sessions`` connections, in batches as a worker does, a journal
    noting each message's point of no return;
(b) sends the same number of messages of the same size (one of ours, written
    to a file) with Postfix's ``smtp-source`` over the same number of
    sessions (``-d``: connections reused) to the same sink, before and after
    (a), and keeps the faster run;
(c) sends the same number again, cycling through 1,000 emails rendered
    beforehand: the MIME template and the SMTP channel alone;
(d) prints msgs/s and the ratio ours / smtp-source (goal >= 0.35) of (a)
    and (c), CPU time per message, where the time of (a) went (render, MIME
    + SMTP), and the cost per message of the stdlib ``EmailMessage`` builder
    against the MIME template.

``--workers N`` splits (a) over N processes (each with its share of the
sessions), as several ``crm worker`` processes would. The event loop is
uvloop's when uvloop is installed (it is not a dependency of the engine:
``pip install uvloop``), else asyncio's; ``--loop`` chooses.

Usage::

    python bench/send.py                               # 20,000 messages, 16 sessions
    python bench/send.py --messages 5000 --sessions 4
    python bench/send.py --loop asyncio                # without uvloop
    python bench/send.py --workers 2

Needs ``smtp-sink`` and ``smtp-source`` (Debian package ``postfix``):
run ``scripts/install-postfix`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from engine.campaigns.content import ContentRenderer  # noqa: E402
from engine.channels import DeliveryStatus, OutgoingMessage  # noqa: E402
from engine.channels.email_message import build_email  # noqa: E402
from engine.channels.mime_template import MimeTemplate  # noqa: E402
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings  # noqa: E402

SENDER = "Магазин «Ромашка» <news@romashka.example>"
DOMAIN = "romashka.example"
SUBJECT = "{{ customer.first_name }}, мы приготовили для вас скидку 15 %"
TEMPLATE = """<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<title>{{ campaign.name }}</title>
<style>
  body { margin: 0; padding: 0; background: #f4f4f4; font-family: Arial, sans-serif; color: #222222; }
  .wrap { width: 600px; margin: 0 auto; background: #ffffff; }
  .head { background: #1d3557; color: #ffffff; padding: 24px; font-size: 22px; }
  .lead { padding: 24px; font-size: 16px; line-height: 1.5; }
  .item { padding: 12px 24px; border-bottom: 1px solid #eeeeee; }
  .item a { color: #1d3557; font-weight: bold; text-decoration: none; }
  .price { color: #e63946; font-size: 18px; }
  .old { color: #999999; text-decoration: line-through; }
  .button { display: inline-block; background: #e63946; color: #ffffff; padding: 14px 28px;
            border-radius: 4px; text-decoration: none; }
  .foot { padding: 24px; font-size: 12px; color: #777777; }
</style>
</head>
<body>
<table class="wrap" role="presentation" cellpadding="0" cellspacing="0">
  <tr><td class="head">Магазин «Ромашка»: {{ campaign.name }}</td></tr>
  <tr><td class="lead">
    <p>{{ customer.first_name or "Уважаемый покупатель" }}, здравствуйте!</p>
    <p>Мы давно вас не видели: ваша последняя покупка была {{ customer.days_since_last_order }} дней назад.
       Мы приготовили для вас скидку 15 % на следующий заказ, она действует до {{ offer_until }}.</p>
    {% if customer.points %}<p>На вашем бонусном счёте {{ customer.points }} баллов:
       ими можно оплатить до 30 % покупки.</p>{% endif %}
    <p><a class="button" href="{{ links.shop }}?utm_campaign={{ campaign.slug }}&amp;c={{ customer.id }}">
       Вернуться в магазин</a></p>
  </td></tr>
  {% for product in products %}
  <tr><td class="item">
    <a href="{{ links.shop }}/p/{{ product.sku }}?c={{ customer.id }}">{{ product.name }}</a><br>
    <span class="price">{{ product.price }} ₽</span> <span class="old">{{ product.old_price }} ₽</span>
    <p>{{ product.description }}</p>
  </td></tr>
  {% endfor %}
  <tr><td class="foot">
    <p>Вы получили это письмо, потому что подписаны на новости магазина «Ромашка»
       как {{ customer.email }}.</p>
    <p><a href="{{ links.unsubscribe }}">Отписаться от рассылки</a> ·
       <a href="{{ links.shop }}/privacy">Политика конфиденциальности</a></p>
    <p>ООО «Ромашка», 125009, Москва, Тверская ул., д. 1. Телефон: +7 495 000-00-00.</p>
  </td></tr>
</table>
</body>
</html>
"""
FIRST_NAMES = ["Анна", "Иван", "Мария", "Сергей", "Ольга", "Дмитрий", "Елена", "Алексей", "", "Наталья"]
LAST_NAMES = ["Иванова", "Петров", "Смирнова", "Кузнецов", "Попова", "Соколов", "Лебедева", "Козлов"]
PRODUCTS = [
    {
        "sku": f"RM-{n:04d}",
        "name": name,
        "price": 390 + 37 * n,
        "old_price": 490 + 41 * n,
        "description": description,
    }
    for n, (name, description) in enumerate(
        [
            ("Крем для рук «Бархат», 75 мл", "Питательный крем с маслом ши и витамином E для сухой кожи."),
            ("Шампунь «Ромашка» для всех типов волос", "Мягкое очищение с экстрактом ромашки, 400 мл."),
            ("Бальзам для губ с мёдом", "Защищает от ветра и мороза, не оставляет липкости."),
            ("Гель для душа «Морской бриз»", "Свежий аромат, pH 5,5, подходит для чувствительной кожи."),
            ("Маска для лица с глиной", "Сужает поры и выравнивает тон, на 10–15 минут."),
            ("Набор «Зимний уход»", "Крем, бальзам и маска в подарочной коробке."),
            ("Мицеллярная вода, 250 мл", "Снимает макияж без трения, без спирта и отдушек."),
            ("Скраб для тела «Кофе и сахар»", "Отшелушивает и тонизирует, натуральные масла."),
        ]
    )
]


@dataclass
class Timing:
    """Where the time of one sending run went."""

    messages: int = 0
    sent: int = 0
    seconds: float = 0.0
    render: float = 0.0
    send: float = 0.0
    cpu: float = 0.0  # CPU seconds of the sending process(es), user and system


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def smtp_sink(binary: str, sessions: int) -> Iterator[int]:
    """Postfix's smtp-sink on a loopback port: accepts and discards every message."""
    port = free_port()
    command = [binary]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]  # smtp-sink refuses to keep root privileges
    command += [f"127.0.0.1:{port}", str(max(256, 4 * sessions))]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None:
                reason = process.stderr.read().decode() if process.stderr else ""
                raise SystemExit(f"smtp-sink stopped: {reason}")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def context(n: int) -> dict[str, Any]:
    """The template context of customer ``n``."""
    first = FIRST_NAMES[n % len(FIRST_NAMES)]
    return {
        "customer": {
            "id": n,
            "first_name": first,
            "last_name": LAST_NAMES[n % len(LAST_NAMES)],
            "email": f"client{n}@mail.example",
            "days_since_last_order": 90 + n % 90,
            "points": (n * 37) % 1200,
        },
        "campaign": {"name": "Скучаем по вам", "slug": "winback-2026-12"},
        "offer_until": "28 февраля",
        "links": {
            "shop": "https://romashka.example",
            "unsubscribe": f"https://romashka.example/u/{n}.{(n * 2654435761) % 2**64:016x}",
        },
        "products": [PRODUCTS[(n + k) % len(PRODUCTS)] for k in range(4)],
    }


def outgoing(renderer: ContentRenderer, n: int) -> OutgoingMessage:
    """Render customer ``n``'s email, as the outbox hands it to the channel."""
    values = context(n)
    rendered = renderer.render_email("promo.html.j2", SUBJECT, values)
    customer = values["customer"]
    name = f"{customer['first_name']} {customer['last_name']}".strip()
    unsubscribe = values["links"]["unsubscribe"]
    return OutgoingMessage(
        key=f"bench:{n}:0",
        customer_id=n,
        recipient=f"{name} <{customer['email']}>",
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>, <mailto:unsubscribe@romashka.example?subject={n}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


class MemoryJournal:
    """Notes the keys that passed their point of no return (an outbox writes them to its table)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def committing(self, key: str) -> None:
        self.keys.append(key)


def run_loop(main: Coroutine[Any, Any, Timing], loop: str) -> Timing:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


async def send_all(templates: Path, port: int, first: int, count: int, sessions: int, batch: int) -> Timing:
    """Render, build and send ``count`` emails in batches, as a worker does."""
    renderer = ContentRenderer(templates)
    settings = SmtpSettings(host="127.0.0.1", port=port, timeout=30, concurrency=sessions)
    channel = SmtpEmailChannel(settings, sender=SENDER, domain=DOMAIN)
    journal = MemoryJournal()
    timing = Timing(messages=count)
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(first, first + count, batch):
        rendering = time.perf_counter()
        messages = [outgoing(renderer, n) for n in range(start, min(start + batch, first + count))]
        sending = time.perf_counter()
        results = await channel.send(messages, journal=journal)
        timing.render += sending - rendering
        timing.send += time.perf_counter() - sending
        timing.sent += sum(r.status is DeliveryStatus.SENT for r in results)
    await channel.close()
    timing.seconds = time.perf_counter() - started
    timing.cpu = time.process_time() - cpu
    assert len(journal.keys) == timing.sent, "one journal entry per message sent"
    return timing


async def send_rendered(templates: Path, port: int, count: int, sessions: int, batch: int) -> Timing:
    """MIME + SMTP alone: ``count`` emails, cycling through 1,000 rendered beforehand (not timed)."""
    renderer = ContentRenderer(templates)
    rendered = [outgoing(renderer, n) for n in range(1000)]
    settings = SmtpSettings(host="127.0.0.1", port=port, timeout=30, concurrency=sessions)
    channel = SmtpEmailChannel(settings, sender=SENDER, domain=DOMAIN)
    timing = Timing(messages=count)
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, count, batch):
        messages = [
            dataclasses.replace(rendered[n % len(rendered)], key=f"again:{n}:0")
            for n in range(start, min(start + batch, count))
        ]
        results = await channel.send(messages, journal=MemoryJournal())
        timing.sent += sum(r.status is DeliveryStatus.SENT for r in results)
    timing.seconds = time.perf_counter() - started
    timing.cpu = time.process_time() - cpu
    return timing


def worker(
    templates: Path, port: int, first: int, count: int, sessions: int, batch: int, loop: str
) -> Timing:
    return run_loop(send_all(templates, port, first, count, sessions, batch), loop)


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (part < total % parts) for part in range(parts)]


def ours(args: argparse.Namespace, templates: Path, port: int) -> Timing:
    """(a) with ``--workers`` processes; the time is from the start of the first to the end of the last."""
    if args.workers == 1:
        return worker(templates, port, 0, args.messages, args.sessions, args.batch, args.loop)
    shares = split(args.messages, args.workers)
    sessions = split(args.sessions, args.workers)
    firsts = [sum(shares[:w]) for w in range(args.workers)]
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(abs, range(args.workers)))  # processes started before the clock
        started = time.perf_counter()
        parts = list(
            pool.map(
                worker,
                [templates] * args.workers,
                [port] * args.workers,
                firsts,
                shares,
                sessions,
                [args.batch] * args.workers,
                [args.loop] * args.workers,
            )
        )
        seconds = time.perf_counter() - started
    return Timing(
        messages=sum(p.messages for p in parts),
        sent=sum(p.sent for p in parts),
        seconds=seconds,
        render=sum(p.render for p in parts) / args.workers,
        send=sum(p.send for p in parts) / args.workers,
        cpu=sum(p.cpu for p in parts),
    )


def smtp_source(binary: str, port: int, message: Path, count: int, sessions: int) -> tuple[float, float]:
    """(b) seconds and CPU seconds smtp-source takes for ``count`` messages over ``sessions`` sessions."""
    command = [binary, "-d", "-s", str(sessions), "-m", str(count), "-F", str(message)]
    command += ["-f", "news@romashka.example", "-t", "client@mail.example", f"127.0.0.1:{port}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def per_message(function: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - started) / count


def mime_costs(templates: Path, count: int) -> tuple[float, float, float]:
    """Seconds per message: stdlib EmailMessage, the MIME template (7-bit), the MIME template (8-bit)."""
    renderer = ContentRenderer(templates)
    messages = [outgoing(renderer, n) for n in range(count)]
    template = MimeTemplate(sender=SENDER, domain=DOMAIN)
    slow = iter(messages * 2)
    fast = iter(messages * 4)
    return (
        per_message(lambda: build_email(next(slow), sender=SENDER, domain=DOMAIN).as_bytes(), count),
        per_message(lambda: template.render(next(fast)), count),
        per_message(lambda: template.render(next(fast), eight_bit=True), count),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=16, help="SMTP connections, ours and smtp-source's")
    parser.add_argument("--batch", type=int, default=500, help="messages rendered and sent per channel call")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the messages and sessions")
    try:
        import uvloop  # noqa: F401

        default_loop = "uvloop"
    except ImportError:
        default_loop = "asyncio"
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default=default_loop)
    args = parser.parse_args()
    sink, source = find_tool("smtp-sink"), find_tool("smtp-source")
    if not sink or not source:
        raise SystemExit(
            "smtp-sink and smtp-source (Debian package postfix) are needed: run scripts/install-postfix"
        )
    with tempfile.TemporaryDirectory() as tmp:
        templates = Path(tmp)
        (templates / "promo.html.j2").write_text(TEMPLATE, encoding="utf-8")
        # as the channel sends them to smtp-sink, which announces 8BITMIME
        renderer, template = ContentRenderer(templates), MimeTemplate(sender=SENDER, domain=DOMAIN)
        sizes = sorted(len(template.render(outgoing(renderer, n), eight_bit=True)) for n in range(200))
        data = template.render(outgoing(renderer, 101), eight_bit=True)
        message_file = templates / "message.eml"
        message_file.write_bytes(data.replace(b"\r\n", b"\n"))  # smtp-source sends each line with CRLF
        with smtp_sink(sink, args.sessions) as port:
            before = smtp_source(source, port, message_file, args.messages, args.sessions)
            timing = ours(args, templates, port)
            transport = run_loop(
                send_rendered(templates, port, args.messages, args.sessions, args.batch), args.loop
            )
            after = smtp_source(source, port, message_file, args.messages, args.sessions)
        slow, fast7, fast8 = mime_costs(templates, 2000)
    baseline, baseline_cpu = min(before, after)
    their_rate = args.messages / baseline
    print(
        f"{args.messages:,} messages, {args.sessions} sessions, loop {args.loop}, {args.workers} worker(s); "
        f"message size {len(data):,} bytes (ours: median {statistics.median(sizes):,.0f}, "
        f"{sizes[0]:,}-{sizes[-1]:,})"
    )
    print(f"{'':30} {'seconds':>8} {'msgs/s':>8} {'ratio':>6} {'CPU us/msg':>11}")
    rows = [
        ("smtp-source", baseline, args.messages, baseline_cpu),
        ("crm: render + MIME + SMTP", timing.seconds, timing.sent, timing.cpu),
        ("crm: MIME + SMTP (1 worker)", transport.seconds, transport.sent, transport.cpu),
    ]
    for label, seconds, sent, cpu in rows:
        rate = sent / seconds
        print(f"{label:30} {seconds:8.2f} {rate:8,.0f} {rate / their_rate:6.2f} {cpu / sent * 1e6:11,.0f}")
    print(f"(smtp-source runs before and after: {before[0]:.2f}s, {after[0]:.2f}s; the faster counts)")
    ratio = timing.sent / timing.seconds / their_rate
    verdict = "ok" if ratio >= 0.35 else "below the goal"
    print(f"ratio crm (render + MIME + SMTP) / smtp-source: {ratio:.2f} (goal >= 0.35): {verdict}")
    per = 1e6 / timing.messages * args.workers
    print(
        f"time per message in a worker: render {timing.render * per:.0f} us, "
        f"MIME + SMTP {timing.send * per:.0f} us"
    )
    print(
        f"MIME per message: stdlib EmailMessage {slow * 1e6:.0f} us, template {fast7 * 1e6:.0f} us "
        f"(7-bit) / {fast8 * 1e6:.0f} us (8-bit): {slow / fast7:.0f}x / {slow / fast8:.0f}x"
    )
    if timing.sent != timing.messages:
        raise SystemExit(f"only {timing.sent} of {timing.messages} messages were sent")


if __name__ == "__main__":
    main()
