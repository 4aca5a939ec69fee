"""The README block (issue 7): rewrite between the markers, --check, errors, and the real README."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from archmatrix import readme
from archmatrix.cli import main
from archmatrix.matrix import Matrix
from archmatrix.render import badges as badges_mod
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "example"

BEFORE = "# my package\n\nintro text\n\n"
AFTER = "\n## Install\n\npip install it\n"


def matrix(*outcomes: Outcome) -> Matrix:
    checks = [CheckResult(f"check.{i}", o) for i, o in enumerate(outcomes)]
    return Matrix(lanes=[LaneResult(lane="host", runner="venv", checks=checks)],
                  generated="2026-01-02T03:04:05+00:00")


def doc(inner: str = "stale text\n") -> str:
    return f"{BEFORE}{readme.START}\n{inner}{readme.END}\n{AFTER}"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    directory = tmp_path / "results"
    directory.mkdir()
    matrix(Outcome.PASS, Outcome.PASS).save(directory / "matrix.json")
    return directory


# ------------------------------------------------------------------ rewriting


def test_block_replaces_only_the_text_between_the_markers() -> None:
    new = readme.replace_block(doc(), readme.render_block(matrix(Outcome.PASS), badge_url_base="b"))
    assert new.startswith(f"{BEFORE}{readme.START}\n{readme.NOTE}\n")
    assert new.endswith(f"\n{readme.END}\n{AFTER}")
    assert "stale text" not in new
    assert "![host: pass](b/host.svg)" in new
    assert "![archmatrix: 1/1 lanes](b/archmatrix.svg)" in new
    assert "| check.0 " in new  # the markdown matrix


def test_rewrite_is_idempotent() -> None:
    block = readme.render_block(matrix(Outcome.PASS, Outcome.SEGFAULT), badge_url_base="badges")
    once = readme.replace_block(doc(), block)
    assert readme.replace_block(once, block) == once


def test_block_has_no_timestamp() -> None:
    one, other = matrix(Outcome.PASS), matrix(Outcome.PASS)
    other.generated = "2030-12-31T23:59:59+00:00"
    assert readme.render_block(one, badge_url_base="b") == readme.render_block(other, badge_url_base="b")


def test_markers_in_code_fences_and_inline_are_not_markers() -> None:
    shown = f"```markdown\n{readme.START}\n{readme.END}\n```\nsay `{readme.START}` inline\n"
    new = readme.replace_block(shown + doc(), "BLOCK")
    assert new.startswith(shown)  # the example is untouched
    assert f"{readme.START}\nBLOCK\n{readme.END}" in new


def test_crlf_files_stay_crlf() -> None:
    text = doc().replace("\n", "\r\n")
    new = readme.replace_block(text, "line one\nline two")
    assert "line one\r\nline two\r\n" in new and "\n" not in new.replace("\r\n", "")


@pytest.mark.parametrize("text, message", [
    ("# no markers at all\n", "no <!-- archmatrix:start --> and <!-- archmatrix:end --> marker"),
    (f"{readme.START}\nonly a start\n", "no <!-- archmatrix:end --> marker"),
    (f"{readme.END}\n{readme.START}\n", "comes before"),
    (doc() + doc(), "2 start and 2 end markers"),
])
def test_marker_problems_are_block_errors(text: str, message: str) -> None:
    with pytest.raises(readme.BlockError, match=message.replace("(", r"\(")):
        readme.replace_block(text, "x", where="README.md")


# ------------------------------------------------------------------ the command


def test_command_writes_then_check_passes(tmp_path: Path, results: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text(doc())
    target.chmod(0o664)
    assert main(["readme", str(target), "--results", str(results)]) == 0
    text = target.read_text()
    assert "stale text" not in text and text.startswith(BEFORE) and text.endswith(AFTER)
    assert oct(target.stat().st_mode & 0o777) == oct(0o664)  # the file keeps its mode
    # badge links default to RESULTS/badges relative to the README
    assert "(results/badges/host.svg)" in text
    assert main(["readme", str(target), "--results", str(results), "--check"]) == 0
    # and writing again changes nothing
    assert main(["readme", str(target), "--results", str(results)]) == 0
    assert target.read_text() == text


def test_check_detects_a_stale_block(
    tmp_path: Path, results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "README.md"
    target.write_text(doc())
    assert main(["readme", str(target), "--results", str(results)]) == 0
    # the results change (a lane starts failing): the block is now stale
    matrix(Outcome.PASS, Outcome.ILLEGAL_INSTRUCTION).save(results / "matrix.json")
    before = target.read_text()
    capsys.readouterr()
    assert main(["readme", str(target), "--results", str(results), "--check"]) == 1
    err = capsys.readouterr().err
    assert "stale" in err and f"archmatrix readme {target} --results {results}" in err
    assert "+![host: illegal-instruction]" in err  # the diff-ish hint shows what would change
    assert target.read_text() == before  # --check never writes


def test_check_detects_a_hand_edit_inside_the_block(tmp_path: Path, results: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text(doc())
    assert main(["readme", str(target), "--results", str(results)]) == 0
    target.write_text(target.read_text().replace("✔ pass", "✔ fine", 1))
    assert main(["readme", str(target), "--results", str(results), "--check"]) == 1


def test_missing_markers_exit_2_with_a_clear_error(
    tmp_path: Path, results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "README.md"
    target.write_text("# nothing to replace\n")
    assert main(["readme", str(target), "--results", str(results), "--check"]) == 2
    assert main(["readme", str(target), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert f"{target}: no {readme.START} and {readme.END} marker" in err
    assert target.read_text() == "# nothing to replace\n"


def test_missing_file_is_a_usage_error(tmp_path: Path, results: Path) -> None:
    assert main(["readme", str(tmp_path / "nope.md"), "--results", str(results)]) == 2


def test_badge_url_base_is_used_verbatim(tmp_path: Path, results: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text(doc())
    base = "https://raw.githubusercontent.com/OWNER/REPO/archmatrix-badges"
    assert main(["readme", str(target), "--results", str(results), "--badge-url-base", base + "/"]) == 0
    assert f"![host: pass]({base}/host.svg)" in target.read_text()


# ------------------------------------------------------------------ archmatrix's own README


def test_the_real_readme_block_is_current() -> None:
    """CI fails here when README.md, docs/example/matrix.json or a renderer changed without the others."""
    cwd = os.getcwd()
    os.chdir(ROOT)  # the command as documented, with the README's relative paths
    try:
        code = main(["readme", "README.md", "--results", "docs/example", "--rows", "notable", "--check"])
    finally:
        os.chdir(cwd)
    assert code == 0, "regenerate: archmatrix readme README.md --results docs/example --rows notable"


def test_the_committed_example_badges_are_current() -> None:
    example = readme_example_matrix()
    for badge in badges_mod.badges(example):
        svg = EXAMPLE / "badges" / f"{badge.name}.svg"
        endpoint = EXAMPLE / "badges" / f"{badge.name}.json"
        assert svg.read_text() == badge.svg(), f"regenerate: archmatrix badges --results docs/example ({svg})"
        assert json.loads(endpoint.read_text()) == badge.endpoint()
    names = {p.stem for p in (EXAMPLE / "badges").iterdir()}
    assert names == {badge.name for badge in badges_mod.badges(example)}  # nothing left over


def readme_example_matrix() -> Matrix:
    from archmatrix.matrix import read_matrix

    return read_matrix(EXAMPLE / "matrix.json")


def test_the_example_is_a_real_multi_lane_run() -> None:
    example = readme_example_matrix()
    ran = [ln.lane for ln in example.lanes if ln.checks]
    assert {"host", "linux-amd64-docker", "linux-arm64-docker"} <= set(ran)
    assert all(ln.facts.get("python") for ln in example.lanes if ln.checks)  # facts recorded by a lane
