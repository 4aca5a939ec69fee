"""Mach-O: thin files and fat (universal2) files, built here byte by byte (there is no Mac).

(e) a fat file with an x86_64 and an arm64 slice, each with LC_BUILD_VERSION
minos 11.0, an LC_LOAD_DYLIB of libomp and a __text section: the x86_64
slice executes AVX2 unconditionally, the arm64 slice is plain NEON.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from audit_fixtures import targets

from archmatrix.audit import binaries, isa, macho
from archmatrix.audit.predict import Prediction
from archmatrix.audit.report import audit

CPU_X86_64, CPU_ARM64 = 0x01000007, 0x0100000C
TEXT_OFFSET = 0x400
X86_CODE = bytes.fromhex("c5fdfec1" "c5fdfec2" "c3")  # vpaddd ymm0, ymm0, ymm1; vpaddd …, ymm2; ret
ARM64_CODE = bytes.fromhex("2084a14e" "c0035fd6")  # add v0.4s, v1.4s, v1.4s; ret


def _padded(data: bytes, to: int = 8) -> bytes:
    return data + b"\0" * (-len(data) % to)


def thin(cputype: int, code: bytes, *, minos: tuple[int, int] | None = (11, 0),
         version_min: tuple[int, int] | None = None, dylib: str = "@rpath/libomp.dylib") -> bytes:
    """A minimal MH_DYLIB: __TEXT with one __text section, and the load commands the audit reads."""
    commands = []
    section = struct.pack("<16s16sQQIIIIIIII", b"__text", b"__TEXT", TEXT_OFFSET, len(code), TEXT_OFFSET,
                          2, 0, 0, 0x80000400, 0, 0, 0)
    commands.append(struct.pack("<II16sQQQQiiII", 0x19, 72 + 80, b"__TEXT", 0, 0x1000, 0, 0x1000, 5, 5, 1, 0)
                    + section)
    if minos is not None:
        commands.append(struct.pack("<IIIIII", 0x32, 24, 1, (minos[0] << 16) | (minos[1] << 8), 14 << 16, 0))
    if version_min is not None:
        commands.append(struct.pack("<IIII", 0x24, 16, (version_min[0] << 16) | (version_min[1] << 8), 0))
    name = _padded(dylib.encode() + b"\0")
    commands.append(struct.pack("<IIIIII", 0xC, 24 + len(name), 24, 2, 0x10000, 0x10000) + name)
    starts_off = TEXT_OFFSET + 0x100
    commands.append(struct.pack("<IIII", 0x26, 16, starts_off, 8))
    cmds = b"".join(commands)
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, cputype, 3, 6, len(commands), len(cmds), 0, 0)
    data = bytearray(0x1000)
    data[:len(header) + len(cmds)] = header + cmds
    data[TEXT_OFFSET:TEXT_OFFSET + len(code)] = code
    data[starts_off:starts_off + 3] = bytes([0x80, 0x08, 0x00])  # ULEB 0x400 (the __text start), end
    return bytes(data)


def fat(*slices: tuple[int, bytes]) -> bytes:
    """A fat header (big-endian) and the slices, each at a 4 KiB boundary."""
    out = bytearray(struct.pack(">II", 0xCAFEBABE, len(slices)))
    offsets = []
    at = 0x1000
    for _cpu, data in slices:
        offsets.append(at)
        at += len(data) + (-len(data) % 0x1000)
    for (cputype, data), offset in zip(slices, offsets, strict=True):
        out += struct.pack(">iiIII", cputype, 0, offset, len(data), 12)
    for (_cpu, data), offset in zip(slices, offsets, strict=True):
        out += b"\0" * (offset - len(out)) + data
    return bytes(out)


UNIVERSAL2 = fat((CPU_X86_64, thin(CPU_X86_64, X86_CODE)), (CPU_ARM64, thin(CPU_ARM64, ARM64_CODE)))


def test_fat_file_has_one_image_per_slice() -> None:
    assert binaries.kind(UNIVERSAL2[:8]) == "macho"
    x86, arm = macho.parse(UNIVERSAL2)
    assert (x86.arch, arm.arch) == ("x86_64", "aarch64")
    assert macho.slice_name(arm.arch) == "arm64"
    for image in (x86, arm):
        assert (image.format, image.os) == ("macho", "macos")
        assert image.min_macos == (11, 0)
        assert image.needed == ["@rpath/libomp.dylib"]
        assert [(r.offset, r.vaddr) for r in image.code] == [(TEXT_OFFSET, TEXT_OFFSET)]
        assert image.anchors == [TEXT_OFFSET]  # LC_FUNCTION_STARTS (and the section start)
    assert x86.code[0].size == len(X86_CODE) and arm.code[0].size == len(ARM64_CODE)


def test_slices_are_scanned_by_their_own_architecture() -> None:
    x86, arm = macho.parse(UNIVERSAL2)
    x86_scan = isa.scan(x86)
    assert x86_scan.extensions == {"AVX2": 2}
    assert x86_scan.examples["AVX2"] == "0x400: vpaddd ymm0, ymm0, ymm1"
    assert isa.scan(arm).extensions == {}


def test_version_min_and_thin_32_bit_magic_variants() -> None:
    old = thin(CPU_X86_64, X86_CODE, minos=None, version_min=(10, 9))
    [image] = macho.parse(old)
    assert image.min_macos == (10, 9)
    assert macho.parse(thin(CPU_X86_64, X86_CODE, minos=(10, 15)))[0].min_macos == (10, 15)


def test_java_class_files_are_not_fat_binaries() -> None:
    assert binaries.kind(b"\xca\xfe\xba\xbe\x00\x00\x00\x34") is None  # Java 8 class file
    assert binaries.kind(b"\xca\xfe\xba\xbe\x00\x00\x00\x02") == "macho"


def test_universal2_wheel_predictions_per_slice_and_tag_check(tmp_path: Path) -> None:
    wheel = tmp_path / "fastpkg-1.0-cp311-cp311-macosx_10_9_universal2.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fastpkg/_ext.cpython-311-darwin.so", UNIVERSAL2)
        zf.writestr("fastpkg/__init__.py", "")
        zf.writestr("fastpkg-1.0.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nTag: cp311-cp311-macosx_10_9_universal2\n")
    report = audit([wheel], list(targets().values()))
    # the lanes a universal2 environment is for
    assert [ln.id for ln in report.lanes] == ["macos-arm64", "macos-x86_64-rosetta"]
    [binary] = report.binaries
    assert binary.path == "fastpkg/_ext.cpython-311-darwin.so" and binary.dist is not None
    assert binary.predictions["macos-arm64"].prediction is Prediction.PASS
    rosetta = binary.predictions["macos-x86_64-rosetta"]
    assert rosetta.prediction is Prediction.ILLEGAL_INSTRUCTION and rosetta.extensions == ("AVX2",)
    assert report.failed
    # minos 11.0 in a wheel that promises macOS 10.9: a problem for the x86_64
    # slice only; Apple silicon starts at macOS 11.0, so its slice keeps the promise
    assert binary.tag_problems() == [
        "x86_64 slice needs macOS 11.0 but is tagged macosx_10_9",
    ]
    data = binary.to_dict()
    assert [im["arch"] for im in data["images"]] == ["x86_64", "aarch64"]
    assert data["images"][0]["links"] == ["libomp.dylib"]


def test_fat_file_without_the_lanes_slice_is_wrong_arch(tmp_path: Path) -> None:
    only_x86 = fat((CPU_X86_64, thin(CPU_X86_64, bytes.fromhex("c3"))))
    (tmp_path / "lib.dylib").write_bytes(only_x86)
    report = audit([tmp_path], list(targets().values()), ["macos-arm64", "macos-x86_64-rosetta"])
    [binary] = report.binaries
    assert binary.predictions["macos-arm64"].prediction is Prediction.WRONG_ARCH
    assert binary.predictions["macos-x86_64-rosetta"].prediction is Prediction.PASS


def test_truncated_fat_file_is_an_error_entry_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "broken.so").write_bytes(UNIVERSAL2[:0x1800])
    report = audit([tmp_path], list(targets().values()))
    [binary] = report.binaries
    assert binary.error and "past the end" in binary.error
    assert binary.images == []
    # nothing read, so nothing can be said to pass: every lane is unknown (issue 16)
    assert binary.predictions and all(p.prediction is Prediction.UNKNOWN for p in binary.predictions.values())
    assert not report.failed
