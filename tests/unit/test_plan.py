"""Planning is a pure function of (config, host facts): hand-built HostFacts, no Docker, no QEMU (issue 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archmatrix.config import ConfigError, MatrixConfig, parse
from archmatrix.hostfacts import DockerFacts, HostFacts
from archmatrix.plan import PlannedLane, parallelism, plan
from archmatrix.runners import RUNNERS

CONFIG = """\
lock:
  python: "3.11"
  packages: {numpy: "2.4.6"}
lanes:
  - id: host
    runner: venv
  - id: linux-x86_64-noavx
    runner: qemu
    options: {cpu_profile: rosetta2}
  - id: linux-x86_64-v3
    runner: qemu
    required: false
    options: {cpu_profile: x86-64-v3}
  - id: graviton3
    runner: qemu
    required: false
    options: {cpu_profile: graviton3}
  - id: host-explicit-python
    runner: venv
    required: false
    options: {python: /opt/python3.11/bin/python3.11}
cpu_profiles:
  graviton3: {arch: aarch64, qemu_cpu: neoverse-v1, description: AWS Graviton 3}
"""

DOCKER_CONFIG = """\
lock:
  python: "3.11"
  packages: {numpy: "2.4.6"}
lanes:
  - id: linux-amd64-docker
    runner: docker
    options: {platform: linux/amd64}
  - id: linux-arm64-docker
    runner: docker
    options: {platform: linux/arm64}
