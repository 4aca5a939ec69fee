"""A real lock file through real lanes: markers per lane, hashes verified (issue 17).

Pure-Python wheels built here are the "index": they are put in the run's
wheel cache, where staging looks before it asks pip, so no network is needed.
``lock.file`` is a requirements.txt of the kind ``pip-compile
--generate-hashes`` writes:

- ``lockpure`` for every lane, with its sha256;
- ``armdep`` only where ``platform_machine == "aarch64"``;
- ``winonly``, ``sys_platform == "win32"``: no wheel of it exists anywhere.

Through ``host`` and ``linux-arm64-docker``: armdep is installed in the arm64
container only, winonly is never a ``no-wheel``; then the same lock with a
wrong hash makes the host lane an ``infra-error`` naming the file, the package
and the wheel (exit status 3).
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import corpus
import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix.hostfacts import detect
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import LaneResult, LaneStatus, load

pytestmark = pytest.mark.integration

LANES = ("host", "linux-arm64-docker")
CLI_TIMEOUT = 3600


def requirements(lockpure_sha256: str) -> str:
    return (f"lockpure==1.0 \\\n    --hash=sha256:{lockpure_sha256}\n"
            'armdep==2.0 ; platform_machine == "aarch64"\n'
            'winonly==3.0 ; sys_platform == "win32"\n')


def run(config: Path, results: Path, workdir: Path, *lanes: str) -> subprocess.CompletedProcess[str]:
    argv = ["matrix", "--config", str(config), "--results", str(results), "--workdir", str(workdir)]
    for lane in lanes:
        argv += ["--lane", lane]
    started = time.monotonic()
    proc = subprocess.run(archmatrix_argv(*argv), env=python_env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT)
    print(f"{time.monotonic() - started:.0f} s\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    facts = detect()
    require(facts.docker.reachable, f"docker daemon not reachable ({facts.docker.error})")
    require("aarch64" in facts.binfmt or facts.docker.desktop or facts.machine == "aarch64",
            "no qemu-aarch64 binfmt handler on this host")
    tmp = tmp_path_factory.mktemp("lockfile")
    cache = tmp / "work" / "wheels"  # the run's wheel cache: staging finds the lock's wheels here
    lockpure = corpus.pack_wheel(cache, "lockpure", "1.0", "py3-none-any",
                                 {"lockpure.py": b"VALUE = 1\n"}, purelib=True)
    corpus.pack_wheel(cache, "armdep", "2.0", "py3-none-any", {"armdep.py": b"VALUE = 2\n"}, purelib=True)
    (tmp / "requirements.txt").write_text(requirements(hashlib.sha256(lockpure.read_bytes()).hexdigest()))
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    (tmp / "matrix.yaml").write_text(yaml.safe_dump({
        "lock": {"python": shipped["lock"]["python"], "file": "requirements.txt"},
        "checks": {"select": ["lane.self"]},
        "lanes": [lane for lane in shipped["lanes"] if lane["id"] in LANES],
    }, sort_keys=False))
    return tmp


def wheel_rows(result: LaneResult) -> dict[str, Outcome]:
    return {c.id: c.outcome for c in result.checks if c.id.startswith("wheel.")}


def test_markers_choose_each_lanes_packages_and_exclude_no_wheel(project: Path) -> None:
    proc = run(project / "matrix.yaml", project / "results", project / "work")
    assert proc.returncode == 0, proc.stderr[-3000:]
    host = load(project / "results" / "host.json")
    arm = load(project / "results" / "linux-arm64-docker.json")
    assert host.status == arm.status == LaneStatus.RAN
    assert wheel_rows(host) == {"wheel.lockpure": Outcome.PASS}
    assert wheel_rows(arm) == {"wheel.armdep": Outcome.PASS, "wheel.lockpure": Outcome.PASS}
    # what each lane really has installed, as the lane itself reports it
    assert {"lockpure": "1.0"}.items() <= host.facts["packages"].items()
    assert "armdep" not in host.facts["packages"]
    assert {"lockpure": "1.0", "armdep": "2.0"}.items() <= arm.facts["packages"].items()
    assert not [w for lane in (host, arm) for w in lane.warnings if w.id == "lock-mismatch"]


def test_a_wrong_hash_is_the_lanes_infra_error(project: Path) -> None:
    lock = project / "requirements.txt"
    lock.write_text(requirements("0" * 64))
    proc = run(project / "matrix.yaml", project / "results-bad", project / "work", "host")
    assert proc.returncode == 3, proc.stderr[-3000:]
    host = load(project / "results-bad" / "host.json")
    assert host.status == LaneStatus.INFRA_ERROR
    assert host.reason.startswith(f"could not stage the lock: {lock}: lockpure==1.0: the wheel "
                                  "lockpure-1.0-py3-none-any.whl (sha256 "), host.reason
    assert "Traceback" not in proc.stderr
