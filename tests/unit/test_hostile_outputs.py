"""Hostile texts in lane results reach no medium as markup or commands; outputs land where they should.

Each test writes a result file as a hostile lane (or user) could, runs the
CLI in a fresh process as a user does, and asserts the exit code, the one
stderr line and, for injections, the exact escaped output.
"""

from __future__ import annotations

import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hostile_helpers import OWN_ANNOTATION, assert_one_line_error, cli, example_lane, write_lane

from archmatrix.render import escape

GH = {"GITHUB_ACTIONS": "true"}


def _skipped(lane_id: str, reason: str = "why", hint: str = "") -> dict[str, object]:
    lane = example_lane()
    lane.update(lane=lane_id, status="skipped", reason=reason, hint=hint, checks=[], facts={})
    return lane


# --- one escaping function per medium ---------------------------------------------------------

def test_terminal_escape_shows_control_characters_and_defuses_commands() -> None:
    assert escape.terminal("a\nb\r\x1b[31m\x07\u2028\x85\ud800") == \
        "a\\x0ab\\x0d\\x1b[31m\\x07\\u2028\\x85\\ud800"
    assert escape.no_commands("ok\n  ::error::x\n:: y\na::b") == "ok\n  \\x3a:error::x\n\\x3a: y\na::b"


