"""The matrix and every renderer, from hand-built lane results (issue 3: golden outputs, JUnit read back).

Golden files live in ``tests/unit/golden/``. After a deliberate change to a
renderer, regenerate them and read the diff before committing::

    ARCHMATRIX_UPDATE_GOLDEN=1 python -m pytest tests/unit/test_render.py
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from pathlib import Path

import pytest

import archmatrix
from archmatrix.matrix import (
    EXIT_FAILED,
    EXIT_INFRA,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Drift,
    Matrix,
    build,
    compare_metrics,
    load_dir,
    order_lanes,
)
from archmatrix.render import github, html, junit, markdown, terminal
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus, LaneWarning, save
from archmatrix.summary import blas_text, cpu_text, how_it_ran, lock_text, summarise

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("ARCHMATRIX_UPDATE_GOLDEN") == "1"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
LOCK = {"numpy": "2.4.6", "scipy": "1.17.1", "scikit-learn": "1.9.1"}

SIGILL_TAIL = (
    "Fatal Python error: Illegal instruction\n\n"
    "Current thread 0x00007f1c (most recent call first):\n"
    '  File "/suite/checks_blas.py", line 61 in check_gemm\n'
    "qemu: uncaught target signal 4 (Illegal instruction) - core dumped\n"
)


def _libraries(kernel: str) -> list[dict[str, object]]:
    return [
        {
            "user_api": "blas",
            "internal_api": "openblas",
            "prefix": "libscipy_openblas",
            "version": "0.3.30",
            "architecture": kernel,
            "threading_layer": "pthreads",
            "num_threads": 2,
            "filepath": "/venv/numpy.libs/libscipy_openblas64_-ff651d7f.so",
        },
        {
            "user_api": "openmp",
            "internal_api": "openmp",
            "prefix": "libgomp",
            "version": None,
            "num_threads": 2,
            "filepath": "/venv/scikit_learn.libs/libgomp-a34b3233.so.1.0.0",
        },
    ]


def host_lane() -> LaneResult:
    return LaneResult(
        lane="host",
        runner="venv",
        started="2026-01-02T03:00:00+00:00",
        duration_s=41.5,
        facts={
            "os": "Linux",
            "machine": "x86_64",
            "python": {"version": "3.11.7"},
            "translated": None,
            "emulation": {"emulator": None, "cpu_model": None},
            "cpu": {"present": ["SSE42", "AVX", "F16C", "FMA3", "AVX2"], "absent": ["AVX512F", "AVX512_SKX"]},
            "libraries": _libraries("Haswell"),
            "packages": {"numpy": "2.4.6", "scipy": "1.17.1", "scikit-learn": "1.9.1", "joblib": "1.6.0"},
            "runner": {"python": "/usr/bin/python3.11"},
        },
        checks=[
            CheckResult("import.numpy", Outcome.PASS, 0.31, metrics={"version": "2.4.6"}),
            CheckResult(
                "blas.gemm",
                Outcome.PASS,
                0.52,
                metrics={"c.float64": [19.0, 22.0, 43.0, 50.0], "gflops": 12.5},
            ),
            CheckResult(
                "linalg.solve",
                Outcome.PASS,
                0.2,
                metrics={"x.float64": [1.0, 2.0], "x.float64.max_abs_err": 2e-16},
            ),
            CheckResult(
                "sklearn.linear_regression", Outcome.PASS, 0.9, metrics={"coef": [1.0, 1.0], "intercept": 0.0}
            ),
        ],
    )


def noavx_lane() -> LaneResult:
    return LaneResult(
        lane="linux-x86_64-noavx",
        runner="qemu",
        started="2026-01-02T03:00:00+00:00",
        duration_s=380.0,
        facts={
            "os": "Linux",
            "machine": "x86_64",
            "python": {"version": "3.11.7"},
            "translated": None,
            "emulation": {"emulator": "qemu-x86_64", "cpu_model": "Westmere"},
            "cpu": {"present": ["SSE42"], "absent": ["AVX", "F16C", "FMA3", "AVX2", "AVX512F", "AVX512_SKX"]},
            "libraries": _libraries("Nehalem"),
            "packages": {"numpy": "2.4.6", "scipy": "1.16.0", "scikit-learn": "1.9.1", "joblib": "1.6.0"},
            "runner": {"python": "/usr/bin/python3.11"},
        },
        checks=[
            CheckResult("import.numpy", Outcome.PASS, 2.5, metrics={"version": "2.4.6"}),
            CheckResult(
                "blas.gemm",
                Outcome.ILLEGAL_INSTRUCTION,
                1.75,
                message="Fatal Python error: Illegal instruction",
                evidence={"returncode": -4, "signal": "SIGILL", "stderr_tail": SIGILL_TAIL},
            ),
            CheckResult(
                "linalg.solve",
                Outcome.PASS,
                3.0,
                metrics={"x.float64": [1.0, 2.00001], "x.float64.max_abs_err": 1e-5},
            ),
            CheckResult(
                "sklearn.linear_regression", Outcome.PASS, 9.0, metrics={"coef": [1.0, 1.0], "intercept": 0.0}
            ),
        ],
        warnings=[
            LaneWarning("emulated", "this process is emulated by qemu-x86_64 with CPU model Westmere"),
            LaneWarning(
                "lock-mismatch",
                "installed versions differ from the lock: scipy 1.16.0 (lock: 1.17.1)",
                "rebuild the lane (delete .archmatrix/ to force it)",
            ),
        ],
    )


def skipped_lane() -> LaneResult:
    return LaneResult(
        lane="macos-arm64",
        runner="macos",
        status=LaneStatus.SKIPPED,
        reason="the macos runner needs a Mac; this host is Linux",
        hint="run this lane on an Apple Silicon Mac (GitHub: runs-on: macos-14)",
        required=False,
    )


def sample_matrix() -> Matrix:
    return build([host_lane(), noavx_lane(), skipped_lane()], lock=LOCK, drift_rtol=1e-6, now=NOW)


# ---------------------------------------------------------------- golden files


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    if not path.exists():
        pytest.fail(f"{path} is missing: run ARCHMATRIX_UPDATE_GOLDEN=1 python -m pytest {__file__}")
    assert text == path.read_bytes().decode("utf-8"), f"{name} differs from {path}"


@pytest.mark.parametrize(
    ("renderer", "name"),
    [
        (terminal.render, "matrix.txt"),
        (markdown.render, "matrix.md"),
        (html.render, "matrix.html"),
        (functools.partial(junit.render, version="0.0.0-test"), "junit.xml"),
    ],
    ids=["terminal", "markdown", "html", "junit"],
)
def test_golden(renderer: object, name: str) -> None:
    check_golden(name, renderer(sample_matrix()))  # type: ignore[operator]


@pytest.mark.parametrize("render", [terminal.render, markdown.render, html.render])
def test_every_renderer_shows_what_matters(render: object) -> None:
    text = render(sample_matrix())  # type: ignore[operator]
    for needle in (
        "host",
        "linux-x86_64-noavx",
        "✘ illegal-instruction",  # glyph and word, never a glyph alone
        "✔ pass",
        "QEMU Westmere",
        "native",
        "openblas 0.3.30 (Haswell)",
        "openblas 0.3.30 (Nehalem)",
        "AVX yes",
        "AVX no",
        "DIFFERS: scipy 1.16.0",
        "3/4 pass, 1 failed",
        "4/4 pass",
        "macos-arm64: skipped: the macos runner needs a Mac; this host is Linux",
        "runs-on: macos-14",
        "drift: linalg.solve x.float64",
    ):
        assert needle in text, needle
    assert "gflops" not in text


def test_terminal_table_has_a_column_per_lane_that_ran() -> None:
    text = terminal.render(sample_matrix())
    header = next(line for line in text.splitlines() if "host" in line and "noavx" in line)
    assert "macos-arm64" not in header  # skipped lanes are listed below, not columns


def _three_failing_rows() -> Matrix:
    host, noavx = host_lane(), noavx_lane()
    noavx.checks[3] = CheckResult("sklearn.linear_regression", Outcome.SEGFAULT, message="boom")
    host.checks.append(CheckResult("fft.roundtrip", Outcome.SKIPPED, message="n/a"))
    return build([host, noavx], now=NOW)


def _check_lines(text: str) -> list[str]:
    ids = ("import.numpy", "blas.gemm", "linalg.solve", "sklearn.linear_regression", "fft.roundtrip")
    return [line for line in text.splitlines() if line.startswith("│ ") and line.split()[1] in ids]


def test_terminal_table_has_no_rules_between_rows_and_failing_rows_first() -> None:
    text = terminal.render(_three_failing_rows())
    lines = text.splitlines()
    checks = _check_lines(text)
    # failing rows first, then the rows some lane skipped or did not run; all-pass rows left out
    assert [line.split()[1] for line in checks] == ["blas.gemm", "sklearn.linear_regression", "fft.roundtrip"]
    first, last = lines.index(checks[0]), lines.index(checks[-1])
    assert last - first == len(checks) - 1  # consecutive lines: no rule between rows
    assert "2 more checks not shown: ✔ pass in every lane (--all-rows shows them)" in lines
    # one rule between the facts and the checks, one before the summary, none inside the facts
    assert sum(line.startswith("├") for line in lines) == 3  # and one under the header


def test_terminal_all_rows_shows_every_check_failing_first() -> None:
    text = terminal.render(_three_failing_rows(), all_rows=True)
    assert [line.split()[1] for line in _check_lines(text)] == [
        "blas.gemm", "sklearn.linear_regression", "import.numpy", "linalg.solve", "fft.roundtrip"]
    assert "not shown" not in text


def test_empty_matrix() -> None:
    empty = build([], now=NOW)
    assert "no lane ran" in terminal.render(empty)
    assert "_no lane ran_" in markdown.render(empty)
    assert "<p>no lane ran</p>" in html.render(empty)
    assert empty.exit_code() == EXIT_OK


# ---------------------------------------------------------------- JUnit read back


def test_junit_reads_back() -> None:
    junitparser = pytest.importorskip("junitparser")
    xml = junitparser.JUnitXml.fromstring(junit.render(sample_matrix()))
    suites = {suite.name: suite for suite in xml}
    assert list(suites) == ["host", "linux-x86_64-noavx", "macos-arm64"]

    host = list(suites["host"])
    assert [case.name for case in host] == [
        "import.numpy",
        "blas.gemm",
        "linalg.solve",
        "sklearn.linear_regression",
    ]
    assert all(case.is_passed for case in host)
    assert {case.classname for case in host} == {"host"}
    assert suites["host"].tests == 4 and suites["host"].failures == 0

    noavx = {case.name: case for case in suites["linux-x86_64-noavx"]}
    assert suites["linux-x86_64-noavx"].failures == 1
    gemm = noavx["blas.gemm"]
    assert not gemm.is_passed and not gemm.is_skipped
    [failure] = gemm.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.type == "illegal-instruction"
    assert failure.message == "illegal-instruction: Fatal Python error: Illegal instruction"
    assert "qemu: uncaught target signal 4 (Illegal instruction) - core dumped" in failure.text
    assert "signal: SIGILL" in failure.text
    assert noavx["linalg.solve"].time == pytest.approx(3.0)

    [lane_case] = list(suites["macos-arm64"])
    assert lane_case.is_skipped
    [skipped] = lane_case.result
    assert "the macos runner needs a Mac" in skipped.message
    assert suites["macos-arm64"].skipped == 1


JUNIT_PROPERTIES = ("platform", "how", "emulator", "cpu_model", "cpu_features", "blas", "python",
                    "archmatrix_version", "runner", "status", "required")


def test_junit_has_properties_timestamp_time_and_hostname_per_lane() -> None:
    junitparser = pytest.importorskip("junitparser")
    xml = junitparser.JUnitXml.fromstring(junit.render(sample_matrix()))
    suites = {suite.name: suite for suite in xml}
    for suite in suites.values():
        props = {p.name: p.value for p in suite.properties()}
        assert set(JUNIT_PROPERTIES) <= set(props), suite.name
        assert all(props[name] for name in JUNIT_PROPERTIES), props
        assert suite.hostname == suite.name
    noavx = {p.name: p.value for p in suites["linux-x86_64-noavx"].properties()}
    assert noavx["platform"] == "Linux x86_64"
    assert noavx["emulator"] == "qemu-x86_64" and noavx["cpu_model"] == "Westmere"
    assert noavx["python"] == "3.11.7" and noavx["archmatrix_version"] == archmatrix.__version__
    assert noavx["blas"] == "openblas 0.3.30 (Nehalem)"
    host = {p.name: p.value for p in suites["host"].properties()}
    assert (host["emulator"], host["cpu_model"], host["how"]) == ("none", "host", "native")
    assert suites["linux-x86_64-noavx"].timestamp == "2026-01-02T03:00:00"
    assert suites["linux-x86_64-noavx"].time == pytest.approx(380.0)
    skipped = {p.name: p.value for p in suites["macos-arm64"].properties()}
    assert skipped["python"] == "?" and skipped["status"] == "skipped"
    assert suites["macos-arm64"].timestamp is None  # never started: no timestamp rather than a made-up one


def test_junit_timestamp_is_utc_without_a_zone() -> None:
    assert junit.timestamp("2026-01-02T05:00:00+02:00") == "2026-01-02T03:00:00"
    assert junit.timestamp("") is None and junit.timestamp("yesterday") is None


def test_junit_skipped_lane_separates_reason_and_hint() -> None:
    junitparser = pytest.importorskip("junitparser")
    xml = junitparser.JUnitXml.fromstring(junit.render(build([skipped_lane()], now=NOW)))
    [case] = list(next(iter(xml)))
    [skipped] = case.result
    assert "hint: run this lane on an Apple Silicon Mac" in skipped.message


def test_junit_infra_error_and_skipped_check() -> None:
    junitparser = pytest.importorskip("junitparser")
    broken = LaneResult(
        "linux-arm64-docker",
        "docker",
        status=LaneStatus.INFRA_ERROR,
        reason="image build failed",
        hint="docker buildx ls",
    )
    partly = host_lane()
    partly.checks[3] = CheckResult("sklearn.linear_regression", Outcome.SKIPPED, message="no sklearn")
    xml = junitparser.JUnitXml.fromstring(junit.render(build([partly, broken], now=NOW)))
    suites = {suite.name: suite for suite in xml}
    [lane_case] = list(suites["linux-arm64-docker"])
    [error] = lane_case.result
    assert isinstance(error, junitparser.Error)
    assert error.message == "image build failed"
    assert suites["linux-arm64-docker"].errors == 1
    sk = next(c for c in suites["host"] if c.name == "sklearn.linear_regression")
    assert sk.is_skipped
    assert suites["host"].skipped == 1


# ---------------------------------------------------------------- escaping


def hostile_matrix() -> Matrix:
    lane = host_lane()
    lane.lane = "<script>alert('lane')</script>"
    lane.checks[1] = CheckResult(
        "blas.gemm",
        Outcome.ERROR,
        message="<script>alert('msg')</script> | a|b",
        evidence={"stderr_tail": "<img src=x onerror=alert(1)>"},
    )
    lane.warnings = [LaneWarning("w", "warning with a | pipe and <b>markup</b>")]
    skipped = skipped_lane()
    skipped.reason = "reason | with pipe <script>"
    return build([lane, skipped], now=NOW)


def test_html_escapes_markup() -> None:
    text = html.render(hostile_matrix())
    assert "<script>" not in text
    assert "<img" not in text
    assert "<b>markup" not in text
    assert "&lt;script&gt;alert(&#x27;lane&#x27;)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_html_dashboard_status_tiles_failing_first_filter_and_facts_panel() -> None:
    page = html.render(_three_failing_rows())
    # the overall status and one tile per lane, with platform, how it runs, status and counts
    assert "<span class='status s-red'>1/2 lanes pass</span>" in page
    assert page.count("<div class='tile ") == 2
    assert ("<div class='tile t-red'><b>linux-x86_64-noavx</b><span>Linux x86_64 · QEMU Westmere</span>"
            "<span class=st>illegal-instruction</span><span>2/4 pass, 2 failed</span></div>") in page
    # failing rows first, each marked for the CSS-only filter (no script, nothing fetched)
    rows = [part.split("<th>")[1].split("</th>")[0] for part in page.split("<tr class='check")[1:]]
    assert rows == ["blas.gemm", "sklearn.linear_regression", "import.numpy", "linalg.solve", "fft.roundtrip"]
    assert "<tr class='check fails'><th>blas.gemm</th>" in page
    assert "<tr class='check'><th>import.numpy</th>" in page
    assert "id=show-fail" in page and "#show-fail:checked~table tr.check:not(.fails){display:none}" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    # passing cells have no evidence link; failing ones do
    assert "<td class='pass'>✔ pass</td>" in page
    assert page.count("<details><summary>") == 3  # gemm, the segfault, the skipped fft
    # the facts in one collapsible panel, after the checks
    facts = page.index("<details class=facts><summary>Lane facts (platform, how, python")
    assert facts > page.index("<table class=matrix>")
    assert page.index("openblas 0.3.30 (Nehalem)") > facts


def test_html_marks_what_changed_since_the_baseline() -> None:
    baseline = build([host_lane(), noavx_lane()], now=NOW)
    current = _three_failing_rows()
    from archmatrix.diff import compare

    page = html.render(current, diff=compare(current, baseline))
    assert page.index("<section class='diff' id=diff><h2>since the baseline: 1 new failure") < page.index(
        "<table class=matrix>")
    assert "<tr class='check fails changed'><th>sklearn.linear_regression</th>" in page
    assert "<td class='fail changed' title='boom'>" in page
    assert "id=show-changed" in page
    assert "id=show-changed" not in html.render(current)


def test_markdown_escapes_pipes_and_keeps_rows_intact() -> None:
    text = markdown.render(hostile_matrix())
    assert "warning with a \\| pipe" in text
    assert "reason \\| with pipe" in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    # every table row has the same number of unescaped cell separators
    counts = {line.replace("\\|", "").count("|") for line in rows}
    assert len(counts) == 1, counts


def test_markdown_escapes_pipes_in_lane_ids() -> None:
    lane = host_lane()
    lane.lane = "a|b"
    text = markdown.render(build([lane], now=NOW))
    rows = [line for line in text.splitlines() if line.startswith("|")]
    counts = {line.replace("\\|", "").count("|") for line in rows}
    assert len(counts) == 1, counts


def test_junit_escapes_markup() -> None:
    text = junit.render(hostile_matrix())
    assert "<script>" not in text
    junitparser = pytest.importorskip("junitparser")
    suites = list(junitparser.JUnitXml.fromstring(text))
    assert suites[0].name == "<script>alert('lane')</script>"


# ---------------------------------------------------------------- GitHub Actions


def test_error_annotations_name_lane_root_cause_and_checks() -> None:
    lines = github.error_annotations(sample_matrix())
    assert lines == [
        "::error title=archmatrix linux-x86_64-noavx%3A illegal-instruction::"
        "linux-x86_64-noavx: 1 failing check, root cause illegal-instruction in blas.gemm: "
        "Fatal Python error: Illegal instruction — illegal-instruction: blas.gemm"
    ]
    assert github.notice(sample_matrix()) == (
        "::notice title=archmatrix totals::archmatrix: 1/2 lanes that ran pass, "
        "1 of 8 cells failed in 1 lanes, 1 skipped")


def _many_failures() -> Matrix:
    """28 failing cells in three lanes, the first lane's 20 listed before the arm64 and no-AVX ones."""
    lanes = []
    for name, n, outcome in (("linux-amd64-docker", 20, Outcome.IMPORT_ERROR),
                             ("linux-arm64-docker", 5, Outcome.WRONG_ARCH),
                             ("linux-x86_64-noavx", 3, Outcome.ILLEGAL_INSTRUCTION)):
        checks = [CheckResult("wheel.numpy", Outcome.NO_WHEEL, message="no wheel for this platform")]
        checks += [CheckResult(f"check.{i}", outcome, message=f"{outcome.value} {i}") for i in range(n - 1)]
        checks.append(CheckResult("check.ok", Outcome.PASS))
        lanes.append(LaneResult(name, "docker", checks=checks))
    lanes.append(host_lane())
    lanes.append(LaneResult("broken", "docker", status=LaneStatus.INFRA_ERROR, reason="image build failed"))
    return build(lanes, now=NOW)


