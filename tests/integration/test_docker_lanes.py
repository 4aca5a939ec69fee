"""The Docker lanes through the real CLI: real images, real containers, real QEMU.

``linux-amd64-docker`` and ``linux-arm64-docker`` are built and run by
``archmatrix matrix`` in a subprocess, with the repository's ``.archmatrix``
cache so staged wheels and images are reused across test runs. The lock is
the one in ci/matrix.yaml (copied, never retyped), so these tests prove the
default matrix, not a test double of it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix import config
from archmatrix.hostfacts import HostFacts, detect
from archmatrix.profiles import DEFAULT_PROFILES
from archmatrix.staging.suite import suite_digest
from archmatrix.suite.result import LaneResult, load

DOCKER_LANES = ("linux-amd64-docker", "linux-arm64-docker")
DEFAULT_CONFIG = ROOT / "ci" / "matrix.yaml"
# Names OpenBLAS gives its arm64 kernels (openblas_get_corename, as threadpoolctl
# reports it): armv8, armv8sve, armv9sme, cortexa57/a72/a53..., neoversen1/v1/v2...
ARM64_KERNEL = re.compile(
    r"^(armv8|armv9|cortex|neoverse|thunderx|falkor|tsv110|emag|a64fx|vortex|ampere)", re.IGNORECASE
)
CLI_TIMEOUT = 3600  # a new machine builds both base images first (arm64: minutes under QEMU)


@dataclass(frozen=True)
class MatrixRun:
    proc: subprocess.CompletedProcess[str]
    results: Path
    lock: Mapping[str, str]
    # the suite's hash before and after the run: it is part of every lane image's tag
    suite: tuple[str, str]

    def lane(self, lane_id: str) -> LaneResult:
        return load(self.results / f"{lane_id}.json")


@pytest.fixture(scope="module")
def host() -> HostFacts:
    """This host, once; the Docker lanes cannot run without the engine and, on x86-64, QEMU."""
    facts = detect()
    server = facts.docker.server_arch or facts.machine
    require(facts.docker.reachable, f"docker daemon not reachable ({facts.docker.error}): "
                                    "ci/setup-linux-host.sh")
    require(server == "aarch64" or "aarch64" in facts.binfmt or facts.docker.desktop,
            f"no qemu-aarch64 binfmt handler on this {server} host: ci/setup-linux-host.sh")
    return facts


@pytest.fixture(scope="module")
def docker_client(host: HostFacts) -> Any:
    import docker

    return docker.from_env()


def write_config(path: Path, lanes: Iterable[str], *, select: list[str] | None = None) -> Path:
    """ci/matrix.yaml restricted to ``lanes``, its lock kept as written."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    wanted = list(lanes)
    data["lanes"] = [lane for lane in data["lanes"] if lane["id"] in wanted]
    assert [lane["id"] for lane in data["lanes"]] == wanted, "ci/matrix.yaml lost a lane these tests need"
    if select is not None:
        data["checks"]["select"] = select
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    config.load(path)  # a config error here is the test's fault: say so before running anything
    return path


