"""The contact matrix and the budget of all CRM actions: plan, approved, actual, variance.

See docs/budget.md for the exact semantics and the JSON schema.
"""
