"""Customer and purchase import from CSV and XLSX files.

``import_customers`` and ``import_purchases`` read a file (encoding, delimiter,
date format and decimal separator given or detected, never guessed when the
file does not decide), normalise and check each row, write the good rows in one
transaction with set-based statements, and the bad rows with their reasons to
a rejects file. A file that cannot be read at all raises
:class:`~engine.errors.ImportFileError` and changes nothing.

Modules, by concept: ``reader`` (files, encodings, delimiters), ``columns``
(header mapping), ``detection`` (date order, decimal separator), ``normalise``
(cells to values), ``customers`` and ``purchases`` (the two importers),
``references`` (customer references in rows, resolved in bulk), ``rejects``,
``summary``, ``options``, ``pipeline`` (the steps both share), ``batch`` (the
``import_batch`` record).
"""

from __future__ import annotations

from engine.customers.importing.customers import import_customers
from engine.customers.importing.normalise import (
    DateReader,
    NumberReader,
    clean_text,
    is_empty,
    parse_choice,
    parse_email,
    parse_phone,
    phone_region,
)
from engine.customers.importing.options import ImportOptions
from engine.customers.importing.pipeline import (
    PreparedImport,
    Rejected,
    prepare_import,
    read_chunk,
    run_import,
    wrong_width,
)
from engine.customers.importing.purchases import PurchaseImportSummary, import_purchases
from engine.customers.importing.reader import Cell, SourceRow
from engine.customers.importing.references import (
    CustomerReference,
    References,
    customer_of,
    generic_reference,
    resolve_references,
    row_reference,
)
from engine.customers.importing.summary import ImportSummary

__all__ = [
    "Cell",
    "CustomerReference",
    "DateReader",
    "ImportOptions",
    "ImportSummary",
    "NumberReader",
    "PreparedImport",
    "PurchaseImportSummary",
    "References",
    "Rejected",
    "SourceRow",
    "clean_text",
    "customer_of",
    "generic_reference",
    "import_customers",
    "import_purchases",
    "is_empty",
    "parse_choice",
    "parse_email",
    "parse_phone",
    "phone_region",
    "prepare_import",
    "read_chunk",
    "resolve_references",
    "row_reference",
    "run_import",
    "wrong_width",
]
