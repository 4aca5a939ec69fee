"""The table printed at the end of ``nox -s matrix``."""

from __future__ import annotations

from tabulate import tabulate

from ..diff import MatrixDiff
from ..matrix import Matrix
from .escape import no_commands, terminal
from .table import build_table, finding_lines, skipped_lines

COLUMN_WIDTH = 30  # wrap long facts (BLAS paths, feature lists) inside a lane's column


def diff_text(diff: MatrixDiff) -> str:
    """What changed since the baseline: the counts, then one line per change (printed first)."""
    return "\n".join(terminal(line) for line in [diff.summary(), *(f"  {ln}" for ln in diff.lines())])


def render(matrix: Matrix, *, diff: MatrixDiff | None = None) -> str:
    table = build_table(matrix)
    parts = [diff_text(diff)] if diff is not None else []
    if table.lanes:
        data = (*table.header_rows, *table.check_rows, table.summary_row)
        rows = [[terminal(c) for c in row] for row in data]
        text = tabulate(
            rows,
            headers=["", *(terminal(ln.lane) for ln in table.lanes)],
            tablefmt="simple_grid",
            maxcolwidths=[None, *([COLUMN_WIDTH] * len(table.lanes))],
            disable_numparse=True,
        )
        parts.append(text)
    else:
        parts.append("no lane ran")
    lines = skipped_lines(table) + finding_lines(matrix)
    if lines:
        parts.append("\n".join(terminal(line) for line in lines))
    # the stdout of a CI job: no line of it may read as a workflow command
    return no_commands("\n\n".join(parts)) + "\n"
