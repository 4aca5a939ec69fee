"""The HTML dashboard's heatmap (issue 21): checks × lanes at the top, one small cell per (lane, check)
coloured by outcome, predicted cells hatched, the message on hover, a click to the cell's evidence.

The page in a real browser (first screen, the hatch as Chromium computes it):
``tests/integration/test_html_browser.py``.
"""

from __future__ import annotations

import re

from archmatrix.matrix import Matrix, build
from archmatrix.render import html
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus


def matrix() -> Matrix:
    host = LaneResult("host", "venv", checks=[
        CheckResult("import.numpy", Outcome.PASS),
        CheckResult("linalg.solve", Outcome.PASS),
        CheckResult("blas.gemm", Outcome.PASS),
    ])
    noavx = LaneResult("linux-x86_64-noavx", "qemu", checks=[
        CheckResult("import.numpy", Outcome.PASS),
        CheckResult("linalg.solve", Outcome.ILLEGAL_INSTRUCTION,
                    message="Fatal Python error: Illegal instruction",
                    evidence={"stderr_tail": "SIGILL in dgemm_kernel"}),
        CheckResult("blas.gemm", Outcome.SKIPPED, message="needs linalg.solve"),
    ])
    rosetta = LaneResult("macos-x86_64-rosetta", "macos", checks=[
        CheckResult("import.numpy", Outcome.PASS, predicted=True),
        CheckResult("linalg.solve", Outcome.ILLEGAL_INSTRUCTION, predicted=True,
                    message="AVX2 in _multiarray_umath: Rosetta 2 has no AVX2"),
    ])
    arm = LaneResult("macos-arm64", "macos", predicted=True,
                     checks=[CheckResult("import.numpy", Outcome.PASS)])
    skipped = LaneResult("linux-arm64-docker", "docker", status=LaneStatus.SKIPPED, reason="no docker")
    return build([host, noavx, rosetta, arm, skipped])


def heatmap(page: str) -> str:
    start = page.index("<section class=heatmap")
    return page[start:page.index("</section>", start)]


def cells(page: str) -> dict[tuple[str, str], str]:
    """(lane, check) → the cell's markup, read back from the titles."""
    found = {}
    for cell in re.findall(r"<(?:a|span) class='hm [^']*'[^>]*></(?:a|span)>", heatmap(page)):
        title = re.search(r"title='([^']*)'", cell)
        assert title is not None, cell
        check, rest = title.group(1).split(" · ", 1)
        found[(rest.split(":", 1)[0], check)] = cell
    return found


def test_the_heatmap_is_at_the_top_with_a_cell_per_lane_and_check() -> None:
    page = html.render(matrix(), plots=False)
    assert page.index("<section class=heatmap") < page.index("<table class=matrix>")
    grid = cells(page)
    lanes = ["host", "linux-x86_64-noavx", "macos-x86_64-rosetta", "macos-arm64"]  # skipped lanes: no row
    assert {lane for lane, _ in grid} == set(lanes)
    assert len(grid) == len(lanes) * 3  # every check, a "not run" cell where the lane has none
    assert "class='hm pass'" in grid[("host", "import.numpy")]
    assert "class='hm fail'" in grid[("linux-x86_64-noavx", "linalg.solve")]
    assert "class='hm skipped'" in grid[("linux-x86_64-noavx", "blas.gemm")]
    assert "class='hm notrun'" in grid[("macos-arm64", "linalg.solve")]


def test_predicted_cells_are_hatched_and_say_so() -> None:
    page = html.render(matrix(), plots=False)
    grid = cells(page)
    # a predicted cell (CheckResult.predicted), and every cell of a predicted lane (LaneResult.predicted)
    assert "class='hm fail predicted'" in grid[("macos-x86_64-rosetta", "linalg.solve")]
    assert "class='hm pass predicted'" in grid[("macos-x86_64-rosetta", "import.numpy")]
    assert "class='hm pass predicted'" in grid[("macos-arm64", "import.numpy")]
    assert "predicted" not in grid[("host", "import.numpy")]
    assert "(predicted)" in grid[("macos-x86_64-rosetta", "linalg.solve")]
    assert re.search(r"\.hm\.predicted\{[^}]*background-image:repeating-linear-gradient", page)


def test_hover_shows_the_message_and_a_click_opens_the_cells_evidence() -> None:
    page = html.render(matrix(), plots=False)
    grid = cells(page)
    sigill = grid[("linux-x86_64-noavx", "linalg.solve")]
    glyph = Outcome.ILLEGAL_INSTRUCTION.glyph
    assert (f"title='linalg.solve · linux-x86_64-noavx: {glyph} illegal-instruction — "
            "Fatal Python error: Illegal instruction'") in sigill
    [target] = re.findall(r"href='#([^']+)'", sigill)
    # the anchor is the evidence of that very cell in the checks table (its summary: one click opens it)
    evidence = re.search(rf"<td class='fail'[^>]*>[^<]*<details><summary><span id={target}></span>[^<]*"
                         r"</summary><pre>([^<]*)</pre>", page)
    assert evidence is not None and "SIGILL in dgemm_kernel" in evidence.group(1)
    # a passing cell has nothing to read: a title, no link (as in the table)
    assert "href=" not in grid[("host", "import.numpy")]
    ids = re.findall(r"<span id=([\w-]+)></span>", page)
    assert len(ids) == len(set(ids)) == 3  # the cells with something to read, each its own


def test_heatmap_text_is_escaped() -> None:
    lane = LaneResult("host", "venv", checks=[
        CheckResult("x'><script>alert(1)</script>", Outcome.ERROR,
                    message="it's <b>bad</b> & \"worse\"\n::error::x"),
    ])
    part = heatmap(html.render(build([lane]), plots=False))
    assert "<script>" not in part and "<b>bad" not in part and "\n" not in part
    assert "x&#x27;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in part
    assert "it&#x27;s &lt;b&gt;bad&lt;/b&gt; &amp; &quot;worse&quot;\\x0a::error::x" in part
