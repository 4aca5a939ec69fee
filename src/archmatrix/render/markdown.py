"""GitHub-flavoured markdown: the job summary and the README block."""

from __future__ import annotations

from tabulate import tabulate

from ..matrix import Matrix
from .table import build_table, finding_lines, skipped_lines


def _md(text: str) -> str:
    # a pipe would end the cell; newlines would end the row
    return text.replace("|", "\\|").replace("\n", " ")


def render(matrix: Matrix, *, title: str = "archmatrix") -> str:
    table = build_table(matrix)
    out = [f"### {title}", ""]
    if table.lanes:
        rows = [[_md(c) for c in row] for row in (*table.header_rows, *table.check_rows, table.summary_row)]
        rows = [[f"**{row[0]}**", *row[1:]] if i < len(table.header_rows) else row
                for i, row in enumerate(rows)]
        out.append(tabulate(rows, headers=["", *(f"`{_md(ln.lane)}`" for ln in table.lanes)],
                            tablefmt="github", disable_numparse=True))
    else:
        out.append("_no lane ran_")
    lines = skipped_lines(table) + finding_lines(matrix)
    if lines:
        out.append("")
        out.extend(f"- {_md(line)}" for line in lines)
    return "\n".join(out) + "\n"
