"""Shared by the test_audit_* modules: compile tests/fixtures/audit/*.c and describe lanes.

The binaries are built by the tests with the system compiler, through
archmatrix.command.run, so nothing binary is committed.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import pytest

from archmatrix.audit.predict import NO_SVE, HostCpu, LaneTarget, default_lanes, lane_targets
from archmatrix.command import run

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "audit"
# A host like this one: an x86-64 Linux machine with AVX2 (but no AMX).
AVX2_HOST = HostCpu("linux", "x86_64", frozenset({"AVX-512", "AMX"}))


def need_x86_gcc() -> str:
    """gcc that builds x86-64 code, or skip: the fixtures use x86 intrinsics."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the audit fixtures (apt-get install gcc)")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip(f"the audit fixtures are x86-64 code; this host is {platform.machine()}")
    return gcc


def build(out_dir: Path, source: str, *flags: str, name: str | None = None) -> Path:
    compiler = need_x86_gcc()
    if source.endswith(".cpp"):  # C++ function multiversioning needs the C++ front end
        compiler = shutil.which("g++") or pytest.skip("g++ is needed for the C++ audit fixtures")
    out = out_dir / (name or Path(source).with_suffix(".so").name)
    run([compiler, "-shared", "-fPIC", "-O2", *flags, str(FIXTURES / source), "-o", str(out)])
    return out


def targets(host: HostCpu = AVX2_HOST) -> dict[str, LaneTarget]:
    """The default lanes as the audit sees them, on a Linux host with ``host``'s CPU."""
    return {t.id: t for t in lane_targets(default_lanes(), host=host)}


ARMV8_0 = LaneTarget("linux-arm64-armv8.0", "linux", "aarch64", NO_SVE, "qemu cortex-a72 (armv8.0)")
