"""A real RSA key pair for DKIM tests (made once with openssl), and DNS answers publishing its public key."""

from __future__ import annotations

import base64
import functools
import subprocess
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyPair:
    """A PEM private key (no passphrase) and the DKIM TXT record of its public key."""

    private_pem: bytes
    record: bytes  # v=DKIM1; k=rsa; p=...

    def dns(self, selector: str = "crm", domain: str = "shop.example") -> Callable[..., bytes | None]:
        """A ``dnsfunc`` for :func:`dkim.verify`: the record at ``SELECTOR._domainkey.DOMAIN`` only."""
        name = f"{selector}._domainkey.{domain}.".encode()

        def lookup(query: bytes, timeout: int = 5) -> bytes | None:
            return self.record if query == name else None

        return lookup


@functools.cache
def key_pair() -> KeyPair:
    """A 2048-bit RSA key pair, made once per test process."""
    private = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        check=True,
        capture_output=True,
    ).stdout
    public = subprocess.run(
        ["openssl", "rsa", "-pubout", "-outform", "DER"], input=private, check=True, capture_output=True
    ).stdout
    return KeyPair(private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))
