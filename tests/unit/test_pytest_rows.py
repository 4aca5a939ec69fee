"""A project's pytest suite in the matrices (issue 17): one ``pytest`` row, rows only for tests not passing.

The matrix is built here: 2,000 tests in three lanes. The terminal, markdown
and HTML matrices show one ``pytest`` row whose cell per lane counts that
lane's tests by outcome, glyphed by the worst, and a row for each test that
is not ``pass`` in some lane; a failing test is shown however many rows come
before it. JUnit and ``matrix.json`` keep every test of every lane, and the
annotation of a lane names the test, the lane and the cause.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from archmatrix.matrix import Matrix, read_matrix
from archmatrix.render import github, html, junit, markdown, terminal
from archmatrix.render.rows import SUMMARY_ID, summary_cell
from archmatrix.render.table import MAX_ROWS, build_table
from archmatrix.results import load_matrix
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, save

N = 2_000
FACTS = {"os": "Linux", "machine": "x86_64", "python": {"version": "3.11.7"}}


def tid(i: int) -> str:
    return f"pytest::tests/test_big.py::test_{i:04d}"


def lane(name: str, special: dict[int, Outcome], *, n: int = N) -> LaneResult:
    checks = [CheckResult("wheel.demo", Outcome.PASS), CheckResult("lane.self", Outcome.PASS)]
    for i in range(n):
        outcome = special.get(i, Outcome.PASS)
        message = {Outcome.SKIPPED: "not here", Outcome.PASS: ""}.get(outcome,
                                                                     f"test {i} died: {outcome.value}")
        checks.append(CheckResult(tid(i), outcome, message=message))
    return LaneResult(lane=name, runner="venv", facts=FACTS, checks=checks)


ILL = {1000: Outcome.ILLEGAL_INSTRUCTION, 1999: Outcome.ILLEGAL_INSTRUCTION}
SKIPS = {3: Outcome.SKIPPED, 4: Outcome.SKIPPED, 5: Outcome.SKIPPED}


def big_matrix() -> Matrix:
    host = lane("host", {**SKIPS})
    noavx = lane("noavx", {**SKIPS, **ILL, 7: Outcome.NUMERIC_MISMATCH})
    arm = lane("arm", {**SKIPS, 1500: Outcome.TIMEOUT})
    return Matrix(lanes=[host, noavx, arm], generated="2026-01-02T03:04:05+00:00")


SUMMARIES = {  # lane -> its pytest cell, exactly
    "host": "– 1997 pass · 3 skipped",
    "noavx": "✘ 1994 pass · 2 illegal-instruction · 1 numeric-mismatch · 3 skipped",
    "arm": "⧗ 1996 pass · 1 timeout · 3 skipped",
}
NOT_PASSING = [tid(i) for i in (3, 4, 5, 7, 1000, 1500, 1999)]


def pytest_rows(ids: list[str]) -> list[str]:
    return [i for i in ids if i.startswith("pytest::")]


def terminal_rows(text: str) -> dict[str, list[str]]:
    """The table's rows by label; a cell wrapped over several lines joined back."""
    rows: dict[str, list[str]] = {}
    last: list[str] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[0]:
            last = rows[cells[0]] = cells[1:]
            continue
        if not last:  # the header line (lane ids) has no label either
            continue
        for i, more in enumerate(cells[1:]):  # a wrapped cell's next line: broken at a space or a hyphen
            if more:
                last[i] += more if last[i].endswith("-") else f" {more}"
    return rows


def markdown_rows(text: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for line in text.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip().strip("|").split("|")]]}


