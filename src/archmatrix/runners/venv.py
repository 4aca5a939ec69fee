"""The ``venv`` runner: the suite in a venv made for an interpreter on this host.

The lock's wheels for this host's platform are staged once into a
content-addressed site-packages (the same staging the foreign lanes use), and
a venv without pip points at it through a ``.pth`` file. The venv does not
see the interpreter's own site-packages, so what runs is exactly the lock.

``lock.wheels`` (local wheel files: bring your own package) are staged the
same way into a second content-addressed directory that the ``.pth`` adds
too (:mod:`archmatrix.staging.lock`). The qemu runner reuses all of this:
same staging, same venv; the docker runner the same staging.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from ..command import CommandError, run
from ..hostfacts import HostFacts
from ..model import LaneConfig, LaneTarget
from ..staging.store import publish_dir
from .base import Availability, LaneInfraError, LaneJob, Launch, Option
from .common import lane_env, stage_job_lock, stage_job_suite

VENV_MARKER = ".archmatrix-complete"


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


def make_venv(python: str, root: Path, site_packages: Path, *extra_sites: Path) -> Path:
    """A pip-less venv for ``python`` whose only packages are ``site_packages`` (and
    ``extra_sites``); returns its python.

    Published by :func:`~archmatrix.staging.store.publish_dir`, so two lanes
    sharing it (host and qemu) never see, or ``--clear``, a half-made venv.
    """
    sites = [site_packages, *extra_sites]
    key = hashlib.sha256("\0".join([python, *map(str, sites)]).encode()).hexdigest()[:16]
    venv = root / key

    def build(tmp: Path) -> None:
        # the venv finds its prefix from its own location: building it elsewhere and moving it is fine
        run([python, "-m", "venv", "--without-pip", tmp])
        probe = "import sysconfig; print(sysconfig.get_path('purelib'))"
        purelib = run([tmp / "bin" / "python", "-c", probe]).stdout
        # addsitedir (not a bare path line) so the staged packages' own .pth files work too
        Path(purelib.strip(), "archmatrix-lock.pth").write_text(
            "".join(f"import site; site.addsitedir({str(site)!r})\n" for site in sites)
        )
        (tmp / VENV_MARKER).write_text("ok\n")

    publish_dir(venv, build, marker=VENV_MARKER)
    return venv / "bin" / "python"


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
        staged = stage_job_lock(job, job.host.machine, host_glibc())
        job.progress("preparing the venv")
        bin_python = make_venv(python, job.workdir / "venvs", *staged.sites)
        suite_root, user_checks = stage_job_suite(job)
        env, removed = lane_env(os.environ, suite_root)
        return Launch(prefix=[str(bin_python)], env=env, env_removed=tuple(removed), staging=staged.staging,
                      user_checks=user_checks, facts={"python": python, "venv": str(bin_python)})
