"""The table printed at the end of ``nox -s matrix``."""

from __future__ import annotations

from tabulate import tabulate

from ..matrix import Matrix
from .table import build_table, finding_lines, skipped_lines

COLUMN_WIDTH = 30  # wrap long facts (BLAS paths, feature lists) inside a lane's column


def render(matrix: Matrix) -> str:
    table = build_table(matrix)
    parts = []
    if table.lanes:
        rows = [*table.header_rows, *table.check_rows, table.summary_row]
        text = tabulate(
            rows,
            headers=["", *(ln.lane for ln in table.lanes)],
            tablefmt="simple_grid",
            maxcolwidths=[None, *([COLUMN_WIDTH] * len(table.lanes))],
            disable_numparse=True,
        )
        parts.append(text)
    else:
        parts.append("no lane ran")
    lines = skipped_lines(table) + finding_lines(matrix)
    if lines:
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
