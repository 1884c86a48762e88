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
from engine.customers.importing.options import ImportOptions
from engine.customers.importing.purchases import import_purchases
from engine.customers.importing.summary import ImportSummary

__all__ = ["ImportOptions", "ImportSummary", "import_customers", "import_purchases"]
