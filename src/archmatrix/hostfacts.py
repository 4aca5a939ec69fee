"""What this host can do, detected in exactly one place.

:func:`detect` asks the machine; everything downstream (planning, runners'
availability) takes a :class:`HostFacts` value, so unit tests build one by
hand instead of patching ``platform`` or the Docker SDK.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .command import CommandError, run
from .engines import DockerFacts as DockerFacts  # the engine facts, here with every other host fact
from .engines import Engine, probe
from .suite import arch as arch_mod

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
# How a Linux host gets what the Docker and QEMU lanes need: the script asks
# for root itself (sudo when there is one), so the hint works as root too.
SETUP_SCRIPT = "ci/setup-linux-host.sh"
# Where python.org's universal2 installer and Homebrew on Intel put interpreters.
X86_PYTHON_CANDIDATES = (
    "/Library/Frameworks/Python.framework/Versions/{v}/bin/python{v}",
    "/usr/local/bin/python{v}",
    "/usr/local/opt/python@{v}/bin/python{v}",
)
# Where a Mac keeps an interpreter of a version besides PATH, pyenv and uv: python.org's
# framework build (universal2) and Homebrew on Apple Silicon.
MACOS_PYTHON_CANDIDATES = (
    "/Library/Frameworks/Python.framework/Versions/{v}/bin/python{v}",
    "/opt/homebrew/opt/python@{v}/bin/python{v}",
)
# What an interpreter says it is when started under ``arch -<arch>``: "3.12 x86_64"
INTERPRETER_PROBE = "import platform, sys; print('%d.%d' % sys.version_info[:2], platform.machine())"


@dataclass(frozen=True)
class HostFacts:
    system: str  # platform.system(): Linux, Darwin, Windows
    machine: str  # normalised: x86_64 or aarch64
    cpu_count: int = 2
    python: str = ""  # the interpreter archmatrix runs under
    python_version: str = ""  # "3.11"
    ci: bool = False
    # macOS
    apple_silicon: bool = False
    rosetta: bool = False
    macos_version: str = ""  # "14.6": Rosetta 2 before macOS 15 executes no AVX, from 15 on AVX/AVX2
    # Interpreters that run as x86_64 here (under Rosetta 2), by version ("3.12" → paths, best first)
    x86_64_pythons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Linux containers and emulation
    docker: DockerFacts = field(default_factory=lambda: DockerFacts(False, "not checked"))
    qemu_user: Mapping[str, str] = field(default_factory=dict)  # guest arch → qemu-<arch> path
    binfmt: frozenset[str] = frozenset()  # guest arches the kernel hands to qemu
    # Interpreters found on this host, by version ("3.11" → the real binary): the
    # lanes that run this host's own Python (venv, qemu) need the lock's version,
    # whatever Python archmatrix itself runs under.
    interpreters: Mapping[str, str] = field(default_factory=dict)
    # Docker engines the config's lanes name (docker_host/docker_context), by Engine.key; the
    # environment's own engine is ``docker``
    engines: Mapping[str, DockerFacts] = field(default_factory=dict)

    def engine(self, key: str) -> DockerFacts | None:
        """The facts of engine ``key`` (archmatrix.engines.Engine.key, "" the default); None: not asked."""
        return self.docker if not key else self.engines.get(key)

    def interpreter(self, version: str) -> str | None:
        """This host's Python ``version`` (major.minor): archmatrix's own, else one found; None if none."""
        if version == self.python_version and self.python:
            return self.python
        return self.interpreters.get(version)

    @property
    def is_linux(self) -> bool:
        return self.system == "Linux"

    @property
    def is_macos(self) -> bool:
        return self.system == "Darwin"


normalise_arch = arch_mod.normalise  # every tool's name for an architecture → the canonical one


def system() -> str:
    return platform.system()


def machine() -> str:
    return platform.machine()


def sysctl(name: str) -> str:
    """A macOS sysctl value as text; empty when there is none (or no sysctl)."""
    try:
        return run(["sysctl", "-n", name], timeout=10, check=False).stdout.strip()
    except CommandError:
        return ""


def process_translated() -> bool:
    """This process runs under Rosetta 2 (macOS ``sysctl.proc_translated``)."""
    return sysctl("sysctl.proc_translated") == "1"


def cpu_flags(system_name: str, cpuinfo: str | None = None) -> list[str]:
    """The CPU's feature flags as the kernel names them (``avx2``, ``sve``, …); empty when unknown.

    Linux: /proc/cpuinfo (or ``cpuinfo`` when given), the truth for a native
    process. macOS on Intel: the machdep.cpu sysctls, in Linux's spelling.
    """
    if system_name.lower() == "darwin":
        features = f"{sysctl('machdep.cpu.features')} {sysctl('machdep.cpu.leaf7_features')}".lower()
        return features.replace(".", "_").split()
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return value.split()
    return []


def detect(*, check_docker: bool = True, engines: Iterable[Engine] = ()) -> HostFacts:
    """Probe this machine once. Cheap probes only, each bounded in time.

    ``engines``: the other Docker engines the lanes name, each asked what it is (or why it does not answer).
    """
    system = platform.system()
    machine = normalise_arch(platform.machine())
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    apple_silicon = system == "Darwin" and _apple_silicon()
    rosetta = apple_silicon and _rosetta_installed()
    interpreters = find_interpreters(candidates=MACOS_PYTHON_CANDIDATES if system == "Darwin" else ())
    return HostFacts(
        system=system,
        machine=machine,
        cpu_count=os.cpu_count() or 1,
        python=sys.executable,
        python_version=version,
        ci=os.environ.get("CI", "").lower() in ("1", "true", "yes"),
        apple_silicon=apple_silicon,
        macos_version=platform.mac_ver()[0] if system == "Darwin" else "",
        rosetta=rosetta,
        x86_64_pythons=_x86_64_pythons(interpreters, {version: sys.executable}) if rosetta else {},
        docker=_docker() if check_docker else DockerFacts(False, "not checked"),
        qemu_user=_qemu_user(),
        binfmt=_binfmt(),
        interpreters=interpreters,
        engines={e.key: probe(e) for e in engines if not e.is_default} if check_docker else {},
    )


def _apple_silicon() -> bool:
    # platform.machine() says x86_64 when *this* Python runs under Rosetta;
    # the hardware question is sysctl hw.optional.arm64.
    answer = sysctl("hw.optional.arm64")
    return answer == "1" if answer else platform.machine() == "arm64"


def _rosetta_installed() -> bool:
    try:
        return run(["arch", "-x86_64", "/usr/bin/true"], timeout=30, check=False).returncode == 0
    except CommandError:
        return False


def _x86_64_pythons(interpreters: Mapping[str, str], own: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Every version's interpreters that run as x86_64 under Rosetta 2 (python.org's universal2 build,
    Intel Homebrew's), each confirmed by starting it under ``arch -x86_64``."""
    found: dict[str, tuple[str, ...]] = {}
    for version in PYTHON_VERSIONS:
        paths = []
        for candidate in x86_64_candidates(version, interpreters, own):
            if os.access(candidate, os.X_OK) and _runs_as(candidate, "x86_64") == version:
                paths.append(candidate)
        if paths:
            found[version] = tuple(paths)
    return found


