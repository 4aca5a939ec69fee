"""archmatrix.results: the one way a Matrix is built from lane results."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from archmatrix.config import MatrixConfig, parse
from archmatrix.matrix import build
from archmatrix.outputs import write_all
from archmatrix.results import build_matrix, float32_rtol, load_matrix
from archmatrix.suite.registry import DEFAULT_TOLERANCES, Tolerance
from archmatrix.suite.result import LaneResult, LaneStatus, ResultFileError, save

CONFIG = """\
lock:
  python: "3.11"
  packages: {numpy: "2.4.6"}
checks:
  drift_rtol: 1.0e-3
  tolerances: {float32: {rtol: 1.0e-2, atol: 1.0e-5}}
lanes:
  - id: zeta
    runner: venv
  - id: alpha
    runner: venv
"""


@pytest.fixture()
def config() -> MatrixConfig:
    return parse(CONFIG, Path("ci/matrix.yaml"))


def _lanes(directory: Path, *ids: str) -> None:
    for lane_id in ids:
        save(LaneResult(lane=lane_id, runner="venv", status=LaneStatus.RAN, facts={"packages": {}}),
             directory / lane_id / "result.json")


def test_lane_files_are_built_in_config_order_against_its_lock(tmp_path: Path, config: MatrixConfig) -> None:
    _lanes(tmp_path, "alpha", "other", "zeta")
    matrix = load_matrix(tmp_path, config)
    assert [ln.lane for ln in matrix.lanes] == ["zeta", "alpha", "other"]
    assert dict(matrix.lock) == {"numpy": "2.4.6"}


def test_without_a_config_lanes_are_in_the_given_order_then_alphabetical(tmp_path: Path) -> None:
    _lanes(tmp_path, "b", "a", "c")
    assert [ln.lane for ln in load_matrix(tmp_path).lanes] == ["a", "b", "c"]
    assert [ln.lane for ln in load_matrix(tmp_path, order=["c"]).lanes] == ["c", "a", "b"]
    assert [ln.lane for ln in load_matrix(tmp_path, order=lambda: ["b"]).lanes] == ["b", "a", "c"]
    assert load_matrix(tmp_path).lock == {}


def test_the_order_function_is_not_called_for_a_merged_matrix(tmp_path: Path) -> None:
    _lanes(tmp_path / "lanes", "a")
    write_all(load_matrix(tmp_path / "lanes"), tmp_path / "lanes")

    def order() -> list[str]:
        raise AssertionError("called")

    assert [ln.lane for ln in load_matrix(tmp_path / "lanes", order=order).lanes] == ["a"]


def test_a_directorys_matrix_json_is_read_unless_merged_is_false(tmp_path: Path) -> None:
    _lanes(tmp_path, "a")
    write_all(build([]), tmp_path)  # a matrix.json that disagrees with the lane files
    assert load_matrix(tmp_path).lanes == []
    assert load_matrix(tmp_path / "matrix.json", merged=False).lanes == []  # a file is always the matrix
    assert [ln.lane for ln in load_matrix(tmp_path, merged=False).lanes] == ["a"]


def test_unreadable_files_are_problems_and_a_bad_matrix_json_raises(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    matrix = load_matrix(tmp_path)
    assert matrix.lanes == [] and len(matrix.problems) == 1
    assert load_matrix(tmp_path / "missing").problems == [f"{tmp_path / 'missing'}: no such directory"]
    with pytest.raises(ResultFileError):
        load_matrix(tmp_path / "broken.json")


def test_the_float32_tolerance_comes_from_the_config_else_the_suites_default(config: MatrixConfig) -> None:
    assert float32_rtol(config) == 1e-2
    checks = dataclasses.replace(config.checks, tolerances={"float64": Tolerance(1e-9, 1e-12)})
    without = dataclasses.replace(config, checks=checks)
    assert float32_rtol(without) == DEFAULT_TOLERANCES["float32"].rtol == 2e-4


def test_build_matrix_keeps_the_lanes_order_and_uses_the_configs_lock(config: MatrixConfig) -> None:
    lanes = [LaneResult(lane=i, runner="venv", status=LaneStatus.RAN) for i in ("alpha", "zeta")]
    matrix = build_matrix(lanes, config, problems=["x"])
    assert [ln.lane for ln in matrix.lanes] == ["alpha", "zeta"]
    assert dict(matrix.lock) == {"numpy": "2.4.6"} and matrix.problems == ["x"]
