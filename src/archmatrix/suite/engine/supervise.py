"""Run every check of a lane in isolation, and judge how each one ended.

Each check runs in its own forked child (:mod:`.child`): a crash or hang
costs only that check. The children are forked by the per-lane check server
(:mod:`.server`), which has imported the stack once, so under emulation the
imports are not paid once per check; if the server stops early, the rest run
here, each in a clean child. Either way every check's report is judged here,
by :func:`judge`, the same way.

Stdlib only: this module runs inside lanes.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from ..classify import classify
from ..lane import executing, ldso, wrongarch
from ..outcomes import Outcome
from ..registry import Check, CheckContext
from ..result import CheckResult
from .child import ChildReport, run_check_body, run_forked
from .server import Stage, serve_checks

__all__ = ["DEFAULT_TIMEOUT", "ChildReport", "Stage", "demote", "judge", "run_checks", "run_forked"]

DEFAULT_TIMEOUT = 120.0


def judge(check_id: str, report: ChildReport, machine: str | None = None) -> CheckResult:
    """Turn a child's report into a classified :class:`CheckResult`.

    ``machine``: this process's architecture (tests pretend another).
    """
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
        if len(payload.get("chain") or ()) > 1:  # what the package's own error wrapped
            evidence["exception"]["chain"] = payload["chain"]
    # "No such file or directory" for a file that is there: ld.so's words for
    # another architecture's binary. The supervisor runs in the lane, so it
    # can read the file's ELF header and say so.
    diagnosis = ldso.explain(f"{payload.get('exc_message') or ''}\n{report.stderr}", machine)
    if diagnosis:
        evidence["loader"] = diagnosis
    # Whatever words a package wrapped the loader's error in: the binaries
    # the child found involved, read here.
    others = wrongarch.foreign(payload.get("binaries") or (), machine)
    if others:
        evidence["wrong_arch"] = [f.sentence for f in others]
        if not diagnosis:  # ld.so's own words, explained, stay the message when it left any
            result.outcome, result.message = Outcome.WRONG_ARCH, others[0].sentence + (
                f" (and {len(others) - 1} more)" if len(others) > 1 else "")
            return result
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
    if outcome is Outcome.ILLEGAL_INSTRUCTION and report.extension_modules:
        # the suspects, for the host to read with the audit (archmatrix.rootcause)
        evidence["loaded_extensions"] = executing.describe(report.extension_modules, report.inherited)
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


# Groups that run before the rest, in this order, before the stack is preloaded.
FIRST_GROUPS = {"lane": 0, "import": 1}


def run_checks(
    checks: Iterable[Check],
    *,
    context_factory: Callable[[], CheckContext] = CheckContext,
    default_timeout: float = DEFAULT_TIMEOUT,
    timeouts: dict[str, float] | None = None,
    progress: Callable[[int, int, CheckResult], None] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    stage: Stage | None = None,
    preload: Sequence[str] | None = None,
    notice: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """Run every check, each in its own child, import checks first; return all results.

    ``preload``: None runs every check in a clean child forked here (maximal
    isolation, every check pays its imports). A sequence of modules runs the
    checks through a check server that runs the import checks in itself,
    then imports these modules and forks the other checks from there.
    ``stage`` runs once, after the import checks. ``on_result`` is called
    after each check (the suite saves partial results with it, so an
    interrupted run keeps what it finished); ``notice`` hears why the
    server stopped early, if it did.
    """
    # the self-check first (it proves the lane before anything is trusted), then the imports:
    # they must run before anything else is imported
    checks = sorted(checks, key=lambda c: FIRST_GROUPS.get(c.group, len(FIRST_GROUPS)))
    # the config's per-check limit wins; otherwise the run's default, which a
    # check may only raise (emulated lanes configure long defaults)
    limits = [(timeouts or {}).get(c.id) or max(default_timeout, c.timeout or 0.0) for c in checks]
    results: list[CheckResult] = []

    def record(index: int, report: ChildReport) -> None:
        chk = checks[index]
        result = judge(chk.id, report)
        if result.outcome is Outcome.TIMEOUT:
            result.message = f"no result within {limits[index]:g} s"
        if chk.informational:
            result = demote(result)
        results.append(result)
        if on_result:
            on_result(result)
        if progress:
            progress(len(results), len(checks), result)

    start, staged = 0, stage is None
    if preload is not None and checks:
        served = serve_checks(checks, limits, modules=preload, stage=stage,
                              context_factory=context_factory, record=record)
        start, staged = served.next_index, staged or served.staged
        if served.fallback and start < len(checks) and notice:
            notice(f"{served.fallback}: the remaining checks run each in a clean child")
    for index in range(start, len(checks)):
        chk = checks[index]
        if not staged and chk.group != "import":
            staged = True
            _run_stage(stage)
        record(index, run_forked(partial(run_check_body, chk, context_factory()), limits[index]))
    if not staged:  # only import checks were selected
        _run_stage(stage)
    return results


def _run_stage(stage: Stage | None) -> None:
    """The stage's job in a clean child, forked here (nothing preloaded)."""
    if stage is not None:
        stage.on_job(run_forked(stage.job, stage.timeout), [])
