"""Deterministic bucketing of row keys, identical in SQL and Python.

``bucket(n, salt)`` is a multiplicative (Fibonacci) hash of the row key,
computed only with integer ``+ * % /`` on values below 2**63 so SQLite,
PostgreSQL (bigint) and Python give the same result::

    h = ((key + crc32(salt)) % 2**31) * 2654435761 % 2**32
    bucket = (h // 2**16) % n          # the high 16 bits, well mixed

Keys must be positive integers.
"""

from __future__ import annotations

import zlib

KEY_MODULUS = 2**31
MULTIPLIER = 2654435761
HASH_MODULUS = 2**32
HIGH_BITS_DIVISOR = 2**16


def salt_offset(salt: str) -> int:
    """The CRC-32 of ``salt`` (UTF-8), added to the key before hashing."""
    return zlib.crc32(salt.encode("utf-8"))


def bucket_of(key: int, count: int, salt: str = "") -> int:
    """The bucket ``0..count-1`` of ``key``."""
    hashed = ((key + salt_offset(salt)) % KEY_MODULUS) * MULTIPLIER % HASH_MODULUS
    return (hashed // HIGH_BITS_DIVISOR) % count
