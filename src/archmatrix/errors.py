"""archmatrix's exit codes and the errors a user sees, each carrying its exit code.

The one place exit codes are defined (``tests/unit/test_errors.py`` fails on
a second). ``archmatrix.cli.main`` catches :class:`ArchmatrixError` once,
prints :meth:`ArchmatrixError.report` on stderr and returns its
``exit_code``, as cibuildwheel's ``__main__`` does with its ``FatalError``.

Standard library only: the lane-side suite imports :class:`ExitCode`, and
this module is staged into every lane with it.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from typing import ClassVar


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # a required lane failed (suite: a check failed; readme --check: the block is stale)
    CONFIG = 2  # the configuration or the command line is wrong
    INFRA = 3  # a lane could not be built or started, or a requested lane cannot run here
    BAD_RESULTS = 4  # unreadable result files
    INTERRUPTED = 130  # Ctrl-C or SIGTERM


class ArchmatrixError(Exception):
    """An error phrased for the user: one line on stderr and an exit code, never a traceback."""

    exit_code: ClassVar[ExitCode] = ExitCode.FAILED

    def report(self) -> str:
        """The line printed on stderr."""
        return f"archmatrix: {self}"


class ConfigError(ArchmatrixError):
    """A configuration problem, already phrased for the user (file:line:col: path: what)."""

    exit_code = ExitCode.CONFIG

    def report(self) -> str:
        return f"archmatrix: config error: {self}"


class UsageError(ArchmatrixError):
    """A command line that cannot be done: a missing file, a bad value."""

    exit_code = ExitCode.CONFIG


class InfraError(ArchmatrixError):
    """Something archmatrix needs is not there or did not work (not the packages' fault)."""

    exit_code = ExitCode.INFRA


class LaneInfraError(InfraError):
    """We could not build or start the lane (not the package's fault): ``infra-error``."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class ResultsError(ArchmatrixError):
    """Result files that cannot be read."""

    exit_code = ExitCode.BAD_RESULTS


def reporting_errors(func: Callable[..., int], *args: object, clean: Callable[[str], str] = str) -> int:
    """``func(*args)``, with every user-facing error turned into one line on stderr and its exit code.

    The one place errors become exit codes: ``archmatrix.cli.main`` (and
    ``python -m archmatrix.baseimage``) run everything through it. Messages
    quote lane ids, paths and file contents: ``clean`` makes them safe for a
    terminal (the host passes ``render.escape.terminal_lines``; this module
    stays stdlib-only, the lanes import it).
    """
    try:
        return func(*args)
    except ArchmatrixError as exc:
        print(clean(exc.report()), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("archmatrix: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
