"""The one way archmatrix starts a subprocess.

Every command is a list (never a shell string), is logged quoted before it
runs, and fails with a typed error that carries what the process printed.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
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
    on_line: Callable[[str], None] | None = None,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
) -> Completed:
    """Run ``argv`` and return its exit status and output.

    ``env`` replaces the environment when given (pass ``{**os.environ, ...}``
    to extend it). With ``check`` a non-zero exit raises :class:`CommandError`.
    With ``capture=False`` output goes to this process's own stdout/stderr
    (for long builds whose progress the user should see). ``on_line`` is
    called with each line of stderr as it arrives (progress of a lane),
    while stderr is still captured whole; ``on_start`` then receives the
    running process (to signal it from another thread on Ctrl-C).
    """
    args = [os.fspath(a) for a in argv]
    if not args:
        raise ValueError("run() needs a non-empty command")
    log.info("$ %s", shlex.join(args))
    if on_line is not None:
        return _run_streaming(args, env=env, cwd=cwd, timeout=timeout, check=check, on_line=on_line,
                              on_start=on_start)
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


def _run_streaming(
    args: list[str],
    *,
    env: Mapping[str, str] | None,
    cwd: Path | str | None,
    timeout: float | None,
    check: bool,
    on_line: Callable[[str], None],
    on_start: Callable[[subprocess.Popen[str]], None] | None,
) -> Completed:
    try:
        proc = subprocess.Popen(
            args,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise CommandError(args, f"command not found ({exc.filename})") from exc
    except OSError as exc:
        raise CommandError(args, f"could not start ({exc.strerror})", stderr=str(exc)) from exc
    if on_start is not None:
        on_start(proc)
    out_chunks: list[str] = []
    err_lines: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    reader = threading.Thread(target=lambda: out_chunks.append(stdout.read()), daemon=True)
    reader.start()

    def pump() -> None:
        for line in stderr:
            err_lines.append(line)
            on_line(line.rstrip("\n"))

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        reader.join(5)
        pumper.join(5)
        raise CommandTimeout(
            args, f"timed out after {timeout:g} s", stdout="".join(out_chunks), stderr="".join(err_lines)
        ) from None
    except BaseException:
        # Ctrl-C: the child got SIGINT too. Give it a moment to save what it
        # finished (the suite does), then make sure it is gone.
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    reader.join()
    pumper.join()
    result = Completed(args, returncode, "".join(out_chunks), "".join(err_lines))
    if check and returncode != 0:
        raise CommandError(
            args, f"exited with status {returncode}", returncode=returncode,
            stdout=result.stdout, stderr=result.stderr,
        )
    return result


def interrupt(proc: subprocess.Popen[str]) -> None:
    """Send SIGINT to a process ``run`` started (via ``on_start``), if it is still running."""
    if proc.poll() is None:
        log.info("interrupting pid %d: %s", proc.pid, proc.args)
        proc.send_signal(signal.SIGINT)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data
