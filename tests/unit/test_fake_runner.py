"""A new runner and a new platform through the public registries only: parsed, planned, run, rendered,
and interrupted — the orchestration with no Docker, no QEMU, no venv.

The fake runner goes where a real one goes (``runners=`` of ``config.parse``,
``plan`` and ``run_matrix``), its platform is one ``suite.arch.register``
call, and nothing else in archmatrix is told about either.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from archmatrix import config as config_mod
from archmatrix.audit.predict import HostCpu, lane_targets
from archmatrix.hostfacts import HostFacts
from archmatrix.model import LaneConfig, LaneTarget
from archmatrix.orchestrate import Progress, run_matrix
from archmatrix.plan import plan
from archmatrix.render import html, junit, markdown, terminal
from archmatrix.runners import RUNNERS, Availability, LaneJob, Launch, Option, OptionError, Runner
from archmatrix.suite import arch as arch_mod
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus, save
from archmatrix.workflows import github_lanes

# A platform archmatrix has never heard of, made known the public way.
SPARC = arch_mod.lookup("fake-sparc64") or arch_mod.register(
    arch_mod.Arch("fake-sparc64", docker="fakesparc", elf_machine=43_000, synonyms=("sparcv9x",)))


@dataclass
class FakeRunner:
    """Runs nothing: its lanes "execute" by producing the checks the test asked for."""

    name: ClassVar[str] = "fake"
    options: ClassVar[Mapping[str, Option]] = {
        "board": Option(str, choices=("alpha", "beta"), required=True),
        "fail": Option(bool),
        "hang": Option(bool),
    }
    prepared: list[str] = field(default_factory=list)
    aborted: threading.Event = field(default_factory=threading.Event)

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        if lane.options.get("board") == "beta" and lane.options.get("hang"):
            raise OptionError("hang", "the beta board cannot hang")
        return LaneTarget(os="linux", arch=SPARC.name, platform=SPARC.docker_platform,
                          runs_on="self-hosted-sparc")

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability:
        if lane.options["board"] == "beta":
            return Availability.no("no beta board attached", "plug one in")
        return Availability.yes("fake board")

    def prepare(self, job: LaneJob) -> Launch:
        self.prepared.append(job.lane.id)
        job.aborts.append(self.aborted.set)
        return Launch(prefix=["fake-board"], facts={"board": job.lane.options["board"]},
                      execute=self._execute)

    def _execute(self, job: LaneJob, argv: list[str]) -> LaneResult:
        assert argv[:3] == ["fake-board", "-m", "archmatrix.suite"]  # the shared path built the command
        fail = bool(job.lane.options.get("fail"))
        checks = [
            CheckResult("import.numpy", Outcome.PASS, duration_s=0.1),
            CheckResult("linalg.solve", Outcome.ILLEGAL_INSTRUCTION if fail else Outcome.PASS,
                        message="SIGILL" if fail else "", evidence={"signal": "SIGILL"} if fail else {}),
        ]
        result = LaneResult(lane=job.lane.id, runner=self.name, status=LaneStatus.RAN, checks=checks,
                            facts={"os": "Linux", "machine": SPARC.name})
        if job.lane.options.get("hang"):
            # what a real suite does: save after every check, then get interrupted
            result.checks = checks[:1]
            save(result, job.out)
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C
            assert self.aborted.wait(20), "the matrix never interrupted the running lane"
            result.status = LaneStatus.INTERRUPTED
        return result


CONFIG = """\
lock:
  python: "3.11"
  packages: {numpy: "2.4.6"}
lanes:
  - {id: sparc-ok, runner: fake, options: {board: alpha}}
  - {id: sparc-bad, runner: fake, options: {board: alpha, fail: true}}
  - {id: sparc-beta, runner: fake, required: false, options: {board: beta}}
