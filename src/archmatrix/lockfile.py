"""Real lock files (``lock.file``) read into pins, and the pins each lane installs.

Two forms are read, both into :class:`~archmatrix.model.Pin` values:

- a PEP 751 ``pylock.toml`` (``pylock.<name>.toml``), validated by
  ``packaging.pylock``: each package's version, marker and the hashes of its wheels;
- a ``requirements.txt`` of exact pins as ``pip-compile``/``uv pip compile`` write
  them: ``name[extras]==version ; marker --hash=sha256:…``, lines continued with ``\\``.

Anything a lane could not reproduce exactly — an unpinned or ranged requirement,
an editable or URL requirement, an include, an index option — is a one-line
:class:`~archmatrix.errors.ConfigError` naming the file and line.

Which pins a lane installs is decided here only: :func:`lane_environment` is
the one place a lane's PEP 508 environment (``platform_machine``,
``sys_platform``, ``python_version``, …) is derived from its
:class:`~archmatrix.model.LaneTarget`, and :func:`lane_lock` evaluates every
pin's marker (and per-Python table entry) against it. A pin a lane's
environment excludes is simply not that lane's: never staged there, never a
``no-wheel`` there.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.pylock import Pylock, PylockValidationError, is_valid_pylock_path
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from .errors import ConfigError
from .model import Lock, Pin
from .suite import arch as arch_mod

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the lint and test environments are 3.11
    import tomli as tomllib

if TYPE_CHECKING:
    from .hostfacts import HostFacts
    from .model import LaneTarget

# Digests a --hash or a pylock wheel may carry, and their hex lengths; pip accepts these three.
HASH_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}


class LockFileError(ConfigError):
    """A lock file archmatrix cannot stage exactly: ``file:line: what is wrong``."""


class LockSelectError(ValueError):
    """The lock cannot say what one lane installs (two pins of one package apply to it)."""


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockFile:
    """What a lock file says: its pins, and (a pylock.toml) the environments and Pythons it is for."""

    pins: tuple[Pin, ...]
    environments: tuple[str, ...] = ()  # PEP 508 markers; a lane must satisfy one
    requires_python: str | None = None


def read_lock_file(path: Path, shown: str) -> LockFile:
    """The lock file at ``path`` (``shown``: how messages name it)."""
    kind = lock_file_kind(path)
    if kind is None:
        raise LockFileError(f"{shown}: expected a PEP 751 lock (pylock.toml, pylock.<name>.toml) or a "
                            "requirements file of exact pins (.txt)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LockFileError(f"{shown}: cannot read ({exc})") from None
    if kind == "pylock":
        return read_pylock_file(text, shown)
    return LockFile(read_requirements(text, shown))


def lock_file_kind(path: Path) -> str | None:
    """``"pylock"``, ``"requirements"`` or None, by the file's name (as pip and uv tell them apart)."""
    if is_valid_pylock_path(path):
        return "pylock"
    if path.suffix == ".txt":
        return "requirements"
    return None


# A comment: "#" at the start of a line or after whitespace (pip's rule: "pkg==1#x" has no comment).
_COMMENT = re.compile(r"(^|\s+)#.*$")
# Where a requirement line's options start: " --hash=…", " -x".
_OPTION = re.compile(r"(^|\s)(--?[A-Za-z])")


def read_requirements(text: str, shown: str) -> tuple[Pin, ...]:
    """The pins of a requirements file: exact ``==`` pins with extras, markers and ``--hash`` options."""
    pins: list[Pin] = []
    for number, line in _logical_lines(text):
        where = f"{shown}:{number}"
        options = _OPTION.search(line)
        requirement = line[:options.start()].strip() if options else line
        rest = line[options.start():].split() if options else []
        if not requirement:
            raise LockFileError(f"{where}: {_option_problem(rest[0])}")
        hashes = _hash_options(rest, where)
        pins.append(_pin(requirement, hashes, where))
    return _checked(pins, shown)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line number, text) of each non-empty line, continuations joined, comments cut."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        line = _COMMENT.sub("", raw).rstrip()  # "pkg==1 \\  " continues too
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        joined = " ".join([*pending, line]).strip()
        pending = []
        if joined:
            out.append((start, joined))
    if pending and " ".join(pending).strip():
        out.append((start, " ".join(pending).strip()))
    return out


def _option_problem(option: str) -> str:
    name = option.split("=", 1)[0]
    if name in ("-r", "--requirement", "-c", "--constraint"):
        return f"{name}: includes are not supported; list every pin in this one file"
    if name in ("-e", "--editable"):
        return f"{name}: an editable install is not a locked wheel; build a wheel and list it in lock.wheels"
    # -i, -f and every --…index… option (pip-compile writes them into its output)
    if name in ("-i", "-f", "--find-links") or "index" in name:
        return (f"{name}: index options are not read from the lock; pip's own configuration (pip.conf, "
                "PIP_INDEX_URL) decides where wheels come from, and lock.wheels adds local ones")
    return f"{name}: not supported in a lock file (only exact pins with --hash options)"


