"""Hostile result files and matrix.json: one validating, bounded loader; a named file and exit 4.

Unit-level cases call the loader; the CLI cases run ``archmatrix`` in a
fresh process; a hypothesis property runs ``report`` over generated lane
result files; a memory test bounds ``report`` over 200 MB of hostile files.
"""

from __future__ import annotations

import json
import os
import resource
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hostile_helpers import OWN_ANNOTATION, Run, assert_one_line_error, cli, example_lane, write_lane
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archmatrix.suite.result import MAX_CHECKS, MAX_CONTAINERS, MAX_ID, ResultFileError, load

DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 130}  # 130: a lane file says "interrupted"


def _rejected(path: Path) -> str:
    with pytest.raises(ResultFileError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def _report_names_bad_file(tmp_path: Path, bad: Path, expected: str) -> Run:
    """report over a good lane and ``bad``: exit 4, the bad file named on one line, the good lane shown."""
    write_lane(tmp_path / "r", example_lane(), "good.json")
    run = cli("report", "r", cwd=tmp_path)
    line = assert_one_line_error(run, 4, f"skipped unreadable result file: r/{bad.name}", expected)
    assert line
    assert "host" in run.stdout and "platform" in run.stdout  # the good file is still reported
    return run


# --- reading the file ----------------------------------------------------------------------------

def test_non_utf8_json_next_to_a_good_file(tmp_path: Path) -> None:
    bad = tmp_path / "r" / "latin.json"
    bad.parent.mkdir()
    bad.write_bytes(b"\xe9")
    _report_names_bad_file(tmp_path, bad, "cannot read (not UTF-8 text: byte 0)")


def test_very_deep_json(tmp_path: Path) -> None:
    bad = tmp_path / "r" / "deep.json"
    bad.parent.mkdir()
    bad.write_text("[" * 100_000 + "]" * 100_000)
    _report_names_bad_file(tmp_path, bad, "JSON nested too deeply")


def test_deep_json_inside_facts_is_cut(tmp_path: Path) -> None:
    lane = example_lane()
    lane["facts"]["deep"] = json.loads("[" * 500 + "]" * 500)
    result = load(write_lane(tmp_path, lane))
    value = result.facts["deep"]
    for _ in range(31):
        value = value[0]
    assert value == ["… [cut: nested deeper than 32]"]


def test_a_huge_integer(tmp_path: Path) -> None:
    bad = tmp_path / "r" / "bigint.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(example_lane()).replace('"duration_s": ', '"duration_s": ' + "9" * 5001 + ", "
                                                       '"x": ', 1))
    _report_names_bad_file(tmp_path, bad, "not valid JSON (an integer of 5001 digits)")


def test_a_fifo_does_not_block(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    os.mkfifo(tmp_path / "r" / "pipe.json")
    _report_names_bad_file(tmp_path, tmp_path / "r" / "pipe.json", "not a regular file")


def test_a_symlink_to_dev_zero(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "zero.json").symlink_to("/dev/zero")
    _report_names_bad_file(tmp_path, tmp_path / "r" / "zero.json", "not a regular file")


def test_too_many_containers(tmp_path: Path) -> None:
    path = tmp_path / "many.json"
    path.write_text("[" + ",".join(["{}"] * (MAX_CONTAINERS + 100_000)) + "]")
    assert (f"{MAX_CONTAINERS + 100_001} JSON objects and arrays, more than a result file has "
            f"({MAX_CONTAINERS})") in _rejected(path)


# --- facts of the wrong type ---------------------------------------------------------------------

FACT_VARIANTS = [
    ("python", "3.11"), ("python", [1]), ("libraries", [1, "x"]), ("libraries", "openblas"), ("cpu", "avx"),
    ("cpu", {"present": 5}), ("cpu", {"present": [[1]]}), ("emulation", "qemu"), ("runner", ["x"]),
    ("packages", {"numpy": 2}), ("packages", {"numpy": {"v": 1}}), ("numpy_build", {"blas": "x"}),
    ("emulation_evidence", [1]), ("errors", ["x"]), ("translated", "yes"), ("machine", 5),
]


@pytest.mark.parametrize(("key", "value"), FACT_VARIANTS, ids=[f"{k}={v!r}" for k, v in FACT_VARIANTS])
def test_facts_of_the_wrong_type(tmp_path: Path, key: str, value: Any) -> None:
    lane = example_lane()
    lane["facts"][key] = value
    message = _rejected(write_lane(tmp_path, lane))
    assert f": facts.{key}" in message and "should be" in message


def test_facts_of_the_wrong_type_in_report(tmp_path: Path) -> None:
    lane = example_lane()
    lane["facts"]["python"] = "3.11"
    bad = write_lane(tmp_path / "r", lane, "bad.json")
    _report_names_bad_file(tmp_path, bad, "facts.python should be dict, found str")


# --- bounded sizes -------------------------------------------------------------------------------

def test_every_text_is_cut_with_a_note(tmp_path: Path) -> None:
    lane = example_lane()
    lane["checks"][0]["id"] = "A" * 200_000
    lane["checks"][0]["message"] = "M" * 200_000
    lane["facts"]["os"] = "B" * 200_000
    lane["lane"] = "L" * 1000
    result = load(write_lane(tmp_path, lane))
    assert result.checks[0].id == "A" * MAX_ID + "… [cut: 200000 chars]"
    assert result.checks[0].message.endswith("… [cut: 200000 chars]")
    assert result.facts["os"].endswith("… [cut: 200000 chars]") and len(result.facts["os"]) < 21_000
    assert result.lane == "L" * MAX_ID + "… [cut: 1000 chars]"


def test_a_long_check_id_and_a_long_fact_render_quickly(tmp_path: Path) -> None:
    lane = example_lane()
    lane["checks"][0]["id"] = "A" * 200_000
    lane["facts"]["os"] = "B" * 200_000
    write_lane(tmp_path / "r", lane)
    run = cli("report", "r", "--all-rows", cwd=tmp_path, timeout=60,
              preexec=lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)))
    assert run.code == 0 and "Traceback" not in run.stderr, run.stderr
    assert "A" * MAX_ID + "… [cut: 200000 chars]" in run.stdout  # the check id's row label
    assert len(run.stdout) < 2_000_000


