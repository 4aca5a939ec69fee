"""The per-lane check server, with real forks: import checks in the server, the rest in its children.

The checks here are small functions defined in this file (forking copies
them), so every path runs for real in well under a second: a crash, a hang
or a failure of an import check inside the server, and the fallback that
then runs the remaining checks each in a clean child.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from archmatrix.suite.engine.child import ChildReport
from archmatrix.suite.engine.supervise import Stage, run_checks
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.registry import Check, CheckContext
from archmatrix.suite.result import CheckResult

# A module nothing here imports, and the preload imports: proves where a check ran.
MARKER = "xml.dom.minidom"


def _pids(ctx: CheckContext) -> dict[str, Any]:
    return {"pid": os.getpid(), "ppid": os.getppid(), "marker_loaded": MARKER in sys.modules}


def _prints_and_passes(ctx: CheckContext) -> dict[str, Any]:
    os.write(1, b"hello from an import check\n")  # fd 1, as a loader or C code writes
    return _pids(ctx)


def _segfaults(ctx: CheckContext) -> None:
    ctypes.memmove(8, b"x", 1)  # an address below mmap_min_addr: never mapped


def _hangs(ctx: CheckContext) -> None:
    while True:
        time.sleep(0.05)


def _raises(ctx: CheckContext) -> None:
    raise ImportError("libopenblas.so.0: cannot open shared object file: No such file or directory")


def _exits(ctx: CheckContext) -> None:
    os._exit(3)


def imports(*funcs: Any) -> list[Check]:
    return [Check(f"import.n{i}", func) for i, func in enumerate(funcs)]


def others(count: int = 2) -> list[Check]:
    return [Check(f"later.c{i}", _pids) for i in range(count)]


class Recorder:
    """The stage's job report, and what the supervisor hears."""

    def __init__(self) -> None:
        self.jobs: list[tuple[ChildReport, list[str]]] = []
        self.notices: list[str] = []
        self.saved: list[str] = []

    def stage(self) -> Stage:
        return Stage(job=lambda: {"status": "ok", "job_pid": os.getpid()},
                     on_job=lambda report, loaded: self.jobs.append((report, loaded)), timeout=10)

    def run(self, checks: list[Check], *, preload: tuple[str, ...] | None = (MARKER,),
            timeout: float = 10) -> dict[str, CheckResult]:
        results = run_checks(checks, default_timeout=timeout, stage=self.stage(), preload=preload,
                             notice=self.notices.append,
                             on_result=lambda r: self.saved.append(r.id))
        assert [r.id for r in results] == self.saved  # each saved as it finished, in order
        return {r.id: r for r in results}


@pytest.fixture()
def rec() -> Recorder:
    assert MARKER not in sys.modules, "the marker module must not be imported by the test process"
    return Recorder()


def test_import_checks_run_in_the_server_and_the_others_in_its_children(rec: Recorder) -> None:
    results = rec.run(imports(_pids, _prints_and_passes) + others(2))
    assert [r.outcome for r in results.values()] == [Outcome.PASS] * 4
    server = results["import.n0"].metrics["pid"]
    assert server != os.getpid()
    assert results["import.n1"].metrics["pid"] == server  # both import checks in one process
    assert results["import.n0"].metrics["marker_loaded"] is False  # the preload comes after them
    for later in ("later.c0", "later.c1"):
        assert results[later].metrics["ppid"] == server  # forked by the server...
        assert results[later].metrics["pid"] != server  # ...each in its own child
        assert results[later].metrics["marker_loaded"] is True  # with the preload imported
    # what an import check printed in the server is its own evidence, not the next one's
    assert results["import.n1"].evidence == {"stdout_tail": "hello from an import check\n"}
    assert results["import.n0"].evidence == {}
    ((job, loaded),) = rec.jobs
    assert loaded == [MARKER]
    assert job.payload is not None and job.payload["job_pid"] != server
    assert rec.notices == []
    assert MARKER not in sys.modules  # the supervisor never imported it