"""

HOST = HostFacts(system="Linux", machine="x86_64", cpu_count=2)


@pytest.fixture()
def registry() -> dict[str, Runner]:
    return {**RUNNERS, "fake": FakeRunner()}


def test_the_new_platform_is_known_by_every_name() -> None:
    assert arch_mod.normalise("SPARCV9X") == "fake-sparc64"
    assert arch_mod.from_docker_platform("linux/fakesparc") is SPARC
    assert arch_mod.from_elf_machine(43_000) == "fake-sparc64"


def test_a_fake_runner_is_parsed_planned_run_and_rendered(
    tmp_path: Path, registry: dict[str, Runner]
) -> None:
    cfg = config_mod.parse(CONFIG, tmp_path / "matrix.yaml", runners=registry)
    assert cfg.lane("sparc-ok").target == LaneTarget(
        os="linux", arch="fake-sparc64", platform="linux/fakesparc", runs_on="self-hosted-sparc",
        python="3.11")
    planned = plan(cfg, HOST, runners=registry)
    assert [(p.lane.id, p.runs) for p in planned] == [("sparc-ok", True), ("sparc-bad", True),
                                                      ("sparc-beta", False)]

    outcome = run_matrix(cfg, HOST, results_dir=tmp_path / "results", workdir=tmp_path / "work",
                         progress=Progress(stream=open(os.devnull, "w")), runners=registry)  # noqa: SIM115
    matrix = outcome.matrix
    assert not outcome.interrupted
    assert sorted(registry["fake"].prepared) == ["sparc-bad", "sparc-ok"]  # type: ignore[attr-defined]
    assert [lane.lane for lane in matrix.lanes] == ["sparc-ok", "sparc-bad", "sparc-beta"]
    bad = matrix.cell("sparc-bad", "linalg.solve")
    assert bad is not None and bad.outcome is Outcome.ILLEGAL_INSTRUCTION
    assert matrix.lanes[2].status == LaneStatus.SKIPPED and matrix.lanes[2].hint == "plug one in"
    assert matrix.exit_code() == 1  # a required lane failed
    # the shared path finished each result: runner facts, saved file
    saved = (tmp_path / "results" / "sparc-ok.json").read_text()
    assert '"board": "alpha"' in saved

    assert "sparc-bad" in terminal.render(matrix) and "illegal-instruction" in terminal.render(matrix)
    assert "`sparc-bad`" in markdown.render(matrix)
    assert "sparc-beta" in html.render(matrix)
    cases = ET.fromstring(junit.render(matrix)).iter("testcase")
    assert {"sparc-ok", "sparc-bad", "sparc-beta"} <= {str(c.get("classname")) for c in cases}

    # the GitHub workflow and the audit read the lane's target, not the runner's name
    assert [e["os"] for e in github_lanes(cfg)] == ["self-hosted-sparc"] * 3
    targets = lane_targets(cfg.lanes, host=HostCpu("linux", "x86_64", frozenset()))
    assert {(t.id, t.os, t.arch) for t in targets} == {
        (lane, "linux", "fake-sparc64") for lane in ("sparc-ok", "sparc-bad", "sparc-beta")}


def test_the_fake_runners_schema_is_checked_where_the_config_says_it(
    tmp_path: Path, registry: dict[str, Runner]
) -> None:
    def error(options: str) -> str:
        text = ("lock: {python: '3.11', packages: {numpy: '2.4.6'}}\nlanes:\n"
                f"  - {{id: x, runner: fake, options: {options}}}\n")
        with pytest.raises(config_mod.ConfigError) as exc:
            config_mod.parse(text, tmp_path / "m.yaml", runners=registry)
        return str(exc.value)

    assert error("{board: gamma}").startswith(
        f"{tmp_path / 'm.yaml'}:3:37: lanes[0].options.board: expected one of alpha, beta, found 'gamma'")
    assert "lanes[0].options: the fake runner needs options.board (one of alpha, beta)" in error("{}")
    assert "lanes[0].options.hang: the beta board cannot hang" in error("{board: beta, hang: true}")
    # without the fake runner in the registry, the lane's runner is unknown
    with pytest.raises(config_mod.ConfigError, match="unknown runner 'fake'"):
        config_mod.parse(CONFIG, tmp_path / "m.yaml")


def test_ctrl_c_keeps_what_the_lanes_finished(tmp_path: Path, registry: dict[str, Runner]) -> None:
    text = CONFIG.replace("{board: alpha, fail: true}", "{board: alpha, hang: true}")
    cfg = config_mod.parse(text, tmp_path / "matrix.yaml", runners=registry)
    started = time.monotonic()
    outcome = run_matrix(cfg, HOST, results_dir=tmp_path / "results", workdir=tmp_path / "work",
                         progress=Progress(stream=open(os.devnull, "w")), runners=registry)  # noqa: SIM115
    assert outcome.interrupted and outcome.matrix.exit_code() == 130
    assert registry["fake"].aborted.is_set()  # type: ignore[attr-defined]
    by_id: dict[str, Any] = {lane.lane: lane for lane in outcome.matrix.lanes}
    hung = by_id["sparc-bad"]
    assert hung.status == LaneStatus.INTERRUPTED and [c.id for c in hung.checks] == ["import.numpy"]
    assert by_id["sparc-beta"].status == LaneStatus.SKIPPED
    assert time.monotonic() - started < 20
