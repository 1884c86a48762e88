"""The outbox: every contact of every run as a row that workers claim, send and record exactly once.

* :mod:`~engine.outbox.claim`: batches of due rows claimed with ``FOR UPDATE SKIP LOCKED``;
* :mod:`~engine.outbox.compose`: rows checked again at send time and rendered into messages;
* :mod:`~engine.outbox.journal`: the point of no return of each message, recorded before it is passed;
* :mod:`~engine.outbox.record`: results recorded (sent, retried with backoff, failed, bounced);
* :mod:`~engine.outbox.recovery`: heartbeats, dead workers and the rows they held;
* :mod:`~engine.outbox.rate_limit`: a token bucket per channel;
* :mod:`~engine.outbox.worker`: :func:`drain`, what ``crm worker`` runs;
* :mod:`~engine.outbox.resend`: :func:`resend_failed`, what ``crm resend-failed`` runs.
"""

from __future__ import annotations

from engine.outbox.compose import email_warnings, offers_one_click
from engine.outbox.recovery import RecoverySummary, recover
from engine.outbox.resend import resend_failed
from engine.outbox.worker import DrainSummary, drain

__all__ = [
    "DrainSummary",
    "RecoverySummary",
    "drain",
    "email_warnings",
    "offers_one_click",
    "recover",
    "resend_failed",
]