def test_annotations_are_one_per_failing_lane_plus_one_notice() -> None:
    matrix = _many_failures()
    assert sum(len(ln.failed_checks) for ln in matrix.lanes) == 28
    lines = github.workflow_commands(matrix)
    errors = [ln for ln in lines if ln.startswith("::error ")]
    assert len(errors) <= len(matrix.lanes) and len(errors) == 4  # the host passed
    assert [ln for ln in lines if ln.startswith("::notice ")] == [lines[-1]]
    assert len(lines) == len(errors) + 1 <= 10  # all of them inside GitHub's 10 per step
    arm, noavx = errors[1], errors[2]
    assert arm.startswith("::error title=archmatrix linux-arm64-docker%3A no-wheel::")
    assert "5 failing checks, root cause no-wheel in wheel.numpy" in arm
    assert "no-wheel: wheel.numpy; wrong-arch: check.0, check.1, check.2, check.3" in arm
    assert "illegal-instruction: check.0, check.1" in noavx
    amd = errors[0]
    assert "import-error: check.0, check.1" in amd and "(+11 more)" in amd  # 19, of which 8 named
    assert errors[3] == ("::error title=archmatrix broken%3A infra-error::"
                         "broken: infra-error: image build failed")
    assert "1/4 lanes that ran pass, 28 of 35 cells failed in 3 lanes, 1 infra-error" in lines[-1]


