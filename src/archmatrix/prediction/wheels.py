"""The lock's wheels for a lane's platform, downloaded on the host (never installed, never run).

macOS lanes: the tags a CPython of the lock on that macOS and architecture
accepts (``packaging.tags.mac_platforms``: ``arm64`` then ``universal2`` for
Apple silicon; ``x86_64``, ``intel``, … ``universal2`` for the Rosetta lane),
passed to the host's pip as ``--platform`` options, so pip's own configuration
(index, mirror, certificates) decides where they come from. Linux lanes reuse
the staging's :func:`~archmatrix.staging.lock.fetch_lock_wheels`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import canonicalize_name

# The GitHub ``macos-14`` image (runs-on: macos-14), the lanes' default macOS.
from ..staging import pip
from ..staging.lock import LockLike, WheelSet, fetch_lock_wheels
from ..staging.result import MissingWheel, StagingError
from ..staging.tags import find_wheel, python_tuple
from ..suite import arch as arch_mod


@dataclass(frozen=True)
class Platform:
    """Where a lane loads wheels: an OS, an architecture and its version (glibc or macOS)."""

    os: str  # "linux" | "macos"
    arch: str  # canonical (suite.arch): x86_64, aarch64
    version: tuple[int, int]  # glibc for Linux, macOS (major, minor) for macOS

    @property
    def name(self) -> str:
        if self.os == "macos":
            return f"macOS {self.version[0]}.{self.version[1]} {macos_arch(self.arch)}"
        return f"manylinux glibc {self.version[0]}.{self.version[1]} {self.arch}"


def macos_arch(arch: str) -> str:
    """Apple's name of an architecture (arm64, x86_64)."""
    known = arch_mod.lookup(arch)
    return known.macos if known is not None and known.macos else arch


def macos_version_tuple(text: str) -> tuple[int, int]:
    """``"14.7"`` → (14, 7); ``"15"`` → (15, 0). Raises ValueError on anything else."""
    parts = text.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"a macOS version such as 14.7, not {text!r}")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


def macos_platform_tags(arch: str, version: tuple[int, int]) -> list[str]:
    """Every macOS platform tag a Python on ``version``/``arch`` installs, best first."""
    return list(mac_platforms(version, macos_arch(arch)))


def macos_tags(python_version: str, arch: str, version: tuple[int, int]) -> list[Tag]:
    py = python_tuple(python_version)
    platforms = macos_platform_tags(arch, version)
    interpreter = f"cp{py[0]}{py[1]}"
    return [*cpython_tags(py, abis=[interpreter], platforms=platforms),
            *compatible_tags(py, interpreter=interpreter, platforms=platforms)]


def macos_pip_args(python_version: str, arch: str, version: tuple[int, int]) -> list[str]:
    major, minor = python_tuple(python_version)
    args = ["--only-binary=:all:", "--python-version", f"{major}.{minor}", "--implementation", "cp",
            "--abi", f"cp{major}{minor}"]
    for tag in macos_platform_tags(arch, version):
        args += ["--platform", tag]
    return args


def fetch_macos_wheels(lock: LockLike, arch: str, version: tuple[int, int], wheel_cache: Path) -> WheelSet:
    """The lock's wheels for macOS ``version`` on ``arch``, in ``wheel_cache`` (downloaded unless there).

    A pin without one is a :class:`MissingWheel` with pip's reason; StagingError when pip cannot work.
    """
    tags = macos_tags(lock.python, arch, version)
    args = macos_pip_args(lock.python, arch, version)
    py = python_tuple(lock.python)
    target = f"macosx_{version[0]}_{version[1]}_{macos_arch(arch)} cp{py[0]}{py[1]}"
    wheel_cache.mkdir(parents=True, exist_ok=True)
    needed = [f"{n}=={v}" for n, v in sorted(lock.packages.items())
              if find_wheel(wheel_cache, n, v, tags) is None]
    if len(needed) > 1:
        # one pip call for all (the common case); package by package only when it fails
        with contextlib.suppress(StagingError):
            pip.download(needed, wheel_cache, args)
    wheels: list[Path] = []
    installed: dict[str, str] = {}
    missing: list[MissingWheel] = []
    for name, version_pin in sorted(lock.packages.items()):
        wheel = find_wheel(wheel_cache, name, version_pin, tags)
        if wheel is None:
            reason = pip.download([f"{name}=={version_pin}"], wheel_cache, args)
            wheel = find_wheel(wheel_cache, name, version_pin, tags) if reason is None else None
            if wheel is None:
                missing.append(MissingWheel(name, version_pin, target, reason or "pip found no wheel"))
                continue
        wheels.append(wheel)
        installed[name] = version_pin
    return WheelSet(tuple(wheels), installed, tuple(missing), "")


def fetch(lock: LockLike, platform: Platform, wheel_cache: Path) -> WheelSet:
    """The lock's wheels for ``platform`` (only downloads)."""
    if platform.os == "macos":
        return fetch_macos_wheels(lock, platform.arch, platform.version, wheel_cache)
    return fetch_lock_wheels(lock, platform.arch, platform.version, wheel_cache)


def wheel_of(wheels: WheelSet, name: str) -> Path | None:
    key = canonicalize_name(name)
    for path in wheels.wheels:
        if canonicalize_name(path.name.split("-")[0]) == key:
            return path
    return None
