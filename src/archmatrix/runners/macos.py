"""The ``macos`` runner: native arm64 and Rosetta 2 (x86_64) lanes on an Apple Silicon Mac.

Rosetta is not a second backend (cibuildwheel's lesson): it is this one with
``arch -x86_64`` in front of every command — venv creation, pip and the
suite — so the interpreter, pip's wheel tags and every check run translated.
The arm64 lane says ``arch -arm64`` just as explicitly: a universal2 Python
started from a translated process (archmatrix itself under an x86_64 Python)
would otherwise silently run as x86_64 too.

Unlike the Linux lanes, wheels are fetched by the lane's own pip: macOS has
no cross-staging story as simple as manylinux tags, and pip running under
``arch -x86_64`` asks for exactly the tags Rosetta's interpreter accepts. Each
locked package is downloaded on its own (``--only-binary=:all:``), so one
without a wheel for the lane is a ``wheel.<pkg>`` ``no-wheel`` row and the
others are still installed.

Every command is built by a pure function, so the exact commands of both
lanes are unit-tested without a Mac. Nothing here has run on real macOS
hardware yet (docs/lanes.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from packaging.utils import canonicalize_name

from ..command import CommandError, run
from ..hostfacts import X86_PYTHON_CANDIDATES, HostFacts
from ..model import GITHUB_MACOS_ARM64, LaneConfig, LaneTarget
from ..profiles import DEFAULT_PROFILES, CpuProfile
from ..staging import pip
from ..staging.lock import local_projects, local_wheel_files
from ..staging.pip import PIP_TIMEOUT
from ..staging.result import MissingWheel, StagingError, StagingResult
from ..staging.tags import macos_wheel_fits, wheel_names, wheel_project
from ..suite import arch as arch_mod
from ..suite.outcomes import Outcome
from ..suite.result import CheckResult
from .base import Availability, LaneInfraError, LaneJob, Launch, Option, OptionError
from .common import lane_env, stage_job_suite

ARCHES = (arch_mod.AARCH64.macos or "arm64", arch_mod.X86_64.macos or "x86_64")  # Apple's names
ROSETTA_HINT = "softwareupdate --install-rosetta --agree-to-license"
PYTHON_ORG = "https://www.python.org/downloads/macos/"
PIP = ("-m", "pip")
PIP_QUIET = ("--disable-pip-version-check", "--no-input")


def arch_prefix(arch: str) -> list[str]:
    """What goes in front of every command of the lane."""
    return ["arch", f"-{arch}"]


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def create_command(arch: str, python: str, venv_dir: Path) -> list[str]:
    # with pip (ensurepip's bundled wheel: no network): the lane's own pip fetches the wheels
    return [*arch_prefix(arch), python, "-m", "venv", "--clear", str(venv_dir)]


def download_command(arch: str, venv_dir: Path, wheel_dir: Path, name: str, version: str) -> list[str]:
    """One package's wheel, for the tags the lane's interpreter accepts; never an sdist."""
    return [*arch_prefix(arch), str(venv_python(venv_dir)), *PIP, "download", *PIP_QUIET,
            "--only-binary=:all:", "--no-deps", "--dest", str(wheel_dir), f"{name}=={version}"]


def install_command(
    arch: str, venv_dir: Path, wheel_dir: Path, pins: Mapping[str, str], local_wheels: Sequence[Path] = ()
) -> list[str]:
    """Install exactly the downloaded wheels (and local ones): no index, no dependency resolution."""
    return [*arch_prefix(arch), str(venv_python(venv_dir)), *PIP, "install", *PIP_QUIET,
            "--only-binary=:all:", "--no-deps", "--no-index", "--find-links", str(wheel_dir),
            *(f"{name}=={version}" for name, version in sorted(pins.items())),
            *(str(path) for path in local_wheels)]


def venv_commands(
    arch: str, python: str, venv_dir: Path, lock: Mapping[str, str], wheel_dir: Path,
    local_wheels: Sequence[Path] = (),
) -> list[list[str]]:
    """The lane's environment, command by command: create, download each package, install.

    :meth:`MacosRunner.run` executes exactly these; when a download finds no
    wheel, that package is left out of the install (and reported ``no-wheel``).
    """
    return [
        create_command(arch, python, venv_dir),
        *(download_command(arch, venv_dir, wheel_dir, name, version)
          for name, version in sorted(lock.items())),
        install_command(arch, venv_dir, wheel_dir, lock, local_wheels),
    ]


def suite_command(arch: str, venv_dir: Path, args: Sequence[str]) -> list[str]:
    """The suite in the lane's venv; ``args`` from :func:`~archmatrix.runners.common.suite_args`."""
    return [*arch_prefix(arch), str(venv_python(venv_dir)), *args]


