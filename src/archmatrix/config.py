"""Load and validate the matrix configuration (``ci/matrix.yaml``).

Every error is one line that names the file, the line and column where
YAML knows them, and the key path: a syntax error, an unknown key (with
"perhaps you meant …?"), a value of the wrong type, an unknown runner, an
option value the lane's runner cannot use. Validation produces the frozen
values of :mod:`archmatrix.model`, each lane resolved through its runner into
a :class:`~archmatrix.model.LaneTarget`; nothing else reads the raw YAML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from . import resources
from .errors import ConfigError
from .lockfile import LockFile, lock_file_kind, read_lock_file
from .model import ChecksConfig, LaneConfig, Lock, MatrixConfig, Pin, every_lane
from .model import suggest as _suggest
from .profiles import DEFAULT_PROFILES, CpuProfile
from .pyversions import expand_lanes
from .runners import RUNNERS, OptionError, Runner
from .staging.pytest_project import refused
from .suite import arch as arch_mod
from .suite.lane import selfcheck
from .suite.registry import DEFAULT_TOLERANCES, Tolerance
from .suite.spec import PYTEST_PREFIX

DEFAULT_CONFIG = Path("ci/matrix.yaml")
# The default matrix shipped with the package (ci/matrix.yaml is a link to
# it): what `archmatrix matrix` runs where there is no ci/matrix.yaml, and the
# lanes `archmatrix audit` predicts for without a configuration.
PACKAGED_CONFIG = "matrix.yaml"
LANE_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")  # fullmatch: "host\n" is not a lane id
# A lane id names files (results/<id>.json, badges/<id>.svg): short enough for
# any file system, whatever directory the results go to.
LANE_ID_MAX = 64
# PEP 508 names: a "name" pip would read as one of its own options (starting with "-") is not one.
PACKAGE_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)
# Deeper than any sensible configuration; PyYAML's composer recurses per level.
MAX_DEPTH = 40
Position = tuple[int, int]  # 1-based line, column


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-6`` as a number (YAML 1.1 wants ``1.0e-6``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


# ---------------------------------------------------------------- validation


class _Doc:
    """The parsed YAML plus where each key path came from, for messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.positions: dict[tuple[str | int, ...], Position] = {}
        self.raw: dict[tuple[str | int, ...], str] = {}  # scalars as written (3.10, not 3.1)
        try:
            # before anything is composed or expanded: an alias bomb or a
            # self-referencing alias must never reach the composer
            self._refuse_aliases_and_depth(text)
            node = yaml.compose(text, Loader=_Loader)
            if node is not None:
                self._refuse_duplicate_keys(node, ())
            self.data = yaml.load(text, Loader=_Loader)
        except ConfigError:
            raise
        except ValueError as exc:  # an integer of more digits than Python converts
            raise ConfigError(f"{path}: YAML value not readable: {exc}") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            if exc.context_mark is not None and "end of stream" in (exc.problem or ""):
                # an unclosed quote or bracket: where it was opened is the useful place
                mark = exc.context_mark
                problem = f"{exc.context} that is never closed"
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: YAML error: {' '.join(str(exc).split())}") from None
        if node is not None:
            self._index(node, ())

    def _at(self, mark: Any) -> str:
        if mark is None:
            return str(self.path)
        return f"{self.path}:{mark.line + 1}:{mark.column + 1}"

    def _refuse_aliases_and_depth(self, text: str) -> None:
        """Anchors and aliases are refused (a configuration needs neither), from the event stream."""
        depth = 0
        for event in yaml.parse(text, Loader=_Loader):
            anchor = getattr(event, "anchor", None)
            if anchor is not None:  # an alias event, or a node that defines an anchor
                what = f"*{anchor}" if isinstance(event, yaml.AliasEvent) else f"&{anchor}"
                raise ConfigError(f"{self._at(event.start_mark)}: YAML anchors and aliases are not "
                                  f"supported ({what}): write the value out")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(f"{self._at(event.start_mark)}: nested more than {MAX_DEPTH} "
                                      "levels deep")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1

    def _refuse_duplicate_keys(self, node: yaml.Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            first: dict[str, yaml.Mark] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in first:
                    was = first[key]
                    raise ConfigError(
                        f"{self._at(key_node.start_mark)}: {_dotted((*path, key))}: duplicate key "
                        f"(first at line {was.line + 1}, column {was.column + 1})"
                    )
                first[key] = key_node.start_mark
                self._refuse_duplicate_keys(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._refuse_duplicate_keys(item, (*path, i))

    def _index(self, node: yaml.Node, path: tuple[str | int, ...]) -> None:
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            self.raw[path] = str(node.value)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (*path, str(key_node.value))
                self._index(value_node, key)
                # the key's own position is the better place to point at
                self.positions[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*path, i))

    def where(self, path: tuple[str | int, ...]) -> str:
        """``file:line:col: key.path``, at the nearest enclosing key YAML knows a position for."""
        probe = path
        while probe and probe not in self.positions:
            probe = probe[:-1]
        pos = self.positions.get(probe)
        where = f"{self.path}:{pos[0]}:{pos[1]}" if pos else str(self.path)
        return f"{where}: {_dotted(path) or '(top level)'}"

    def error(self, path: tuple[str | int, ...], message: str) -> ConfigError:
        return ConfigError(f"{self.where(path)}: {message}")


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list", dict: "a mapping"}


def _expect(doc: _Doc, path: tuple[str | int, ...], value: Any, typ: type) -> Any:
    ok = isinstance(value, typ) and not (typ in (int, float) and isinstance(value, bool))
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            digits = len(str(value))
            raise doc.error(path, f"expected a finite number, found an integer of {digits} digits") from None
    if not ok:
        raise doc.error(path, f"expected {_TYPE_NAMES[typ]}, found {_describe(value)}")
    if typ is float and not math.isfinite(value):
        raise doc.error(path, f"expected a finite number, found {value!r}")
    return value


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return f"{_TYPE_NAMES.get(type(value), type(value).__name__)} ({value!r:.40})"


def _mapping(
    doc: _Doc, path: tuple[str | int, ...], value: Any, allowed: Sequence[str], required: Sequence[str] = ()
) -> dict[str, Any]:
    data = _expect(doc, path, value, dict)
    for key in data:
        if not isinstance(key, str):
            raise doc.error(path, f"keys must be strings, found {key!r}")
        if key not in allowed:
            raise doc.error((*path, key), f"unknown key{_suggest(key, allowed)}; valid keys: "
                                          f"{', '.join(allowed)}")
    for key in required:
        if key not in data:
            raise doc.error(path, f"missing required key {key!r}")
    return dict(data)


def _str_list(doc: _Doc, path: tuple[str | int, ...], value: Any) -> tuple[str, ...]:
    items = _expect(doc, path, value, list)
    return tuple(_expect(doc, (*path, i), item, str) for i, item in enumerate(items))


def _lock(doc: _Doc, value: Any) -> Lock:
    data = _mapping(doc, ("lock",), value, ("python", "packages", "file", "wheels"), ("python",))
    pythons = _pythons(doc, data["python"])
    python = pythons[0]
    if "packages" not in data and "file" not in data:
        raise doc.error(("lock",), "missing required key 'packages' (or 'file': a pylock.toml or "
                                   "requirements.txt)")
    pins = _package_pins(doc, data.get("packages", {}), pythons)
    file, lock_file = _lock_file(doc, data.get("file"))
    pins = _merged_pins(doc, pins, lock_file.pins)
    if not pins:
        raise doc.error(("lock", "packages"), "the lock needs at least one package")
    wheels = _str_list(doc, ("lock", "wheels"), data.get("wheels", []))
    return Lock(python=python, packages=every_lane(pins, python), wheels=wheels, pins=pins, file=file,
                environments=lock_file.environments, requires_python=lock_file.requires_python,
                pythons=pythons)


def _package_pins(doc: _Doc, value: Any, pythons: Sequence[str]) -> tuple[Pin, ...]:
    """``lock.packages``: name → exact version, or name → per-Python table (``{"3.12": "2.4.0"}``)
    with a version for each of ``pythons``."""
    pkgs = _expect(doc, ("lock", "packages"), value, dict)
    pins: list[Pin] = []
    canonical: dict[str, str] = {}
    for name, version in pkgs.items():
        p = ("lock", "packages", str(name))
        if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
            raise doc.error(p, f"not a package name (PEP 508: letters, digits, '.', '_', '-'): {name!r:.80}")
        key = re.sub(r"[-_.]+", "-", name).lower()  # packaging's canonicalize_name
        if key in canonical:
            raise doc.error(p, f"the same package as {canonical[key]!r} (names compare "
                               "case-insensitively, with '-', '_', '.' alike)")
        canonical[key] = name
        if isinstance(version, dict):
            pins += _python_table(doc, p, name, version, pythons)
            continue
        pins.append(Pin(name, _exact_version(doc, p, version), where=doc.where(p)))
    return tuple(pins)


def _exact_version(doc: _Doc, p: tuple[str | int, ...], version: Any) -> str:
    if isinstance(version, float | int) and not isinstance(version, bool):
        written = doc.raw.get(p, str(version))
        raise doc.error(p, f"quote the version (\"{written}\"): YAML reads it as a number")
    version = _expect(doc, p, version, str)
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version) or not _pep440(version):
        raise doc.error(p, f"expected an exact version like \"1.2.3\" (PEP 440), found {version!r:.80}")
    return str(version)


