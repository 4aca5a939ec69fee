"""The matrix: checks × lanes → outcomes, plus each lane's facts and the cross-lane drift."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ExitCode
from .pyversions import lane_order_key
from .suite.outcomes import Outcome
from .suite.result import (
    CheckResult,
    LaneResult,
    LaneStatus,
    ResultFileError,
    cut,
    load,
    read_json,
    write_json_atomic,
)

MATRIX_SCHEMA = "archmatrix/matrix"
MATRIX_SCHEMA_VERSION = 1

# The old names of the exit codes, for code that imports them from here.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INFRA, EXIT_INTERRUPTED = (
    ExitCode.OK, ExitCode.FAILED, ExitCode.CONFIG, ExitCode.INFRA, ExitCode.INTERRUPTED)

# Metrics that legitimately differ between lanes (error magnitudes near
# zero, speeds, versions) are not compared.
_NOT_COMPARED = (".max_abs_err", "duration", "version", "gflops", "throughput", "file")
# Performance probes measure the lane, not the library's numbers: sizes and
# counts are calibrated per lane, so none of their metrics is compared.
_NOT_COMPARED_CHECKS = ("perf.",)


@dataclass(frozen=True)
class Drift:
    check: str
    metric: str
    rel_diff: float
    tolerance: float
    lanes: tuple[str, str]  # the two lanes furthest apart

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "metric": self.metric, "rel_diff": self.rel_diff,
                "tolerance": self.tolerance, "lanes": list(self.lanes)}


@dataclass
class Matrix:
    lanes: list[LaneResult]
    lock: Mapping[str, str] = field(default_factory=dict)
    drift: list[Drift] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unreadable result files etc.
    generated: str = ""

    def check_ids(self) -> list[str]:
        """Every check any lane reported, in first-seen order (wheel rows first)."""
        seen: dict[str, None] = {}
        for lane in self.lanes:
            for c in lane.checks:
                seen.setdefault(c.id, None)
        ids = list(seen)
        return [i for i in ids if i.startswith("wheel.")] + [i for i in ids if not i.startswith("wheel.")]

    def cell(self, lane_id: str, check_id: str) -> CheckResult | None:
        for lane in self.lanes:
            if lane.lane == lane_id:
                return lane.check(check_id)
        return None

    @property
    def drifting(self) -> list[Drift]:
        return [d for d in self.drift if d.rel_diff > d.tolerance]

    def exit_code(self) -> ExitCode:
        required = [ln for ln in self.lanes if ln.required]
        if any(ln.status == LaneStatus.INTERRUPTED for ln in self.lanes):
            return ExitCode.INTERRUPTED
        if any(ln.status == LaneStatus.RAN and ln.failed_checks for ln in required):
            return ExitCode.FAILED
        if any(ln.status == LaneStatus.INFRA_ERROR for ln in required):
            return ExitCode.INFRA
        return ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": MATRIX_SCHEMA,
            "schema_version": MATRIX_SCHEMA_VERSION,
            "generated": self.generated,
            "lock": dict(self.lock),
            "lanes": [ln.to_dict() for ln in self.lanes],
            "drift": [d.to_dict() for d in self.drift],
            "problems": list(self.problems),
        }

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())


def build(
    lanes: Sequence[LaneResult],
    *,
    lock: Mapping[str, str] | None = None,
    drift_rtol: float = 1e-6,
    float32_rtol: float = 2e-4,
    problems: Iterable[str] = (),
    now: _dt.datetime | None = None,
) -> Matrix:
    when = (now or _dt.datetime.now(_dt.timezone.utc)).isoformat(timespec="seconds")
    return Matrix(
        lanes=list(lanes),
        lock=dict(lock or {}),
        drift=compare_metrics(lanes, drift_rtol, float32_rtol),
        problems=list(problems),
        generated=when,
    )


def _numbers(value: Any) -> list[float] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, list) and value and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return [float(v) for v in value]
    return None


def compare_metrics(lanes: Sequence[LaneResult], rtol: float, float32_rtol: float) -> list[Drift]:
    """Largest relative difference of every numeric metric across the lanes where its check passed."""
    out: list[Drift] = []
    by_check: dict[str, dict[str, dict[str, list[float]]]] = {}
    for lane in lanes:
        for c in lane.checks:
            if c.outcome is not Outcome.PASS or c.id.startswith(_NOT_COMPARED_CHECKS):
                continue
            for name, value in c.metrics.items():
                nums = _numbers(value)
                if nums is None or any(skip in name for skip in _NOT_COMPARED):
                    continue
                by_check.setdefault(c.id, {}).setdefault(name, {})[lane.lane] = nums
    for check_id, metrics in by_check.items():
        for name, per_lane in metrics.items():
            if len(per_lane) < 2:
                continue
            worst, pair = 0.0, ("", "")
            ids = list(per_lane)
            for i, a in enumerate(ids):
                for b in ids[i + 1:]:
                    d = _rel_diff(per_lane[a], per_lane[b])
                    if d > worst or not pair[0]:
                        worst, pair = d, (a, b)
            tol = float32_rtol if "float32" in name else rtol
            out.append(Drift(check_id, name, worst, tol, pair))
    return out


def _rel_diff(a: list[float], b: list[float]) -> float:
    if len(a) != len(b):
        return math.inf
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if math.isnan(x) or math.isnan(y):
            if not (math.isnan(x) and math.isnan(y)):
                return math.inf
            continue
        scale = max(abs(x), abs(y), 1e-6)
        worst = max(worst, abs(x - y) / scale)
    return worst


def load_results(paths: Iterable[Path]) -> tuple[list[LaneResult], list[str]]:
    """Read lane result files; a bad file becomes a problem line naming it, never an exception."""
    lanes: list[LaneResult] = []
    problems: list[str] = []
    for path in paths:
        try:
            lanes.append(load(path))
        except ResultFileError as exc:
            problems.append(str(exc))
    return lanes, problems


def load_dir(directory: Path) -> tuple[list[LaneResult], list[str]]:
    """Every lane result in ``directory`` (recursively: CI artifacts come one folder per lane).

    Files that are not lane results (the merged matrix, JUnit, HTML) are passed over.
    """
    if not directory.is_dir():
        return [], [f"{directory}: no such directory"]
    candidates = []
    for path in sorted(directory.rglob("*.json")):
        if path.name.startswith(".") or _is_other_output(path):
            continue
        candidates.append(path)
    lanes, problems = load_results(candidates)
    # several files for one lane (re-runs): the newest start wins
    newest: dict[str, LaneResult] = {}
    for lane in lanes:
        if lane.lane not in newest or lane.started >= newest[lane.lane].started:
            newest[lane.lane] = lane
    return list(newest.values()), problems


def _is_other_output(path: Path) -> bool:
    """The matrix's own outputs live next to lane results; recognise them by their schema."""
    if not path.is_file():
        return False  # a FIFO would block here; the loader names it
    try:
        with path.open("rb") as fh:
            head = fh.read(200)  # bytes: a file that is not UTF-8 is the loader's to name
    except OSError:
        return False
    return f'"{MATRIX_SCHEMA}"'.encode() in head or b'"schemaVersion"' in head