def lane_python(lane: LaneConfig, host: HostFacts) -> str | None:
    """The interpreter the lane's venv is made from: the option, else one detected for the arch."""
    if lane.options.get("python"):
        return str(lane.options["python"])
    if lane.options.get("arch") == "x86_64":
        return host.x86_64_pythons[0] if host.x86_64_pythons else None
    return host.python or None


ROSETTA_ADVERTISE = "ROSETTA_ADVERTISE_AVX"  # macOS 15: Rosetta advertises AVX/AVX2 in CPUID when set


def rosetta_profile(macos_version: str) -> CpuProfile:
    """The CPU Rosetta 2 gives x86-64 code on this macOS: no AVX before 15, AVX/AVX2/FMA/BMI from 15 on."""
    try:
        major = int(macos_version.split(".")[0])
    except ValueError:
        major = 0
    return DEFAULT_PROFILES["rosetta2-macos15" if major >= 15 else "rosetta2"]


def verify_architecture(arch: str, facts: Mapping[str, Any]) -> CheckResult:
    """The lane really ran where it says: translated by Rosetta (x86_64), or native arm64."""
    check_id = "rosetta.translated" if arch == "x86_64" else "macos.native"
    if "translated" not in facts:
        return CheckResult(check_id, Outcome.SKIPPED, message="the suite reported no facts to verify")
    translated, machine = facts.get("translated"), str(facts.get("machine", ""))
    if arch == "x86_64":
        ok = translated is True and machine == "x86_64"
        good = "sysctl.proc_translated = 1: the suite ran as x86_64 under Rosetta 2"
        bad = (f"the lane did not run translated (sysctl.proc_translated = {translated!r}, "
               f"machine {machine}): its results are not Rosetta 2's")
    else:
        ok = translated is False and machine == "arm64"
        good = "native arm64, not translated"
        bad = (f"the lane did not run as native arm64 (machine {machine}, translated {translated!r}): "
               "is the interpreter x86_64-only?")
    evidence = {} if ok else {"translated": translated, "machine": machine}
    return CheckResult(check_id, Outcome.PASS if ok else Outcome.ERROR, message=good if ok else bad,
                       evidence=evidence)


