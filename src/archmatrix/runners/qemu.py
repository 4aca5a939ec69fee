"""The ``qemu`` runner: this host's environment on an emulated CPU (qemu-user).

``linux-x86_64-noavx`` is the Rosetta 2 condition on Linux (macOS 11-14):
the same staged lock and venv as the ``host`` lane, run by
``qemu-x86_64 -cpu Westmere`` so the process sees an x86-64 CPU without
AVX/AVX2/FMA (``linux-x86_64-rosetta15``: ``-cpu Haswell``, macOS 15's
Rosetta). Whatever the CPU profile names, the command is the lane's launcher::

    <venv>/bin/python-qemu-<model> -m archmatrix.suite …
    # which is: exec qemu-x86_64[-static] -cpu <model> -0 <launcher> <venv>/bin/python "$@"

Why the venv's ``bin/python``: qemu-user loads that path itself (it is a
symlink to the real ELF interpreter, never a shim script), and the guest
Python finds ``pyvenv.cfg`` beside its ``argv[0]``, so ``sys.prefix`` is the
venv and the lock's ``.pth`` applies. Why nothing escapes: qemu-user follows
``fork`` but not ``exec`` of a same-architecture binary (docs/lanes.md): a
``subprocess`` of ``sys.executable``, a ``spawn``/``forkserver`` pool or a loky
worker would run natively. The launcher is ``sys.executable`` (qemu's ``-0``),
so every such child re-enters qemu on the same CPU; the lane's self-check
(``lane.self``) proves it in every run.

Only same-architecture profiles run here: qemu-user for another architecture
would need that architecture's interpreter, libc and wheels (a sysroot), which
is what the Docker lanes are for.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

from ..command import CommandError, run
from ..hostfacts import SETUP_SCRIPT, HostFacts
from ..model import QEMU_USER, LaneConfig, LaneTarget, github_linux_runner
from ..profiles import DEFAULT_PROFILES, CpuProfile
from ..suite import arch as arch_mod
from ..suite.classify import NOISE
from ..suite.elffile import file_arch
from .base import Availability, LaneInfraError, LaneJob, Launch, Option, OptionError, lane_cpu_profile
from .common import lane_env, stage_job_suite
from .venv import check_interpreter, lane_interpreter, make_venv, no_interpreter, wanted_python

SETUP_HINT = f"{SETUP_SCRIPT} (or, as root: apt-get install qemu-user-static)"

lane_profile = lane_cpu_profile  # the name the tests and older callers use


def qemu_command(qemu: str, profile: CpuProfile, python: str) -> list[str]:
    """The emulator prefix: everything before the interpreter's own arguments."""
    return [qemu, "-cpu", profile.qemu_cpu, python]


def launcher_script(qemu: str, profile: CpuProfile, python: str, launcher: str) -> str:
    """A ``python`` that re-enters the emulator: the lane's ``sys.executable``.

    qemu-user follows ``fork`` but not ``exec``: a ``subprocess`` of
    ``sys.executable``, a ``spawn``/``forkserver`` pool or a loky worker would
    run natively. Started through this script, the interpreter sees the
    script as its ``argv[0]`` (qemu's ``-0``), so ``sys.executable`` is the
    script, and every child started from it is emulated on the same CPU
    again. Living in the venv's ``bin/``, it still finds the venv's
    ``pyvenv.cfg`` (``sys.prefix`` is the venv).
    """
    argv = [*qemu_command(qemu, profile, python)[:3], "-0", launcher, python]
    return ("#!/bin/sh\n"
            "# archmatrix: every process of this lane runs on the emulated CPU "
            f"({profile.name}: qemu -cpu {profile.qemu_cpu})\n"
            f'exec {shlex.join(argv)} "$@"\n')


