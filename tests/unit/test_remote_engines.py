"""Docker lanes on a named engine (issue 20): options, plan, parallelism per machine, and an engine
that does not answer — that lane infra-error naming the engine and the fix, the other lanes still run.

No Docker needed: engine facts are built by hand, and the engines that do not answer are sockets
that do not exist (the real SDK really fails to reach them).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from archmatrix import config as config_mod
from archmatrix.engines import Engine, is_local, lane_engine, probe
from archmatrix.errors import ConfigError
from archmatrix.hostfacts import DockerFacts, HostFacts
from archmatrix.model import LaneConfig, LaneTarget
from archmatrix.orchestrate import Progress, run_matrix
from archmatrix.plan import machines, plan
from archmatrix.runners import RUNNERS, Availability, LaneJob, Launch, Option, Runner
from archmatrix.runners.docker import named_engines
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus

ARM = "ssh://ci@arm-box"
HOST = HostFacts(
    system="Linux", machine="x86_64", cpu_count=2, binfmt=frozenset({"aarch64"}),
    docker=DockerFacts(True, server_arch="x86_64", address="unix:///var/run/docker.sock", cpus=2),
    engines={f"host={ARM}": DockerFacts(True, server_arch="aarch64", address=ARM, cpus=8)},
)

CONFIG = f"""\
lock:
  python: "3.11"
  packages: {{numpy: "2.4.6"}}
lanes:
  - {{id: local-amd64, runner: docker, options: {{platform: linux/amd64}}}}
  - {{id: local-arm64, runner: docker, options: {{platform: linux/arm64}}}}
  - {{id: arm-arm64, runner: docker, options: {{platform: linux/arm64, docker_host: "{ARM}"}}}}
  - {{id: arm-amd64, runner: docker, options: {{platform: linux/amd64, docker_host: "{ARM}"}}}}
"""


def test_plan_names_each_docker_lanes_engine_and_whether_it_is_native_there(tmp_path: Path) -> None:
    cfg = config_mod.parse(CONFIG, tmp_path / "matrix.yaml")
    assert named_engines(cfg.lanes) == [Engine(host=ARM)]
    notes = {p.lane.id: p.availability.reason for p in plan(cfg, HOST)}
    assert notes == {
        "local-amd64": "native on the default engine unix:///var/run/docker.sock (x86_64)",
        "local-arm64": "emulated by qemu-aarch64 via binfmt on the default engine "
                       "unix:///var/run/docker.sock (x86_64)",
        # an arm64 engine runs the arm64 lane natively and the amd64 one emulated
        "arm-arm64": f"native on docker_host {ARM} (aarch64)",
        "arm-amd64": f"emulated by qemu-x86_64 via binfmt on docker_host {ARM} (aarch64) (registered there)",
    }


def test_lanes_on_another_machine_do_not_wait_for_local_cores(tmp_path: Path) -> None:
    cfg = config_mod.parse(CONFIG, tmp_path / "matrix.yaml")
    planned = plan(cfg, HOST)
    groups = machines(cfg, HOST, planned)
    assert {name: (workers, [p.lane.id for p in lanes]) for name, (workers, lanes) in groups.items()} == {
        "": (2, ["local-amd64", "local-arm64"]),
        ARM: (2, ["arm-arm64", "arm-amd64"]),  # its 8 cores, but only two lanes
    }
    # an engine on a socket of this machine shares its cores
    local_socket = HostFacts(system="Linux", machine="x86_64", cpu_count=1, docker=HOST.docker,
                             engines={f"host={ARM}": DockerFacts(True, server_arch="x86_64",
                                                                 address="unix:///run/x.sock", cpus=64)})
    assert list(machines(cfg, local_socket, plan(cfg, local_socket))) == [""]
    assert machines(cfg, local_socket, plan(cfg, local_socket))[""][0] == 1
    assert is_local("unix:///run/x.sock") and is_local("npipe:////./pipe/docker") and not is_local(ARM)


def test_docker_host_and_docker_context_together_is_a_located_config_error(tmp_path: Path) -> None:
    text = CONFIG.replace(f'docker_host: "{ARM}"}}}}\n', f'docker_host: "{ARM}", docker_context: arm}}}}\n')
    with pytest.raises(ConfigError) as caught:
        config_mod.parse(text, tmp_path / "matrix.yaml")
    message = str(caught.value)
    assert "matrix.yaml:" in message and "docker_context" in message and "not both" in message


class Quick:
    """A lane that needs no engine: proves the matrix goes on when another lane's engine is gone."""

    name: ClassVar[str] = "quick"
    options: ClassVar[Mapping[str, Option]] = {}

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        return LaneTarget(os="linux", arch="x86_64", platform="linux/amd64", runs_on="ubuntu-24.04")

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability:
        return Availability.yes("always")

    def prepare(self, job: LaneJob) -> Launch:
        return Launch(prefix=["quick"], execute=self._execute)

    def _execute(self, job: LaneJob, argv: list[str]) -> LaneResult:
        return LaneResult(lane=job.lane.id, runner=self.name, status=LaneStatus.RAN,
                          checks=[CheckResult("import.numpy", Outcome.PASS)],
                          facts={"os": "Linux", "machine": "x86_64"})


