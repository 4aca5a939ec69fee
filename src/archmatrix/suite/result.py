"""The lane result: one schema-versioned JSON file per lane.

Written atomically (temp file in the same directory, fsync, rename), so a
reader never sees half a file and two writers never interleave. Loading
validates the shape and rejects truncated, corrupt or foreign files with a
:class:`ResultFileError` that names the file and what is wrong.

A result file is data from a lane (or from whoever wrote it), so loading
also bounds it: the file's size, its nesting, the number of items kept and
the length of every text (a cut text says so: ``… [cut: 200000 chars]``),
so what a reader holds is bounded by the number of cells, not by what a
file says; and the facts the host side reads are type-checked here, once.

Stdlib only: the suite writes this format inside lanes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .outcomes import Outcome

SCHEMA = "archmatrix/lane-result"
SCHEMA_VERSION = 1


class ResultFileError(Exception):
    """A result file that cannot be used; the message names the file."""


# Bounds on what one result file may make a reader hold. Generous for real
# lanes (a few hundred KB, tens of checks; a project's pytest suite, a cell
# per test: thousands, each 4-5 JSON containers), small against a hostile file.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_CONTAINERS = 500_000  # JSON objects + arrays in one file (counted before parsing)
MAX_DEPTH = 32  # nesting kept inside facts, evidence, metrics
MAX_ID = 200  # lane, runner, check and warning ids
MAX_TEXT = 20_000  # any other text: messages, evidence, facts
MAX_ITEMS = 1_000  # items kept of any list or object inside facts, evidence, metrics
MAX_CHECKS = 20_000  # checks kept of one lane (a pytest suite: a check per test)
MAX_WARNINGS = 200
MAX_KEPT_CHARS = 1_000_000  # all text kept from one file (each JSON value counts as 16)
_NODE_COST = 16
_SURROGATE = re.compile("[\ud800-\udfff]")


def cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and a note of how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut: {len(text)} chars]"


class _Budget:
    """What is left of one file's text allowance; texts beyond it are cut to a note."""

    def __init__(self, chars: int = MAX_KEPT_CHARS) -> None:
        self.chars = chars

    def text(self, value: str, limit: int = MAX_TEXT) -> str:
        # JSON can carry lone surrogates (\ud800); no encoder can write them back out
        value = _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
        kept = cut(value, max(0, min(limit, self.chars)))
        self.chars -= min(len(value), limit)
        return kept

    @staticmethod
    def ident(value: str) -> str:
        """An id or key: cut to MAX_ID whatever the allowance (ids cut to nothing would merge rows)."""
        return cut(_SURROGATE.sub("\ufffd", value), MAX_ID)

    def value(self, value: Any, depth: int = 0) -> Any:
        """A JSON value with every text, list and object cut to the bounds above.

        A cut container keeps its type and notes the cut in an item of the
        kind it holds (a list of objects gets an object), so readers that
        checked a shape still find it.
        """
        self.chars -= _NODE_COST
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            if depth >= MAX_DEPTH or self.chars <= 0:
                return [self._note(value, "the rest of the file's allowance is used up"
                                   if depth < MAX_DEPTH else f"nested deeper than {MAX_DEPTH}")] \
                    if value else []
            kept = [self.value(v, depth + 1) for v in value[:MAX_ITEMS]]
            if len(value) > MAX_ITEMS:
                kept.append(self._note(value, f"{len(value)} items"))
            return kept
        if isinstance(value, dict):
            if depth >= MAX_DEPTH or self.chars <= 0:
                why = f"nested deeper than {MAX_DEPTH}" if depth >= MAX_DEPTH else "allowance used up"
                return {"…": f"[cut: {why}]"} if value else {}
            out = {}
            for i, (k, v) in enumerate(value.items()):
                if i >= MAX_ITEMS:
                    out["…"] = f"[cut: {len(value)} keys]"
                    break
                out[self.ident(k)] = self.value(v, depth + 1)
            return out
        return value

    @staticmethod
    def _note(items: list[Any], why: str) -> Any:
        text = f"… [cut: {why}]"
        return {"…": text} if isinstance(items[0], dict) else text


