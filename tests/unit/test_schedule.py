"""Lanes start longest first by the last run's durations (archmatrix.schedule), through the orchestrator."""

from __future__ import annotations

import io
import json
from pathlib import Path

from test_fake_runner import HOST, FakeRunner

from archmatrix import config as config_mod
from archmatrix.orchestrate import Progress, run_matrix
from archmatrix.runners import RUNNERS
from archmatrix.schedule import DURATIONS, read_durations, record_durations, start_order
from archmatrix.suite.result import LaneResult, LaneStatus

CONFIG = """\
lock: {python: "3.11", packages: {numpy: "2.4.6"}}
parallel: 1
lanes:
  - {id: quick, runner: fake, options: {board: alpha}}
  - {id: new-lane, runner: fake, options: {board: alpha}}
  - {id: slow, runner: fake, options: {board: alpha}}
  - {id: middling, runner: fake, options: {board: alpha}}
"""


def run(tmp_path: Path) -> tuple[list[str], list[str]]:
    """(the order the lanes were started in, the lanes' order in the matrix)."""
    fake = FakeRunner()
    cfg = config_mod.parse(CONFIG, tmp_path / "matrix.yaml", runners={**RUNNERS, "fake": fake})
    outcome = run_matrix(cfg, HOST, results_dir=tmp_path / "results", workdir=tmp_path / "work",
                         progress=Progress(stream=io.StringIO()), runners={**RUNNERS, "fake": fake})
    return fake.prepared, [lane.lane for lane in outcome.matrix.lanes]


def test_the_longest_lanes_start_first_and_a_never_timed_lane_before_them(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / DURATIONS).write_text(json.dumps({"quick": 12.0, "slow": 95.5, "middling": 40.0, "gone": 7.0}))
    started, shown = run(tmp_path)
    assert started == ["new-lane", "slow", "middling", "quick"]
    assert shown == ["quick", "new-lane", "slow", "middling"]  # results keep the config's order
    # this run's durations replace the old ones; a lane not in this run keeps its record
    recorded = json.loads((work / DURATIONS).read_text())
    assert set(recorded) == {"quick", "new-lane", "slow", "middling", "gone"} and recorded["gone"] == 7.0
    assert recorded["slow"] < 95.5  # the fake lane took next to nothing this time


def test_without_a_record_lanes_start_in_config_order_and_the_run_records_them(tmp_path: Path) -> None:
    started, _shown = run(tmp_path)
    assert started == ["quick", "new-lane", "slow", "middling"]
    assert set(read_durations(tmp_path / "work")) == {"quick", "new-lane", "slow", "middling"}


def test_ties_keep_the_config_order() -> None:
    assert start_order(["a", "b", "c", "d"], {"a": 5.0, "b": 9.0, "c": 5.0}) == ["d", "b", "a", "c"]


def test_a_corrupt_or_hostile_record_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / DURATIONS
    for text in ("{not json", "[1, 2]", '"x"', "\x00\xff"):
        path.write_text(text, errors="surrogateescape")
        assert read_durations(tmp_path) == {}
    path.write_text(json.dumps({"a": -3, "b": "9", "c": True, "d": 1e999, "e": 2.5, "f": None}))
    assert read_durations(tmp_path) == {"e": 2.5}


def test_only_lanes_that_ran_are_recorded(tmp_path: Path) -> None:
    record_durations(tmp_path, [
        LaneResult(lane="ran", runner="venv", status=LaneStatus.RAN, duration_s=31.24),
        LaneResult(lane="broke", runner="venv", status=LaneStatus.INFRA_ERROR, duration_s=2.0),
        LaneResult(lane="skipped", runner="venv", status=LaneStatus.SKIPPED),
    ])
    assert read_durations(tmp_path) == {"ran": 31.2}
