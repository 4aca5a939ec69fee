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

Each lane × Python version runs an interpreter of that version (``lock.python``
may list several): arm64 the host's (archmatrix's own, or one found on PATH,
in python.org's framework, Homebrew, pyenv or uv), x86_64 one that really runs
as x86_64 under Rosetta (python.org's universal2 build), found per version by
:mod:`archmatrix.hostfacts`; ``options.python`` names one (a path, or a mapping
version → path). Before anything is installed, the interpreter is started the
way the lane starts it and must say it is that version on that architecture: a
lane never runs 3.11 under a 3.13 label.

Every command is built by a pure function, so the exact commands of both
lanes are unit-tested without a Mac. Nothing here has run on real macOS
hardware yet (docs/lanes.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from packaging.utils import canonicalize_name

from ..command import CommandError, run
from ..hostfacts import INTERPRETER_PROBE, HostFacts, x86_64_candidates
from ..model import GITHUB_MACOS_ARM64, LaneConfig, LaneTarget
from ..profiles import DEFAULT_PROFILES, CpuProfile
from ..pyversions import VERSION, result_stem
from ..staging import pip
from ..staging.lock import HashMismatch, local_projects, local_wheel_files, verify_hashes
from ..staging.pip import PIP_TIMEOUT
from ..staging.result import MissingWheel, StagingError, StagingResult
from ..staging.tags import macos_wheel_fits, wheel_names, wheel_project
from ..suite import arch as arch_mod
from ..suite.outcomes import Outcome
from ..suite.result import CheckResult
from .base import Availability, LaneInfraError, LaneJob, Launch, Option, OptionError
from .common import job_lock, lane_env, stage_job_suite

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


def probe_command(arch: str, python: str) -> list[str]:
    """The interpreter started as the lane starts it, saying its version and machine ("3.12 x86_64")."""
    return [*arch_prefix(arch), python, "-c", INTERPRETER_PROBE]


def interpreter_mismatch(arch: str, python: str, version: str, said: str) -> str | None:
    """Why ``python`` (which printed ``said`` for :func:`probe_command`) cannot be the lane's Python
    ``version`` on ``arch``; None when it is exactly that."""
    have, _, machine = said.strip().partition(" ")
    if (not version or have == version) and machine == arch:
        return None
    return (f"the lane's interpreter {python} runs as Python {have or '?'} on {machine or '?'} under "
            f"arch -{arch}; the lane is Python {version or '?'} on {arch}")


def lane_version(lane: LaneConfig, host: HostFacts) -> str:
    """The Python (major.minor) the lane runs: its target's (the lock's), else archmatrix's own."""
    return (lane.target.python if lane.target else "") or host.python_version


def option_python(lane: LaneConfig, version: str) -> str | None:
    """``options.python`` for ``version``: a path (valid with one lock version), or the mapping's entry."""
    value = lane.options.get("python")
    if isinstance(value, Mapping):
        return str(value[version]) if version in value else None
    return str(value) if value else None


def lane_python(lane: LaneConfig, host: HostFacts) -> str | None:
    """The interpreter the lane's venv is made from, of the lane's Python version: the option, else one
    detected for the arch (x86_64: one that runs translated; arm64: the host's of that version)."""
    version = lane_version(lane, host)
    chosen = option_python(lane, version)
    if chosen:
        return chosen
    if lane.options.get("arch") == "x86_64":
        found = host.x86_64_pythons.get(version, ())
        return found[0] if found else None
    if not version:  # facts built by hand, no version known: archmatrix's own (checked before staging)
        return host.python or None
    return host.interpreter(version)


def no_interpreter(lane: LaneConfig, host: HostFacts) -> Availability:
    """Why the lane has no interpreter of its Python version, and the fix (python.org's installer)."""
    version = lane_version(lane, host) or "3.x"
    option = (f'lanes[].options.python ({{"{version}": <path>}} when lock.python lists several versions)'
              if version != "3.x" else "lanes[].options.python")
    if lane.options.get("arch") == "x86_64":
        own = {host.python_version: host.python} if host.python_version else {}
        looked = ", ".join(x86_64_candidates(version, host.interpreters, own))
        return Availability.no(
            f"no x86_64-capable Python {version} found (looked for {looked})",
            f"install the universal2 Python {version} from {PYTHON_ORG} (python.org's installer for "
            f"{version}: it runs under Rosetta 2 as x86_64), or set {option} to an x86_64 interpreter",
        )
    return Availability.no(
        f"no Python {version} on this Mac (archmatrix runs on Python {host.python_version or '?'}; "
        f"looked for python{version} on PATH, in python.org's framework, Homebrew, pyenv and uv)",
        f"install Python {version} (the universal2 installer from {PYTHON_ORG}, brew install "
        f"python@{version}, pyenv install {version} or uv python install {version}), or set {option}",
    )


def check_python_option(value: object, pythons: Sequence[str] = ()) -> None:
    """``options.python``: an interpreter path, or a mapping Python version → path (one per lock version).

    A single path is one interpreter of one version: with several versions in ``lock.python`` it would
    run every ``<lane>@<version>`` on the same Python, so it is refused; a mapping names each one (a
    version it leaves out is detected as without the option). Raises :class:`OptionError`.
    """
    if value is None:
        return
    if isinstance(value, str):
        if not value:
            raise OptionError("python", "expected an interpreter path, found an empty string")
        if len(pythons) > 1:
            raise OptionError("python", f"one interpreter cannot be Python {' and '.join(pythons)} "
                                        f"(lock.python lists {len(pythons)} versions): give a mapping of "
                                        f'version to path, e.g. {{"{pythons[0]}": {value}}}')
        return
    if not isinstance(value, Mapping) or not value:
        raise OptionError("python", "expected an interpreter path or a mapping of Python version to path "
                                    f"(\"3.12\": /path/to/python3.12), found {value!r:.60}")
    for key, path in value.items():
        if isinstance(key, float):
            raise OptionError("python", f"quote the Python version: YAML reads it as the number {key!r}")
        if not isinstance(key, str) or not VERSION.fullmatch(key):
            raise OptionError("python", f"keys are Python versions such as \"3.12\", found {key!r:.40}")
        if pythons and key not in pythons:
            raise OptionError("python", f"{key}: lock.python lists no {key} ({', '.join(pythons)})")
        if not isinstance(path, str) or not path:
            raise OptionError("python", f"{key}: expected an interpreter path, found {path!r:.40}")


# GitHub's macos-14 image: what a macOS lane stands for unless options.macos_version says otherwise
DEFAULT_MACOS_VERSION = "14.7"
_MACOS_VERSION = re.compile(r"\d{1,2}(\.\d{1,2}){0,2}")


def _macos_version(lane: LaneConfig) -> str:
    return str(lane.options.get("macos_version") or DEFAULT_MACOS_VERSION)


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
    # macos_version: the macOS the lane stands for where it is predicted rather than run (minimum macOS of
    # the binaries, and Rosetta's CPU: no AVX before 15); default GitHub's macos-14 image
    # python: a path or a mapping version → path (object here: check_python_option says what is wrong)
    options: ClassVar[Mapping[str, Option]] = {"arch": Option(str, choices=ARCHES, required=True),
                                               "python": Option(object), "macos_version": Option(str)}

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        arch = arch_mod.lookup(str(lane.options.get("arch", "")))
        if arch is None or arch.macos not in ARCHES:
            raise OptionError("arch", f"must be one of {', '.join(ARCHES)}")
        if not _MACOS_VERSION.fullmatch(_macos_version(lane)):
            raise OptionError("macos_version", "must be a macOS version such as 14.7 or 15")
        check_python_option(lane.options.get("python"))
        if arch is arch_mod.X86_64:
            # x86-64 code translated by Rosetta 2 (macOS 11-14: no AVX), as the
            # rosetta2 CPU profile describes it; the GitHub job installs an
            # x86_64 Python of the job's version (ci-lanes' "python") unless the lane names its own
            # path (a mapping may leave the job's version out: the workflow fills in only that one)
            return LaneTarget(os="macos", arch=arch.name, cpu=rosetta_profile(_macos_version(lane)),
                              emulator="Rosetta 2", runs_on=GITHUB_MACOS_ARM64,
                              ci_setup=() if isinstance(lane.options.get("python"), str) else ("x64_python",))
        return LaneTarget(os="macos", arch=arch.name, cpu=DEFAULT_PROFILES["apple-silicon"],
                          runs_on=GITHUB_MACOS_ARM64)

    def check_pythons(self, lane: LaneConfig, pythons: Sequence[str]) -> None:
        """``options.python`` against ``lock.python`` (``config.parse`` asks): :func:`check_python_option`."""
        check_python_option(lane.options.get("python"), pythons)

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
            return no_interpreter(lane, host)
        how = "translated by Rosetta 2" if arch == "x86_64" else "native"
        return Availability.yes(f"{how}: arch -{arch} {python}")

    def prepare(self, job: LaneJob) -> Launch:
        arch = str(job.lane.options.get("arch"))
        python = lane_python(job.lane, job.host)
        if arch not in ARCHES or python is None:  # the planner only runs available lanes
            available = self.availability(job.lane, job.host)
            raise LaneInfraError(available.reason, available.hint)
        version = lane_version(job.lane, job.host)
        _check_interpreter(arch, python, version)
        lock = job_lock(job)  # the pins this lane's environment selects (markers, per-Python tables)
        venv_dir = job.workdir / "venvs" / f"{result_stem(job.lane.id)}-{arch}"
        # per version: the wheels listed for the lane (and their hashes checked) are its own version's
        wheel_dir = job.workdir / "wheels" / f"macos-{arch}-py{version}"
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
        for name, version in pins.items():  # each wheel one of the lock's hashes allow, if it has some
            allowed = lock.hashes.get(canonicalize_name(name))
            for wheel in wheel_names(wheel_dir, {name: version}) if allowed else ():
                try:
                    verify_hashes(wheel_dir / wheel, name, version, allowed or (), lock.file)
                except HashMismatch as exc:
                    raise LaneInfraError(f"could not stage the lock: {exc}") from None
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
            facts={"python": python, "python_version": version, "arch": arch,
                   "prefix": " ".join(arch_prefix(arch)),
                   "venv": str(venv_python(venv_dir)), "macos_version": job.host.macos_version,
                   ROSETTA_ADVERTISE: os.environ.get(ROSETTA_ADVERTISE, "")},
        )


def _check_interpreter(arch: str, python: str, version: str) -> None:
    """Before anything is installed: ``python`` started as the lane starts it is ``version`` on ``arch``."""
    hint = (f"set lanes[].options.python to a Python {version or '3.x'} that runs as {arch} (for x86_64: "
            f"the universal2 installer from {PYTHON_ORG})")
    try:
        out = run(probe_command(arch, python), timeout=60)
    except CommandError as exc:
        bad_cpu = "Bad CPU type" in f"{exc}{exc.stderr}"
        raise LaneInfraError(f"the lane's interpreter {python} does not start under arch -{arch}: {exc}",
                             ROSETTA_HINT if bad_cpu and arch == "x86_64" else hint) from exc
    why = interpreter_mismatch(arch, python, version, out.stdout)
    if why:
        raise LaneInfraError(why, hint)


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
