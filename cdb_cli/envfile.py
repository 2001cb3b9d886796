"""Reading a ``.env`` file as the settings do: bytes decoded as UTF-8 (a leading BOM allowed),
with one clear error naming the file and the line for anything that is not text (exit 3), and
never a value in it."""

from __future__ import annotations

import io
from pathlib import Path

from cdb_cli.engine.errors import ConfigurationError

__all__ = ["EnvFileError", "env_file_bindings", "env_file_values", "read_env_file"]


class EnvFileError(ConfigurationError):
    """A ``.env`` file that cannot be read as text; ``where`` is ``path:line``."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def read_env_file(path: Path) -> str:
    """The text of the ``.env`` file at ``path``: UTF-8, a leading BOM allowed.

    Raises :class:`EnvFileError` (a ``ConfigurationError``, exit 3) naming the file and the line
    for bytes that are not UTF-8, a NUL byte, or a file that cannot be read; never a value.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EnvFileError(str(path), f"cannot read the env file: {e.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise EnvFileError(
            f"{path}:{line}",
            f"not valid UTF-8 (byte 0x{data[e.start]:02x}); save the env file as UTF-8",
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise EnvFileError(f"{path}:{line}", "holds a NUL byte; save the env file as text")
    return text


def env_file_values(path: Path) -> dict[str, str]:
    """The variables of the ``.env`` file at ``path`` as the settings read them (``${VAR}``
    interpolated); ``EnvFileError`` when it is not UTF-8 text."""
    from dotenv import dotenv_values

    values = dotenv_values(stream=io.StringIO(read_env_file(path)))
    return {key: value or "" for key, value in values.items()}


def env_file_bindings(path: Path) -> list[tuple[str, str]]:
    """Every ``NAME=value`` of the ``.env`` file at ``path`` in order, also those a later line
    overrides (values as written, not interpolated): what the secrets were, for redaction, since
    ``${VAR}`` copies a value before a later line replaces it."""
    from dotenv.parser import parse_stream

    return [
        (binding.key, binding.value or "")
        for binding in parse_stream(io.StringIO(read_env_file(path)))
        if binding.key is not None
    ]
