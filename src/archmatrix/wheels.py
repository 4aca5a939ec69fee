"""Stage a site-packages for another platform on the host, from wheels only.

Containers and emulated lanes have no network, and pip under QEMU takes many
minutes, so every lane's packages are resolved and unpacked here, natively,
with pip's cross-platform options, then mounted into the lane.

Two facts shape this module:

- pip must be told *every* manylinux tag the target's glibc accepts. Given only
  ``manylinux2014_aarch64`` it silently picks an older release whose wheels
  carry that tag (numpy 2.2.6 instead of 2.4.x), and lanes would quietly test
  different versions.
- A locked version without a wheel for the lane's platform is a result
  (outcome ``no-wheel``), not a crash: it is reported per package and the
  other packages are still staged.
"""

from __future__ import annotations

import contextlib
import email.parser
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from archmatrix.command import CommandError, run

# Bump when the staging recipe changes what ends up in a staged directory: the
# key changes, so stale directories are not reused.
STAGING_VERSION = 2
MARKER = ".archmatrix-staged.json"

# The oldest glibc each architecture has a manylinux tag for: manylinux1 is
# glibc 2.5 (x86 only); aarch64 wheels start at manylinux2014 (glibc 2.17).
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
# PEP 600 aliases of the older manylinux policies.
_LEGACY_ALIASES = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}

PIP_TIMEOUT = 20 * 60  # one package; scipy for aarch64 is tens of MB

# Text pip prints when it could not talk to the index at all. Without these a
# network outage would look like "no version found", i.e. like a missing wheel.
_NETWORK_FAILURE_MARKERS = (
    "Retrying (Retry(",
    "NewConnectionError",
    "Max retries exceeded",
    "Could not fetch URL",
    "ConnectionError",
    "ReadTimeoutError",
    "SSLError",
    "Temporary failure in name resolution",
)


class LockLike(Protocol):
    """What staging needs from a lock: one interpreter version, exact pins."""

    @property
    def python_version(self) -> str: ...  # "3.11"

    @property
    def requirements(self) -> Mapping[str, str]: ...  # name -> exact version


@dataclass(frozen=True)
class MissingWheel:
    """A locked version with no wheel for the platform: the lane's ``no-wheel``."""

    name: str
    version: str
    platform: str  # e.g. "manylinux_2_36_aarch64 cp311"
    reason: str = ""  # what pip said, e.g. which versions it did find


@dataclass(frozen=True)
class StagingResult:
    site_packages: Path
    installed: dict[str, str] = field(default_factory=dict)  # name -> version
    missing: list[MissingWheel] = field(default_factory=list)
    wheels: list[str] = field(default_factory=list)  # file names actually installed
    from_cache: bool = False
    key: str = ""  # staging_key of the inputs
    # Requirements of staged packages the lock does not satisfy (it is not
    # closed): installed with --no-deps, these would fail at import time.
    unmet: list[str] = field(default_factory=list)


class StagingError(Exception):
    """Staging failed for a reason that is not a missing wheel (network, pip, disk)."""


# --- tags (pure) -------------------------------------------------------------------


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


def _python_tuple(python_version: str) -> tuple[int, int]:
    major, _, minor = python_version.partition(".")
    try:
        return int(major), int(minor.split(".")[0])
    except ValueError:
        raise ValueError(f"python_version must look like '3.11', got {python_version!r}") from None


def supported_tags(python_version: str, arch: str, glibc: tuple[int, int]) -> list[Tag]:
    """Wheel tags a CPython ``python_version`` on that platform installs, best first."""
    version = _python_tuple(python_version)
    platforms = platform_tags(arch, glibc)
    interpreter = f"cp{version[0]}{version[1]}"
    return [
        *cpython_tags(version, abis=[interpreter], platforms=platforms),
        *compatible_tags(version, interpreter=interpreter, platforms=platforms),
    ]


def target_name(python_version: str, arch: str, glibc: tuple[int, int]) -> str:
    """Short human name of a staging target, e.g. ``manylinux_2_36_aarch64 cp311``."""
    major, minor = _python_tuple(python_version)
    return f"{platform_tags(arch, glibc)[0]} cp{major}{minor}"


