"""Which wheels a target platform installs: manylinux tags, wheel tags, the best wheel in a directory.

Pure functions of (Python version, architecture, glibc), except :func:`find_wheel`,
which lists a directory. pip must be told *every* manylinux tag the target's
glibc accepts: given only ``manylinux2014_aarch64`` it silently picks an older
release whose wheels carry that tag (numpy 2.2.6 instead of 2.4.x), and lanes
would quietly test different versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

# The oldest glibc each architecture has a manylinux tag for: manylinux1 is
# glibc 2.5 (x86 only); aarch64 wheels start at manylinux2014 (glibc 2.17).
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
# PEP 600 aliases of the older manylinux policies.
_LEGACY_ALIASES = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def platform_tags(arch: str, glibc: tuple[int, int]) -> list[str]:
    """Every manylinux platform tag a glibc ``glibc`` system on ``arch`` accepts.

    Newest first, each legacy alias right after the PEP 600 tag it stands for
    (the order ``packaging.tags`` uses for the running system)::

        manylinux_2_36_aarch64, ..., manylinux_2_17_aarch64, manylinux2014_aarch64
    """
    if arch not in _OLDEST_GLIBC_MINOR:
        raise ValueError(f"unsupported architecture {arch!r} (known: {sorted(_OLDEST_GLIBC_MINOR)})")
    major, minor = glibc
    oldest = _OLDEST_GLIBC_MINOR[arch]
    if major != 2 or minor < oldest:
        raise ValueError(f"glibc {major}.{minor} is older than any manylinux tag for {arch}")
    tags: list[str] = []
    for m in range(minor, oldest - 1, -1):
        tags.append(f"manylinux_2_{m}_{arch}")
        if m in _LEGACY_ALIASES:
            tags.append(f"{_LEGACY_ALIASES[m]}_{arch}")
    return tags


def python_tuple(python_version: str) -> tuple[int, int]:
    """``"3.11"`` → ``(3, 11)``."""
    major, _, minor = python_version.partition(".")
    try:
        return int(major), int(minor.split(".")[0])
    except ValueError:
        raise ValueError(f"python_version must look like '3.11', got {python_version!r}") from None


def supported_tags(python_version: str, arch: str, glibc: tuple[int, int]) -> list[Tag]:
    """Wheel tags a CPython ``python_version`` on that platform installs, best first."""
    version = python_tuple(python_version)
    platforms = platform_tags(arch, glibc)
    interpreter = f"cp{version[0]}{version[1]}"
    return [
        *cpython_tags(version, abis=[interpreter], platforms=platforms),
        *compatible_tags(version, interpreter=interpreter, platforms=platforms),
    ]


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


def target_name(python_version: str, arch: str, glibc: tuple[int, int]) -> str:
    """Short human name of a staging target, e.g. ``manylinux_2_36_aarch64 cp311``."""
    major, minor = python_tuple(python_version)
    return f"{platform_tags(arch, glibc)[0]} cp{major}{minor}"


def marker_environment(python_version: str, arch: str) -> dict[str, str]:
    """PEP 508 marker values of the target interpreter on Linux ``arch`` (not of this host)."""
    from ..lockfile import marker_values  # the one home of lane environments

    return marker_values("linux", arch, python_version)


def macos_wheel_fits(filename: str, arch: str) -> bool:
    """Does a (local) wheel file install on macOS ``arch``? Pure Python, universal2 or that arch."""
    try:
        _name, _version, _build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return False
    return any(t.platform == "any" or (t.platform.startswith("macosx_")
                                       and t.platform.endswith((f"_{arch}", "_universal2")))
               for t in tags)


def find_wheel(directory: Path, name: str, version: str, tags: Sequence[Tag]) -> Path | None:
    """The best wheel in ``directory`` for ``name==version`` under ``tags``.

    The cache is shared by all targets, so it holds wheels for other
    platforms too; ``tags`` (best first) decide which file fits this one.
    """
    wanted = canonicalize_name(name)
    try:
        pinned = Version(version)
    except InvalidVersion:
        return None
    rank = {tag: i for i, tag in enumerate(tags)}
    best: tuple[int, Path] | None = None
    for path in directory.glob("*.whl") if directory.is_dir() else ():
        try:
            file_name, file_version, _build, file_tags = parse_wheel_filename(path.name)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if file_name != wanted or file_version != pinned:
            continue
        ranks = [rank[t] for t in file_tags if t in rank]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), path)
    return best[1] if best else None


def wheel_names(wheel_dir: Path, pins: Mapping[str, str]) -> list[str]:
    """The wheel files in ``wheel_dir`` of the pinned versions (``pins``: name → version)."""
    wanted = {(canonicalize_name(n), v) for n, v in pins.items()}
    names = []
    for path in sorted(wheel_dir.glob("*.whl")):
        try:
            name, version, _build, _tags = parse_wheel_filename(path.name)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if (name, str(version)) in wanted:
            names.append(path.name)
    return names


def wheel_project(filename: str) -> tuple[str, str]:
    """(canonical project name, version) of a wheel file name."""
    name, version, _build, _tags = parse_wheel_filename(filename)
    return str(name), str(version)
