"""The ``crm`` command: a thin typer app, one module per area.

Each command calls one public function of the engine and prints its result.
Exit codes: 0 ok, 1 user error (bad input, bad config, unknown name), 2 a bug.
"""

from __future__ import annotations

import sys
import traceback

import typer

from engine.cli import (
    api_keys,
    bounces,
    budget,
    campaigns,
    customers,
    demo,
    imports,
    loyalty,
    preview,
    refresh,
    report,
    scheduler,
    schema,
    segments,
    serve,
    suppress,
    worker,
)
from engine.cli.app import app, console_err
from engine.errors import EngineError

for module in (
    schema,
    imports,
    refresh,
    segments,
    customers,
    suppress,
    preview,
    campaigns,
    budget,
    loyalty,
    bounces,
    report,
    api_keys,
    serve,
    worker,
    scheduler,
    demo,
):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run ``crm`` and return its exit code (used by the console script and the tests)."""
    try:
        code = app(args=argv, prog_name="crm", standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) from a command, e.g. a failed audit
            return code
    except EngineError as exc:
        console_err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        console_err.print("aborted")
        return 1
    except typer.TyperException as exc:  # usage errors: unknown option, bad value...
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            console_err.print(f"error: {exc.format_message()}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        console_err.print(
            "[bold red]internal error[/]: this is a bug in crm-engine; the traceback above says where"
        )
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["app", "main", "typer"]
