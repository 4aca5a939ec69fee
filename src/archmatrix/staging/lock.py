"""The lock staged as site-packages for a platform, on the host, from wheels only.

Containers and emulated lanes have no network, and pip under QEMU takes many
minutes, so every Linux lane's packages are resolved and unpacked here,
natively, with pip's cross-platform options, then put on the lane's path.

``lock.wheels`` (local wheel files: bring your own package) are staged the
same way into a second content-addressed directory. A local wheel of a project
the lock also pins takes its place: the lock is staged without it (your build
of numpy, not PyPI's).
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.parser
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion

from . import pip
from .result import MARKER, MissingWheel, StagingError, StagingResult, read_marker, write_marker
from .store import publish_dir
from .tags import find_wheel, local_wheel_tags, marker_environment, supported_tags, target_name

# Bump when the staging recipe changes what ends up in a staged directory: the
# key changes, so stale directories are not reused.
STAGING_VERSION = 2


class LockLike(Protocol):
    """What staging needs from a lock: one interpreter version, exact pins."""

    @property
    def python(self) -> str: ...  # "3.11"

    @property
    def packages(self) -> Mapping[str, str]: ...  # name -> exact version


def staging_key(lock: LockLike, arch: str, glibc: tuple[int, int]) -> str:
    """Hash of everything that determines a staged directory; callers name it by this."""
    facts = {
        "staging": STAGING_VERSION,
        "python": lock.python,
        "requirements": {canonicalize_name(k): v for k, v in sorted(lock.packages.items())},
        "arch": arch,
        "glibc": list(glibc),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


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
    complete staging (its marker file), it is returned as is. Otherwise it is
    published by :func:`~.store.publish_dir`, so an interrupted run never
    leaves a directory that looks staged. Wheels are kept in ``wheel_cache``
    (shared by all targets).
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

    tags = supported_tags(lock.python, arch, glibc)
    target = target_name(lock.python, arch, glibc)
    target_args = pip.target_args(lock.python, arch, glibc)
    wheel_cache.mkdir(parents=True, exist_ok=True)

    wheels: list[Path] = []
    installed: dict[str, str] = {}
    missing: list[MissingWheel] = []
    needed = [f"{n}=={v}" for n, v in sorted(lock.packages.items())
              if find_wheel(wheel_cache, n, v, tags) is None]
    if len(needed) > 1:
        # One pip call for everything is about twice as fast as one per
        # package; only when it fails (a package has no wheel) does the loop
        # below ask package by package, so the failure is attributed.
        with contextlib.suppress(StagingError):
            pip.download(needed, wheel_cache, target_args)
    for name, version in sorted(lock.packages.items()):
        wheel = find_wheel(wheel_cache, name, version, tags)
        if wheel is None:
            reason = pip.download([f"{name}=={version}"], wheel_cache, target_args)
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

    result = StagingResult(site_packages=dest, installed=installed, missing=missing,
                           wheels=sorted(w.name for w in wheels), key=key)

    def build(tmp: Path) -> None:
        nonlocal result
        if wheels:
            pip.install(wheels, tmp, target_args)
        unmet = unmet_requirements(staged_requirements(tmp), lock.packages,
                                   marker_environment(lock.python, arch))
        result = dataclasses.replace(result, unmet=unmet)
        write_marker(tmp, result)  # last: its presence means "complete"

    if publish_dir(dest, build, marker=MARKER):
        return result
    other = read_marker(dest)  # a concurrent run published it first: use its result
    if other is None:
        raise StagingError(f"{dest} was published without its marker")
    return other


# --- local wheels (lock.wheels) ------------------------------------------------------------


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

    def build(tmp: Path) -> None:
        if best:
            pip.install([path for _r, path, _v in best.values()], tmp,
                        pip.target_args(python_version, arch, glibc, f"linux_{arch}"), what="lock.wheels")
        write_marker(tmp, result)  # last: its presence means "complete"

    publish_dir(dest, build, marker=MARKER)  # a concurrent run staging the same wheels: identical
    return result


# --- the lock for one platform ----------------------------------------------------------------


@dataclass(frozen=True)
class StagedLock:
    """The lock staged for one platform: what goes on the venv's path, and the per-package rows."""

    staging: StagingResult  # lock and local wheels together (for the wheel.<pkg> rows)
    sites: tuple[Path, ...]  # site-packages directories, in path order


class LockWithWheels(LockLike, Protocol):
    @property
    def wheels(self) -> Sequence[str]: ...  # local wheel files or directories


def stage_lock(
    lock: LockWithWheels,
    config_dir: Path,
    arch: str,
    glibc: tuple[int, int],
    workdir: Path,
    progress: Callable[[str], None] = lambda line: None,
) -> StagedLock:
    """Stage the lock's wheels (and ``lock.wheels``, relative to ``config_dir``) for ``arch``/``glibc``
    under ``workdir``. Raises :class:`StagingError`."""
    progress(f"staging the lock for {arch} (glibc {glibc[0]}.{glibc[1]})")
    files = local_wheel_files(lock.wheels, config_dir)
    # a project the user brings as a local wheel is not also staged from the lock
    replaced = local_projects(files)
    pins: LockLike = lock
    if replaced:
        kept = {n: v for n, v in lock.packages.items() if canonicalize_name(n) not in replaced}
        pins = _Pins(lock.python, kept)
    dest = workdir / "site-packages" / f"{arch}-{staging_key(pins, arch, glibc)}"
    staging = stage_site_packages(pins, arch, glibc, dest, wheel_cache=workdir / "wheels")
    local = stage_local_wheels(files, lock.python, arch, glibc, workdir) if files else None
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


@dataclass(frozen=True)
class _Pins:
    python: str
    packages: Mapping[str, str]
