"""Every whole-number option and argument of every command has bounds: a huge value is refused at the door.

A limit of 2**63 once reached SQLite's LIMIT and failed there; typer checks
``min``/``max`` before the command runs, so each must say both.
"""

from __future__ import annotations

from engine.cli import command_tree


def _unbounded() -> list[str]:
    found: list[str] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
            return
        for param in getattr(command, "params", []):
            descriptor = getattr(param, "type_descriptor", None)
            info = getattr(descriptor, "parameter_info", None)
            if getattr(info, "parser", None) is not None:  # a parser of its own checks the limits (points...)
                continue
            if getattr(descriptor, "annotation", None) is int and (param.max is None or param.min is None):
                found.append(f"crm {' '.join(path)} {param.opts[0] if param.opts else param.name}")

    walk(command_tree(), ())
    return found


def test_every_whole_number_has_a_minimum_and_a_maximum() -> None:
    assert _unbounded() == []
