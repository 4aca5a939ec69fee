"""The pytest plugin of a lane's pytest session (``-p archmatrix.suite.engine.pytest_plugin``).

Loaded only inside the pytest process that :mod:`.pytest_runner` starts; it
imports nothing of pytest's itself (plain hook functions), so the suite
stays importable without pytest. It appends one JSON line per event to the
report file the control file names, flushed at once, so a process that dies
leaves every finished test's report behind and names the test (or the file
being collected) it died in. It also leaves out what an earlier process of
the same session already reported (the restart after a crash), and the
tests ``checks.select``/``exclude`` do not select.

Events: ``collectstart``/``collectend`` (with ``error`` for a collection
error), ``collected`` (the node ids to run), ``start`` (a test began; ``err``
is the offset of the real stderr then, where a crash's words will follow),
``result`` (how the test ended, all phases combined).
"""

from __future__ import annotations

import faulthandler
import fnmatch
import json
import os
import re
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pytest is the lane's, imported by the process that loads this plugin
    import pytest

# The real stderr, duplicated when pytest imports this plugin (``-p``), before
# it captures fd 2: a crash's words (faulthandler's traceback, qemu's, the
# loader's) must land in the file the supervisor reads, not in the capture.
# pytest's own faulthandler plugin is disabled (``-p no:faulthandler``): it
# would write to the capture.
REAL_STDERR = os.dup(2)
faulthandler.enable(file=REAL_STDERR, all_threads=False)

CONTROL_ENV = "ARCHMATRIX_PYTEST_CONTROL"
PREFIX = "pytest::"
LONGREPR_LIMIT = 4000
# A failed assertion about numbers (docs/suite.md): numpy.testing's words, pytest.approx's,
# math.isclose's and numpy's in an assert's explanation, or those names on the failing lines.
NUMERIC = re.compile(
    r"Not equal to tolerance|Arrays are not (?:almost )?equal|Mismatched elements|"
    r"Max (?:absolute|relative) difference|\bapprox\(|±|\bisclose\b|\ballclose\b|"
    r"assert_(?:array_)?almost_equal|assert_array_less|assert_array_max_ulp|assert_approx_equal"
)


def is_numeric(exc: BaseException) -> bool:
    if not isinstance(exc, AssertionError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    if any(f"{os.sep}numpy{os.sep}testing{os.sep}" in f.filename for f in frames):
        return True
    text = "\n".join([str(exc), *(f.line or "" for f in frames)])
    return bool(NUMERIC.search(text))


def describe(exc: BaseException) -> dict[str, Any]:
    """What the supervisor classifies a failure by (as a check child would report it)."""
    # pytest wraps a test module's failed import in its CollectError: the import error is the evidence
    while type(exc).__name__ == "CollectError" and exc.__cause__ is not None:
        exc = exc.__cause__
    data: dict[str, Any] = {
        "exc_type": type(exc).__name__,
        "exc_message": str(exc)[:4000],
        "numeric": is_numeric(exc),
    }
    try:  # the chain and the binaries behind an import error: wrong-arch, blas-load
        from archmatrix.suite.lane import wrongarch

        data["chain"] = wrongarch.describe(exc)
        data["binaries"] = wrongarch.candidate_files(exc)
    except Exception as inner:  # evidence is best effort; the failure itself is reported anyway
        data["describe_error"] = repr(inner)
    return data


class Reporter:
    def __init__(self, control: dict[str, Any]) -> None:
        self.out = open(control["report"], "a", encoding="utf-8")  # noqa: SIM115 (lives as long as pytest)
        self.done = set(control.get("done") or ())
        self.select = list(control.get("select") or ())
        self.exclude = list(control.get("exclude") or ())
        self.stderr_fd = REAL_STDERR
        self.phases: dict[str, list[dict[str, Any]]] = {}
        self.failures: dict[tuple[str, str], dict[str, Any]] = {}

    def emit(self, **event: Any) -> None:
        self.out.write(json.dumps(event, default=str) + "\n")
        self.out.flush()

    def offset(self) -> int | None:
        try:
            return os.lseek(self.stderr_fd, 0, os.SEEK_CUR)
        except OSError:
            return None

    def wanted(self, nodeid: str) -> bool:
        cid = PREFIX + nodeid
        if nodeid in self.done:
            return False
        if self.select and not any(fnmatch.fnmatchcase(cid, p) for p in self.select):
            return False
        return not any(fnmatch.fnmatchcase(cid, p) for p in self.exclude)

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        # a file whose collection crashed an earlier process has its cell: never again
        try:
            rel = collection_path.relative_to(config.rootpath).as_posix()
        except ValueError:
            return None
        return True if rel in self.done else None

    def pytest_collectstart(self, collector: pytest.Collector) -> None:
        self.emit(event="collectstart", nodeid=collector.nodeid, err=self.offset())

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        event: dict[str, Any] = {"event": "collectend", "nodeid": report.nodeid}
        if report.failed:
            event["error"] = {"longrepr": str(report.longrepr)[-LONGREPR_LIMIT:],
                              **self.failures.pop((report.nodeid, "collect"), {})}
        self.emit(**event)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        kept = [item for item in items if self.wanted(item.nodeid)]
        dropped = [item for item in items if not self.wanted(item.nodeid)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.emit(event="collected", nodeids=[item.nodeid for item in session.items])

    def pytest_exception_interact(self, node: Any, call: pytest.CallInfo[Any], report: Any) -> None:
        if call.excinfo is not None:
            when = getattr(report, "when", None) or "collect"
            self.failures[(report.nodeid, when)] = describe(call.excinfo.value)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.phases[nodeid] = []
        self.emit(event="start", nodeid=nodeid, err=self.offset())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        phase: dict[str, Any] = {"when": report.when, "outcome": report.outcome, "duration": report.duration}
        if hasattr(report, "wasxfail"):
            phase["wasxfail"] = report.wasxfail
        if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
            phase["reason"] = str(report.longrepr[2]).removeprefix("Skipped: ")
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            phase["message"] = getattr(crash, "message", "") or str(report.longrepr).strip().splitlines()[-1:]
            phase["longrepr"] = report.longreprtext[-LONGREPR_LIMIT:]
        self.phases.setdefault(report.nodeid, []).append(phase)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        phases = self.phases.pop(nodeid, [])
        for phase in phases:  # pytest calls exception_interact after logreport: joined here
            if phase["outcome"] == "failed":
                phase.update(self.failures.pop((nodeid, str(phase["when"])), {}))
        self.emit(event="result", nodeid=nodeid, **combine(phases))


def combine(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """One outcome for a test's setup, call and teardown: the first failure, else skip/xfail, else pass."""
    duration = sum(float(p.get("duration") or 0.0) for p in phases)
    failed = next((p for p in phases if p["outcome"] == "failed"), None)
    if failed is not None:
        message = failed.get("message")
        if isinstance(message, list):
            message = message[0] if message else ""
        return {"status": "failed", "duration": duration, **failed, "message": str(message or "")}
    for p in phases:
        if p["outcome"] == "skipped":
            if "wasxfail" in p:
                return {"status": "xfail", "duration": duration, "reason": str(p["wasxfail"])}
            return {"status": "skipped", "duration": duration, "reason": str(p.get("reason") or "")}
    if any("wasxfail" in p for p in phases):  # a non-strict xfail that passed
        return {"status": "xpass", "duration": duration}
    return {"status": "passed", "duration": duration}


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(CONTROL_ENV)
    if not path:
        return
    with open(path, encoding="utf-8") as fh:
        control = json.load(fh)
    config.pluginmanager.register(Reporter(control), "archmatrix-reporter")
