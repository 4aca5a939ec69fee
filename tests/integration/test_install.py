"""archmatrix as a user gets it: ``pip install .`` (not editable) into a fresh venv.

Then that venv's ``archmatrix matrix`` runs from a directory that is not the
source checkout, with no ``PYTHONPATH``: whatever a lane needs (the lane
Dockerfile, the staged suite) must come from the installed package, not from
files that happen to lie next to the source. The config is ci/matrix.yaml's
lock and every one of its lanes (copied, never retyped) with only the import
checks and no probes, so the run stays cheap; the repository's ``.archmatrix``
cache is reused for staged wheels (it holds nothing of archmatrix's own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, require

from archmatrix import config, hostfacts
from archmatrix.plan import plan

pytestmark = pytest.mark.integration

DEFAULT_CONFIG = ROOT / "ci" / "matrix.yaml"
LINUX_LANES = ("host", "linux-amd64-docker", "linux-arm64-docker", "linux-x86_64-noavx",
               "linux-x86_64-rosetta15")
MACOS_LANES = ("macos-arm64", "macos-x86_64-rosetta")
SELECT = ["lane.self", "import.*"]  # the self-check proves each lane is what it claims
CLI_TIMEOUT = 3600  # a new machine builds both base images first (arm64: minutes under QEMU)


def write_config(path: Path) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    assert [lane["id"] for lane in data["lanes"]] == [*LINUX_LANES, *MACOS_LANES], \
        "ci/matrix.yaml's lanes changed: update this test"
    data["checks"]["select"] = SELECT
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def installed_venv(venv: Path, python: str = sys.executable) -> Path:
    """A fresh venv of ``python`` with archmatrix installed from this checkout as a wheel; its bin/."""
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / "bin"
    proc = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
         str(ROOT)],
        env=clean_env(), cwd=venv, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return bin_dir


def clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH: the installed package or nothing."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_a_non_editable_install_runs_every_linux_lane(tmp_path: Path, workdir: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing can be found relative to it
    elsewhere.mkdir()
    cfg_path = write_config(elsewhere / "matrix.yaml")
    planned = {p.lane.id: p.availability for p in plan(config.load(cfg_path), hostfacts.detect())}
    for lane_id in LINUX_LANES:
        require(planned[lane_id].ok, f"{lane_id} cannot run here: {planned[lane_id].reason} "
                                     f"({planned[lane_id].hint})")

    bin_dir = installed_venv(tmp_path / "venv")
    # the package it runs is the installed one, not the checkout's src/
    where = subprocess.run([str(bin_dir / "python"), "-c", "import archmatrix; print(archmatrix.__file__)"],
                           env=clean_env(), cwd=elsewhere, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv"), where.stdout

    proc = subprocess.run(
        [str(bin_dir / "archmatrix"), "matrix", "--config", "matrix.yaml", "--no-probes",
         "--workdir", str(workdir)],
        env=clean_env(), cwd=elsewhere, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    matrix = json.loads((elsewhere / "results" / "matrix.json").read_text())
    lanes = {lane["lane"]: lane for lane in matrix["lanes"]}
    assert set(lanes) == {*LINUX_LANES, *MACOS_LANES}
    for lane_id in LINUX_LANES:
        lane = lanes[lane_id]
        assert lane["status"] == "ran", (lane_id, lane["status"], lane["reason"], lane["hint"])
        outcomes = {check["id"]: check["outcome"] for check in lane["checks"]}
        wanted = {"lane.self", "import.numpy", "import.scipy", "import.sklearn"}
        assert wanted <= set(outcomes), (lane_id, outcomes)
        assert set(outcomes.values()) == {"pass"}, (lane_id, outcomes)
    for lane_id in MACOS_LANES:
        assert lanes[lane_id]["status"] == "skipped" and lanes[lane_id]["reason"], lanes[lane_id]


def test_from_a_python_312_interpreter_the_lanes_run_the_locks_311(tmp_path: Path, workdir: Path) -> None:
    """Ubuntu 24.04's python3 is 3.12: the 3.11 lock must still run on 3.11, never on 3.12 (import-error)."""
    lock_python = yaml.safe_load(DEFAULT_CONFIG.read_text())["lock"]["python"]
    found = hostfacts.find_interpreters()
    other = next((v for v in ("3.12", "3.13") if v != lock_python and v in found), None)
    require(other is not None, f"needs a Python other than the lock's {lock_python} (3.12 or 3.13) here")
    require(lock_python in found, f"needs a Python {lock_python} on this host for the lanes")
    assert other is not None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_config(elsewhere / "matrix.yaml")
    bin_dir = installed_venv(tmp_path / "venv", found[other])
    proc = subprocess.run(
        [str(bin_dir / "archmatrix"), "matrix", "--config", "matrix.yaml", "--no-probes", "--workdir",
         str(workdir), "--lane", "host", "--lane", "linux-x86_64-noavx"],
        env=clean_env(), cwd=elsewhere, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    merged = json.loads((elsewhere / "results" / "matrix.json").read_text())
    lanes = {lane["lane"]: lane for lane in merged["lanes"]}
    for lane_id in ("host", "linux-x86_64-noavx"):
        lane = lanes[lane_id]
        assert lane["status"] == "ran", (lane_id, lane["reason"])
        assert lane["facts"]["python"]["version"].startswith(f"{lock_python}."), lane["facts"]["python"]
        outcomes = {c["id"]: c["outcome"] for c in lane["checks"]}
        assert set(outcomes.values()) == {"pass"} and "import.numpy" in outcomes, (lane_id, outcomes)
