"""Python versions as a matrix axis (issue 18): ``lock.python`` as a list, ``<lane>@<version>`` ids,
``results/<lane>-py<version>.json``, one lane per version, and every consumer of lane ids.

Hand-built host facts and a fake runner: no Docker, no QEMU, no venv.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from archmatrix import config as config_mod
from archmatrix.config import ConfigError, parse
from archmatrix.hostfacts import DockerFacts, HostFacts, find_interpreters
from archmatrix.matrix import order_lanes
from archmatrix.model import LaneConfig, LaneTarget, Lock
from archmatrix.orchestrate import Progress, run_matrix
from archmatrix.plan import plan
from archmatrix.pyversions import (
    debian_release,
    docker_base,
    result_file,
    result_stem,
    split_lane_id,
    versioned_id,
)
from archmatrix.render.badges import badges, safe_name
from archmatrix.runners import RUNNERS, Availability, LaneJob, Launch, Option, Runner
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus
from archmatrix.workflows import LINUX_X86_64 as X86
from archmatrix.workflows import github_lanes

WHERE = Path("ci/matrix.yaml")


def config_text(python: str) -> str:
    return f"""\
lock:
  python: {python}
  packages: {{numpy: "2.4.6"}}
lanes:
  - id: host
    runner: venv
  - id: linux-arm64-docker
    runner: docker
    options: {{platform: linux/arm64}}
  - id: linux-x86_64-noavx
    runner: qemu
    options: {{cpu_profile: rosetta2}}
