"""Stopping a matrix run: every running lane is interrupted, keeps what it finished, leaves nothing behind.

A CI cancel or ``kill`` signals archmatrix alone, not its process group, and
a container never gets the terminal's Ctrl-C anyway: the matrix itself must
interrupt each lane (its suite process, its qemu, its container). Four
lanes, one of each kind, run side by side until each has passed
``crashers.before`` and sits in ``crashers.hang`` (a 600 s limit); then
archmatrix gets one SIGTERM (SIGINT takes the same path in the CLI).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix.hostfacts import detect
from archmatrix.plan import plan
from archmatrix.suite.result import load

LANES = ("host", "linux-amd64-docker", "linux-arm64-docker", "linux-x86_64-noavx")
CRASHERS = ROOT / "tests" / "fixtures" / "checks" / "crashers.py"
STARTUP_TIMEOUT = 900  # a new machine stages wheels and builds images first


def write_config(path: Path) -> Path:
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    lanes = [lane for lane in shipped["lanes"] if lane["id"] in LANES]
    checks = dict(shipped.get("checks", {}), select=["crashers.before", "crashers.hang"], timeout=600,
                  user_modules=[str(CRASHERS)])
    path.write_text(yaml.safe_dump({"lock": shipped["lock"], "checks": checks, "lanes": lanes,
                                    "parallel": len(LANES)}, sort_keys=False))
    return path


def pgrep(pattern: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()


def docker_containers() -> set[str]:
    import docker

    return {c.id for c in docker.from_env().containers.list(all=True)}


def test_sigterm_interrupts_every_running_lane_and_keeps_what_finished(tmp_path: Path, workdir: Path) -> None:
    from archmatrix import config as config_mod

    cfg = write_config(tmp_path / "matrix.yaml")
    planned = plan(config_mod.load(cfg), detect())
    for p in planned:
        require(p.runs, f"lane {p.lane.id} cannot run here: {p.availability.reason}")
    containers_before = docker_containers()
    results = tmp_path / "results"
    proc = subprocess.Popen(
        archmatrix_argv("matrix", "--config", str(cfg), "--results", str(results), "--workdir", str(workdir)),
        env=python_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # signals reach archmatrix only, as a CI cancel's would
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            waiting = [ln for ln in LANES if not any(ln in x and "crashers.before" in x for x in lines)]
            if not waiting:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(STARTUP_TIMEOUT), "".join(lines[-40:])
        time.sleep(1.0)  # every lane is now inside crashers.hang
        signalled = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
        stopped_after = time.monotonic() - signalled
    finally:
        if proc.poll() is None:  # the test failed: leave nothing running for the next ones
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            _clean_up(tmp_path, containers_before)
    reader.join(5)
    log = "".join(lines)
    assert proc.returncode == 130, log[-4000:]
    assert stopped_after < 30, f"took {stopped_after:.0f} s to stop\n{log[-4000:]}"
    for lane_id in LANES:
        lane = load(results / f"{lane_id}.json")
        outcomes: dict[str, Any] = {c.id: c.outcome.value for c in lane.checks
                                    if not c.id.startswith("wheel.")}
        assert lane.status == "interrupted", (lane_id, lane.status, lane.reason, log[-3000:])
        assert outcomes == {"crashers.before": "pass"}, (lane_id, outcomes)
    assert docker_containers() == containers_before  # the lane containers are gone
    # no suite, qemu or check process of this run is left (they all ran this config)
    assert pgrep(str(cfg.parent)) + pgrep("crashers") == []


def _clean_up(tmp_path: Path, containers_before: set[str]) -> None:
    import docker

    client = docker.from_env()
    for container_id in docker_containers() - containers_before:
        client.containers.get(container_id).remove(force=True)
    # the suite's server and check processes sit in process groups of their own
    subprocess.run(["pkill", "-KILL", "-f", str(tmp_path)], check=False)


@pytest.fixture(autouse=True)
def _docker_reachable() -> None:
    facts = detect()
    require(facts.docker.reachable, f"docker daemon not reachable ({facts.docker.error}): "
                                    "ci/setup-linux-host.sh")
