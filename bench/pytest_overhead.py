"""pytest inside a lane vs plain pytest, same environment, same tests (issue 17).

    PYTHONPATH=src python bench/pytest_overhead.py [--tests 300] [--repeat 3]

Writes a project of N tests (numpy arithmetic and assert_allclose, a session
fixture), then times, in this interpreter's environment:

* ``plain``: ``python -m pytest tests -q -p no:cacheprovider``;
* ``lane``: the lane-side engine a lane runs (``suite.engine.pytest_runner``:
  the reporting plugin, one cell per test) on the same project as staged;
* ``lane+crash``: the same with one test in the middle that segfaults, so the
  session is started again without the tests already reported;
* the restart cost: what one more pytest process pays before its first test
  (``pytest --collect-only``: interpreter start, imports, collection).

What a lane adds around pytest (building the venv, the self-check) is paid
once per lane whatever the tests, and is not counted here. Prints the best
of ``--repeat`` runs and the ratios to plain pytest.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archmatrix.staging.pytest_project import pytest_project, write_project
from archmatrix.suite.engine.pytest_runner import run_pytest
from archmatrix.suite.result import CheckResult

CONFTEST = """\
import numpy as np
import pytest

@pytest.fixture(scope="session", autouse=True)
def data():
    yield np.arange(1000.0)
"""
TEST = """\
import numpy as np
from numpy.testing import assert_allclose

def test_{i}(data):
    assert_allclose(np.sum(data) + {i}, 499500.0 + {i})
"""
CRASH = "import ctypes\n\ndef test_crash():\n    ctypes.string_at(0)\n"


def write(root: Path, n: int, crash: bool) -> Path:
    tests = root / "tests"
    tests.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (tests / "conftest.py").write_text(CONFTEST)
    for i in range(n):
        (tests / f"test_{i:04d}.py").write_text(TEST.format(i=i))
    if crash:
        (tests / f"test_{n // 2:04d}_crash.py").write_text(CRASH)
    return root


def plain(root: Path, *extra: str) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", *extra],
                   cwd=root,
                   check=False, capture_output=True)
    return time.monotonic() - start


def lane(root: Path, staged: Path) -> tuple[float, int, int]:
    project = pytest_project(["tests"], root)
    if not staged.exists():
        write_project(project, staged)
    cells: list[CheckResult] = []
    start = time.monotonic()
    facts = run_pytest(project.args, on_result=cells.append, default_timeout=120, cwd=staged)
    return time.monotonic() - start, len(cells), facts.processes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tests", type=int, default=300)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = write(Path(tmp, "ok"), args.tests, crash=False)
        crashing = write(Path(tmp, "crash"), args.tests, crash=True)
        plains, runs, crash_runs, starts = [], [], [], []
        for _ in range(args.repeat):  # interleaved: a busy machine slows all four alike
            plains.append(plain(base))
            runs.append(lane(base, Path(tmp, "ok-staged")))
            crash_runs.append(lane(crashing, Path(tmp, "crash-staged")))
            starts.append(plain(base, "--collect-only"))  # what a restart pays before its first test
        t_plain, t_start = min(plains), min(starts)
        t_lane, cells, procs = min(runs)
        t_crash, crash_cells, crash_procs = min(crash_runs)
    print(f"{args.tests} tests, best of {args.repeat}")
    print(f"{'plain pytest':<28}{t_plain:8.2f} s   1.00x")
    print(f"{'in a lane':<28}{t_lane:8.2f} s   {t_lane / t_plain:.2f}x   ({cells} cells, {procs} process)")
    print(f"{'in a lane, one segfault':<28}{t_crash:8.2f} s   {t_crash / t_plain:.2f}x   "
          f"({crash_cells} cells, {crash_procs} processes)")
    print(f"{'restart cost (start+collect)':<28}{t_start:8.2f} s   {t_start / t_plain:.2f}x   "
          "(one more pytest process: interpreter, imports, collection, session fixture)")


if __name__ == "__main__":
    main()