def _python_table(doc: _Doc, p: tuple[str | int, ...], name: str, table: dict[Any, Any],
                  pythons: Sequence[str]) -> list[Pin]:
    """A package's per-Python versions (issue 18): one pin per Python, each only for lanes of it."""
    if not table:
        raise doc.error(p, "an empty table pins no version; give a version per Python, e.g. "
                           "{\"3.11\": \"2.3.5\", \"3.12\": \"2.4.0\"}")
    pins = []
    for python, version in table.items():
        q = (*p, str(python))
        if isinstance(python, float):
            raise doc.error(q, f"quote the Python version: YAML reads it as the number {python!r}")
        if not isinstance(python, str) or not re.fullmatch(r"3\.\d+", python):
            raise doc.error(q, f"expected a Python version like \"3.12\" as the key, found {python!r:.40}")
        pins.append(Pin(name, _exact_version(doc, q, version), python=python, where=doc.where(q)))
    missing = [py for py in pythons if py not in table]
    if missing:
        raise doc.error(p, f"no version for Python {', '.join(missing)} (lock.python); the table has "
                           f"{', '.join(map(str, table))}")
    return pins


def _lock_file(doc: _Doc, value: Any) -> tuple[str, LockFile]:
    """``lock.file`` (relative to the config file): its path as messages name it, and what it says."""
    if value is None:
        return "", LockFile(())
    p = ("lock", "file")
    written = _expect(doc, p, value, str)
    path = Path(written).expanduser()
    found = path if path.is_absolute() else doc.path.parent / path
    if lock_file_kind(found) is None:
        raise doc.error(p, f"{written!r:.80}: expected a PEP 751 lock (pylock.toml, pylock.<name>.toml) or a "
                           "requirements file of exact pins (.txt)")
    if not found.exists():
        raise doc.error(p, f"no such file {str(found)!r:.120} (paths are relative to the config file)")
    if not found.is_file():  # a directory, a FIFO, a device: nothing to read a lock from
        raise doc.error(p, f"{str(found)!r:.120} is not a regular file")
    return str(found), read_lock_file(found, str(found))


