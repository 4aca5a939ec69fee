"""The baseline diff (issue 21): every cell against the baseline's, and ``--fail-on new``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from hostile_helpers import cli
from test_render import host_lane, noavx_lane, skipped_lane

from archmatrix.diff import Change, compare, exit_code
from archmatrix.errors import ExitCode
from archmatrix.matrix import Drift, Matrix, build
from archmatrix.render import html, markdown, terminal
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus, save

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def _with(lane: LaneResult, check_id: str, outcome: Outcome, message: str = "") -> LaneResult:
    """``lane`` with one cell's outcome replaced (or the cell added)."""
    checks = [c for c in lane.checks if c.id != check_id]
    old = lane.check(check_id)
    index = lane.checks.index(old) if old is not None else len(checks)
    checks.insert(index, CheckResult(check_id, outcome, message=message))
    return dataclasses.replace(lane, checks=checks)


def _passing_noavx() -> LaneResult:
    return _with(noavx_lane(), "blas.gemm", Outcome.PASS)


def test_the_same_matrix_has_no_change() -> None:
    matrix = build([host_lane(), noavx_lane(), skipped_lane()], now=NOW)
    diff = compare(matrix, matrix)
    assert diff.empty
    assert diff.lines() == []
    assert diff.summary() == "no change since the baseline"
    assert exit_code(matrix, diff) == ExitCode.OK
    assert matrix.exit_code() == ExitCode.FAILED  # the old failure still fails a plain run


def test_new_fixed_and_changed_cells() -> None:
    baseline = build([_with(host_lane(), "linalg.solve", Outcome.NUMERIC_MISMATCH),
                      _with(noavx_lane(), "linalg.solve", Outcome.SEGFAULT)], now=NOW)
    current = build([_with(host_lane(), "import.numpy", Outcome.IMPORT_ERROR, "No module named 'numpy'"),
                     _with(noavx_lane(), "linalg.solve", Outcome.ILLEGAL_INSTRUCTION)], now=NOW)
    diff = compare(current, baseline)
    assert [(c.lane, c.check, c.before, c.after) for c in diff.new_failures] == [
        ("host", "import.numpy", Outcome.PASS, Outcome.IMPORT_ERROR)]
    assert [(c.lane, c.check) for c in diff.fixed] == [("host", "linalg.solve")]
    assert [(c.lane, c.check, c.before, c.after) for c in diff.changed] == [
        ("linux-x86_64-noavx", "linalg.solve", Outcome.SEGFAULT, Outcome.ILLEGAL_INSTRUCTION)]
    # blas.gemm failed with the same outcome in both: not a change
    assert ("linux-x86_64-noavx", "blas.gemm") not in diff.changed_cells()
    assert diff.summary() == "since the baseline: 1 new failure, 1 fixed, 1 changed root cause"
    assert diff.lines()[0] == ("new failure: host / import.numpy: pass → import-error: "
                               "No module named 'numpy'")
    assert exit_code(current, diff) == ExitCode.FAILED


def test_only_old_failures_pass_with_fail_on_new() -> None:
    baseline = build([host_lane(), noavx_lane()], now=NOW)
    current = build([host_lane(), _with(noavx_lane(), "linalg.solve", Outcome.PASS)], now=NOW)
    diff = compare(current, baseline)
    assert diff.new_failures == [] and diff.fixed == []
    assert exit_code(current, diff) == ExitCode.OK
    assert current.exit_code() == ExitCode.FAILED


def test_a_new_failure_in_an_optional_lane_is_listed_but_does_not_fail() -> None:
    baseline = build([host_lane(), _passing_noavx()], now=NOW)
    optional = dataclasses.replace(noavx_lane(), required=False)
    diff = compare(build([host_lane(), optional], now=NOW), baseline)
    assert [c.check for c in diff.new_failures] == ["blas.gemm"]
    assert exit_code(build([host_lane(), optional], now=NOW), diff) == ExitCode.OK


def test_new_and_removed_lanes_and_checks() -> None:
    extra = _with(host_lane(), "fft.roundtrip", Outcome.PASS)
    baseline = build([extra, skipped_lane()], now=NOW)
    current = build([host_lane(), noavx_lane()], now=NOW)
    diff = compare(current, baseline)
    assert diff.new_lanes == ["linux-x86_64-noavx"]
    assert diff.removed_lanes == ["macos-arm64"]
    assert diff.removed_checks == ["fft.roundtrip"]
    assert diff.new_checks == []
    # a failing cell of a lane the baseline did not have is new: nothing says it failed before
    assert [(c.lane, c.check, c.before) for c in diff.new_failures] == [
        ("linux-x86_64-noavx", "blas.gemm", None)]
    assert "new failure: linux-x86_64-noavx / blas.gemm: absent → illegal-instruction" in diff.lines()[0]
    assert "new lane: linux-x86_64-noavx" in diff.lines()
    assert "removed check: fft.roundtrip" in diff.lines()
    back = compare(baseline, current)
    assert back.new_checks == ["fft.roundtrip"]


