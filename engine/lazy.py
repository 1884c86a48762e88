"""Names a package's facade gives from modules imported on first use (PEP 562).

A facade (``engine/<area>/__init__.py``) names what its area offers. Where a
name lives in a module that needs a slow library (matplotlib, openpyxl,
pandas...), the facade lists it here instead of importing it, so that a
command that never uses it never pays for the library (``crm --help`` and
``crm validate`` import none of them: tests/cli/test_startup.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` giving each of ``names`` (``{name: module}``) from its module when asked."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