def order_lanes(lanes: Sequence[LaneResult], order: Sequence[str]) -> list[LaneResult]:
    """Config order first, then any other lanes alphabetically."""
    rank = {lane_id: i for i, lane_id in enumerate(order)}
    # lanes of several Pythons: grouped by lane, versions in numeric order (3.9 before 3.10)
    return sorted(lanes, key=lambda ln: (rank.get(ln.lane, len(rank)), lane_order_key(ln.lane), ln.lane))


_MAX_MATRIX_LANES = 500
_MAX_LIST = 10_000  # drift entries, problems
_MAX_TEXT = 2_000


def _field(data: Mapping[str, Any], key: str, typ: type, where: str, default: Any) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, typ):
        raise ResultFileError(
            f"{where}: field {key!r} should be {typ.__name__}, found {type(value).__name__}")
    return value


def _drift(d: Any, where: str) -> Drift:
    if not isinstance(d, dict):
        raise ResultFileError(f"{where}: expected an object")
    for key, typ in (("check", str), ("metric", str), ("rel_diff", (int, float)), ("tolerance", (int, float)),
                     ("lanes", list)):
        if not isinstance(d.get(key), typ) or isinstance(d.get(key), bool):
            raise ResultFileError(f"{where}: field {key!r} is missing or of the wrong type")
    lanes = d["lanes"]
    if len(lanes) != 2 or not all(isinstance(x, str) for x in lanes):
        raise ResultFileError(f"{where}: field 'lanes' should be two lane ids")
    return Drift(cut(d["check"], _MAX_TEXT), cut(d["metric"], _MAX_TEXT), float(d["rel_diff"]),
                 float(d["tolerance"]), (cut(lanes[0], _MAX_TEXT), cut(lanes[1], _MAX_TEXT)))


def read_matrix(path: Path) -> Matrix:
    """Load a merged ``matrix.json`` back (for renderers run later, e.g. badges).

    Read with the lane results' reader and validated field by field, its
    lanes as lane results: anything wrong raises ResultFileError naming the file.
    """
    data = read_json(path)
    if not isinstance(data, dict) or data.get("schema") != MATRIX_SCHEMA:
        raise ResultFileError(f"{path}: not an archmatrix matrix (schema {MATRIX_SCHEMA!r})")
    where = str(path)
    lanes_data = _field(data, "lanes", list, where, [])
    if len(lanes_data) > _MAX_MATRIX_LANES:
        raise ResultFileError(f"{where}: {len(lanes_data)} lanes, more than {_MAX_MATRIX_LANES}")
    lanes = [LaneResult.from_dict(d, f"{where}: lanes[{i}]") for i, d in enumerate(lanes_data)]
    drift = [_drift(d, f"{where}: drift[{i}]")
             for i, d in enumerate(_field(data, "drift", list, where, [])[:_MAX_LIST])]
    lock = _field(data, "lock", dict, where, {})
    if not all(isinstance(v, str) for v in lock.values()):
        raise ResultFileError(f"{where}: field 'lock' should map package names to versions")
    lock = {cut(k, _MAX_TEXT): cut(v, _MAX_TEXT) for k, v in list(lock.items())[:_MAX_LIST]}
    problems = _field(data, "problems", list, where, [])
    if not all(isinstance(p, str) for p in problems):
        raise ResultFileError(f"{where}: field 'problems' should be a list of strings")
    return Matrix(lanes=lanes, lock=lock, drift=drift,
                  problems=[cut(p, _MAX_TEXT) for p in problems[:_MAX_LIST]],
                  generated=cut(_field(data, "generated", str, where, ""), _MAX_TEXT))
