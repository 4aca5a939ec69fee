"""The noavx lane catches on Linux what Rosetta 2 would catch on a Mac.

A tiny extension that executes AVX2 instructions unconditionally is built
here with the system compiler, put into the lock's environment as a local
wheel (``lock.wheels``), and called by a user check module. Then the real
lanes run: ``host`` (a venv) and ``linux-x86_64-noavx`` (the same venv under
``qemu-x86_64 -cpu Westmere``). The check must pass natively and die with an
illegal instruction on the emulated CPU, while every other check passes in
both lanes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, require, require_lane
from corpus import AVX2, build_avx2_wheel

from archmatrix import config, hostfacts
from archmatrix.runners import RUNNERS, LaneJob
from archmatrix.runners.common import run_prepared
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import LaneResult, load

pytestmark = pytest.mark.integration

FIXTURE = AVX2  # built by corpus.build_avx2_wheel: gcc -mavx2, packed as a linux_x86_64 wheel
CHECK = "avx2_checks.add_epi32"
LANES = ("host", "linux-x86_64-noavx")
# OpenBLAS's x86-64 kernels for CPUs without AVX (threadpoolctl's "architecture").
PRE_AVX_KERNELS = {"Nehalem", "Core2", "Penryn", "Dunnington", "Atom", "Prescott", "Opteron", "Barcelona"}


def matrix_config(wheel: Path, path: Path) -> config.MatrixConfig:
    """ci/matrix.yaml's lock and lane definitions, plus the local wheel and the user check."""
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    lock = dict(shipped["lock"], wheels=[str(wheel)])
    lanes = [lane for lane in shipped["lanes"] if lane["id"] in LANES]
    assert [lane["id"] for lane in lanes] == list(LANES)
    checks = dict(shipped.get("checks", {}), user_modules=[str(FIXTURE / "avx2_checks.py")])
    text = yaml.safe_dump({"lock": lock, "checks": checks, "lanes": lanes}, sort_keys=False)
    path.write_text(text)
    return config.parse(text, path)


@pytest.fixture(scope="module")
def lanes(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> dict[str, LaneResult]:
    tmp = tmp_path_factory.mktemp("noavx")
    lock_python = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())["lock"]["python"]
    require(f"{sys.version_info.major}.{sys.version_info.minor}" == lock_python,
            f"the lock is for Python {lock_python}; the extension is built for this interpreter")
    # natively /proc/cpuinfo is the truth (only emulated guests are shown the host's)
    require(" avx2" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False,
            "this host's CPU has no AVX2: the extension could not pass natively")
    cfg = matrix_config(build_avx2_wheel(tmp), tmp / "matrix.yaml")
    host = hostfacts.detect(check_docker=False)
    results: dict[str, LaneResult] = {}
    for lane_id in LANES:
        lane = cfg.lane(lane_id)
        runner = RUNNERS[lane.runner]
        available = runner.availability(lane, host)
        require_lane(available.ok, f"{lane_id}: {available.reason} — {available.hint}")
        job = LaneJob(config=cfg, lane=lane, host=host, workdir=workdir,
                      out=tmp / "results" / f"{lane_id}.json", progress=lambda line: print(line, flush=True))
        run_prepared(job, runner.prepare(job))
        # what the matrix reads: the lane's result file, not the runner's return value
        results[lane_id] = load(job.out)
    return results


def outcomes(result: LaneResult) -> dict[str, str]:
    return {c.id: c.outcome.value for c in result.checks}


def test_avx2_check_passes_natively_and_is_an_illegal_instruction_without_avx(
    lanes: dict[str, LaneResult],
) -> None:
    host = lanes["host"].check(CHECK)
    noavx = lanes["linux-x86_64-noavx"].check(CHECK)
    assert host is not None and noavx is not None
    assert host.outcome is Outcome.PASS, (host.message, host.evidence)
    assert host.metrics["sum"] == 72
    assert noavx.outcome is Outcome.ILLEGAL_INSTRUCTION, (noavx.message, noavx.evidence)
    assert noavx.evidence["signal"] == "SIGILL"
    # the emulator's noise is filtered; its account of the crash is kept
    stderr = noavx.evidence.get("stderr_tail", "")
    assert "TCG doesn't support" not in stderr
    assert "Illegal instruction" in noavx.message or "Illegal instruction" in stderr


def test_every_other_check_passes_in_both_lanes(lanes: dict[str, LaneResult]) -> None:
    for lane_id, result in lanes.items():
        assert result.status == "ran", (lane_id, result.reason)
        others = {cid: outcome for cid, outcome in outcomes(result).items() if cid != CHECK}
        assert others, lane_id
        failed = {cid: outcome for cid, outcome in others.items() if outcome != "pass"}
        assert failed == {}, (lane_id, {c.id: c.message for c in result.checks if c.id in failed})
        # the suite's families all ran, and the local wheel was staged like a locked one
        for expected in ("wheel.numpy", "wheel.avx2ext", "import.numpy", "blas.loaded",
                         "linalg.solve", "sklearn.linear_regression"):
            assert expected in others, (lane_id, expected)
    # the same checks ran in both lanes
    assert set(outcomes(lanes["host"])) == set(outcomes(lanes["linux-x86_64-noavx"]))


def test_noavx_lane_sees_no_avx_and_openblas_on_a_pre_avx_kernel(lanes: dict[str, LaneResult]) -> None:
    facts = lanes["linux-x86_64-noavx"].facts
    assert facts["emulation"] == {"emulator": "qemu-x86_64", "cpu_model": "Westmere"}
    assert facts["runner"]["cpu_profile"] == "rosetta2"
    cpu = facts["cpu"]
    assert cpu["source"] == "numpy CPUID"
    for feature in ("AVX", "AVX2", "FMA3", "AVX512F"):
        assert feature in cpu["absent"] and feature not in cpu["present"], feature
    assert "SSE42" in cpu["present"]  # Westmere: x86-64-v2, as Rosetta 2
    blas = [lib for lib in facts["libraries"] if lib["internal_api"] == "openblas"]
    assert blas, facts["libraries"]
    assert {lib["architecture"] for lib in blas} <= PRE_AVX_KERNELS, blas
    assert "emulated" in {w.id for w in lanes["linux-x86_64-noavx"].warnings}


def test_both_lanes_ran_the_same_environment(lanes: dict[str, LaneResult]) -> None:
    host, noavx = lanes["host"].facts, lanes["linux-x86_64-noavx"].facts
    # same venv, same packages: only the CPU differs
    assert noavx["python"]["prefix"] == host["python"]["prefix"]
    assert noavx["packages"] == host["packages"]
    assert noavx["packages"]["avx2ext"] == "1.0"
    assert host["emulation"] == {"emulator": None, "cpu_model": None}
    assert "AVX2" in host["cpu"]["present"]