"""


TWO = config_text('["3.11", "3.12"]')
ONE = config_text('"3.11"')

HOST = HostFacts(
    system="Linux", machine="x86_64", cpu_count=2, python="/usr/bin/python3.11", python_version="3.11",
    docker=DockerFacts(True, server_arch="x86_64", server_version="27.0"),
    qemu_user={"x86_64": "/usr/bin/qemu-x86_64-static", "aarch64": "/usr/bin/qemu-aarch64-static"},
    binfmt=frozenset({"aarch64"}),
    interpreters={"3.12": "/opt/pyenv/versions/3.12.1/bin/python3.12",
                  "3.13": "/opt/pyenv/versions/3.13.0/bin/python3.13"},
)


# ------------------------------------------------------------------ parsing


def test_a_single_version_is_as_today() -> None:
    cfg = parse(ONE, WHERE)
    assert cfg.lock.python == "3.11"
    assert cfg.lock.pythons == ("3.11",)
    assert [ln.id for ln in cfg.lanes] == ["host", "linux-arm64-docker", "linux-x86_64-noavx"]
    assert {ln.target.python for ln in cfg.lanes if ln.target} == {"3.11"}


def test_a_one_item_list_is_a_single_version_too() -> None:
    cfg = parse(config_text('["3.12"]'), WHERE)
    assert cfg.lock.pythons == ("3.12",) and cfg.lock.python == "3.12"
    assert [ln.id for ln in cfg.lanes] == ["host", "linux-arm64-docker", "linux-x86_64-noavx"]


def test_a_list_of_versions_is_parsed_first_one_kept_as_python() -> None:
    cfg = parse(TWO, WHERE)
    assert cfg.lock.pythons == ("3.11", "3.12")
    assert cfg.lock.python == "3.11"  # existing readers of lock.python see the first one


def test_each_lane_becomes_one_lane_per_version_grouped_by_lane() -> None:
    cfg = parse(TWO, WHERE)
    assert [(ln.id, ln.target.python if ln.target else None) for ln in cfg.lanes] == [
        ("host@3.11", "3.11"), ("host@3.12", "3.12"),
        ("linux-arm64-docker@3.11", "3.11"), ("linux-arm64-docker@3.12", "3.12"),
        ("linux-x86_64-noavx@3.11", "3.11"), ("linux-x86_64-noavx@3.12", "3.12"),
    ]
    # everything else about the lane is the configured lane's
    arm = cfg.lane("linux-arm64-docker@3.12")
    assert arm.runner == "docker" and arm.options == {"platform": "linux/arm64"}
    assert arm.target is not None and arm.target.arch == "aarch64"


@pytest.mark.parametrize(("python", "expected"), [
    ("[]", "lock.python: list at least one version"),
    ('["3.11", "3.11"]', "lock.python[1]: \"3.11\" is listed twice"),
    ('["3.11", 3.12]', 'lock.python[1]: quote the version ("3.12")'),
    ('["3.11", "3.12.1"]', "lock.python[1]: expected a version like \"3.11\", found '3.12.1'"),
    ('["3.11", {a: 1}]', "lock.python[1]: expected a string"),
    ("{a: 1}", "lock.python: expected a version like \"3.11\" or a list of them"),
])
def test_bad_version_lists_are_located_one_line_errors(python: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(config_text(python), WHERE)
    message = str(err.value)
    assert message.startswith("ci/matrix.yaml:2:"), message
    assert expected in message, message
    assert "\n" not in message


def test_lane_lookup_suggests_the_versioned_id() -> None:
    cfg = parse(TWO, WHERE)
    with pytest.raises(ConfigError, match=r"no lane 'host@3.10' \(perhaps you meant 'host@3.1[12]'\?\)"):
        cfg.lane("host@3.10")


# ------------------------------------------------------------------ ids and files


def test_ids_and_result_files() -> None:
    assert versioned_id("host", "3.12") == "host@3.12"
    assert split_lane_id("linux-arm64-docker@3.12") == ("linux-arm64-docker", "3.12")
    assert split_lane_id("host") == ("host", None)
    assert result_stem("host@3.12") == "host-py3.12"
    assert result_stem("host") == "host"
    assert result_file(Path("results"), "arm@3.12") == Path("results/arm-py3.12.json")
    assert result_file(Path("results"), "host") == Path("results/host.json")


def test_badges_are_named_like_the_result_files() -> None:
    assert safe_name("host@3.12") == "host-py3.12"
    assert safe_name("host") == "host"


def test_lanes_not_in_a_config_are_ordered_by_lane_then_numeric_version() -> None:
    lanes = [LaneResult(lane=name, runner="venv") for name in
             ("zeta@3.9", "host@3.10", "alpha", "host@3.9", "zeta@3.10")]
    assert [ln.lane for ln in order_lanes(lanes, [])] == [
        "alpha", "host@3.9", "host@3.10", "zeta@3.9", "zeta@3.10"]


# ------------------------------------------------------------------ selection and planning


def test_a_configured_lane_name_selects_every_version_of_it() -> None:
    cfg = parse(TWO, WHERE)
    assert [ln.id for ln in cfg.select(["host"])] == ["host@3.11", "host@3.12"]
    assert [ln.id for ln in cfg.select(["host@3.12"])] == ["host@3.12"]
    assert [p.lane.id for p in plan(cfg, HOST, ["linux-arm64-docker"])] == [
        "linux-arm64-docker@3.11", "linux-arm64-docker@3.12"]
    with pytest.raises(ConfigError, match="no lane 'hots'"):
        cfg.select(["hots"])


def test_host_lanes_get_the_interpreter_of_their_version() -> None:
    cfg = parse(config_text('["3.11", "3.12", "3.14"]'), WHERE)
    planned = {p.lane.id: p.availability for p in plan(cfg, HOST, ["host", "linux-x86_64-noavx"])}
    assert planned["host@3.11"].ok and planned["host@3.12"].ok
    assert planned["linux-x86_64-noavx@3.12"].ok
    for lane_id in ("host@3.14", "linux-x86_64-noavx@3.14"):
        why = planned[lane_id]
        assert not why.ok
        assert "no Python 3.14 on this host" in why.reason
        assert "pyenv install 3.14" in why.hint and "uv python install 3.14" in why.hint


def test_docker_lanes_get_the_debian_release_that_ships_their_python() -> None:
    assert debian_release("3.11") == ("bookworm", (2, 36))
    assert debian_release("3.13") == ("trixie", (2, 41))
    assert debian_release("3.12") is None
    cfg = parse(config_text('["3.11", "3.12", "3.13"]'), WHERE)
    planned = {p.lane.id: p.availability for p in plan(cfg, HOST, ["linux-arm64-docker"])}
    assert planned["linux-arm64-docker@3.11"].ok and planned["linux-arm64-docker@3.13"].ok
    why = planned["linux-arm64-docker@3.12"]
    assert not why.ok
    assert "no Debian release ships Python 3.12" in why.reason
    assert "options.base_image" in why.hint and "{python}" in why.hint
    assert docker_base(cfg.lane("linux-arm64-docker@3.13")).suite == "trixie"
    assert docker_base(cfg.lane("linux-arm64-docker@3.11")).glibc == (2, 36)


def test_a_configured_base_image_gives_docker_lanes_any_version() -> None:
    text = TWO.replace("options: {platform: linux/arm64}",
                       'options: {platform: linux/arm64, base_image: "debian-py:{python}"}')
    cfg = parse(text, WHERE)
    planned = {p.lane.id: p.availability for p in plan(cfg, HOST, ["linux-arm64-docker"])}
    assert planned["linux-arm64-docker@3.12"].ok
    base = docker_base(cfg.lane("linux-arm64-docker@3.12"))
    assert base.image == "debian-py:3.12" and base.suite is None


def test_each_job_sees_the_lock_of_its_own_python() -> None:
    cfg = parse(TWO, WHERE)
    job = LaneJob(config=cfg, lane=cfg.lane("host@3.12"), host=HOST, workdir=Path("w"),
                  out=Path("o.json"), progress=lambda _: None)
    assert job.lock.python == "3.12" and job.lock.pythons == ("3.12",)
    assert job.lock.packages == cfg.lock.packages
    single = parse(ONE, WHERE)
    job = LaneJob(config=single, lane=single.lane("host"), host=HOST, workdir=Path("w"),
                  out=Path("o.json"), progress=lambda _: None)
    assert job.lock is single.lock


def test_lock_for_python() -> None:
    lock = Lock(python="3.11", packages={"numpy": "2.4.6"}, pythons=("3.11", "3.13"))
    assert lock.for_python("3.13") == Lock(python="3.13", packages={"numpy": "2.4.6"}, pythons=("3.13",))
    assert Lock(python="3.11", packages={}).pythons == ("3.11",)


# ------------------------------------------------------------------ a whole run


@dataclass
class RecordingRunner:
    """Records which Python each job was given; its lanes pass."""

    name: ClassVar[str] = "recording"
    options: ClassVar[Mapping[str, Option]] = {}
    seen: dict[str, str] = field(default_factory=dict)

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        return LaneTarget(os="linux", arch="x86_64")

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability:
        return Availability.yes("always")

    def prepare(self, job: LaneJob) -> Launch:
        self.seen[job.lane.id] = job.lock.python
        return Launch(prefix=["python"], execute=self._execute)

    def _execute(self, job: LaneJob, argv: list[str]) -> LaneResult:
        spec = json.loads(argv[argv.index("--spec") + 1])
        assert spec["options"]["self_check"]["python"] == job.lock.python  # the lane claims its own
        return LaneResult(lane=job.lane.id, runner=self.name, status=LaneStatus.RAN,
                          checks=[CheckResult("import.numpy", Outcome.PASS)],
                          facts={"python": {"version": job.lock.python + ".0"}})


def test_a_two_version_matrix_runs_each_lane_per_version_into_its_own_file(tmp_path: Path) -> None:
    runner = RecordingRunner()
    registry: dict[str, Runner] = {**RUNNERS, "recording": runner}
    text = ('lock: {python: ["3.11", "3.13"], packages: {numpy: "2.4.6"}}\n'
            "lanes:\n  - {id: a, runner: recording}\n  - {id: b, runner: recording}\n")
    cfg = config_mod.parse(text, tmp_path / "matrix.yaml", runners=registry)
    with open(tmp_path / "log", "w") as log:
        outcome = run_matrix(cfg, HOST, results_dir=tmp_path / "results", workdir=tmp_path / "work",
                             progress=Progress(stream=log), runners=registry)
    assert [ln.lane for ln in outcome.matrix.lanes] == ["a@3.11", "a@3.13", "b@3.11", "b@3.13"]
    assert runner.seen == {"a@3.11": "3.11", "a@3.13": "3.13", "b@3.11": "3.11", "b@3.13": "3.13"}
    names = sorted(p.name for p in (tmp_path / "results").glob("*.json"))
    assert names == ["a-py3.11.json", "a-py3.13.json", "b-py3.11.json", "b-py3.13.json"]
    assert [b.name for b in badges(outcome.matrix)][1:] == ["a-py3.11", "a-py3.13", "b-py3.11", "b-py3.13"]


# ------------------------------------------------------------------ GitHub fan-out


def test_ci_lanes_fan_out_lane_by_version_with_the_python_for_setup_python() -> None:
    entries = github_lanes(parse(TWO, WHERE), ["host"])
    assert entries == [
        {"lane": "host@3.11", "runner": "venv", "os": X86, "python": "3.11", "result": "host-py3.11"},
        {"lane": "host@3.12", "runner": "venv", "os": X86, "python": "3.12", "result": "host-py3.12"},
    ]


def test_ci_lanes_of_a_single_version_are_unchanged() -> None:
    assert github_lanes(parse(ONE, WHERE), ["host"]) == [{"lane": "host", "runner": "venv", "os": X86}]


# ------------------------------------------------------------------ interpreters on the host


def _fake_python(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF" + b"\0" * 60)
    path.chmod(0o755)


def test_interpreters_found_in_a_pyenv_root(tmp_path: Path) -> None:
    _fake_python(tmp_path / "pyenv" / "versions" / "3.12.1" / "bin" / "python3.12")
    _fake_python(tmp_path / "pyenv" / "versions" / "3.13.0" / "bin" / "python3.13")
    found = find_interpreters(("3.11", "3.12", "3.13"), path=str(tmp_path / "empty"),
                              pyenv_root=str(tmp_path / "pyenv"))
    assert found == {"3.12": str(tmp_path / "pyenv/versions/3.12.1/bin/python3.12"),
                     "3.13": str(tmp_path / "pyenv/versions/3.13.0/bin/python3.13")}