def test_a_lane_that_broke_is_a_lane_change_and_fails_with_infra() -> None:
    baseline = build([host_lane(), noavx_lane()], now=NOW)
    broken = LaneResult("linux-x86_64-noavx", "qemu", status=LaneStatus.INFRA_ERROR, reason="no qemu")
    current = build([host_lane(), broken], now=NOW)
    diff = compare(current, baseline)
    assert [(c.lane, c.before, c.after) for c in diff.lanes] == [("linux-x86_64-noavx", "ran", "infra-error")]
    assert diff.cells == []  # its cells say nothing: the lane did not run
    assert exit_code(current, diff) == ExitCode.INFRA
    # broken in the baseline too: not new
    assert exit_code(current, compare(current, current)) == ExitCode.OK


def test_interrupted_is_still_interrupted() -> None:
    cut = dataclasses.replace(host_lane(), status=LaneStatus.INTERRUPTED)
    current = build([cut], now=NOW)
    assert exit_code(current, compare(current, current)) == ExitCode.INTERRUPTED


def test_new_drift() -> None:
    drift = Drift("linalg.solve", "x.float64", 1e-3, 1e-6, ("a", "b"))
    diff = compare(Matrix(lanes=[], drift=[drift]), Matrix(lanes=[]))
    assert diff.new_drift == ["linalg.solve x.float64"]
    assert compare(Matrix(lanes=[], drift=[drift]), Matrix(lanes=[], drift=[drift])).empty


def test_renderers_print_the_diff_first() -> None:
    baseline = build([host_lane(), _passing_noavx()], now=NOW)
    current = build([host_lane(), noavx_lane()], now=NOW)
    diff = compare(current, baseline)
    assert [c.change for c in diff.cells] == [Change.NEW_FAILURE]
    line = "new failure: linux-x86_64-noavx / blas.gemm: pass → illegal-instruction"
    text = terminal.render(current, diff=diff)
    assert text.startswith("since the baseline: 1 new failure, 0 fixed, 0 changed root cause\n")
    assert line in text.splitlines()[1]
    md = markdown.render(current, diff=diff)
    assert md.splitlines()[2] == "**since the baseline: 1 new failure, 0 fixed, 0 changed root cause**"
    assert md.index(line) < md.index("| ")
    page = html.render(current, diff=diff)
    assert page.index(line) < page.index("<table")
    assert terminal.render(current) == terminal.render(current, diff=None)  # no baseline: as before


def test_diff_text_is_escaped_for_each_medium() -> None:
    baseline = build([host_lane()], now=NOW)
    hostile = "<img src=x onerror=alert(1)> | \x1b[2J"
    current = build([_with(host_lane(), "blas.gemm", Outcome.ERROR, hostile)], now=NOW)
    diff = compare(current, baseline)
    assert "<img" not in html.render(current, diff=diff)
    assert "\x1b" not in terminal.render(current, diff=diff)
    assert "\\| " in markdown.render(current, diff=diff).split("\n")[4]


def _results(directory: Path, *lanes: LaneResult) -> Path:
    for lane in lanes:
        save(lane, directory / f"{lane.lane}.json")
    return directory


def test_cli_report_baseline_and_fail_on_new(tmp_path: Path) -> None:
    base = _results(tmp_path / "base", host_lane(), _passing_noavx())
    same = _results(tmp_path / "same", host_lane(), _passing_noavx())
    new = _results(tmp_path / "new", host_lane(), noavx_lane())
    run = cli("report", str(new), "--baseline", str(base), "--fail-on", "new", cwd=tmp_path)
    assert run.code == ExitCode.FAILED, run.stderr
    first = run.stdout.splitlines()[:2]
    assert first[0] == "since the baseline: 1 new failure, 0 fixed, 0 changed root cause"
    assert "new failure: linux-x86_64-noavx / blas.gemm: pass → illegal-instruction" in first[1]
    assert "since the baseline" in (new / "matrix.md").read_text(encoding="utf-8").split("\n")[2]
    # the same failure in the baseline: not new, exit 0 with --fail-on new, 1 without
    old = cli("report", str(new), "--baseline", str(new), "--fail-on", "new", cwd=tmp_path)
    assert old.code == ExitCode.OK, old.stderr
    assert old.stdout.startswith("no change since the baseline\n")
    assert cli("report", str(new), "--baseline", str(new), cwd=tmp_path).code == ExitCode.FAILED
    assert cli("report", str(same), "--baseline", str(base), "--fail-on", "new", cwd=tmp_path).code == 0


def test_cli_baseline_errors(tmp_path: Path) -> None:
    results = _results(tmp_path / "r", host_lane())
    missing = cli("report", str(results), "--baseline", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.code == ExitCode.CONFIG and "--baseline" in missing.stderr
    assert "Traceback" not in missing.stderr
    alone = cli("report", str(results), "--fail-on", "new", cwd=tmp_path)
    assert alone.code == ExitCode.CONFIG and "needs --baseline" in alone.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "matrix.json").write_text("{", encoding="utf-8")
    bad = cli("report", str(results), "--baseline", str(tmp_path / "bad"), cwd=tmp_path)
    assert bad.code == ExitCode.BAD_RESULTS and "matrix.json" in bad.stderr
