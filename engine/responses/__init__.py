"""Responses to contacts: what customers did after a contact, recorded once, and what it changes.

* :mod:`~engine.responses.recording`: the one writer of a single response;
* :mod:`~engine.responses.tracking`: emails' links signed and tracked, opens and clicks recorded;
* :mod:`~engine.responses.unsubscribe`: an unsubscribe recorded with its consent and suppression;
* :mod:`~engine.responses.response_import` (with :mod:`~engine.responses.response_rows` and
  :mod:`~engine.responses.call_outcomes`): ``crm import responses``, call outcomes, replies, scores;
* :mod:`~engine.responses.contact_links`: imported responses linked to the contact they answer;
* :mod:`~engine.responses.policy_effects`: what wrong numbers and refusals change in the contact policy;
* :mod:`~engine.responses.bounces`, :mod:`~engine.responses.bounce_import`,
  :mod:`~engine.responses.bounce_thresholds`: delivery status notifications and their thresholds.
"""

from __future__ import annotations

from engine.responses.bounce_import import import_bounces, list_bounces
from engine.responses.bounces import HARD, SOFT
from engine.responses.response_import import ResponseImportSummary, import_responses
from engine.responses.tracking import record_click, record_open, track_email
from engine.responses.unsubscribe import EMAIL_ONLY, SCOPES, mask_email, unsubscribe

__all__ = [
    "EMAIL_ONLY",
    "HARD",
    "SCOPES",
    "SOFT",
    "ResponseImportSummary",
    "import_bounces",
    "import_responses",
    "list_bounces",
    "mask_email",
    "record_click",
    "record_open",
    "track_email",
    "unsubscribe",
]
