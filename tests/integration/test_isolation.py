"""A crash or hang in one check becomes that check's outcome; the others still run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, python_env

CRASHERS = ROOT / "tests" / "fixtures" / "checks" / "crashers.py"


def run_suite(tmp_path: Path, *checks: str, timeout: float = 5.0) -> tuple[dict, Path]:
    out = tmp_path / "lane.json"
    pidfile = tmp_path / "pids"
    env = {**python_env(), "ARCHMATRIX_TEST_PIDFILE": str(pidfile)}
    argv = [sys.executable, "-m", "archmatrix.suite", "--lane", "isolation", "--out", str(out),
            "--user-checks", str(CRASHERS), "--timeout", str(timeout), "--quiet"]
    for pattern in checks:
        argv += ["--checks", pattern]
    subprocess.run(argv, env=env, check=False, timeout=120)
    return json.loads(out.read_text()), pidfile


def outcomes(result: dict) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in result["checks"]}


def test_sigill_segfault_and_hang_are_classified_and_later_checks_still_pass(tmp_path: Path) -> None:
    result, _ = run_suite(tmp_path, "crashers.*", timeout=3.0)
    got = outcomes(result)
    assert got == {
        "crashers.before": "pass",
        "crashers.sigill": "illegal-instruction",
        "crashers.segfault": "segfault",
        "crashers.hang": "timeout",
        "crashers.after": "pass",
    }
    by_id = {c["id"]: c for c in result["checks"]}
    assert by_id["crashers.sigill"]["evidence"]["signal"] == "SIGILL"
    assert by_id["crashers.segfault"]["evidence"]["signal"] == "SIGSEGV"
    # faulthandler's traceback names the check function that crashed
    assert "check_segfault" in by_id["crashers.segfault"]["evidence"]["stderr_tail"]
    assert by_id["crashers.after"]["metrics"]["answer"] == 43.0
    assert result["status"] == "ran"


def test_a_hanging_check_leaves_no_process_behind(tmp_path: Path) -> None:
    result, pidfile = run_suite(tmp_path, "crashers.hang", timeout=2.0)
    assert outcomes(result) == {"crashers.hang": "timeout"}
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2  # the check's process and the grandchild it forked
    deadline = time.monotonic() + 5
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        time.sleep(0.1)
    assert alive == [], f"left behind: {alive}"


def test_ctrl_c_keeps_the_checks_that_finished(tmp_path: Path) -> None:
    out = tmp_path / "lane.json"
    argv = [sys.executable, "-m", "archmatrix.suite", "--lane", "isolation", "--out", str(out),
            "--user-checks", str(CRASHERS), "--timeout", "60", "--quiet",
            "--checks", "crashers.before", "--checks", "crashers.hang"]
    proc = subprocess.Popen(argv, env=python_env())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until `before` is saved and `hang` runs
        if out.exists() and '"crashers.before"' in out.read_text():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    result = json.loads(out.read_text())
    assert result["status"] == "interrupted"
    assert outcomes(result) == {"crashers.before": "pass"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie not yet reaped by init counts as gone
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
