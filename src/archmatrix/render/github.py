"""GitHub Actions: the job summary, one ``::error`` annotation per failing lane and one ``::notice``.

GitHub shows at most 10 error annotations per step (50 per job): one per
failing *cell*, in lane order, let the first lane's consequences crowd out
the arm64 and no-AVX lanes, the reason the tool exists. So a lane gets one
annotation naming its root-cause outcome (the badge's message: checks run in
dependency order, so the first failure is the cause) and, per outcome, the
checks it affects; a notice with the totals follows. Each lane's annotation
is anchored to the line of the config file where the lane is written
(``file=…,line=…``), so a pull request shows it on the lane it is about.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..diff import MatrixDiff
from ..matrix import Matrix
from ..model import MatrixConfig
from ..suite.outcomes import Outcome
from ..suite.result import CheckResult, LaneResult, LaneStatus, cut
from . import markdown
from .escape import terminal_lines
from .escape import workflow_data as _escape_data
from .escape import workflow_property as _escape_property

MAX_ANNOTATIONS = 100  # lanes; GitHub shows 10 per step and 50 per job, more is only noise on stdout
MAX_CHECKS_NAMED = 8  # per outcome in one annotation; "+N more" for the rest
MAX_MESSAGE = 300  # of the root cause's own message


def _by_outcome(failed: list[CheckResult]) -> dict[Outcome, list[str]]:
    groups: dict[Outcome, list[str]] = {}
    for c in failed:
        groups.setdefault(c.outcome, []).append(c.id)
    return groups


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:MAX_CHECKS_NAMED])
    return shown + (f" (+{len(ids) - MAX_CHECKS_NAMED} more)" if len(ids) > MAX_CHECKS_NAMED else "")


@dataclass(frozen=True)
class Anchor:
    """Where a lane is written: the config file as GitHub names it (relative to the workspace), a line."""

    file: str
    line: int

    def properties(self) -> str:
        """``file=…,line=…,`` (each value escaped as a property: ``,`` ``:`` ``%`` in a file name)."""
        return f"file={_escape_property(self.file)},line={self.line},"


def config_anchors(config: MatrixConfig | None, env: Mapping[str, str] | None = None,
                   cwd: Path | None = None) -> dict[str, Anchor]:
    """Lane id → its line in the config file, for the lanes the config parser located.

    GitHub resolves ``file=`` against the repository checkout
    (``GITHUB_WORKSPACE``; outside Actions, the working directory): a config
    outside it (the packaged default) gets no anchor rather than a path
    GitHub would not find.
    """
    if config is None:
        return {}
    env = os.environ if env is None else env
    root = Path(env.get("GITHUB_WORKSPACE") or (cwd or Path.cwd()))
    try:
        relative = config.path.resolve().relative_to(root.resolve())
    except (OSError, ValueError):
        return {}
    return {lane.id: Anchor(relative.as_posix(), lane.line) for lane in config.lanes if lane.line}


def anchor_of(anchors: Mapping[str, Anchor], lane_id: str) -> Anchor | None:
    """The lane's anchor; a lane run once per Python version (``id@3.12``) is written once, as ``id``."""
    return anchors.get(lane_id) or anchors.get(lane_id.split("@", 1)[0])


def lane_annotation(lane: LaneResult, anchor: Anchor | None = None) -> str | None:
    """The one ``::error`` line of a lane that failed (or could not be built), None for the others."""
    if lane.status == LaneStatus.INFRA_ERROR:
        hint = f" (hint: {lane.hint})" if lane.hint else ""
        title, text = f"archmatrix {lane.lane}: infra-error", f"{lane.lane}: infra-error: {lane.reason}{hint}"
    elif lane.predicted:
        return predicted_annotation(lane, anchor)
    else:
        failed = lane.failed_checks
        if not failed:
            return None
        root = failed[0]
        groups = _by_outcome(failed)
        n = len(failed)
        affected = "; ".join(f"{outcome.value}: {_names(ids)}" for outcome, ids in groups.items())
        title = f"archmatrix {lane.lane}: {root.outcome.value}"
        text = (f"{lane.lane}: {n} failing {'check' if n == 1 else 'checks'}, root cause "
                f"{root.outcome.value} in {root.id}: {cut(root.message, MAX_MESSAGE)} — {affected}")
    where = anchor.properties() if anchor is not None else ""
    return f"::error {where}title={_escape_property(title)}::{_escape_data(text)}"


