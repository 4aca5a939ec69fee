"""The qemu runner's pure parts: availability per host, the command, the lane's environment.

Hand-built HostFacts only; no qemu is started here (tests/integration/test_noavx_lane.py does).
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from archmatrix import config
from archmatrix.config import LaneConfig
from archmatrix.hostfacts import HostFacts
from archmatrix.profiles import DEFAULT_PROFILES
from archmatrix.runners import RUNNERS, Option
from archmatrix.runners.common import CPU_OVERRIDE_VARS, lane_env
from archmatrix.runners.qemu import (
    QemuRunner,
    elf_arch,
    emulator_name,
    lane_profile,
    qemu_command,
    without_noise,
)
from archmatrix.staging.lock import local_wheel_files, select_local_wheels
from archmatrix.staging.result import StagingError
from archmatrix.staging.tags import local_wheel_tags

ROOT = Path(__file__).resolve().parents[2]
QEMU = "/usr/bin/qemu-x86_64-static"
LINUX = HostFacts(system="Linux", machine="x86_64", python="/usr/bin/python3", python_version="3.11",
                  qemu_user={"x86_64": QEMU})
NOAVX = LaneConfig("linux-x86_64-noavx", "qemu", options={"cpu_profile": "rosetta2"})


def test_registered_with_its_options() -> None:
    assert isinstance(RUNNERS["qemu"], QemuRunner)
    assert QemuRunner.options == {"cpu_profile": Option(str, required=True), "python": Option(str),
                                  "contain_children": Option(bool)}


def test_available_on_linux_x86_64_with_qemu_user() -> None:
    got = QemuRunner().availability(NOAVX, LINUX)
    assert got.ok and got.reason == "emulated: qemu-x86_64 -cpu Westmere"


def test_the_shipped_noavx_lane_is_rosetta2_on_westmere() -> None:
    lane = config.load(ROOT / "ci" / "matrix.yaml").lane("linux-x86_64-noavx")
    assert lane.runner == "qemu"
    assert lane.cpu_profile == DEFAULT_PROFILES["rosetta2"]
    assert lane.cpu_profile is not None and lane.cpu_profile.qemu_cpu == "Westmere"
    assert QemuRunner().availability(lane, LINUX).ok


def test_not_linux_is_skipped_with_the_mac_alternative() -> None:
    mac = HostFacts(system="Darwin", machine="aarch64", apple_silicon=True, rosetta=True)
    got = QemuRunner().availability(NOAVX, mac)
    assert not got.ok and got.reason == "qemu-user runs Linux binaries; this host is Darwin"
    assert "macos-x86_64-rosetta" in got.hint


def test_missing_qemu_user_is_skipped_with_the_setup_command() -> None:
    got = QemuRunner().availability(NOAVX, replace(LINUX, qemu_user={}))
    assert not got.ok
    assert got.reason == "qemu-user for x86_64 not found (qemu-x86_64 or qemu-x86_64-static on PATH)"
    assert "ci/setup-linux-host.sh" in got.hint and "apt-get install qemu-user-static" in got.hint


def test_qemu_for_another_arch_is_not_enough() -> None:
    got = QemuRunner().availability(NOAVX, replace(LINUX, qemu_user={"aarch64": "/usr/bin/qemu-aarch64"}))
    assert not got.ok and "qemu-user for x86_64 not found" in got.reason


def test_a_profile_for_another_architecture_needs_a_sysroot() -> None:
    arm_host = HostFacts(system="Linux", machine="aarch64", qemu_user={"x86_64": "/usr/bin/qemu-x86_64"})
    got = QemuRunner().availability(NOAVX, arm_host)
    assert not got.ok
    assert "'rosetta2' is x86_64 but this host is aarch64" in got.reason
    assert "x86_64 sysroot" in got.reason
    assert "linux-amd64-docker" in got.hint
    pi4 = LaneConfig("linux-aarch64-pi4", "qemu", options={"cpu_profile": "armv8.0"})
    got = QemuRunner().availability(pi4, LINUX)
    assert not got.ok and "aarch64 sysroot" in got.reason
    assert "linux-arm64-docker" in got.hint and "QEMU_CPU=cortex-a72" in got.hint


def test_unknown_or_missing_profile_is_skipped_with_the_fix() -> None:
    got = QemuRunner().availability(replace(NOAVX, options={"cpu_profile": "rosetta3"}), LINUX)
    assert not got.ok and got.reason == "unknown CPU profile 'rosetta3'"
    assert "rosetta2" in got.hint and "cpu_profiles:" in got.hint
    got = QemuRunner().availability(replace(NOAVX, options={}), LINUX)
    assert not got.ok and "options.cpu_profile" in got.hint


def test_a_custom_profile_from_the_config_is_used(tmp_path: Path) -> None:
    text = """
lock: {python: "3.11", packages: {numpy: "2.4.6"}}
cpu_profiles:
  sandy-bridge: {arch: x86_64, qemu_cpu: SandyBridge, description: "AVX, no AVX2"}
lanes:
  - {id: linux-x86_64-avx1, runner: qemu, options: {cpu_profile: sandy-bridge}}
  - {id: host, runner: venv}
