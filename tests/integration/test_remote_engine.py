"""The Docker lanes on another engine, one that shares none of this machine's files (issue 20).

The test starts a second Docker daemon of its own — its own data root, exec
root and socket, no bridge network — inside its own mount namespace, where
``/tmp`` and the directory that holds this checkout are empty tmpfs: no path
the client uses (the results directory, ``.archmatrix/``, the staged wheels)
exists for that engine, as none would on another machine. ``linux-amd64-docker``
and ``linux-arm64-docker`` run on it through ``docker_host``; every check must
pass and the result files must have the shape of a run on the local engine.
Then the daemon is stopped and nothing of it is left: no process, no mount, no
socket, no data root.

The base images reach the second engine the way archmatrix gives them to any
engine without them: moved from the local engine through both APIs (or, on a
host without them, built through the second engine's API); the progress lines
say what that cost, and the test prints them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require
from second_engine import engine_processes, mounts_naming, second_engine

from archmatrix import config
from archmatrix.hostfacts import detect
from archmatrix.suite.result import LaneResult, load

DOCKER_LANES = ("linux-amd64-docker", "linux-arm64-docker")
DEFAULT_CONFIG = ROOT / "ci" / "matrix.yaml"
CLI_TIMEOUT = 3600  # a host without base images builds them first (arm64: minutes under QEMU)
CHECK_TIMEOUT = 900


@pytest.fixture(scope="module")
def facts() -> Any:
    host = detect()
    require(host.docker.reachable,
            f"docker daemon not reachable ({host.docker.error}): ci/setup-linux-host.sh")
    server = host.docker.server_arch or host.machine
    require(server == "aarch64" or "aarch64" in host.binfmt,
            f"no qemu-aarch64 binfmt handler on this {server} host: ci/setup-linux-host.sh")
    require(os.geteuid() == 0, "a second Docker daemon needs root")
    require(shutil.which("dockerd") is not None and shutil.which("unshare") is not None,
            "dockerd and unshare are needed for a second engine: ci/setup-linux-host.sh")
    return host


def write_config(path: Path, docker_host: str) -> Path:
    """ci/matrix.yaml's two Docker lanes, their lock kept as written; ``docker_host`` "" keeps the default."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["lanes"] = [lane for lane in data["lanes"] if lane["id"] in DOCKER_LANES]
    assert [lane["id"] for lane in data["lanes"]] == list(DOCKER_LANES), "ci/matrix.yaml lost a Docker lane"
    if docker_host:
        for lane in data["lanes"]:
            lane["options"]["docker_host"] = docker_host
    # This test is about where the lanes run, not how fast: on a machine loaded by other work an
    # emulated `import sklearn` has taken more than ci/matrix.yaml's 180 s (both runs get the same)
    data["checks"]["timeout"] = CHECK_TIMEOUT
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    config.load(path)  # a config error here is the test's fault: say so before running anything
    return path


def run(cfg: Path, results: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # without the performance probes: this test is about where the lanes run, and the probes
        # (timing loops) under QEMU are the slowest part of a lane without telling anything about it
        archmatrix_argv("matrix", "--config", str(cfg), "--results", str(results), "--workdir", str(workdir),
                        "--no-probes"),
        env=python_env(), cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )


def shape(value: Any) -> Any:
    """A result file's structure: its keys all the way down, with the type of every value."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return ["list", sorted({repr(shape(item)) for item in value})]
    return type(value).__name__


def raw(path: Path) -> dict[str, Any]:
    import json

    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def not_passed(lane: LaneResult) -> dict[str, tuple[str, str]]:
    return {c.id: (c.outcome.value, c.message) for c in lane.checks if c.outcome.value != "pass"}


def test_docker_lanes_run_on_a_second_engine_that_shares_no_files(
    facts: Any, tmp_path: Path, workdir: Path
) -> None:
    local_results, remote_results = tmp_path / "local", tmp_path / "remote"
    local = run(write_config(tmp_path / "local.yaml", ""), local_results, workdir)
    assert local.returncode == 0, local.stderr[-4000:]

    with second_engine() as engine:
        import docker

        client = docker.DockerClient(base_url=engine.url, timeout=600)
        assert client.info()["DockerRootDir"] == str(engine.root / "data")
        assert not mounts_naming(engine.root), "the engine's mounts leaked into the host's namespace"

        started = time.monotonic()
        remote = run(write_config(tmp_path / "remote.yaml", engine.url), remote_results, workdir)
        took = time.monotonic() - started
        print(f"\nremote run on {engine.url}: {took:.0f} s; its engine and base-image lines:")
        for line in remote.stderr.splitlines():
            if "engine:" in line or "archmatrix-base" in line or "running " in line:
                print("   ", line)
        assert remote.returncode == 0, remote.stderr[-4000:] + "\n--- dockerd ---\n" + engine.log_tail()
        assert f"engine: docker_host {engine.url}" in remote.stderr

        for lane_id in DOCKER_LANES:
            here, there = load(local_results / f"{lane_id}.json"), load(remote_results / f"{lane_id}.json")
            assert there.status == "ran", (lane_id, there.reason)
            assert not_passed(there) == {}, lane_id
            assert [c.id for c in there.checks] == [c.id for c in here.checks], lane_id
            assert there.facts["runner"]["docker_engine"] == f"docker_host {engine.url}"
            assert there.facts["runner"]["image"] == here.facts["runner"]["image"]  # the same lane image
            # the same file, key for key and type for type, but the engine's name
            there_raw = raw(remote_results / f"{lane_id}.json")
            there_raw["facts"]["runner"].pop("docker_engine")
            assert shape(there_raw) == shape(raw(local_results / f"{lane_id}.json")), lane_id

        # the engine really cannot see the client's files: the results directory, bind-mounted, is empty there
        base = str(load(remote_results / "linux-amd64-docker.json").facts["runner"]["base_image"])
        seen = client.containers.run(base, ["python3", "-c", "import os; print(sorted(os.listdir('/seen')))"],
                                     volumes={str(remote_results): {"bind": "/seen", "mode": "ro"}},
                                     network_mode="none", init=True, remove=True)
        client.close()
        assert seen.decode().strip() == "[]" and any(remote_results.iterdir())

        arm = load(remote_results / "linux-arm64-docker.json").facts
        amd = load(remote_results / "linux-amd64-docker.json").facts
        assert arm["machine"] == "aarch64" and amd["machine"] == "x86_64"
        if (facts.docker.server_arch or facts.machine) == "x86_64":  # the second engine is this machine
            assert str(arm["emulation"]["emulator"]).startswith("qemu-aarch64"), arm["emulation"]
            assert amd["emulation"]["emulator"] is None

        root = engine.root
        pid = engine.proc.pid

    # stopped, and nothing is left of it
    assert engine.proc.returncode is not None
    assert not Path(f"/proc/{pid}").exists()
    assert engine_processes(root) == []
    assert mounts_naming(root) == []
    assert not root.exists(), sorted(str(p) for p in root.iterdir())
