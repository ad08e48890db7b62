"""Shared event codes: stored as scrypt with a per-event salt, compared in constant time, off the event loop.

    stored = await hash_code("open-sesame-42")          # "scrypt$16384$8$1$<salt hex>$<hash hex>"
    await code_matches(stored, "open-sesame-42")        # True
    generate_code()                                      # "K7QM-XH4T-9PWD": 60 random bits, easy to read aloud

Events created before scrypt hold a bare SHA-256 hex digest; `code_matches` still accepts it and `is_legacy` tells
the caller to store the scrypt form once the right code is seen (the plain code is needed to re-hash it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

MIN_LENGTH = 8
GENERATE = "generate"  # `"shared_code": "generate"` asks the gateway for a code

# 16 MiB and tens of milliseconds per guess: cheap for an attendee, costly for a guessing farm.
_N, _R, _P = 2**14, 8, 1
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I/L to misread


def generate_code() -> str:
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return "-".join(chars[i : i + 4] for i in range(0, 12, 4))


def _scrypt(code: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(code.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def _hash(code: str) -> str:
    salt = secrets.token_bytes(16)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${_scrypt(code, salt, _N, _R, _P).hex()}"


def _matches(stored: str, code: str) -> bool:
    if stored.startswith("scrypt$"):
        try:
            _, n, r, p, salt, digest = stored.split("$")
            expected = bytes.fromhex(digest)
            given = _scrypt(code, bytes.fromhex(salt), int(n), int(r), int(p))
        except ValueError:
            return False  # a mangled row matches nothing
        return hmac.compare_digest(given, expected)
    return hmac.compare_digest(hashlib.sha256(code.encode()).hexdigest(), stored)


def is_legacy(stored: str) -> bool:
    return not stored.startswith("scrypt$")


async def hash_code(code: str) -> str:
    return await asyncio.to_thread(_hash, code)


async def code_matches(stored: str, code: str) -> bool:
    return await asyncio.to_thread(_matches, stored, code)


__all__ = ["GENERATE", "MIN_LENGTH", "code_matches", "generate_code", "hash_code", "is_legacy"]
