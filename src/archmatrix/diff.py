"""What changed since a baseline matrix: every cell compared with the baseline's.

A pull request asks "what did *this* change break?": a new
``illegal-instruction`` in one lane must not look like one that has been red
on the default branch for weeks. :func:`compare` answers it from two
:class:`~archmatrix.matrix.Matrix` values (load both with
:func:`archmatrix.results.load_matrix`); it is pure, and the renderers print
its :meth:`MatrixDiff.lines` first. :func:`exit_code` is the exit status of
``--fail-on new``: only what is new fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .errors import ExitCode
from .matrix import Matrix
from .suite.outcomes import Outcome
from .suite.result import CheckResult, LaneResult, LaneStatus, cut

MAX_MESSAGE = 200  # of a cell's message in a diff line (the reports hold the whole)


class Change(str, Enum):
    NEW_FAILURE = "new failure"  # fails now; passed, was skipped or did not exist in the baseline
    FIXED = "fixed"  # failed in the baseline, passes (or is skipped) now
    CHANGED = "changed root cause"  # failed in both, with another outcome


@dataclass(frozen=True)
class CellChange:
    lane: str
    check: str
    change: Change
    before: Outcome | None  # None: no such cell in the baseline
    after: Outcome | None
    message: str = ""  # the current cell's (for a fixed cell: the baseline's)
    required: bool = True  # the current lane is required

    def line(self) -> str:
        before = self.before.value if self.before else "absent"
        after = self.after.value if self.after else "absent"
        what = f"{self.change.value}: {self.lane} / {self.check}: {before} → {after}"
        return f"{what}: {cut(self.message, MAX_MESSAGE)}" if self.message else what


@dataclass(frozen=True)
class LaneChange:
    """A lane whose status changed (ran → infra-error, say): its cells cannot be compared."""

    lane: str
    before: str
    after: str
    reason: str = ""
    required: bool = True

    def line(self) -> str:
        what = f"lane {self.lane}: {self.before} → {self.after}"
        return f"{what}: {cut(self.reason, MAX_MESSAGE)}" if self.reason else what


@dataclass(frozen=True)
class MatrixDiff:
    cells: list[CellChange] = field(default_factory=list)
    lanes: list[LaneChange] = field(default_factory=list)
    new_lanes: list[str] = field(default_factory=list)
    removed_lanes: list[str] = field(default_factory=list)
    new_checks: list[str] = field(default_factory=list)
    removed_checks: list[str] = field(default_factory=list)
    new_drift: list[str] = field(default_factory=list)  # "check metric" beyond tolerance, not before

    def of(self, change: Change) -> list[CellChange]:
        return [c for c in self.cells if c.change is change]

    @property
    def new_failures(self) -> list[CellChange]:
        return self.of(Change.NEW_FAILURE)

    @property
    def fixed(self) -> list[CellChange]:
        return self.of(Change.FIXED)

    @property
    def changed(self) -> list[CellChange]:
        return self.of(Change.CHANGED)

    @property
    def empty(self) -> bool:
        return not (self.cells or self.lanes or self.new_lanes or self.removed_lanes or self.new_checks
                    or self.removed_checks or self.new_drift)

    def changed_cells(self) -> set[tuple[str, str]]:
        """(lane, check) of every cell that changed, for renderers that mark them."""
        return {(c.lane, c.check) for c in self.cells}

    def summary(self) -> str:
        """One line: the counts."""
        if self.empty:
            return "no change since the baseline"
        parts = [f"{len(self.new_failures)} new {_plural(len(self.new_failures), 'failure')}",
                 f"{len(self.fixed)} fixed", f"{len(self.changed)} changed root cause"]
        for items, what in ((self.lanes, "lane status change"), (self.new_lanes, "new lane"),
                            (self.removed_lanes, "removed lane"), (self.new_checks, "new check"),
                            (self.removed_checks, "removed check"), (self.new_drift, "new drift")):
            if items:
                parts.append(f"{len(items)} {_plural(len(items), what)}")
        return "since the baseline: " + ", ".join(parts)

    def lines(self) -> list[str]:
        """One plain-text line per change, new failures first (renderers escape them for their medium)."""
        out = [c.line() for c in (*self.new_failures, *self.changed, *self.fixed)]
        out += [ln.line() for ln in self.lanes]
        out += [f"new lane: {lane}" for lane in self.new_lanes]
        out += [f"removed lane: {lane}" for lane in self.removed_lanes]
        out += [f"new check: {check}" for check in self.new_checks]
        out += [f"removed check: {check}" for check in self.removed_checks]
        out += [f"new drift: {d}" for d in self.new_drift]
        return out


def _plural(n: int, word: str) -> str:
    return word if n == 1 or word.endswith("drift") else word + "s"


def _checks(lane: LaneResult) -> dict[str, CheckResult]:
    return {c.id: c for c in reversed(lane.checks)}  # the first of a duplicated id wins, as in the table


def compare(current: Matrix, baseline: Matrix) -> MatrixDiff:
    """Every cell of ``current`` against the same (lane, check) in ``baseline``.

    Lanes present in both are compared cell by cell when both ran; a lane
    that did not run in one of them (skipped, infra-error, interrupted) is a
    lane-status change, as its cells say nothing. A failing cell of a new
    lane, or of a new check, is a new failure: it fails, and nothing in the
    baseline says it did before.
    """
    base_lanes = {ln.lane: ln for ln in baseline.lanes}
    cur_lanes = {ln.lane: ln for ln in current.lanes}
    cells: list[CellChange] = []
    lane_changes: list[LaneChange] = []
    for lane in current.lanes:
        before_lane = base_lanes.get(lane.lane)
        if before_lane is not None and before_lane.status != lane.status:
            lane_changes.append(LaneChange(lane.lane, before_lane.status, lane.status,
                                           lane.reason, lane.required))
            if LaneStatus.RAN not in (lane.status, before_lane.status):
                continue
        before = _checks(before_lane) if before_lane is not None and before_lane.status == LaneStatus.RAN \
            else {}
        now = _checks(lane) if lane.status == LaneStatus.RAN else {}
        for check_id, cell in now.items():
            old = before.get(check_id)
            old_outcome = old.outcome if old is not None else None
            if cell.outcome.failed and (old is None or not old.outcome.failed):
                cells.append(CellChange(lane.lane, check_id, Change.NEW_FAILURE, old_outcome, cell.outcome,
                                        cell.message, lane.required))
            elif cell.outcome.failed and old is not None and old.outcome is not cell.outcome:
                cells.append(CellChange(lane.lane, check_id, Change.CHANGED, old_outcome, cell.outcome,
                                        cell.message, lane.required))
            elif not cell.outcome.failed and old is not None and old.outcome.failed:
                cells.append(CellChange(lane.lane, check_id, Change.FIXED, old_outcome, cell.outcome,
                                        old.message, lane.required))
    base_checks, cur_checks = set(baseline.check_ids()), set(current.check_ids())
    base_drift = {(d.check, d.metric) for d in baseline.drifting}
    return MatrixDiff(
        cells=cells,
        lanes=lane_changes,
        new_lanes=[ln for ln in cur_lanes if ln not in base_lanes],
        removed_lanes=[ln for ln in base_lanes if ln not in cur_lanes],
        new_checks=[c for c in current.check_ids() if c not in base_checks],
        removed_checks=[c for c in baseline.check_ids() if c not in cur_checks],
        new_drift=[f"{d.check} {d.metric}" for d in current.drifting
                   if (d.check, d.metric) not in base_drift],
    )


def exit_code(current: Matrix, diff: MatrixDiff) -> ExitCode:
    """The exit status of ``--fail-on new``: like :meth:`Matrix.exit_code`, counting only what is new.

    Interrupted is still 130; a new failure in a required lane is 1; a
    required lane that could not run now but did in the baseline (or is new)
    is 3. Failures and broken lanes the baseline already had do not fail.
    """
    if any(ln.status == LaneStatus.INTERRUPTED for ln in current.lanes):
        return ExitCode.INTERRUPTED
    if any(c.required for c in diff.new_failures):
        return ExitCode.FAILED
    newly_broken = {c.lane for c in diff.lanes if c.after == LaneStatus.INFRA_ERROR and c.required}
    newly_broken |= {ln.lane for ln in current.lanes
                     if ln.lane in diff.new_lanes and ln.required and ln.status == LaneStatus.INFRA_ERROR}
    if newly_broken:
        return ExitCode.INFRA
    return ExitCode.OK
