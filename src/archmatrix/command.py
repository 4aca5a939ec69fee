"""The one way archmatrix starts a subprocess.

Every command is a list (never a shell string), is logged quoted before it
runs, and fails with a typed error that carries what the process printed.

Every command runs in a process group of its own, and is stopped as a group:
a timeout, a Ctrl-C, or the interrupt of the lane it belongs to (its
:class:`CancelScope`) takes down pip's, debootstrap's or the suite's children
too, never only the direct child. A lane thread runs inside
``with cancel_scope(scope)``; ``scope.cancel()`` from another thread stops the
command it is running (SIGINT to the group, so the suite saves what it
finished, then SIGKILL) and raises :class:`Interrupted` there, and any later
command or :func:`check_interrupted` raises it at once.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("archmatrix.command")

Arg = str | os.PathLike[str]
T = TypeVar("T")

POLL_S = 0.05  # how often a running command looks at its lane's cancel scope
# After SIGINT, how long a process group has to exit (the suite saves its
# result, pip removes its temporary files) before it is killed.
INTERRUPT_GRACE_S = 2.0


class Interrupted(Exception):
    """The lane this thread works for was interrupted: its command was stopped, nothing more starts.

    Not a :class:`CommandError`, so no caller mistakes it for a failed command
    and falls back to another attempt.
    """


class CancelScope:
    """The interrupt of one lane: set from any thread, seen by every command run under it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Interrupted("interrupted")


_local = threading.local()


@contextmanager
def cancel_scope(scope: CancelScope) -> Iterator[CancelScope]:
    """Run the body (in this thread) under ``scope``: its commands stop when it is cancelled."""
    previous = getattr(_local, "scope", None)
    _local.scope = scope
    try:
        yield scope
    finally:
        _local.scope = previous


def current_scope() -> CancelScope | None:
    return getattr(_local, "scope", None)


def check_interrupted() -> None:
    """Raise :class:`Interrupted` if this thread's lane was interrupted (for steps that are no command)."""
    scope = current_scope()
    if scope is not None:
        scope.check()


