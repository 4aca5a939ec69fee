"""Run-time CPU dispatch as real libraries do it, one pattern per test, on shared objects the tests compile.

Only code with no CPU probe at all predicts an illegal instruction; code a
library selects itself is ``guarded``; a probe the audit cannot tie to the
code is ``unknown`` (a warning, not a predicted failure). The no-AVX lane is
qemu's Westmere: no AVX, AVX2, FMA, BMI. (Issue 15: pillow's vendored zstd,
BMI2 behind its own cpuid probe, was predicted to die there, and runs.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_fixtures import build, targets

from archmatrix.audit import elf, isa
from archmatrix.audit.predict import QEMU_MODEL_MISSING, LaneTarget, Prediction, predict
from archmatrix.audit.render import render
from archmatrix.audit.report import ImageAudit, audit
from archmatrix.rootcause import audit_scan

NOAVX = "linux-x86_64-noavx"
# numpy >= 2.4's x86-64 wheels need x86-64-v2; qemu's default qemu64 model lacks it
QEMU64 = LaneTarget("linux-x86_64-v1", "linux", "x86_64", QEMU_MODEL_MISSING["qemu64"], "qemu qemu64")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("audit-dispatch")
    return {
        "clones": build(out, "avx2_clones.c", "-s", name="clones_stripped.so"),
        "builtin": build(out, "avx2_dispatch.c"),
        "ifunc": build(out, "ifunc_resolver.c", "-s", name="ifunc_stripped.so"),
        "fmv": build(out, "fmv.cpp"),
        "own": build(out, "own_cpuid.c"),
        "own_stripped": build(out, "own_cpuid.c", "-s", name="own_cpuid_stripped.so"),
        "leaf_unreadable": build(out, "own_cpuid.c", "-DLEAF_FROM_MEMORY", name="leaf_unreadable.so"),
        "leaf_0": build(out, "own_cpuid.c", "-DPROBE_LEAF=0", "-mbmi2", name="leaf_0.so"),
        "spread": build(out, "own_cpuid.c", "-DSPREAD", "-mbmi2", name="spread.so"),
        "baseline": build(out, "baseline.c"),
        "xgetbv_dispatch": build(out, "xgetbv_probe.c", "-s", name="xgetbv_dispatch.so"),
        "xgetbv_throughout": build(out, "xgetbv_probe.c", "-DTHROUGHOUT", "-mavx2", "-s",
                                   name="xgetbv_throughout.so"),
        "xgetbv_mostly_integer": build(out, "xgetbv_probe.c", "-DTHROUGHOUT", "-DINTEGER_CODE", "-mavx2",
                                       "-s", name="xgetbv_mostly_integer.so"),
    }


def scanned(path: Path) -> ImageAudit:
    image = elf.parse(path.read_bytes())
    return ImageAudit(image.format, image.os, image.arch, image.needed, image.glibc, image.min_macos,
                      isa.scan(image))


def noavx(path: Path) -> tuple[Prediction, str]:
    verdict = predict([scanned(path)], targets()[NOAVX])
    return verdict.prediction, verdict.reason


def test_target_clones_resolved_by_an_ifunc_is_guarded(built: dict[str, Path]) -> None:
    image = scanned(built["clones"])  # stripped: only .dynsym's STT_GNU_IFUNC is left
    # (the auto-vectorised clone's loop is scalar AVX here: vmulss)
    assert {"AVX", "AVX2"} & set(image.scan.extensions) and "ifunc" in image.scan.guards
    assert noavx(built["clones"])[0] is Prediction.GUARDED


def test_builtin_cpu_supports_reads_libgccs_cpu_model(built: dict[str, Path]) -> None:
    image = scanned(built["builtin"])
    assert "libgcc __cpu_model" in image.scan.guards
    assert noavx(built["builtin"])[0] is Prediction.GUARDED


def test_hand_written_ifunc_resolver_is_guarded_when_stripped(built: dict[str, Path]) -> None:
    image = scanned(built["ifunc"])
    assert image.scan.guards[:1] == ["ifunc"] and "AVX2" in image.scan.extensions
    assert noavx(built["ifunc"])[0] is Prediction.GUARDED


def test_cpp_function_multiversioning_is_guarded(built: dict[str, Path]) -> None:
    image = scanned(built["fmv"])
    assert {"ifunc", "libgcc __cpu_model"} <= set(image.scan.guards)
    assert noavx(built["fmv"])[0] is Prediction.GUARDED


@pytest.mark.parametrize("key", ["own", "own_stripped"])
def test_a_librarys_own_cpuid_probe_guarding_a_target_variant(built: dict[str, Path], key: str) -> None:
    """zstd's pattern: cpuid leaf 7, then a target("bmi2") function; no libgcc, no ifunc, no xgetbv."""
    scan = scanned(built[key]).scan
    assert scan.guards == []  # none of the machine-wide markers: the old audit called this unguarded
    assert 7 in scan.cpuid_leaves and "BMI" in scan.extensions
    assert scan.guard_status("BMI")[0] == isa.GUARDED
    prediction, reason = noavx(built[key])
    assert prediction is Prediction.GUARDED
    assert "cpuid leaf 7 probe" in reason and "BMI code in 1 of" in reason


