"""The user's pytest suite in a lane: one cell per test, a crash costing only its own test.

One pytest session per lane, not one process per test: session fixtures are
set up once and under emulation the imports are paid once. The session runs
in a child of the lane's interpreter (``sys.executable``: under qemu the
lane's launcher, so pytest and everything it starts stay on the emulated
CPU), with :mod:`.pytest_plugin` appending each test's report to a file as it
finishes. When the process dies (SIGILL, SIGSEGV, abort) or a test exceeds
its limit (its process group is killed), the test it was running is judged
from the exit status and what it left on stderr, the way a check child is
(:func:`.supervise.judge`, then :mod:`archmatrix.rootcause` on the host), and
pytest starts again, leaving out every test already reported, until all are
done. A crash while a file is collected makes that file's cell, and the
file is left out of the next process.

Stdlib only until pytest runs (it comes from the lane's environment).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..classify import clean_evidence
from ..lane import executing
from ..outcomes import Outcome
from ..result import CheckResult
from ..spec import PYTEST_PREFIX, PYTEST_PROJECT_DIR
from .child import TAIL, ChildReport
from .supervise import judge

PLUGIN = "archmatrix.suite.engine.pytest_plugin"
CONTROL_ENV = "ARCHMATRIX_PYTEST_CONTROL"
SESSION = "(session)"  # the cell of a pytest that failed outside any test or file
EVIDENCE_LIMIT = 4000
POLL = 0.05
# pytest's exit statuses that mean it ran to its end (tests may have failed)
FINISHED = {0, 1, 5}


def project_dir() -> Path:
    """The user's tests as staged beside the suite package (staging.pytest_project)."""
    import archmatrix

    return Path(archmatrix.__file__).resolve().parent.parent / PYTEST_PROJECT_DIR


def may_select(patterns: Sequence[str] | None) -> bool:
    """Whether ``checks.select`` can match a ``pytest::`` cell (else no pytest runs)."""
    if not patterns:
        return True
    return any(p.startswith(PYTEST_PREFIX) or p[:1] in ("*", "?", "[") for p in patterns)


@dataclass
class Session:
    """What one pytest process told us, read from its report file as it ran."""

    collected: list[str] = field(default_factory=list)
    collected_seen: bool = False
    running: str | None = None  # test started, no result yet
    running_err: int | None = None
    collecting: list[tuple[str, int | None]] = field(default_factory=list)  # open collectors
    last_event: float = 0.0


@dataclass
class PytestFacts:
    """How the session went, recorded with the lane's facts (``facts["pytest"]``)."""

    processes: int = 0
    collected: int = 0
    restarts: list[str] = field(default_factory=list)
    exit_statuses: list[int | None] = field(default_factory=list)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"processes": self.processes, "collected": self.collected, "restarts": self.restarts,
                "exit_statuses": self.exit_statuses, "duration_s": round(self.duration_s, 3)}


def command(python: str, args: Sequence[str]) -> list[str]:
    """The pytest command: our plugin, no cache (the staged project may be read-only), the user's args
    last (so theirs win)."""
    return [python, "-m", "pytest", "-p", PLUGIN, "-p", "no:cacheprovider", "-p", "no:faulthandler",
            "--continue-on-collection-errors", "--tb=short", "-q", *args]


def run_pytest(
    args: Sequence[str],
    *,
    on_result: Callable[[CheckResult], None],
    default_timeout: float,
    timeouts: Mapping[str, float] | None = None,
    select: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    cwd: Path | None = None,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
    notice: Callable[[str], None] | None = None,
) -> PytestFacts:
    """Run the tests until each has a cell; ``on_result`` hears every cell as it is decided.

    ``default_timeout``: seconds per test (``timeouts`` by check id win), and
    the longest a process may go without reporting anything (a hang while
    collecting, or in a session fixture's teardown).
    """
    cwd = cwd or project_dir()
    python = python or sys.executable
    limits = dict(timeouts or {})
    facts = PytestFacts()
    done: set[str] = set()  # node ids with a cell
    collected: list[str] = []
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="archmatrix-pytest-"))

    def record(result: CheckResult) -> None:
        done.add(result.id[len(PYTEST_PREFIX):])
        on_result(result)

    try:
        while True:
            facts.processes += 1
            before = len(done)
            session, returncode, timed_out, stdout, stderr_raw = _one_process(
                work, facts.processes, python, args, cwd, env, done, select, exclude,
                default_timeout, limits, record,
            )
            facts.exit_statuses.append(returncode)
            collected += [n for n in session.collected if n not in collected]
            died = f"exit status {returncode}" + (" (killed at the time limit)" if timed_out else "")
            if session.running is not None:
                # the test it was running when it died or was stopped
                nid = session.running
                record(_crash(nid, returncode, timed_out, _since(stderr_raw, session.running_err),
                              limits.get(PYTEST_PREFIX + nid, default_timeout)))
                facts.restarts.append(f"{nid}: {died}")
            elif session.collecting and returncode not in FINISHED and session.collecting[-1][0]:
                nid, err = session.collecting[-1]
                record(_crash(nid, returncode, timed_out, _since(stderr_raw, err),
                              default_timeout, collecting=True))
                facts.restarts.append(f"{nid} (collecting): {died}")
            elif returncode not in FINISHED or (not session.collected_seen and len(done) == before):
                # pytest failed outside any test and file (a usage error, pytest missing, nothing
                # collected): one cell says so, rather than none
                record(_session_failure(returncode, timed_out, stdout, _since(stderr_raw, 0)))
                break
            remaining = [n for n in collected if n not in done]
            if returncode in FINISHED and session.running is None:
                for nid in remaining:  # -x, --maxfail: pytest chose to stop
                    record(CheckResult(id=PYTEST_PREFIX + nid, outcome=Outcome.SKIPPED,
                                       message=f"not run: pytest stopped before it ({died})"))
                break
            if len(done) == before:  # no progress: never loop
                record(_session_failure(returncode, timed_out, stdout, _since(stderr_raw, 0)))
                break
            if session.collected_seen and not remaining:
                break  # it died after its last test (a session fixture's teardown): all reported
            if notice:
                notice(f"pytest {died} in {facts.restarts[-1].split(':')[0]}: starting it again "
                       f"without the {len(done)} test(s) reported")
    finally:
        facts.collected = len(collected)
        facts.duration_s = time.monotonic() - started
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    return facts


