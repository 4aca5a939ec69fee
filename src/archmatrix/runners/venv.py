"""The ``venv`` runner: the suite in a venv made for an interpreter on this host.

The lock's wheels for this host's platform are staged once into a
content-addressed site-packages (the same staging the foreign lanes use), and
a venv without pip points at it through a ``.pth`` file. The venv does not
see the interpreter's own site-packages, so what runs is exactly the lock.

``lock.wheels`` (local wheel files: bring your own package) are staged the
same way into a second content-addressed directory that the ``.pth`` adds
too. A local wheel of a project the lock also pins takes its place: the lock
is staged without it (your build of numpy, not PyPI's). The qemu runner reuses
all of this: same staging, same venv; the docker runner the same staging.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion

from ..command import CommandError, run
from ..hostfacts import HostFacts
from ..model import LaneConfig, LaneTarget
from ..suite.result import LaneResult
from ..wheels import (
    MissingWheel,
    StagingError,
    StagingResult,
    platform_tags,
    read_marker,
    stage_site_packages,
    staging_key,
    supported_tags,
    target_name,
)
from ..wheels import _write_marker as write_marker
from .base import Availability, LaneInfraError, LaneJob, Option
from .common import execute_suite, finish, lane_env, stage_job_suite, suite_args


def host_glibc() -> tuple[int, int]:
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return (2, 17)
    major, minor = version.split(".")[:2]
    return (int(major), int(minor))


def make_venv(python: str, root: Path, site_packages: Path, *extra_sites: Path) -> Path:
    """A pip-less venv for ``python`` whose only packages are ``site_packages`` (and
    ``extra_sites``); returns its python.

    Built in a temporary sibling and renamed into place, so two lanes sharing
    it (host and qemu) never see, or ``--clear``, a half-made venv.
    """
    sites = [site_packages, *extra_sites]
    key = hashlib.sha256("\0".join([python, *map(str, sites)]).encode()).hexdigest()[:16]
    venv = root / key
    bin_python = venv / "bin" / "python"
    if (venv / ".archmatrix-complete").exists():
        return bin_python
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    run([python, "-m", "venv", "--without-pip", tmp])
    probe = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = run([tmp / "bin" / "python", "-c", probe]).stdout
    # addsitedir (not a bare path line) so the staged packages' own .pth files work too
    Path(purelib.strip(), "archmatrix-lock.pth").write_text(
        "".join(f"import site; site.addsitedir({str(site)!r})\n" for site in sites)
    )
    (tmp / ".archmatrix-complete").write_text("ok\n")
    try:
        os.replace(tmp, venv)  # the venv finds its prefix from its own location: moving it is fine
    except OSError:  # another lane made it first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
        if not (venv / ".archmatrix-complete").exists():
            raise
    return bin_python


@dataclass(frozen=True)
class StagedLock:
    """The lock staged for one platform: what goes on the venv's path, and the per-package rows."""

    staging: StagingResult  # lock and local wheels together (for common.wheel_checks)
    sites: tuple[Path, ...]  # site-packages directories, in path order


def stage_lock(job: LaneJob, arch: str, glibc: tuple[int, int]) -> StagedLock:
    """Stage the lock's wheels (and ``lock.wheels``) for ``arch``/``glibc`` under ``job.workdir``."""
    lock = job.config.lock
    job.progress(f"staging the lock for {arch} (glibc {glibc[0]}.{glibc[1]})")
    try:
        files = local_wheel_files(lock.wheels, job.config.path.parent)
        # a project the user brings as a local wheel is not also staged from the lock
        replaced = local_projects(files)
        if replaced:
            kept = {n: v for n, v in lock.packages.items() if canonicalize_name(n) not in replaced}
            lock = dataclasses.replace(lock, packages=kept)
        dest = job.workdir / "site-packages" / f"{arch}-{staging_key(lock, arch, glibc)}"
        staging = stage_site_packages(lock, arch, glibc, dest, wheel_cache=job.workdir / "wheels")
        local = stage_local_wheels(files, lock.python, arch, glibc, job.workdir) if files else None
    except StagingError as exc:
        raise LaneInfraError(f"could not stage the lock: {exc}") from exc
    if local is None:
        return StagedLock(staging, (staging.site_packages,))
    merged = StagingResult(
        site_packages=staging.site_packages,
        installed={**staging.installed, **local.installed},
        missing=[*staging.missing, *local.missing],
        wheels=[*staging.wheels, *local.wheels],
        from_cache=staging.from_cache and local.from_cache,
        key=staging.key,
    )
    return StagedLock(merged, (staging.site_packages, local.site_packages))


def local_wheel_files(entries: Sequence[str], base: Path) -> list[Path]:
    """``lock.wheels`` entries (files or directories of wheels, relative to the config) → wheel files."""
    files: list[Path] = []
    for entry in entries:
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else base / path
        if path.is_dir():
            files += sorted(path.glob("*.whl"))
        elif path.is_file() and path.suffix == ".whl":
            files.append(path)
        else:
            raise StagingError(f"lock.wheels: {entry} is neither a .whl file nor a directory ({path})")
    return files


