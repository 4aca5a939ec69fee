"""What an installed archmatrix needs from its own package: ``python -m archmatrix``, package data,
and a Docker lane command that names the suite module once (no entrypoint to strip arguments for)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from docker.errors import DockerException

from archmatrix import __version__, config, resources
from archmatrix.hostfacts import HostFacts
from archmatrix.runners import LaneJob
from archmatrix.runners.base import LaneInfraError
from archmatrix.runners.common import SUITE_MODULE, run_prepared, suite_args
from archmatrix.runners.docker import LANE_PYTHON, DockerRunner, lane_dockerfile

CONFIG = """\
lock:
  python: "3.11"
  packages: {numpy: "2.4.6"}
lanes:
  - {id: linux-arm64-docker, runner: docker, options: {platform: linux/arm64}}
"""


def test_python_dash_m_archmatrix_is_the_command(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "archmatrix", "--version"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"archmatrix {__version__}"


def test_the_lane_dockerfile_is_package_data_with_no_entrypoint() -> None:
    text = resources.read_text("lane.Dockerfile")
    assert text == lane_dockerfile()
    assert "FROM ${BASE}" in text
    # the runner gives the whole command; an ENTRYPOINT would run the suite twice over
    assert not [line for line in text.splitlines() if line.lstrip().upper().startswith("ENTRYPOINT")]


def test_a_missing_resource_is_an_oserror() -> None:
    with pytest.raises(OSError):
        resources.read_text("no-such-file")


def test_the_container_command_is_the_interpreter_and_the_suites_whole_argv(tmp_path: Path) -> None:
    (tmp_path / "matrix.yaml").write_text(CONFIG)
    cfg = config.load(tmp_path / "matrix.yaml")
    job = LaneJob(config=cfg, lane=cfg.lane("linux-arm64-docker"),
                  host=HostFacts(system="Linux", machine="x86_64"), workdir=tmp_path / "work",
                  out=tmp_path / "out.json", progress=lambda line: None)
    seen: dict[str, Any] = {}

    class Containers:
        def run(self, image: str, command: list[str], **kwargs: Any) -> None:
            seen.update(image=image, command=command, **kwargs)
            raise DockerException("recorded; no container here")

    class Client:
        containers = Containers()

    launch = DockerRunner().launch(Client(), job, "archmatrix-lane:x", "linux/arm64",  # type: ignore[arg-type]
                                   "qemu-aarch64 (binfmt)", "cortex-a72")
    with pytest.raises(LaneInfraError):
        run_prepared(job, launch)
    # the result is written inside the container and copied out through the engine's API
    args = suite_args(job, "/tmp/linux-arm64-docker.json", emulator="qemu-aarch64 (binfmt)",
                      cpu_model="cortex-a72", user_checks=(),
                      self_check={"python": "3.11", "profile": "", "absent": []})
    # the staged venv's interpreter inside the image: sys.prefix is the lane's environment
    assert LANE_PYTHON == "/opt/archmatrix/venv/bin/python"
    assert seen["command"] == [LANE_PYTHON, *args]
    assert seen["command"][:3] == [LANE_PYTHON, "-m", SUITE_MODULE]
    assert seen["command"].count(SUITE_MODULE) == 1
    assert seen["environment"] == {"PYTHONFAULTHANDLER": "1", "QEMU_CPU": "cortex-a72"}
    # nothing of this machine is mounted: the engine may be another machine (issue 20)
    assert not seen.get("volumes") and not seen.get("mounts")
