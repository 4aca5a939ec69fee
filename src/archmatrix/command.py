"""The one way archmatrix starts a subprocess.

Every command is a list (never a shell string), is logged quoted before it
runs, and fails with a typed error that carries what the process printed.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("archmatrix.command")

Arg = str | os.PathLike[str]


class CommandError(Exception):
    """A command could not be started, exited non-zero or timed out."""

    def __init__(
        self,
        argv: Sequence[str],
        message: str,
        returncode: int | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"{message}: {shlex.join(self.argv)}")

    def tail(self, lines: int = 20) -> str:
        """The last lines of stderr (or stdout when stderr is empty), for messages."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])


class CommandTimeout(CommandError):
    """The command did not finish within its time limit (it was killed)."""


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[Arg],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float | None = None,
    check: bool = True,
    capture: bool = True,
    input: str | None = None,
) -> Completed:
    """Run ``argv`` and return its exit status and output.

    ``env`` replaces the environment when given (pass ``{**os.environ, ...}``
    to extend it). With ``check`` a non-zero exit raises :class:`CommandError`.
    With ``capture=False`` output goes to this process's own stdout/stderr
    (for long builds whose progress the user should see).
    """
    args = [os.fspath(a) for a in argv]
    if not args:
        raise ValueError("run() needs a non-empty command")
    log.info("$ %s", shlex.join(args))
    try:
        proc = subprocess.run(
            args,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            capture_output=capture,
            text=True,
            errors="replace",
            input=input,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(args, f"command not found ({exc.filename})") from exc
    except PermissionError as exc:
        raise CommandError(args, f"permission denied ({exc.filename})") from exc
    except OSError as exc:
        # e.g. "Exec format error" for a binary of another architecture
        raise CommandError(args, f"could not start ({exc.strerror})", stderr=str(exc)) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeout(
            args,
            f"timed out after {timeout:g} s",
            stdout=_text(exc.stdout),
            stderr=_text(exc.stderr),
        ) from exc
    result = Completed(args, proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and proc.returncode != 0:
        raise CommandError(
            args,
            f"exited with status {proc.returncode}",
            returncode=proc.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        )
    return result


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data