def _merged_pins(doc: _Doc, packages: tuple[Pin, ...], from_file: tuple[Pin, ...]) -> tuple[Pin, ...]:
    """``lock.packages`` beside ``lock.file``: a package is pinned in one of them only."""
    in_file = {canonicalize_name(pin.name): pin for pin in from_file}
    for pin in packages:
        other = in_file.get(canonicalize_name(pin.name))
        if other is not None:
            raise ConfigError(f"{pin.where}: {pin.name} is also pinned by lock.file ({other.where}); "
                              "pin it in one place")
    return (*packages, *from_file)


def _pythons(doc: _Doc, value: Any) -> tuple[str, ...]:
    """``lock.python``: one version (\"3.11\") or a list of them (each lane then runs once per version)."""
    base: tuple[str | int, ...] = ("lock", "python")
    if isinstance(value, list):
        if not value:
            raise doc.error(base, "list at least one version (\"3.11\"), or write one as a string")
        versions: list[str] = []
        for i, item in enumerate(value):
            version = _python_version(doc, (*base, i), item)
            if version in versions:
                raise doc.error((*base, i), f"\"{version}\" is listed twice")
            versions.append(version)
        return tuple(versions)
    if not isinstance(value, str | float):
        raise doc.error(base, f"expected a version like \"3.11\" or a list of them, found {_describe(value)}")
    return (_python_version(doc, base, value),)