class MacosRunner:
    name: ClassVar[str] = "macos"
    options: ClassVar[Mapping[str, Option]] = {"arch": Option(str, choices=ARCHES, required=True),
                                               "python": Option(str)}

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        arch = arch_mod.lookup(str(lane.options.get("arch", "")))
        if arch is None or arch.macos not in ARCHES:
            raise OptionError("arch", f"must be one of {', '.join(ARCHES)}")
        if arch is arch_mod.X86_64:
            # x86-64 code translated by Rosetta 2 (macOS 11-14: no AVX), as the
            # rosetta2 CPU profile describes it; the GitHub job installs an
            # x86_64 Python unless the lane names one
            return LaneTarget(os="macos", arch=arch.name, cpu=DEFAULT_PROFILES["rosetta2"],
                              emulator="Rosetta 2", runs_on=GITHUB_MACOS_ARM64,
                              ci_setup=() if lane.options.get("python") else ("x64_python",))
        return LaneTarget(os="macos", arch=arch.name, cpu=DEFAULT_PROFILES["apple-silicon"],
                          runs_on=GITHUB_MACOS_ARM64)

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability:
        arch = lane.options.get("arch")
        if arch not in ARCHES:
            return Availability.no(f"options.arch must be one of {', '.join(ARCHES)}, found {arch!r}",
                                   "set lanes[].options.arch to arm64 or x86_64")
        if not host.is_macos:
            return Availability.no(f"needs macOS on Apple Silicon; this host is {host.system}",
                                   "run it on an Apple Silicon Mac (GitHub Actions: runs-on: macos-14)")
        if not host.apple_silicon:
            what = "no arm64 CPU" if arch == "arm64" else "x86_64 runs natively here, there is no Rosetta 2"
            return Availability.no(f"Intel Mac: {what}",
                                   "run it on an Apple Silicon Mac (GitHub Actions: runs-on: macos-14)")
        if arch == "x86_64" and not host.rosetta:
            return Availability.no("Rosetta 2 is not installed", ROSETTA_HINT)
        python = lane_python(lane, host)
        if python is None:
            version = host.python_version or "3.x"
            looked = ", ".join(p.format(v=version) for p in X86_PYTHON_CANDIDATES)
            return Availability.no(
                f"no x86_64-capable Python {version} found (looked for {looked})",
                f"install the universal2 Python {version} from {PYTHON_ORG} (python.org's installer), "
                "or set lanes[].options.python to an x86_64 interpreter",
            )
        how = "translated by Rosetta 2" if arch == "x86_64" else "native"
        return Availability.yes(f"{how}: arch -{arch} {python}")

    def prepare(self, job: LaneJob) -> Launch:
        arch = str(job.lane.options.get("arch"))
        python = lane_python(job.lane, job.host)
        if arch not in ARCHES or python is None:  # the planner only runs available lanes
            available = self.availability(job.lane, job.host)
            raise LaneInfraError(available.reason, available.hint)
        lock = job.lock  # the lock on this lane's Python (lock.python may list several)
        venv_dir = job.workdir / "venvs" / f"{job.lane.id}-{arch}"
        wheel_dir = job.workdir / "wheels" / f"macos-{arch}"
        wheel_dir.mkdir(parents=True, exist_ok=True)
        files = local_wheel_files(lock.wheels, job.config.path.parent)
        local = [p for p in files if macos_wheel_fits(p.name, arch)]
        # a project brought as a local wheel takes the place of the lock's pin (as in the other runners)
        replaced = local_projects(files)
        packages = {n: v for n, v in lock.packages.items() if canonicalize_name(n) not in replaced}
        create, *downloads, _install = venv_commands(arch, python, venv_dir, packages, wheel_dir, local)
        suite_root, user_checks = stage_job_suite(job)
        env, removed = lane_env(os.environ, suite_root)
        pip_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}

        job.progress(f"creating the venv: arch -{arch} {python}")
        _must(create, "could not create the lane's venv", pip_env)
        missing: list[MissingWheel] = []
        pins: dict[str, str] = {}
        for (name, version), argv in zip(sorted(packages.items()), downloads, strict=True):
            job.progress(f"wheel for {name}=={version}")
            reason = _download(argv, pip_env)
            if reason is None:
                pins[name] = version
            else:
                missing.append(MissingWheel(name, version, f"macOS {arch}", reason))
        job.progress("installing the lock")
        _must(install_command(arch, venv_dir, wheel_dir, pins, local), "could not install the lock", pip_env)
        staging = StagingResult(
            site_packages=venv_dir,
            installed={**pins, **dict(wheel_project(p.name) for p in local)},
            missing=missing,
            wheels=sorted([*wheel_names(wheel_dir, pins), *(p.name for p in local)]),
        )

        return Launch(
            prefix=suite_command(arch, venv_dir, []), env=env, env_removed=tuple(removed), staging=staging,
            user_checks=user_checks, how=f"under arch -{arch}",
            verify=(partial(verify_architecture, arch),),
            # what the self-check holds the lane to: Rosetta's CPU on this macOS, or Apple's
            cpu=(rosetta_profile(job.host.macos_version) if arch == "x86_64"
                 else DEFAULT_PROFILES["apple-silicon"]),
            facts={"python": python, "arch": arch, "prefix": " ".join(arch_prefix(arch)),
                   "venv": str(venv_python(venv_dir)), "macos_version": job.host.macos_version,
                   ROSETTA_ADVERTISE: os.environ.get(ROSETTA_ADVERTISE, "")},
        )


def _must(argv: list[str], what: str, env: Mapping[str, str]) -> None:
    try:
        run(argv, env=env, timeout=PIP_TIMEOUT)
    except CommandError as exc:
        hint = ROSETTA_HINT if "Bad CPU type" in f"{exc}{exc.stderr}" else ""
        raise LaneInfraError(f"{what}: {exc}\n{exc.tail()}", hint) from exc


def _download(argv: list[str], env: Mapping[str, str]) -> str | None:
    """None when the wheel is in the cache now; pip's reason when the version has no wheel here."""
    try:
        return pip.fetch(argv, "a wheel", env=env)
    except StagingError as exc:
        raise LaneInfraError(str(exc)) from exc
