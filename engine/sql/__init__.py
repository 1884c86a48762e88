"""SQL spelled per database: the one layer that knows SQLite from PostgreSQL.

* :mod:`~engine.sql.dialect`: the mechanism, one spelling per database keyed by its name;
* :mod:`~engine.sql.functions`: every function in a query that the databases spell differently;
* :mod:`~engine.sql.statements`: every statement they run differently (inserts that skip taken
  keys, write transactions, locks, statistics, ids drawn in bulk);
* :mod:`~engine.sql.locks`: the lock one process holds for its life (advisory lock, or a file);
* :mod:`~engine.sql.faults`: faults of the database's surroundings (read only, full, locked,
  unreachable) as engine errors;
* :mod:`~engine.sql.types`: the column types (aware UTC times, money, JSON).
"""

from __future__ import annotations

from engine.sql.dialect import DIALECTS, POSTGRESQL, SQLITE, construct, dialect_of, render, spelling
from engine.sql.faults import database_fault, sqlite_file, watch_faults
from engine.sql.functions import (
    AmountText,
    AsciiLower,
    AsciiUpper,
    BinaryCollation,
    Contains,
    DateToDatetime,
    DaysSince,
    ElapsedDays,
    EpochSeconds,
    FloorPoints,
    Greatest,
    IntegerDivide,
    IsoUtc,
    JsonDate,
    JsonObject,
    JsonText,
    Least,
    MonthDay,
    PlusDays,
    PlusSeconds,
    Sha256Hex,
    TrueDivide,
    Truth,
    UtcDate,
    install_sqlite_functions,
    json_object,
    typed_text,
)
from engine.sql.locks import AdvisoryLock, FileLock, process_lock
from engine.sql.statements import (
    allocate_ids,
    analyze,
    begin_write,
    drop_temporary,
    insert_ignoring,
    lock_rows,
    lock_table,
    new_id,
    planner_rows,
    probe_write,
    relax_durability,
    restore_durability,
    rowcount,
    serialise,
)
from engine.sql.types import JsonDict, Money, UtcDateTime

__all__ = [
    "DIALECTS",
    "POSTGRESQL",
    "SQLITE",
    "AdvisoryLock",
    "AmountText",
    "AsciiLower",
    "AsciiUpper",
    "BinaryCollation",
    "Contains",
    "DateToDatetime",
    "DaysSince",
    "ElapsedDays",
    "EpochSeconds",
    "FileLock",
    "FloorPoints",
    "Greatest",
    "IntegerDivide",
    "IsoUtc",
    "JsonDate",
    "JsonDict",
    "JsonObject",
    "JsonText",
    "Least",
    "Money",
    "MonthDay",
    "PlusDays",
    "PlusSeconds",
    "Sha256Hex",
    "TrueDivide",
    "Truth",
    "UtcDate",
    "UtcDateTime",
    "allocate_ids",
    "analyze",
    "begin_write",
    "construct",
    "database_fault",
    "dialect_of",
    "drop_temporary",
    "insert_ignoring",
    "install_sqlite_functions",
    "json_object",
    "lock_rows",
    "lock_table",
    "new_id",
    "planner_rows",
    "probe_write",
    "process_lock",
    "relax_durability",
    "render",
    "restore_durability",
    "rowcount",
    "serialise",
    "spelling",
    "sqlite_file",
    "typed_text",
    "watch_faults",
]