def _python_version(doc: _Doc, path: tuple[str | int, ...], value: Any) -> str:
    if isinstance(value, float):  # `python: 3.11` unquoted
        written = doc.raw.get(path, str(value))
        raise doc.error(path, f"quote the version (\"{written}\"): YAML reads it as a number")
    version = _expect(doc, path, value, str)
    if not re.fullmatch(r"3\.\d+", version):
        raise doc.error(path, f"expected a version like \"3.11\", found {version!r}")
    return str(version)


def _pep440(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def _checks(doc: _Doc, value: Any) -> ChecksConfig:
    base = ("checks",)
    data = _mapping(doc, base, value,
                    ("select", "exclude", "user_modules", "timeout", "timeouts", "tolerances", "drift_rtol",
                     "pytest"))
    timeouts: dict[str, float] = {}
    for cid, t in _expect(doc, (*base, "timeouts"), data.get("timeouts", {}), dict).items():
        timeouts[str(cid)] = _positive(doc, (*base, "timeouts", str(cid)), t)
    tolerances = dict(DEFAULT_TOLERANCES)
    for dtype, tol in _expect(doc, (*base, "tolerances"), data.get("tolerances", {}), dict).items():
        p = (*base, "tolerances", str(dtype))
        t = _mapping(doc, p, tol, ("rtol", "atol"), ("rtol", "atol"))
        tolerances[str(dtype)] = Tolerance(
            rtol=_nonneg(doc, (*p, "rtol"), t["rtol"]), atol=_nonneg(doc, (*p, "atol"), t["atol"])
        )
    select = _str_list(doc, (*base, "select"), data.get("select", ["*"]))
    if not select:
        raise doc.error((*base, "select"), "an empty list selects no check; leave select out "
                                           "(or write [\"*\"]) to run every check")
    # where each id and pattern was written, for check_selection's messages
    for field in ("select", "exclude", "timeouts"):
        entries = data.get(field)
        names = list(entries) if isinstance(entries, list | dict) else []
        for i, name in enumerate(names):
            key: str | int = str(name) if field == "timeouts" else i
            _WRITTEN[(str(doc.path), field, str(name))] = doc.where((*base, field, key))
    return ChecksConfig(
        select=select,
        exclude=_str_list(doc, (*base, "exclude"), data.get("exclude", [])),
        user_modules=_str_list(doc, (*base, "user_modules"), data.get("user_modules", [])),
        timeout=_positive(doc, (*base, "timeout"), data.get("timeout", 180)),
        timeouts=timeouts,
        tolerances=tolerances,
        drift_rtol=_nonneg(doc, (*base, "drift_rtol"), data.get("drift_rtol", 1e-6)),
        pytest=_str_list(doc, (*base, "pytest"), data.get("pytest", [])),
    )


PYTEST_NEEDS = ("pytest needs pytest in the lock (and its requirements: iniconfig, pluggy, packaging, "
                "pygments): "
                "every lane runs the tests with the locked pytest")


def _pytest_locked(lock: Lock) -> bool:
    """pytest is pinned, in lock.packages or lock.file (for some lanes at least: a marker may say which)."""
    return any(canonicalize_name(pin.name) == "pytest" for pin in lock.all_pins())


def require_pytest(config: MatrixConfig) -> None:
    """``checks.pytest`` (or ``--pytest``) needs pytest in the lock (``lock.packages`` or ``lock.file``)."""
    if config.checks.pytest and not _pytest_locked(config.lock):
        where = "lock.file" if config.lock.file else "lock.packages"
        raise ConfigError(f"{config.path}: {where}: --pytest {PYTEST_NEEDS}")


def _positive(doc: _Doc, path: tuple[str | int, ...], value: Any) -> float:
    number = float(_expect(doc, path, value, float))
    if number <= 0:
        raise doc.error(path, f"expected a positive number, found {value!r}")
    return number


def _nonneg(doc: _Doc, path: tuple[str | int, ...], value: Any) -> float:
    number = float(_expect(doc, path, value, float))
    if number < 0:
        raise doc.error(path, f"expected a number ≥ 0, found {value!r}")
    return number


def _lanes(
    doc: _Doc, value: Any, runners: Mapping[str, Runner], profiles: Mapping[str, CpuProfile],
    pythons: Sequence[str] = (),
) -> tuple[LaneConfig, ...]:
    items = _expect(doc, ("lanes",), value, list)
    if not items:
        raise doc.error(("lanes",), "the matrix needs at least one lane")
    lanes: list[LaneConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        p: tuple[str | int, ...] = ("lanes", i)
        data = _mapping(doc, p, item, ("id", "runner", "required", "options"), ("id", "runner"))
        lane_id = _expect(doc, (*p, "id"), data["id"], str)
        if not LANE_ID.fullmatch(lane_id):
            raise doc.error((*p, "id"), f"use lower-case letters, digits, '.', '_', '-': {lane_id!r:.80}")
        if len(lane_id) > LANE_ID_MAX:
            raise doc.error((*p, "id"), f"at most {LANE_ID_MAX} characters, found {len(lane_id)}")
        if lane_id in reserved_lane_ids():
            raise doc.error((*p, "id"), f"{lane_id!r} is a name archmatrix's own outputs use "
                                        f"(reserved: {', '.join(sorted(reserved_lane_ids()))})")
        if lane_id in seen:
            raise doc.error((*p, "id"), f"lane {lane_id!r} is listed twice")
        seen.add(lane_id)
        runner_name = _expect(doc, (*p, "runner"), data["runner"], str)
        if runner_name not in runners:
            raise doc.error((*p, "runner"),
                            f"unknown runner {runner_name!r}{_suggest(runner_name, list(runners))}; "
                            f"runners: {', '.join(sorted(runners))}")
        runner = runners[runner_name]
        options = _options(doc, (*p, "options"), data.get("options", {}), runner)
        lane = LaneConfig(
            id=lane_id,
            runner=runner_name,
            required=_expect(doc, (*p, "required"), data.get("required", True), bool),
            options=options,
            cpu_profile=_profile(doc, (*p, "options", "cpu_profile"), options.get("cpu_profile"), profiles),
            line=where_id[0] if (where_id := doc.positions.get((*p, "id"))) else None,
        )
        try:
            lanes.append(replace(lane, target=runner.resolve(lane)))
            check = getattr(runner, "check_pythons", None)  # options that depend on lock.python (macos)
            if check is not None:
                check(lane, pythons)
        except OptionError as exc:
            raise doc.error((*p, "options", exc.key), str(exc)) from None
    return tuple(lanes)


def reserved_lane_ids() -> frozenset[str]:
    """File stems of the outputs written next to the lane results (``matrix.json``, …) and badges."""
    from .outputs import OUTPUT_NAMES  # late: the renderers are not needed to read a config
    from .render.badges import OVERALL

    return frozenset({Path(name).stem for name in OUTPUT_NAMES.values()} | {OVERALL})


def _options(doc: _Doc, path: tuple[str | int, ...], value: Any, runner: Runner) -> dict[str, Any]:
    """A lane's options checked against its runner's schema: known keys, types, allowed values, required."""
    schema = runner.options
    raw = _mapping(doc, path, value, list(schema))
    options: dict[str, Any] = {}
    for key, val in raw.items():
        option = schema[key]
        options[key] = _expect(doc, (*path, key), val, option.type)
        if option.choices and options[key] not in option.choices:
            found = options[key]
            raise doc.error((*path, key), f"expected one of {', '.join(map(str, option.choices))}, "
                                          f"found {found!r}{_suggest_choice(str(found), option.choices)}")
    for key, option in schema.items():
        if option.required and key not in options:
            raise doc.error(path, f"the {runner.name} runner needs options.{key}"
                                  + (f" (one of {', '.join(option.choices)})" if option.choices else ""))
    return options


def _suggest_choice(value: str, choices: Sequence[str]) -> str:
    """The choice ``value`` means when it is another name of the same architecture (amd64 → x86_64),
    else the closest spelling."""
    known = arch_mod.lookup(value)
    same = [c for c in choices if known is not None and arch_mod.lookup(c) is known]
    return f" (perhaps you meant {same[0]!r}?)" if same else _suggest(value, choices)


def _profile(
    doc: _Doc, path: tuple[str | int, ...], name: Any, profiles: Mapping[str, CpuProfile]
) -> CpuProfile | None:
    if name is None:
        return None
    if name not in profiles:
        raise doc.error(path, f"unknown CPU profile {name!r}{_suggest(str(name), list(profiles))}; "
                              f"profiles: {', '.join(profiles)}")
    return profiles[name]


def _profiles(doc: _Doc, value: Any) -> dict[str, CpuProfile]:
    profiles = dict(DEFAULT_PROFILES)
    for name, entry in _expect(doc, ("cpu_profiles",), value, dict).items():
        p = ("cpu_profiles", str(name))
        data = _mapping(doc, p, entry, ("arch", "qemu_cpu", "description", "absent"), ("arch", "qemu_cpu"))
        arch = _expect(doc, (*p, "arch"), data["arch"], str)
        if arch not in ("x86_64", "aarch64"):
            raise doc.error((*p, "arch"), f"expected x86_64 or aarch64, found {arch!r}")
        profiles[str(name)] = CpuProfile(
            name=str(name), arch=arch,
            qemu_cpu=_expect(doc, (*p, "qemu_cpu"), data["qemu_cpu"], str),
            description=_expect(doc, (*p, "description"), data.get("description", ""), str),
            absent=_absent(doc, (*p, "absent"), data.get("absent", [])),
        )
    return profiles


def _absent(doc: _Doc, path: tuple[str | int, ...], value: Any) -> tuple[str, ...]:
    """A profile's missing extensions: names the self-check can probe (numpy's spelling)."""
    names = _str_list(doc, path, value)
    known = sorted({n for probes in selfcheck.PROBES.values() for n in probes})
    for i, name in enumerate(names):
        if name not in known:
            raise doc.error((*path, i), f"unknown extension {name!r}{_suggest(name, known)}; "
                                        f"known: {', '.join(known)}")
    return names


def parse(text: str, path: Path, runners: Mapping[str, Runner] | None = None) -> MatrixConfig:
    """Validate configuration text (``path`` is only used in messages and relative paths).

    ``runners``: the registry lanes name their runner from (default :data:`~archmatrix.runners.RUNNERS`).
    """
    runners = RUNNERS if runners is None else runners
    doc = _Doc(path, text)
    data = _mapping(doc, (), doc.data if doc.data is not None else {},
                    ("lock", "checks", "lanes", "parallel", "cpu_profiles"), ("lock", "lanes"))
    parallel = data.get("parallel")
    if parallel is not None:
        parallel = _expect(doc, ("parallel",), parallel, int)
        if parallel < 1:
            raise doc.error(("parallel",), f"expected 1 or more, found {parallel}")
    profiles = _profiles(doc, data.get("cpu_profiles", {}))
    lock = _lock(doc, data["lock"])
    # each lane's target gets its Python; with several versions each lane becomes one per version
    lanes = expand_lanes(_lanes(doc, data["lanes"], runners, profiles, lock.pythons), lock.pythons)
    checks = _checks(doc, data.get("checks", {}))
    if checks.pytest and not _pytest_locked(lock):
        raise doc.error(("checks", "pytest"), PYTEST_NEEDS)
    why = refused(checks.pytest)
    if why:
        bad = next(i for i, a in enumerate(checks.pytest) if why.startswith(f"{a}:"))
        raise doc.error(("checks", "pytest", bad), f"a lane cannot honour {why}")
    return MatrixConfig(
        path=path,
        lock=lock,
        checks=checks,
        lanes=lanes,
        parallel=parallel,
        cpu_profiles=profiles,
    )


# (config path, "select"/"exclude"/"timeouts", pattern or id) -> "file:line:col: checks.select[0]"
_WRITTEN: dict[tuple[str, str, str], str] = {}


def check_selection(config: MatrixConfig) -> None:
    """Every ``checks.select``/``exclude`` pattern and ``checks.timeouts`` id must match a check.

    Called once the run's check modules are final (``--checks-module`` adds to
    the config's), so a pattern for a module given on the command line is
    known. The ids are read on the host without importing any check
    (:mod:`archmatrix.checkids`); when a user module's ids cannot be read there
    (a dotted module of the lane's environment, an id computed at run time),
    any pattern could match one of them and none is rejected.
    """
    from .checkids import known_check_ids, matches_any

    ids = known_check_ids(config.checks.user_modules, config.path.parent)
    if ids is None:
        return
    checks = config.checks
    for field, patterns in (("select", checks.select), ("exclude", checks.exclude)):
        for i, pattern in enumerate(patterns):
            if checks.pytest and pattern.startswith(PYTEST_PREFIX):
                continue  # the tests are collected in the lanes: any pattern may match one
            if not matches_any(pattern, ids):
                where = _WRITTEN.get((str(config.path), field, pattern),
                                     f"{config.path}: checks.{field}[{i}]")
                raise ConfigError(f"{where}: {pattern!r} matches no check"
                                  f"{_suggest(pattern, sorted(ids | _groups(ids)))}")
    for cid in checks.timeouts:
        if cid not in ids and not (checks.pytest and cid.startswith(PYTEST_PREFIX)):
            where = _WRITTEN.get((str(config.path), "timeouts", cid), f"{config.path}: checks.timeouts.{cid}")
            raise ConfigError(f"{where}: no check has the id {cid!r}{_suggest(cid, sorted(ids))}")


def _groups(ids: frozenset[str]) -> set[str]:
    return {cid.split(".", 1)[0] + ".*" for cid in ids}


PROBE_PATTERN = "perf.*"  # the performance probes (suite/checks_perf.py)


def without_probes(config: MatrixConfig) -> MatrixConfig:
    """The same matrix with the performance probes excluded (``--no-probes``)."""
    if PROBE_PATTERN in config.checks.exclude:
        return config
    return replace(config, checks=replace(config.checks, exclude=(*config.checks.exclude, PROBE_PATTERN)))


def load(path: Path = DEFAULT_CONFIG, runners: Mapping[str, Runner] | None = None) -> MatrixConfig:
    """The configuration at ``path``; the default path where it does not exist (outside a checkout)
    gives the matrix shipped with archmatrix."""
    if path == DEFAULT_CONFIG and not path.exists():
        return packaged_default(runners)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return parse(text, path, runners)


def packaged_default(runners: Mapping[str, Runner] | None = None) -> MatrixConfig:
    """The default matrix shipped with archmatrix (the default lanes), wherever it runs."""
    return parse(resources.read_text(PACKAGED_CONFIG), Path(f"<archmatrix>/{PACKAGED_CONFIG}"), runners)


__all__ = [
    "DEFAULT_CONFIG",
    "ChecksConfig",
    "ConfigError",
    "LaneConfig",
    "Lock",
    "MatrixConfig",
    "check_selection",
    "load",
    "packaged_default",
    "parse",
    "require_pytest",
    "reserved_lane_ids",
    "without_probes",
]