def test_error_annotations_escape_workflow_command_syntax() -> None:
    lane = host_lane()
    lane.checks[0] = CheckResult(
        "import.numpy", Outcome.WRONG_ARCH, message="line one\nline 100%: two, three"
    )
    [line] = github.error_annotations(build([lane], now=NOW))
    assert "\n" not in line
    assert "root cause wrong-arch in import.numpy: line one%0Aline 100%25: two, three — " in line


def test_publish_appends_the_summary_in_actions(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    matrix = sample_matrix()
    lines = github.publish(matrix, env=env)
    assert lines == [*github.error_annotations(matrix), github.notice(matrix)]
    github.publish(matrix, env=env)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n### archmatrix\n")
    assert text.count("### archmatrix") == 2
    assert markdown.render(matrix) in text


def test_publish_outside_actions_does_nothing(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    assert github.publish(sample_matrix(), env={"GITHUB_STEP_SUMMARY": str(summary)}) == []
    assert not summary.exists()
    # in Actions without a summary file: annotations only
    assert github.publish(sample_matrix(), env={"GITHUB_ACTIONS": "true"})


def test_publish_without_annotations_still_writes_the_summary(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    assert github.error_annotations(sample_matrix())  # there is something to leave out
    assert github.publish(sample_matrix(), env=env, annotate=False) == []
    assert "### archmatrix" in summary.read_text(encoding="utf-8")


# ---------------------------------------------------------------- matrix: drift, exit codes, loading


def test_drift() -> None:
    matrix = sample_matrix()
    by_key = {(d.check, d.metric): d for d in matrix.drift}
    solve = by_key[("linalg.solve", "x.float64")]
    assert solve.rel_diff == pytest.approx(5e-6, rel=1e-3)
    assert solve.tolerance == 1e-6
    assert solve.lanes == ("host", "linux-x86_64-noavx")
    assert [(d.check, d.metric) for d in matrix.drifting] == [("linalg.solve", "x.float64")]
    assert by_key[("sklearn.linear_regression", "coef")].rel_diff == 0.0
    # errors near zero, speeds and versions are not compared; a failed cell has nothing to compare
    assert not any(m.endswith("max_abs_err") or m in ("gflops", "version") for _, m in by_key)
    assert ("blas.gemm", "c.float64") not in by_key


def _lane(name: str, metrics: dict[str, object], outcome: Outcome = Outcome.PASS) -> LaneResult:
    return LaneResult(name, "venv", checks=[CheckResult("c", outcome, metrics=metrics)])


def test_compare_metrics_cases() -> None:
    lanes = [
        _lane("a", {"v": 1.0, "w.float32": [1.0], "n": [1.0, 2.0], "nan": [math_nan()], "flag": True}),
        _lane("b", {"v": 1.0 + 1e-9, "w.float32": [1.0001], "n": [1.0], "nan": [math_nan()], "flag": False}),
        _lane("c", {"v": 1.1}, Outcome.NUMERIC_MISMATCH),
    ]
    drift = {d.metric: d for d in compare_metrics(lanes, rtol=1e-6, float32_rtol=2e-4)}
    assert drift["v"].rel_diff == pytest.approx(1e-9, rel=1e-3)  # lane c failed: not compared
    assert drift["w.float32"].tolerance == 2e-4  # float32 metrics get float32's tolerance
    assert drift["w.float32"].rel_diff < drift["w.float32"].tolerance
    assert drift["n"].rel_diff == float("inf")  # different lengths
    assert drift["nan"].rel_diff == 0.0  # NaN in both lanes agrees
    assert "flag" not in drift  # booleans are not numbers to compare


def test_compare_metrics_names_the_two_lanes_furthest_apart() -> None:
    lanes = [_lane("a", {"v": 1.0}), _lane("b", {"v": 1.0 + 1e-12}), _lane("c", {"v": 2.0})]
    [d] = compare_metrics(lanes, rtol=1e-6, float32_rtol=2e-4)
    assert d.lanes == ("a", "c")
    assert d.rel_diff == pytest.approx(0.5)
    only_one = compare_metrics([_lane("a", {"v": 1.0})], rtol=1e-6, float32_rtol=2e-4)
    assert only_one == []


def test_nan_against_a_number_drifts() -> None:
    [d] = compare_metrics(
        [_lane("a", {"v": math_nan()}), _lane("b", {"v": 1.0})], rtol=1e-6, float32_rtol=2e-4
    )
    assert d.rel_diff == float("inf")
    assert Matrix(lanes=[], drift=[d]).drifting == [d]


def math_nan() -> float:
    return float("nan")


def test_drifting_is_strictly_beyond_tolerance() -> None:
    at = Drift("c", "m", 1e-6, 1e-6, ("a", "b"))
    beyond = Drift("c", "m2", 2e-6, 1e-6, ("a", "b"))
    assert Matrix(lanes=[], drift=[at, beyond]).drifting == [beyond]


def _failing(required: bool) -> LaneResult:
    lane = noavx_lane()
    lane.required = required
    return lane


@pytest.mark.parametrize(
    ("lanes", "expected"),
    [
        ([host_lane()], EXIT_OK),
        ([host_lane(), skipped_lane()], EXIT_OK),
        ([host_lane(), _failing(required=True)], EXIT_FAILED),
        ([host_lane(), _failing(required=False)], EXIT_OK),
        ([host_lane(), LaneResult("d", "docker", status=LaneStatus.INFRA_ERROR, reason="x")], EXIT_INFRA),
        (
            [
                host_lane(),
                LaneResult("d", "docker", status=LaneStatus.INFRA_ERROR, reason="x", required=False),
            ],
            EXIT_OK,
        ),
        ([_failing(required=True), LaneResult("d", "docker", status=LaneStatus.INFRA_ERROR)], EXIT_FAILED),
        (
            [host_lane(), LaneResult("d", "docker", status=LaneStatus.INTERRUPTED, required=False)],
            EXIT_INTERRUPTED,
        ),
    ],
    ids=[
        "pass",
        "pass+skipped",
        "required-fails",
        "optional-fails",
        "required-infra",
        "optional-infra",
        "failure-beats-infra",
        "interrupted",
    ],
)
def test_exit_code(lanes: list[LaneResult], expected: int) -> None:
    assert build(lanes, now=NOW).exit_code() == expected


def test_a_skipped_check_does_not_fail_the_lane() -> None:
    lane = host_lane()
    lane.checks[0] = CheckResult("import.numpy", Outcome.SKIPPED, message="n/a")
    assert build([lane], now=NOW).exit_code() == EXIT_OK


def test_build_records_lock_problems_and_time() -> None:
    matrix = build([host_lane()], lock=LOCK, problems=["x.json: file is empty"], now=NOW)
    data = matrix.to_dict()
    assert data["generated"] == "2026-01-02T03:04:05+00:00"
    assert data["lock"] == LOCK
    assert data["problems"] == ["x.json: file is empty"]
    assert json.loads(json.dumps(data)) == data


def test_check_ids_and_cells() -> None:
    lane = host_lane()
    lane.checks.insert(2, CheckResult("wheel.numpy", Outcome.PASS))
    matrix = build([lane, noavx_lane()], now=NOW)
    ids = matrix.check_ids()
    assert ids[0] == "wheel.numpy"  # wheel rows first
    assert ids[1:] == ["import.numpy", "blas.gemm", "linalg.solve", "sklearn.linear_regression"]
    assert matrix.cell("linux-x86_64-noavx", "wheel.numpy") is None
    cell = matrix.cell("linux-x86_64-noavx", "blas.gemm")
    assert cell is not None and cell.outcome is Outcome.ILLEGAL_INSTRUCTION
    assert "– not run" in terminal.render(matrix)


def test_load_dir_reports_a_corrupt_file_and_keeps_the_others(tmp_path: Path) -> None:
    save(host_lane(), tmp_path / "host" / "host.json")  # CI artifacts come one folder per lane
    save(noavx_lane(), tmp_path / "noavx.json")
    good = (tmp_path / "noavx.json").read_text(encoding="utf-8")
    (tmp_path / "broken.json").write_text(good[: len(good) // 3], encoding="utf-8")
    (tmp_path / "package.json").write_text('{"name": "x", "version": "1.0.0"}', encoding="utf-8")
    # the matrix's own outputs and badge endpoints sit next to lane results: not problems
    sample_matrix().save(tmp_path / "matrix.json")
    (tmp_path / "badge-host.json").write_text('{"schemaVersion": 1, "label": "host", "message": "pass"}')
    (tmp_path / ".host.json.abc.tmp").write_text("{")

    lanes, problems = load_dir(tmp_path)
    assert sorted(ln.lane for ln in lanes) == ["host", "linux-x86_64-noavx"]
    assert len(problems) == 2
    assert any(str(tmp_path / "broken.json") in p for p in problems)
    assert any(str(tmp_path / "package.json") in p and "not an archmatrix lane result" in p for p in problems)


def test_load_dir_keeps_the_newest_run_of_a_lane(tmp_path: Path) -> None:
    old, new = host_lane(), host_lane()
    old.started, new.started = "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"
    new.checks = new.checks[:1]
    save(old, tmp_path / "a" / "host.json")
    save(new, tmp_path / "b" / "host.json")
    lanes, problems = load_dir(tmp_path)
    assert problems == []
    assert [len(ln.checks) for ln in lanes] == [1]


def test_load_dir_of_a_missing_directory(tmp_path: Path) -> None:
    lanes, problems = load_dir(tmp_path / "nope")
    assert lanes == []
    assert problems == [f"{tmp_path / 'nope'}: no such directory"]


def test_order_lanes() -> None:
    lanes = [LaneResult(n, "venv") for n in ("zeta", "host", "alpha", "linux-x86_64-noavx")]
    ordered = order_lanes(lanes, ["host", "linux-x86_64-noavx", "macos-arm64"])
    assert [ln.lane for ln in ordered] == ["host", "linux-x86_64-noavx", "alpha", "zeta"]


# ---------------------------------------------------------------- summary


def test_summarise_a_lane_that_ran() -> None:
    s = summarise(noavx_lane(), LOCK)
    assert s.rows == {
        "platform": "Linux x86_64",
        "how": "QEMU Westmere",
        "python": "3.11.7",
        "numpy": "2.4.6",
        "scipy": "1.16.0",
        "scikit-learn": "1.9.1",
        "BLAS": "openblas 0.3.30 (Nehalem)",
        "CPU": "AVX no, AVX2 no, FMA no, AVX-512 no",
        "lock": "DIFFERS: scipy 1.16.0",
    }
    assert (s.total, s.passed) == (4, 3)
    assert s.status_text == "3/4 pass, 1 failed"
    assert not s.ok
    host = summarise(host_lane(), LOCK)
    assert host.rows["CPU"] == "AVX yes, AVX2 yes, FMA yes, AVX-512 no"
    assert host.rows["lock"] == "matches"
    assert host.status_text == "4/4 pass"
    assert host.ok


def test_summarise_lanes_that_did_not_run() -> None:
    assert (
        summarise(skipped_lane(), LOCK).status_text
        == "skipped: the macos runner needs a Mac; this host is Linux"
    )
    broken = LaneResult("d", "docker", status=LaneStatus.INFRA_ERROR, reason="image build failed")
    s = summarise(broken, LOCK)
    assert s.status_text == "infra-error: image build failed"
    assert s.rows["platform"] == "?" and s.rows["BLAS"] == "?" and s.rows["lock"] == "?"
    cut = host_lane()
    cut.status = LaneStatus.INTERRUPTED
    cut.checks = cut.checks[:2]
    assert summarise(cut, LOCK).status_text == "interrupted after 2 checks"


def test_how_it_ran() -> None:
    rosetta = LaneResult("macos-x86_64-rosetta", "macos", facts={"translated": True, "emulation": {}})
    assert how_it_ran(rosetta) == "Rosetta 2"
    docker_qemu = LaneResult(
        "linux-arm64-docker",
        "docker",
        facts={
            "emulation": {"emulator": "qemu-aarch64", "cpu_model": None},
            "runner": {"platform": "linux/arm64"},
        },
    )
    assert how_it_ran(docker_qemu) == "Docker linux/arm64 · QEMU"
    docker_native = LaneResult("linux-amd64-docker", "docker", facts={"runner": {"platform": "linux/amd64"}})
    assert how_it_ran(docker_native) == "Docker linux/amd64 · native"


def test_cpu_blas_and_lock_text() -> None:
    arm = {"machine": "aarch64", "cpu": {"present": ["NEON", "ASIMD", "ASIMDHP"], "absent": ["SVE"]}}
    assert cpu_text(arm) == "NEON yes, SVE no"
    assert cpu_text({"machine": "arm64", "cpu": {"present": ["ASIMD", "SVE"]}}) == "NEON yes, SVE yes"
    assert cpu_text({"machine": "x86_64"}) == "?"
    assert blas_text({"libraries": []}) == "none loaded"
    assert blas_text({}) == "?"
    accelerate = {"user_api": "blas", "internal_api": "accelerate", "version": None}
    assert blas_text({"libraries": [accelerate, accelerate]}) == "accelerate"
    missing = LaneResult("x", "venv", facts={"packages": {"numpy": "2.4.6"}})
    assert lock_text(missing, LOCK) == "DIFFERS: scipy missing, scikit-learn missing"
    assert lock_text(missing, {}) == "?"
