"""The per-lane check server: import the stack once, then fork one child per check.

Under emulation an import of numpy, scipy and scikit-learn costs seconds
(~4.5 s under QEMU), so a lane must not pay it once per check, nor twice
(issue 8). The supervisor, which stays stdlib-only, forks one *server*. The
server runs the import checks in itself, one after another, each with its
output going to its own files; once they pass it imports the rest of the
stack (the preload), runs the stage's job (the lane's facts) in a forked
child, and forks one child per remaining check exactly as the supervisor
would, so each check's crash or hang stays in that check's own child and
process group.

What the server cannot isolate is the import checks it runs in itself: a
crash there kills it. The supervisor then judges that check from the
server's exit status and the check's output files (what a clean child would
have given) and runs every remaining check the slow way, each in a clean
child. The same fallback follows an import check that fails, a server that
hangs (killed at the check's limit) or dies for any other reason: no check
is ever lost, only speed.

The server talks to the supervisor in JSON lines on a pipe::

    {"event": "start", "index": i, "pid": p}          check i started (p: its child; null: in the server)
    {"event": "report", "index": i, "report": {...}}  check i's ChildReport
    {"event": "stage", "report": {...}, "preloaded": [...]}

The supervisor judges every report itself, so a check is judged the same way
wherever it ran. Stdlib only: this module runs inside lanes.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import json
import os
import select
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from ..classify import clean_evidence
from ..lane import executing
from ..registry import Check, CheckContext
from .child import TAIL, ChildReport, jsonable, kill_group, read_raw, run_check_body, run_forked, run_here

# How long past a check's own limit the server may take to report it before
# the supervisor counts the server itself as hung (the server kills a child
# at its limit; this only guards against the server not doing so).
GRACE_S = 30.0


def passed(report: ChildReport) -> bool:
    """Whether the server goes on serving after this import check (both sides ask)."""
    return (report.payload or {}).get("status") in ("ok", "skipped")


@dataclass(frozen=True)
class Stage:
    """What runs once, between the import checks and the others.

    ``job`` runs in a forked child (the lane's facts: it imports numpy, so a
    crash there costs the facts, never the lane); ``on_job`` receives its
    report in the supervisor, with the modules the server preloaded before it
    (none when the supervisor ran the job itself).
    """

    job: Callable[[], dict[str, Any]]
    on_job: Callable[[ChildReport, list[str]], None]
    timeout: float


@dataclass(frozen=True)
class Served:
    """How far the server got: the supervisor runs ``checks[next_index:]`` itself."""

    next_index: int
    staged: bool
    fallback: str | None  # why the server stopped early, if it did


def preload(modules: Sequence[str]) -> list[str]:
    """Import ``modules`` in order, up to the first that fails; the ones imported."""
    loaded = []
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # the checks that need it will say what is wrong
            break
        loaded.append(module)
    return loaded


# ------------------------------------------------------------- server side


def _server_main(
    checks: list[Check],
    limits: list[float],
    modules: Sequence[str],
    stage: Stage | None,
    context_factory: Callable[[], CheckContext],
    wfd: int,
    workdir: Path,
) -> NoReturn:
    """Runs in the forked server: never returns (os._exit), so no supervisor code runs twice."""
    code = 0
    try:
        os.setpgid(0, 0)
        # Between checks (the preload) the server's own output goes to files
        # too: nothing it prints may mix into the supervisor's progress lines.
        for fd, name in ((1, "server.out"), (2, "server.err")):
            with open(workdir / name, "wb") as fh:
                os.dup2(fh.fileno(), fd)
        faulthandler.enable(file=2, all_threads=False)  # fd 2 itself: the current check's file
        with os.fdopen(wfd, "w", encoding="utf-8") as pipe:

            def send(**message: Any) -> None:
                pipe.write(json.dumps(message, default=jsonable) + "\n")
                pipe.flush()

            _serve(checks, limits, modules, stage, context_factory, send, workdir)
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _serve(
    checks: list[Check],
    limits: list[float],
    modules: Sequence[str],
    stage: Stage | None,
    context_factory: Callable[[], CheckContext],
    send: Callable[..., None],
    workdir: Path,
) -> None:
    staged = False

    def begin() -> None:
        nonlocal staged
        staged = True
        loaded = preload(modules)
        if stage is not None:
            send(event="stage", report=run_forked(stage.job, stage.timeout).to_dict(), preloaded=loaded)

    for index, chk in enumerate(checks):
        if chk.group == "lane":  # the self-check, first: in a child, before anything is imported
            report = run_forked(partial(run_check_body, chk, context_factory()), limits[index],
                                on_start=partial(_started, send, index))
            send(event="report", index=index, report=report.to_dict())
            continue
        if chk.group == "import":  # sorted next: they run here, in the server itself
            send(event="start", index=index, pid=None)
            out_path, err_path = _output_files(workdir, index)
            with open(out_path, "w+b") as out, open(err_path, "w+b") as err:
                report = run_here(chk, context_factory(), out, err)
            send(event="report", index=index, report=report.to_dict())
            if not passed(report):
                return  # the supervisor runs the rest, each in a clean child
            continue
        if not staged:
            begin()
        report = run_forked(
            partial(run_check_body, chk, context_factory()), limits[index],
            on_start=partial(_started, send, index),
        )
        send(event="report", index=index, report=report.to_dict())
    if not staged:  # only import checks were selected
        begin()


def _started(send: Callable[..., None], index: int, pid: int) -> None:
    send(event="start", index=index, pid=pid)


def _output_files(workdir: Path, index: int) -> tuple[Path, Path]:
    return workdir / f"{index}.out", workdir / f"{index}.err"


# --------------------------------------------------------- supervisor side


@dataclass
class _Running:
    index: int
    pid: int | None  # the check's child; None: running in the server itself
    started: float
    limit: float


class _Session:
    """The supervisor's side of one server: read its messages, watch it, judge what it leaves."""

    POLL_S = 0.2  # how often the server's liveness is checked while its pipe is quiet

    def __init__(self, server: int, rfd: int, workdir: Path, checks: list[Check], limits: list[float],
                 stage: Stage | None, record: Callable[[int, ChildReport], None]) -> None:
        self.server, self.rfd, self.workdir = server, rfd, workdir
        self.checks, self.limits, self.stage, self.record = checks, limits, stage, record
        self.buffer = b""
        self.status: int | None = None  # the server's exit status, once reaped
        self.running: _Running | None = None
        self.next_index, self.staged = 0, False
        self.fallback: str | None = None
        self.idle_since = time.monotonic()
        # Between checks the server preloads and runs the stage's job.
        self.idle_limit = (stage.timeout if stage else 0.0) + max(limits, default=0.0) + GRACE_S

    def run(self) -> Served:
        try:
            while True:
                try:
                    message = self._next_message()
                except TimeoutError:
                    self._timed_out()
                    break
                except ValueError:
                    self.fallback = "the check server sent a message that is not JSON"
                    break
                if message is None:
                    self._gone()
                    break
                self._handle(message)
        finally:
            self._close()
        return Served(next_index=self.next_index, staged=self.staged, fallback=self.fallback)

    def _deadline(self) -> float:
        running = self.running
        if running is None:
            return self.idle_since + self.idle_limit
        # the server kills a child at its limit; past that plus a grace, the server is stuck
        return running.started + running.limit + (GRACE_S if running.pid else 0.0)

    def _next_message(self) -> dict[str, Any] | None:
        """The next message; None once the server is gone; TimeoutError past the deadline.

        The end of the pipe alone does not say the server is gone: a check's
        leftover process may hold its write end. So the server is also
        reaped while the pipe is quiet (without killing it: its exit status
        is evidence).
        """
        while b"\n" not in self.buffer:
            remaining = self._deadline() - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.rfd], [], [], min(remaining, self.POLL_S))
            if ready:
                chunk = os.read(self.rfd, 65536)
                if chunk:
                    self.buffer += chunk
                    continue
                self._reap(block=True)  # end of the pipe: the server closed it by exiting
                return None
            if self._reap(block=False):
                return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def _reap(self, *, block: bool) -> bool:
        if self.status is None:
            done, raw = os.waitpid(self.server, 0 if block else os.WNOHANG)
            if done:
                self.status = os.waitstatus_to_exitcode(raw)
        return self.status is not None

    def _handle(self, message: dict[str, Any]) -> None:
        self.idle_since = time.monotonic()
        event = message.get("event")
        if event == "start":
            index = int(message["index"])
            self.running = _Running(index, message.get("pid"), time.monotonic(), self.limits[index])
        elif event == "report":
            index = int(message["index"])
            report = ChildReport.from_dict(message["report"])
            self.record(index, report)
            self.next_index, self.running = index + 1, None
            if self.checks[index].group == "import" and not passed(report):
                self.fallback = f"{self.checks[index].id} did not pass"
        elif event == "stage" and self.stage is not None:
            self.staged = True
            self.stage.on_job(ChildReport.from_dict(message["report"]), list(message.get("preloaded") or []))

    def _timed_out(self) -> None:
        kill_group(self.server)
        running = self.running
        if running is None:
            self.fallback = "the check server stopped answering"
            return
        # the check ran past its limit, in the server or (the server stuck) in its child
        self.fallback = f"{self.checks[running.index].id} ran past its limit in the check server"
        self.record(running.index, _lost(running, self.workdir, None, timed_out=True))
        self.next_index, self.running = running.index + 1, None

    def _gone(self) -> None:
        running, status = self.running, self.status
        if running is None:
            if status != 0 and self.fallback is None:
                self.fallback = f"the check server died (exit status {status})"
            return
        if running.pid is None:
            # died inside an import check: judged as a clean child's death would be
            self.fallback = f"{self.checks[running.index].id} ended the check server (exit status {status})"
            self.record(running.index, _lost(running, self.workdir, status, timed_out=False))
            self.next_index, self.running = running.index + 1, None
        else:  # its child's result is lost with it: that check runs again, clean
            check_id = self.checks[running.index].id
            self.fallback = f"the check server died during {check_id} (exit status {status})"

    def _close(self) -> None:
        if self.running is not None and self.running.pid:
            kill_group(self.running.pid)
        kill_group(self.server)  # and whatever is left in its group
        self._reap(block=True)
        os.close(self.rfd)
        shutil.rmtree(self.workdir, ignore_errors=True)


