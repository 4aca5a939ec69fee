"""Root causes through the real lanes: the cell says what explains it, not where it surfaced.

Wheels built here from tests/fixtures/rootcause, brought in the way a user
brings their own package (``archmatrix matrix --wheel DIR --checks-module
FILE``), through ``host`` and ``linux-arm64-docker`` only:

- ``wrappedarch``: a wheel tagged for aarch64 whose extension is x86-64 code,
  imported through an ``__init__`` that catches the ImportError and raises
  its own (as numpy does) → ``wrong-arch`` in linux-arm64-docker, the file
  and "x86-64 in an aarch64 process" in the evidence; ``silentarch`` the
  same behind an ``__init__`` that drops the loader's words altogether;
- ``puredep`` (pure Python, ``py3-none-any``) importing ``compiledep``, a
  compiled dependency with an x86-64 wheel only → the check is ``no-wheel``
  via compiledep in linux-arm64-docker, and passes in host.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import corpus
import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix.hostfacts import detect
from archmatrix.suite.result import LaneResult, load

pytestmark = pytest.mark.integration

FIXTURE = ROOT / "tests" / "fixtures" / "rootcause"
CHECKS = FIXTURE / "rootcause_checks.py"
LANES = ("host", "linux-arm64-docker")
CLI_TIMEOUT = 3600


def build_wheels(dest: Path) -> Path:
    native = corpus.compile_shared(corpus.CORPUS / "wrongarch" / "_native.c", "x86_64")
    for name in ("wrappedarch", "silentarch"):
        # named as an aarch64 interpreter looks for it: the file is found, and is x86-64
        corpus.pack_wheel(dest, name, "1.0", f"{corpus.ABI}-{corpus.ABI}-linux_aarch64", {
            f"{name}/__init__.py": (FIXTURE / name / "__init__.py").read_bytes(),
            f"{name}/_native{corpus.ext_suffix('aarch64')}": native,
        })
    pure = (FIXTURE / "puredep" / "__init__.py").read_bytes()
    corpus.pack_wheel(dest, "puredep", "1.0", "py3-none-any", {"puredep/__init__.py": pure}, purelib=True)
    corpus.pack_wheel(dest, "compiledep", "1.0", f"{corpus.ABI}-abi3-linux_x86_64",
                      {"compiledep.abi3.so": corpus.compile_shared(FIXTURE / "compiledep.c", "x86_64")})
    return dest


@pytest.fixture(scope="module")
def lanes(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> dict[str, LaneResult]:
    facts = detect()
    require(facts.machine == "x86_64", "the fixtures' extensions are x86-64 code that passes on this host")
    require(f"{sys.version_info.major}.{sys.version_info.minor}" == corpus.PYTHON,
            "the extensions are built for this interpreter's version, the lock's")
    require(facts.docker.reachable, f"docker daemon not reachable ({facts.docker.error})")
    require("aarch64" in facts.binfmt or facts.docker.desktop, "no qemu-aarch64 binfmt handler on this host")
    tmp = tmp_path_factory.mktemp("rootcause")
    wheels = build_wheels(tmp / "wheels")
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    config = tmp / "rootcause.yaml"
    config.write_text(yaml.safe_dump({
        "lock": shipped["lock"],
        "checks": dict(shipped.get("checks", {}), select=["rootcause_checks.*"]),
        "lanes": [lane for lane in shipped["lanes"] if lane["id"] in LANES],
    }, sort_keys=False))
    results = tmp / "results"
    started = time.monotonic()
    proc = subprocess.run(
        archmatrix_argv("matrix", "--config", str(config), "--results", str(results),
                        "--workdir", str(workdir), "--wheel", str(wheels), "--checks-module", str(CHECKS),
                        "--no-probes"),
        env=python_env(), cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    print(f"{time.monotonic() - started:.0f} s\n{proc.stderr[-3000:]}")
    assert proc.returncode == 1, proc.stderr[-4000:]  # failed checks, not infrastructure
    return {lane_id: load(results / f"{lane_id}.json") for lane_id in LANES}


def _check(lane: LaneResult, check_id: str):  # type: ignore[no-untyped-def]
    check = lane.check(check_id)
    assert check is not None, (lane.lane, check_id, [c.id for c in lane.checks])
    return check


def test_a_foreign_extension_behind_a_packages_own_import_error_is_wrong_arch(
    lanes: dict[str, LaneResult],
) -> None:
    arm = _check(lanes["linux-arm64-docker"], "rootcause_checks.wrapped")
    assert arm.outcome.value == "wrong-arch", (arm.message, arm.evidence)
    native = f"wrappedarch/_native{corpus.ext_suffix('aarch64')}"
    (sentence,) = [s for s in arm.evidence["wrong_arch"] if native in s]
    assert "x86-64 in an aarch64 process" in sentence, sentence
    # what the package said, kept as the symptom
    assert "Importing the wrappedarch C-extensions failed" in arm.evidence["exception"]["message"]
    assert _check(lanes["linux-arm64-docker"], "wheel.wrappedarch").outcome.value == "pass"


def test_a_foreign_extension_behind_an_import_error_that_drops_the_loaders_words_is_wrong_arch(
    lanes: dict[str, LaneResult],
) -> None:
    arm = _check(lanes["linux-arm64-docker"], "rootcause_checks.silent")
    assert arm.outcome.value == "wrong-arch", (arm.message, arm.evidence)
    native = f"silentarch/_native{corpus.ext_suffix('aarch64')}"
    assert native in arm.message and "x86-64 in an aarch64 process" in arm.message, arm.message
    assert arm.evidence["exception"]["message"] == "silentarch is not installed correctly: reinstall it"


def test_a_dependency_without_a_wheel_is_the_root_of_the_import_error(lanes: dict[str, LaneResult]) -> None:
    arm = lanes["linux-arm64-docker"]
    assert _check(arm, "wheel.compiledep").outcome.value == "no-wheel"
    pure = _check(arm, "rootcause_checks.pure")
    assert pure.outcome.value == "no-wheel", (pure.message, pure.evidence)
    assert pure.message.startswith("via compiledep: "), pure.message
    assert pure.evidence["symptom"] == {
        "outcome": "import-error",
        "message": "ModuleNotFoundError: puredep requires compiledep to be installed",
    }
    host = _check(lanes["host"], "rootcause_checks.pure")
    assert host.outcome.value == "pass", (host.message, host.evidence)
    assert host.metrics == {"answer": 42}


# --- the library behind an illegal instruction ------------------------------------------------

NOAVX = "linux-x86_64-noavx"


@pytest.fixture(scope="module")
def noavx(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> LaneResult:
    """The fault corpus's AVX2 extension (tests/fixtures/avx2ext) in the no-AVX lane alone."""
    require(detect(check_docker=False).machine == "x86_64", "the no-AVX lane needs an x86-64 host")
    require(" avx2" in Path("/proc/cpuinfo").read_text(), "this host's CPU has no AVX2")
    tmp = tmp_path_factory.mktemp("noavx-rootcause")
    corpus.build_avx2_wheel(tmp / "wheels")
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    config = tmp / "noavx.yaml"
    config.write_text(yaml.safe_dump({
        "lock": shipped["lock"],
        "checks": dict(shipped.get("checks", {}), select=["avx2_checks.*"]),
        "lanes": [lane for lane in shipped["lanes"] if lane["id"] == NOAVX],
    }, sort_keys=False))
    results = tmp / "results"
    proc = subprocess.run(
        archmatrix_argv("matrix", "--config", str(config), "--results", str(results),
                        "--workdir", str(workdir), "--wheel", str(tmp / "wheels"),
                        "--checks-module", str(corpus.AVX2 / "avx2_checks.py"), "--no-probes"),
        env=python_env(), cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    print(proc.stderr[-3000:])
    assert proc.returncode == 1, proc.stderr[-4000:]
    return load(results / f"{NOAVX}.json")


def test_an_illegal_instruction_names_the_extension_and_avx2(noavx: LaneResult) -> None:
    cell = _check(noavx, "avx2_checks.add_epi32")
    assert cell.outcome.value == "illegal-instruction"
    so = f"avx2ext{corpus.ext_suffix('x86_64')}"
    assert f"AVX2 in {so}, not guarded by a CPU check" in cell.message, (cell.message, cell.evidence)
    attribution = cell.evidence["attribution"]
    assert attribution["binary"].endswith(f"/{so}") and attribution["module"] == "avx2ext"
    assert "Illegal instruction" in cell.message  # the symptom's words stay
