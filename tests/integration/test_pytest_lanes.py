"""A project's own pytest suite through the four Linux lanes, one cell per test (issue 17).

The project is written here: a ``tests/`` directory with a ``conftest.py``
whose session-scoped fixture counts its set-ups in a file, and tests that
pass, fail a numeric comparison, call the fault corpus's AVX2 extension (a
local wheel), segfault, hang past a small per-test limit, skip and xfail.
Every test × lane cell is asserted against the table below, and the session
fixture must have been set up once per pytest process the lane started
(``facts["pytest"]["processes"]``), not once per test: the last test reads
the counter and reports it as its skip reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import corpus
import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix.hostfacts import detect
from archmatrix.suite.result import LaneResult, load

pytestmark = pytest.mark.integration

LANES = ("host", "linux-amd64-docker", "linux-arm64-docker", "linux-x86_64-noavx")
# pytest and what it requires (pytest 9 imports pygments), for cp311 (PyPI)
PYTEST_PINS = {"pytest": "9.2.0", "iniconfig": "2.3.1", "pluggy": "1.7.0", "packaging": "26.4",
               "pygments": "2.21.0"}
HANG_LIMIT = 20  # seconds: checks.timeouts for test_hang
CLI_TIMEOUT = 3600

PROJECT = {
    "pyproject.toml": '[project]\nname = "demo"\n\n[tool.pytest.ini_options]\nmarkers = ["slow: slow"]\n',
    "tests/conftest.py": '''\
import os
import tempfile

import pytest

# one file per lane: the lane's suite process is every pytest process's parent
COUNTER = os.path.join(tempfile.gettempdir(), f"demo-session-counter-{os.getppid()}")


@pytest.fixture(scope="session", autouse=True)
def session_resource():
    n = int(open(COUNTER).read()) if os.path.exists(COUNTER) else 0
    with open(COUNTER, "w") as fh:
        fh.write(str(n + 1))
    yield
''',
    "tests/test_demo.py": '''\
import ctypes
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose


def test_pass():
    assert np.add(1, 1) == 2


def test_numeric():
    assert_allclose(np.array([1.0, 2.0]), np.array([1.0, 2.5]))


def test_avx2():
    import avx2ext

    assert avx2ext.add() == 72


def test_segfault():
    ctypes.string_at(0)


def test_hang():
    time.sleep(600)


@pytest.mark.skip(reason="not on this platform")
def test_skip():
    pass


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False
''',
    "tests/test_zz_session.py": '''\
import pytest
from conftest import COUNTER


def test_session_setups():
    pytest.skip(f"session-setups={open(COUNTER).read()}")
''',
}

P, S = "pass", "skipped"
EXPECTED = {  # test -> lane -> outcome, lanes in LANES order
    "test_pass": (P, P, P, P),
    "test_numeric": ("numeric-mismatch",) * 4,
    "test_avx2": (P, P, P, "illegal-instruction"),
    "test_segfault": ("segfault",) * 4,
    "test_hang": ("timeout",) * 4,
    "test_skip": (S, S, S, S),
    "test_xfail": (P, P, P, P),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> dict[str, LaneResult]:
    facts = detect()
    require(f"{sys.version_info.major}.{sys.version_info.minor}" == corpus.PYTHON,
            "the AVX2 extension is built for this interpreter, which must be the lock's")
    require(facts.docker.reachable, f"docker daemon not reachable ({facts.docker.error})")
    require(facts.machine == "x86_64" and " avx2" in Path("/proc/cpuinfo").read_text(),
            "the noavx lane and the AVX2 extension need an x86-64 host with AVX2")
    tmp = tmp_path_factory.mktemp("pytest-lanes")
    project = tmp / "project"
    for rel, text in PROJECT.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    wheels = tmp / "wheels"
    corpus.build_avx2_wheel(wheels, "x86_64")
    corpus.build_avx2_wheel(wheels, "aarch64")
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    lock = dict(shipped["lock"], packages={**shipped["lock"]["packages"], **PYTEST_PINS})
    checks = dict(shipped.get("checks", {}), select=["lane.self", "pytest::*"],
                  timeouts={"pytest::tests/test_demo.py::test_hang": HANG_LIMIT},
                  pytest=["tests"])
    lanes = [lane for lane in shipped["lanes"] if lane["id"] in LANES]
    config = project / "matrix.yaml"  # beside the project: checks.pytest is relative to it
    config.write_text(yaml.safe_dump({"lock": lock, "checks": checks, "lanes": lanes}, sort_keys=False))
    out = tmp / "results"
    proc = subprocess.run(
        archmatrix_argv("matrix", "--config", str(config), "--results", str(out), "--workdir", str(workdir),
                        "--wheel", str(wheels)),
        env=python_env(), cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    print(proc.stdout[-4000:], proc.stderr[-6000:])
    return {lane: load(out / f"{lane}.json") for lane in LANES}


def test_every_test_in_every_lane_has_its_outcome(results: dict[str, LaneResult]) -> None:
    for i, lane in enumerate(LANES):
        result = results[lane]
        assert result.status == "ran", (lane, result.reason)
        cells = {c.id: c for c in result.checks if c.id.startswith("pytest::")}
        got = {cid.removeprefix("pytest::tests/test_demo.py::"): c.outcome.value for cid, c in cells.items()
               if cid.startswith("pytest::tests/test_demo.py::")}
        assert got == {test: row[i] for test, row in EXPECTED.items()}, lane
        assert cells["pytest::tests/test_demo.py::test_xfail"].message == "xfail"
        assert cells["pytest::tests/test_demo.py::test_skip"].message == "not on this platform"
        assert "Not equal to tolerance" in cells["pytest::tests/test_demo.py::test_numeric"].message
        assert cells["pytest::tests/test_demo.py::test_hang"].message == f"no result within {HANG_LIMIT} s"
        assert set(cells) == {f"pytest::tests/test_demo.py::{t}" for t in EXPECTED} | {
            "pytest::tests/test_zz_session.py::test_session_setups"}


def test_the_session_fixture_runs_once_per_pytest_process(results: dict[str, LaneResult]) -> None:
    for lane in LANES:
        result = results[lane]
        processes = result.facts["pytest"]["processes"]
        # a restart after the segfault, one after the hang, one more where the AVX2 test dies
        assert processes == (4 if lane == "linux-x86_64-noavx" else 3), (lane, result.facts["pytest"])
        counted = result.check("pytest::tests/test_zz_session.py::test_session_setups")
        assert counted is not None and counted.message == f"session-setups={processes}", lane
