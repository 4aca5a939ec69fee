"""The self-check's parts: real probes on this CPU, the pure judgement, the qemu launcher, the lock's
interpreter, and what the host makes of a failed self-check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from archmatrix import hostfacts
from archmatrix.hostfacts import HostFacts
from archmatrix.model import LaneConfig, LaneTarget
from archmatrix.profiles import DEFAULT_PROFILES
from archmatrix.runners.common import not_as_claimed
from archmatrix.runners.docker import DockerRunner
from archmatrix.runners.macos import rosetta_profile
from archmatrix.runners.qemu import launcher_script
from archmatrix.runners.venv import VenvRunner, lane_interpreter
from archmatrix.suite.lane import selfcheck
from archmatrix.suite.lane.selfcheck import RAN, SIGILL, UNKNOWN
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus


def cpu_flags() -> str:
    return Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""


@pytest.mark.skipif(selfcheck.machine() != "x86_64", reason="x86-64 probes")
def test_the_probes_agree_with_this_cpu() -> None:
    flags = cpu_flags().split()
    found = selfcheck.probe_all(selfcheck.features())
    assert found["AVX"] == (RAN if "avx" in flags else SIGILL)
    assert found["AVX2"] == (RAN if "avx2" in flags else SIGILL)
    assert found["AVX512F"] == (RAN if "avx512f" in flags else SIGILL)
    assert selfcheck.probe("NO-SUCH-EXTENSION") == UNKNOWN


@pytest.mark.skipif(selfcheck.machine() != "x86_64", reason="x86-64 probes")
def test_children_see_what_the_parent_sees_natively() -> None:
    names = list(selfcheck.features())
    parent = selfcheck.probe_all(names)
    assert selfcheck.in_subprocess(names) == parent
    assert selfcheck.in_spawned(names) == parent


def test_the_judgement() -> None:
    no_avx2 = {"AVX": SIGILL, "AVX2": SIGILL}
    assert selfcheck.judge(no_avx2, {"spawn": dict(no_avx2)}, ["AVX", "AVX2"], "rosetta2") == []
    escaped = selfcheck.judge(no_avx2, {"subprocess": {"AVX": RAN, "AVX2": RAN}}, ["AVX2"], "rosetta2")
    assert escaped == ["a child started by subprocess executes AVX, AVX2, which the lane's CPU cannot: "
                       "children escape the emulated CPU"]
    lying = selfcheck.judge({"AVX2": RAN}, {}, ["AVX2"], "rosetta2")
    assert lying and "CPU profile rosetta2" in lying[0] and "executes AVX2" in lying[0]
    broken = selfcheck.judge(no_avx2, {"spawn": "OSError: no"}, [], "")
    assert broken == ["a child started by spawn could not be checked: OSError: no"]
    # a native lane whose children have more than the parent is no escape worth failing for
    assert selfcheck.judge({"AVX2": RAN}, {"spawn": {"AVX2": RAN}}, [], "") == []


def test_the_interpreter_must_be_the_locks() -> None:
    assert selfcheck.python_problem("3.11", (3, 11)) == ""
    assert selfcheck.python_problem("", (3, 12)) == ""
    assert "Python 3.12, the lock is for 3.11" in selfcheck.python_problem("3.11", (3, 12))


def test_the_launcher_reenters_qemu_as_sys_executable(tmp_path: Path) -> None:
    launcher = tmp_path / "bin" / "python-qemu-Westmere"
    text = launcher_script("/usr/bin/qemu-x86_64-static", DEFAULT_PROFILES["rosetta2"],
                           "/v/bin/python", str(launcher))
    assert text.startswith("#!/bin/sh\n")
    assert text.splitlines()[-1] == (f'exec /usr/bin/qemu-x86_64-static -cpu Westmere -0 {launcher} '
                                     '/v/bin/python "$@"')
    # the script really passes its arguments through (sh, not the emulator, is what we can run here)
    fake = tmp_path / "echo.sh"
    fake.write_text(launcher_script(str(tmp_path / "qemu"), DEFAULT_PROFILES["rosetta2"], "py", "me")
                    .replace(f"exec {tmp_path / 'qemu'}", "exec echo"))
    out = subprocess.run(["sh", str(fake), "a b", "c"], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["-cpu", "Westmere", "-0", "me", "py", "a", "b", "c"]


def test_a_failed_self_check_makes_the_lane_infra_error() -> None:
    result = LaneResult(lane="noavx", runner="qemu", status=LaneStatus.RAN, checks=[
        CheckResult("lane.self", Outcome.ERROR, message="children escape the emulated CPU"),
        CheckResult("import.numpy", Outcome.PASS),
    ])
    not_as_claimed(result)
    assert result.status == LaneStatus.INFRA_ERROR and "children escape" in result.reason
    assert [c.id for c in result.checks] == ["lane.self", "import.numpy"]  # the evidence stays
    fine = LaneResult(lane="host", runner="venv", status=LaneStatus.RAN,
                      checks=[CheckResult("lane.self", Outcome.PASS)])
    not_as_claimed(fine)
    assert fine.status == LaneStatus.RAN


def test_rosetta_is_the_cpu_of_its_macos() -> None:
    assert rosetta_profile("14.6.1") is DEFAULT_PROFILES["rosetta2"]
    assert rosetta_profile("15.1") is DEFAULT_PROFILES["rosetta2-macos15"]
    assert rosetta_profile("") is DEFAULT_PROFILES["rosetta2"]  # unknown: the stricter one
    assert DEFAULT_PROFILES["rosetta2-macos15"].absent == ("AVX512F",)
    assert "AVX2" in DEFAULT_PROFILES["rosetta2"].absent


def _binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF" + bytes(60))
    path.chmod(0o755)
    return path


def test_interpreters_are_found_by_version_and_shims_resolved(tmp_path: Path) -> None:
    real = _binary(tmp_path / "pyenv" / "versions" / "3.11.9" / "bin" / "python3.11")
    _binary(tmp_path / "pyenv" / "versions" / "3.11.2" / "bin" / "python3.11")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "python3.13"  # a pyenv-style shim: a script, useless under qemu
    shim.write_text("#!/bin/sh\nexec real \"$@\"\n")
    shim.chmod(0o755)
    linked = bindir / "python3.12"
    linked.symlink_to(_binary(tmp_path / "opt" / "python3.12"))
    found = hostfacts.find_interpreters(("3.11", "3.12", "3.13"), path=str(bindir),
                                        pyenv_root=str(tmp_path / "pyenv"))
    assert found == {"3.11": str(real), "3.12": str(tmp_path / "opt" / "python3.12")}


def test_the_lanes_run_the_locks_python_whatever_archmatrix_runs_on() -> None:
    lane = LaneConfig("host", "venv", target=LaneTarget(python="3.11"))
    on_312 = HostFacts(system="Linux", machine="x86_64", python="/usr/bin/python3.12", python_version="3.12",
                       interpreters={"3.11": "/opt/py311/bin/python3.11"})
    assert lane_interpreter(lane, on_312) == "/opt/py311/bin/python3.11"
    on_311 = HostFacts(system="Linux", machine="x86_64", python="/v/bin/python", python_version="3.11")
    assert lane_interpreter(lane, on_311) == "/v/bin/python"
    none = HostFacts(system="Linux", machine="x86_64", python="/usr/bin/python3.12", python_version="3.12")
    available = VenvRunner().availability(lane, none)
    assert not available.ok and "no Python 3.11 on this host" in available.reason
    assert "pyenv install 3.11" in available.hint and "options.python" in available.hint
    explicit = LaneConfig("host", "venv", options={"python": "/x/python"}, target=LaneTarget(python="3.11"))
    assert lane_interpreter(explicit, none) == "/x/python"


def test_a_docker_socket_the_user_may_not_use_says_so() -> None:
    lane = LaneConfig("d", "docker", options={"platform": "linux/amd64"})
    host = HostFacts(system="Linux", machine="x86_64", docker=hostfacts.DockerFacts(
        False, "Error while fetching server API version: ('Connection aborted.', PermissionError(13, "
               "'Permission denied'))"))
    available = DockerRunner().availability(lane, host)
    assert not available.ok and "usermod -aG docker" in available.hint


def test_this_hosts_interpreters_are_real_binaries() -> None:
    for version, path in hostfacts.find_interpreters().items():
        assert os.access(path, os.X_OK) and Path(path).read_bytes()[:4] in (b"\x7fELF", b"\xcf\xfa\xed\xfe")
        assert version.startswith("3.")
    assert sys.version_info >= (3, 10)