def predicted_annotation(lane: LaneResult, anchor: Anchor | None = None) -> str | None:
    """A ``::warning`` (never an error: nothing ran) for a predicted lane with predicted failures."""
    failed = lane.failed_checks
    if not failed:
        return None
    root = failed[0]
    affected = "; ".join(f"{outcome.value}: {_names(ids)}" for outcome, ids in _by_outcome(failed).items())
    title = f"archmatrix {lane.lane}: {root.outcome.value} (predicted)"
    text = (f"{lane.lane}: not run here; predicted from its wheels: {root.outcome.value} (predicted) in "
            f"{root.id}: {cut(root.message, MAX_MESSAGE)} — {affected}")
    where = anchor.properties() if anchor is not None else ""
    return f"::warning {where}title={_escape_property(title)}::{_escape_data(text)}"


def error_annotations(matrix: Matrix, anchors: Mapping[str, Anchor] | None = None) -> list[str]:
    """At most one ``::error`` per lane, in lane order, each at the lane's line when ``anchors`` has it."""
    anchors = anchors or {}
    lines = [line for lane in matrix.lanes
             if (line := lane_annotation(lane, anchor_of(anchors, lane.lane))) is not None]
    return lines[:MAX_ANNOTATIONS]


def totals(matrix: Matrix, diff: MatrixDiff | None = None) -> str:
    """One line of totals: lanes by status, cells by pass/fail, and what is new since the baseline."""
    ran = [ln for ln in matrix.lanes if ln.status == LaneStatus.RAN]
    failing = [ln for ln in ran if ln.failed_checks]
    cells = sum(len(ln.checks) for ln in ran)
    failed = sum(len(ln.failed_checks) for ln in ran)
    parts = [f"{len(ran) - len(failing)}/{len(ran)} lanes that ran pass",
             f"{failed} of {cells} cells failed" + (f" in {len(failing)} lanes" if failing else "")]
    for status in (LaneStatus.INFRA_ERROR, LaneStatus.SKIPPED, LaneStatus.INTERRUPTED):
        count = sum(ln.status == status and not ln.predicted for ln in matrix.lanes)
        if count:
            parts.append(f"{count} {status}")
    predicted = [ln for ln in matrix.lanes if ln.predicted]
    if predicted:
        parts.append(f"{len(predicted)} predicted, not run"
                     + (f" ({sum(len(ln.failed_checks) for ln in predicted)} predicted failures)"
                        if any(ln.failed_checks for ln in predicted) else ""))
    if diff is not None:
        parts.append(diff.summary())
    return "archmatrix: " + ", ".join(parts)


def notice(matrix: Matrix, diff: MatrixDiff | None = None) -> str:
    return f"::notice title=archmatrix totals::{_escape_data(totals(matrix, diff))}"


def workflow_commands(matrix: Matrix, diff: MatrixDiff | None = None,
                      anchors: Mapping[str, Anchor] | None = None) -> list[str]:
    """Every workflow command printed: an ``::error`` per failing lane, then the ``::notice``."""
    return [*error_annotations(matrix, anchors), notice(matrix, diff)]


def publish(matrix: Matrix, env: Mapping[str, str] | None = None, *, annotate: bool = True,
            diff: MatrixDiff | None = None, config: MatrixConfig | None = None) -> list[str]:
    """When running in Actions: append the summary and return the annotation lines to print
    (anchored to the lanes' lines in ``config``'s file, when given)."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") != "true":
        return []
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with Path(summary).open("a", encoding="utf-8") as fh:
                fh.write(markdown.render(matrix, diff=diff) + "\n")
        except OSError as exc:
            # the summary is a nicety: the annotations and the exit status still go out
            print(terminal_lines(f"archmatrix: cannot write the job summary GITHUB_STEP_SUMMARY={summary} "
                                 f"({exc.strerror or exc}); annotations follow"), file=sys.stderr)
    return workflow_commands(matrix, diff, config_anchors(config, env)) if annotate else []
