"""The macos runner without a Mac: exact commands for both lanes, and each skip's reason and fix.

Everything here is built from hand-made HostFacts; no test runs `arch`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from archmatrix import config
from archmatrix.config import LaneConfig
from archmatrix.hostfacts import HostFacts
from archmatrix.runners import RUNNERS, LaneJob, Option
from archmatrix.runners.common import suite_args
from archmatrix.runners.macos import (
    ROSETTA_HINT,
    MacosRunner,
    lane_python,
    suite_command,
    venv_commands,
    verify_architecture,
)
from archmatrix.staging.tags import macos_wheel_fits
from archmatrix.suite.outcomes import Outcome

ROOT = Path(__file__).resolve().parents[2]
ARM_PY = "/opt/homebrew/bin/python3.11"
X86_PY = "/Library/Frameworks/Python.framework/Versions/3.11/bin/python3.11"
LOCK = {"scipy": "1.17.1", "numpy": "2.4.6"}
WHEELS = Path("/w/wheels")
PIP_COMMON = ["--disable-pip-version-check", "--no-input", "--only-binary=:all:", "--no-deps"]

M1 = HostFacts(system="Darwin", machine="aarch64", python=ARM_PY, python_version="3.11",
               apple_silicon=True, rosetta=True, x86_64_pythons={"3.11": (X86_PY,)})
M1_NO_ROSETTA = replace(M1, rosetta=False, x86_64_pythons={})
M1_NO_X86_PYTHON = replace(M1, x86_64_pythons={})
INTEL_MAC = HostFacts(system="Darwin", machine="x86_64", python="/usr/local/bin/python3.11",
                      python_version="3.11")
LINUX = HostFacts(system="Linux", machine="x86_64", python="/usr/bin/python3", python_version="3.11",
                  qemu_user={"x86_64": "/usr/bin/qemu-x86_64-static"})

ARM = LaneConfig("macos-arm64", "macos", required=False, options={"arch": "arm64"})
ROSETTA = LaneConfig("macos-x86_64-rosetta", "macos", required=False, options={"arch": "x86_64"})


def test_registered_under_the_name_the_config_uses() -> None:
    assert isinstance(RUNNERS["macos"], MacosRunner)
    assert MacosRunner.options == {"arch": Option(str, choices=("arm64", "x86_64"), required=True),
                                   "python": Option(object), "macos_version": Option(str)}


def test_arm64_lane_commands_are_native_and_exact() -> None:
    venv = Path("/w/venvs/macos-arm64-arm64")
    py = f"{venv}/bin/python"
    assert venv_commands("arm64", ARM_PY, venv, LOCK, WHEELS) == [
        ["arch", "-arm64", ARM_PY, "-m", "venv", "--clear", str(venv)],
        ["arch", "-arm64", py, "-m", "pip", "download", *PIP_COMMON, "--dest", "/w/wheels", "numpy==2.4.6"],
        ["arch", "-arm64", py, "-m", "pip", "download", *PIP_COMMON, "--dest", "/w/wheels", "scipy==1.17.1"],
        ["arch", "-arm64", py, "-m", "pip", "install", *PIP_COMMON, "--no-index", "--find-links", "/w/wheels",
         "numpy==2.4.6", "scipy==1.17.1"],
    ]


def test_rosetta_lane_is_the_same_lane_with_arch_x86_64_before_every_command() -> None:
    venv = Path("/w/venvs/macos-x86_64-rosetta-x86_64")
    py = f"{venv}/bin/python"
    local = Path("/src/dist/mypkg-1.0-cp311-cp311-macosx_10_9_x86_64.whl")
    commands = venv_commands("x86_64", X86_PY, venv, LOCK, WHEELS, [local])
    assert commands == [
        ["arch", "-x86_64", X86_PY, "-m", "venv", "--clear", str(venv)],
        ["arch", "-x86_64", py, "-m", "pip", "download", *PIP_COMMON, "--dest", "/w/wheels", "numpy==2.4.6"],
        ["arch", "-x86_64", py, "-m", "pip", "download", *PIP_COMMON, "--dest", "/w/wheels", "scipy==1.17.1"],
        ["arch", "-x86_64", py, "-m", "pip", "install", *PIP_COMMON, "--no-index",
         "--find-links", "/w/wheels", "numpy==2.4.6", "scipy==1.17.1", str(local)],
    ]
    # nothing runs unprefixed: not even the interpreter that creates the venv
    assert all(cmd[:2] == ["arch", "-x86_64"] for cmd in commands)
    # exact pins, wheels only, and no resolver: the lane installs the lock and nothing else
    assert all("--only-binary=:all:" in cmd and "--no-deps" in cmd for cmd in commands[1:])


def test_suite_command_for_both_lanes_from_the_shipped_config(tmp_path: Path) -> None:
    cfg = config.load(ROOT / "ci" / "matrix.yaml")
    for lane_id, arch in (("macos-arm64", "arm64"), ("macos-x86_64-rosetta", "x86_64")):
        lane = cfg.lane(lane_id)
        assert lane.runner == "macos" and lane.options["arch"] == arch
        job = LaneJob(cfg, lane, M1, tmp_path, tmp_path / f"{lane_id}.json", progress=lambda _: None)
        venv = tmp_path / "venv"
        argv = suite_command(arch, venv, suite_args(job, str(job.out)))
        assert argv[:5] == ["arch", f"-{arch}", str(venv / "bin" / "python"), "-m", "archmatrix.suite"]
        assert argv[argv.index("--lane") + 1] == lane_id
        assert argv[argv.index("--runner") + 1] == "macos"
        assert argv[argv.index("--out") + 1] == str(job.out)
        assert "--emulator" not in argv  # translation is detected by the lane itself (sysctl)


@pytest.mark.parametrize("lane", [ARM, ROSETTA], ids=lambda lane: lane.id)
def test_on_linux_both_lanes_skip_with_a_reason(lane: LaneConfig) -> None:
    got = MacosRunner().availability(lane, LINUX)
    assert not got.ok
    assert got.reason == "needs macOS on Apple Silicon; this host is Linux"
    assert "Apple Silicon" in got.hint


def test_intel_mac_skips_the_arm64_lane() -> None:
    got = MacosRunner().availability(ARM, INTEL_MAC)
    assert not got.ok and got.reason == "Intel Mac: no arm64 CPU"


def test_intel_mac_has_no_rosetta_to_test() -> None:
    got = MacosRunner().availability(ROSETTA, INTEL_MAC)
    assert not got.ok and got.reason.startswith("Intel Mac:") and "Rosetta" in got.reason


def test_missing_rosetta_skips_with_the_install_command() -> None:
    got = MacosRunner().availability(ROSETTA, M1_NO_ROSETTA)
    assert not got.ok
    assert got.reason == "Rosetta 2 is not installed"
    assert got.hint == ROSETTA_HINT == "softwareupdate --install-rosetta --agree-to-license"
    # the native lane does not need Rosetta
    assert MacosRunner().availability(ARM, M1_NO_ROSETTA).ok


def test_no_x86_64_python_skips_naming_the_universal2_installer_and_the_option() -> None:
    got = MacosRunner().availability(ROSETTA, M1_NO_X86_PYTHON)
    assert not got.ok
    assert got.reason.startswith("no x86_64-capable Python 3.11 found")
    # where it looked
    assert "/Library/Frameworks/Python.framework/Versions/3.11/bin/python3.11" in got.reason
    assert "universal2" in got.hint and "https://www.python.org/downloads/macos/" in got.hint
    assert "lanes[].options.python" in got.hint


def test_python_option_makes_the_rosetta_lane_available_without_a_detected_interpreter() -> None:
    lane = replace(ROSETTA, options={"arch": "x86_64", "python": "/opt/x86/bin/python3.11"})
    got = MacosRunner().availability(lane, M1_NO_X86_PYTHON)
    assert got.ok and got.reason == "translated by Rosetta 2: arch -x86_64 /opt/x86/bin/python3.11"


def test_both_lanes_available_on_an_m1_with_rosetta_and_a_universal2_python() -> None:
    assert MacosRunner().availability(ARM, M1).reason == f"native: arch -arm64 {ARM_PY}"
    assert MacosRunner().availability(ROSETTA, M1).reason == f"translated by Rosetta 2: arch -x86_64 {X86_PY}"


@pytest.mark.parametrize("options", [{}, {"arch": "ppc"}])
def test_a_lane_without_a_valid_arch_is_skipped_with_the_fix(options: dict[str, str]) -> None:
    got = MacosRunner().availability(LaneConfig("macos-x", "macos", options=options), M1)
    assert not got.ok and "options.arch" in got.reason and "arm64 or x86_64" in got.hint


def test_interpreter_choice() -> None:
    assert lane_python(ROSETTA, M1) == X86_PY  # the first detected x86_64 interpreter
    assert lane_python(ARM, M1) == ARM_PY  # the host interpreter
    assert lane_python(ROSETTA, M1_NO_X86_PYTHON) is None
    custom = replace(ARM, options={"arch": "arm64", "python": "/x/python"})
    assert lane_python(custom, M1) == "/x/python"  # the option always wins


def test_rosetta_lane_verifies_it_really_ran_translated() -> None:
    ok = verify_architecture("x86_64", {"translated": True, "machine": "x86_64"})
    assert (ok.id, ok.outcome) == ("rosetta.translated", Outcome.PASS)
    bad = verify_architecture("x86_64", {"translated": False, "machine": "arm64"})
    assert (bad.id, bad.outcome) == ("rosetta.translated", Outcome.ERROR)
    assert "did not run translated" in bad.message
    assert bad.evidence == {"translated": False, "machine": "arm64"}


def test_arm64_lane_verifies_it_was_not_translated() -> None:
    assert verify_architecture("arm64", {"translated": False, "machine": "arm64"}).outcome is Outcome.PASS
    translated = verify_architecture("arm64", {"translated": True, "machine": "x86_64"})
    assert (translated.id, translated.outcome) == ("macos.native", Outcome.ERROR)


def test_no_facts_means_nothing_to_verify_not_a_second_failure() -> None:
    # the suite died before reporting (its suite.start row says why)
    assert verify_architecture("x86_64", {}).outcome is Outcome.SKIPPED


@pytest.mark.parametrize(("filename", "arch", "fits"), [
    ("pkg-1.0-py3-none-any.whl", "x86_64", True),
    ("pkg-1.0-cp311-cp311-macosx_10_9_x86_64.whl", "x86_64", True),
    ("pkg-1.0-cp311-cp311-macosx_10_9_x86_64.whl", "arm64", False),
    ("pkg-1.0-cp311-cp311-macosx_11_0_arm64.whl", "arm64", True),
    ("pkg-1.0-cp311-cp311-macosx_10_9_universal2.whl", "arm64", True),
    ("pkg-1.0-cp311-cp311-macosx_10_9_universal2.whl", "x86_64", True),
    ("pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "x86_64", False),
    ("not-a-wheel.whl", "x86_64", False),
])
def test_which_local_wheels_a_macos_lane_installs(filename: str, arch: str, fits: bool) -> None:
    assert macos_wheel_fits(filename, arch) is fits