def staging_key(lock: LockLike, arch: str, glibc: tuple[int, int]) -> str:
    """Hash of everything that determines a staged directory; callers name it by this."""
    facts = {
        "staging": STAGING_VERSION,
        "python": lock.python_version,
        "requirements": {canonicalize_name(k): v for k, v in sorted(lock.requirements.items())},
        "arch": arch,
        "glibc": list(glibc),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


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


def classify_pip_failure(output: str) -> Literal["no-wheel", "infra"]:
    """Was a failed ``pip download`` a missing wheel, or could pip not work at all?"""
    if any(marker in output for marker in _NETWORK_FAILURE_MARKERS):
        return "infra"
    if "No matching distribution found" in output:
        return "no-wheel"
    return "infra"


def _pip_reason(output: str) -> str:
    """pip's one informative line: which versions it found for this platform."""
    for line in output.splitlines():
        if "Could not find a version that satisfies" in line:
            return line.removeprefix("ERROR: ").strip()
    return output.strip().splitlines()[-1] if output.strip() else ""


def _target_args(python_version: str, arch: str, glibc: tuple[int, int]) -> list[str]:
    major, minor = _python_tuple(python_version)
    args = [
        "--only-binary=:all:",
        "--python-version",
        f"{major}.{minor}",
        "--implementation",
        "cp",
        "--abi",
        f"cp{major}{minor}",
    ]
    for tag in platform_tags(arch, glibc):
        args += ["--platform", tag]
    return args


def marker_environment(python_version: str, arch: str) -> dict[str, str]:
    """PEP 508 marker values of the target interpreter (not of this host)."""
    major, minor = _python_tuple(python_version)
    return {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": arch,
        "python_version": f"{major}.{minor}",
        "python_full_version": f"{major}.{minor}.0",
        "implementation_version": f"{major}.{minor}.0",
        "extra": "",
    }


def unmet_requirements(
    requires: Mapping[str, Sequence[str]],
    locked: Mapping[str, str],
    environment: Mapping[str, str],
) -> list[str]:
    """Requirements (``Requires-Dist`` lines per package) that the lock's pins miss.

    Staging installs with ``--no-deps`` so every lane gets exactly the lock;
    this says where the lock itself is incomplete or inconsistent.
    """
    pins = {canonicalize_name(name): version for name, version in locked.items()}
    problems: list[str] = []
    for dist, lines in sorted(requires.items()):
        for line in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement as exc:
                problems.append(f"{dist} declares an unreadable requirement {line!r}: {exc}")
                continue
            if req.marker is not None and not req.marker.evaluate(dict(environment)):
                continue
            pin = pins.get(canonicalize_name(req.name))
            if pin is None:
                problems.append(f"{dist} requires {req}, which the lock does not pin")
            elif not req.specifier.contains(pin, prereleases=True):
                problems.append(f"{dist} requires {req}, the lock pins {req.name}=={pin}")
    return problems


def staged_requirements(site_packages: Path) -> dict[str, list[str]]:
    """``Requires-Dist`` lines of every distribution in a site-packages, by "name version"."""
    parser = email.parser.HeaderParser()
    requires: dict[str, list[str]] = {}
    for metadata in sorted(site_packages.glob("*.dist-info/METADATA")):
        headers = parser.parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
        requires[f"{headers['Name']} {headers['Version']}"] = headers.get_all("Requires-Dist") or []
    return requires


# --- staging -------------------------------------------------------------------------


def stage_site_packages(
    lock: LockLike,
    arch: str,
    glibc: tuple[int, int],
    dest: Path,
    *,
    wheel_cache: Path,
) -> StagingResult:
    """Unpack the lock's wheels for ``arch``/``glibc`` into ``dest`` (a site-packages).

    ``dest`` should be named by :func:`staging_key`; when it already holds a
    complete staging (its marker file), it is returned as is. Otherwise the
    packages are staged into a temporary sibling that is renamed to ``dest``
    only when complete, so an interrupted run never leaves a directory that
    looks staged. Wheels are kept in ``wheel_cache`` (shared by all targets).
    """
    key = staging_key(lock, arch, glibc)
    cached = read_marker(dest)
    if cached is not None:
        if cached.key != key:
            raise StagingError(
                f"{dest} holds a staging of other inputs (key {cached.key}, expected {key}); "
                "name staging directories by staging_key()"
            )
        return cached

    tags = supported_tags(lock.python_version, arch, glibc)
    target = target_name(lock.python_version, arch, glibc)
    target_args = _target_args(lock.python_version, arch, glibc)
    wheel_cache.mkdir(parents=True, exist_ok=True)

    wheels: list[Path] = []
    installed: dict[str, str] = {}
    missing: list[MissingWheel] = []
    needed = [f"{n}=={v}" for n, v in sorted(lock.requirements.items())
              if find_wheel(wheel_cache, n, v, tags) is None]
    if len(needed) > 1:
        # One pip call for everything is about twice as fast as one per
        # package; only when it fails (a package has no wheel) does the loop
        # below ask package by package, so the failure is attributed.
        with contextlib.suppress(StagingError):
            _download(needed, wheel_cache, target_args)
    for name, version in sorted(lock.requirements.items()):
        wheel = find_wheel(wheel_cache, name, version, tags)
        if wheel is None:
            reason = _download([f"{name}=={version}"], wheel_cache, target_args)
            if reason is not None:
                missing.append(MissingWheel(name, version, target, reason))
                continue
            wheel = find_wheel(wheel_cache, name, version, tags)
            if wheel is None:
                raise StagingError(
                    f"pip downloaded {name}=={version} for {target} but no matching wheel is in {wheel_cache}"
                )
        wheels.append(wheel)
        installed[name] = version

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    # mkdtemp makes it 0700; lanes may read it as another user (container users).
    staging.chmod(0o755)
    try:
        if wheels:
            _install(wheels, staging, target_args)
        unmet = unmet_requirements(
            staged_requirements(staging),
            lock.requirements,
            marker_environment(lock.python_version, arch),
        )
        result = StagingResult(
            site_packages=dest,
            installed=installed,
            missing=missing,
            wheels=sorted(w.name for w in wheels),
            key=key,
            unmet=unmet,
        )
        # The marker is written last: its presence means "complete".
        _write_marker(staging, result)
        return _publish(staging, dest, result)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _download(requirements: Sequence[str], wheel_cache: Path, target_args: list[str]) -> str | None:
    """Download wheels into the cache; return pip's reason when one does not exist."""
    # pip writes the file in place; a crash could leave a truncated wheel that
    # later looks cached. Download beside it and move complete files in.
    incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=wheel_cache))
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    argv += [*target_args, "--dest", str(incoming), *requirements]
    try:
        try:
            run(argv, timeout=PIP_TIMEOUT)
        except CommandError as exc:
            output = f"{exc.stdout}\n{exc.stderr}"
            if exc.returncode is not None and classify_pip_failure(output) == "no-wheel":
                return _pip_reason(output)
            raise StagingError(
                f"pip could not download {' '.join(requirements)}: {exc}\n{exc.tail()}"
            ) from exc
        for path in incoming.iterdir():
            os.replace(path, wheel_cache / path.name)
        return None
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _install(wheels: Sequence[Path], target_dir: Path, target_args: list[str]) -> None:
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index"]
    argv += ["--disable-pip-version-check", "--target", str(target_dir), *target_args]
    argv += [str(w) for w in wheels]
    try:
        run(argv, timeout=PIP_TIMEOUT)
    except CommandError as exc:
        raise StagingError(f"pip could not install the staged wheels: {exc}\n{exc.tail()}") from exc


