"""Run each check in its own forked child, so a crash or hang costs only that check.

Why fork and not subprocess: qemu-user follows ``fork`` but not ``exec`` of a
same-architecture binary (HOST-NOTES.md), so a child started by exec could
escape the emulator and run natively. A forked child stays inside whatever
runs this interpreter (qemu, Rosetta, a container). The supervisor itself
imports only the standard library, so every child starts clean and imports
what its check needs; numpy's threads are never forked.

Each child gets its own process group, so a check's own subprocesses (a
multiprocessing pool) are killed with it on timeout. Its stdout/stderr go to
files, so crash messages from the dynamic loader, faulthandler or qemu
("qemu: uncaught target signal 4") become the check's evidence. It reports
back through a pipe with one JSON document; a child that dies without
reporting is judged by its exit status and what it printed.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from . import loader
from .classify import classify, clean_evidence
from .outcomes import Outcome
from .registry import Check, CheckContext, CheckSkipped, Mismatch
from .result import CheckResult

DEFAULT_TIMEOUT = 120.0
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


def _child_main(func: Callable[[], dict[str, Any]], wfd: int) -> None:
    """Runs in the child: never returns (os._exit), so no parent code runs twice."""
    code = 0
    try:
        os.setpgid(0, 0)
        # Python-level traceback on SIGSEGV/SIGILL/SIGABRT; it re-raises the
        # signal afterwards, so the exit status still says what killed us.
        faulthandler.enable(file=sys.stderr, all_threads=False)
        payload = func()
    except BaseException as exc:  # everything becomes evidence
        payload = {
            "status": "exception",
            "exc_type": type(exc).__name__,
            "exc_message": str(exc),
            "traceback": traceback.format_exc()[-TAIL:],
        }
    try:
        data = json.dumps(payload, default=_jsonable).encode()
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


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def run_forked(func: Callable[[], dict[str, Any]], timeout: float) -> ChildReport:
    """Run ``func`` in a forked child with a time limit; never raises for the child's sake."""
    rfd, wfd = os.pipe()
    # Closed by _read_tail once the child is gone; the child inherits them as fd 1/2.
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
            _kill_group(pid)
            _, status = os.waitpid(pid, 0)
        else:
            _kill_group(pid)  # leftovers of the check (pool workers) die too
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
    return ChildReport(
        payload=payload,
        returncode=None if status is None else os.waitstatus_to_exitcode(status),
        stdout=_read_tail(out),
        stderr=_read_tail(err),
        timed_out=timed_out,
        duration_s=duration,
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read_tail(fh: Any) -> str:
    try:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        # generously more than TAIL: clean_evidence shortens faulthandler's
        # module list, which must be read whole to be recognised
        fh.seek(max(0, size - 32 * TAIL))
        data: bytes = fh.read()
    finally:
        fh.close()
    return clean_evidence(data.decode(errors="replace"), limit=TAIL)


def _run_check_body(chk: Check, ctx: CheckContext) -> dict[str, Any]:
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
        return {
            "status": "exception",
            "exc_type": type(exc).__name__,
            "exc_message": str(exc),
            "traceback": traceback.format_exc()[-TAIL:],
            "metrics": ctx.metrics,
            "warnings": ctx.warnings,
        }
    return {"status": status, "message": message, "metrics": ctx.metrics, "warnings": ctx.warnings}


def judge(check_id: str, report: ChildReport) -> CheckResult:
    """Turn a child's report into a classified :class:`CheckResult`."""
    payload = report.payload or {}
    status = payload.get("status")
    evidence: dict[str, Any] = {}
    if report.returncode not in (0, None):
        evidence["returncode"] = report.returncode
        if report.returncode < 0:
            try:
                evidence["signal"] = signal.Signals(-report.returncode).name
            except ValueError:
                evidence["signal"] = str(-report.returncode)
    if report.stderr.strip():
        evidence["stderr_tail"] = report.stderr
    if report.stdout.strip():
        evidence["stdout_tail"] = report.stdout
    result = CheckResult(
        id=check_id,
        outcome=Outcome.PASS,
        duration_s=report.duration_s,
        metrics=dict(payload.get("metrics") or {}),
        warnings=list(payload.get("warnings") or []),
        evidence=evidence,
    )
    if status == "ok" and report.returncode == 0 and not report.timed_out:
        return result
    if status == "mismatch":
        result.outcome, result.message = Outcome.NUMERIC_MISMATCH, payload.get("message", "")
        return result
    if status == "skipped":
        result.outcome, result.message = Outcome.SKIPPED, payload.get("message", "")
        return result
    if status == "exception":
        evidence["exception"] = {"type": payload.get("exc_type"), "message": payload.get("exc_message")}
        evidence["traceback"] = payload.get("traceback", "")
    # "No such file or directory" for a file that is there: ld.so's words for
    # another architecture's binary. The supervisor runs in the lane, so it
    # can read the file's ELF header and say so.
    diagnosis = loader.explain(f"{payload.get('exc_message') or ''}\n{report.stderr}")
    if diagnosis:
        evidence["loader"] = diagnosis
    verdict = classify(
        returncode=report.returncode,
        output=f"{report.stdout}\n{report.stderr}\n{diagnosis}",
        exc_type=payload.get("exc_type"),
        exc_message=str(payload.get("exc_message") or ""),
        timed_out=report.timed_out,
    )
    outcome = verdict.outcome
    if outcome is Outcome.PASS:  # ran to completion but the process then failed
        outcome = Outcome.ERROR
    result.outcome, result.message = outcome, verdict.reason or "check failed without a message"
    return result


def demote(result: CheckResult) -> CheckResult:
    """An informational check (a probe) that failed: ``skipped``, the failure kept as evidence.

    Probes only inform (issue 8), so their failure must not fail the lane,
    yet it must not vanish either: the message says what happened.
    """
    if not result.outcome.failed:
        return result
    result.evidence["probe_outcome"] = result.outcome.value
    result.message = f"probe did not complete ({result.outcome.value}): {result.message}"
    result.outcome = Outcome.SKIPPED
    return result


def run_checks(
    checks: Iterable[Check],
    *,
    context_factory: Callable[[], CheckContext] = CheckContext,
    default_timeout: float = DEFAULT_TIMEOUT,
    timeouts: dict[str, float] | None = None,
    progress: Callable[[int, int, CheckResult], None] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    preload: Callable[[list[CheckResult]], None] | None = None,
) -> list[CheckResult]:
    """Run every check, each in its own child, in order; return all results.

    ``on_result`` is called after each check (the suite uses it to save
    partial results, so an interrupted run keeps what it finished).
    ``preload`` is called once, after the ``import.*`` checks (which always
    run first, each in a clean child), with their results.
    """
    checks = list(checks)
    # imports first: they must run in children that have imported nothing
    checks.sort(key=lambda c: 0 if c.group == "import" else 1)
    results: list[CheckResult] = []
    preloaded = preload is None
    for index, chk in enumerate(checks, start=1):
        if not preloaded and chk.group != "import":
            preloaded = True
            assert preload is not None
            preload(results)
        # the config's per-check limit wins; otherwise the run's default, which a
        # check may only raise (emulated lanes configure long defaults)
        limit = (timeouts or {}).get(chk.id) or max(default_timeout, chk.timeout or 0.0)
        report = run_forked(partial(_run_check_body, chk, context_factory()), limit)
        result = judge(chk.id, report)
        if result.outcome is Outcome.TIMEOUT:
            result.message = f"no result within {limit:g} s"
        if chk.informational:
            result = demote(result)
        results.append(result)
        if on_result:
            on_result(result)
        if progress:
            progress(index, len(checks), result)
    return results
