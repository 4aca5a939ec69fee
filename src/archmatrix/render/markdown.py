"""GitHub-flavoured markdown: the job summary and the README block."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ..diff import MatrixDiff
from ..matrix import Matrix
from ..suite.outcomes import Outcome
from ..suite.result import CheckResult
from .escape import markdown, markdown_code
from .table import build_table, counted_cells, finding_lines, skipped_lines

Rows = Literal["all", "notable"]
ROWS: tuple[Rows, ...] = ("all", "notable")


def notable(cells: Sequence[CheckResult | None]) -> bool:
    """A check row worth showing in a short view: some lane did not pass it (or did not run it)."""
    return any(c is None or c.outcome is not Outcome.PASS or c.predicted for c in cells)


def diff_lines(diff: MatrixDiff) -> list[str]:
    """The baseline comparison: a bold line of counts, then one bullet per change."""
    return [f"**{markdown(diff.summary())}**", "", *(f"- {markdown(line)}" for line in diff.lines())]


def render(matrix: Matrix, *, title: str = "archmatrix", rows: Rows = "all",
           diff: MatrixDiff | None = None) -> str:
    """The matrix as a markdown table, then skipped lanes and findings, one bullet each.

    ``rows="notable"`` keeps the lane header rows (platform, versions, BLAS,
    CPU, lock, …), the ``pytest`` row and the summary, but of the check rows
    only those where a lane did not pass; one line under the table counts the
    rows left out.
    ``diff`` (the comparison with a baseline) goes first, under the title.
    """
    if rows not in ROWS:
        raise ValueError(f"rows must be one of {', '.join(ROWS)}, not {rows!r}")
    table = build_table(matrix)
    check_rows = table.check_rows
    if rows == "notable":
        rows_cells = enumerate(zip(table.check_rows, table.check_cells, strict=True))
        check_rows = [row for i, (row, cells) in rows_cells
                      if notable(counted_cells(table, cells)) or i in table.always_shown]
    hidden = len(table.check_rows) - len(check_rows)
    out = [f"### {markdown(title)}", ""]
    if diff is not None:
        out += [*diff_lines(diff), ""]
    if table.lanes:
        body = [[markdown(c) for c in row] for row in (*table.header_rows, *check_rows, table.summary_row)]
        body = [[f"**{row[0]}**", *row[1:]] if i < len(table.header_rows) else row
                for i, row in enumerate(body)]
        out += pipe_table(["", *(markdown_code(ln.lane) for ln in table.lanes)], body)
        if hidden:
            out += ["", f"_{hidden} more {'check' if hidden == 1 else 'checks'} not shown: "
                        f"{Outcome.PASS.glyph} pass in every lane"
                        f"{' that ran' if any(ln.predicted for ln in table.lanes) else ''}._"]
    else:
        out.append("_no lane ran_")
    lines = skipped_lines(table) + finding_lines(matrix)
    if lines:
        out.append("")
        out.extend(f"- {markdown(line)}" for line in lines)
    return "\n".join(out) + "\n"


def pipe_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub markdown table without padding: cells are already escaped (no ``|``, no newline).

    Not tabulate's "github" format: it pads every cell to its column's width,
    which the rendered table does not need and which, across thousands of test
    rows and several lanes, multiplies the size of a job summary (GitHub takes
    at most 1 MiB) and of a README block.
    """
    return ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]