def test_a_probe_of_an_unreadable_leaf_is_unknown_not_a_failure(built: dict[str, Path]) -> None:
    scan = scanned(built["leaf_unreadable"]).scan
    assert scan.cpuid_unknown and not scan.cpuid_leaves
    prediction, reason = noavx(built["leaf_unreadable"])
    assert prediction is Prediction.UNKNOWN and not prediction.failed
    assert "cannot read" in reason


def test_a_probe_of_another_leaf_does_not_guard_code_built_for_bmi2(built: dict[str, Path]) -> None:
    """cpuid leaf 0 (the vendor string) says nothing about BMI2: compiled with -mbmi2, it dies."""
    assert scanned(built["leaf_0"]).scan.cpuid_leaves == {0}
    prediction, reason = noavx(built["leaf_0"])
    assert prediction is Prediction.ILLEGAL_INSTRUCTION
    assert "BMI with no CPU dispatch, e.g. 0x" in reason


def test_a_probe_with_the_extension_everywhere_is_unknown(built: dict[str, Path]) -> None:
    scan = scanned(built["spread"]).scan
    assert 7 in scan.cpuid_leaves
    assert len(scan.functions["BMI"]) > isa.CONFINED_SHARE * scan.function_count
    prediction, reason = noavx(built["spread"])
    assert prediction is Prediction.UNKNOWN and "but BMI code in" in reason