# The facts the host side reads (summary, findings, speed, doctor), and the
# type each must have when present; None is always allowed. A file whose
# facts have another shape is refused here, once, instead of every reader
# guarding each access.
_FACT_TYPES: dict[str, type | tuple[type, ...]] = {
    "os": str, "os_release": str, "machine": str, "platform_tag": str, "libc": str,
    "translated": bool, "python": dict, "emulation": dict, "runner": dict,
    "libraries": list, "cpu": dict, "packages": dict, "numpy_build": dict,
    "errors": dict, "emulation_evidence": list, "cpu_count": int,
}
_NESTED_FACT_TYPES: dict[tuple[str, str], type | tuple[type, ...]] = {
    ("emulation", "emulator"): str, ("emulation", "cpu_model"): str,
    ("runner", "platform"): str, ("cpu", "present"): list, ("cpu", "absent"): list,
    ("numpy_build", "host_machine"): dict, ("numpy_build", "blas"): dict,
    ("python", "version"): (str, int, float),
}


def _type_name(typ: type | tuple[type, ...]) -> str:
    return typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)


def _check_facts(facts: Mapping[str, Any], where: str) -> None:
    def wrong(key: str, typ: type | tuple[type, ...] | str, value: Any) -> ResultFileError:
        name = typ if isinstance(typ, str) else _type_name(typ)
        return ResultFileError(f"{where}: facts.{key} should be {name}, found {type(value).__name__}")

    for key, typ in _FACT_TYPES.items():
        value = facts.get(key)
        if value is not None and (not isinstance(value, typ) or (typ is int and isinstance(value, bool))):
            raise wrong(key, typ, value)
    for (outer, key), typ in _NESTED_FACT_TYPES.items():
        value = (facts.get(outer) or {}).get(key)
        if value is not None and (not isinstance(value, typ) or isinstance(value, bool)):
            raise wrong(f"{outer}.{key}", typ, value)
    for outer, key in (("cpu", "present"), ("cpu", "absent"), ("", "emulation_evidence")):
        items = (facts.get(outer) or {}).get(key) if outer else facts.get(key)
        if items and not all(isinstance(v, str) for v in items):
            raise wrong(f"{outer + '.' if outer else ''}{key}[]", "a list of strings", items)
    for i, lib in enumerate(facts.get("libraries") or []):
        if not isinstance(lib, dict):
            raise wrong(f"libraries[{i}]", dict, lib)
    for name, version in (facts.get("packages") or {}).items():
        if version is not None and not isinstance(version, str):
            raise wrong(f"packages.{name}", "a version string", version)


class LaneStatus:
    """Whether the lane ran at all (a lane-level fact, unlike a check's outcome)."""

    RAN = "ran"
    SKIPPED = "skipped"
    INFRA_ERROR = "infra-error"
    INTERRUPTED = "interrupted"
    ALL = (RAN, SKIPPED, INFRA_ERROR, INTERRUPTED)


@dataclass
class CheckResult:
    id: str
    outcome: Outcome
    duration_s: float = 0.0
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # True for a cell read from the registry's wheels (an audit), not observed in a running lane:
    # renderers must never show it as an observed result.
    predicted: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "outcome": self.outcome.value,
            "duration_s": round(self.duration_s, 4),
            "message": self.message,
            "evidence": self.evidence,
            "metrics": self.metrics,
            "warnings": self.warnings,
        }
        if self.predicted:
            data["predicted"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str, budget: _Budget | None = None) -> CheckResult:
        budget = budget or _Budget()
        _require(data, where, {"id": str, "outcome": str})
        try:
            outcome = Outcome(data["outcome"])
        except ValueError:
            raise ResultFileError(f"{where}: unknown outcome {cut(data['outcome'], MAX_ID)!r}") from None
        warnings = _typed(data, "warnings", list, where, [])
        if not all(isinstance(w, str) for w in warnings):
            raise ResultFileError(f"{where}: field 'warnings' should be a list of strings")
        return cls(
            id=budget.ident(data["id"]),
            outcome=outcome,
            duration_s=float(_typed(data, "duration_s", (int, float), where, 0.0)),
            message=budget.text(_typed(data, "message", str, where, "")),
            evidence=budget.value(_typed(data, "evidence", dict, where, {})),
            metrics=budget.value(_typed(data, "metrics", dict, where, {})),
            warnings=budget.value(warnings),
            predicted=bool(_typed(data, "predicted", bool, where, False)),
        )


