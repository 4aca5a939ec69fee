"""The short markdown view (issue 13): ``rows="notable"`` keeps only the check rows some lane did not pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from archmatrix import readme
from archmatrix.cli import main
from archmatrix.matrix import Matrix
from archmatrix.render import markdown
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult


def lane(name: str, **outcomes: Outcome) -> LaneResult:
    checks = [CheckResult(cid.replace("_", "."), o) for cid, o in outcomes.items()]
    return LaneResult(lane=name, runner="venv", checks=checks, facts={"python": {"version": "3.11.7"}})


def two_lanes() -> Matrix:
    # linalg.svd fails in one lane; import.numpy passes in both; blas.loaded ran in "host" only
    host = lane("host", import_numpy=Outcome.PASS, linalg_svd=Outcome.PASS, blas_loaded=Outcome.PASS)
    arm = lane("arm", import_numpy=Outcome.PASS, linalg_svd=Outcome.ILLEGAL_INSTRUCTION)
    return Matrix(lanes=[host, arm], generated="2026-01-02T03:04:05+00:00")


def check_row_ids(text: str) -> list[str]:
    ids = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| **"):
            first = line.split("|")[1].strip()
            if first and not first.startswith("`") and first != "summary":
                ids.append(first)
    return ids


def test_all_rows_is_the_default_and_shows_every_check() -> None:
    text = markdown.render(two_lanes())
    assert text == markdown.render(two_lanes(), rows="all")
    assert check_row_ids(text) == ["import.numpy", "linalg.svd", "blas.loaded"]
    assert "not shown" not in text


def test_notable_rows_drop_checks_every_lane_passed() -> None:
    text = markdown.render(two_lanes(), rows="notable")
    # a failure in one lane, and a check one lane did not run, are notable; a pass everywhere is not
    assert check_row_ids(text) == ["linalg.svd", "blas.loaded"]
    assert "| import.numpy" not in text
    assert "_1 more check not shown: ✔ pass in every lane._" in text
    # the lane header rows and the summary stay
    assert "| **python**" in text and "| summary" in text


def test_notable_rows_of_an_all_passing_matrix_keep_headers_and_count_the_rest() -> None:
    m = Matrix(lanes=[lane("host", a_one=Outcome.PASS, a_two=Outcome.PASS)], generated="x")
    text = markdown.render(m, rows="notable")
    assert check_row_ids(text) == []
    assert "_2 more checks not shown: ✔ pass in every lane._" in text
    assert "| summary" in text


def test_skipped_checks_are_notable() -> None:
    m = Matrix(lanes=[lane("host", a_one=Outcome.PASS, a_two=Outcome.SKIPPED)], generated="x")
    assert check_row_ids(markdown.render(m, rows="notable")) == ["a.two"]


def test_unknown_rows_value_is_refused() -> None:
    with pytest.raises(ValueError, match="rows must be one of all, notable"):
        markdown.render(two_lanes(), rows="some")  # type: ignore[arg-type]


def test_readme_command_with_rows_notable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    results.mkdir()
    two_lanes().save(results / "matrix.json")
    target = tmp_path / "README.md"
    target.write_text(f"# x\n\n{readme.START}\n{readme.END}\n")
    assert main(["readme", str(target), "--results", str(results), "--rows", "notable"]) == 0
    text = target.read_text()
    assert "| linalg.svd" in text and "| import.numpy" not in text
    assert main(["readme", str(target), "--results", str(results), "--rows", "notable", "--check"]) == 0
    # the full table is a different block: --check without --rows notable says it is stale, and how to fix it
    capsys.readouterr()
    assert main(["readme", str(target), "--results", str(results), "--check"]) == 1
    assert main(["readme", str(target), "--results", str(results), "--rows", "notable", "--check"]) == 0
    target.write_text(text.replace("| linalg.svd", "| linalg.SVD"))
    assert main(["readme", str(target), "--results", str(results), "--rows", "notable", "--check"]) == 1
    assert "--rows notable" in capsys.readouterr().err