def install_launcher(qemu: str, profile: CpuProfile, bin_python: Path) -> Path:
    """Write the lane's launcher beside the venv's python (atomically; identical for identical lanes)."""
    launcher = bin_python.parent / f"python-qemu-{profile.qemu_cpu}"
    text = launcher_script(qemu, profile, str(bin_python), str(launcher))
    if launcher.is_file() and launcher.read_text() == text:
        return launcher
    tmp = launcher.with_name(f".{launcher.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, launcher)
    return launcher


def launcher_path_dir(launcher: Path, version: str) -> Path:
    """A directory of ``python``, ``python3``, ``python3.X`` links to the launcher, put first on the lane's
    PATH: a child started as plain ``python3`` stays on the emulated CPU too (the launcher names itself
    to qemu, so a link to it works)."""
    directory = launcher.parent.parent / f"bin-{launcher.name}"
    directory.mkdir(exist_ok=True)
    for name in ("python", "python3", f"python{version}"):
        link = directory / name
        if not link.is_symlink():
            tmp = directory / f".{name}.{os.getpid()}.{threading.get_ident()}"
            tmp.symlink_to(launcher)
            os.replace(tmp, link)
    return directory


def emulator_name(qemu: str) -> str:
    """What the facts record as the emulator: ``qemu-x86_64`` for qemu-x86_64-static too."""
    return Path(qemu).name.removesuffix("-static")


def without_noise(line: str) -> bool:
    """False for qemu's "TCG doesn't support requested feature" warnings (some models print them)."""
    return not NOISE.search(line + "\n")


def elf_arch(path: Path) -> str | None:
    """The architecture of an ELF file (following symlinks); None when it is not ELF (a script)."""
    return file_arch(path)


class QemuRunner:
    name: ClassVar[str] = "qemu"
    options: ClassVar[Mapping[str, Option]] = {
        "cpu_profile": Option(str, required=True),
        "python": Option(str),
        # false only to prove the self-check: children of the lane then run natively
        "contain_children": Option(bool),
    }

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        profile = lane_profile(lane)
        if profile is None:
            raise OptionError("cpu_profile", "the qemu runner needs a CPU profile (e.g. rosetta2)")
        # qemu-user runs the host's own environment on another CPU model of the
        # same architecture, so the machine that runs it must be that architecture
        return LaneTarget(os="linux", arch=profile.arch, cpu=profile, emulator=QEMU_USER,
                          runs_on=github_linux_runner(profile.arch))

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability:
        if not host.is_linux:
            return Availability.no(
                f"qemu-user runs Linux binaries; this host is {host.system}",
                "on an Apple Silicon Mac the macos-x86_64-rosetta lane runs the real Rosetta 2; "
                "run this lane on Linux CI",
            )
        name = lane.options.get("cpu_profile")
        if not name:
            return Availability.no("the qemu runner needs a CPU profile",
                                   "set lanes[].options.cpu_profile (e.g. rosetta2)")
        profile = lane_profile(lane)
        if profile is None:
            return Availability.no(
                f"unknown CPU profile {name!r}",
                f"profiles: {', '.join(DEFAULT_PROFILES)}; or define it under cpu_profiles:",
            )
        if profile.arch != host.machine:
            return Availability.no(
                f"CPU profile {profile.name!r} is {profile.arch} but this host is {host.machine}: "
                f"qemu-user across architectures needs a {profile.arch} sysroot (interpreter, libc, "
                "wheels), which this runner does not build",
                f"run it on a {profile.arch} host, or use the linux-{_docker_arch(profile.arch)}-docker "
                f"lane (QEMU_CPU={profile.qemu_cpu})",
            )
        qemu = host.qemu_user.get(profile.arch)
        if not qemu:
            return Availability.no(f"qemu-user for {profile.arch} not found "
                                   f"(qemu-{profile.arch} or qemu-{profile.arch}-static on PATH)", SETUP_HINT)
        missing = no_interpreter(lane, host)
        if missing is not None:
            return missing
        return Availability.yes(f"emulated: {emulator_name(qemu)} -cpu {profile.qemu_cpu}")

    def prepare(self, job: LaneJob) -> Launch:
        profile = lane_profile(job.lane)
        qemu = job.host.qemu_user.get(profile.arch) if profile else None
        if profile is None or qemu is None:  # the planner only runs available lanes
            raise LaneInfraError(self.availability(job.lane, job.host).reason, SETUP_HINT)
        python = lane_interpreter(job.lane, job.host)
        if python is None:
            missing = no_interpreter(job.lane, job.host) or Availability.no("no interpreter")
            raise LaneInfraError(missing.reason, missing.hint)
        check_interpreter(python, wanted_python(job.lane, job.host))
        version = _qemu_version(qemu)
        # qemu's warnings about features it cannot emulate are noise, on the console too
        job = dataclasses.replace(job, progress=_filtered(job.progress))

        staged = make_venv(job, python, job.host.machine)  # the host lane's venv
        bin_python = staged.python
        interpreter_arch = elf_arch(bin_python)
        if interpreter_arch != profile.arch:
            raise LaneInfraError(
                f"{bin_python} → {os.path.realpath(bin_python)} is "
                f"{interpreter_arch or 'not an ELF binary'}, not {profile.arch}: "
                "qemu-user would not run it (a script would exec the real interpreter natively)",
                "set lanes[].options.python to the real interpreter binary, not a shim",
            )
        suite_root, user_checks = stage_job_suite(job)
        env, removed = lane_env(os.environ, suite_root)
        contained = job.lane.options.get("contain_children", True)
        prefix = qemu_command(qemu, profile, str(bin_python))
        if contained:
            launcher = install_launcher(qemu, profile, bin_python)
            prefix = [str(launcher)]
            version = wanted_python(job.lane, job.host) or f"{sys.version_info[0]}.{sys.version_info[1]}"
            env["PATH"] = os.pathsep.join(filter(None, [str(launcher_path_dir(launcher, version)),
                                                        env.get("PATH")]))
        return Launch(
            prefix=prefix, env=env, env_removed=tuple(removed), cpu=profile,
            staging=staged.staging, user_checks=user_checks,
            emulator=emulator_name(qemu), cpu_model=profile.qemu_cpu,
            how=f"under {emulator_name(qemu)} -cpu {profile.qemu_cpu}", line_filter=without_noise,
            facts={
                "python": python,
                "venv": str(bin_python),
                "qemu": qemu,
                "qemu_version": version,
                "cpu_profile": profile.name,
                "qemu_cpu": profile.qemu_cpu,
                "contained": bool(contained),
            },
        )


def _docker_arch(arch: str) -> str:
    known = arch_mod.lookup(arch)
    return known.docker if known else arch


def _filtered(progress: Callable[[str], None]) -> Callable[[str], None]:
    def report(line: str) -> None:
        if without_noise(line):
            progress(line)

    return report


def _qemu_version(qemu: str) -> str:
    try:
        out = run([qemu, "--version"], timeout=30).stdout
    except CommandError as exc:
        raise LaneInfraError(f"{qemu} does not start: {exc}", SETUP_HINT) from exc
    match = re.search(r"version\s+(\S+)", out)
    return match.group(1) if match else out.strip()[:80]
