"""The lock staged for a platform, on the host, from wheels only: a lane's whole environment.

Containers and emulated lanes have no network, and pip under QEMU takes many
minutes, so every Linux lane's wheels are fetched here, natively, with pip's
cross-platform options (``pip download``), then installed with pypa's
``installer`` into a venv-shaped prefix (:mod:`.prefix`): every file where
``pip install`` in a venv of the lane's platform puts it, not only
site-packages.

``lock.wheels`` (local wheel files: bring your own package) are installed into
the same prefix after the lock's. A local wheel of a project the lock also pins
takes its place: the lock is staged without it (your build of numpy, not
PyPI's).

Staging is given the pins of one lane (:func:`archmatrix.lockfile.lane_lock`:
markers and per-Python tables already evaluated) and, where the lock has them,
their hashes: a wheel that matches none is a :class:`HashMismatch`, never
installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.parser
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion

from . import pip
from .prefix import CONTAINER_PREFIX, PrefixSpec, install_wheels, make_venv_files, site_packages
from .result import MARKER, MissingWheel, StagingError, StagingResult, read_marker, write_marker
from .store import publish_dir
from .tags import (
    find_wheel,
    local_wheel_tags,
    marker_environment,
    python_tuple,
    supported_tags,
    target_name,
)

# Bump when the staging recipe changes what ends up in a staged directory: the
# key changes, so stale directories are not reused.
STAGING_VERSION = 3  # 3: a venv-shaped prefix installed by installer, not pip --target


class LockLike(Protocol):
    """What staging needs from a lock: one interpreter version, exact pins."""

    @property
    def python(self) -> str: ...  # "3.11"

    @property
    def packages(self) -> Mapping[str, str]: ...  # name -> exact version


def staging_key(lock: LockLike, arch: str, glibc: tuple[int, int],
                hashes: Mapping[str, Sequence[str]] | None = None) -> str:
    """Hash of everything that determines a staged directory; callers name it by this.

    ``hashes`` (the lock's, by canonical name) are part of it: a staging made
    before the lock had hashes was never verified against them.
    """
    facts: dict[str, object] = {
        "staging": STAGING_VERSION,
        "python": lock.python,
        "requirements": {canonicalize_name(k): v for k, v in sorted(lock.packages.items())},
        "arch": arch,
        "glibc": list(glibc),
    }
    if hashes:
        facts["hashes"] = {name: sorted(allowed) for name, allowed in sorted(hashes.items())}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


class HashMismatch(StagingError):
    """A wheel staged for a lane matches none of the lock's hashes for its package."""


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_hashes(wheel: Path, name: str, version: str, allowed: Sequence[str], lock_file: str) -> None:
    """The wheel's digest is one of ``allowed`` ("sha256:<hex>"), else :class:`HashMismatch` (one line)."""
    digests: dict[str, str] = {}
    for entry in allowed:
        algorithm, _, want = entry.partition(":")
        if algorithm not in digests:
            digests[algorithm] = file_digest(wheel, algorithm)
        if digests[algorithm] == want.lower():
            return
    sha256 = digests.get("sha256") or file_digest(wheel, "sha256")
    raise HashMismatch(
        f"{lock_file or 'the lock'}: {name}=={version}: the wheel {wheel.name} (sha256 {sha256}) matches "
        f"none of the lock's {len(allowed)} hash{'es' if len(allowed) != 1 else ''} for {name}"
    )


def unmet_requirements(
    requires: Mapping[str, Sequence[str]],
    locked: Mapping[str, str],
    environment: Mapping[str, str],
    extras: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Requirements (``Requires-Dist`` lines per package) that the lock's pins miss.

    Staging installs with ``--no-deps`` so every lane gets exactly the lock;
    this says where the lock itself is incomplete or inconsistent. ``extras``
    (by canonical name): the extras the lock names a package with
    (``requests[socks]==…``), whose requirements it must pin too.
    """
    pins = {canonicalize_name(name): version for name, version in locked.items()}
    problems: list[str] = []
    for dist, lines in sorted(requires.items()):
        wanted = ("", *(extras or {}).get(canonicalize_name(dist.rsplit(" ", 1)[0]), ()))
        for line in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement as exc:
                problems.append(f"{dist} declares an unreadable requirement {line!r}: {exc}")
                continue
            if req.marker is not None and not any(req.marker.evaluate({**environment, "extra": extra})
                                                  for extra in wanted):
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


@dataclass(frozen=True)
class WheelSet:
    """Wheel files chosen for one platform, and the rows they make (installed, missing)."""

    wheels: tuple[Path, ...] = ()
    installed: Mapping[str, str] = dataclasses.field(default_factory=dict)  # name -> version
    missing: tuple[MissingWheel, ...] = ()
    key: str = ""  # content-derived: what decides the installed files


# One fetch at a time: lanes of several Pythons stage at once, and a pure-Python or abi3 wheel fits
# them all; serialised, the second finds the first's download in the shared cache (fetched once).
_FETCHING = threading.Lock()


def fetch_lock_wheels(lock: LockLike, arch: str, glibc: tuple[int, int], wheel_cache: Path, *,
                      hashes: Mapping[str, Sequence[str]] | None = None, lock_file: str = "") -> WheelSet:
    """The lock's wheels for ``arch``/``glibc``, fetched one lock at a time (:func:`_fetch_lock_wheels`)."""
    with _FETCHING:
        return _fetch_lock_wheels(lock, arch, glibc, wheel_cache, hashes=hashes, lock_file=lock_file)


def _fetch_lock_wheels(lock: LockLike, arch: str, glibc: tuple[int, int], wheel_cache: Path, *,
                       hashes: Mapping[str, Sequence[str]] | None = None, lock_file: str = "") -> WheelSet:
    """The lock's wheels for ``arch``/``glibc``, downloaded into ``wheel_cache`` (shared by all targets)
    unless there already; a pin without a wheel for the platform is a missing row.

    ``hashes`` (by canonical name): every wheel of a package the lock has hashes
    for must match one of them, or :class:`HashMismatch` names ``lock_file``,
    the package and the wheel.
    """
    hashes = hashes or {}
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
        allowed = hashes.get(canonicalize_name(name))
        if allowed:
            verify_hashes(wheel, name, version, allowed, lock_file)
        wheels.append(wheel)
        installed[name] = version
    return WheelSet(tuple(wheels), installed, tuple(missing), staging_key(lock, arch, glibc, hashes))


def container_prefix(python: str) -> PrefixSpec:
    """A Debian image's ``python3.X`` with the prefix at :data:`~.prefix.CONTAINER_PREFIX`."""
    major, minor = python_tuple(python)
    return PrefixSpec(f"{major}.{minor}", f"/usr/bin/python{major}.{minor}", CONTAINER_PREFIX)


def stage_site_packages(
    lock: LockLike,
    arch: str,
    glibc: tuple[int, int],
    dest: Path,
    *,
    wheel_cache: Path,
    spec: PrefixSpec | None = None,
) -> StagingResult:
    """The lock's wheels for ``arch``/``glibc`` installed into a venv-shaped prefix at ``dest``
    (by default a container's, :func:`container_prefix`).

    ``dest`` should be named by :func:`staging_key`; when it already holds a
    complete staging (its marker file), it is returned as is.
    """
    return stage_prefix(lock, None, arch, glibc, dest, key=staging_key(lock, arch, glibc),
                        wheel_cache=wheel_cache, spec=spec or container_prefix(lock.python))


def stage_prefix(
    lock: LockLike,
    local: WheelSet | None,
    arch: str,
    glibc: tuple[int, int],
    dest: Path,
    *,
    key: str,
    wheel_cache: Path,
    spec: PrefixSpec,
    hashes: Mapping[str, Sequence[str]] | None = None,
    lock_file: str = "",
    extras: Mapping[str, Sequence[str]] | None = None,
) -> StagingResult:
    """The lock's wheels, then ``local`` (the user's own), installed as pip installs them into a venv
    of the lane's platform: the prefix ``dest``, laid out and made runnable as ``spec`` says.

    ``key`` names everything that decides the contents; a ``dest`` already
    holding a complete staging of that key is returned as is (no pip, no
    install). Otherwise it is published by :func:`~.store.publish_dir`, so an
    interrupted run never leaves a directory that looks staged.
    """
    cached = read_marker(dest)
    if cached is not None:
        if cached.key != key:
            raise StagingError(
                f"{dest} holds a staging of other inputs (key {cached.key}, expected {key}); "
                "name staging directories by their key"
            )
        return cached

    pinned = fetch_lock_wheels(lock, arch, glibc, wheel_cache, hashes=hashes, lock_file=lock_file)
    local = local or WheelSet()
    result = StagingResult(
        site_packages=site_packages(dest, spec.python),
        installed={**pinned.installed, **local.installed},
        missing=[*pinned.missing, *local.missing],
        wheels=sorted(w.name for w in (*pinned.wheels, *local.wheels)),
        key=key,
    )

    def build(tmp: Path) -> None:
        nonlocal result
        make_venv_files(tmp, spec)
        install_wheels(pinned.wheels, tmp, spec, published=dest)
        # the lock's own consistency: installed without dependencies, every lane gets exactly the pins
        unmet = unmet_requirements(staged_requirements(site_packages(tmp, spec.python)), lock.packages,
                                   marker_environment(lock.python, arch), extras)
        install_wheels(local.wheels, tmp, spec, published=dest)
        result = dataclasses.replace(result, unmet=unmet)
        write_marker(tmp, result, dest)  # last: its presence means "complete"

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


def select_local_wheels(files: Sequence[Path], python_version: str, arch: str,
                        glibc: tuple[int, int]) -> WheelSet:
    """The local wheels that fit this platform (the best-ranked per project).

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
    missing = tuple(
        MissingWheel(name, version, target, f"none of the local wheels for {name} fits {target}")
        for name, version in sorted(seen.items()) if name not in best
    )
    # named by the wheels' contents: a rebuilt wheel of the same version is restaged
    digest = hashlib.sha256(f"{python_version}\0{arch}\0{glibc}".encode())
    for project in sorted(best):
        digest.update(best[project][1].name.encode())
        digest.update(hashlib.sha256(best[project][1].read_bytes()).digest())
    return WheelSet(
        wheels=tuple(best[project][1] for project in sorted(best)),
        installed={name: version for name, (_r, _p, version) in sorted(best.items())},
        missing=missing,
        key=digest.hexdigest()[:16],
    )


# --- the lock for one platform ----------------------------------------------------------------


@dataclass(frozen=True)
class StagedLock:
    """The lock (and ``lock.wheels``) staged for a lane: its venv-shaped prefix, and the package rows."""

    staging: StagingResult  # lock and local wheels together (for the wheel.<pkg> rows)
    prefix: Path  # the environment: pyvenv.cfg, bin/, lib/pythonX.Y/site-packages, lib/, include/, share/

    @property
    def python(self) -> Path:
        """The prefix's interpreter (host lanes; a container's points into the image)."""
        return self.prefix / "bin" / "python"


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
    *,
    spec: PrefixSpec,
    hashes: Mapping[str, Sequence[str]] | None = None,
    lock_file: str = "",
    extras: Mapping[str, Sequence[str]] | None = None,
) -> StagedLock:
    """Stage the lock's wheels (and ``lock.wheels``, relative to ``config_dir``) for ``arch``/``glibc``
    into a prefix under ``workdir`` that ``spec``'s interpreter runs. Raises :class:`StagingError`
    (:class:`HashMismatch` when a wheel is not one ``hashes`` allow: ``lock_file`` names the lock)."""
    progress(f"staging the lock for {arch} (glibc {glibc[0]}.{glibc[1]})")
    files = local_wheel_files(lock.wheels, config_dir)
    # a project the user brings as a local wheel is not also staged from the lock
    replaced = local_projects(files)
    pins: LockLike = lock
    if replaced:
        kept = {n: v for n, v in lock.packages.items() if canonicalize_name(n) not in replaced}
        pins = _Pins(lock.python, kept)
    local = select_local_wheels(files, lock.python, arch, glibc) if files else None
    hashes = {name: allowed for name, allowed in (hashes or {}).items() if name not in replaced}
    pinned_key = staging_key(pins, arch, glibc, hashes)
    facts = [STAGING_VERSION, pinned_key, local.key if local else "", *spec.facts()]
    if extras:  # they decide which requirements the staging reports unmet
        facts.append(json.dumps({name: sorted(names) for name, names in sorted(extras.items())}))
    key = hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:16]
    dest = workdir / "prefixes" / f"{arch}-{key}"
    staging = stage_prefix(pins, local, arch, glibc, dest, key=key, wheel_cache=workdir / "wheels", spec=spec,
                           hashes=hashes, lock_file=lock_file, extras=extras)
    return StagedLock(staging, dest)


@dataclass(frozen=True)
class _Pins:
    python: str
    packages: Mapping[str, str]