def run_matrix(cfg: Path, results: Path, workdir: Path) -> MatrixRun:
    suite_before = suite_digest()
    proc = subprocess.run(
        archmatrix_argv("matrix", "--config", str(cfg), "--results", str(results), "--workdir", str(workdir)),
        env=python_env(), cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    return MatrixRun(proc, results, dict(config.load(cfg).lock.packages), (suite_before, suite_digest()))


def not_passed(lane: LaneResult) -> dict[str, tuple[str, str]]:
    return {c.id: (c.outcome.value, c.message) for c in lane.checks if c.outcome.value != "pass"}


def lane_tag(lane: LaneResult) -> str:
    tag = lane.facts["runner"]["image"]
    assert isinstance(tag, str) and tag.startswith("archmatrix-lane:"), tag
    return tag


# --- the default lock: host + both Docker lanes --------------------------------------------


@pytest.fixture(scope="module")
def standard(host: HostFacts, tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> MatrixRun:
    tmp = tmp_path_factory.mktemp("docker-standard")
    cfg = write_config(tmp / "matrix.yaml", ["host", *DOCKER_LANES])
    return run_matrix(cfg, tmp / "results", workdir)


def test_both_docker_lanes_run_and_every_check_passes(standard: MatrixRun) -> None:
    assert standard.proc.returncode == 0, standard.proc.stderr[-4000:]
    for lane_id in ("host", *DOCKER_LANES):
        lane = standard.lane(lane_id)
        assert lane.status == "ran", (lane_id, lane.reason)
        assert not_passed(lane) == {}, lane_id
        ids = {c.id for c in lane.checks}
        # every family of the suite really ran, not just the wheel rows
        for expected in ("wheel.numpy", "import.sklearn", "blas.loaded", "linalg.svd", "sklearn.kmeans"):
            assert expected in ids, (lane_id, expected)
        assert lane_id in standard.proc.stdout  # the terminal table shows the lane


def test_arm64_lane_is_emulated_aarch64_with_an_arm64_openblas_kernel(
    standard: MatrixRun, host: HostFacts
) -> None:
    arm = standard.lane("linux-arm64-docker").facts
    assert arm["machine"] == "aarch64"
    assert arm["runner"]["platform"] == "linux/arm64"
    if (host.docker.server_arch or host.machine) == "aarch64":
        assert arm["emulation"]["emulator"] is None
    else:
        assert str(arm["emulation"]["emulator"]).startswith("qemu-aarch64"), arm["emulation"]
        # ci/matrix.yaml's profile (Apple silicon: no SVE), not QEMU's default `max`
        assert arm["emulation"]["cpu_model"] == DEFAULT_PROFILES["apple-silicon"].qemu_cpu
        assert "SVE" in arm["cpu"]["absent"], arm["cpu"]
    kernels = [lib["architecture"] for lib in arm["libraries"] if lib["internal_api"] == "openblas"]
    assert kernels and all(ARM64_KERNEL.match(str(k)) for k in kernels), kernels

    amd = standard.lane("linux-amd64-docker").facts
    assert amd["machine"] == "x86_64" and amd["runner"]["platform"] == "linux/amd64"
    amd_kernels = [lib["architecture"] for lib in amd["libraries"] if lib["internal_api"] == "openblas"]
    assert amd_kernels and not any(ARM64_KERNEL.match(str(k)) for k in amd_kernels), amd_kernels


def test_docker_lanes_have_the_locked_versions_of_the_host_lane(standard: MatrixRun) -> None:
    host_packages = standard.lane("host").facts["packages"]
    for lane_id in DOCKER_LANES:
        packages = standard.lane(lane_id).facts["packages"]
        for name in ("numpy", "scipy", "scikit-learn"):
            assert packages[name] == standard.lock[name] == host_packages[name], (lane_id, name)


def test_lane_containers_are_removed(standard: MatrixRun, docker_client: Any) -> None:
    for lane_id in DOCKER_LANES:
        tag = lane_tag(standard.lane(lane_id))
        docker_client.images.get(tag)  # the filter below means something only if the image exists
        left = docker_client.containers.list(all=True, filters={"ancestor": tag})
        assert left == [], (tag, [c.name for c in left])


def test_warm_rerun_rebuilds_nothing(
    standard: MatrixRun, docker_client: Any, tmp_path: Path, workdir: Path
) -> None:
    before = {}
    for lane_id in DOCKER_LANES:
        tag = lane_tag(standard.lane(lane_id))
        before[lane_id] = (tag, docker_client.images.get(tag).id)
    # The check selection is a run argument, not part of any image or staging
    # key: a short selection keeps the re-run quick and still proves the cache.
    cfg = write_config(tmp_path / "matrix.yaml", DOCKER_LANES, select=["import.*", "blas.*"])
    warm = run_matrix(cfg, tmp_path / "results", workdir)
    # A checkout being edited while the tests run changes the suite, hence the
    # tags: a rebuild is then right, and this test cannot tell. CI has a clean clone.
    require(len({*standard.suite, *warm.suite}) == 1,
            "the suite's source changed while the tests ran, so the lane images were rightly rebuilt")
    assert warm.proc.returncode == 0, warm.proc.stderr[-4000:]
    progress = warm.proc.stderr
    assert "building archmatrix-lane" not in progress
    assert "mmdebstrap" not in progress  # the base image was not rebuilt either
    for lane_id, (tag, image_id) in before.items():
        lane = warm.lane(lane_id)
        assert not_passed(lane) == {}, lane_id
        assert lane_tag(lane) == tag
        assert f"image {tag} is up to date" in progress
        assert docker_client.images.get(tag).id == image_id
        assert docker_client.containers.list(all=True, filters={"ancestor": tag}) == []


# A lock with no aarch64 wheel for one package (pyahocorasick 2.0.0) is row 8 of the
# fault corpus (test_fault_corpus.py): no-wheel in exactly the arm64 lane, exit status 1,
# the lane still run, the lock-mismatch warning naming the package.
