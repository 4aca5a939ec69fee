"""A standalone HTML dashboard (no external assets, no script): read at a glance, then dig.

On top the overall status (the overall badge's message and colour) and one
tile per lane (platform, how it runs, status, counts); a heatmap of checks ×
lanes (one small cell each, coloured by outcome, predicted cells hatched, the
message on hover, a click to the cell's evidence); what changed since a
baseline when there is one; then the checks × lanes table, rows where some
lane failed first, with a filter to show only the failing (or changed) rows;
the lanes' facts (versions, BLAS, CPU, lock, speed) in a collapsible panel;
findings and the pool-scaling plot last.

The filter is CSS only (radio buttons and ``:checked ~`` selectors): the page
runs no script, needs no network, and works where scripts are blocked (a CI
artifact viewer). Every text goes through :mod:`.escape`.
"""

from __future__ import annotations

from ..diff import MatrixDiff
from ..matrix import Matrix
from ..speed import pool_curves
from ..suite.outcomes import Outcome
from ..suite.result import CheckResult, LaneResult, LaneStatus
from ..summary import summarise
from .badges import lane_message, overall_badge
from .escape import html as escape
from .escape import html_block
from .plots import scaling_section
from .table import (
    Table,
    build_table,
    cell_text,
    failing_first,
    finding_lines,
    outcome_class,
    row_failed,
    skipped_lines,
)

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em 2em;color:#222}
header.top{display:flex;align-items:center;gap:1em;flex-wrap:wrap}header.top h1{margin:0;font-size:1.5em}
.status{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.s-brightgreen{background:#2e7d32}.s-red{background:#c62828}.s-yellow{background:#9e7c00}
.s-orange{background:#d35400}.s-lightgrey{background:#757575}
p.meta{color:#555;margin:.3em 0 1em}
.tiles{display:flex;flex-wrap:wrap;gap:.6em;margin:1em 0}
.tile{border:1px solid #ccc;border-left:6px solid #757575;border-radius:4px;padding:.4em .7em;min-width:13em}
.tile.t-brightgreen{border-left-color:#2e7d32}.tile.t-red{border-left-color:#c62828;background:#fff6f5}
.tile.t-orange{border-left-color:#d35400}.tile.t-yellow{border-left-color:#9e7c00}
.tile b{display:block}.tile span{display:block;color:#555;font-size:12px}
.tile span.st{color:#222;font-weight:600}
section.diff{border:1px solid #c62828;border-radius:4px;padding:.2em 1em;margin:1em 0}
section.diff.same{border-color:#2e7d32}section.diff h2{font-size:1.1em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 8px;vertical-align:top}
th{background:#f4f4f4;text-align:left}td.fact{color:#555;font-size:12px}
td.pass{background:#e6f4ea}td.fail{background:#fce8e6;font-weight:600}td.skipped,td.notrun{background:#f1f3f4}
td.changed{outline:3px solid #1565c0;outline-offset:-3px}
tr.sep th{background:#fff;border:0;padding-top:.6em}
details{font-size:12px}pre{white-space:pre-wrap;max-width:40em;font-weight:400}
.board input{margin-left:1em}.board label{margin-right:.5em}
#show-fail:checked~table tr.check:not(.fails){display:none}
#show-changed:checked~table tr.check:not(.changed){display:none}
details.facts{margin:1em 0;font-size:14px}details.facts summary{cursor:pointer;font-weight:600}
td.pass.predicted{background-color:#e8f0fe}td.fail.predicted{background-color:#f3e8fd}
.tile.t-blue{border-left-color:#1a73e8}.tile.t-purple{border-left-color:#8a63d2}
td.predicted{font-style:italic;
 background-image:repeating-linear-gradient(45deg,transparent 0 6px,rgba(0,0,0,.06) 6px 8px)}
figure.plot{margin:1em 0}figure.plot svg{max-width:100%;height:auto}p.hint{color:#555;font-size:12px}
"""

# The heatmap: saturated colours (the table's are pale), a predicted cell hatched over its outcome's colour.
HEATMAP_STYLE = """
section.heatmap{margin:1em 0;overflow-x:auto}
div.hmgrid{display:grid;gap:2px;width:max-content;align-items:center}
div.hmgrid b{font-weight:400;font-size:12px;white-space:nowrap;padding-right:.6em}
div.hmgrid .hm{display:block;width:14px;height:14px}
.hm.pass{background-color:#43a047}.hm.fail{background-color:#d32f2f}
.hm.skipped{background-color:#b0b0b0}.hm.notrun{background-color:#e8e8e8}
.hm.predicted{background-image:repeating-linear-gradient(45deg,#ffffffb0 0 2px,#0000 2px 5px)}
summary:has(:target){outline:3px solid #1565c0}
p.key{font-size:12px;color:#555;margin:.2em 0}
p.key i{display:inline-block;width:12px;height:12px;margin:0 .3em 0 .9em;vertical-align:-1px}
"""


def _tile(lane: LaneResult, matrix: Matrix) -> str:
    message, color = lane_message(lane)
    summary = summarise(lane, matrix.lock)
    parts = [f"<div class='tile t-{color}'><b>{escape(lane.lane)}</b>"]
    if lane.status == LaneStatus.SKIPPED and not lane.predicted:
        parts.append(f"<span class=st>skipped</span><span>{escape(lane.reason)}</span>")
    else:
        parts.append(f"<span>{escape(summary.rows['platform'])} · {escape(summary.rows['how'])}</span>"
                     f"<span class=st>{escape(message)}</span><span>{escape(summary.status_text)}</span>")
    if not lane.required:
        parts.append("<span>not required</span>")
    parts.append("</div>")
    return "".join(parts)


def _has_evidence(result: CheckResult | None, counts: bool = False) -> bool:
    """A cell with something to read: not a pass (a predicted pass has its evidence: the wheel, the
    binary, why), with a message or evidence (its link, its panel); never the pytest row's counts."""
    return (result is not None and not counts and (result.outcome is not Outcome.PASS or result.predicted)
            and bool(result.message or result.evidence))


def _evidence_id(row: int, column: int) -> str:
    """The id of a cell's evidence: by position, never from the check id (data)."""
    return f"ev-{row}-{column}"


def _cell(result: CheckResult | None, changed: bool, text: str, counts: bool = False,
          evidence_id: str = "") -> str:
    classes = outcome_class(result) + (" changed" if changed else "")
    if result is None or not _has_evidence(result, counts):
        # a passing cell has nothing to read (the pytest row's counts are its text): no evidence link
        return f"<td class='{classes}'>{escape(text)}</td>"
    detail = result.message
    ev = result.evidence
    tail = ev.get("stderr_tail") or ev.get("stdout_tail") or ev.get("output_tail")
    if result.predicted:
        keys = ("wheel", "binary", "slice", "instruction", "reason")
        tail = "\n".join(f"{k}: {ev[k]}" for k in keys if ev.get(k))
    return (f"<td class='{classes}' title='{escape(detail[:300])}'>{escape(cell_text(result))}"
            # the heatmap's link lands on the summary (visible while the evidence is folded)
            f"<details><summary>{f'<span id={evidence_id}></span>' if evidence_id else ''}"
            f"{escape(detail[:80] or 'evidence')}</summary>"
            f"<pre>{html_block(detail)}\n{html_block(tail or '')}</pre></details></td>")


def _checks_table(table: Table, diff: MatrixDiff | None) -> list[str]:
    changed = diff.changed_cells() if diff is not None else set()
    h = ["<div class=board><b>show:</b>",
         "<input type=radio name=show id=show-all checked><label for=show-all>every check</label>",
         "<input type=radio name=show id=show-fail><label for=show-fail>only failing rows</label>"]
    if diff is not None:
        h.append("<input type=radio name=show id=show-changed><label for=show-changed>only rows changed "
                 "since the baseline</label>")
    h.append("<table class=matrix><thead><tr><th>check</th>")
    h.extend(f"<th>{escape(ln.lane)}</th>" for ln in table.lanes)
    h.append("</tr></thead><tbody>")
    for i in failing_first(table):
        row, cells = table.check_rows[i], table.check_cells[i]
        row_changed = [(ln.lane, row[0]) in changed for ln in table.lanes]
        classes = "check" + (" fails" if row_failed(cells) else "") + (" changed" if any(row_changed) else "")
        h.append(f"<tr class='{classes}'><th>{escape(row[0])}</th>")
        h.extend(_cell(result, was, text, i in table.always_shown, _evidence_id(i, j))
                 for j, (result, was, text) in enumerate(zip(cells, row_changed, row[1:], strict=True)))
        h.append("</tr>")
    h.append(f"<tr><th>{escape(table.summary_row[0])}</th>")
    h.extend(f"<th>{escape(c)}</th>" for c in table.summary_row[1:])
    h.append("</tr></tbody></table></div>")
    return h


def _heat_cell(table: Table, row: int, column: int) -> str:
    """One heatmap cell: its outcome's colour, hatched when predicted; the message as its title; a link to
    its evidence in the table when it has any."""
    lane, result = table.lanes[column], table.check_cells[row][column]
    predicted = result is not None and (result.predicted or lane.predicted)  # a cell not run predicts nothing
    # a predicted cell's class and text say so already; a cell of a predicted lane may not
    marked = predicted and not (result is not None and result.predicted)
    classes = f"hm {outcome_class(result)}" + (" predicted" if marked else "")
    title = f"{table.check_rows[row][0]} · {lane.lane}: {cell_text(result)}"
    title += " (predicted)" if marked else ""
    if result is not None and result.message:
        title += f" — {result.message[:300]}"
    if _has_evidence(result, row in table.always_shown):
        return f"<a class='{classes}' href='#{_evidence_id(row, column)}' title='{escape(title)}'></a>"
    return f"<span class='{classes}' title='{escape(title)}'></span>"


def _heatmap(table: Table) -> list[str]:
    """Checks × lanes at a glance: a row per lane, a small cell per check (in check order).

    A CSS grid, not a table: the page's one table is the checks table."""
    checks = len(table.check_rows)
    columns = f"grid-template-columns:auto repeat({checks},14px)"
    h = [f"<section class=heatmap><div class=hmgrid style='{columns}'>"]
    for column, lane in enumerate(table.lanes):
        h.append(f"<b>{escape(lane.lane)}</b>")
        h.extend(_heat_cell(table, row, column) for row in range(checks))
    h.append("</div><p class=key>"
             "<i class='hm pass'></i>pass<i class='hm fail'></i>fails<i class='hm skipped'></i>skipped"
             "<i class='hm notrun'></i>not run<i class='hm pass predicted'></i>predicted, not run"
             " — hover a cell for its message, click it for its evidence</p></section>")
    return h


def _facts(table: Table) -> list[str]:
    labels = ", ".join(row[0] for row in table.header_rows)
    h = [f"<details class=facts><summary>Lane facts ({escape(labels)})</summary><table><thead><tr><th></th>"]
    h.extend(f"<th>{escape(ln.lane)}</th>" for ln in table.lanes)
    h.append("</tr></thead><tbody>")
    for row in table.header_rows:
        h.append(f"<tr><th>{escape(row[0])}</th>")
        h.extend(f"<td class=fact>{escape(c)}</td>" for c in row[1:])
        h.append("</tr>")
    h.append("</tbody></table></details>")
    return h


def _diff(diff: MatrixDiff) -> list[str]:
    klass = "diff same" if not (diff.new_failures or diff.lanes) else "diff"
    h = [f"<section class='{klass}' id=diff><h2>{escape(diff.summary())}</h2>"]
    if diff.lines():
        h.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in diff.lines()) + "</ul>")
    h.append("</section>")
    return h


def render(
    matrix: Matrix, *, title: str = "archmatrix compatibility matrix", plots: bool | None = None,
    diff: MatrixDiff | None = None,
) -> str:
    """The page; ``plots`` as in :func:`.plots.scaling_section` (None: a plot when matplotlib is there);
    ``diff``, the comparison with a baseline, under the header."""
    table = build_table(matrix)
    overall = overall_badge(matrix)
    status = overall.message + (" pass" if table.lanes else "")
    h = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>",
         "<meta name=viewport content='width=device-width,initial-scale=1'>",
         f"<style>{STYLE}{HEATMAP_STYLE}</style></head><body><header class=top><h1>{escape(title)}</h1>",
         f"<span class='status s-{overall.color}'>{escape(status)}</span></header>",
         f"<p class=meta>generated {escape(matrix.generated)}</p>"]
    if matrix.lanes:
        h.append("<section class=tiles>" + "".join(_tile(ln, matrix) for ln in matrix.lanes) + "</section>")
    if table.lanes and table.check_rows:
        h.extend(_heatmap(table))
    if diff is not None:
        h.extend(_diff(diff))
    if table.lanes:
        h.extend(_checks_table(table, diff))
    else:
        h.append("<p>no lane ran</p>")
    lines = skipped_lines(table) + finding_lines(matrix)
    if lines:
        h.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>")
    if table.lanes:
        h.extend(_facts(table))
    h.append(scaling_section(pool_curves(table.lanes), plots=plots))  # '' without pool probes
    h.append("</body></html>\n")
    return "".join(h)