def test_too_many_checks_are_cut_and_said(tmp_path: Path) -> None:
    lane = example_lane()
    lane["checks"] = [{"id": f"c{i}", "outcome": "pass"} for i in range(MAX_CHECKS + 5)]
    result = load(write_lane(tmp_path, lane))
    assert len(result.checks) == MAX_CHECKS
    assert [w.message for w in result.warnings if w.id == "result-cut"] == [
        f"the result file lists {MAX_CHECKS + 5} checks; only the first {MAX_CHECKS} are shown"]


def test_lone_surrogates_are_replaced(tmp_path: Path) -> None:
    lane = example_lane()
    (tmp_path / "r").mkdir()
    text = json.dumps(lane).replace('"lane": "host"', '"lane": "host\\ud800"', 1)
    (tmp_path / "r" / "host.json").write_text(text)
    assert load(tmp_path / "r" / "host.json").lane == "host\ufffd"
    run = cli("report", "r", cwd=tmp_path)
    assert run.code == 0 and "Traceback" not in run.stderr, run.stderr


# --- a malformed matrix.json: badges, readme, audit --compare ----------------------------------

def _matrix(tmp_path: Path, **changes: Any) -> Path:
    data = json.loads((Path(__file__).resolve().parents[2] / "docs/example/matrix.json").read_text())
    data.update(changes)
    (tmp_path / "bm").mkdir()
    path = tmp_path / "bm" / "matrix.json"
    path.write_text(json.dumps(data))
    (tmp_path / "README.md").write_text("<!-- archmatrix:start -->\n<!-- archmatrix:end -->\n")
    return path


MATRIX_VARIANTS = {
    "drift-missing-keys": ({"drift": [{"check": "x"}]}, "drift[0]: field 'metric' is missing"),
    "lock-list": ({"lock": [1, 2]}, "field 'lock' should be dict, found list"),
    "lanes-string": ({"lanes": "host"}, "field 'lanes' should be list, found str"),
    "problems-ints": ({"problems": [1]}, "field 'problems' should be a list of strings"),
    "bad-lane": ({"lanes": [{"schema": "archmatrix/lane-result", "schema_version": 1, "lane": 5}]},
                 "lanes[0]: field 'lane' should be str"),
}


@pytest.mark.parametrize("variant", list(MATRIX_VARIANTS))
@pytest.mark.parametrize("command", ["badges", "readme", "audit"])
def test_a_malformed_matrix_json(tmp_path: Path, variant: str, command: str) -> None:
    changes, expected = MATRIX_VARIANTS[variant]
    path = _matrix(tmp_path, **changes)
    args = {"badges": ["badges", "--results", "bm"], "readme": ["readme", "README.md", "--results", "bm"],
            "audit": ["audit", "/bin/true", "--compare", "bm/matrix.json"]}[command]
    run = cli(*args, cwd=tmp_path)
    assert_one_line_error(run, 4, str(path.relative_to(tmp_path)), expected)


def test_a_non_utf8_matrix_json(tmp_path: Path) -> None:
    path = _matrix(tmp_path)
    path.write_bytes(b'{"schema": "archmatrix/matrix", "x": "\xe9"}')
    assert_one_line_error(cli("badges", "--results", "bm", cwd=tmp_path), 4, "bm/matrix.json", "not UTF-8")


# --- property: any generated lane result file --------------------------------------------------