"""
    cfg = config.parse(text, tmp_path / "matrix.yaml")
    lane = cfg.lane("linux-x86_64-avx1")
    profile = lane_profile(lane)
    assert profile is not None and (profile.name, profile.qemu_cpu) == ("sandy-bridge", "SandyBridge")
    assert QemuRunner().availability(lane, LINUX).reason == "emulated: qemu-x86_64 -cpu SandyBridge"
    assert cfg.lane("host").cpu_profile is None


def test_availability_is_pure() -> None:
    # same answer every time, from the facts alone (the host has no qemu at that path)
    runner = QemuRunner()
    assert runner.availability(NOAVX, LINUX) == runner.availability(NOAVX, LINUX)


def test_the_command_runs_the_venv_interpreter_under_the_profile_cpu() -> None:
    profile = DEFAULT_PROFILES["rosetta2"]
    assert qemu_command(QEMU, profile, "/w/venvs/abc/bin/python") == [
        "/usr/bin/qemu-x86_64-static", "-cpu", "Westmere", "/w/venvs/abc/bin/python",
    ]
    assert emulator_name(QEMU) == "qemu-x86_64"
    assert emulator_name("/usr/bin/qemu-x86_64") == "qemu-x86_64"


def test_cpu_override_variables_do_not_reach_the_emulated_cpu(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin", "OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "2", "PYTHONPATH": "/x"}
    env, removed = lane_env(base, tmp_path)
    assert removed == ["OPENBLAS_CORETYPE"]
    assert "OPENBLAS_CORETYPE" not in env
    assert env["OMP_NUM_THREADS"] == "2" and env["PATH"] == "/usr/bin"
    assert env["PYTHONPATH"] == str(tmp_path)  # the staged suite only
    assert base["OPENBLAS_CORETYPE"] == "Haswell"  # the host's environment is untouched
    assert "MKL_DEBUG_CPU_TYPE" in CPU_OVERRIDE_VARS


def test_qemu_feature_warnings_are_noise() -> None:
    # seen with -cpu Haswell (the x86-64-v3 profile)
    noise = "qemu-x86_64-static: warning: TCG doesn't support requested feature: CPUID.01H:ECX.pcid [bit 17]"
    assert not without_noise(noise)
    assert without_noise("[linux-x86_64-noavx] 3/21 linalg.solve ✔ pass")
    assert without_noise("qemu: uncaught target signal 4 (Illegal instruction) - core dumped")


def test_elf_arch_reads_the_header(tmp_path: Path) -> None:
    def elf(machine: int) -> bytes:
        return b"\x7fELF\x02\x01\x01" + b"\0" * 11 + machine.to_bytes(2, "little") + b"\0" * 40

    (tmp_path / "x86").write_bytes(elf(62))
    (tmp_path / "arm").write_bytes(elf(183))
    (tmp_path / "shim").write_text("#!/usr/bin/env bash\nexec python3 \"$@\"\n")
    (tmp_path / "link").symlink_to(tmp_path / "arm")
    assert elf_arch(tmp_path / "x86") == "x86_64"
    assert elf_arch(tmp_path / "arm") == "aarch64"
    assert elf_arch(tmp_path / "link") == "aarch64"  # follows symlinks, as the venv's bin/python is one
    assert elf_arch(tmp_path / "shim") is None  # a pyenv shim: qemu would exec the real one natively
    assert elf_arch(tmp_path / "missing") is None
    if sys.platform == "linux":
        assert elf_arch(Path(sys.executable)) in ("x86_64", "aarch64")


# --- lock.wheels: how a user's own package reaches the host and noavx lanes ---


def _wheel(directory: Path, filename: str) -> Path:
    path = directory / filename
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("placeholder", "")
    return path


def test_local_wheels_accept_what_pip_wheel_builds_on_this_host() -> None:
    tags = {str(t) for t in local_wheel_tags("3.11", "x86_64", (2, 36))}
    assert "cp311-cp311-linux_x86_64" in tags
    assert "cp311-cp311-manylinux_2_17_x86_64" in tags
    assert "py3-none-any" in tags
    assert not any("aarch64" in t for t in tags)


def test_local_wheel_entries_are_files_or_directories_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    a = _wheel(tmp_path / "dist", "a-1.0-py3-none-any.whl")
    b = _wheel(tmp_path, "b-2.0-cp311-cp311-linux_x86_64.whl")
    assert local_wheel_files(["dist", str(b)], tmp_path) == [a, b]
    with pytest.raises(StagingError, match=r"nope\.tar\.gz is neither a \.whl file nor a directory"):
        local_wheel_files(["nope.tar.gz"], tmp_path)


def test_a_local_package_without_a_wheel_for_the_lane_is_a_no_wheel_row(tmp_path: Path) -> None:
    arm_only = _wheel(tmp_path, "mypkg-1.0-cp311-cp311-manylinux_2_28_aarch64.whl")
    staged = select_local_wheels([arm_only], "3.11", "x86_64", (2, 36))
    assert staged.installed == {}
    assert [(m.name, m.version) for m in staged.missing] == [("mypkg", "1.0")]
    assert "none of the local wheels for mypkg fits manylinux_2_36_x86_64 cp311" in staged.missing[0].reason


def test_the_profiles_table_in_docs_matches_the_defaults() -> None:
    text = (ROOT / "docs" / "lanes.md").read_text()
    table = text.split("<!-- profiles:begin -->")[1].split("<!-- profiles:end -->")[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in table.strip().splitlines()[2:]]
    assert [(r[0].strip("`"), r[1], r[2]) for r in rows] == [
        (p.name, p.arch, p.qemu_cpu) for p in DEFAULT_PROFILES.values()
    ]
    for row in rows:
        profile = DEFAULT_PROFILES[row[0].strip("`")]
        assert row[4] in profile.description
        assert ("qemu" if profile.arch == "x86_64" else "docker") in row[3]
