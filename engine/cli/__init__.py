"""The ``crm`` command: a thin typer app, one module per area, each imported when it is used.

Each command calls one public function of the engine and prints its result.
Exit codes: 0 ok, 1 anything a user or the environment did (bad input, bad
config, unknown name, a read-only database, a folder that cannot be written:
every :class:`~engine.errors.EngineError`), 2 a bug (anything else, printed
with its traceback).

Errors are printed as text, never read as rich markup: a message holding
``[/]`` or ``[[variants]]`` is printed as it is (:func:`print_error`).
"""

from __future__ import annotations

import sys
import traceback

import typer
from rich.markup import escape

from engine.cli.root import app, command_tree, console_err
from engine.errors import EngineError


def print_error(label: str, message: object) -> None:
    """Print ``label: message`` on stderr, the label in bold red, the message exactly as it is.

    The message is escaped, so rich reads no markup in it (``[/]`` would
    make it fail, ``[variants]`` would vanish). If the console cannot print
    (a closed or odd stream), the line is written to stderr plainly.
    """
    try:
        text = str(message)
    except Exception:  # an error whose text cannot be made
        text = f"{type(message).__name__} (its message cannot be shown)"
    try:
        console_err.print(f"[bold red]{label}:[/] {escape(text)}", highlight=False, soft_wrap=True)
    except Exception:  # the printer itself must never be the error
        try:
            sys.stderr.write(f"{label}: {text}\n")
            sys.stderr.flush()
        except Exception:  # pragma: no cover - nowhere left to say it
            pass


def main(argv: list[str] | None = None) -> int:
    """Run ``crm`` and return its exit code (used by the console script and the tests)."""
    try:
        code = app(args=argv, prog_name="crm", standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) from a command, e.g. a failed audit
            return code
    except EngineError as exc:
        print_error("error", exc)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print_error("error", "aborted")
        return 1
    except typer.TyperException as exc:  # usage errors: unknown option, bad value...
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            print_error("error", exc.format_message())
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        print_error("internal error", "this is a bug in crm-engine; the traceback above says where")
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["app", "command_tree", "main", "print_error", "typer"]
