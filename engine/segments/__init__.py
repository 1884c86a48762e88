"""Segments: rules over customers, refreshed inside the database, with membership history."""