def x86_64_candidates(version: str, interpreters: Mapping[str, str], own: Mapping[str, str]) -> list[str]:
    """Where an x86_64-capable Python ``version`` may be, best first: python.org's framework, Intel
    Homebrew's, then the host's own of that version (universal2 when it is python.org's)."""
    paths = [p.format(v=version) for p in X86_PYTHON_CANDIDATES]
    paths += [p for p in (own.get(version), interpreters.get(version)) if p]
    return list(dict.fromkeys(paths))


def _runs_as(python: str, arch: str) -> str | None:
    """The version ``python`` reports when started as ``arch`` (``arch -x86_64 …``); None: it does not."""
    try:
        out = run(["arch", f"-{arch}", python, "-c", INTERPRETER_PROBE], timeout=60, check=False)
    except CommandError:
        return None
    version, _, machine = out.stdout.strip().partition(" ")
    return version if out.returncode == 0 and machine == arch else None


def _docker() -> DockerFacts:
    return probe(Engine())


def _qemu_user() -> dict[str, str]:
    found = {}
    for arch in ("x86_64", "aarch64"):
        for name in (f"qemu-{arch}", f"qemu-{arch}-static"):
            path = shutil.which(name)
            if path:
                found[arch] = path
                break
    return found


PYTHON_VERSIONS = tuple(f"3.{minor}" for minor in range(9, 16))


def find_interpreters(
    versions: tuple[str, ...] = PYTHON_VERSIONS,
    *,
    path: str | None = None,
    pyenv_root: str | None = None,
    candidates: tuple[str, ...] = (),
) -> dict[str, str]:
    """CPython interpreters on this host by version, each the real binary (never a shim script).

    Where people keep them: ``python3.X`` on PATH (a distribution's, a
    venv's), pyenv's versions (``$PYENV_ROOT`` or ``~/.pyenv``), ``candidates``
    (paths with ``{v}``: on a Mac python.org's framework build and Homebrew's,
    :data:`MACOS_PYTHON_CANDIDATES`), and uv's (``uv python find`` when uv is
    installed). A pyenv shim on PATH is a script
    that execs the real interpreter natively — useless under qemu-user — so
    every candidate is resolved to its ELF/Mach-O binary.
    """
    found: dict[str, str] = {}
    root = Path(pyenv_root or os.environ.get("PYENV_ROOT") or _pyenv_root(path) or Path.home() / ".pyenv")
    for version in versions:
        found_in: list[str | Path | None] = [shutil.which(f"python{version}", path=path)]
        found_in += sorted((root / "versions").glob(f"{version}.*/bin/python{version}"), reverse=True)
        found_in += [pattern.format(v=version) for pattern in candidates]
        for candidate in found_in:
            real = _real_binary(candidate)
            if real:
                found[version] = real
                break
    if shutil.which("uv", path=path):
        for version in versions:
            if version in found:
                continue
            try:
                out = run(["uv", "python", "find", "--no-python-downloads", version], timeout=30, check=False)
            except CommandError:
                break
            real = _real_binary(out.stdout.strip()) if out.returncode == 0 else None
            if real:
                found[version] = real
    return found


def _pyenv_root(path: str | None) -> str:
    """``pyenv root`` when pyenv is on PATH (it may keep its versions anywhere); empty otherwise."""
    pyenv = shutil.which("pyenv", path=path)
    if not pyenv:
        return ""
    try:
        out = run([pyenv, "root"], timeout=30, check=False)
    except CommandError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _real_binary(candidate: str | Path | None) -> str | None:
    """``candidate`` resolved through symlinks, when that is an executable binary (not a script)."""
    if not candidate:
        return None
    real = os.path.realpath(candidate)
    try:
        with open(real, "rb") as fh:
            magic = fh.read(4)
    except OSError:
        return None
    is_binary = magic == b"\x7fELF" or magic in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
    return real if is_binary and os.access(real, os.X_OK) else None


def _binfmt() -> frozenset[str]:
    arches = set()
    for arch in ("aarch64", "x86_64", "arm"):
        entry = BINFMT_DIR / f"qemu-{arch}"
        try:
            if entry.read_text().startswith("enabled"):
                arches.add(arch)
        except OSError:
            continue
    return frozenset(arches)