"""

NO_DOCKER = DockerFacts(False, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock")

LINUX_X86 = HostFacts(
    system="Linux",
    machine="x86_64",
    cpu_count=8,
    python="/usr/bin/python3.11",
    python_version="3.11",
    docker=DockerFacts(True, server_arch="x86_64", server_version="27.0"),
    qemu_user={"x86_64": "/usr/bin/qemu-x86_64-static", "aarch64": "/usr/bin/qemu-aarch64-static"},
    binfmt=frozenset({"aarch64"}),
)
LINUX_X86_BARE = HostFacts(
    system="Linux", machine="x86_64", cpu_count=2, python="/usr/bin/python3.11", docker=NO_DOCKER
)
LINUX_ARM = HostFacts(
    system="Linux",
    machine="aarch64",
    cpu_count=4,
    python="/usr/bin/python3.11",
    docker=DockerFacts(True, server_arch="aarch64"),
    qemu_user={"aarch64": "/usr/bin/qemu-aarch64"},
)
MAC_M1 = HostFacts(
    system="Darwin",
    machine="aarch64",
    cpu_count=10,
    python="/opt/homebrew/bin/python3.11",
    apple_silicon=True,
    rosetta=True,
    docker=DockerFacts(False, "Error while fetching server API version"),
)
MAC_DOCKER_DESKTOP = HostFacts(
    system="Darwin",
    machine="aarch64",
    cpu_count=10,
    python="/opt/homebrew/bin/python3.11",
    apple_silicon=True,
    docker=DockerFacts(True, server_arch="aarch64", desktop=True),
)
ALL_HOSTS = {
    "linux-x86": LINUX_X86,
    "linux-x86-bare": LINUX_X86_BARE,
    "linux-arm": LINUX_ARM,
    "mac-m1": MAC_M1,
    "mac-docker-desktop": MAC_DOCKER_DESKTOP,
}


@pytest.fixture(scope="module")
def config() -> MatrixConfig:
    return parse(CONFIG, Path("ci/matrix.yaml"))


def by_id(planned: list[PlannedLane]) -> dict[str, PlannedLane]:
    return {p.lane.id: p for p in planned}


def test_every_lane_is_planned_in_config_order(config: MatrixConfig) -> None:
    for host in ALL_HOSTS.values():
        planned = plan(config, host)
        assert [p.lane.id for p in planned] == [ln.id for ln in config.lanes]


@pytest.mark.parametrize("host_name", list(ALL_HOSTS))
def test_a_skipped_lane_always_has_a_reason_and_a_hint(config: MatrixConfig, host_name: str) -> None:
    for p in plan(config, ALL_HOSTS[host_name]):
        assert p.runs == p.availability.ok
        if not p.runs:
            assert p.availability.reason, p
            assert p.availability.hint, p


def test_linux_x86_64_host_runs_host_and_same_arch_qemu_lanes(config: MatrixConfig) -> None:
    planned = by_id(plan(config, LINUX_X86))
    assert planned["host"].runs
    assert planned["host"].availability.reason == "native"
    noavx = planned["linux-x86_64-noavx"]
    assert noavx.runs
    # the emulator as the facts record it (-static stripped) and the profile's CPU model
    assert noavx.availability.reason == "emulated: qemu-x86_64 -cpu Westmere"
    assert planned["linux-x86_64-v3"].availability.reason == "emulated: qemu-x86_64 -cpu Haswell"
    graviton = planned["graviton3"]  # a custom profile from cpu_profiles:, for another architecture
    assert not graviton.runs
    assert "CPU profile 'graviton3' is aarch64 but this host is x86_64" in graviton.availability.reason
    assert "linux-arm64-docker" in graviton.availability.hint
    assert "QEMU_CPU=neoverse-v1" in graviton.availability.hint


def test_linux_arm64_host_cannot_run_the_x86_64_cpu_lanes(config: MatrixConfig) -> None:
    planned = by_id(plan(config, LINUX_ARM))
    assert planned["host"].runs
    noavx = planned["linux-x86_64-noavx"]
    assert not noavx.runs
    assert "CPU profile 'rosetta2' is x86_64 but this host is aarch64" in noavx.availability.reason
    assert "linux-amd64-docker" in noavx.availability.hint
    assert "QEMU_CPU=Westmere" in noavx.availability.hint
    assert planned["graviton3"].runs
    assert planned["graviton3"].availability.reason == "emulated: qemu-aarch64 -cpu neoverse-v1"


def test_missing_qemu_user_is_skipped_with_the_setup_hint(config: MatrixConfig) -> None:
    noavx = by_id(plan(config, LINUX_X86_BARE))["linux-x86_64-noavx"]
    assert not noavx.runs
    assert noavx.availability.reason.startswith("qemu-user for x86_64 not found")
    assert "ci/setup-linux-host.sh" in noavx.availability.hint


def test_mac_host(config: MatrixConfig) -> None:
    planned = by_id(plan(config, MAC_M1))
    host = planned["host"]
    assert not host.runs
    assert "this host is Darwin" in host.availability.reason
    assert "macos-arm64" in host.availability.hint
    noavx = planned["linux-x86_64-noavx"]
    assert not noavx.runs
    assert "qemu-user runs Linux binaries" in noavx.availability.reason
    assert "macos-x86_64-rosetta" in noavx.availability.hint
    # an explicit interpreter makes the venv runner's lane runnable anywhere
    assert planned["host-explicit-python"].runs


def test_venv_lane_without_any_interpreter() -> None:
    cfg = parse(CONFIG, Path("ci/matrix.yaml"))
    nothing = HostFacts(system="Linux", machine="x86_64", python="")
    host = by_id(plan(cfg, nothing))["host"]
    assert not host.runs
    assert "no Python interpreter" in host.availability.reason
    assert "options.python" in host.availability.hint


# ------------------------------------------------------- docker lanes (when that runner is registered)


@pytest.fixture(scope="module")
def docker_config() -> MatrixConfig:
    if "docker" not in RUNNERS:
        pytest.skip("the docker runner is not registered yet")
    return parse(DOCKER_CONFIG, Path("ci/matrix.yaml"))


def test_docker_unreachable_on_a_mac_says_start_docker_desktop(docker_config: MatrixConfig) -> None:
    for p in plan(docker_config, MAC_M1):
        assert not p.runs
        assert p.availability.reason.startswith("docker daemon not reachable: ")
        assert "Error while fetching server API version" in p.availability.reason
        assert "start Docker Desktop" in p.availability.hint


def test_docker_on_linux_x86_64(docker_config: MatrixConfig) -> None:
    planned = by_id(plan(docker_config, LINUX_X86))
    assert planned["linux-amd64-docker"].runs
    assert planned["linux-arm64-docker"].runs  # binfmt has aarch64
    assert "qemu" in planned["linux-arm64-docker"].availability.reason.lower()
    bare = by_id(plan(docker_config, LINUX_X86_BARE))
    assert not bare["linux-arm64-docker"].runs
    assert bare["linux-arm64-docker"].availability.hint


def test_docker_without_binfmt_cannot_run_the_foreign_platform(docker_config: MatrixConfig) -> None:
    host = HostFacts(
        system="Linux",
        machine="x86_64",
        python="/usr/bin/python3",
        docker=DockerFacts(True, server_arch="x86_64"),
    )
    planned = by_id(plan(docker_config, host))
    assert planned["linux-amd64-docker"].runs
    arm = planned["linux-arm64-docker"]
    assert not arm.runs
    assert "aarch64" in arm.availability.reason
    assert arm.availability.hint


def test_docker_desktop_runs_both_platforms(docker_config: MatrixConfig) -> None:
    assert all(p.runs for p in plan(docker_config, MAC_DOCKER_DESKTOP))


# ---------------------------------------------------------------- selection and parallelism


def test_only_selects_lanes_in_config_order(config: MatrixConfig) -> None:
    planned = plan(config, LINUX_X86, only=["linux-x86_64-noavx", "host"])
    assert [p.lane.id for p in planned] == ["host", "linux-x86_64-noavx"]
    assert [p.lane.id for p in plan(config, LINUX_X86, only=["graviton3"])] == ["graviton3"]
    # an empty selection means every lane
    assert len(plan(config, LINUX_X86, only=[])) == len(config.lanes)


def test_only_with_an_unknown_lane_suggests(config: MatrixConfig) -> None:
    with pytest.raises(ConfigError) as info:
        plan(config, LINUX_X86, only=["host", "linux-x86_64-noavxx"])
    message = str(info.value)
    assert message.startswith("ci/matrix.yaml: no lane 'linux-x86_64-noavxx'")
    assert "(perhaps you meant 'linux-x86_64-noavx'?)" in message


def test_only_with_nothing_close_gives_no_suggestion(config: MatrixConfig) -> None:
    with pytest.raises(ConfigError) as info:
        plan(config, LINUX_X86, only=["windows-arm64"])
    assert "perhaps" not in str(info.value)


@pytest.mark.parametrize(
    ("configured", "cores", "runnable", "expected"),
    [
        (None, 8, 3, 3),  # one per core, never more than there are lanes
        (None, 2, 5, 2),  # never more than the cores
        (2, 16, 5, 2),  # the config's choice wins
        (4, 1, 3, 3),  # ... but still no more than the lanes
        (None, 0, 3, 1),  # unknown core count
        (None, 8, 0, 1),  # nothing to run: still a valid pool size
    ],
)
def test_parallelism(configured: int | None, cores: int, runnable: int, expected: int) -> None:
    text = CONFIG + (f"parallel: {configured}\n" if configured else "")
    cfg = parse(text, Path("ci/matrix.yaml"))
    host = HostFacts(system="Linux", machine="x86_64", cpu_count=cores)
    assert parallelism(cfg, host, runnable) == expected