def _publish(staging: Path, dest: Path, result: StagingResult) -> StagingResult:
    if dest.exists():
        other = read_marker(dest)
        if other is not None:  # a concurrent run finished first; use its result
            return other
        # Without a marker it is not ours to trust (we never create one without).
        shutil.rmtree(dest)
    try:
        os.rename(staging, dest)
    except OSError:
        other = read_marker(dest)
        if other is None:
            raise
        return other
    return result


# --- marker --------------------------------------------------------------------------


def _write_marker(directory: Path, result: StagingResult) -> None:
    data = {
        "schema": 1,
        "key": result.key,
        "installed": result.installed,
        "wheels": result.wheels,
        "missing": [asdict(m) for m in result.missing],
        "unmet": result.unmet,
    }
    (directory / MARKER).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_marker(dest: Path) -> StagingResult | None:
    """The result recorded in a completely staged ``dest``, or None."""
    try:
        data = json.loads((dest / MARKER).read_text())
        return StagingResult(
            site_packages=dest,
            installed=dict(data["installed"]),
            missing=[MissingWheel(**m) for m in data["missing"]],
            wheels=list(data["wheels"]),
            from_cache=True,
            key=str(data["key"]),
            unmet=list(data["unmet"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        # Absent, cut short or of another format: not a staging we can trust.
        return None
