"""The ``venv`` runner: the suite in a venv made for an interpreter on this host.

The lock's wheels for this host's platform are staged once into a
content-addressed site-packages (the same staging the foreign lanes use), and
a venv without pip points at it through a ``.pth`` file. The venv does not
see the interpreter's own site-packages, so what runs is exactly the lock.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from ..command import run
from ..config import LaneConfig
from ..hostfacts import HostFacts
from ..suite.result import LaneResult
from ..wheels import StagingError, stage_site_packages, staging_key
from .base import Availability, LaneInfraError, LaneJob
from .common import execute_suite, finish, stage_suite, suite_args


def host_glibc() -> tuple[int, int]:
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return (2, 17)
    major, minor = version.split(".")[:2]
    return (int(major), int(minor))


def make_venv(python: str, root: Path, site_packages: Path) -> Path:
    """A pip-less venv for ``python`` whose only packages are ``site_packages``; returns its python."""
    key = hashlib.sha256(f"{python}\0{site_packages}".encode()).hexdigest()[:16]
    venv = root / key
    bin_python = venv / "bin" / "python"
    marker = venv / ".archmatrix-complete"
    if not marker.exists():
        run([python, "-m", "venv", "--clear", "--without-pip", venv])
        purelib = run([bin_python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout
        # addsitedir (not a bare path line) so the staged packages' own .pth files work too
        Path(purelib.strip(), "archmatrix-lock.pth").write_text(
            f"import site; site.addsitedir({str(site_packages)!r})\n"
        )
        marker.write_text("ok\n")
    return bin_python


class VenvRunner:
    name: ClassVar[str] = "venv"
    options: ClassVar[Mapping[str, type]] = {"python": str}

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability:
        python = str(lane.options.get("python") or host.python)
        if not python:
            return Availability.no("no Python interpreter to build the venv from",
                                   "set lanes[].options.python to an interpreter path")
        if not host.is_linux and not lane.options.get("python"):
            # wheels are staged by manylinux tag; macOS hosts use the macos runner
            return Availability.no(f"the venv runner stages manylinux wheels; this host is {host.system}",
                                   "use the macos-arm64 lane on a Mac")
        return Availability.yes("native")

    def run(self, job: LaneJob) -> LaneResult:
        python = str(job.lane.options.get("python") or sys.executable)
        arch = job.host.machine
        glibc = host_glibc()
        lock = job.config.lock
        dest = job.workdir / "site-packages" / f"{arch}-{staging_key(lock, arch, glibc)}"
        job.progress(f"staging the lock for {arch} (glibc {glibc[0]}.{glibc[1]})")
        try:
            staging = stage_site_packages(lock, arch, glibc, dest, wheel_cache=job.workdir / "wheels")
        except StagingError as exc:
            raise LaneInfraError(f"could not stage the lock: {exc}") from exc
        job.progress("preparing the venv")
        bin_python = make_venv(python, job.workdir / "venvs", staging.site_packages)
        suite_root = stage_suite(job.workdir)
        env = {**os.environ, "PYTHONPATH": str(suite_root)}
        job.progress("running the suite")
        result = execute_suite(job, [bin_python, *suite_args(job, str(job.out))], env=env)
        return finish(job, result, staging=staging, facts={"python": python, "venv": str(bin_python)})
