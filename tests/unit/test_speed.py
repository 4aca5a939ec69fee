"""Each lane's speed relative to the host (issue 8): pure functions, the table rows, the HTML plot.

Lane results are hand-built with the probes' metrics as the suite records
them (numbers from this repository's 2-core x86-64 host and its QEMU lanes).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from archmatrix.matrix import build
from archmatrix.render import html, markdown, terminal
from archmatrix.render.plots import INSTALL_HINT, scaling_section, scaling_table
from archmatrix.render.table import build_table
from archmatrix.speed import (
    LaneSpeed,
    PoolCurve,
    lane_speed,
    pool_curves,
    ratio_text,
    reference,
    speed_rows,
    speed_text,
    workers_text,
)
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus

NATIVE: dict[str, Any] = {"os": "Linux", "machine": "x86_64", "emulation": {"emulator": None}}


def facts(emulator: str | None = None, translated: bool | None = None) -> dict[str, Any]:
    return {**NATIVE, "translated": translated,
            "emulation": {"emulator": emulator, "cpu_model": "Westmere" if emulator else None}}


def probes(gflops64: float, python_rate: float, throughput: list[float], *, share: float = 1.0,
           knee: int = 2, recommended: int = 2) -> list[CheckResult]:
    return [
        CheckResult("linalg.solve", Outcome.PASS, 0.2, metrics={"x.float64": [1.0, 2.0]}),
        CheckResult("perf.matmul", Outcome.PASS, 1.6, metrics={
            "n": 2160, "float64.gflops": gflops64, "float32.gflops": 2 * gflops64,
            "float64.seconds": 1.0, "float32.seconds": 0.5}),
        CheckResult("perf.pool_scaling", Outcome.PASS, 2.5, metrics={
            "cpus": 2, "pool_sizes": [1.0, 2.0, 3.0, 4.0], "throughput_mcos_s": throughput,
            "knee": knee, "recommended_workers": recommended, "cpu_share": share,
            "per_cpu_mcos_s": python_rate}),
    ]


def lane(lane_id: str, checks: list[CheckResult], **kw: Any) -> LaneResult:
    return LaneResult(lane_id, "venv", facts=facts(**kw), checks=checks)


HOST = lane("host", probes(60.0, 24.0, [24.0, 47.0, 47.5, 47.2]))
AMD64 = lane("linux-amd64-docker", probes(57.0, 23.0, [23.0, 45.0, 46.0, 45.5]))
NOAVX = lane("linux-x86_64-noavx", probes(0.35, 2.0, [2.0, 3.9, 4.0, 3.8], share=0.55),
             emulator="qemu-x86_64")
ARM64 = lane("linux-arm64-docker", probes(0.9, 2.4, [2.4, 4.7, 4.8, 4.6]), emulator="qemu-aarch64")


# ---------------------------------------------------------------- pure functions


def test_ratio_text_spans_three_decades() -> None:
    assert ratio_text(1.0) == "1.00×"
    assert ratio_text(0.95) == "0.95×"
    assert ratio_text(0.08) == "0.08×"
    assert ratio_text(0.0058) == "0.006×"
    assert ratio_text(1.3) == "1.30×"


def test_lane_speed_reads_the_probe_metrics() -> None:
    speed = lane_speed(NOAVX)
    assert (speed.gflops64, speed.gflops32, speed.python_rate) == (0.35, 0.7, 2.0)
    assert not speed.native
    assert speed.curve == PoolCurve([1, 2, 3, 4], [2.0, 3.9, 4.0, 3.8], 2, 2, 2, 0.55)


def test_a_probe_that_did_not_pass_gives_no_numbers() -> None:
    checks = probes(60.0, 24.0, [24.0, 47.0, 47.5, 47.2])
    checks[1].outcome = Outcome.SKIPPED  # demoted: the probe did not complete
    speed = lane_speed(lane("host", checks))
    assert speed.gflops64 is None and speed.python_rate == 24.0


def test_reference_is_the_host_lane() -> None:
    speeds = [lane_speed(x) for x in (NOAVX, AMD64, HOST)]
    ref = reference(speeds)
    assert ref is not None and ref.lane == "host"


def test_reference_falls_back_to_the_first_native_lane() -> None:
    speeds = [lane_speed(x) for x in (NOAVX, AMD64)]
    ref = reference(speeds)
    assert ref is not None and ref.lane == "linux-amd64-docker"
    # an emulated or translated lane is never the reference
    assert reference([lane_speed(NOAVX), lane_speed(ARM64)]) is None
    rosetta = lane("macos-x86_64-rosetta", probes(20.0, 15.0, [15.0, 30.0, 31.0, 30.0]), translated=True)
    assert reference([lane_speed(rosetta)]) is None


def test_speed_text() -> None:
    ref = lane_speed(HOST)
    assert speed_text(ref, ref) == "1.00× (host)"
    assert speed_text(lane_speed(NOAVX), ref) == "0.006× host (Python 0.08×)"
    assert speed_text(lane_speed(AMD64), ref) == "0.95× host (Python 0.96×)"
    other = lane_speed(AMD64)
    assert speed_text(other, other) == "1.00× (reference)"
    assert speed_text(lane_speed(ARM64), other) == "0.02× linux-amd64-docker (Python 0.10×)"


def test_speed_text_with_partial_or_no_numbers() -> None:
    ref = lane_speed(HOST)
    only_python = LaneSpeed("x", native=False, python_rate=2.4)
    assert speed_text(only_python, ref) == "Python 0.10× host"
    only_blas = LaneSpeed("x", native=False, gflops64=6.0)
    assert speed_text(only_blas, ref) == "0.10× host"
    assert speed_text(LaneSpeed("x", native=True), ref) == "–"
    # no native lane to compare with: absolute numbers instead
    assert speed_text(lane_speed(ARM64), None) == "0.9 GFLOP/s, Python 2.4 M/s"


def test_workers_text() -> None:
    assert workers_text(lane_speed(HOST)) == "2 of 2 CPUs"
    assert workers_text(lane_speed(NOAVX)) == "unclear: busy host (55% CPU per worker)"
    knee_differs = lane("x", probes(1.0, 1.0, [1.0, 1.9, 2.0, 2.0], knee=3, recommended=2))
    assert workers_text(lane_speed(knee_differs)) == "2 of 2 CPUs, knee 3"
    assert workers_text(LaneSpeed("x", native=True)) == "–"


def test_speed_rows_only_when_a_probe_ran() -> None:
    rows = speed_rows([HOST, NOAVX])
    assert rows == [
        ["speed", "1.00× (host)", "0.006× host (Python 0.08×)"],
        ["workers", "2 of 2 CPUs", "unclear: busy host (55% CPU per worker)"],
    ]
    quick = lane("host", [CheckResult("linalg.solve", Outcome.PASS)])
    assert speed_rows([quick]) == []


def test_malformed_metrics_are_ignored() -> None:
    checks = probes(60.0, 24.0, [24.0, 47.0])  # two throughputs for four sizes
    checks[1].metrics["float64.gflops"] = "fast"
    speed = lane_speed(lane("host", checks))
    assert speed.gflops64 is None and speed.curve is None and speed.python_rate == 24.0


def test_pool_curves_in_lane_order() -> None:
    skipped = LaneResult("macos-arm64", "macos", status=LaneStatus.SKIPPED, reason="not a Mac")
    assert [lane_id for lane_id, _ in pool_curves([HOST, skipped, NOAVX])] == ["host", "linux-x86_64-noavx"]


def test_probe_metrics_are_not_compared_across_lanes() -> None:
    # n, task sizes and counts are calibrated per lane: never drift
    matrix = build([HOST, NOAVX])
    assert not [d for d in matrix.drift if d.check.startswith("perf.")]
    assert [d.check for d in matrix.drift] == ["linalg.solve"]


# ---------------------------------------------------------------- renderers


def test_terminal_and_markdown_show_the_speed_rows() -> None:
    matrix = build([HOST, NOAVX])
    table = build_table(matrix)
    labels = [row[0] for row in table.header_rows]
    assert labels[-2:] == ["speed", "workers"]
    text = terminal.render(matrix)
    assert "1.00× (host)" in text and "0.006× host (Python" in text
    md = markdown.render(matrix)
    assert "| **speed**" in md and "0.006× host (Python 0.08×)" in md


def test_html_without_matplotlib_shows_a_table_and_the_hint() -> None:
    page = html.render(build([HOST, NOAVX]), plots=False)
    assert "Process-pool scaling" in page
    assert "<svg" not in page
    assert INSTALL_HINT.replace("'", "&#x27;") in page
    assert "<th>linux-x86_64-noavx</th><td>2</td><td>3.9</td><td>4</td><td>3.8</td>" in page


def test_html_falls_back_when_matplotlib_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    page = html.render(build([HOST, NOAVX]))
    assert "<svg" not in page and "archmatrix[plots]" in page


def test_html_has_no_pool_section_without_the_probe() -> None:
    quick = lane("host", [CheckResult("linalg.solve", Outcome.PASS)])
    page = html.render(build([quick]))
    assert "Process-pool scaling" not in page and "archmatrix[plots]" not in page


def test_busy_curves_are_marked_in_the_table_and_the_note() -> None:
    page = html.render(build([HOST, NOAVX]), plots=False)
    assert "<td>3.8</td><td>unclear (busy host)</td>" in page
    assert "Measured on a busy host" in page and "linux-x86_64-noavx." in page
    assert "<th>host</th><td>24</td><td>47</td><td>47.5</td><td>47.2</td><td>2</td>" in page
    clean = html.render(build([HOST]), plots=False)
    assert "Measured on a busy host" not in clean


def test_scaling_table_marks_sizes_a_lane_did_not_run() -> None:
    small = PoolCurve([1, 2], [10.0, 19.0], 2, 2, 1, 1.0)
    big = PoolCurve([1, 2, 3, 4], [10.0, 20.0, 20.0, 20.0], 2, 2, 2, 1.0)
    text = scaling_table([("a", small), ("b", big)])
    assert "<th>a</th><td>10</td><td>19</td><td>–</td><td>–</td><td>2</td>" in text


def test_html_with_matplotlib_embeds_an_svg_plot() -> None:
    pytest.importorskip("matplotlib")
    matrix = build([HOST, AMD64, NOAVX, ARM64])
    page = html.render(matrix)
    assert "<figure class=plot><svg" in page
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page  # inline, not a file
    assert "archmatrix[plots]" not in page
    # one line per lane (text is drawn as paths, so count the line ids): absolute + speedup
    # per lane, the ideal line, the legend's samples, and rings for the three clean lanes
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count('id="line2d_') >= 8
    # the busy lane (noavx) is dashed: more dashed paths than with the same lanes all clean
    clean_noavx = lane("linux-x86_64-noavx", probes(0.35, 2.0, [2.0, 3.9, 4.0, 3.8]), emulator="qemu-x86_64")
    clean = html.render(build([HOST, AMD64, clean_noavx, ARM64]))
    assert svg.count("stroke-dasharray") > clean.count("stroke-dasharray")
    assert "Measured on a busy host" in page and "Measured on a busy host" not in clean
    # deterministic: the same matrix renders to the same bytes
    assert html.render(matrix) == page


def test_the_real_probe_feeds_the_matrix() -> None:
    # the metric names the suite records are the ones this module reads
    from archmatrix.suite.checks import perf as checks_perf
    from archmatrix.suite.registry import CheckContext

    ctx = CheckContext(options={"perf.pool_budget_s": 0.1})
    checks_perf.pool_scaling(ctx)
    speed = lane_speed(lane("host", [CheckResult("perf.pool_scaling", Outcome.PASS, metrics=ctx.metrics)]))
    assert speed.curve is not None and speed.curve.recommended is not None
    assert speed.python_rate == ctx.metrics["per_cpu_mcos_s"]
    text = workers_text(speed)  # this test may share the CPUs with others: either answer is right
    assert text.startswith(f"{speed.curve.recommended} of ") or text.startswith("unclear: busy host")


def test_scaling_section_is_empty_without_curves() -> None:
    assert scaling_section([]) == ""
