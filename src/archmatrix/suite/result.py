"""The lane result: one schema-versioned JSON file per lane.

Written atomically (temp file in the same directory, fsync, rename), so a
reader never sees half a file and two writers never interleave. Loading
validates the shape and rejects truncated, corrupt or foreign files with a
:class:`ResultFileError` that names the file and what is wrong.

Stdlib only: the suite writes this format inside lanes.
"""

from __future__ import annotations

import contextlib
import json
import os
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outcome": self.outcome.value,
            "duration_s": round(self.duration_s, 4),
            "message": self.message,
            "evidence": self.evidence,
            "metrics": self.metrics,
            "warnings": self.warnings,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> CheckResult:
        _require(data, where, {"id": str, "outcome": str})
        try:
            outcome = Outcome(data["outcome"])
        except ValueError:
            raise ResultFileError(f"{where}: unknown outcome {data['outcome']!r}") from None
        return cls(
            id=data["id"],
            outcome=outcome,
            duration_s=float(_typed(data, "duration_s", (int, float), where, 0.0)),
            message=str(_typed(data, "message", str, where, "")),
            evidence=dict(_typed(data, "evidence", dict, where, {})),
            metrics=dict(_typed(data, "metrics", dict, where, {})),
            warnings=list(_typed(data, "warnings", list, where, [])),
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
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LaneResult:
        if not isinstance(data, dict):
            raise ResultFileError(f"{where}: expected a JSON object, found {type(data).__name__}")
        if data.get("schema") != SCHEMA:
            raise ResultFileError(
                f"{where}: not an archmatrix lane result (schema is {data.get('schema')!r}, "
                f"expected {SCHEMA!r})"
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultFileError(
                f"{where}: schema_version {version!r} is not supported (this archmatrix "
                f"reads version {SCHEMA_VERSION})"
            )
        _require(data, where, {"lane": str, "runner": str, "status": str})
        if data["status"] not in LaneStatus.ALL:
            raise ResultFileError(f"{where}: unknown lane status {data['status']!r}")
        checks_data = _typed(data, "checks", list, where, [])
        warnings_data = _typed(data, "warnings", list, where, [])
        warnings = []
        for i, w in enumerate(warnings_data):
            wh = f"{where}: warnings[{i}]"
            if not isinstance(w, dict):
                raise ResultFileError(f"{wh}: expected an object")
            _require(w, wh, {"id": str, "message": str})
            warnings.append(LaneWarning(w["id"], w["message"], str(w.get("hint", ""))))
        checks = []
        for i, c in enumerate(checks_data):
            if not isinstance(c, dict):
                raise ResultFileError(f"{where}: checks[{i}]: expected an object")
            checks.append(CheckResult.from_dict(c, f"{where}: checks[{i}]"))
        return cls(
            lane=data["lane"],
            runner=data["runner"],
            status=data["status"],
            reason=str(_typed(data, "reason", str, where, "")),
            hint=str(_typed(data, "hint", str, where, "")),
            required=bool(_typed(data, "required", bool, where, True)),
            started=str(_typed(data, "started", str, where, "")),
            duration_s=float(_typed(data, "duration_s", (int, float), where, 0.0)),
            facts=dict(_typed(data, "facts", dict, where, {})),
            checks=checks,
            warnings=warnings,
        )


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


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a unique temp file in the same directory, fsync, rename over ``path``.

    Two runs writing the same file each rename a complete file of their own,
    so the last one wins and nobody ever sees a mixture.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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


def load(path: Path) -> LaneResult:
    """Read and validate one lane result file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot read ({exc})") from None
    if not text.strip():
        raise ResultFileError(f"{path}: file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # json reports a cut inside a string at the string's start, so judge by the end too
        stripped = text.rstrip()
        truncated = exc.pos >= len(stripped) or exc.msg.startswith("Unterminated string") or (
            stripped.startswith("{") and not stripped.endswith("}"))
        what = "truncated" if truncated else "not valid JSON"
        raise ResultFileError(
            f"{path}: {what} (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    return LaneResult.from_dict(data, str(path))
