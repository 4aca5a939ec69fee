"""The table printed at the end of ``nox -s matrix``."""

from __future__ import annotations

from tabulate import SEPARATING_LINE, tabulate

from ..diff import MatrixDiff
from ..matrix import Matrix
from .escape import no_commands, terminal
from .table import build_table, failing_first, finding_lines, hidden_line, skipped_lines

COLUMN_WIDTH = 30  # wrap long facts (BLAS paths, feature lists) inside a lane's column


def diff_text(diff: MatrixDiff) -> str:
    """What changed since the baseline: the counts, then one line per change (printed first)."""
    return "\n".join(terminal(line) for line in [diff.summary(), *(f"  {ln}" for ln in diff.lines())])


def render(matrix: Matrix, *, diff: MatrixDiff | None = None, all_rows: bool = False) -> str:
    """The table: lane facts, then the check rows where some lane failed, then the summary.

    No rules between rows (a 30-check matrix fits a screen), only between the
    three groups. Rows where some lane failed come first; of the others only
    those some lane did not pass (skipped, not run), unless ``all_rows``; a
    line under the table counts the rows left out. ``diff`` goes first.
    """
    table = build_table(matrix)
    parts = [diff_text(diff)] if diff is not None else []
    shown = failing_first(table, all_rows=all_rows)
    hidden = len(table.check_rows) - len(shown)
    if table.lanes:
        checks = [table.check_rows[i] for i in shown]
        data = [*table.header_rows, SEPARATING_LINE, *checks, *([SEPARATING_LINE] if checks else []),
                table.summary_row]
        rows = [row if row is SEPARATING_LINE else [terminal(c) for c in row] for row in data]
        text = tabulate(
            rows,
            headers=["", *(terminal(ln.lane) for ln in table.lanes)],
            tablefmt="simple_outline",
            maxcolwidths=[None, *([COLUMN_WIDTH] * len(table.lanes))],
            disable_numparse=True,
        )
        parts.append(text)
    else:
        parts.append("no lane ran")
    predicted = any(ln.predicted for ln in table.lanes)
    lines = [hidden_line(hidden, "--all-rows", predicted=predicted)] if hidden else []
    lines += skipped_lines(table) + finding_lines(matrix)
    if lines:
        parts.append("\n".join(terminal(line) for line in lines))
    # the stdout of a CI job: no line of it may read as a workflow command
    return no_commands("\n\n".join(parts)) + "\n"