def _hash_options(tokens: Sequence[str], where: str) -> tuple[str, ...]:
    hashes: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--hash" and i + 1 < len(tokens):
            value, i = tokens[i + 1], i + 2
        elif token.startswith("--hash="):
            value, i = token.removeprefix("--hash="), i + 1
        else:
            raise LockFileError(f"{where}: {_option_problem(token)}")
        hashes.append(_hash(value, where))
    return tuple(hashes)


def _hash(value: str, where: str) -> str:
    algorithm, _, digest = value.partition(":")
    if algorithm not in HASH_ALGORITHMS or not re.fullmatch(f"[0-9a-fA-F]{{{HASH_ALGORITHMS[algorithm]}}}",
                                                            digest):
        raise LockFileError(f"{where}: --hash={value:.80}: expected sha256:<64 hex digits> "
                            f"(or {', '.join(HASH_ALGORITHMS)})")
    return f"{algorithm}:{digest.lower()}"


def _pin(text: str, hashes: tuple[str, ...], where: str) -> Pin:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise LockFileError(f"{where}: not a requirement ({' '.join(str(exc).split())})") from None
    if req.url:
        raise LockFileError(f"{where}: {req.name} @ {req.url:.80}: a URL requirement is not an exact pin "
                            "of an index's wheel; build the wheel and list it in lock.wheels")
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        found = str(req.specifier) or "no version"
        raise LockFileError(f"{where}: {req.name}: expected an exact pin (name==version), found {found}: "
                            "every lane must install the same version")
    return Pin(name=req.name, version=specs[0].version, marker=str(req.marker) if req.marker else None,
               hashes=hashes, extras=tuple(sorted(req.extras)), where=where)


def read_pylock(text: str, shown: str) -> tuple[Pin, ...]:
    """The pins of a PEP 751 lock: each package's version, marker and the hashes of its wheels."""
    return read_pylock_file(text, shown).pins


def read_pylock_file(text: str, shown: str) -> LockFile:
    """A PEP 751 lock: its pins, ``environments`` and ``requires-python``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise LockFileError(f"{shown}:{line.group(1) if line else 1}: TOML syntax error: {exc}") from None
    try:
        lock = Pylock.from_dict(data)
    except PylockValidationError as exc:
        raise LockFileError(f"{shown}:{_pylock_line(text, exc.context)}: not a valid PEP 751 lock: "
                            f"{' '.join(str(exc).split())}") from None
    pins = []
    for index, package in enumerate(lock.packages):
        where = f"{shown}:{_pylock_line(text, f'packages[{index}]')}"
        if package.version is None or package.is_direct:
            raise LockFileError(f"{where}: {package.name}: a package from a directory, archive or VCS is "
                                "not an index's wheel of an exact version; build the wheel and list it in "
                                "lock.wheels")
        hashes = [f"{algorithm}:{digest.lower()}" for wheel in package.wheels or ()
                  for algorithm, digest in wheel.hashes.items() if algorithm in HASH_ALGORITHMS]
        pins.append(Pin(name=package.name, version=str(package.version),
                        marker=str(package.marker) if package.marker else None,
                        hashes=tuple(dict.fromkeys(hashes)), where=where,
                        requires_python=str(package.requires_python) if package.requires_python else None))
    return LockFile(_checked(pins, shown), tuple(str(m) for m in lock.environments or ()),
                    str(lock.requires_python) if lock.requires_python else None)


def _pylock_line(text: str, context: str | None) -> int:
    """The line of ``packages[i]`` (its ``[[packages]]`` header) in a pylock file; else 1."""
    match = re.match(r"packages\[(\d+)\]", context or "")
    if match:
        headers = [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "[[packages]]"]
        index = int(match.group(1))
        if index < len(headers):
            return headers[index]
    key = (context or "").split(".")[0].split("[")[0]
    for n, line in enumerate(text.splitlines(), 1):
        if key and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return n
    return 1


def _checked(pins: Sequence[Pin], shown: str) -> tuple[Pin, ...]:
    """A package pinned twice is an error unless every pin of it has a marker (one per environment)."""
    seen: dict[str, Pin] = {}
    for pin in pins:
        key = canonicalize_name(pin.name)
        other = seen.get(key)
        if other is not None and (other.marker is None or pin.marker is None):
            raise LockFileError(f"{pin.where}: {pin.name} is pinned again (first at {other.where}); "
                                "pin a package once, or once per marker")
        seen.setdefault(key, pin)
    if not pins:
        raise LockFileError(f"{shown}: the lock file pins nothing")
    return tuple(pins)


# --- per lane ----------------------------------------------------------------------------------

# PEP 508 values per operating system (LaneTarget.os, or the host's platform.system()).
_OS_VALUES = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
    "macos": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"},
    "windows": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"},
}
_HOST_OS = {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}


def marker_values(os_name: str, arch: str, python: str) -> dict[str, str]:
    """The PEP 508 environment of a CPython ``python`` (major.minor) on ``os_name``/``arch``.

    ``platform_machine`` is what the lane's ``platform.machine()`` says: the
    kernel's name on Linux (``aarch64``), Apple's on macOS (``arm64``).
    ``python_full_version`` is ``X.Y.0``: the patch release is the lane's to
    know, not the lock's.
    """
    known = arch_mod.lookup(arch)
    machine = (known.macos or known.name) if known is not None and os_name == "macos" else (
        known.name if known is not None else arch)
    major, _, rest = python.partition(".")
    minor = rest.split(".")[0]
    return {
        **_OS_VALUES.get(os_name, _OS_VALUES["linux"]),
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "platform_machine": machine,
        "python_version": f"{major}.{minor}",
        "python_full_version": f"{major}.{minor}.0",
        "implementation_version": f"{major}.{minor}.0",
        "extra": "",
    }


def lane_environment(target: LaneTarget | None, host: HostFacts, python: str = "") -> dict[str, str]:
    """A lane's PEP 508 environment, from its target (what the target leaves open is the host's).

    ``python``: the Python when the target names none (a lane built by hand: the lock's).
    """
    os_name = (target.os if target is not None else None) or _HOST_OS.get(host.system, "linux")
    arch = (target.arch if target is not None else None) or host.machine
    return marker_values(os_name, arch, (target.python if target is not None else "") or python)


def applies(pin: Pin, environment: Mapping[str, str]) -> bool:
    """Is ``pin`` one of this environment's (its Python's table entry, its marker true)?"""
    if pin.python is not None and pin.python != environment.get("python_version"):
        return False
    if pin.marker is None:
        return True
    try:
        return Marker(pin.marker).evaluate(dict(environment))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as exc:
        raise LockSelectError(f"{pin.where or pin.name}: the marker {pin.marker!r} cannot be evaluated "
                              f"({exc})") from None


@dataclass(frozen=True)
class LaneLock:
    """What one lane installs: the lock's pins its environment selects (a staging ``LockLike``)."""

    python: str
    packages: Mapping[str, str]  # name -> exact version
    wheels: tuple[str, ...] = ()  # lock.wheels, unchanged
    hashes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # canonical name -> "algo:hex"
    file: str = ""  # the lock file, for messages
    extras: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # canonical name -> extras named


