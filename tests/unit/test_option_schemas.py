"""Runner options are checked while the config is parsed, with the file's line and column: a value no host
can use is a configuration error (exit 2), never a lane that is quietly skipped (exit 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archmatrix import cli
from archmatrix.config import ConfigError, parse
from archmatrix.model import LaneTarget
from archmatrix.profiles import DEFAULT_PROFILES

LOCK = "lock: {python: '3.11', packages: {numpy: '2.4.6'}}\nlanes:\n"


def error_of(lane: str, path: Path = Path("m.yaml")) -> str:
    with pytest.raises(ConfigError) as exc:
        parse(LOCK + lane, path)
    return str(exc.value)


@pytest.mark.parametrize(("lane", "message"), [
    ("  - {id: a, runner: docker, options: {platform: linux/amd46}}\n",
     "m.yaml:3:39: lanes[0].options.platform: expected one of linux/amd64, linux/arm64, found 'linux/amd46' "
     "(perhaps you meant 'linux/amd64'?)"),
    ("  - {id: a, runner: docker, options: {platform: linux/s390x}}\n",
     "m.yaml:3:39: lanes[0].options.platform: expected one of linux/amd64, linux/arm64, found 'linux/s390x'"),
    ("  - {id: a, runner: docker}\n",
     "m.yaml:3:5: lanes[0].options: the docker runner needs options.platform "
     "(one of linux/amd64, linux/arm64)"),
    ("  - {id: b, runner: macos, options: {arch: amd64}}\n",
     "m.yaml:3:38: lanes[0].options.arch: expected one of arm64, x86_64, found 'amd64' "
     "(perhaps you meant 'x86_64'?)"),
    ("  - {id: c, runner: qemu}\n",
     "m.yaml:3:5: lanes[0].options: the qemu runner needs options.cpu_profile"),
    ("  - {id: d, runner: docker, options: {platform: linux/amd64, cpu_profile: neoverse-n1}}\n",
     "m.yaml:3:62: lanes[0].options.cpu_profile: CPU profile neoverse-n1 is for aarch64, not linux/amd64"),
])
def test_a_value_no_host_can_use_is_a_located_config_error(lane: str, message: str) -> None:
    assert error_of(lane).startswith(message)


def test_a_misconfigured_required_lane_fails_the_command_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "matrix.yaml"
    cfg.write_text(LOCK + "  - {id: a, runner: docker, required: true, options: {platform: linux/s390x}}\n")
    assert cli.main(["plan", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lanes[0].options.platform" in err and "Traceback" not in err


def test_each_lane_is_resolved_once_into_its_target() -> None:
    cfg = parse(LOCK + "  - {id: host, runner: venv}\n"
                "  - {id: arm, runner: docker, options: {platform: linux/arm64, cpu_profile: armv8.0}}\n"
                "  - {id: noavx, runner: qemu, options: {cpu_profile: rosetta2}}\n"
                "  - {id: rosetta, runner: macos, options: {arch: x86_64}}\n"
                "  - {id: m1, runner: macos, options: {arch: arm64}}\n", Path("m.yaml"))
    targets = {lane.id: lane.target for lane in cfg.lanes}
    assert targets["host"] == LaneTarget(python="3.11")  # the lock's Python, for every lane
    arm = targets["arm"]
    assert arm is not None and (arm.os, arm.arch, arm.platform, arm.runs_on) == (
        "linux", "aarch64", "linux/arm64", "ubuntu-24.04-arm")
    assert arm.cpu == DEFAULT_PROFILES["armv8.0"] and arm.emulated_cpu_default == "max"
    noavx = targets["noavx"]
    assert noavx is not None and (noavx.arch, noavx.emulator, noavx.cpu) == (
        "x86_64", "qemu-user", DEFAULT_PROFILES["rosetta2"])
    rosetta = targets["rosetta"]
    assert rosetta is not None and (rosetta.os, rosetta.arch, rosetta.emulator, rosetta.ci_setup) == (
        "macos", "x86_64", "Rosetta 2", ("x64_python",))
    m1 = targets["m1"]
    assert m1 is not None and (m1.os, m1.arch, m1.runs_on) == ("macos", "aarch64", "macos-14")