def test_a_segfault_in_an_import_check_is_judged_and_the_rest_run_clean(rec: Recorder) -> None:
    results = rec.run(imports(_pids, _segfaults, _pids) + others(1))
    assert results["import.n1"].outcome is Outcome.SEGFAULT
    assert results["import.n1"].evidence["signal"] == "SIGSEGV"
    assert "_segfaults" in results["import.n1"].evidence["stderr_tail"]  # faulthandler, from its file
    server = results["import.n0"].metrics["pid"]
    for clean in ("import.n2", "later.c0"):
        assert results[clean].outcome is Outcome.PASS
        assert results[clean].metrics["ppid"] == os.getpid()  # forked by the supervisor itself
        assert results[clean].metrics["pid"] != server
        assert results[clean].metrics["marker_loaded"] is False
    ((job, loaded),) = rec.jobs
    assert loaded == [] and job.payload is not None  # the facts job ran clean too
    (notice,) = rec.notices
    assert "import.n1 ended the check server" in notice


def test_an_import_check_that_exits_is_judged_by_its_exit_status(rec: Recorder) -> None:
    results = rec.run(imports(_exits) + others(1))
    assert results["import.n0"].outcome is Outcome.ERROR
    assert results["import.n0"].evidence["returncode"] == 3
    assert results["later.c0"].outcome is Outcome.PASS


def test_a_failing_import_check_stops_the_server(rec: Recorder) -> None:
    results = rec.run(imports(_raises, _pids) + others(1))
    assert results["import.n0"].outcome.failed
    assert results["import.n0"].evidence["exception"]["type"] == "ImportError"
    assert results["import.n1"].metrics["ppid"] == os.getpid()  # run clean after the failure
    assert results["later.c0"].metrics["marker_loaded"] is False
    assert "import.n0 did not pass" in rec.notices[0]


def test_a_hanging_import_check_times_out_and_the_rest_run_clean(rec: Recorder) -> None:
    started = time.monotonic()
    results = rec.run(imports(_hangs) + others(1), timeout=1.0)
    assert time.monotonic() - started < 8
    assert results["import.n0"].outcome is Outcome.TIMEOUT
    assert results["import.n0"].message == "no result within 1 s"
    assert results["later.c0"].outcome is Outcome.PASS
    assert "ran past its limit" in rec.notices[0]


def test_crashes_and_hangs_after_the_imports_stay_in_their_own_children(rec: Recorder) -> None:
    checks = [*imports(_pids), Check("later.segv", _segfaults), Check("later.hang", _hangs), *others(1)]
    results = rec.run(checks, timeout=1.0)
    assert results["later.segv"].outcome is Outcome.SEGFAULT
    assert results["later.hang"].outcome is Outcome.TIMEOUT
    server = results["import.n0"].metrics["pid"]
    assert results["later.c0"].metrics["ppid"] == server  # the server survived both
    assert rec.notices == []


def test_only_import_checks_still_run_the_stage_once(rec: Recorder) -> None:
    results = rec.run(imports(_pids))
    assert results["import.n0"].outcome is Outcome.PASS
    ((_, loaded),) = rec.jobs
    assert loaded == [MARKER]


def test_no_preload_runs_every_check_in_a_clean_child(rec: Recorder) -> None:
    results = rec.run(imports(_pids) + others(1), preload=None)
    for result in results.values():
        assert result.metrics["ppid"] == os.getpid()
        assert result.metrics["marker_loaded"] is False
    ((_, loaded),) = rec.jobs
    assert loaded == []


def test_the_server_leaves_no_files_behind(rec: Recorder) -> None:
    scratch = Path(tempfile.gettempdir())
    before = set(scratch.glob("archmatrix-server-*"))
    rec.run(imports(_pids, _segfaults) + others(1))
    assert set(scratch.glob("archmatrix-server-*")) - before == set()


def _hangs_after_saying_where(ctx: CheckContext) -> None:
    Path(ctx.options["pidfile"]).write_text(str(os.getpid()))
    _hangs(ctx)


def test_ctrl_c_kills_the_server_and_the_running_check(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    finished: list[CheckResult] = []
    checks = [*imports(_pids), Check("later.hang", _hangs_after_saying_where)]

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.5)  # a real signal, as Ctrl-C delivers one
    try:
        with pytest.raises(KeyboardInterrupt):
            run_checks(checks, default_timeout=60, preload=(), on_result=finished.append,
                       context_factory=lambda: CheckContext(options={"pidfile": str(pidfile)}))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert [r.id for r in finished] == ["import.n0"]  # what finished was handed over
    server, check = finished[0].metrics["pid"], int(pidfile.read_text())
    with pytest.raises(ChildProcessError):
        os.waitpid(server, os.WNOHANG)  # killed and reaped by the supervisor
    assert _gone(check)


def _gone(pid: int) -> bool:
    """Whether ``pid`` is gone within 5 s (an orphan's zombie, until init reaps it, counts as gone)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False