def python_fits(specifier: str, python: str) -> bool:
    """Does some release of Python ``python`` (major.minor) satisfy ``specifier`` (``>=3.11``)?

    The lane's patch release is the lane's to know: ``>=3.11.4`` fits 3.11.
    """
    try:
        spec = SpecifierSet(specifier)
    except InvalidSpecifier:
        return False
    return any(spec.contains(f"{python}.{patch}", prereleases=True) for patch in range(100))


def _lane_words(environment: Mapping[str, str]) -> str:
    return (f"{environment.get('sys_platform')} {environment.get('platform_machine')} "
            f"Python {environment.get('python_version')}")


def _lock_bounds(lock: Lock, environment: Mapping[str, str]) -> None:
    """A pylock.toml's ``environments`` and ``requires-python`` hold for the lane (PEP 751: else an error)."""
    where = lock.file or "the lock"
    if lock.environments and not any(Marker(m).evaluate(dict(environment)) for m in lock.environments):
        raise LockSelectError(f"{where}: the lock is for {' or '.join(lock.environments)}, not for "
                              f"{_lane_words(environment)}")
    python = environment.get("python_version", "")
    if lock.requires_python and not python_fits(lock.requires_python, python):
        raise LockSelectError(f"{where}: the lock requires Python {lock.requires_python}, the lane has "
                              f"Python {python}")


def lane_lock(lock: Lock, environment: Mapping[str, str]) -> LaneLock:
    """The pins of ``lock`` that ``environment`` selects (two for one package: :class:`LockSelectError`)."""
    _lock_bounds(lock, environment)
    chosen: dict[str, Pin] = {}
    for pin in lock.all_pins():
        if not applies(pin, environment):
            continue
        python = environment.get("python_version", "")
        if pin.requires_python and not python_fits(pin.requires_python, python):
            raise LockSelectError(f"{pin.where or pin.name}: {pin.name}=={pin.version} requires Python "
                                  f"{pin.requires_python}, the lane has Python {python}")
        key = canonicalize_name(pin.name)
        if key in chosen:
            raise LockSelectError(
                f"{pin.where or 'lock.packages'}: {pin.name}=={pin.version} and "
                f"{chosen[key].name}=={chosen[key].version} ({chosen[key].where or 'lock.packages'}) both "
                f"apply to {environment.get('sys_platform')} {environment.get('platform_machine')} "
                f"Python {environment.get('python_version')}: make their markers exclusive")
        chosen[key] = pin
    return LaneLock(
        python=environment.get("python_version") or lock.python,
        packages={pin.name: pin.version for pin in chosen.values()},
        wheels=tuple(lock.wheels),
        hashes={key: pin.hashes for key, pin in chosen.items() if pin.hashes},
        file=lock.file,
        extras={key: pin.extras for key, pin in chosen.items() if pin.extras},
    )


__all__ = [
    "LaneLock",
    "LockFile",
    "LockFileError",
    "LockSelectError",
    "applies",
    "lane_environment",
    "lane_lock",
    "lock_file_kind",
    "marker_values",
    "python_fits",
    "read_lock_file",
    "read_pylock",
    "read_pylock_file",
    "read_requirements",
]
