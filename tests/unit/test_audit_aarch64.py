"""aarch64: SVE/SVE2 found by encoding, predicted against an Armv8.0 CPU; a real numpy wheel.

(d) the real aarch64 numpy 2.4.6: from the repository's wheel cache or a
staged lane environment when present, else downloaded from PyPI (the one
test here that may use the network; it skips when it cannot).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_fixtures import ARMV8_0, AVX2_HOST, ROOT, targets

from archmatrix.audit import isa
from archmatrix.audit.image import Image, Region
from archmatrix.audit.predict import Prediction, lane_targets, predict
from archmatrix.audit.report import ImageAudit, audit
from archmatrix.command import CommandError, run
from archmatrix.config import parse

NEON = bytes.fromhex("2084a14e")  # add v0.4s, v1.4s, v1.4s
RET = bytes.fromhex("c0035fd6")
PTRUE = bytes.fromhex("e0e39825")  # ptrue p0.s: SVE
MRS_PFR0 = bytes.fromhex("000438d5")  # mrs x0, id_aa64pfr0_el1: reads the SVE field


def arm_image(code: bytes, extra: bytes = b"") -> ImageAudit:
    data = code + extra
    image = Image("elf", "linux", "aarch64", data, code=[Region(0, len(code), 0x10000)])
    return ImageAudit("elf", "linux", "aarch64", [], None, None, isa.scan(image))


def test_sve_is_found_by_its_encoding_space() -> None:
    image = arm_image(NEON + PTRUE + NEON + RET)
    assert image.scan.extensions == {"SVE": 1}
    assert image.scan.examples["SVE"] == "0x10004: ptrue p0.s"
    assert not image.scan.guarded


def test_unguarded_sve_dies_without_sve_and_passes_on_qemu_max() -> None:
    image = arm_image(NEON + PTRUE + RET)
    verdict = predict([image], ARMV8_0)
    assert verdict.prediction is Prediction.ILLEGAL_INSTRUCTION and verdict.extensions == ("SVE",)
    # the default arm64 docker lane, emulated on an x86 host, runs on its Apple silicon profile (no SVE)
    lane = targets()["linux-arm64-docker"]
    assert lane.missing == frozenset({"SVE", "SVE2"})
    assert predict([image], lane).prediction is Prediction.ILLEGAL_INSTRUCTION
    # without a profile binfmt QEMU's "max" CPU has SVE
    plain = parse("lock: {python: '3.11', packages: {numpy: '2.4.6'}}\nlanes:\n"
                  "  - {id: arm, runner: docker, options: {platform: linux/arm64}}\n", Path("m.yaml"))
    [max_lane] = lane_targets(plain.lanes, host=AVX2_HOST)
    assert max_lane.missing == frozenset()
    assert predict([image], max_lane).prediction is Prediction.PASS
    # Apple silicon has no SVE (a Mach-O would be needed there; an ELF is wrong-arch)
    assert predict([image], targets()["macos-arm64"]).prediction is Prediction.WRONG_ARCH


def test_sve_behind_an_id_register_check_is_guarded() -> None:
    image = arm_image(MRS_PFR0 + NEON + PTRUE + RET)
    assert "mrs ID_AA64PFR0/ZFR0_EL1" in image.scan.guards
    assert predict([image], ARMV8_0).prediction is Prediction.GUARDED


def test_getauxval_alone_is_only_a_hint() -> None:
    # libgcc's outline atomics import getauxval into nearly every aarch64 binary
    data = NEON + PTRUE + RET
    image = Image("elf", "linux", "aarch64", data, code=[Region(0, len(data), 0)], imports={"getauxval"})
    scan = isa.scan(image)
    assert scan.hints == ["getauxval"] and not scan.guarded


def test_misaligned_sve_looking_bytes_are_ignored() -> None:
    data = b"\0\0" + PTRUE + b"\0\0"  # not on a 4-byte boundary: not an instruction
    image = Image("elf", "linux", "aarch64", data, code=[Region(0, len(data), 0)])
    assert isa.scan(image).extensions == {}


def _numpy_aarch64(tmp_path: Path) -> Path:
    wheels = sorted((ROOT / ".archmatrix" / "wheels").glob("numpy-2.4.6-cp311-cp311-*aarch64*.whl"))
    if wheels:
        return wheels[0]
    for staged in sorted((ROOT / ".archmatrix" / "site-packages").glob("aarch64-*")):
        if (staged / "numpy").is_dir() and any(staged.glob("numpy-*.dist-info")):
            return staged
    try:
        run(["pip", "download", "--only-binary=:all:", "--platform", "manylinux_2_28_aarch64",
             "--python-version", "3.11", "--no-deps", "numpy==2.4.6", "-d", str(tmp_path)], timeout=300)
    except CommandError as exc:
        pytest.skip(f"no aarch64 numpy wheel cached and the download failed: {exc}")
    return next(tmp_path.glob("numpy-*.whl"))


def test_d_real_aarch64_numpy(tmp_path: Path) -> None:
    source = _numpy_aarch64(tmp_path)
    lanes = targets()
    report = audit([source], [*lanes.values(), ARMV8_0])
    assert report.binaries and all(not b.error for b in report.binaries)
    assert {im.arch for b in report.binaries for im in b.images} == {"aarch64"}
    # an aarch64 ELF environment: the linux/arm64 lanes are the ones audited
    assert {ln.id for ln in report.lanes} == {"linux-arm64-docker", ARMV8_0.id}
    assert not report.failed
    by_name = {Path(b.path).name.split(".")[0]: b for b in report.binaries}
    core = by_name["_multiarray_umath"]
    assert core.dist is not None and core.dist.name == "numpy"
    assert any("scipy_openblas" in lib for lib in core.images[0].links)
    assert core.tag_problems() == []  # glibc it needs ≤ the manylinux tag's
    # OpenBLAS carries SVE kernels (Neoverse V1, A64FX) and picks them at run time
    openblas = next(b for b in report.binaries if "libscipy_openblas" in b.path)
    scan = openblas.images[0].scan
    assert "SVE" in scan.extensions and "OpenBLAS DYNAMIC_ARCH" in scan.guards
    assert openblas.predictions[ARMV8_0.id].prediction is Prediction.GUARDED
    # the same wheel audited for an x86-64 lane does not load at all
    x86 = audit([source], list(lanes.values()), ["linux-x86_64-noavx"])
    assert x86.lane_prediction("linux-x86_64-noavx") is Prediction.WRONG_ARCH
