"""ELF reading and the x86-64 ISA scan, on shared objects the tests compile.

(a) AVX2 executed unconditionally: illegal-instruction without AVX2, pass with it.
(b) the same code behind __builtin_cpu_supports (stripped or not), or as
    target_clones behind an ifunc: guarded.
(c) an x86-64 .so audited for the arm64 lane: wrong-arch.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from audit_fixtures import AVX2_HOST, build, targets

from archmatrix.audit import elf, isa
from archmatrix.audit.image import Image, Region
from archmatrix.audit.predict import Prediction, predict
from archmatrix.audit.report import ImageAudit, audit


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("audit-elf")
    return {
        "avx2": build(out, "avx2_plain.c", "-mavx2"),
        "avx2_stripped": build(out, "avx2_plain.c", "-mavx2", "-s", name="avx2_plain_stripped.so"),
        "dispatch": build(out, "avx2_dispatch.c"),
        "dispatch_stripped": build(out, "avx2_dispatch.c", "-s", name="avx2_dispatch_stripped.so"),
        "clones": build(out, "avx2_clones.c"),
        "plain": build(out, "plain.c"),
        "links": build(out, "links.c", "-fopenmp"),
    }


def scanned(path: Path) -> ImageAudit:
    image = elf.parse(path.read_bytes())
    return ImageAudit(image.format, image.os, image.arch, image.needed, image.glibc, image.min_macos,
                      isa.scan(image))


def test_elf_facts(built: dict[str, Path]) -> None:
    image = elf.parse(built["links"].read_bytes())
    assert (image.format, image.os, image.arch) == ("elf", "linux", "x86_64")
    assert image.needed == ["libgomp.so.1", "libc.so.6"]
    assert image.glibc is not None and image.glibc >= (2, 2, 5)
    assert {"getenv", "omp_get_max_threads"} <= image.imports
    assert scanned(built["links"]).links == ["libgomp.so.1"]  # the OpenMP runtime, not libc

    image = elf.parse(built["dispatch"].read_bytes())
    assert image.code and all(r.size > 0 for r in image.code)
    # function starts from .eh_frame_hdr and the symbols are instruction boundaries in code
    assert len(image.anchors) > len(image.code)
    assert all(any(r.offset <= a < r.end for r in image.code) for a in image.anchors)


def test_a_unconditional_avx2_is_found_and_not_guarded(built: dict[str, Path]) -> None:
    for key in ("avx2", "avx2_stripped"):
        scan = scanned(built[key]).scan
        assert "AVX2" in scan.extensions, key
        assert "vpaddd" in scan.examples["AVX2"]
        assert not scan.guarded and scan.guards == []
        assert scan.complete


def test_a_predicted_illegal_instruction_without_avx2_pass_with_it(built: dict[str, Path]) -> None:
    lanes = targets(AVX2_HOST)
    image = scanned(built["avx2"])
    noavx = predict([image], lanes["linux-x86_64-noavx"])
    assert noavx.prediction is Prediction.ILLEGAL_INSTRUCTION
    assert "AVX2" in noavx.extensions
    assert "with no CPU dispatch, e.g. 0x" in noavx.reason  # names an instruction and its address
    assert predict([image], lanes["host"]).prediction is Prediction.PASS
    assert predict([image], lanes["linux-amd64-docker"]).prediction is Prediction.PASS


@pytest.mark.parametrize("key", ["dispatch", "dispatch_stripped", "clones"])
def test_b_dispatched_avx2_is_guarded(built: dict[str, Path], key: str) -> None:
    image = scanned(built[key])
    ext = "AVX2" if "AVX2" in image.scan.extensions else "AVX"
    assert ext in image.scan.extensions
    # libgcc's __cpu_indicator_init asks the OS about AVX state with xgetbv:
    # the probe that survives stripping. A probe, not dispatch machinery: it
    # guards the code because the code is confined to the target("avx2") variant.
    assert image.scan.xgetbv and "xgetbv" in image.scan.hints and "xgetbv" not in image.scan.guards
    status, evidence = image.scan.guard_status(ext)
    assert status == isa.GUARDED
    assert image.scan.guarded == (key != "dispatch_stripped")
    if key == "dispatch_stripped":
        assert evidence.startswith(f"cpuid leaf 7, xgetbv probe; {ext} code in 1 of ")
    lanes = targets()
    assert predict([image], lanes["linux-x86_64-noavx"]).prediction is Prediction.GUARDED
    assert predict([image], lanes["host"]).prediction is Prediction.PASS


def test_b_evidence_names(built: dict[str, Path]) -> None:
    assert "libgcc __cpu_model" in scanned(built["dispatch"]).scan.guards
    assert "libgcc __cpu_model" not in scanned(built["dispatch_stripped"]).scan.guards
    assert "ifunc" in scanned(built["clones"]).scan.guards
    assert "cpuid" in scanned(built["dispatch"]).scan.hints  # weak on its own: a hint


def test_plain_code_has_no_extensions(built: dict[str, Path]) -> None:
    image = scanned(built["plain"])
    assert image.scan.extensions == {} and not image.scan.guarded
    for lane in targets().values():
        if lane.arch == "x86_64" and lane.os == "linux":
            assert predict([image], lane).prediction is Prediction.PASS


def test_c_x86_so_in_a_directory_audited_for_arm64_is_wrong_arch(
        built: dict[str, Path], tmp_path: Path) -> None:
    staged = tmp_path / "site-packages"
    staged.mkdir()
    (staged / "fast.cpython-311-x86_64-linux-gnu.so").write_bytes(built["avx2"].read_bytes())
    lanes = list(targets().values())
    report = audit([staged], lanes, ["linux-arm64-docker"])
    [binary] = report.binaries
    verdict = binary.predictions["linux-arm64-docker"]
    assert verdict.prediction is Prediction.WRONG_ARCH
    assert "x86_64 ELF" in verdict.reason and "aarch64 ELF" in verdict.reason
    assert report.failed


def test_default_lanes_follow_the_environment(built: dict[str, Path], tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.mkdir()
    (env / "a.so").write_bytes(built["plain"].read_bytes())
    report = audit([env], list(targets().values()))
    # an x86-64 ELF environment: the Linux x86-64 lanes, not arm64 or macOS
    assert {ln.id for ln in report.lanes} == {"host", "linux-amd64-docker", "linux-x86_64-noavx",
                                                "linux-x86_64-rosetta15"}
    assert not report.failed


def test_bytes_inside_instructions_are_not_avx() -> None:
    """``48 89 c5`` (mov rbp, rax) followed by a jmp contains C5 xx FE…: VEX-looking bytes.

    Real code from scipy's HiGHS build had long runs of exactly this. Decoded
    from the function start they are movs and jmps, never AVX.
    """
    code = bytes.fromhex("4889c5e9541beaff") * 64 + bytes.fromhex("c5fdfec1")  # …; vpaddd ymm0, ymm0, ymm1
    image = Image("elf", "linux", "x86_64", code, code=[Region(0, len(code), 0x1000)], anchors=[0])
    scan = isa.scan(image)
    assert scan.extensions == {"AVX2": 1}
    assert scan.examples["AVX2"] == f"{0x1000 + 512:#x}: vpaddd ymm0, ymm0, ymm1"
    without = code[:-4]
    image = Image("elf", "linux", "x86_64", without, code=[Region(0, len(without), 0)], anchors=[0])
    assert isa.scan(image).extensions == {}


def test_evex_is_avx512() -> None:
    code = bytes.fromhex("62f17c48580424")  # vaddps zmm0, zmm0, [rsp]
    image = Image("elf", "linux", "x86_64", code, code=[Region(0, len(code), 0)], anchors=[0])
    assert isa.scan(image).extensions == {"AVX-512": 1}


@pytest.mark.parametrize(("mnemonic", "ops", "extension"), [
    ("vaddps", "ymm0, ymm1, ymm2", "AVX"),
    ("vpaddd", "xmm0, xmm1, xmm2", "AVX"),
    ("vpaddd", "ymm0, ymm1, ymm2", "AVX2"),
    ("vpermilps", "ymm0, ymm1, 0x1b", "AVX"),
    ("vpbroadcastd", "ymm0, xmm0", "AVX2"),
    ("vbroadcastss", "ymm0, dword ptr [rax]", "AVX"),
    ("vbroadcastss", "ymm0, xmm1", "AVX2"),
    ("vfmadd231pd", "ymm0, ymm1, ymm2", "FMA"),
    ("shlx", "rax, rbx, rcx", "BMI"),
    ("vcvtph2ps", "ymm0, xmm1", "F16C"),
    ("kmovw", "k1, eax", "AVX-512"),
])
def test_classify_vex(mnemonic: str, ops: str, extension: str) -> None:
    assert isa.classify_vex(mnemonic, ops) == extension


def test_guarded_binaries_are_sampled_within_the_budget() -> None:
    # 1 MB of AVX code with dispatch evidence: the scan samples it instead of decoding it all
    code = bytes.fromhex("c5fdfec1") * (256 * 1024)
    data = code + b"\0gotoblas_corename\0"
    image = Image("elf", "linux", "x86_64", data, code=[Region(0, len(code), 0)], anchors=[0])
    scan = isa.scan(image, budget=5_000)
    assert scan.guarded and "OpenBLAS DYNAMIC_ARCH" in scan.guards
    assert not scan.complete
    assert scan.decoded < 20_000
    assert scan.extensions["AVX2"] > 0


def _xgetbv_library(avx_share: float, count: int = 4000) -> Image:
    """``count`` functions of 64 bytes, one asking xgetbv, a random ``avx_share`` of them with AVX2 code."""
    rng = random.Random(7)
    plain = bytes.fromhex("0f1007") + b"\x90" * 60 + b"\xc3"  # movups xmm0, [rdi] (SSE); nops; ret
    avx2 = bytes.fromhex("c5fdfec1") + b"\x90" * 59 + b"\xc3"  # vpaddd ymm0, ymm0, ymm1; …; ret
    probe = bytes.fromhex("31c90f01d0") + b"\x90" * 58 + b"\xc3"  # xor ecx, ecx; xgetbv; …; ret
    code = probe + b"".join(avx2 if rng.random() < avx_share else plain for _ in range(count - 1))
    return Image("elf", "linux", "x86_64", code, code=[Region(0, len(code), 0x1000)],
                 anchors=list(range(0, len(code), 64)))


@pytest.mark.parametrize(("share", "status"), [(0.6, isa.UNKNOWN), (0.05, isa.GUARDED)])
def test_a_large_xgetbv_only_binary_is_read_by_whole_functions(share: float, status: str) -> None:
    """Not sampled like dispatch machinery (that would leave its share unread), not scanned whole
    (polars: 75 s): functions spread over it, each decoded whole, give the same share."""
    image = _xgetbv_library(share)
    full = isa.scan(image, budget=10**9)
    assert full.complete and not full.sampled_functions
    sampled = isa.scan(image)
    assert sampled.xgetbv and not sampled.guarded and not sampled.complete
    assert isa.FUNCTION_SAMPLE <= sampled.sampled_functions < len(image.anchors)
    assert sampled.decoded < full.decoded
    full_share = len(full.functions["AVX2"]) / full.function_count
    sampled_share = len(sampled.functions["AVX2"]) / sampled.sampled_functions
    assert abs(full_share - share) < 0.02 and abs(sampled_share - full_share) < 0.05
    assert full.guard_status("AVX2")[0] == sampled.guard_status("AVX2")[0] == status
    assert f"of {sampled.sampled_functions} sampled functions" in sampled.guard_status("AVX2")[1]


@pytest.mark.parametrize(("every", "status"), [(0, isa.GUARDED), (256, isa.UNKNOWN)])
def test_without_a_function_table_confinement_is_counted_in_pages(every: int, status: str) -> None:
    """A stripped Go executable has no unwind table: its only known instruction start is the code's own.

    Counted in functions, any AVX would be in "1 of 1"; counted in 4 KiB pages, Go's runtime
    (AVX2 memmove behind internal/cpu, xgetbv included) is confined and code built for AVX2 is not.
    """
    vpaddd, nops = bytes.fromhex("c5fdfec1"), b"\x90" * 252
    body = (vpaddd + nops) * 256 if every else b"\x90" * 64 * 1024 + vpaddd
    code = bytes.fromhex("31c90f01d0") + body + b"\xc3"  # xor ecx, ecx; xgetbv; …; ret
    image = Image("elf", "linux", "x86_64", code, code=[Region(0, len(code), 0x1000)], anchors=[0])
    scan = isa.scan(image)
    assert scan.unit == "code pages" and scan.function_count == 17
    assert scan.guard_status("AVX2")[0] == status
    assert "AVX2 code in " + ("16" if every else "1") + " of 17 code pages" in scan.guard_status("AVX2")[1]


def test_a_cpu_query_in_a_sibling_library_is_a_probe() -> None:
    """pyarrow's libarrow_compute has its *_avx2 kernels and no cpuid: it asks libarrow.so's CpuInfo.

    Read alone it looked unguarded (a predicted illegal instruction where pyarrow runs); the
    import is a probe, held to the same rules as the library's own cpuid.
    """
    sse = bytes.fromhex("0f1007") + b"\x90" * 60 + b"\xc3"  # movups xmm0, [rdi]; nops; ret
    avx2 = bytes.fromhex("c5fdfec1") + b"\x90" * 59 + b"\xc3"  # vpaddd ymm0, ymm0, ymm1; nops; ret
    code = avx2 * 3 + sse * 97
    for symbols, status in ((b"\0PyInit_x\0", isa.UNGUARDED),
                            (b"\0_ZN5arrow8internal7CpuInfo11GetInstanceEv\0", isa.GUARDED)):
        image = Image("elf", "linux", "x86_64", code + symbols, code=[Region(0, len(code), 0x1000)],
                      anchors=list(range(0, len(code), 64)))
        scan = isa.scan(image)
        assert scan.guard_status("AVX2")[0] == status
    assert scan.cpu_queries == ["Arrow CpuInfo"]
    assert scan.guard_status("AVX2")[1] == "Arrow CpuInfo probe; AVX2 code in 3 of 100 functions"
