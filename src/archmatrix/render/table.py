"""The matrix as rows of text cells, shared by the terminal, markdown and HTML renderers.

Lanes that ran (or broke) are columns; lanes that were skipped are listed
below the table with their reason and hint, so a host that can run two
lanes still gets a narrow, readable table.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..matrix import Matrix
from ..speed import speed_rows
from ..suite.outcomes import PREDICTED_GLYPH, Outcome
from ..suite.result import CheckResult, LaneResult, LaneStatus, cut
from ..summary import HEADER_ROWS, LaneSummary, summarise
from .rows import Row, select_rows

NOT_RUN = "– not run"
# What a table cell or a line under the table shows of a fact, a reason or a
# warning (the result files keep more). Table formats pad every cell of a
# column to its widest, so one long cell would multiply by the number of rows.
MAX_CELL = 200
MAX_LINE = 1_000
# Check rows shown (a real suite has tens; a pytest suite is folded into one
# row, see .rows): beyond this, rows where some lane failed are all kept, of
# the others those every lane passed go first, and a line under the table
# says how many are not shown. The exit status, matrix.json and junit.xml
# still hold every check.
MAX_ROWS = 1_000
# Failing rows are kept beyond MAX_ROWS up to this many cells (rows × lanes):
# every failing test of a real suite, a bounded table from a hostile file.
MAX_CELLS = 40_000


@dataclass(frozen=True)
class Table:
    lanes: list[LaneResult]  # the columns
    summaries: list[LaneSummary]
    header_rows: list[list[str]]  # [label, cell per lane]
    check_rows: list[list[str]]
    check_cells: list[list[CheckResult | None]]  # for renderers that colour by outcome
    summary_row: list[str]
    skipped: list[LaneResult]
    rows_not_shown: int = 0  # check rows left out beyond MAX_ROWS
    always_shown: frozenset[int] = frozenset()  # rows every view shows (the pytest row)
    failing_not_shown: int = 0  # of rows_not_shown, those where some lane failed (beyond MAX_CELLS)


def cell_text(result: CheckResult | None) -> str:
    if result is None:
        return NOT_RUN
    if result.predicted:  # never the observed glyphs: ◇ pass (predicted)
        return f"{PREDICTED_GLYPH} {result.outcome.value} (predicted)"
    return f"{result.outcome.glyph} {result.outcome.value}"


def row_text(row: Row) -> list[str]:
    """A row as text: a cell's glyph and outcome; in the ``pytest`` row, the glyph and the counts."""
    if row.summary:
        return [row.id, *(cell_text(c) if c is None else f"{c.outcome.glyph} {c.message}" for c in row.cells)]
    return [row.id, *(cell_text(c) for c in row.cells)]


def build_table(matrix: Matrix) -> Table:
    # a predicted lane did not run either, but its cells are a column (each marked predicted)
    columns = [ln for ln in matrix.lanes if ln.status != LaneStatus.SKIPPED or ln.predicted]
    skipped = [ln for ln in matrix.lanes if ln.status == LaneStatus.SKIPPED]
    summaries = [summarise(ln, matrix.lock) for ln in columns]
    header_rows = [[label, *(cut(s.rows[label], MAX_CELL) for s in summaries)] for label in HEADER_ROWS]
    header_rows += speed_rows(columns)  # speed relative to the host; absent when no probe ran
    rows, not_shown, failing_not_shown = select_rows(columns, matrix.check_ids(), MAX_ROWS, MAX_CELLS)
    check_rows = [row_text(row) for row in rows]
    cells = [list(row.cells) for row in rows]
    always = frozenset(i for i, row in enumerate(rows) if row.summary)
    summary_row = ["summary", *(cut(s.status_text, MAX_CELL) for s in summaries)]
    return Table(columns, summaries, header_rows, check_rows, cells, summary_row, skipped, not_shown, always,
                 failing_not_shown)


def row_failed(cells: list[CheckResult | None]) -> bool:
    return any(c is not None and c.outcome.failed for c in cells)


def row_notable(cells: list[CheckResult | None]) -> bool:
    """Some lane did not pass this check (or did not run it: a predicted pass is not an observed one)."""
    return any(c is None or c.outcome is not Outcome.PASS or c.predicted for c in cells)


def counted_cells(table: Table, cells: list[CheckResult | None]) -> list[CheckResult | None]:
    """The cells that decide whether a row is notable: a predicted lane has only ``wheel.*`` cells, and
    its empty ones (the suite's checks, never run there) say nothing about the row."""
    return [c for c, lane in zip(cells, table.lanes, strict=True) if c is not None or not lane.predicted]


def failing_first(table: Table, *, all_rows: bool = True) -> list[int]:
    """Indices of the check rows to show: rows where some lane failed first, then the others (each in
    their order); without ``all_rows``, only the rows some lane did not pass."""
    failed = [i for i, cells in enumerate(table.check_cells) if row_failed(cells)]
    rest = [i for i, cells in enumerate(table.check_cells)
            if not row_failed(cells)
            and (all_rows or row_notable(counted_cells(table, cells)) or i in table.always_shown)]
    return failed + rest


def hidden_line(hidden: int, how: str, *, predicted: bool = False) -> str:
    """The line under a table that leaves out the check rows every lane passed (``predicted``: some lanes
    are predicted, and did not run those checks)."""
    checks = "check" if hidden == 1 else "checks"
    lanes = "every lane that ran" if predicted else "every lane"
    return f"{hidden} more {checks} not shown: {Outcome.PASS.glyph} pass in {lanes} ({how} shows them)"


def skipped_lines(table: Table) -> list[str]:
    """Lines about the table itself: its skipped lanes, and the check rows it could not show."""
    lines = []
    if table.rows_not_shown:
        failing = (f", {table.failing_not_shown} of them failing (over {MAX_CELLS} cells)"
                   if table.failing_not_shown else "")
        lines.append(f"{table.rows_not_shown} more check rows not shown (over {MAX_ROWS}{failing}; "
                     "matrix.json and junit.xml have every check)")
    for lane in table.skipped:
        hint = f" — hint: {lane.hint}" if lane.hint else ""
        what = f"not run, {PREDICTED_GLYPH} cells predicted from its wheels" if lane.predicted else "skipped"
        lines.append(cut(f"{lane.lane}: {what}: {lane.reason}{hint}", MAX_LINE))
    return lines


def finding_lines(matrix: Matrix) -> list[str]:
    """Warnings, drift beyond tolerance and unreadable files, one line each."""
    lines = []
    for lane in matrix.lanes:
        for w in lane.warnings:
            hint = f" — fix: {w.hint}" if w.hint else ""
            lines.append(cut(f"{lane.lane}: warning: {w.message}{hint}", MAX_LINE))
    for d in matrix.drifting:
        lines.append(
            f"drift: {d.check} {d.metric} differs by {d.rel_diff:.3g} (relative) between "
            f"{d.lanes[0]} and {d.lanes[1]}; tolerance {d.tolerance:g}"
        )
    for problem in matrix.problems:
        lines.append(cut(f"unreadable result: {problem}", MAX_LINE))
    return lines


def failing_cells(matrix: Matrix) -> list[tuple[LaneResult, CheckResult]]:
    return [(ln, c) for ln in matrix.lanes for c in ln.checks if c.outcome.failed]


def outcome_class(result: CheckResult | None) -> str:
    if result is None:
        return "notrun"
    predicted = " predicted" if result.predicted else ""
    if result.outcome is Outcome.PASS:
        return "pass" + predicted
    if result.outcome is Outcome.SKIPPED:
        return "skipped" + predicted
    return "fail" + predicted