def local_projects(files: Sequence[Path]) -> set[str]:
    """The (canonical) project names of local wheel files."""
    names = set()
    for path in files:
        try:
            names.add(str(parse_wheel_filename(path.name)[0]))
        except (InvalidWheelFilename, InvalidVersion) as exc:
            raise StagingError(f"lock.wheels: {path} is not a valid wheel file name ({exc})") from exc
    return names


def local_wheel_tags(python_version: str, arch: str, glibc: tuple[int, int]) -> list[Tag]:
    """Tags a local wheel may carry for this platform, best first.

    The lock's manylinux tags, then ``linux_<arch>``: what ``pip wheel``
    produces on the host, for an extension (``cp311-cp311-linux_x86_64``) or
    for a package that only bundles a shared library (``py3-none-linux_x86_64``).
    Lanes load such a wheel like any other; it is the user's own build, for
    their own machines (the Docker lanes' Debian has glibc 2.36).
    """
    major, _, minor = python_version.partition(".")
    interpreter = f"cp{major}{minor}"
    version = (int(major), int(minor))
    linux = [f"linux_{arch}"]
    return [
        *supported_tags(python_version, arch, glibc),
        *cpython_tags(version, abis=[interpreter], platforms=linux),
        *(tag for tag in compatible_tags(version, interpreter, platforms=linux) if tag.platform != "any"),
    ]


def stage_local_wheels(
    files: Sequence[Path], python_version: str, arch: str, glibc: tuple[int, int], workdir: Path
) -> StagingResult:
    """Stage the local wheels that fit this platform into their own content-addressed site-packages.

    A project with local wheels but none for this platform is a ``no-wheel``
    row, like a locked PyPI package without one. Never reaches the network.
    """
    rank = {tag: i for i, tag in enumerate(local_wheel_tags(python_version, arch, glibc))}
    best: dict[str, tuple[int, Path, str]] = {}
    seen: dict[str, str] = {}
    for path in files:
        try:
            name, version, _build, file_tags = parse_wheel_filename(path.name)
        except (InvalidWheelFilename, InvalidVersion) as exc:
            raise StagingError(f"lock.wheels: {path} is not a valid wheel file name ({exc})") from exc
        seen[str(name)] = str(version)
        ranks = [rank[t] for t in file_tags if t in rank]
        if ranks and (str(name) not in best or min(ranks) < best[str(name)][0]):
            best[str(name)] = (min(ranks), path, str(version))
    target = target_name(python_version, arch, glibc)
    missing = [
        MissingWheel(name, version, target, f"none of the local wheels for {name} fits {target}")
        for name, version in sorted(seen.items()) if name not in best
    ]
    # named by the wheels' contents: a rebuilt wheel of the same version is restaged
    digest = hashlib.sha256(f"{python_version}\0{arch}\0{glibc}".encode())
    for project in sorted(best):
        digest.update(best[project][1].name.encode())
        digest.update(hashlib.sha256(best[project][1].read_bytes()).digest())
    key = digest.hexdigest()[:16]
    dest = workdir / "site-packages" / f"{arch}-local-{key}"
    cached = read_marker(dest)
    if cached is not None:
        return cached
    result = StagingResult(
        site_packages=dest,
        installed={name: version for name, (_r, _p, version) in sorted(best.items())},
        missing=missing,
        wheels=sorted(path.name for _r, path, _v in best.values()),
        key=key,
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700; a container lane reads it as nobody
    try:
        if best:
            argv: list[str | Path] = [
                sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                "--disable-pip-version-check", "--only-binary=:all:", "--target", tmp,
                "--python-version", python_version, "--implementation", "cp",
                "--abi", f"cp{python_version.replace('.', '')}",
            ]
            for tag in [*platform_tags(arch, glibc), f"linux_{arch}"]:
                argv += ["--platform", tag]
            try:
                run([*argv, *(path for _r, path, _v in best.values())])
            except CommandError as exc:
                raise StagingError(f"pip could not install lock.wheels: {exc}\n{exc.tail()}") from exc
        write_marker(tmp, result)  # last: its presence means "complete"
        try:
            os.replace(tmp, dest)
        except OSError:  # a concurrent run staged the same wheels first
            if read_marker(dest) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


class VenvRunner:
    name: ClassVar[str] = "venv"
    options: ClassVar[Mapping[str, Option]] = {"python": Option(str)}

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        return LaneTarget()  # the host as it is: its OS, its architecture, its CPU

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
        staged = stage_lock(job, job.host.machine, host_glibc())
        job.progress("preparing the venv")
        bin_python = make_venv(python, job.workdir / "venvs", *staged.sites)
        suite_root, user_checks = stage_job_suite(job)
        env, removed = lane_env(os.environ, suite_root)
        if removed:
            job.progress(f"not passing {', '.join(removed)} to the lane (they pin the CPU dispatch)")
        job.progress("running the suite")
        argv = [str(bin_python), *suite_args(job, str(job.out), user_checks=user_checks)]
        result = execute_suite(job, argv, env=env)
        return finish(job, result, staging=staged.staging,
                      facts={"python": python, "venv": str(bin_python), "env_removed": removed})
