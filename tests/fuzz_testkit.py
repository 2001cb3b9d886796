"""The fuzz suite's sizes (issue 22): every fuzz test runs a short, bounded version in the default
run (CI) and its full size on demand, ``CDB_FUZZ=full pytest -m fuzz``.

Mutations are seeded (``random.Random(seed)``), so a failure names the case that made it and runs
again the same; :func:`mutate` is the one byte-level mutator the suites share.
"""

from __future__ import annotations

import os
import random

__all__ = ["FULL", "cases", "mutate"]

FULL = os.environ.get("CDB_FUZZ", "").lower() == "full"


def cases(ci: int, full: int) -> int:
    """How many cases a fuzz test runs: ``ci`` in the default run, ``full`` with CDB_FUZZ=full."""
    return full if FULL else ci


_INTERESTING = [
    b"\x00",
    b"\xff",
    b"\xc3\x28",  # invalid UTF-8
    b"\xef\xbb\xbf",  # a BOM
    b"\n",
    b"\r\n",
    b'"',
    b"'",
    b"=",
    b"{",
    b"[",
    b"-1",
    b"99999999999999999999999999",
    b"1e400",
    b"NaN",
    b"${",
]


def mutate(data: bytes, rng: random.Random, *, rounds: int = 4) -> bytes:
    """``data`` with up to ``rounds`` random byte-level changes: a byte flipped, inserted or
    deleted, a slice repeated or cut, or an interesting token spliced in."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, rounds)):
        choice = rng.randrange(6)
        at = rng.randrange(len(buffer) + 1)
        if choice == 0 and buffer:
            buffer[min(at, len(buffer) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1:
            buffer[at:at] = bytes([rng.randrange(256)])
        elif choice == 2 and buffer:
            del buffer[at : at + rng.randint(1, 8)]
        elif choice == 3 and buffer:
            start = rng.randrange(len(buffer))
            piece = buffer[start : start + rng.randint(1, 64)]
            buffer[at:at] = piece * rng.randint(2, 50)
        elif choice == 4:
            del buffer[at:]
        else:
            buffer[at:at] = rng.choice(_INTERESTING)
    return bytes(buffer)
