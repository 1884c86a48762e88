"""Customers: who they are, what they did, and how they come in.

* :mod:`~engine.customers.profile`: one customer's fields, metrics, scores, segments and sources;
* :mod:`~engine.customers.events`: custom events about customers (``crm event``, the API);
* :mod:`engine.customers.importing` (a package of its own): customers and purchases from CSV and XLSX.
"""

from __future__ import annotations

from engine.customers.events import record_event
from engine.customers.profile import CustomerProfile, customer_profile, find_customer_id

__all__ = [
    "CustomerProfile",
    "customer_profile",
    "find_customer_id",
    "record_event",
]
