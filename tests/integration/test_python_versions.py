"""Python versions as a matrix axis (issue 18), through the real CLI: three Pythons × three lanes.

The lock of ci/matrix.yaml (numpy, scipy, scikit-learn; copied, never retyped)
with ``python: ["3.11", "3.12", "3.13"]`` through ``host`` (a venv of this host's
interpreter of each version), ``linux-x86_64-noavx`` (the same interpreter under
``qemu-x86_64 -cpu Westmere``) and ``linux-arm64-docker`` (a container of the
Debian release that ships the version: bookworm 3.11, trixie 3.13; on the
default config's CPU without SVE) → nine
columns, every built-in check ``pass`` in the eight that run, each lane's facts
naming its version.

The ninth, ``linux-arm64-docker@3.12``, is ``skipped`` with its fix
(``options.base_image``), and that is asserted: no Debian release ships Python
3.12 (bookworm has 3.11, trixie 3.13), no container registry is reachable here,
and no package a reachable registry serves carries an aarch64 CPython 3.12 (the
python-build-standalone installers on PyPI download from GitHub; Debian's
archive has no python3.12 source or binary in any suite). 3.12 runs on the host
and under the no-AVX CPU (pyenv's 3.12); the container proves 3.11 and 3.13.

A version with no wheel for one lane: the test builds ``pvmark`` 1.0 with a
cp311 wheel for x86-64 and aarch64, and cp312 and cp313 wheels for x86-64 only, served
from a local wheel directory (``lock.wheels``) → ``wheel.pvmark`` is
``no-wheel`` in exactly ``linux-arm64-docker@3.13`` and the lane's other checks
still pass.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix import config
from archmatrix.hostfacts import detect
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import LaneResult, LaneStatus, load

VERSIONS = ("3.11", "3.12", "3.13")
# the lane × version this machine cannot run: no aarch64 CPython 3.12 to put in the container
UNOBTAINABLE = ("linux-arm64-docker", "3.12")
LANES = ("host", "linux-x86_64-noavx", "linux-arm64-docker")
RUNS = [(lane_id, v) for lane_id in LANES for v in VERSIONS if (lane_id, v) != UNOBTAINABLE]
DEFAULT_CONFIG = ROOT / "ci" / "matrix.yaml"
SETUP = "ci/setup-linux-host.sh"
CLI_TIMEOUT = 3600  # a new machine builds the trixie arm64 base image first (minutes under QEMU)
CHECK_TIMEOUT = 600
PACKAGE = "pvmark"
# (python tag, platform) of the wheels pvmark 1.0 publishes: no cp312 or cp313 aarch64 one
PUBLISHED = (("cp311", "manylinux_2_17_x86_64"), ("cp311", "manylinux_2_17_aarch64"),
             ("cp312", "manylinux_2_17_x86_64"), ("cp313", "manylinux_2_17_x86_64"))


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_release(dest: Path) -> Path:
    """pvmark 1.0's wheels (tagged for a CPython and a platform; its code is plain Python)."""
    dest.mkdir(parents=True, exist_ok=True)
    for python, platform in PUBLISHED:
        tag = f"{python}-{python}-{platform}"
        info = f"{PACKAGE}-1.0.dist-info"
        files = {
            f"{PACKAGE}/__init__.py": b"VERSION = '1.0'\n",
            f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 1.0\n".encode(),
            f"{info}/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n".encode(),
        }
        record = "\n".join([*(_record_line(n, d) for n, d in files.items()), f"{info}/RECORD,,"]) + "\n"
        with zipfile.ZipFile(dest / f"{PACKAGE}-1.0-{tag}.whl", "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
            zf.writestr(f"{info}/RECORD", record)
    return dest


def write_config(path: Path, wheels: Path) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["lock"]["python"] = list(VERSIONS)
    data["lock"]["wheels"] = [str(wheels)]
    # emulated lanes on a shared 2-core host: at a load average of 10, import.sklearn in both arm64
    # containers ran past the default 180 s (it takes 20-150 s); this test is about versions, not speed
    data["checks"]["timeout"] = CHECK_TIMEOUT
    data["lanes"] = [lane for lane in data["lanes"] if lane["id"] in LANES]
    assert [lane["id"] for lane in data["lanes"]] == ["host", "linux-arm64-docker", "linux-x86_64-noavx"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    config.load(path)  # a config error is the test's fault: say so before running anything
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    facts = detect()
    require(facts.docker.reachable, f"docker daemon not reachable ({facts.docker.error}): {SETUP}")
    require("aarch64" in facts.binfmt or facts.machine == "aarch64",
            f"no qemu-aarch64 binfmt handler: {SETUP}")
    require("x86_64" in facts.qemu_user, f"no qemu-x86_64: {SETUP}")
    for version in VERSIONS:
        require(facts.interpreter(version) is not None,
                f"no Python {version} on this host (pyenv install {version})")
    tmp = tmp_path_factory.mktemp("pyversions")
    cfg = write_config(tmp / "matrix.yaml", build_release(tmp / "wheels"))
    results = tmp / "results"
    proc = subprocess.run(
        archmatrix_argv("matrix", "--config", str(cfg), "--results", str(results),
                        "--workdir", str(ROOT / ".archmatrix"), "--no-annotations"),
        capture_output=True, text=True, timeout=CLI_TIMEOUT, env=python_env(), cwd=tmp,
    )
    return proc, results


def lane(results: Path, lane_id: str, version: str) -> LaneResult:
    return load(results / f"{lane_id}-py{version}.json")


def test_nine_columns_grouped_by_lane_then_version(
    run: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    proc, results = run
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    names = sorted(p.name for p in results.glob("*-py3.*.json"))
    assert names == sorted(f"{lane_id}-py{v}.json" for lane_id in LANES for v in VERSIONS), names
    matrix = json.loads((results / "matrix.json").read_text())
    grouped = ("host", "linux-arm64-docker", "linux-x86_64-noavx")  # by lane, then version
    columns = [ln["lane"] for ln in matrix["lanes"]]
    assert columns == [f"{lane_id}@{v}" for lane_id in grouped for v in VERSIONS]
    # the one failing cell (below) is a required lane's: exit 1, not an infrastructure failure
    assert proc.returncode == 1, proc.stderr[-3000:]


@pytest.mark.parametrize(("lane_id", "version"), RUNS)
def test_every_built_in_check_passes_on_the_lanes_own_python(
    run: tuple[subprocess.CompletedProcess[str], Path], lane_id: str, version: str
) -> None:
    _proc, results = run
    result = lane(results, lane_id, version)
    assert result.lane == f"{lane_id}@{version}"
    assert result.status == LaneStatus.RAN, (result.reason, result.hint)
    # the interpreter that ran the checks is the lane's version (the self-check proves it too)
    assert str(result.facts["python"]["version"]).startswith(f"{version}."), result.facts["python"]
    built_in = [c for c in result.checks if c.id != f"wheel.{PACKAGE}"]
    assert len(built_in) >= 25
    failed = [(c.id, c.outcome.value, c.message) for c in built_in if c.outcome is not Outcome.PASS]
    assert not failed, failed
    numpy = next(c for c in built_in if c.id == "wheel.numpy")
    assert numpy.metrics.get("version") == "2.4.6" and f"cp{version.replace('.', '')}" in numpy.message


def test_a_release_without_a_cp313_aarch64_wheel_is_no_wheel_in_exactly_that_lane(
    run: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    _proc, results = run
    outcomes = {(lane_id, v): next(c for c in lane(results, lane_id, v).checks if c.id == f"wheel.{PACKAGE}")
                for lane_id, v in RUNS}
    missing = {key for key, cell in outcomes.items() if cell.outcome is Outcome.NO_WHEEL}
    assert missing == {("linux-arm64-docker", "3.13")}
    cell = outcomes[("linux-arm64-docker", "3.13")]
    assert "aarch64 cp313" in cell.message, cell.message
    assert all(c.outcome is Outcome.PASS for key, c in outcomes.items() if key not in missing)


def test_the_arm64_container_without_a_python_3_12_is_skipped_with_the_fix(
    run: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    proc, results = run
    result = lane(results, *UNOBTAINABLE)
    assert result.status == LaneStatus.SKIPPED and not result.checks, result.status
    assert "no Debian release ships Python 3.12" in result.reason, result.reason
    assert "options.base_image" in result.hint and "/usr/bin/python3.12" in result.hint, result.hint
    assert "linux-arm64-docker@3.12: skipped" in proc.stdout  # said on the terminal, under the table
