"""A standalone HTML page (no external assets): the table, coloured by outcome, with evidence."""

from __future__ import annotations

from ..diff import MatrixDiff
from ..matrix import Matrix
from ..speed import pool_curves
from .escape import html as escape
from .escape import html_block
from .plots import scaling_section
from .table import build_table, cell_text, finding_lines, outcome_class, skipped_lines

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f4f4f4;text-align:left}td.fact{color:#555;font-size:12px}
td.pass{background:#e6f4ea}td.fail{background:#fce8e6}td.skipped,td.notrun{background:#f1f3f4}
details{font-size:12px}pre{white-space:pre-wrap;max-width:40em}
figure.plot{margin:1em 0}figure.plot svg{max-width:100%;height:auto}p.hint{color:#555;font-size:12px}
"""


def render(
    matrix: Matrix, *, title: str = "archmatrix compatibility matrix", plots: bool | None = None,
    diff: MatrixDiff | None = None,
) -> str:
    """The page; ``plots`` as in :func:`.plots.scaling_section` (None: a plot when matplotlib is there)."""
    table = build_table(matrix)
    h = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>",
         f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>",
         f"<p>generated {escape(matrix.generated)}</p>"]
    if diff is not None:
        h.append(f"<section id=diff><h2>{escape(diff.summary())}</h2>")
        h.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in diff.lines()) + "</ul></section>")
    if table.lanes:
        h.append("<table><thead><tr><th></th>")
        h.extend(f"<th>{escape(ln.lane)}</th>" for ln in table.lanes)
        h.append("</tr></thead><tbody>")
        for row in table.header_rows:
            h.append(f"<tr><th>{escape(row[0])}</th>")
            h.extend(f"<td class=fact>{escape(c)}</td>" for c in row[1:])
            h.append("</tr>")
        for row, cells in zip(table.check_rows, table.check_cells, strict=True):
            h.append(f"<tr><th>{escape(row[0])}</th>")
            for result in cells:
                h.append(f"<td class={outcome_class(result)}>{escape(cell_text(result))}")
                if result is not None and (result.message or result.evidence):
                    detail = result.message
                    ev = result.evidence
                    tail = ev.get("stderr_tail") or ev.get("stdout_tail") or ev.get("output_tail")
                    h.append(f"<details><summary>{escape(detail[:80] or 'evidence')}</summary>"
                             f"<pre>{html_block(detail)}\n{html_block(tail or '')}</pre></details>")
                h.append("</td>")
            h.append("</tr>")
        h.append(f"<tr><th>{escape(table.summary_row[0])}</th>")
        h.extend(f"<th>{escape(c)}</th>" for c in table.summary_row[1:])
        h.append("</tr></tbody></table>")
    else:
        h.append("<p>no lane ran</p>")
    lines = skipped_lines(table) + finding_lines(matrix)
    if lines:
        h.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>")
    h.append(scaling_section(pool_curves(table.lanes), plots=plots))  # '' without pool probes
    h.append("</body></html>\n")
    return "".join(h)
