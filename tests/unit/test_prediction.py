"""Predicted macOS cells from wheels built here byte by byte (Mach-O, as test_audit_macho builds them).

No Mac and no registry: the wheels are written by the tests, and the one test
that asks pip for them gives it a local directory of wheels as the only index.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from audit_fixtures import AVX2_HOST
from test_audit_macho import ARM64_CODE, CPU_ARM64, CPU_X86_64, X86_CODE, fat, thin

from archmatrix import config as config_mod
from archmatrix.audit.predict import LaneTarget, lane_target
from archmatrix.matrix import build
from archmatrix.model import LaneConfig
from archmatrix.prediction import predict_lanes
from archmatrix.prediction.cells import audit_wheel, cell, library_index
from archmatrix.render import badges, github, junit, markdown, terminal
from archmatrix.render.table import cell_text
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus
from archmatrix.summary import summarise

AVX512_CODE = bytes.fromhex("62f17d48fec1" "c3")  # vpaddd zmm0, zmm0, zmm1; ret
PLAIN_X86 = bytes.fromhex("4801c8" "c3")  # add rax, rcx; ret
SYSTEM = "/usr/lib/libSystem.B.dylib"  # links nothing a lane could miss

ARM = LaneConfig("macos-arm64", "macos", required=False, options={"arch": "arm64"})
ROSETTA = LaneConfig("macos-x86_64-rosetta", "macos", required=False, options={"arch": "x86_64"})
ROSETTA15 = LaneConfig("macos-x86_64-rosetta", "macos", required=False,
                       options={"arch": "x86_64", "macos_version": "15.1"})
ARM15 = LaneConfig("macos-arm64", "macos", required=False, options={"arch": "arm64", "macos_version": "15.1"})


def target(lane: LaneConfig) -> LaneTarget:
    t = lane_target(lane, AVX2_HOST)
    assert t is not None
    return t


def wheel(directory: Path, name: str, tag: str, members: dict[str, bytes], version: str = "1.0") -> Path:
    path = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(f"{name}-{version}.dist-info/WHEEL", f"Wheel-Version: 1.0\nTag: {tag}\n")
        zf.writestr(f"{name}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\n"
                                                             f"Version: {version}\n")
        zf.writestr(f"{name}-{version}.dist-info/RECORD", "")
    return path


def predicted(path: Path, lane: LaneConfig, macos: tuple[int, int] = (14, 7)) -> CheckResult:
    t = target(lane)
    facts = audit_wheel(path, [t])
    return cell(path.name.split("-")[0], "1.0", facts, t, macos_version=macos, libs=library_index([facts]))


def test_x86_64_only_library_in_an_arm64_wheel_is_wrong_arch(tmp_path: Path) -> None:
    path = wheel(tmp_path, "fastpkg", "cp311-cp311-macosx_11_0_arm64", {
        "fastpkg/_ext.cpython-311-darwin.so": thin(CPU_ARM64, ARM64_CODE, dylib=SYSTEM),
        "fastpkg/.dylibs/libhelper.dylib": fat((CPU_X86_64, thin(CPU_X86_64, PLAIN_X86, dylib=SYSTEM))),
    })
    c = predicted(path, ARM)
    assert (c.id, c.outcome, c.predicted) == ("wheel.fastpkg", Outcome.WRONG_ARCH, True)
    assert c.evidence["wheel"] == path.name
    assert c.evidence["binary"] == "fastpkg/.dylibs/libhelper.dylib"
    assert "x86_64 Mach-O" in c.evidence["reason"] and "aarch64" in c.evidence["reason"]
    # the same wheel read for the Rosetta lane: the extension has no x86_64 slice
    assert predicted(path, ROSETTA).outcome is Outcome.WRONG_ARCH


def test_unguarded_avx2_dies_under_rosetta2_and_runs_under_macos15_rosetta(tmp_path: Path) -> None:
    avx2 = thin(CPU_X86_64, X86_CODE, minos=(10, 9), dylib=SYSTEM)
    path = wheel(tmp_path, "fastpkg", "cp311-cp311-macosx_10_9_x86_64",
                 {"fastpkg/_ext.cpython-311-darwin.so": avx2})
    old = predicted(path, ROSETTA)
    assert old.outcome is Outcome.ILLEGAL_INSTRUCTION and old.predicted
    assert old.evidence["binary"] == "fastpkg/_ext.cpython-311-darwin.so"
    assert old.evidence["slice"] == "x86_64"
    assert old.evidence["instruction"] == "0x400: vpaddd ymm0, ymm0, ymm1"
    assert "AVX2 with no CPU dispatch" in old.evidence["reason"]
    assert "macOS 11-14" in old.evidence["cpu"]
    new = predicted(path, ROSETTA15, (15, 1))
    assert new.outcome is Outcome.PASS and new.predicted
    assert "macOS 15" in new.evidence["cpu"]


def test_unguarded_avx512_dies_under_both_rosetta_profiles(tmp_path: Path) -> None:
    path = wheel(tmp_path, "widepkg", "cp311-cp311-macosx_10_9_x86_64",
                 {"widepkg/_ext.cpython-311-darwin.so": thin(CPU_X86_64, AVX512_CODE, minos=(10, 9),
                                                                           dylib=SYSTEM)})
    for lane, macos in ((ROSETTA, (14, 7)), (ROSETTA15, (15, 1))):
        c = predicted(path, lane, macos)
        assert c.outcome is Outcome.ILLEGAL_INSTRUCTION, lane.options
        assert c.evidence["instruction"] == "0x400: vpaddd zmm0, zmm0, zmm1"
        assert "AVX-512" in c.evidence["reason"]


def test_a_minimum_macos_above_the_lanes_is_its_own_failure(tmp_path: Path) -> None:
    path = wheel(tmp_path, "newpkg", "cp311-cp311-macosx_11_0_arm64",
                 {"newpkg/_ext.cpython-311-darwin.so": thin(CPU_ARM64, ARM64_CODE, minos=(15, 0),
                                                                          dylib=SYSTEM)})
    c = predicted(path, ARM)
    assert c.outcome is Outcome.IMPORT_ERROR
    assert c.evidence["reason"] == ("built for macOS 15.0, newer than the lane's macOS 14.7: "
                                    "dyld refuses to load it")
    assert predicted(path, ARM15, (15, 1)).outcome is Outcome.PASS


def test_a_homebrew_fortran_runtime_linked_from_an_arm64_binary_is_a_blas_load_risk(tmp_path: Path) -> None:
    path = wheel(tmp_path, "fortpkg", "cp311-cp311-macosx_11_0_arm64", {
        "fortpkg/_flib.cpython-311-darwin.so": thin(
            CPU_ARM64, ARM64_CODE, dylib="/usr/local/opt/gcc/lib/gcc/current/libgfortran.5.dylib")})
    c = predicted(path, ARM)
    assert c.outcome is Outcome.BLAS_LOAD
    assert "Intel Homebrew path (x86_64)" in c.evidence["reason"]
    # the same library shipped in the wheel (with an arm64 slice) loads
    ok = wheel(tmp_path / "ok", "fortpkg", "cp311-cp311-macosx_11_0_arm64", {
        "fortpkg/_flib.cpython-311-darwin.so": thin(CPU_ARM64, ARM64_CODE,
                                                    dylib="@loader_path/.dylibs/libgfortran.5.dylib"),
        "fortpkg/.dylibs/libgfortran.5.dylib": thin(CPU_ARM64, ARM64_CODE, dylib=SYSTEM),
    }) if (tmp_path / "ok").mkdir() is None else None
    assert ok is not None and predicted(ok, ARM).outcome is Outcome.PASS


def test_a_pure_python_wheel_passes_and_says_why(tmp_path: Path) -> None:
    c = predicted(wheel(tmp_path, "purepkg", "py3-none-any", {}), ARM)
    assert c.outcome is Outcome.PASS and c.evidence["reason"] == "pure Python: no native code"


def test_readings_are_cached_by_wheel(tmp_path: Path) -> None:
    path = wheel(tmp_path, "fastpkg", "cp311-cp311-macosx_10_9_x86_64",
                 {"fastpkg/_ext.cpython-311-darwin.so": thin(CPU_X86_64, X86_CODE, dylib=SYSTEM)})
    cache = tmp_path / "cache"
    first = audit_wheel(path, [target(ROSETTA)], cache)
    assert len(list(cache.glob("*.json"))) == 1
    assert audit_wheel(path, [target(ROSETTA)], cache) == first
    # another CPU is added to the same entry
    both = audit_wheel(path, [target(ROSETTA15)], cache)
    assert set(both.binaries[0].verdicts) == {*first.binaries[0].verdicts, *both.binaries[0].verdicts}
    assert len(both.binaries[0].verdicts) == 2


# --- through pip, with a local directory of wheels as the only index ------------------------------


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip's whole configuration replaced by one directory of wheels (no network, no host config)."""
    index = tmp_path / "index"
    index.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for key in [k for k in os.environ if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    return index


def _config(tmp_path: Path, required: bool = False) -> config_mod.MatrixConfig:
    path = tmp_path / "matrix.yaml"
    path.write_text(f"""
lock:
  python: "3.11"
  packages:
    fastpkg: "1.0"
    purepkg: "1.0"
lanes:
  - id: macos-arm64
    runner: macos
    required: {str(required).lower()}
    options: {{arch: arm64}}
  - id: macos-x86_64-rosetta
    runner: macos
    required: {str(required).lower()}
    options: {{arch: x86_64}}
""")
    return config_mod.load(path)


def test_no_arm64_wheel_in_the_index_is_no_wheel(tmp_path: Path, local_index: Path) -> None:
    wheel(local_index, "fastpkg", "cp311-cp311-macosx_10_9_x86_64",
          {"fastpkg/_ext.cpython-311-darwin.so": thin(CPU_X86_64, X86_CODE, minos=(10, 9), dylib=SYSTEM)})
    wheel(local_index, "purepkg", "py3-none-any", {})
    cfg = _config(tmp_path)
    reasons = {"macos-arm64": ("needs macOS", "use a Mac"), "macos-x86_64-rosetta": ("needs macOS", "")}
    arm, rosetta = predict_lanes(cfg, cfg.lanes, tmp_path / "work", reasons=reasons, host_cpu=AVX2_HOST,
                                 host_glibc=(2, 36))
    for lane in (arm, rosetta):
        assert lane.predicted and lane.status == LaneStatus.SKIPPED and lane.reason == "needs macOS"
        assert all(c.predicted for c in lane.checks)
        assert [c.id for c in lane.checks] == ["wheel.fastpkg", "wheel.purepkg"]
    no_wheel = arm.check("wheel.fastpkg")
    assert no_wheel is not None and no_wheel.outcome is Outcome.NO_WHEEL
    assert "macOS 14.7 arm64" in no_wheel.message and "from source" in no_wheel.evidence["reason"]
    assert "fastpkg==1.0" in no_wheel.evidence["pip"]
    sigill = rosetta.check("wheel.fastpkg")
    assert sigill is not None and sigill.outcome is Outcome.ILLEGAL_INSTRUCTION
    assert sigill.evidence["wheel"] == "fastpkg-1.0-cp311-cp311-macosx_10_9_x86_64.whl"
    assert rosetta.facts["machine"] == "x86_64" and arm.facts["machine"] == "arm64"
    # only downloads: the wheels are in the cache, nothing was installed
    assert sorted(p.name for p in (tmp_path / "work" / "wheels").glob("*.whl")) == [
        "fastpkg-1.0-cp311-cp311-macosx_10_9_x86_64.whl", "purepkg-1.0-py3-none-any.whl"]


# --- how a predicted cell is shown --------------------------------------------------------------


def _predicted_lane(outcome: Outcome, required: bool = True) -> LaneResult:
    lane = LaneResult("macos-x86_64-rosetta", "macos", LaneStatus.SKIPPED, "needs macOS on Apple Silicon",
                      required=required, predicted=True, facts={"os": "macOS", "machine": "x86_64"})
    lane.checks = [CheckResult("wheel.numpy", Outcome.PASS, predicted=True, message="predicted pass: …"),
                   CheckResult("wheel.fastpkg", outcome, predicted=True,
                               message=f"predicted {outcome.value}: x",
                               evidence={"wheel": "fastpkg-1.0.whl", "binary": "fastpkg/_ext.so",
                                         "slice": "x86_64", "instruction": "0x400: vpaddd ymm0, ymm0, ymm1",
                                         "reason": "AVX2 with no CPU dispatch"})]
    return lane


def _observed() -> LaneResult:
    return LaneResult("host", "venv", checks=[CheckResult("wheel.numpy", Outcome.PASS)])


def test_predicted_cells_have_their_own_glyph_and_word_everywhere() -> None:
    matrix = build([_observed(), _predicted_lane(Outcome.ILLEGAL_INSTRUCTION)])
    assert cell_text(matrix.cell("macos-x86_64-rosetta", "wheel.numpy")) == "◇ pass (predicted)"
    assert cell_text(matrix.cell("host", "wheel.numpy")) == "✔ pass"
    text = terminal.render(matrix)
    # (a terminal column wraps the longer one before "(predicted)")
    assert "◇ pass (predicted)" in text and "◇ illegal-instruction" in text and text.count("(predicted)") == 2
    assert summarise(matrix.lanes[1], {}).status_text == "1/2 predicted pass (not run), 1 predicted to fail"
    assert "not run, ◇ cells predicted from its wheels" in text
    md = markdown.render(matrix)
    assert "◇ pass (predicted)" in md and "◇ illegal-instruction (predicted)" in md
    assert summarise(matrix.lanes[1], {}).rows["how"] == "predicted, not run"


def test_a_predicted_failure_is_a_warning_and_a_skipped_junit_case_never_an_error() -> None:
    matrix = build([_observed(), _predicted_lane(Outcome.ILLEGAL_INSTRUCTION)])
    commands = github.workflow_commands(matrix)
    assert not any(c.startswith("::error") for c in commands)
    warning = next(c for c in commands if c.startswith("::warning"))
    assert "illegal-instruction (predicted)" in warning and "not run here" in warning
    assert "1 predicted, not run (1 predicted failures)" in commands[-1]
    xml = junit.render(matrix)
    assert 'failures="0"' in xml and 'errors="0"' in xml
    assert 'message="predicted illegal-instruction (not run): predicted illegal-instruction: x"' in xml
    assert '<property name="instruction" value="0x400: vpaddd ymm0, ymm0, ymm1"' in xml


def test_badges_say_predicted_in_their_own_colours() -> None:
    assert badges.lane_message(_predicted_lane(Outcome.PASS)) == ("predicted pass", "blue")
    assert badges.lane_message(_predicted_lane(Outcome.ILLEGAL_INSTRUCTION)) == (
        "predicted illegal-instruction", "purple")
    overall = badges.overall_badge(build([_observed(), _predicted_lane(Outcome.PASS)]))
    assert overall.message == "1/1 lanes"  # a predicted lane is not a lane that ran


def test_a_required_lane_that_did_not_run_never_counts_as_passed() -> None:
    ran = _observed()
    skipped = LaneResult("macos-x86_64-rosetta", "macos", LaneStatus.SKIPPED, "needs macOS", required=True)
    for predicted_lane in (_predicted_lane(Outcome.PASS), _predicted_lane(Outcome.ILLEGAL_INSTRUCTION)):
        # exactly the exit status of the same matrix without predictions
        assert build([ran, predicted_lane]).exit_code() == build([ran, skipped]).exit_code()


def test_on_a_mac_only_a_disagreement_between_prediction_and_observation_is_shown() -> None:
    from archmatrix.prediction import disagreements

    observed = LaneResult("macos-x86_64-rosetta", "macos", checks=[
        CheckResult("wheel.numpy", Outcome.PASS), CheckResult("import.numpy", Outcome.PASS),
        CheckResult("wheel.fastpkg", Outcome.PASS),
        CheckResult("import.sklearn", Outcome.ILLEGAL_INSTRUCTION)])
    guess = LaneResult("macos-x86_64-rosetta", "macos", LaneStatus.SKIPPED, predicted=True, checks=[
        CheckResult("wheel.numpy", Outcome.PASS, predicted=True),
        CheckResult("wheel.fastpkg", Outcome.ILLEGAL_INSTRUCTION, predicted=True,
                    evidence={"reason": "AVX2"}),
        CheckResult("wheel.scikit-learn", Outcome.PASS, predicted=True, evidence={"reason": "dispatch"})])
    found = disagreements(observed, guess)
    assert [w.id for w in found] == ["prediction-disagrees", "prediction-disagrees"]
    assert found[0].message == "fastpkg: predicted illegal-instruction (AVX2), observed pass in wheel.fastpkg"
    assert found[1].message == ("scikit-learn: predicted pass (dispatch), observed illegal-instruction in "
                                "import.sklearn")
    assert disagreements(guess, guess) == []  # predicted cells are never the observation


def test_matrix_predicts_the_macos_lanes_this_host_cannot_run(tmp_path: Path, local_index: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import platform as platform_mod

    from archmatrix.cli import main

    if platform_mod.system() == "Darwin":
        pytest.skip("on a Mac the macOS lanes may run")
    wheel(local_index, "fastpkg", "cp311-cp311-macosx_10_9_x86_64",
          {"fastpkg/_ext.cpython-311-darwin.so": thin(CPU_X86_64, X86_CODE, minos=(10, 9), dylib=SYSTEM)})
    wheel(local_index, "purepkg", "py3-none-any", {})
    cfg = _config(tmp_path, required=True).path
    common = ["--config", str(cfg), "--workdir", str(tmp_path / "work"), "--no-probes"]
    without = main(["matrix", *common, "--results", str(tmp_path / "plain"), "--no-predict"])
    capsys.readouterr()
    code = main(["matrix", *common, "--results", str(tmp_path / "res")])
    out = capsys.readouterr().out
    assert code == without  # a required lane that did not run is what it was: never a pass
    assert "◇ no-wheel (predicted)" in out and "◇ pass (predicted)" in out
    data = json.loads((tmp_path / "res" / "macos-x86_64-rosetta.json").read_text())
    assert data["predicted"] is True and data["status"] == "skipped"
    assert all(c["predicted"] is True for c in data["checks"])
    assert "predicted" not in json.loads((tmp_path / "plain" / "macos-arm64.json").read_text())
    # only predictions: a predicted failure in a required lane fails the pre-flight
    assert main(["matrix", *common, "--results", str(tmp_path / "pre"), "--predict-only"]) == 1


def test_audit_compare_never_takes_predicted_cells_for_observed_ones(tmp_path: Path) -> None:
    from archmatrix.audit.render import compare
    from archmatrix.audit.report import audit

    path = wheel(tmp_path, "fastpkg", "cp311-cp311-macosx_10_9_x86_64",
                 {"fastpkg/_ext.cpython-311-darwin.so": thin(CPU_X86_64, X86_CODE, dylib=SYSTEM)})
    report = audit([path], [target(ROSETTA)])
    [row] = compare(report, build([_predicted_lane(Outcome.ILLEGAL_INSTRUCTION)]))
    assert (row.actual, row.agree) == ("not run (skipped, cells predicted)", None)


def test_your_own_universal2_wheel_is_predicted_per_slice(tmp_path: Path, local_index: Path) -> None:
    wheel(local_index, "purepkg", "py3-none-any", {})
    own = tmp_path / "dist"
    own.mkdir()
    universal2 = fat((CPU_X86_64, thin(CPU_X86_64, X86_CODE, dylib=SYSTEM)),
                     (CPU_ARM64, thin(CPU_ARM64, ARM64_CODE, dylib=SYSTEM)))
    wheel(own, "mypkg", "cp311-cp311-macosx_11_0_universal2",
          {"mypkg/_ext.cpython-311-darwin.so": universal2}, version="0.3")
    path = tmp_path / "matrix.yaml"
    path.write_text('lock:\n  python: "3.11"\n  packages: {purepkg: "1.0"}\n  wheels: [dist]\nlanes:\n'
                    '  - {id: macos-arm64, runner: macos, options: {arch: arm64}}\n'
                    '  - {id: macos-x86_64-rosetta, runner: macos, options: {arch: x86_64}}\n')
    cfg = config_mod.load(path)
    arm, rosetta = predict_lanes(cfg, cfg.lanes, tmp_path / "work", host_cpu=AVX2_HOST, host_glibc=(2, 36))
    assert [(c.id, c.outcome) for c in arm.checks] == [("wheel.mypkg", Outcome.PASS),
                                                       ("wheel.purepkg", Outcome.PASS)]
    mine = rosetta.check("wheel.mypkg")
    assert mine is not None and mine.outcome is Outcome.ILLEGAL_INSTRUCTION
    assert mine.metrics == {"version": "0.3"} and rosetta.facts["packages"]["mypkg"] == "0.3"


def test_a_predicted_lane_does_not_make_every_check_row_notable() -> None:
    host = LaneResult("host", "venv", facts={"os": "Linux", "machine": "x86_64"}, checks=[
        CheckResult("wheel.numpy", Outcome.PASS), CheckResult("linalg.solve", Outcome.PASS)])
    matrix = build([host, _predicted_lane(Outcome.PASS)])
    text = terminal.render(matrix)
    assert "linalg.solve" not in text  # passed where it ran; the predicted lane never runs it
    assert "1 more check not shown: ✔ pass in every lane that ran" in text
    assert "wheel.numpy" in text  # a predicted pass is shown: it is not an observed one
    md = markdown.render(matrix, rows="notable")
    assert "linalg.solve" not in md and "pass in every lane that ran" in md
