"""A loyalty programme as configured: its settings, zone and dates, and its earn rules compiled."""
