"""Decompressing gzip data with a cap on its size, a step at a time (issue 22: a gzip bomb).

Memory holds the data up to the cap and one step's buffers, never what the bomb would become.
One or more members, as ``gzip.decompress`` reads them.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO, Final

__all__ = ["GzipBroken", "GzipOverCap", "gunzip_capped"]

STEP: Final = 1 << 12
"""Compressed bytes per step: the data of a broken stream is all it gave before the step that
failed."""


class GzipOverCap(Exception):
    """The data would be more than ``cap`` bytes; decompressing stopped one byte past it."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"more than {cap:,} bytes")
        self.cap = cap


class GzipBroken(Exception):
    """A corrupt or truncated stream; ``data`` is what it gave before."""

    def __init__(self, reason: str, data: bytearray) -> None:
        super().__init__(reason)
        self.data = data


def gunzip_capped(head: bytes, handle: BinaryIO, cap: int) -> bytearray:
    """The data of the gzip stream ``head`` + the rest of ``handle``, at most ``cap`` bytes.

    Raises :class:`GzipOverCap` past ``cap``, :class:`GzipBroken` for a corrupt or truncated
    stream (``zlib``'s reason, or the one ``gzip`` gives for a truncated file).
    """
    data = bytearray()
    stream = zlib.decompressobj(wbits=31)
    chunk = head + handle.read(STEP - len(head))
    try:
        while chunk:
            pending = chunk
            while pending:
                if stream.eof:  # the next member
                    stream = zlib.decompressobj(wbits=31)
                data += stream.decompress(pending, cap + 1 - len(data))
                if len(data) > cap:
                    raise GzipOverCap(cap)
                pending = stream.unused_data if stream.eof else stream.unconsumed_tail
            chunk = handle.read(STEP)
        while not stream.eof and (rest := stream.decompress(b"", cap + 1 - len(data))):
            data += rest  # output zlib still held when the input ran out
            if len(data) > cap:
                raise GzipOverCap(cap)
    except zlib.error as e:
        raise GzipBroken(str(e), data) from None
    if not stream.eof:
        raise GzipBroken("Compressed file ended before the end-of-stream marker was reached", data)
    return data
