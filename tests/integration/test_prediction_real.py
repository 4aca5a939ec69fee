"""Predicted macOS cells from real wheels nobody here wrote, downloaded on this (Linux) host.

pyllamacpp 2.4.3 (llama.cpp bindings) ships a ``macosx_10_9_x86_64`` wheel
whose ``_pyllamacpp.so`` is compiled with AVX/AVX2/FMA/F16C throughout and
carries no CPU probe at all (no cpuid, no xgetbv, no ``hw.optional`` sysctl):
under Rosetta 2 before macOS 15 its import dies of SIGILL, as users of x86_64
Pythons on Apple silicon reported ("zsh: illegal hardware instruction python"
on ``from pyllamacpp.model import Model``, nomic-ai/pygpt4all#29). Its
``macosx_10_9_universal2`` wheel's arm64 slice is plain NEON. Also the
default lock: numpy, scipy and scikit-learn select AVX at run time, so both
macOS lanes are predicted ``pass``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import ROOT, require

from archmatrix import config as config_mod
from archmatrix.prediction import predict_lanes, predicts
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import LaneResult

MACOS_LANES = textwrap.dedent("""
    lanes:
      - id: macos-arm64
        runner: macos
        required: false
        options: {arch: arm64}
      - id: macos-x86_64-rosetta
        runner: macos
        required: false
        options: {arch: x86_64}
      - id: macos-x86_64-rosetta15
        runner: macos
        required: false
        options: {arch: x86_64, macos_version: "15.1"}
""")


def _predict(config: config_mod.MatrixConfig, workdir: Path) -> dict[str, LaneResult]:
    lanes = [lane for lane in config.lanes if predicts(lane)]
    results = {r.lane: r for r in predict_lanes(config, lanes, workdir)}
    unreachable = [r.reason for r in results.values() if not r.predicted]
    require(not unreachable, f"pip could not download the macOS wheels here: {unreachable}")
    return results


def test_a_real_avx_only_x86_64_wheel_is_predicted_to_die_under_rosetta(tmp_path: Path,
                                                                      workdir: Path) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_text('lock:\n  python: "3.11"\n  packages:\n    pyllamacpp: "2.4.3"\n' + MACOS_LANES)
    results = _predict(config_mod.load(path), workdir)

    rosetta = results["macos-x86_64-rosetta"].check("wheel.pyllamacpp")
    assert rosetta is not None and rosetta.predicted
    assert rosetta.outcome is Outcome.ILLEGAL_INSTRUCTION, rosetta.message
    assert rosetta.evidence["wheel"] == "pyllamacpp-2.4.3-cp311-cp311-macosx_10_9_x86_64.whl"
    assert rosetta.evidence["binary"] == "_pyllamacpp.cpython-311-darwin.so"
    assert rosetta.evidence["slice"] == "x86_64"
    assert "with no CPU dispatch" in rosetta.evidence["reason"] and "AVX" in rosetta.evidence["reason"]
    assert rosetta.evidence["instruction"].split(": ", 1)[1].startswith("v")  # a VEX instruction

    arm = results["macos-arm64"].check("wheel.pyllamacpp")
    assert arm is not None and arm.predicted and arm.outcome is Outcome.PASS, arm.message
    assert arm.evidence["wheel"] == "pyllamacpp-2.4.3-cp311-cp311-macosx_10_9_universal2.whl"

    # macOS 15's Rosetta executes AVX/AVX2/FMA/F16C: the same wheel loads there
    new = results["macos-x86_64-rosetta15"].check("wheel.pyllamacpp")
    assert new is not None and new.outcome is Outcome.PASS, new.message


def test_the_default_lock_is_predicted_to_pass_in_both_macos_lanes(tmp_path: Path, workdir: Path) -> None:
    default = config_mod.load(ROOT / "src" / "archmatrix" / "resources" / "matrix.yaml")
    results = _predict(default, workdir)
    assert set(results) == {"macos-arm64", "macos-x86_64-rosetta"}
    for lane in results.values():
        assert lane.predicted and all(c.predicted for c in lane.checks)
        assert {c.id for c in lane.checks} == {f"wheel.{name}" for name in default.lock.packages}
        for name in ("numpy", "scipy", "scikit-learn"):
            cell = lane.check(f"wheel.{name}")
            assert cell is not None and cell.outcome is Outcome.PASS, (lane.lane, cell)
            assert cell.evidence["wheel"].startswith(name.replace("-", "_"))
    numpy = results["macos-x86_64-rosetta"].check("wheel.numpy")
    assert numpy is not None and "select newer instructions at run time" in numpy.evidence["reason"]
