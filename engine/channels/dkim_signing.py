"""DKIM signatures (RFC 6376) over the final bytes of an email, with dkimpy.

A :class:`DkimSigner` holds the domain's private key (PEM, RSA), its
selector and domain; :meth:`DkimSigner.sign` puts a ``DKIM-Signature``
header in front of a message's bytes: ``rsa-sha256``, ``relaxed/relaxed``
canonicalisation, over the headers of
:data:`engine.settings.DKIM_HEADERS` (From, To, Subject, Date, Message-ID,
List-Unsubscribe, List-Unsubscribe-Post, List-Id, MIME-Version,
Content-Type), a header the message lacks signed as absent (so nobody can
add it on the way). The signature covers the bytes as they are sent, CRLF line
ends; a Maildir file that keeps them with LF ends still verifies, since
relaxed canonicalisation reads either.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import HeaderInjectionError
from engine.settings import DKIM_HEADERS


class DkimSigner:
    """Signs emails for ``domain`` with ``private_key`` (PEM bytes, RSA) under ``selector``."""

    def __init__(
        self, *, selector: str, domain: str, private_key: bytes, headers: Sequence[str] = DKIM_HEADERS
    ) -> None:
        self.selector = selector
        self.domain = domain
        self._key = private_key
        self._headers = [name.lower().encode("ascii") for name in headers]

    def signature(self, message: bytes) -> bytes:
        """The ``DKIM-Signature: ...`` header line (folded, ending with CRLF) for ``message``."""
        import dkim

        try:
            return bytes(
                dkim.sign(
                    message,
                    self.selector.encode("ascii"),
                    self.domain.encode("ascii"),
                    self._key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    signature_algorithm=b"rsa-sha256",
                    include_headers=self._headers,
                )
            )
        except dkim.DKIMException as exc:  # the message itself (the key was checked when loaded)
            raise HeaderInjectionError(f"cannot sign the message with DKIM: {exc}") from exc

    def sign(self, message: bytes) -> bytes:
        """``message`` with its DKIM signature in front."""
        return self.signature(message) + message
