"""crm-engine: campaign and loyalty-programme automation.

Segments, campaigns, loyalty programmes and budgets live as TOML files; this
package imports customers, computes metrics and scores, builds segments with
rules compiled to SQL and (in later parts) plans, sends and evaluates contacts.
"""

__version__ = "0.1.0"