@dataclass
class LaneWarning:
    """A finding that attaches to a lane without failing it."""

    id: str
    message: str
    hint: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "message": self.message, "hint": self.hint}


@dataclass
class LaneResult:
    lane: str
    runner: str
    status: str = LaneStatus.RAN
    reason: str = ""  # why skipped / what broke, for status != ran
    hint: str = ""  # what the user can do about it
    started: str = ""  # ISO 8601, UTC
    duration_s: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    warnings: list[LaneWarning] = field(default_factory=list)
    required: bool = True
    predicted: bool = False  # every cell predicted from wheels; the lane itself did not run

    def check(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == check_id), None)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome.failed]

    @property
    def ok(self) -> bool:
        """Ran, and every check passed or was skipped."""
        return self.status == LaneStatus.RAN and not self.failed_checks

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "lane": self.lane,
            "runner": self.runner,
            "status": self.status,
            "reason": self.reason,
            "hint": self.hint,
            "required": self.required,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "facts": self.facts,
            "warnings": [w.to_dict() for w in self.warnings],
            "checks": [c.to_dict() for c in self.checks],
            **({"predicted": True} if self.predicted else {}),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LaneResult:
        """A validated lane result, every text and list cut to the bounds above (noted where cut)."""
        budget = _Budget()
        if not isinstance(data, dict):
            raise ResultFileError(f"{where}: expected a JSON object, found {type(data).__name__}")
        if data.get("schema") != SCHEMA:
            raise ResultFileError(
                f"{where}: not an archmatrix lane result (schema is {_short(data.get('schema'))}, "
                f"expected {SCHEMA!r})"
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultFileError(
                f"{where}: schema_version {_short(version)} is not supported (this archmatrix "
                f"reads version {SCHEMA_VERSION})"
            )
        _require(data, where, {"lane": str, "runner": str, "status": str})
        if data["status"] not in LaneStatus.ALL:
            raise ResultFileError(f"{where}: unknown lane status {_short(data['status'])}")
        facts = _typed(data, "facts", dict, where, {})
        _check_facts(facts, where)
        facts = budget.value(facts)  # first: what the matrix's header rows show gets the allowance first
        checks_data = _typed(data, "checks", list, where, [])
        warnings_data = _typed(data, "warnings", list, where, [])
        warnings = []
        for i, w in enumerate(warnings_data[:MAX_WARNINGS]):
            wh = f"{where}: warnings[{i}]"
            if not isinstance(w, dict):
                raise ResultFileError(f"{wh}: expected an object")
            _require(w, wh, {"id": str, "message": str})
            warnings.append(LaneWarning(budget.ident(w["id"]), budget.text(w["message"]),
                                        budget.text(_typed(w, "hint", str, wh, ""))))
        checks = []
        for i, c in enumerate(checks_data[:MAX_CHECKS]):
            if not isinstance(c, dict):
                raise ResultFileError(f"{where}: checks[{i}]: expected an object")
            checks.append(CheckResult.from_dict(c, f"{where}: checks[{i}]", budget))
        for what, items, limit in (("checks", checks_data, MAX_CHECKS),
                                   ("warnings", warnings_data, MAX_WARNINGS)):
            if len(items) > limit:  # say so: a lane whose failing check was cut off must not look clean
                warnings.append(LaneWarning("result-cut", f"the result file lists {len(items)} {what}; "
                                            f"only the first {limit} are shown"))
        return cls(
            lane=budget.ident(data["lane"]),
            runner=budget.ident(data["runner"]),
            status=data["status"],
            reason=budget.text(_typed(data, "reason", str, where, "")),
            hint=budget.text(_typed(data, "hint", str, where, "")),
            required=bool(_typed(data, "required", bool, where, True)),
            predicted=bool(_typed(data, "predicted", bool, where, False)),
            started=budget.ident(_typed(data, "started", str, where, "")),
            duration_s=float(_typed(data, "duration_s", (int, float), where, 0.0)),
            facts=facts,
            checks=checks,
            warnings=warnings,
        )


def _short(value: Any) -> str:
    """A value from the file, quoted for a message, never longer than an id."""
    return cut(repr(value), MAX_ID) if isinstance(value, (str, int, float, bool, type(None))) \
        else type(value).__name__


def _require(data: Mapping[str, Any], where: str, fields: Mapping[str, type]) -> None:
    for key, typ in fields.items():
        if key not in data:
            raise ResultFileError(f"{where}: missing field {key!r}")
        if not isinstance(data[key], typ):
            raise ResultFileError(
                f"{where}: field {key!r} should be {typ.__name__}, found {type(data[key]).__name__}"
            )


def _typed(
    data: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str, default: Any
) -> Any:
    if key not in data or data[key] is None:
        return default
    value = data[key]
    if not isinstance(value, typ) or (typ in ((int, float), float) and isinstance(value, bool)):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise ResultFileError(
            f"{where}: field {key!r} should be {names}, found {type(value).__name__}"
        )
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never a mix."""
    write_text_atomic(path, json.dumps(data, indent=1, default=str) + "\n")


def _read_umask() -> int:
    """The process umask, read without setting it where the kernel tells (Linux ≥ 4.7).

    ``os.umask`` can only be read by setting it, and lanes write results from
    threads: a moment with umask 0 could let another thread create a file
    anyone may write. So that dance happens once, at import, before threads.
    """
    with contextlib.suppress(OSError, ValueError), \
            open("/proc/self/status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
FILE_MODE = 0o666 & ~_UMASK  # what open() would give a new file: mkstemp's files are 0600


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a unique temp file in the same directory, fsync, rename over ``path``.

    Two runs writing the same file each rename a complete file of their own,
    so the last one wins and nobody ever sees a mixture. The file gets the
    usual ``0666 & ~umask`` mode, as any file the user's tools write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save(result: LaneResult, path: Path) -> None:
    write_json_atomic(path, result.to_dict())


MAX_INT_DIGITS = 100


def _parse_int(digits: str) -> int:
    # Python refuses more than 4300 digits (a ValueError deep inside json) and
    # spends quadratic time below that; no count or size in a result is that long
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits)} digits")
    return int(digits)


def read_json(path: Path) -> Any:
    """The JSON value of a result file (lane result or matrix), or ResultFileError naming the file.

    Refuses what is not a regular file (a FIFO would block, ``/dev/zero``
    never end), files over :data:`MAX_FILE_BYTES`, non-UTF-8 text, and
    nesting or container counts no result file has.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ResultFileError(f"{path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ResultFileError(f"{path}: {info.st_size} bytes, more than a result file can be "
                                  f"({MAX_FILE_BYTES} bytes)")
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ResultFileError(f"{path}: more than a result file can be ({MAX_FILE_BYTES} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"{path}: cannot read (not UTF-8 text: byte {exc.start})") from None
    del raw
    if not text.strip():
        raise ResultFileError(f"{path}: file is empty")
    # an upper bound (brackets inside strings count too): refuse before json builds them all
    containers = text.count("{") + text.count("[")
    if containers > MAX_CONTAINERS:
        raise ResultFileError(f"{path}: {containers} JSON objects and arrays, more than a result "
                              f"file has ({MAX_CONTAINERS})")
    try:
        return json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise ResultFileError(f"{path}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        # json reports a cut inside a string at the string's start, so judge by the end too
        stripped = text.rstrip()
        truncated = exc.pos >= len(stripped) or exc.msg.startswith("Unterminated string") or (
            stripped.startswith("{") and not stripped.endswith("}"))
        what = "truncated" if truncated else "not valid JSON"
        raise ResultFileError(
            f"{path}: {what} (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except ValueError as exc:  # e.g. a number json itself cannot convert
        raise ResultFileError(f"{path}: not valid JSON ({cut(str(exc), MAX_ID)})") from None


def load(path: Path) -> LaneResult:
    """Read and validate one lane result file."""
    return LaneResult.from_dict(read_json(path), str(path))