def test_unknown_is_a_warning_and_exit_0(built: dict[str, Path], tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.mkdir()
    (env / "probe.so").write_bytes(built["leaf_unreadable"].read_bytes())
    (env / "zstd_like.so").write_bytes(built["own_stripped"].read_bytes())
    report = audit([env], list(targets().values()), [NOAVX])
    assert report.lane_prediction(NOAVX) is Prediction.UNKNOWN
    assert not report.failed
    text = render(report)
    assert f"warning: {NOAVX}: probe.so: unknown: BMI code and a CPU probe" in text
    assert "zstd_like.so" in text and "yes: cpuid leaf 7 probe" in text


def test_a_cpu_below_the_packages_baseline(built: dict[str, Path], tmp_path: Path) -> None:
    """numpy >= 2.4 says in its own text it is built for X86_V2: qemu64 lacks SSE4.2/POPCNT."""
    site = tmp_path / "site-packages"
    (site / "numpy" / "_core").mkdir(parents=True)
    (site / "numpy" / "_core" / "_multiarray_umath.so").write_bytes(built["baseline"].read_bytes())
    info = site / "numpy-2.4.6.dist-info"
    info.mkdir()
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_27_x86_64\n")
    (info / "RECORD").write_text("numpy/_core/_multiarray_umath.so,,\n")
    report = audit([site], [*targets().values(), QEMU64], [NOAVX, QEMU64.id])
    [binary] = report.binaries
    assert binary.images[0].scan.baseline == "x86-64-v2"
    below = binary.predictions[QEMU64.id]
    assert below.prediction is Prediction.ILLEGAL_INSTRUCTION
    assert below.reason.startswith("this CPU is below numpy's baseline x86-64-v2")
    assert binary.predictions[NOAVX].prediction is Prediction.PASS  # Westmere has SSE4.2 and POPCNT
    assert report.failed


def test_xgetbv_in_a_library_built_for_avx2_throughout_is_not_guarded(built: dict[str, Path]) -> None:
    """xgetbv asks only whether the OS saves AVX state: Rust's std, abseil or one kernel's check put it in
    binaries compiled with -mavx2 throughout, which die without AVX2 (tensorflow-io was feared to be one)."""
    prediction, reason = noavx(built["xgetbv_throughout"])
    assert prediction is Prediction.UNKNOWN and not prediction.failed  # a warning: the matrix decides
    assert "xgetbv probe, but AVX2 code in" in reason
    scan = scanned(built["xgetbv_throughout"]).scan
    assert scan.guard_status("AVX2")[0] == isa.UNKNOWN
    assert "xgetbv" in scan.hints and scan.guards == []  # a probe, not machine-wide dispatch evidence
    assert len(scan.functions["AVX2"]) > isa.CONFINED_SHARE * scan.function_count


def test_built_for_avx2_throughout_with_avx2_in_few_functions_is_not_guarded(built: dict[str, Path]) -> None:
    """Mostly integer code: AVX2 in under a quarter of the functions (pyllamacpp's -mavx2 macOS build has
    AVX in 23 %, faiss's dispatched kernels are in 24 %). What tells them apart: a compiler building
    for AVX leaves no legacy SSE (pyllamacpp: 0 to 12 000 VEX), a baseline build keeps it (faiss:
    13 700 to 22 600 VEX in the same sample)."""
    prediction, reason = noavx(built["xgetbv_mostly_integer"])
    assert prediction is Prediction.UNKNOWN and not prediction.failed
    assert "no legacy SSE code: built for AVX throughout" in reason
    scan = scanned(built["xgetbv_mostly_integer"]).scan
    assert len(scan.functions["AVX2"]) <= isa.CONFINED_SHARE * scan.function_count  # confined by the share
    assert scan.legacy_sse == 0 and scan.vex_vector >= isa.MIN_VEX and scan.built_for_avx


def test_xgetbv_with_one_target_avx2_function_stays_guarded(built: dict[str, Path]) -> None:
    """The library's own check (cpuid of a leaf the audit cannot read, then xgetbv) before its one
    target("avx2") function: the AVX2 code is confined, so the probe guards it."""
    prediction, reason = noavx(built["xgetbv_dispatch"])
    assert prediction is Prediction.GUARDED and "xgetbv probe; AVX2 code in 1 of" in reason
    scan = scanned(built["xgetbv_dispatch"]).scan
    assert "xgetbv" in scan.hints and scan.guards == [] and scan.cpuid_unknown and not scan.built_for_avx
    assert scan.guard_status("AVX2") == (isa.GUARDED,
                                         f"xgetbv probe; AVX2 code in 1 of {scan.function_count} functions")


def test_root_cause_names_the_avx2_throughout_library_not_the_dispatching_one(built: dict[str, Path]) -> None:
    """After a real illegal instruction, the binaries the audit calls guarded are not suspects."""
    throughout, dispatch = audit_scan(built["xgetbv_throughout"]), audit_scan(built["xgetbv_dispatch"])
    assert throughout is not None and dispatch is not None
    assert "AVX2" in throughout.extensions and not throughout.guarded
    assert "AVX2" in dispatch.extensions and dispatch.guarded