# any characters (lone surrogates too: json.dumps writes them as \ud800) and the pieces of known attacks
_TEXT = st.lists(st.text(st.characters(), max_size=8) | st.sampled_from(
    ["\n::error::x", "\r::add-mask::y", "<img src=x onerror=1>", "|", "\x1b[31m", "\x00", "`", "](",
     "<!-- archmatrix:end -->", "\u2028", "\x85"]), max_size=4).map("".join)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                     max_leaves=12)
_OUTCOMES = st.sampled_from(["pass", "segfault", "illegal-instruction", "skipped", "infra-error", "bogus"])
_CHECK = st.fixed_dictionaries({"id": _TEXT, "outcome": _OUTCOMES},
                               optional={"message": _TEXT | _JSON, "evidence": _JSON, "metrics": _JSON,
                                         "duration_s": _JSON, "warnings": _JSON})
_FACTS = st.dictionaries(st.sampled_from(["os", "machine", "python", "cpu", "libraries", "packages",
                                          "emulation", "runner", "translated", "numpy_build"]) | _TEXT, _JSON,
                         max_size=5)
_LANE = st.fixed_dictionaries(
    {"schema": st.just("archmatrix/lane-result"), "schema_version": st.just(1), "lane": _TEXT,
     "runner": _TEXT, "status": st.sampled_from(["ran", "skipped", "infra-error", "interrupted", "x"])},
    optional={"checks": st.lists(_CHECK, max_size=4) | _JSON, "facts": _FACTS | _JSON,
              "reason": _TEXT | _JSON,
              "hint": _TEXT, "warnings": st.lists(st.fixed_dictionaries({"id": _TEXT, "message": _TEXT}),
                                                  max_size=2) | _JSON,
              "required": _JSON, "started": _TEXT},
)


# HOSTILE_EXAMPLES=300 for a longer hunt
@settings(max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lanes=st.lists(_LANE | _JSON, min_size=1, max_size=3))
def test_report_over_any_result_files(tmp_path_factory: pytest.TempPathFactory, lanes: list[Any]) -> None:
    base = tmp_path_factory.mktemp("prop")
    for i, lane in enumerate(lanes):
        write_lane(base / "r", lane, f"lane{i}.json")
    run = cli("report", "r", cwd=base, env={"GITHUB_ACTIONS": "true",
                                            "GITHUB_STEP_SUMMARY": str(base / "summary.md")})
    assert "Traceback" not in run.stderr, run.stderr
    assert run.code in DOCUMENTED_EXIT_CODES, (run.code, run.stderr)
    assert all(ln.startswith(OWN_ANNOTATION) for ln in run.command_lines), run.command_lines
    if run.code == 2:  # no lane file was readable at all: nothing written
        return
    ET.parse(base / "r" / "junit.xml")
    for md in (base / "r" / "matrix.md", base / "summary.md"):
        for line in md.read_text(encoding="utf-8").splitlines():
            if line.startswith("|") or line.startswith("- "):
                assert "<" not in line, line


# --- memory: 20 hostile files of 10 MB ------------------------------------------------------------

def _hostile_files(directory: Path) -> None:
    """20 files of ~10 MB: long texts everywhere, many checks, facts and warnings, a huge pool curve."""
    directory.mkdir()
    big = "Z" * (2 * 1024 * 1024)
    for i in range(20):
        lane = example_lane()
        lane["lane"] = f"lane{i}-" + "L" * 100_000
        lane["facts"]["os"] = big
        lane["facts"]["machine"] = "\x1b" * 500_000
        lane["facts"]["extra"] = [f"{j}" * 5 for j in range(100_000)]
        # check ids differ between the files: every lane adds its own rows. 1,000 failing checks a
        # file: a lane keeps up to MAX_CHECKS (a pytest suite's thousands of tests), so the memory
        # bounded here is that of 20,000 hostile cells, as many as when a lane kept 1,000 of 3,000
        lane["checks"] = [{"id": f"l{i}c{j}-" + "C" * 300, "outcome": "segfault", "message": "m" * 300,
                           "evidence": {"stderr_tail": "\x1b[31m" * 30}} for j in range(1_000)]
        lane["checks"].append({"id": "perf.pool_scaling", "outcome": "pass",
                               "metrics": {"pool_sizes": [1, 1e9], "throughput_mcos_s": [1, 1]}})
        lane["warnings"] = [{"id": "w", "message": big[:100_000], "hint": ""}] * 20
        (directory / f"lane{i}.json").write_text(json.dumps(lane))


def test_report_memory_is_bounded_by_cells_not_by_files(tmp_path: Path) -> None:
    _hostile_files(tmp_path / "r")
    total = sum(p.stat().st_size for p in (tmp_path / "r").iterdir())
    assert total > 20 * 9 * 1024 * 1024
    limit = 500 * 1024 * 1024
    run = cli("report", "r", cwd=tmp_path, timeout=300,
              preexec=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr, run.stderr[-2000:]
    assert run.code == 1, run.stderr[-2000:]
    ET.parse(tmp_path / "r" / "junit.xml")
