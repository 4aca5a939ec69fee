"""The matrix as rows of text cells, shared by the terminal, markdown and HTML renderers.

Lanes that ran (or broke) are columns; lanes that were skipped are listed
below the table with their reason and hint, so a host that can run two
lanes still gets a narrow, readable table.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..matrix import Matrix
from ..speed import speed_rows
from ..suite.outcomes import Outcome
from ..suite.result import CheckResult, LaneResult, LaneStatus
from ..summary import HEADER_ROWS, LaneSummary, summarise

NOT_RUN = "– not run"


@dataclass(frozen=True)
class Table:
    lanes: list[LaneResult]  # the columns
    summaries: list[LaneSummary]
    header_rows: list[list[str]]  # [label, cell per lane]
    check_rows: list[list[str]]
    check_cells: list[list[CheckResult | None]]  # for renderers that colour by outcome
    summary_row: list[str]
    skipped: list[LaneResult]


def cell_text(result: CheckResult | None) -> str:
    if result is None:
        return NOT_RUN
    return f"{result.outcome.glyph} {result.outcome.value}"


def build_table(matrix: Matrix) -> Table:
    columns = [ln for ln in matrix.lanes if ln.status != LaneStatus.SKIPPED]
    skipped = [ln for ln in matrix.lanes if ln.status == LaneStatus.SKIPPED]
    summaries = [summarise(ln, matrix.lock) for ln in columns]
    header_rows = [[label, *(s.rows[label] for s in summaries)] for label in HEADER_ROWS]
    header_rows += speed_rows(columns)  # speed relative to the host; absent when no probe ran
    check_ids = matrix.check_ids()
    cells = [[ln.check(cid) for ln in columns] for cid in check_ids]
    check_rows = [[cid, *(cell_text(c) for c in row)] for cid, row in zip(check_ids, cells, strict=True)]
    summary_row = ["summary", *(s.status_text for s in summaries)]
    return Table(columns, summaries, header_rows, check_rows, cells, summary_row, skipped)


def skipped_lines(table: Table) -> list[str]:
    lines = []
    for lane in table.skipped:
        hint = f" — hint: {lane.hint}" if lane.hint else ""
        lines.append(f"{lane.lane}: skipped: {lane.reason}{hint}")
    return lines


def finding_lines(matrix: Matrix) -> list[str]:
    """Warnings, drift beyond tolerance and unreadable files, one line each."""
    lines = []
    for lane in matrix.lanes:
        for w in lane.warnings:
            hint = f" — fix: {w.hint}" if w.hint else ""
            lines.append(f"{lane.lane}: warning: {w.message}{hint}")
    for d in matrix.drifting:
        lines.append(
            f"drift: {d.check} {d.metric} differs by {d.rel_diff:.3g} (relative) between "
            f"{d.lanes[0]} and {d.lanes[1]}; tolerance {d.tolerance:g}"
        )
    for problem in matrix.problems:
        lines.append(f"unreadable result: {problem}")
    return lines


def failing_cells(matrix: Matrix) -> list[tuple[LaneResult, CheckResult]]:
    return [(ln, c) for ln in matrix.lanes for c in ln.checks if c.outcome.failed]


def outcome_class(result: CheckResult | None) -> str:
    if result is None:
        return "notrun"
    if result.outcome is Outcome.PASS:
        return "pass"
    if result.outcome is Outcome.SKIPPED:
        return "skipped"
    return "fail"