def html_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for tr in re.findall(r"<tr class='check[^']*'>(.*?)</tr>", text, re.S):
        head = re.search(r"<th>(.*?)</th>", tr)
        assert head is not None
        cells = [re.sub(r"<details>.*?</details>", "", c, flags=re.S)
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        rows[head.group(1)] = [c.replace("&#x27;", "'") for c in cells]
    return rows


def test_the_pytest_row_counts_every_lane_exactly() -> None:
    m = big_matrix()
    table = build_table(m)
    row = next(r for r in table.check_rows if r[0] == SUMMARY_ID)
    assert row[1:] == [SUMMARIES[ln.lane] for ln in m.lanes]
    # coloured by the worst outcome: a skip where nothing failed, the crash before the mismatch
    cells = table.check_cells[table.check_rows.index(row)]
    assert [c.outcome if c else None for c in cells] == [Outcome.SKIPPED, Outcome.ILLEGAL_INSTRUCTION,
                                                         Outcome.TIMEOUT]
    for rows in (terminal_rows(terminal.render(m, all_rows=True)), terminal_rows(terminal.render(m)),
                 markdown_rows(markdown.render(m)), markdown_rows(markdown.render(m, rows="notable")),
                 html_rows(html.render(m, plots=False))):
        assert rows[SUMMARY_ID] == [SUMMARIES[ln.lane] for ln in m.lanes]


def test_only_tests_not_passing_in_some_lane_get_a_row() -> None:
    m = big_matrix()
    assert pytest_rows([r[0] for r in build_table(m).check_rows]) == NOT_PASSING
    for rows in (terminal_rows(terminal.render(m, all_rows=True)), markdown_rows(markdown.render(m)),
                 html_rows(html.render(m, plots=False))):
        assert sorted(pytest_rows(list(rows))) == NOT_PASSING
        assert rows[tid(1999)] == ["✔ pass", "✘ illegal-instruction", "✔ pass"]
        assert rows["lane.self"] == ["✔ pass"] * 3  # the other checks keep their rows
    assert "more check rows not shown" not in terminal.render(m, all_rows=True)


def test_a_pytest_row_that_passes_everywhere_is_still_shown() -> None:
    m = Matrix(lanes=[lane("host", {}, n=50), lane("arm", {}, n=50)])
    for rows in (terminal_rows(terminal.render(m)).keys(), markdown_rows(markdown.render(m, rows="notable")),
                 html_rows(html.render(m, plots=False))):
        assert pytest_rows(list(rows)) == []
        assert SUMMARY_ID in rows
    assert terminal_rows(terminal.render(m))[SUMMARY_ID][0] == "✔ 50 pass"  # 3 columns: none, 2 lanes


def test_a_failing_test_beyond_any_cap_is_still_shown() -> None:
    # more rows that are not pass (skipped in one lane) than the cap, failures at the very end
    skips = {i: Outcome.SKIPPED for i in range(MAX_ROWS + 500)}
    fails = {i: Outcome.SEGFAULT for i in range(N - MAX_ROWS - 20, N)}  # more failing rows than the cap too
    m = Matrix(lanes=[lane("host", skips), lane("noavx", fails), lane("arm", {})])
    table = build_table(m)
    shown = set(pytest_rows([r[0] for r in table.check_rows]))
    assert {tid(i) for i in fails} <= shown
    assert table.rows_not_shown > 0  # skipped-only rows are what the cap leaves out, and it says so
    for rows in (terminal_rows(terminal.render(m)), markdown_rows(markdown.render(m)),
                 html_rows(html.render(m, plots=False))):
        assert rows[tid(N - 1)] == ["✔ pass", "✘ segfault", "✔ pass"]
        assert {tid(i) for i in fails} <= set(rows)


def test_a_lane_without_pytest_cells_does_not_make_every_test_a_row() -> None:
    broke = LaneResult(lane="broke", runner="docker", status="infra-error", reason="image build failed")
    m = Matrix(lanes=[lane("host", {9: Outcome.ERROR}, n=100), broke])
    table = build_table(m)
    assert pytest_rows([r[0] for r in table.check_rows]) == [tid(9)]
    assert next(r for r in table.check_rows if r[0] == SUMMARY_ID)[1:] == ["✘ 99 pass · 1 error", "– not run"]


def test_summary_cell_of_a_lane() -> None:
    cell = summary_cell([CheckResult("lane.self", Outcome.ERROR), CheckResult(tid(1), Outcome.PASS),
                         CheckResult(tid(2), Outcome.PASS, message="xfail")])
    assert cell is not None and (cell.outcome, cell.message) == (Outcome.PASS, "2 pass")
    assert summary_cell([CheckResult("lane.self", Outcome.PASS)]) is None


def test_junit_and_matrix_json_keep_every_test_of_every_lane(tmp_path: Path) -> None:
    m = big_matrix()
    root = ET.fromstring(junit.render(m, version="0"))
    for suite in root.iter("testsuite"):
        names = [case.get("name") for case in suite.iter("testcase")]
        assert len([n for n in names if n and n.startswith("pytest::")]) == N, suite.get("name")
        assert suite.get("tests") == str(N + 2)
    m.save(tmp_path / "matrix.json")
    back = read_matrix(tmp_path / "matrix.json")
    assert [len(ln.checks) for ln in back.lanes] == [N + 2] * 3
    assert [ln.check(tid(1999)).outcome for ln in back.lanes] == [  # type: ignore[union-attr]
        Outcome.PASS, Outcome.ILLEGAL_INSTRUCTION, Outcome.PASS]
    # and from the lanes' own result files, through the one loader
    results = tmp_path / "results"
    results.mkdir()
    for ln in m.lanes:
        save(ln, results / f"{ln.lane}.json")
    loaded = load_matrix(results)
    assert sorted(len(ln.checks) for ln in loaded.lanes) == [N + 2] * 3
    assert not [w for ln in loaded.lanes for w in ln.warnings]


def test_the_annotation_names_the_test_the_lane_and_the_cause() -> None:
    line = github.lane_annotation(big_matrix().lanes[1])
    assert line is not None
    # the first failing test in the lane's order is named as the root cause, with its message
    assert line.startswith("::error title=archmatrix noavx%3A numeric-mismatch::")
    assert f"noavx: 3 failing checks, root cause numeric-mismatch in {tid(7)}: test 7 died" in line
    assert f"illegal-instruction: {tid(1000)}, {tid(1999)}" in line
    assert f"numeric-mismatch: {tid(7)}" in line
