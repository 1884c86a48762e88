"""Cells that could run as spreadsheet formulas are neutralised; phones and amounts are left alone."""

from __future__ import annotations

import pytest

from engine.reporting.spreadsheet import formula_safe


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("+79161234567", "+79161234567"),
        ("+7 (916) 123-45-67", "+7 (916) 123-45-67"),
        ("-100.50", "-100.50"),
        ("Анна", "Анна"),
        ("", ""),
    ],
)
def test_formula_safe(text: str, safe: str) -> None:
    assert formula_safe(text) == safe
