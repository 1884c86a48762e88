"""Evaluation: attribution of purchases to contacts, campaign results with uplift, programme indicators."""