def serve_checks(
    checks: list[Check],
    limits: list[float],
    *,
    modules: Sequence[str],
    stage: Stage | None,
    context_factory: Callable[[], CheckContext],
    record: Callable[[int, ChildReport], None],
) -> Served:
    """Run ``checks`` (import checks first) through a server; ``record`` gets each report.

    Returns how far the server got; the caller runs the rest in clean
    children. Ctrl-C (KeyboardInterrupt) kills the server and the running
    check's child, then propagates.
    """
    workdir = Path(tempfile.mkdtemp(prefix="archmatrix-server-"))
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    server = os.fork()
    if server == 0:
        os.close(rfd)
        _server_main(checks, limits, modules, stage, context_factory, wfd, workdir)
    os.close(wfd)
    with contextlib.suppress(OSError):
        os.setpgid(server, server)
    return _Session(server, rfd, workdir, checks, limits, stage, record).run()


def _lost(running: _Running, workdir: Path, status: int | None, *, timed_out: bool) -> ChildReport:
    """The report of a check whose result never came: its exit status and output, as a child's."""
    out_path, err_path = _output_files(workdir, running.index)
    returncode = status if running.pid is None else None
    raw_err = _raw_of(err_path)
    killed = returncode is not None and returncode < 0
    return ChildReport(
        payload=None,
        returncode=returncode,
        stdout=_tail_of(out_path),
        stderr=clean_evidence(raw_err, limit=TAIL),
        timed_out=timed_out,
        duration_s=time.monotonic() - running.started,
        # the server itself died: everything it had loaded is a suspect
        extension_modules=executing.listed_modules(raw_err) if killed else [],
    )


def _tail_of(path: Path) -> str:
    return clean_evidence(_raw_of(path), limit=TAIL)


def _raw_of(path: Path) -> str:
    try:
        return read_raw(open(path, "rb"))  # read_raw closes it
    except OSError:
        return ""
