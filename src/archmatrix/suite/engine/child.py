"""One check in one forked child: the isolation primitive under the supervisor and the server.

Why fork and not subprocess: qemu-user follows ``fork`` but not ``exec`` of a
same-architecture binary (docs/lanes.md), so a child started by exec could
escape the emulator and run natively. A forked child stays inside whatever
runs this interpreter (qemu, Rosetta, a container).

Each child gets its own process group, so a check's own subprocesses (a
multiprocessing pool) are killed with it on timeout. Its stdout/stderr go to
files, so crash messages from the dynamic loader, faulthandler or qemu
("qemu: uncaught target signal 4") become the check's evidence. It reports
back through a pipe with one JSON document; a child that dies without
reporting is judged by its exit status and what it printed.

Stdlib only: this module runs inside lanes.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import select
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from ..classify import clean_evidence
from ..lane import executing, wrongarch
from ..registry import Check, CheckContext, CheckSkipped, Mismatch

TAIL = 2000  # characters of stdout/stderr kept as evidence


@dataclass
class ChildReport:
    """What happened to one forked child, before classification."""

    payload: dict[str, Any] | None  # what the child reported, if it got that far
    returncode: int | None  # negative: killed by that signal
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    # Killed by a signal: the extension modules faulthandler listed as loaded,
    # and which of them the forking parent had loaded already (lane.executing).
    extension_modules: list[str] = field(default_factory=list)
    inherited: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChildReport:
        returncode = data.get("returncode")
        return cls(
            payload=data.get("payload"),
            returncode=None if returncode is None else int(returncode),
            stdout=str(data.get("stdout") or ""),
            stderr=str(data.get("stderr") or ""),
            timed_out=bool(data.get("timed_out")),
            duration_s=float(data.get("duration_s") or 0.0),
            extension_modules=[str(m) for m in data.get("extension_modules") or ()],
            inherited=[str(m) for m in data.get("inherited") or ()],
        )


def _child_main(func: Callable[[], dict[str, Any]], wfd: int) -> None:
    """Runs in the child: never returns (os._exit), so no parent code runs twice."""
    code = 0
    try:
        os.setpgid(0, 0)
        # Python-level traceback on SIGSEGV/SIGILL/SIGABRT; it re-raises the
        # signal afterwards, so the exit status still says what killed us.
        faulthandler.enable(file=2, all_threads=False)  # fd 2 itself, whatever sys.stderr is
        payload = func()
    except BaseException as exc:  # everything becomes evidence
        payload = {
            "status": "exception",
            "exc_type": type(exc).__name__,
            "exc_message": str(exc),
            "traceback": traceback.format_exc()[-TAIL:],
        }
    try:
        data = json.dumps(payload, default=jsonable).encode()
        with os.fdopen(wfd, "wb") as pipe:
            pipe.write(data)
    except BaseException:
        code = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def run_forked(
    func: Callable[[], dict[str, Any]], timeout: float, on_start: Callable[[int], None] | None = None
) -> ChildReport:
    """Run ``func`` in a forked child with a time limit; never raises for the child's sake.

    ``on_start`` gets the child's pid (its process group) as soon as it exists.
    """
    rfd, wfd = os.pipe()
    # Closed by read_tail once the child is gone; the child inherits them as fd 1/2.
    out = tempfile.TemporaryFile()  # noqa: SIM115
    err = tempfile.TemporaryFile()  # noqa: SIM115
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        _child_main(func, wfd)
    os.close(wfd)
    # Also set from the parent: avoids the race where we kill before the
    # child has made its own group (EACCES once the child has exec'd or exited).
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    if on_start:
        on_start(pid)
    chunks: list[bytes] = []
    deadline = start + timeout
    timed_out = False
    status: int | None = None
    try:
        eof = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not eof:
                ready, _, _ = select.select([rfd], [], [], min(remaining, 0.2))
                if ready:
                    chunk = os.read(rfd, 65536)
                    if chunk:
                        chunks.append(chunk)
                        continue
                    eof = True
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if eof:
                time.sleep(0.01)
    finally:
        if status is None:
            kill_group(pid)
            _, status = os.waitpid(pid, 0)
        else:
            kill_group(pid)  # leftovers of the check (pool workers) die too
        # drain anything written just before exit
        while True:
            ready, _, _ = select.select([rfd], [], [], 0)
            if not ready:
                break
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(rfd)
    duration = time.monotonic() - start
    payload: dict[str, Any] | None = None
    if chunks:
        try:
            payload = json.loads(b"".join(chunks))
        except ValueError:
            payload = None
    returncode = None if status is None else os.waitstatus_to_exitcode(status)
    raw_err = read_raw(err)
    # the dead process's loaded extensions: this child's, or a worker's it started (a loky worker
    # killed by SIGILL leaves faulthandler's dump in the stderr it shares; the check only raises)
    died = returncode is not None and returncode < 0
    modules = executing.listed_modules(raw_err) if died or executing.WORKER_DIED in raw_err else []
    return ChildReport(
        payload=payload,
        returncode=returncode,
        stdout=read_tail(out),
        stderr=clean_evidence(raw_err, limit=TAIL),
        timed_out=timed_out,
        duration_s=duration,
        extension_modules=modules,
        # the child inherited what this process had loaded when it forked
        inherited=[m for m in modules if m in sys.modules],
    )


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def read_tail(fh: Any) -> str:
    return clean_evidence(read_raw(fh), limit=TAIL)


def read_raw(fh: Any) -> str:
    """The end of an output file, uncleaned; closes it."""
    try:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        # generously more than TAIL: clean_evidence shortens faulthandler's
        # module list, which must be read whole to be recognised
        fh.seek(max(0, size - 32 * TAIL))
        data: bytes = fh.read()
    finally:
        fh.close()
    return data.decode(errors="replace")


def run_check_body(chk: Check, ctx: CheckContext) -> dict[str, Any]:
    """In the child: run the check and describe how it ended."""
    try:
        extra = chk.func(ctx)
        if extra:
            for key, value in dict(extra).items():
                ctx.record(key, value)
        status, message = "ok", ""
    except Mismatch as exc:
        status, message = "mismatch", str(exc)
    except CheckSkipped as exc:
        status, message = "skipped", str(exc)
    except BaseException as exc:
        return {**describe_exception(exc), "metrics": ctx.metrics, "warnings": ctx.warnings}
    return {"status": status, "message": message, "metrics": ctx.metrics, "warnings": ctx.warnings}


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """An exception as the supervisor judges it, with what only this process can still see.

    The chain behind it (a package's own ImportError hides the loader's) and
    the binaries involved in a failed import (:mod:`..lane.wrongarch`): the
    supervisor reads their headers.
    """
    message = str(exc)
    if isinstance(exc, AssertionError) and not message:
        message = _bare_assert(exc)
    return {
        "status": "exception",
        "exc_type": type(exc).__name__,
        "exc_message": message,
        "traceback": traceback.format_exc()[-TAIL:],
        "chain": wrongarch.describe(exc),
        "binaries": wrongarch.candidate_files(exc),
    }


def _bare_assert(exc: AssertionError) -> str:
    """A bare ``assert`` has no message: its source line is the evidence."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"assert failed at {os.path.basename(last.filename)}:{last.lineno}: {last.line or ''}".rstrip(": ")


@contextlib.contextmanager
def output_to(stdout: BinaryIO, stderr: BinaryIO) -> Iterator[None]:
    """Point this process's fd 1 and 2 at two files, and back afterwards.

    For code run in this very process (the server's import checks): whatever
    it prints, and what faulthandler, the dynamic loader or qemu print if it
    crashes, lands in the files, which outlive a crash for the supervisor to read.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(stdout.fileno(), 1)
    os.dup2(stderr.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def run_here(chk: Check, ctx: CheckContext, stdout: BinaryIO, stderr: BinaryIO) -> ChildReport:
    """Run a check in this process, its output in two files, reported like a child.

    Its metrics may still hold numpy values: whoever sends the report on
    encodes them (``jsonable``), as a child's are. Closes both files.
    """
    start = time.monotonic()
    with output_to(stdout, stderr):
        payload = run_check_body(chk, ctx)
    return ChildReport(
        payload=payload,
        returncode=0,
        stdout=read_tail(stdout),
        stderr=read_tail(stderr),
        timed_out=False,
        duration_s=time.monotonic() - start,
    )