def _one_process(
    work: Path, number: int, python: str, args: Sequence[str], cwd: Path, env: Mapping[str, str] | None,
    done: set[str], select: Sequence[str] | None, exclude: Sequence[str], default_timeout: float,
    limits: Mapping[str, float], record: Callable[[CheckResult], None],
) -> tuple[Session, int | None, bool, str, bytes]:
    """One pytest process: its session, exit status, whether it was stopped, stdout tail, raw stderr."""
    report = work / f"report-{number}.jsonl"
    control = work / f"control-{number}.json"
    control.write_text(json.dumps({"report": str(report), "done": sorted(done),
                                   "select": list(select or ()), "exclude": list(exclude)}))
    report.touch()
    child_env = dict(os.environ if env is None else env)
    suite_root = str(Path(__file__).resolve().parents[3])  # where ``archmatrix`` is importable from
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (suite_root, child_env.get("PYTHONPATH")) if p)
    child_env[CONTROL_ENV] = str(control)
    child_env["PYTHONDONTWRITEBYTECODE"] = "1"  # the staged project may be read-only
    session = Session(last_event=time.monotonic())
    timed_out = False
    with (work / f"stdout-{number}").open("w+b") as out, (work / f"stderr-{number}").open("w+b") as err, \
            report.open(encoding="utf-8") as events:
        sys.stdout.flush()
        sys.stderr.flush()
        proc = subprocess.Popen(command(python, args), cwd=cwd, env=child_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        pending = ""
        try:
            while True:
                pending = _read_events(events, pending, session, record)
                if proc.poll() is not None:
                    break
                limit = (limits.get(PYTEST_PREFIX + session.running, default_timeout)
                         if session.running is not None else default_timeout)
                if time.monotonic() - session.last_event > limit:
                    timed_out = True
                    break
                time.sleep(POLL)
        finally:
            _kill_group(proc.pid)
            proc.wait()
        _read_events(events, pending, session, record)
        stdout = clean_evidence(_raw(out).decode(errors="replace"), limit=TAIL)
        stderr_raw = _raw(err)
    return session, proc.returncode, timed_out, stdout, stderr_raw


def _read_events(events: Any, pending: str, session: Session, record: Callable[[CheckResult], None]) -> str:
    """Handle the complete lines written since the last read; return a trailing partial line."""
    chunk = events.read()
    if not chunk:
        return pending
    data: str = pending + chunk
    lines = data.split("\n")
    for line in lines[:-1]:
        if line.strip():
            try:
                _handle(json.loads(line), session, record)
            except ValueError:
                continue  # a line cut by a crash mid-write: the test is still "running"
    session.last_event = time.monotonic()
    return lines[-1]


def _handle(event: dict[str, Any], session: Session, record: Callable[[CheckResult], None]) -> None:
    kind = event.get("event")
    nodeid = str(event.get("nodeid") or "")
    if kind == "collectstart":
        session.collecting.append((nodeid, event.get("err")))
    elif kind == "collectend":
        session.collecting = [c for c in session.collecting if c[0] != nodeid]
        if event.get("error") is not None:
            record(collection_error(nodeid, event["error"]))
    elif kind == "collected":
        session.collected = [str(n) for n in event.get("nodeids") or ()]
        session.collected_seen = True
    elif kind == "start":
        session.running, session.running_err = nodeid, event.get("err")
    elif kind == "result":
        session.running = None
        record(report_cell(nodeid, event))


def report_cell(nodeid: str, event: Mapping[str, Any]) -> CheckResult:
    """A test that ran to its end, as pytest reported it, into a cell."""
    cid = PYTEST_PREFIX + nodeid
    duration = float(event.get("duration") or 0.0)
    status = event.get("status")
    if status == "passed":
        return CheckResult(id=cid, outcome=Outcome.PASS, duration_s=duration)
    if status == "xpass":
        return CheckResult(id=cid, outcome=Outcome.PASS, duration_s=duration, message="xpass")
    if status == "xfail":
        reason = str(event.get("reason") or "")
        return CheckResult(id=cid, outcome=Outcome.PASS, duration_s=duration, message="xfail",
                           evidence={"xfail": reason} if reason else {})
    if status == "skipped":
        return CheckResult(id=cid, outcome=Outcome.SKIPPED, duration_s=duration,
                           message=str(event.get("reason") or "skipped by the test"))
    return failure(cid, event, duration)


def failure(cid: str, event: Mapping[str, Any], duration: float) -> CheckResult:
    """A failed test (or file): numeric-mismatch, a root cause from the exception, or error."""
    exc_type = event.get("exc_type")
    payload = {"status": "exception", "exc_type": exc_type, "exc_message": event.get("exc_message") or "",
               "traceback": clean_evidence(str(event.get("longrepr") or ""), EVIDENCE_LIMIT),
               "chain": event.get("chain") or [], "binaries": event.get("binaries") or []}
    result = judge(cid, ChildReport(payload=payload, returncode=0, stdout="", stderr="", timed_out=False,
                                    duration_s=duration))
    message = str(event.get("message") or "").strip()
    when = event.get("when")
    where = f"in {when}: " if when in ("setup", "teardown") else ""
    if event.get("numeric"):
        result.outcome = Outcome.NUMERIC_MISMATCH
    elif result.outcome in (Outcome.NUMERIC_MISMATCH, Outcome.PASS):
        # a failed assertion that is not about numbers: the test's own error
        result.outcome = Outcome.ERROR
    if result.outcome in (Outcome.NUMERIC_MISMATCH, Outcome.ERROR) and message:
        # numpy.testing's message spans lines: one line for the cell, whole in the traceback
        result.message = "; ".join(ln.strip() for ln in message.splitlines() if ln.strip())[:500]
    result.message = where + result.message
    if event.get("longrepr"):
        result.evidence["traceback"] = payload["traceback"]
    return result


def collection_error(nodeid: str, error: Mapping[str, Any]) -> CheckResult:
    """A file pytest could not collect (an import that failed, a syntax error): its own cell."""
    lines = str(error.get("longrepr") or "").strip().splitlines()
    message = (f"{error['exc_type']}: {str(error.get('exc_message') or '').strip()}"
               if error.get("exc_type") else (lines[-1] if lines else "could not be collected"))
    event = {**error, "message": message}
    result = failure(PYTEST_PREFIX + nodeid, event, 0.0)
    result.message = "collecting: " + result.message
    return result


def _crash(nodeid: str, returncode: int | None, timed_out: bool, stderr_raw: str, limit: float,
           *, collecting: bool = False) -> CheckResult:
    """The test (or file) a process died in, judged like a check child that died."""
    report = ChildReport(
        payload=None,
        returncode=returncode,
        stdout="",
        stderr=clean_evidence(stderr_raw, limit=TAIL),
        timed_out=timed_out,
        duration_s=0.0,
        extension_modules=executing.listed_modules(stderr_raw) if (returncode or 0) < 0 else [],
    )
    result = judge(PYTEST_PREFIX + nodeid, report)
    if result.outcome is Outcome.TIMEOUT:
        result.message = f"no result within {limit:g} s"
    if collecting:
        result.message = "collecting: " + result.message
    return result


def _session_failure(returncode: int | None, timed_out: bool, stdout: str, stderr_raw: str) -> CheckResult:
    """pytest failed outside any test: a usage error, an internal error, nothing collected."""
    if returncode == 5:
        message = "pytest collected no tests (check the paths and -k/-m of checks.pytest)"
        outcome = Outcome.ERROR
    else:
        result = _crash(SESSION, returncode, timed_out, stderr_raw, 0.0)
        last = next((ln for ln in reversed(f"{stdout}\n{stderr_raw}".splitlines()) if ln.strip()), "")
        if result.outcome is Outcome.ERROR and last:
            result.message = f"pytest exited with status {returncode}: {last.strip()[:300]}"
        result.evidence["stdout_tail"] = stdout
        return result
    return CheckResult(id=PYTEST_PREFIX + SESSION, outcome=outcome, message=message,
                       evidence={"returncode": returncode, "stdout_tail": stdout,
                                 "stderr_tail": clean_evidence(stderr_raw, TAIL)})


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _raw(fh: Any) -> bytes:
    fh.flush()
    fh.seek(0)
    data: bytes = fh.read()
    return data


def _since(stderr: bytes, offset: int | None) -> str:
    """What the process wrote to stderr from ``offset`` (where a test began) on."""
    return stderr[offset or 0:].decode(errors="replace")
