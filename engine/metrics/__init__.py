"""Metrics and scores: per-customer figures and points per indicator, computed inside the database."""