def call_interruptible(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` (a blocking library call, e.g. a Docker build), abandoned on interrupt.

    The call runs in a daemon thread; when this thread's scope is cancelled
    :class:`Interrupted` is raised at once and the call is left to end with the
    process (the Docker engine cancels a build whose client went away).
    """
    scope = current_scope()
    if scope is None:
        return func(*args, **kwargs)
    scope.check()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func(*args, **kwargs)
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name=f"call-{getattr(func, '__name__', 'func')}")
    worker.start()
    while worker.is_alive():
        worker.join(POLL_S * 2)
        if scope.cancelled and worker.is_alive():
            raise Interrupted("interrupted")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


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
    grace: float = INTERRUPT_GRACE_S,
) -> Completed:
    """Run ``argv`` and return its exit status and output.

    ``env`` replaces the environment when given (pass ``{**os.environ, ...}``
    to extend it). With ``check`` a non-zero exit raises :class:`CommandError`.
    With ``capture=False`` output goes to this process's own stdout/stderr
    (for long builds whose progress the user should see). ``on_line`` is
    called with each line of stderr as it arrives (progress of a lane),
    while stderr is still captured whole; ``on_start`` receives the running
    process. On timeout the process group is killed (:class:`CommandTimeout`);
    on an interrupt (Ctrl-C in this thread, or this thread's cancel scope) it
    gets SIGINT, ``grace`` seconds, then SIGKILL, and the interrupt is raised.
    """
    args = [os.fspath(a) for a in argv]
    if not args:
        raise ValueError("run() needs a non-empty command")
    check_interrupted()
    log.info("$ %s", shlex.join(args))
    streaming = on_line is not None
    try:
        proc = subprocess.Popen(
            args,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.PIPE if input is not None else (subprocess.DEVNULL if streaming else None),
            stdout=subprocess.PIPE if capture or streaming else None,
            stderr=subprocess.PIPE if capture or streaming else None,
            text=True,
            errors="replace",
            # its own process group (and session): stopped as a whole, and a
            # terminal's Ctrl-C reaches archmatrix, which stops it in order
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise CommandError(args, f"command not found ({exc.filename})") from exc
    except PermissionError as exc:
        raise CommandError(args, f"permission denied ({exc.filename})") from exc
    except OSError as exc:
        # e.g. "Exec format error" for a binary of another architecture
        raise CommandError(args, f"could not start ({exc.strerror})", stderr=str(exc)) from exc
    if on_start is not None:
        on_start(proc)
    if on_line is not None:
        returncode, stdout, stderr = _wait_streaming(proc, args, timeout, on_line, grace)
    else:
        returncode, stdout, stderr = _wait(proc, args, timeout, input, grace)
    result = Completed(args, returncode, stdout, stderr)
    if check and returncode != 0:
        raise CommandError(
            args,
            f"exited with status {returncode}",
            returncode=returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        )
    return result


def _wait(
    proc: subprocess.Popen[str], args: list[str], timeout: float | None, input: str | None, grace: float
) -> tuple[int, str, str]:
    """communicate() in short steps, so a timeout or an interrupt is seen within POLL_S."""
    scope = current_scope()
    deadline = None if timeout is None else time.monotonic() + timeout
    pending_input = input
    try:
        while True:
            step = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            try:
                # input only once: communicate() keeps writing it across retries
                sent, pending_input = pending_input, None
                out, err = proc.communicate(sent, timeout=step)
                return proc.returncode, out or "", err or ""
            except subprocess.TimeoutExpired:
                if scope is not None and scope.cancelled:
                    raise Interrupted("interrupted") from None
                if deadline is not None and time.monotonic() >= deadline:
                    kill_group(proc)
                    out, err = _leftover_output(proc)
                    raise CommandTimeout(args, f"timed out after {timeout:g} s", stdout=out,
                                         stderr=err) from None
    except BaseException:
        stop_group(proc, grace)
        raise


def _wait_streaming(
    proc: subprocess.Popen[str], args: list[str], timeout: float | None,
    on_line: Callable[[str], None], grace: float,
) -> tuple[int, str, str]:
    scope = current_scope()
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
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            step = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            try:
                returncode = proc.wait(timeout=step)
                break
            except subprocess.TimeoutExpired:
                if scope is not None and scope.cancelled:
                    raise Interrupted("interrupted") from None
                if deadline is not None and time.monotonic() >= deadline:
                    kill_group(proc)
                    reader.join(5)
                    pumper.join(5)
                    raise CommandTimeout(args, f"timed out after {timeout:g} s",
                                         stdout="".join(out_chunks), stderr="".join(err_lines)) from None
    except BaseException:
        # Ctrl-C or the lane's interrupt: SIGINT first, so the suite saves
        # what it finished, then make sure the whole group is gone.
        stop_group(proc, grace)
        reader.join(1)
        pumper.join(1)
        raise
    reader.join()
    pumper.join()
    return returncode, "".join(out_chunks), "".join(err_lines)


def signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    """Send ``sig`` to the process group ``run`` started ``proc`` in (its pid: a new session)."""
    with suppress(ProcessLookupError, PermissionError):  # the whole group is gone already
        os.killpg(proc.pid, sig)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process group, then reap its leader."""
    signal_group(proc, signal.SIGKILL)
    proc.wait()


def stop_group(proc: subprocess.Popen[str], grace: float) -> None:
    """SIGINT to the group; after ``grace`` seconds (or once the leader exited), SIGKILL what is left."""
    if proc.poll() is None:
        log.info("interrupting pid %d: %s", proc.pid, proc.args)
        signal_group(proc, signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # the leader may be gone while its children are not (pip's, debootstrap's)
    kill_group(proc)


def _leftover_output(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=2)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return "", ""  # a process outside the group still holds the pipes
    return out or "", err or ""


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
