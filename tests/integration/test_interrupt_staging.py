"""Ctrl-C / SIGTERM while a lane is still staging a cold lock (issue 16).

Before: the lane went on staging, ran its whole suite and rewrote its result
as ``ran`` ~25 s later, contradicting ``matrix.json`` ("interrupted, 0 checks").
Now the lane's pip is stopped with its process group: exit 130 within 3 s,
the lane's file and matrix.json agree, and no process or container is left.

Cold for real: a fresh ``--workdir`` and a fresh pip cache, so the lock's
wheels are downloaded while the signal arrives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix.hostfacts import detect

SHIPPED = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())


def write_config(path: Path, lane_id: str) -> Path:
    lanes = [lane for lane in SHIPPED["lanes"] if lane["id"] == lane_id]
    assert lanes, f"ci/matrix.yaml has no lane {lane_id}"
    path.write_text(yaml.safe_dump({"lock": SHIPPED["lock"], "lanes": lanes}, sort_keys=False))
    return path


def containers() -> set[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command,lane_id", [(("lane", "host"), "host"),
                                             (("matrix",), "linux-amd64-docker")],
                         ids=["lane-host", "matrix-docker"])
def test_signal_while_staging_a_cold_lock_stops_at_once(
    tmp_path: Path, sig: signal.Signals, command: tuple[str, ...], lane_id: str
) -> None:
    if lane_id != "host":
        facts = detect()
        require(facts.docker.reachable, f"docker daemon not reachable ({facts.docker.error})")
    cfg = write_config(tmp_path / "matrix.yaml", lane_id)
    results, workdir = tmp_path / "results", tmp_path / "workdir"
    before = containers() if lane_id != "host" else set()
    env = {**python_env(), "PIP_CACHE_DIR": str(tmp_path / "pip-cache")}  # nothing cached: pip downloads
    proc = subprocess.Popen(
        archmatrix_argv(*command, "--config", str(cfg), "--results", str(results), "--workdir", str(workdir)),
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # the signal reaches archmatrix only, as a CI cancel's would
    )
    lines: list[str] = []
    staging = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "staging the lock" in line:
                staging.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert staging.wait(120), "".join(lines)
        time.sleep(1.0)  # pip is downloading now
        signalled = time.monotonic()
        os.kill(proc.pid, sig)
        proc.communicate(timeout=60)
        stopped_after = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(5)
    log = "".join(lines)
    assert proc.returncode == 130, log[-3000:]
    assert stopped_after < 3, f"took {stopped_after:.1f} s\n{log[-3000:]}"
    time.sleep(1.0)  # anything left behind would still be running now
    lane = json.loads((results / f"{lane_id}.json").read_text())
    merged = {entry["lane"]: entry for entry in json.loads((results / "matrix.json").read_text())["lanes"]}
    assert lane["status"] == "interrupted", lane
    assert merged[lane_id]["status"] == lane["status"]
    assert len(merged[lane_id]["checks"]) == len(lane["checks"]) == 0  # no suite ran
    assert subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout == ""
    if lane_id != "host":
        assert containers() == before
