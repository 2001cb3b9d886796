"""Exit codes and the one place that maps errors to them.

=====  =============================================  ==========================================
code   meaning                                        raised by
=====  =============================================  ==========================================
0      ok
1      operation failed, or an unexpected error       DependencyError, VenueError, StateError, …
2      usage error (unknown flag, bad argument)       Click
3      configuration invalid                          ConfigurationError
4      a check failed                                 CheckFailed (systemcheck, verify)
130    interrupted (Ctrl-C / SIGINT)                  KeyboardInterrupt
=====  =============================================  ==========================================
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode", "exit_code_for"]


class ExitCode(IntEnum):
    """Process exit codes of cdb; documented in the README."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    CONFIGURATION = 3
    CHECK_FAILED = 4
    INTERRUPTED = 130


def exit_code_for(error: BaseException) -> ExitCode:
    """Map an exception to its exit code (imports the error tree lazily: keeps --help fast)."""
    from cdb_cli.engine.errors import CheckFailed, ConfigurationError, SchemaOutOfDate

    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, ConfigurationError | SchemaOutOfDate):
        return ExitCode.CONFIGURATION
    if isinstance(error, CheckFailed):
        return ExitCode.CHECK_FAILED
    return ExitCode.FAILURE
