"""The one error tree of crm-engine.

Every error the engine raises on purpose is an :class:`EngineError`; foreign
errors (SQLAlchemy, pydantic, csv, openpyxl...) are wrapped where they enter
with ``raise ... from exc``, so users read a sentence, never a traceback::

    EngineError
    ├── ConfigError (ValueError)          bad config.toml / campaigns / budgets
    │   ├── ConfigFileError               file missing, unreadable, not TOML
    │   ├── ConfigValueError              a field with a bad value
    │   ├── ConfigErrors                  several of them, found in one pass
    │   ├── SegmentCycleError             segments that reference each other
    │   ├── TemplateRenderError           a template that fails for a customer
    │   └── RuleError                     a rule of the rule language
    │       ├── RuleSyntaxError           outside the language, cannot parse
    │       ├── RuleTypeError             well-formed, wrong types
    │       └── UnknownFieldError         a name the catalogue does not know
    ├── ImportFileError (ValueError)      an import file that cannot be read at all
    ├── FieldError (ValueError)           one cell of an import file that cannot be read
    ├── NotADeliveryReport (ValueError)   a message that is no delivery status notification
    ├── HeaderInjectionError (ValueError) a header value with a line break: never sent
    ├── OutputError                       a file or folder the engine writes cannot be written
    ├── DatabaseError                     schema missing, cannot connect, migration failed
    │   ├── JournalError                  a message's point of no return not recorded: not sent
    │   └── DatabaseUnavailableError      the database refuses the work: read only, full, locked, unreachable
    ├── NotFoundError (LookupError)       a named thing that does not exist
    ├── IdempotencyConflictError          a key reused for a different request (ledger, events)
    ├── InvalidValueError (ValueError)    a value outside the engine's limits, or an unknown time zone
    ├── LoyaltyError                      a ledger command refused: nothing was posted
    │   ├── InsufficientPointsError       not enough available points
    │   └── HoldClosedError               a hold already captured, voided or timed out
    └── ApiError                          an HTTP answer: status, code and sentence
        └── BodyTooLargeError             a request body over the limit (413)

The CLI maps :class:`EngineError` to exit code 1 (user error) and anything else
to exit code 2 (a bug).
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error crm-engine raises on purpose."""


class ConfigError(EngineError, ValueError):
    """The configuration is wrong; nothing was changed."""


class ConfigFileError(ConfigError):
    """A configuration file is missing, unreadable or not valid TOML."""

    def __init__(self, path: str, reason: str, *, line: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class ConfigValueError(ConfigError):
    """A field of a configuration file has a bad value.

    Rendered as ``config.toml:42 segments.lapsing.rule: <reason>``.
    """

    def __init__(self, path: str, toml_path: str, reason: str, *, line: int | None = None) -> None:
        self.path = path
        self.toml_path = toml_path
        self.reason = reason
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where} {toml_path}: {reason}" if toml_path else f"{where}: {reason}")


class ConfigErrors(ConfigError):
    """Several configuration errors found in one pass; each is listed."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class TemplateRenderError(ConfigError):
    """A template failed for a customer (a missing variable, a sandbox violation)."""


class SegmentCycleError(ConfigError):
    """Segments reference each other in a cycle."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("segments reference each other in a cycle: " + " -> ".join(cycle))


class RuleError(ConfigError):
    """A rule of the rule language is wrong; ``line``/``column`` are 1-based in the rule text."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        suggestion: str | None = None,
        text: str | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.suggestion = suggestion
        self.text = text
        rendered = message
        if suggestion:
            rendered += f" (did you mean {suggestion}?)"
        if line is not None:
            rendered = f"line {line}, column {column or 1}: {rendered}"
        super().__init__(rendered)


class RuleSyntaxError(RuleError):
    """The rule is not in the language (bad syntax or a refused construct)."""


class RuleTypeError(RuleError):
    """The rule is well formed but its types do not fit."""


class UnknownFieldError(RuleError):
    """The rule names a field, function or segment that does not exist."""


class ImportFileError(EngineError, ValueError):
    """An import file cannot be read at all; nothing was imported."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class FieldError(EngineError, ValueError):
    """One cell of an import file cannot be read; the message says why (the caller adds the field name)."""


