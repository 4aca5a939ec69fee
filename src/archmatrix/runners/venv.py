"""The ``venv`` runner: the suite in a venv made for an interpreter on this host.

The lock's wheels for this host's platform (and ``lock.wheels``, the user's
own) are installed once into a content-addressed venv without pip, as
``pip install`` lays them out in a venv: site-packages, and ``lib/``,
``share/``, ``include/``, ``bin/`` with the wheels' data, headers and scripts
(:mod:`archmatrix.staging.lock`). The venv does not see the interpreter's own
site-packages, so what runs is exactly the lock. The qemu runner reuses the
same venv; the docker runner the same staging, for a prefix inside its image.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from typing import ClassVar

from ..command import CommandError, run
from ..hostfacts import HostFacts
from ..model import LaneConfig, LaneTarget
from ..staging.lock import StagedLock
from ..staging.prefix import PrefixSpec
from .base import Availability, LaneInfraError, LaneJob, Launch, Option
from .common import lane_env, stage_job_lock, stage_job_suite


def wanted_python(lane: LaneConfig, host: HostFacts) -> str:
    """The Python (major.minor) the lane must run: the lock's (a hand-built lane: archmatrix's own)."""
    return (lane.target.python if lane.target else "") or host.python_version


def lane_interpreter(lane: LaneConfig, host: HostFacts) -> str | None:
    """The interpreter the lane's venv is made from: ``options.python``, else this host's Python of the
    lock's version (archmatrix's own when it is that version, else one found on the host)."""
    if lane.options.get("python"):
        return str(lane.options["python"])
    wanted = wanted_python(lane, host)
    found = host.interpreter(wanted) if wanted else None
    if found is None and not host.python_version:
        # archmatrix's own version is unknown (facts built by hand): its interpreter, checked before staging
        found = host.python or None
    return found


def no_interpreter(lane: LaneConfig, host: HostFacts) -> Availability | None:
    """Why the lane has no interpreter of the lock's version (with the exact fix), or None."""
    if lane_interpreter(lane, host):
        return None
    wanted = wanted_python(lane, host)
    if not wanted or not (host.python or host.interpreters):
        return Availability.no("no Python interpreter to build the venv from",
                               "set lanes[].options.python to an interpreter path")
    return Availability.no(
        f"no Python {wanted} on this host for the lock (archmatrix runs on Python {host.python_version}; "
        f"looked for python{wanted} on PATH, in pyenv and uv): wheels for {wanted} would not load",
        f"install Python {wanted} (pyenv install {wanted}; uv python install {wanted}; or the "
        f"distribution's python{wanted}), or set lanes[].options.python to one",
    )


def check_interpreter(python: str, wanted: str) -> None:
    """Before staging: the interpreter is the lock's version (an explicit ``options.python`` may not be)."""
    if not wanted:
        return
    try:
        out = run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=60)
    except CommandError as exc:
        raise LaneInfraError(f"the lane's interpreter {python} does not start: {exc}",
                             "set lanes[].options.python to a working interpreter") from exc
    have = out.stdout.strip()
    if have != wanted:
        raise LaneInfraError(f"the lane's interpreter {python} is Python {have}, the lock is for {wanted}",
                             f"set lanes[].options.python to a Python {wanted} interpreter")


def host_glibc() -> tuple[int, int]:
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return (2, 17)
    major, minor = version.split(".")[:2]
    return (int(major), int(minor))


def host_prefix(python: str, lock_python: str) -> PrefixSpec:
    """The lane's environment is a venv of ``python`` (a host interpreter), used where it is staged."""
    return PrefixSpec(lock_python, python)


def make_venv(job: LaneJob, python: str, arch: str) -> StagedLock:
    """The lane's venv for ``python``: the lock (and ``lock.wheels``) installed into it as ``pip install``
    would, its ``bin/python`` the lane's interpreter (``sys.prefix`` is the venv).

    Staged and published by :mod:`archmatrix.staging` (content-addressed), so two lanes
    sharing it (host and qemu) never see a half-made venv.
    """
    wanted = wanted_python(job.lane, job.host) or job.lock.python
    return stage_job_lock(job, arch, host_glibc(), host_prefix(python, wanted))


class VenvRunner:
    name: ClassVar[str] = "venv"
    options: ClassVar[Mapping[str, Option]] = {"python": Option(str)}

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        return LaneTarget()  # the host as it is: its OS, its architecture, its CPU

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability:
        missing = no_interpreter(lane, host)
        if missing is not None:
            return missing
        if not host.is_linux and not lane.options.get("python"):
            # wheels are staged by manylinux tag; macOS hosts use the macos runner
            return Availability.no(f"the venv runner stages manylinux wheels; this host is {host.system}",
                                   "use the macos-arm64 lane on a Mac")
        return Availability.yes("native")

    def prepare(self, job: LaneJob) -> Launch:
        python = lane_interpreter(job.lane, job.host)
        if python is None:  # the planner only runs available lanes
            missing = no_interpreter(job.lane, job.host) or Availability.no("no interpreter")
            raise LaneInfraError(missing.reason, missing.hint)
        check_interpreter(python, wanted_python(job.lane, job.host))
        staged = make_venv(job, python, job.host.machine)
        bin_python = staged.python
        suite_root, user_checks = stage_job_suite(job)
        env, removed = lane_env(os.environ, suite_root)
        return Launch(prefix=[str(bin_python)], env=env, env_removed=tuple(removed), staging=staged.staging,
                      user_checks=user_checks, facts={"python": python, "venv": str(bin_python)})