def test_markdown_escape_leaves_no_markup() -> None:
    assert escape.markdown("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert escape.markdown("a|b\n[x](javascript:y) `c` *d* \\") == \
        "a\\|b\\x0a\\[x\\](javascript:y) \\`c\\` \\*d\\* \\\\"
    assert escape.markdown("<!-- archmatrix:end -->") == "&lt;!-- archmatrix:end --&gt;"
    assert escape.markdown_code("linux-x86_64") == "`linux-x86_64`"
    assert escape.markdown_code("a`b") == "a\\`b"


def test_xml_escape_keeps_what_xml_can_carry() -> None:
    assert escape.xml("\x1b[31mERROR\x1b[0m\t\n\x00\ufffe") == "\\x1b[31mERROR\\x1b[0m\t\n\\x00\\ufffe"
    assert escape.xml_dropped("la\x00ne\x07") == "lane"


def test_workflow_command_escaping_is_kept() -> None:
    assert escape.workflow_data("50%\r\n::x") == "50%25%0D%0A::x"
    assert escape.workflow_property("a:b,c") == "a%3Ab%2Cc"


# --- the terminal table and GitHub annotations -------------------------------------------------

def test_a_warning_cannot_inject_workflow_commands(tmp_path: Path) -> None:
    lane = example_lane()
    lane["warnings"].append({"id": "w", "message": "x\n::error::injected\r::add-mask::secret",
                             "hint": "\n::warning::h"})
    lane["checks"][0].update(outcome="segfault", message="m\n::add-mask::s2")
    write_lane(tmp_path / "r", lane)
    summary = tmp_path / "summary.md"
    run = cli("report", "r", cwd=tmp_path, env={**GH, "GITHUB_STEP_SUMMARY": str(summary)})
    assert run.code == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert all(ln.startswith(OWN_ANNOTATION) for ln in run.command_lines), run.command_lines
    assert len(run.error_lines) == 1
    assert ("host: warning: x\\x0a::error::injected\\x0d::add-mask::secret — fix: \\x0a::warning::h"
            in run.stdout)
    # archmatrix's own annotation carries the message, escaped as a workflow command's data
    assert "m%0A::add-mask::s2" in run.error_lines[0]


def test_a_lane_id_cannot_start_a_command_line(tmp_path: Path) -> None:
    write_lane(tmp_path / "r", example_lane())
    write_lane(tmp_path / "r", _skipped("::add-mask::secret", "no\n::error::r"), "other.json")
    run = cli("report", "r", cwd=tmp_path, env=GH)
    assert run.code == 0, run.stderr
    assert run.error_lines == []
    assert "\\x3a:add-mask::secret: skipped: no\\x0a::error::r" in run.stdout.splitlines()


def test_escape_sequences_do_not_reach_the_terminal(tmp_path: Path) -> None:
    write_lane(tmp_path / "r", example_lane())
    write_lane(tmp_path / "r", _skipped("other", "\x1b]0;pwned\x07\x1b[2J", "\x9b31m"), "other.json")
    run = cli("report", "r", cwd=tmp_path)
    assert run.code == 0, run.stderr
    assert "\x1b" not in run.stdout and "\x9b" not in run.stdout
    assert "other: skipped: \\x1b]0;pwned\\x07\\x1b[2J — hint: \\x9b31m" in run.stdout


def test_an_unwritable_step_summary_is_one_line_and_annotations_still_go_out(tmp_path: Path) -> None:
    lane = example_lane()
    lane["checks"][0]["outcome"] = "segfault"
    write_lane(tmp_path / "r", lane)
    run = cli("report", "r", cwd=tmp_path, env={**GH, "GITHUB_STEP_SUMMARY": str(tmp_path)})
    assert run.code == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"archmatrix: cannot write the job summary GITHUB_STEP_SUMMARY={tmp_path} (Is a directory)" \
        in run.stderr
    assert len(run.error_lines) == 1


# --- markdown: matrix.md, the job summary, the README block -----------------------------------

IMG = "<img src=x onerror=alert(1)>"
IMG_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def test_raw_html_is_escaped_in_every_markdown_output(tmp_path: Path) -> None:
    lane = example_lane()
    lane["lane"] = IMG
    lane["facts"]["os"] = "<script>x</script>"
    lane["warnings"].append({"id": "w", "message": "[a](javascript:b) | c", "hint": ""})
    write_lane(tmp_path / "r", lane)
    summary = tmp_path / "summary.md"
    assert cli("report", "r", cwd=tmp_path, env={**GH, "GITHUB_STEP_SUMMARY": str(summary)}).code == 0
    readme = tmp_path / "README.md"
    readme.write_text("# T\n<!-- archmatrix:start -->\n<!-- archmatrix:end -->\n", encoding="utf-8")
    assert cli("readme", "README.md", "--results", "r", cwd=tmp_path).code == 0
    for path in (tmp_path / "r" / "matrix.md", summary, readme):
        text = path.read_text(encoding="utf-8")
        assert "<img" not in text and "<script" not in text, path
        assert IMG_ESCAPED in text, path
        assert f"- {IMG_ESCAPED}: warning: \\[a\\](javascript:b) \\| c" in text, path
    html = (tmp_path / "r" / "matrix.html").read_text(encoding="utf-8")
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_lane_id_cannot_break_the_readme_markers(tmp_path: Path) -> None:
    lane = example_lane()
    lane["lane"] = "evil\r<!-- archmatrix:end -->\rx\u2028<!-- archmatrix:start -->"
    write_lane(tmp_path / "r", lane)
    readme = tmp_path / "README.md"
    readme.write_text("# T\n<!-- archmatrix:start -->\n<!-- archmatrix:end -->\ntail\n", encoding="utf-8")
    for _ in range(2):  # the second run is the one a planted marker used to break
        run = cli("readme", "README.md", "--results", "r", cwd=tmp_path)
        assert run.code == 0, run.stderr
    text = readme.read_text(encoding="utf-8")
    assert text.count("<!-- archmatrix:end -->") == 1 and text.count("<!-- archmatrix:start -->") == 1
    assert "evil\\x0d&lt;!-- archmatrix:end --&gt;\\x0dx\\u2028&lt;!-- archmatrix:start --&gt;" in text
    assert cli("readme", "README.md", "--results", "r", "--check", cwd=tmp_path).code == 0


# --- XML: junit.xml and badges -----------------------------------------------------------------

def test_junit_stays_xml_with_an_ansi_coloured_stderr_tail(tmp_path: Path) -> None:
    lane = example_lane()
    lane["lane"] = "host\x00\x1b"
    lane["checks"][3].update(outcome="segfault", message="bell\x07",
                             evidence={"stderr_tail": "\x1b[31mERROR\x1b[0m\x00"})
    write_lane(tmp_path / "r", lane)
    run = cli("report", "r", cwd=tmp_path)
    assert run.code == 1 and "Traceback" not in run.stderr, run.stderr
    root = ET.parse(tmp_path / "r" / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "host\\x00\\x1b"
    failure = root.find(".//failure")
    assert failure is not None and failure.get("message") == "segfault: bell\\x07"
    assert "stderr_tail: \\x1b[31mERROR\\x1b[0m\\x00" in (failure.text or "")


def test_badges_for_hostile_and_overlong_lane_ids(tmp_path: Path) -> None:
    write_lane(tmp_path / "r", _skipped("a" * 300), "long.json")
    write_lane(tmp_path / "r", _skipped("x\x00<&'\"y"), "odd.json")
    run = cli("badges", "--results", "r", cwd=tmp_path)
    assert run.code == 0 and "Traceback" not in run.stderr, run.stderr
    for svg in (tmp_path / "r" / "badges").glob("*.svg"):
        ET.parse(svg)
        assert len(svg.name) < 120


# --- HTML: the pool-scaling section -------------------------------------------------------------

def test_a_billion_workers_in_a_pool_probe_draws_nothing(tmp_path: Path) -> None:
    lane = example_lane()
    # the example run has real probes: this lane's only pool_scaling row is the hostile one
    lane["checks"] = [c for c in lane["checks"] if c["id"] != "perf.pool_scaling"]
    lane["checks"].append({"id": "perf.pool_scaling", "outcome": "pass",
                           "metrics": {"pool_sizes": [1.0, 1e9], "throughput_mcos_s": [1.0, 1.0],
                                       "recommended_workers": 1}})
    write_lane(tmp_path / "r", lane)
    run = cli("report", "r", cwd=tmp_path, timeout=30)
    assert run.code == 0 and "Traceback" not in run.stderr, run.stderr
    html = (tmp_path / "r" / "matrix.html").read_text(encoding="utf-8")
    assert len(html) < 200_000 and "Process-pool scaling" not in html


# --- paths and modes ----------------------------------------------------------------------------

def test_report_on_a_misspelt_directory_creates_nothing(tmp_path: Path) -> None:
    run = cli("report", "resluts", cwd=tmp_path)
    assert_one_line_error(run, 2, "resluts: no such directory")
    assert not (tmp_path / "resluts").exists()


def test_report_on_a_file(tmp_path: Path) -> None:
    path = write_lane(tmp_path / "r", example_lane())
    run = cli("report", str(path), cwd=tmp_path)
    assert_one_line_error(run, 2, f"{path}: not a directory")


def test_report_out_below_a_file(tmp_path: Path) -> None:
    write_lane(tmp_path / "r", example_lane())
    (tmp_path / "afile").write_text("x")
    run = cli("report", "r", "--out", "afile/out", cwd=tmp_path)
    assert_one_line_error(run, 2, "afile/out", "cannot write the reports (Not a directory)")


def test_badges_out_is_a_file(tmp_path: Path) -> None:
    write_lane(tmp_path / "r", example_lane())
    (tmp_path / "afile").write_text("x")
    run = cli("badges", "--results", "r", "--out", "afile", cwd=tmp_path)
    assert_one_line_error(run, 2, "afile/badges", "cannot write the badges")


def test_report_files_get_the_umask_mode(tmp_path: Path) -> None:
    write_lane(tmp_path / "r", example_lane())
    run = cli("report", "r", cwd=tmp_path, preexec=lambda: os.umask(0o027))
    assert run.code == 0, run.stderr
    for name in ("matrix.json", "matrix.md", "matrix.html", "junit.xml"):
        assert stat.S_IMODE((tmp_path / "r" / name).stat().st_mode) == 0o640, name


def _readme(tmp_path: Path) -> Path:
    write_lane(tmp_path / "r", example_lane())
    real = tmp_path / "docs" / "real.md"
    real.parent.mkdir()
    real.write_text("# T\n<!-- archmatrix:start -->\n<!-- archmatrix:end -->\n", encoding="utf-8")
    return real


def test_readme_writes_through_a_symlink(tmp_path: Path) -> None:
    real = _readme(tmp_path)
    (tmp_path / "link.md").symlink_to("docs/real.md")
    run = cli("readme", "link.md", "--results", "r", cwd=tmp_path)
    assert run.code == 0, run.stderr
    assert (tmp_path / "link.md").is_symlink()
    assert "`host`" in real.read_text(encoding="utf-8")


def test_readme_keeps_hard_links(tmp_path: Path) -> None:
    real = _readme(tmp_path)
    os.link(real, tmp_path / "hard.md")
    assert cli("readme", "hard.md", "--results", "r", cwd=tmp_path).code == 0
    assert real.stat().st_nlink == 2 and "`host`" in real.read_text(encoding="utf-8")


def test_readme_refuses_a_read_only_file(tmp_path: Path) -> None:
    real = _readme(tmp_path)
    before = real.read_bytes()
    real.chmod(0o444)
    run = cli("readme", "docs/real.md", "--results", "r", cwd=tmp_path)
    assert_one_line_error(run, 2, "docs/real.md: the file is read-only")
    assert real.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any directory")
def test_readme_in_an_unwritable_directory(tmp_path: Path) -> None:
    real = _readme(tmp_path)
    real.parent.chmod(0o555)
    try:
        run = cli("readme", "docs/real.md", "--results", "r", cwd=tmp_path)
    finally:
        real.parent.chmod(0o755)
    assert_one_line_error(run, 2, "cannot write it (Permission denied)")


def test_matrix_results_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text('lock: {python: "3.11", packages: {numpy: "2.4.6"}}\n'
                                     "lanes: [{id: host, runner: venv}]\n")
    (tmp_path / "afile").write_text("x")
    run = cli("matrix", "--config", "c.yaml", "--results", "afile", "--workdir", "wd", cwd=tmp_path)
    assert_one_line_error(run, 2, "afile: not a directory")
    assert not (tmp_path / "wd").exists()