class NotADeliveryReport(EngineError, ValueError):
    """A message is not a delivery status notification this engine can use; the text says why."""


class HeaderInjectionError(EngineError, ValueError):
    """A header value carries a line break (or is not allowed): refused, never sent."""


class DatabaseError(EngineError):
    """The database cannot be reached, or its schema is missing or outdated."""


class JournalError(DatabaseError):
    """The send journal could not record a message's point of no return: the message was not sent."""


class NotFoundError(EngineError, LookupError):
    """A named thing (segment, customer, import) does not exist."""

    def __init__(self, kind: str, name: str, known: list[str] | None = None) -> None:
        self.kind = kind
        self.name = name
        self.known = known or []
        message = f"unknown {kind} {name!r}"
        if known:
            message += f" (known: {', '.join(sorted(known))})"
        super().__init__(message)


class IdempotencyConflictError(EngineError):
    """An idempotency key already used for a different request; nothing was done.

    Ledger commands and custom events share it: a retry must send the same
    content, a new request needs a new key. ``reason`` names the request the
    key belongs to (built by :meth:`command` and :meth:`event`).
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(reason)

    @classmethod
    def command(cls, programme: str, key: str, command: str) -> IdempotencyConflictError:
        """A ledger command whose key was used for a different request."""
        return cls(
            key,
            f"programme {programme!r}: key {key!r} was already used for a different {command}"
            " request; a retry must send the same content, a new request needs a new key",
        )

    @classmethod
    def event(cls, source: str, key: str, event_id: int) -> IdempotencyConflictError:
        """A custom event whose key was recorded for a different event."""
        reason = f"key {key!r} of source {source!r} was recorded for a different event (id {event_id})"
        return cls(key, f"event key: {reason}")


class LoyaltyError(EngineError):
    """A loyalty ledger command was refused; nothing was posted."""


class InsufficientPointsError(LoyaltyError):
    """The account cannot afford what was asked."""

    def __init__(self, account: str, wanted: int, available: int) -> None:
        self.wanted = wanted
        self.available = available
        super().__init__(f"{account}: {wanted} points asked, {available} available")


class HoldClosedError(LoyaltyError):
    """A hold that was already captured, voided or timed out."""

    def __init__(self, key: str, state: str) -> None:
        self.state = state
        super().__init__(f"hold {key!r} is {state}: it cannot be captured or voided again")


class ApiError(EngineError):
    """An error the API answers with ``status`` and ``{"error": code, "detail": detail}``."""

    def __init__(self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        super().__init__(detail)


class BodyTooLargeError(ApiError):
    """A request body larger than ``[api].max_body_bytes``; it reaches no route."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(413, "body_too_large", f"request body larger than {limit} bytes")


class InvalidValueError(EngineError, ValueError):
    """A value outside the engine's limits, or not a value of its kind (an amount, points, a date, a zone...).

    Raised by :mod:`engine.settings.limits` and :func:`engine.settings.time_zone`; the
    message names the value and the limit. Each door adds where the value came from:
    config errors name the file, line and field, the CLI the option, an import the
    row and column, the API the field of the request (422).
    """


class DatabaseUnavailableError(DatabaseError):
    """The database refuses the work for a reason outside the engine; what was not committed is rolled back.

    A read-only database (file, role or transaction), a full disk, a lock held
    too long by another process, a server that cannot be reached, a role
    without the privilege. ``kind`` names which (``read_only``, ``full``,
    ``locked``, ``unreachable``, ``privilege``, ``unusable``); the message
    names the database, what it answered and what to fix. The CLI exits 1,
    the API answers 503.
    """

    def __init__(self, where: str, kind: str, problem: str, fix: str) -> None:
        self.where = where
        self.kind = kind
        self.problem = problem
        self.fix = fix
        super().__init__(f"database {where}: {problem}: {fix}")


class OutputError(EngineError):
    """A file or folder the engine writes cannot be written: nothing half-written is left there.

    A missing folder, a file where a folder should be (or the reverse), no
    permission, a full disk. ``option`` names where the path came from (``--output``,
    ``channels.email.maildir``...) when it was given; the message ends with
    what to fix.
    """

    def __init__(self, path: str, reason: str, *, option: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.option = option
        where = f"{option} {path}" if option else path
        super().__init__(f"{where}: {reason}")
