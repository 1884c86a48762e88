"""Call outcomes as each call centre writes them: its own codes, or the outcome names.

``[responses.call_centres.NAME].codes`` maps a centre's codes to outcomes
(``{ "01" = "reached", "WN" = "wrong_number" }``). A value is read as one of
that centre's codes first (exactly, then ignoring case), then as an outcome
name (``no answer``, ``No-Answer`` and ``no_answer`` are one name). Without a
centre only the outcome names are understood.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from engine.errors import ConfigValueError, FieldError
from engine.settings import CALL_OUTCOMES, CallCentreSection


def outcome_name(text: str) -> str:
    """``text`` as an outcome name would be spelled: lower case, words joined by ``_``."""
    return "_".join(re.sub(r"[\W_]+", " ", text.lower()).split())


class CallOutcomes:
    """Reads call outcome codes of the call centres configured in ``[responses.call_centres]``."""

    def __init__(self, centres: Mapping[str, CallCentreSection]) -> None:
        self.centres = dict(centres)
        self._folded = {
            name: {code.strip().lower(): outcome for code, outcome in centre.codes.items()}
            for name, centre in self.centres.items()
        }

    def check_centre(self, name: str) -> str:
        """``name`` if it is a configured centre; else :class:`ConfigValueError` listing the known ones."""
        if name not in self.centres:
            raise ConfigValueError("config.toml", f"responses.call_centres.{name}", self.unknown_centre(name))
        return name

    def unknown_centre(self, name: str) -> str:
        """Why ``name`` is not a centre, with the ones there are."""
        known = ", ".join(sorted(self.centres)) or "none configured in [responses.call_centres]"
        return f"unknown call centre {name!r} (known: {known})"

    def outcome(self, value: str, centre: str | None) -> str:
        """The outcome ``value`` stands for at ``centre``; :class:`FieldError` says which codes there are."""
        text = value.strip()
        if centre is not None:
            codes = self.centres[centre].codes
            if text in codes:
                return codes[text]
            folded = self._folded[centre].get(text.lower())
            if folded is not None:
                return folded
        name = outcome_name(text)
        if name in CALL_OUTCOMES:
            return name
        outcomes = ", ".join(CALL_OUTCOMES)
        if centre is None:
            raise FieldError(
                f"unknown outcome {text!r} (outcomes: {outcomes}; a call centre's own codes "
                "need --centre or a centre column)"
            )
        codes_text = ", ".join(self.centres[centre].codes) or "none"
        raise FieldError(
            f"unknown code {text!r} for call centre {centre!r} "
            f"(its codes: {codes_text}; outcomes: {outcomes})"
        )
