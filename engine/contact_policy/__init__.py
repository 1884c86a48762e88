"""Contact policy: who may be contacted, on which channel, and when in their own time.

* :mod:`~engine.contact_policy.consent`: consent per channel, and withdrawing it;
* :mod:`~engine.contact_policy.suppression`: addresses never contacted on a channel;
* :mod:`~engine.contact_policy.reach`: who can be reached on a channel, in SQL;
* :mod:`~engine.contact_policy.caps`: frequency caps in the customer's own calendar;
* :mod:`~engine.contact_policy.quiet_hours`: quiet hours and calling windows;
* :mod:`~engine.contact_policy.local_time`: when a contact may happen in each customer's zone;
* :mod:`~engine.contact_policy.links`: signed unsubscribe and tracking links.
"""

from __future__ import annotations

from engine.contact_policy.caps import Cap
from engine.contact_policy.consent import (
    ADDRESS_FIELDS,
    Contacts,
    contacts,
    suppress_contact,
    withdraw_consent,
)
from engine.contact_policy.links import (
    UnsubscribeLink,
    click_url,
    open_url,
    read_click,
    read_open,
    read_unsubscribe,
    sign,
    trackable,
    unsubscribe_url,
)
from engine.contact_policy.local_time import ZoneTimes, by_zone, customer_zones, zone_times
from engine.contact_policy.quiet_hours import DailyWindow
from engine.contact_policy.reach import (
    Lookups,
    consent_expression,
    recipient_expression,
    suppressed_expression,
)
from engine.contact_policy.suppression import (
    SUPPRESSIBLE_CHANNELS,
    list_suppressions,
    normalise_address,
    suppress,
    unsuppress,
)

__all__ = [
    "ADDRESS_FIELDS",
    "SUPPRESSIBLE_CHANNELS",
    "Cap",
    "Contacts",
    "DailyWindow",
    "Lookups",
    "UnsubscribeLink",
    "ZoneTimes",
    "by_zone",
    "click_url",
    "consent_expression",
    "contacts",
    "customer_zones",
    "list_suppressions",
    "normalise_address",
    "open_url",
    "read_click",
    "read_open",
    "read_unsubscribe",
    "recipient_expression",
    "sign",
    "suppress",
    "suppress_contact",
    "suppressed_expression",
    "trackable",
    "unsubscribe_url",
    "unsuppress",
    "withdraw_consent",
    "zone_times",
]
