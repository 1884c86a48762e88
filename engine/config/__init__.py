"""The checked configuration: config.toml read, every rule in it compiled and type-checked.

* :mod:`~engine.config.checked`: :func:`load_config`, what every command calls;
* :mod:`~engine.config.revision`: the configuration at a git revision (``--diff``).
"""

from __future__ import annotations

from engine.config.checked import Config, load_config
from engine.config.revision import checkout_config

__all__ = [
    "Config",
    "checkout_config",
    "load_config",
]