def _context(config_dir: Path, name: str, host: str) -> None:
    """A docker CLI context as `docker context create NAME --docker host=HOST` stores it."""
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({
        "Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))
    (config_dir / "config.json").write_text("{}")


def test_an_engine_that_does_not_answer_is_that_lanes_infra_error_and_the_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = f"unix://{tmp_path}/no-engine/docker.sock"
    docker_config = tmp_path / "docker-config"
    _context(docker_config, "arm", f"unix://{tmp_path}/no-arm/docker.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))  # where the docker CLI keeps its contexts
    text = f"""\
lock:
  python: "3.11"
  packages: {{numpy: "2.4.6"}}
lanes:
  - {{id: quick, runner: quick}}
  - {{id: gone-amd64, runner: docker, options: {{platform: linux/amd64, docker_host: "{gone}"}}}}
  - {{id: ctx-arm64, runner: docker, options: {{platform: linux/arm64, docker_context: arm}}}}
  - {{id: nothere-arm64, runner: docker, options: {{platform: linux/arm64, docker_context: nothere}}}}
  - {{id: refused-amd64, runner: docker, options: {{platform: linux/amd64, docker_host: "tcp://127.0.0.1:1"}}}}
"""
    registry: dict[str, Runner] = {**RUNNERS, "quick": Quick()}
    cfg = config_mod.parse(text, tmp_path / "matrix.yaml", runners=registry)
    engines = named_engines(cfg.lanes)
    host = HostFacts(system="Linux", machine="x86_64", cpu_count=2,
                     engines={e.key: probe(e) for e in engines})
    # asked, and found not answering: planned to run all the same (a skip would pass for green)
    for p in plan(cfg, host, runners=registry)[1:]:
        assert p.runs and "not reachable" in p.availability.reason and p.availability.hint, p

    with open(os.devnull, "w") as devnull:
        outcome = run_matrix(cfg, host, results_dir=tmp_path / "results", workdir=tmp_path / "work",
                             progress=Progress(stream=devnull), runners=registry)
    lanes = {lane.lane: lane for lane in outcome.matrix.lanes}
    assert lanes["quick"].status == LaneStatus.RAN and lanes["quick"].checks[0].outcome is Outcome.PASS
    expected = (("gone-amd64", f"docker_host {gone}", f"docker -H {gone} info"),
                ("ctx-arm64", "docker context arm", "docker --context arm info"),
                ("nothere-arm64", "no docker context named 'nothere'", "docker context create"),
                # the OS's own words, not urllib3's retry wrapper around them
                ("refused-amd64", "tcp://127.0.0.1:1 cannot be used: [Errno 111] Connection refused",
                 "docker -H tcp://127.0.0.1:1 info"))
    for lane_id, named, fix in expected:
        lane = lanes[lane_id]
        assert lane.status == LaneStatus.INFRA_ERROR, (lane_id, lane.status, lane.reason)
        assert named in lane.reason, (lane_id, lane.reason)
        assert fix in lane.hint, (lane_id, lane.hint)
        assert "\n" not in lane.reason and "Traceback" not in lane.reason
    assert outcome.matrix.exit_code() == 3  # infrastructure


def test_the_default_engine_is_the_environments_and_options_name_others() -> None:
    assert lane_engine({}).is_default and lane_engine({}).key == ""
    assert lane_engine({"docker_host": ARM}) == Engine(host=ARM)
    assert str(lane_engine({"docker_context": "arm"})) == "docker context arm"
    # the default engine unreachable is still a skip with the setup hint, as before
    cfg_lane = LaneConfig(id="x", runner="docker", options={"platform": "linux/amd64"})
    down = HostFacts(system="Linux", machine="x86_64", docker=DockerFacts(False, "Cannot connect"))
    assert not RUNNERS["docker"].availability(cfg_lane, down).ok
    # facts detected without the config's engines: the lane still runs and asks its engine itself
    named = LaneConfig(id="y", runner="docker", options={"platform": "linux/arm64", "docker_context": "arm"})
    unasked = RUNNERS["docker"].availability(named, down)
    assert unasked.ok and unasked.reason == "on docker context arm (not asked yet)"
