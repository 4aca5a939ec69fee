"""Badges (issue 7): widths, escaping, colours and messages, endpoint JSON, the command."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archmatrix.cli import main
from archmatrix.matrix import Matrix
from archmatrix.render import badges as b
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus, save

SVG = "{http://www.w3.org/2000/svg}"
NASTY = "<script>alert(1)</script>&\"'"


def lane(lane_id: str, *outcomes: Outcome, status: str = LaneStatus.RAN, required: bool = True) -> LaneResult:
    checks = [CheckResult(f"check.{i}", o, message=f"{o.value} here") for i, o in enumerate(outcomes)]
    return LaneResult(lane=lane_id, runner="venv", status=status, checks=checks, required=required,
                      reason="why" if status != LaneStatus.RAN else "")


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter(f"{SVG}text")]


# ------------------------------------------------------------------ widths


def test_width_grows_with_the_text() -> None:
    widths = [b.text_width("p" * n) for n in range(1, 12)]
    assert widths == sorted(widths) and len(set(widths)) == len(widths)
    # wide letters take more room than narrow ones of the same count
    assert b.text_width("WWWW") > b.text_width("iiii")


def test_width_is_odd_and_covers_the_per_character_sum() -> None:
    for text in ("pass", "illegal-instruction", "linux-x86_64-noavx", "3/5 lanes", "x"):
        width = b.text_width(text)
        exact = sum(b._ASCII_WIDTHS[ord(c) - 32] for c in text) / 10
        assert width % 2 == 1
        assert exact <= width < exact + 2.01


def test_non_ascii_is_counted_wide_not_zero() -> None:
    assert b.text_width("✔✔") >= 2 * 11


def test_svg_boxes_follow_the_text_widths() -> None:
    short = ET.fromstring(b.render_svg("host", "pass", "brightgreen"))
    long = ET.fromstring(b.render_svg("linux-x86_64-noavx", "illegal-instruction", "red"))
    assert int(long.get("width", "0")) > int(short.get("width", "0"))
    rects = [r for r in short.iter(f"{SVG}rect") if r.get("height") == "20" and "x" not in r.attrib][1:]
    label_box = int(rects[0].get("width", "0"))
    assert label_box == b.text_width("host") + 2 * b.PADDING
    assert int(short.get("width", "0")) == label_box + b.text_width("pass") + 2 * b.PADDING
    # textLength is the measured text width (in the 10x text coordinates)
    lengths = [t.get("textLength") for t in short.iter(f"{SVG}text")]
    assert lengths == [str(b.text_width("host") * 10)] * 2 + [str(b.text_width("pass") * 10)] * 2


# ------------------------------------------------------------------ escaping


def test_markup_in_lane_id_and_message_is_escaped() -> None:
    svg = b.render_svg(NASTY, NASTY, "red")
    root = ET.fromstring(svg)  # parses: nothing broke out of its element or attribute
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
    assert texts(svg) == [NASTY] * 4  # the text reads back exactly as given
    assert root.get("aria-label") == f"{NASTY}: {NASTY}"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == f"{NASTY}: {NASTY}"
    # the raw quote characters never appear unescaped (they would end an attribute)
    assert "'" not in svg and '&"' not in svg


def test_lane_from_a_results_file_cannot_inject_markup(tmp_path: Path) -> None:
    evil = LaneResult(lane=NASTY, runner="venv", checks=[CheckResult("x", Outcome.SEGFAULT)])
    save(evil, tmp_path / "evil.json")
    assert main(["badges", "--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out" / "badges").iterdir())
    # the file name is sanitised too: no path separators, no markup, nothing outside badges/
    assert all("/" not in name and "<" not in name for name in written)
    svg_name = next(n for n in written if n.endswith(".svg") and n != "archmatrix.svg")
    svg = (tmp_path / "out" / "badges" / svg_name).read_text()
    assert texts(svg)[:2] == [NASTY, NASTY]
    endpoint = json.loads((tmp_path / "out" / "badges" / svg_name.replace(".svg", ".json")).read_text())
    assert endpoint["label"] == NASTY


def test_characters_xml_cannot_carry_are_dropped() -> None:
    svg = b.render_svg("lane\x00\x07id", "pass\x1b", "brightgreen")
    assert texts(svg)[0] == "laneid" and texts(svg)[2] == "pass"


@pytest.mark.parametrize("lane_id, expected", [
    ("host", "host"),
    ("../../etc/passwd", "_.._etc_passwd"),  # a plain name: no separator left
    (".hidden", "hidden"),
    ("a b/c", "a_b_c"),
    ("archmatrix", "lane-archmatrix"),  # would overwrite the overall badge
    ("", "lane"),
])
def test_safe_names(lane_id: str, expected: str) -> None:
    assert b.safe_name(lane_id) == expected


def test_ids_that_sanitise_alike_get_distinct_files() -> None:
    names = [x.name for x in b.badges(Matrix(lanes=[lane("a/b", Outcome.PASS), lane("a_b", Outcome.PASS)]))]
    assert names == ["archmatrix", "a_b", "a_b-2"]


# ------------------------------------------------------------------ messages and colours


@pytest.mark.parametrize("lane_result, message, color", [
    (lane("l", Outcome.PASS, Outcome.SKIPPED), "pass", "brightgreen"),
    (lane("l", Outcome.PASS, Outcome.ILLEGAL_INSTRUCTION, Outcome.SEGFAULT), "illegal-instruction", "red"),
    (lane("l", Outcome.NO_WHEEL, Outcome.IMPORT_ERROR), "no-wheel", "red"),
    (lane("l", Outcome.PASS, Outcome.NUMERIC_MISMATCH), "numeric-mismatch", "red"),
    (lane("l", Outcome.TIMEOUT), "timeout", "red"),
    (lane("l", Outcome.INFRA_ERROR), "infra-error", "orange"),
    (lane("l", status=LaneStatus.SKIPPED), "skipped", "lightgrey"),
    (lane("l", status=LaneStatus.INFRA_ERROR), "infra-error", "orange"),
    (lane("l", Outcome.PASS, status=LaneStatus.INTERRUPTED), "interrupted", "orange"),
    (lane("l", Outcome.SKIPPED), "skipped", "lightgrey"),
    (lane("l"), "no checks", "lightgrey"),
])
def test_lane_message_and_colour(lane_result: LaneResult, message: str, color: str) -> None:
    assert b.lane_message(lane_result) == (message, color)


@pytest.mark.parametrize("outcome, color", [
    (Outcome.PASS, "brightgreen"), (Outcome.SKIPPED, "lightgrey"), (Outcome.INFRA_ERROR, "orange"),
    *((o, "red") for o in Outcome if o.failed and o is not Outcome.INFRA_ERROR),
])
def test_outcome_colours(outcome: Outcome, color: str) -> None:
    assert b.outcome_color(outcome) == color


def test_svg_fill_is_the_colour_of_the_outcome() -> None:
    for name, hex_value in (("brightgreen", "#4c1"), ("red", "#e05d44"), ("lightgrey", "#9f9f9f"),
                            ("orange", "#fe7d37")):
        root = ET.fromstring(b.render_svg("l", "m", name))
        fills = [r.get("fill") for r in root.iter(f"{SVG}rect")]
        assert hex_value in fills
    # an unknown colour name must not reach the attribute verbatim
    assert 'fill="javascript' not in b.render_svg("l", "m", 'javascript:"x')


def test_overall_counts_lanes_that_ran_or_broke() -> None:
    matrix = Matrix(lanes=[
        lane("a", Outcome.PASS), lane("b", Outcome.PASS), lane("c", Outcome.PASS),
        lane("d", Outcome.PASS, Outcome.SEGFAULT),
        lane("e", status=LaneStatus.INFRA_ERROR),
        lane("f", status=LaneStatus.SKIPPED),  # not counted: it never could run here
    ])
    overall = b.overall_badge(matrix)
    assert (overall.label, overall.message, overall.color) == ("archmatrix", "3/5 lanes", "red")
    assert texts(overall.svg())[2] == "3/5 lanes"


@pytest.mark.parametrize("lanes, message, color", [
    ([lane("a", Outcome.PASS), lane("b", Outcome.PASS)], "2/2 lanes", "brightgreen"),
    ([lane("a", Outcome.PASS), lane("b", Outcome.ABORT, required=False)], "1/2 lanes", "yellow"),
    ([lane("a", Outcome.PASS), lane("b", status=LaneStatus.INFRA_ERROR)], "1/2 lanes", "orange"),
    ([lane("a", status=LaneStatus.SKIPPED)], "no lanes ran", "lightgrey"),
])
def test_overall_colour(lanes: list[LaneResult], message: str, color: str) -> None:
    overall = b.overall_badge(Matrix(lanes=lanes))
    assert (overall.message, overall.color) == (message, color)


# ------------------------------------------------------------------ endpoint JSON and files


def test_endpoint_json_has_exactly_the_shields_keys() -> None:
    endpoint = b.Badge("host", "host", "pass", "brightgreen").endpoint()
    assert endpoint == {"schemaVersion": 1, "label": "host", "message": "pass", "color": "brightgreen"}


def test_badges_command_from_lane_files(tmp_path: Path) -> None:
    save(lane("host", Outcome.PASS), tmp_path / "results" / "host.json")
    save(lane("lane-b", Outcome.BLAS_LOAD), tmp_path / "results" / "lane-b.json")
    assert main(["badges", "--results", str(tmp_path / "results")]) == 0
    out = tmp_path / "results" / "badges"
    assert sorted(p.name for p in out.iterdir()) == [
        "archmatrix.json", "archmatrix.svg", "host.json", "host.svg", "lane-b.json", "lane-b.svg"]
    assert json.loads((out / "lane-b.json").read_text())["message"] == "blas-load"
    assert json.loads((out / "archmatrix.json").read_text())["message"] == "1/2 lanes"
    # the endpoint files sit in the results tree and must not be read back as lane results
    assert main(["badges", "--results", str(tmp_path / "results")]) == 0


def test_badges_command_prefers_the_merged_matrix(tmp_path: Path) -> None:
    Matrix(lanes=[lane("only-in-matrix", Outcome.PASS)]).save(tmp_path / "matrix.json")
    save(lane("stale-lane", Outcome.PASS), tmp_path / "stale.json")
    assert main(["badges", "--results", str(tmp_path)]) == 0
    names = sorted(p.name for p in (tmp_path / "badges").glob("*.svg"))
    assert names == ["archmatrix.svg", "only-in-matrix.svg"]


def test_badges_command_without_results_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["badges", "--results", str(tmp_path / "nothing")]) == 2
    assert "no matrix.json and no lane result files" in capsys.readouterr().err


def test_markdown_images_escape_brackets() -> None:
    md = b.markdown_images([b.Badge("x", "a]b", "c[d", "red")], "https://example.invalid/badges/")
    assert md == "![a\\]b: c\\[d](https://example.invalid/badges/x.svg)"
