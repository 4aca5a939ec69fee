"""Which instruction-set extensions a binary's code uses, and whether it picks code by CPU at run time.

x86-64: every instruction that needs AVX, AVX2, FMA, F16C, BMI1/2 is
VEX-encoded (first byte 0xC4/0xC5) and every AVX-512 instruction is
EVEX-encoded (0x62). A regular expression finds those bytes, with the
bit patterns a real prefix must have, at C speed; only the candidates are
disassembled (capstone, no detail). A candidate byte can sit inside another
instruction (``48 89 c5`` is ``mov rbp, rax``), so each one is confirmed by
decoding linearly from a known instruction boundary before it: a function
start from the unwind table, the symbol tables or LC_FUNCTION_STARTS.
Decoding only moves forward, so a binary costs at most one linear sweep,
and a cheap pre-check (a few instructions decoded from just before the
candidate) throws out most false candidates before that. On numpy's
_multiarray_umath this finds the same 440 000 VEX/EVEX instructions as a
full linear sweep, less 0.03 % the pre-check misses; a binary that really
uses AVX has far more than one.

aarch64: instructions are aligned 32-bit words and the whole SVE/SVE2
encoding space has bits 28..25 = 0b0010 (unallocated before SVE), so the
scan looks at every fourth byte (a strided slice, no Python loop) and
capstone confirms the word.

Whether code the CPU may lack is behind a CPU check is decided per
extension (:meth:`IsaScan.guard_status`), in three answers:

- **guarded**: the binary carries dispatch machinery — libgcc's
  ``__cpu_model`` / ``__cpu_indicator_init`` (``__builtin_cpu_supports``,
  function multiversioning, ``target_clones``), ifunc resolvers
  (STT_GNU_IFUNC), numpy's ``__cpu_features__``, OpenBLAS DYNAMIC_ARCH, FMV
  resolvers, the macOS ``hw.optional`` sysctls — or it probes the CPU itself
  and the extension's code is confined to a few functions (what
  ``__attribute__((target("…")))`` variants look like: zstd has BMI2 in 18 of
  its 822 functions; a library compiled with ``-mavx2`` throughout has AVX
  code everywhere: polars-runtime-32 in 55 % of its functions). A probe is a
  ``cpuid`` of the leaf that reports that extension (zstd's BMI2 decoders,
  xxHash, lz4, brotli), a CPU query imported from a sibling library
  (pyarrow's ``CpuInfo``), or an ``xgetbv``. xgetbv only asks whether the OS
  saves AVX state; every AVX check runs it, so it is in binaries that check
  for one kernel, or for none of their code (Rust's std feature detection,
  abseil): it says the binary asks, not that this code waits for the answer.
  AVX, AVX2, FMA, F16C and BMI count as one for "confined" (a ``-mavx2``
  build is mostly the VEX form of SSE, AVX2 proper in few functions), and
  a binary without a function table is counted in 4 KiB pages. The share
  alone does not separate the two (pyllamacpp's ``-mavx2`` macOS build has
  AVX in 23 % of its functions, faiss's dispatched kernels are in 24 %): a
  compiler building for AVX leaves no legacy SSE in the binary, a baseline
  build keeps it in its ordinary code, so a probe never guards the AVX
  family in a binary with (almost) no legacy SSE next to its VEX code;
- **unknown**: the binary probes the CPU, but the probe cannot be tied to
  the extension (an undecodable cpuid leaf, or the extension's code spread
  over much of the binary): a warning, not a predicted failure;
- **unguarded**: no probe at all (or only probes of other features): the
  code runs whatever the CPU, and a CPU without the extension dies.

A binary with machine-wide dispatch evidence has its code sampled by bytes
(the verdict is guarded whatever more it finds); one whose only probe is
xgetbv, when large, by whole functions spread over it, so the share of
functions is still measured (polars: 55 % from 1 500 functions, as from all
125 000, in 2 s instead of 75).

This is a per-binary reading of the bytes, not a proof that every such
instruction sits behind the check.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

import capstone

from .image import Image, Region

# Extension names, in report order.
AVX, AVX2, FMA, F16C, BMI, AVX512, AMX = "AVX", "AVX2", "FMA", "F16C", "BMI", "AVX-512", "AMX"
SVE, SVE2 = "SVE", "SVE2"
X86_EXTENSIONS = (AVX, AVX2, FMA, F16C, BMI, AVX512, AMX)
AARCH64_EXTENSIONS = (SVE, SVE2)
ORDER = {name: i for i, name in enumerate(X86_EXTENSIONS + AARCH64_EXTENSIONS)}

# A guarded binary's code is sampled (about 4 bytes an instruction, spread
# over the whole text) and the scan stops after this many decoded
# instructions: the prediction (guarded) would not change however many more
# it found, and the sample still names the extensions. A full scan of numpy's
# dispatch targets alone decodes ~900 000 instructions (5 s).
GUARDED_BUDGET = 50_000
# Linear decoding from the previous boundary is exact but costs the distance;
# beyond this many bytes without a known function start, decode a short
# window instead (x86 decoding resynchronises within a few instructions).
MAX_LINEAR = 64 * 1024
WINDOW = 64
# Bytes decoded before a candidate to pre-check it (about six instructions).
PRECHECK = 24
_X86_MAX_INSN = 15
_LEGACY_PREFIXES = frozenset(b"\x26\x2e\x36\x3e\x64\x65\x67")
_XMM_SOURCE = re.compile(r",\s*xmm\d+$")


def _byte_class(values: Iterable[int]) -> bytes:
    return b"[" + b"".join(re.escape(bytes([v])) for v in sorted(set(values))) + b"]"


# Opcodes of VEX map 1 (0F xx) that exist with a VEX prefix; the 2-byte VEX
# form (C5) can only encode map 1, so its third byte must be one of these.
_VEX_MAP1 = [*range(0x10, 0x18), *range(0x28, 0x30), *range(0x50, 0x80), 0x77, 0xAE, 0xC2,
             0xC4, 0xC5, 0xC6, *range(0xD0, 0x100)]
# 3-byte VEX: R̄X̄B̄ then mmmmm = 1 (0F), 2 (0F38), 3 (0F3A).
_VEX3_P0 = [hi | m for hi in range(0, 0x100, 0x20) for m in (1, 2, 3)]
# EVEX: P0 = R X B R' 0 mmm with mmm 1,2,3 (AVX-512), 5,6 (AVX512-FP16); P1 bit 2 is always 1.
_EVEX_P0 = [hi | m for hi in range(0, 0x100, 0x10) for m in (1, 2, 3, 5, 6)]
_EVEX_P1 = [b for b in range(0x100) if b & 0x04]
_VEX_CANDIDATES = re.compile(
    b"\xc5[\x00-\xff]" + _byte_class(_VEX_MAP1)
    + b"|\xc4" + _byte_class(_VEX3_P0)
    + b"|\x62" + _byte_class(_EVEX_P0) + _byte_class(_EVEX_P1)
)
_CPU_QUERY_CANDIDATES = re.compile(b"\x0f\xa2|\x0f\x01\xd0")  # cpuid, xgetbv

_FMA_PREFIXES = ("vfmadd", "vfmsub", "vfnmadd", "vfnmsub")
_BMI = frozenset({"andn", "bextr", "blsi", "blsmsk", "blsr", "bzhi", "mulx", "pdep", "pext",
                  "rorx", "sarx", "shlx", "shrx"})
_F16C = frozenset({"vcvtph2ps", "vcvtps2ph"})
_AVX2_ONLY = frozenset({
    "vpbroadcastb", "vpbroadcastw", "vpbroadcastd", "vpbroadcastq", "vbroadcasti128",
    "vperm2i128", "vpermd", "vpermq", "vpermps", "vpermpd", "vinserti128", "vextracti128",
    "vpmaskmovd", "vpmaskmovq", "vpsllvd", "vpsllvq", "vpsrlvd", "vpsrlvq", "vpsravd", "vpblendd",
    "vgatherdps", "vgatherdpd", "vgatherqps", "vgatherqpd",
    "vpgatherdd", "vpgatherdq", "vpgatherqd", "vpgatherqq",
})
# vp* instructions that take ymm registers with plain AVX (the rest need AVX2).
_AVX_YMM_VP = frozenset({"vpermilps", "vpermilpd", "vperm2f128", "vptest"})
# Mnemonics only SVE2 has (a sample of the common ones, for the report; the
# prediction only needs "SVE or SVE2", which the encoding space gives exactly).
_SVE2_ONLY = frozenset({
    "addhnb", "addhnt", "bcax", "bdep", "bext", "bgrp", "eor3", "histcnt", "histseg", "match",
    "nmatch", "saddlb", "saddlt", "smlalb", "smlalt", "smullb", "smullt", "sqdmlalb", "sqdmlalt",
    "sqrdmlah", "sqxtnb", "sqxtnt", "uaddlb", "uaddlt", "umlalb", "umlalt", "umullb", "umullt",
    "uqxtnb", "uqxtnt", "whilege", "whilegt", "whilehi", "whilehs", "whilerw", "whilewr", "xar",
    "tbx", "ldnt1b", "stnt1b",
})

# Dispatch machinery recognised from the bytes of the file (symbol and string tables).
STRONG_MARKERS: tuple[tuple[bytes, str], ...] = (
    (b"__cpu_indicator_init", "libgcc __cpu_model"),
    (b"__cpu_model\0", "libgcc __cpu_model"),
    (b"__cpu_features2\0", "libgcc __cpu_model"),
    (b"__cpu_features__", "numpy __cpu_features__"),
    (b"NPY_ENABLE_CPU_FEATURES", "numpy __cpu_features__"),
    (b"gotoblas_corename", "OpenBLAS DYNAMIC_ARCH"),
    (b" DYNAMIC_ARCH ", "OpenBLAS DYNAMIC_ARCH"),
    (b"__init_cpu_features_resolver", "FMV resolver"),
    (b"__aarch64_cpu_features", "FMV resolver"),
    (b"__intel_cpu_feature_indicator", "Intel CPU dispatch"),
    (b"mkl_serv_cpu_detect", "Intel CPU dispatch"),
    (b"_AVX2\0", "per-ISA symbol names"),
    (b"_AVX512F\0", "per-ISA symbol names"),
    (b"_AVX512_SKX\0", "per-ISA symbol names"),
    (b"_HASWELL\0", "per-ISA symbol names"),
    (b"_SKYLAKEX\0", "per-ISA symbol names"),
    # the global libdeflate's CPU probe fills (hidden: only in unstripped files)
    (b"libdeflate_x86_cpu_features", "libdeflate CPU dispatch"),
)
# A CPU query the library calls in a sibling library, where the cpuid is
# (pyarrow's libarrow_compute and libarrow_acero ask libarrow.so's CpuInfo
# before their *_avx2 kernels): a probe like the library's own cpuid.
CPU_QUERY_IMPORTS: tuple[tuple[bytes, str], ...] = (
    (b"_ZN5arrow8internal7CpuInfo", "Arrow CpuInfo"),
)
WEAK_MARKERS: tuple[tuple[bytes, str], ...] = (
    (b"npyv_", "npyv_ strings"),
)
# macOS: Apple silicon features are asked of the kernel by name.
_MACOS_SYSCTL_PROBE = (b"hw.optional.arm.FEAT_", b"hw.optional.avx", b"hw.optional.bmi")
# The cpuid leaf whose bits report each x86 extension (leaf 1: ECX; leaf 7: EBX/EDX).
CPUID_LEAF = {AVX: 1, FMA: 1, F16C: 1, AVX2: 7, BMI: 7, AVX512: 7, AMX: 7}
# target("…") variants behind a library's own probe are a few functions; code
# compiled for the extension throughout is in far more.
CONFINED_SHARE = 0.25
# Code compiled with -mavx2 (x86-64-v3) throughout is mostly the VEX form of
# plain SSE (AVX: polars-runtime-32 has it in 55 % of its functions) and only
# here and there an AVX2, FMA or BMI instruction (5 %, 0 %, 8 %): so the
# share that says whether code is confined counts these together. AVX-512 and
# AMX are not in it: a -mavx2 build has none, and the few functions that have
# them are dispatched (the same 66 are in polars' no-AVX build).
VEX_FAMILY = (AVX, AVX2, FMA, F16C, BMI)
# A binary whose only probe is xgetbv is too common to sample like dispatch
# machinery and too large to always scan whole (polars: 170 MB, 75 s): its
# share is read from this many functions spread evenly over it, each decoded
# whole (up to MAX_FUNCTION bytes), when its code is larger than the byte budget.
FUNCTION_SAMPLE = 1500
MAX_FUNCTION = 16 * 1024
PAGE, PAGES = 4096, "code pages"  # 4 KiB
# Built for AVX throughout, a compiler emits no legacy (non-VEX) SSE at all:
# pyllamacpp's -mavx2 builds have 0 and 45 legacy SSE instructions to 12 138
# and 9 929 VEX ones; a baseline build with AVX kernels keeps SSE in its
# ordinary code (faiss 115 000 to 290 000, tensorflow-io's plugins 64 000
# to 2 400). Judged only on at least MIN_VEX vector instructions.
MIN_VEX = 200
SSE_PER_VEX = 0.05

GUARDED, UNKNOWN, UNGUARDED = "guarded", "unknown", "unguarded"

# aarch64 mrs of the ID registers that hold the SVE fields: the word's upper three
# bytes, then the low byte's op2/Rt bits (Rt in the low 5 bits). Found with
# bytes.find on the fixed part: a regex starting with a byte class tries every
# position in Python's engine (0.3 s for scipy's 4 MB HiGHS module).
_MRS_SVE_ID_HIGH = b"\x04\x38\xd5"


def _mrs_sve_id_at(data: bytes, first: int, end: int) -> bool:
    """Whether an aligned ``mrs xN, ID_AA64PFR0_EL1/ID_AA64ZFR0_EL1`` is in ``data[first:end]``."""
    at = data.find(_MRS_SVE_ID_HIGH, first + 1, end)
    while at >= 0:
        word = at - 1
        if (word - first) % 4 == 0 and data[word] & 0x60 == 0:
            return True
        at = data.find(_MRS_SVE_ID_HIGH, at + 1, end)
    return False


@dataclass
class IsaScan:
    """What the scan of one image found."""

    extensions: dict[str, int] = field(default_factory=dict)  # extension → instructions seen
    examples: dict[str, str] = field(default_factory=dict)  # extension → first one, "0x1139: vpaddd …"
    guards: list[str] = field(default_factory=list)  # dispatch evidence: makes the binary guarded
    hints: list[str] = field(default_factory=list)  # CPU queries too common to count as dispatch
    complete: bool = True  # False: stopped early (guarded, budget reached)
    decoded: int = 0  # instructions disassembled
    cpuid_leaves: set[int] = field(default_factory=set)  # leaves the code's cpuid instructions ask
    cpuid_unknown: int = 0  # cpuid instructions whose leaf the scan could not read
    os_probes: list[str] = field(default_factory=list)  # getauxval, macOS sysctl hw.optional
    functions: dict[str, set[int]] = field(default_factory=dict)  # extension → functions using it
    function_count: int = 0  # functions the image has (known starts), or its code pages (``unit``)
    unit: str = "functions"  # what function_count and ``functions`` count
    sampled_functions: int = 0  # >0: ``functions`` holds only this many functions' code (a sample)
    xgetbv: bool = False  # the code asks whether the OS saves AVX state: a probe, not dispatch
    cpu_queries: list[str] = field(default_factory=list)  # CPU_QUERY_IMPORTS the binary calls
    legacy_sse: int | None = None  # legacy-SSE vector instructions seen (None: not counted)
    baseline: str = ""  # a level the whole binary is built for ("x86-64-v2"), from its own text

    @property
    def guarded(self) -> bool:
        return bool(self.guards)

    def found(self, extension: str, count: int, example: str, function: int | None = None) -> None:
        self.extensions[extension] = self.extensions.get(extension, 0) + count
        self.examples.setdefault(extension, example)
        if function is not None:
            self.functions.setdefault(extension, set()).add(function)

    def guard_status(self, extension: str) -> tuple[str, str]:
        """(guarded | unknown | unguarded, the evidence) for the code using ``extension``."""
        if self.guards:
            return GUARDED, ", ".join(self.guards)
        leaf = CPUID_LEAF.get(extension)
        probes = [f"cpuid leaf {leaf}"] if leaf is not None and leaf in self.cpuid_leaves else []
        if self.xgetbv and leaf is not None:
            # run by every AVX check (after cpuid leaf 1, whose leaf-7 sibling
            # the audit may not read): proof that the binary asks the CPU, not
            # that this code waits for the answer
            probes.append("xgetbv")
        if leaf is not None:
            probes.extend(self.cpu_queries)
        if extension in (SVE, SVE2):
            probes = list(self.os_probes)
        spread, share = self._share(extension)
        among = self.sampled_functions or self.function_count
        confined = among > 0 and spread <= CONFINED_SHARE * among
        if probes:
            if extension in VEX_FAMILY and self.built_for_avx:
                return UNKNOWN, (f"{', '.join(probes)} probe, but {share}, and no legacy SSE code: "
                                 f"built for AVX throughout")
            if confined:
                return GUARDED, f"{', '.join(probes)} probe; {share}"
            return UNKNOWN, f"{', '.join(probes)} probe, but {share}"
        if self.cpuid_unknown and extension in CPUID_LEAF:
            return UNKNOWN, "cpuid of a leaf the audit cannot read"
        return UNGUARDED, ""

    @property
    def vex_vector(self) -> int:
        """VEX-encoded vector instructions seen (BMI's are on general registers)."""
        return sum(self.extensions.get(e, 0) for e in (AVX, AVX2, FMA, F16C))

    @property
    def built_for_avx(self) -> bool:
        """The compiler made all the vector code VEX: a -mavx/-mavx2 build, whatever its probe."""
        return (self.legacy_sse is not None and self.vex_vector >= MIN_VEX
                and self.legacy_sse < SSE_PER_VEX * self.vex_vector)

    def _share(self, extension: str) -> tuple[int, str]:
        """The functions the confinement rule counts for ``extension``, and the words for it."""
        own = len(self.functions.get(extension, ()))
        among = self.sampled_functions or self.function_count
        of = f"{among} sampled" if self.sampled_functions else f"{among}"
        text = f"{extension} code in {own} of {of} {self.unit}"
        if extension not in VEX_FAMILY:
            return own, text
        family = len(set().union(*(self.functions.get(e, set()) for e in VEX_FAMILY)))
        if family > own:
            text += f", {'/'.join(VEX_FAMILY)} code in {family}"
        return family, text

    def add_guard(self, label: str) -> None:
        if label not in self.guards:
            self.guards.append(label)

    def add_hint(self, label: str) -> None:
        if label not in self.hints:
            self.hints.append(label)

    def sorted_extensions(self) -> list[str]:
        return sorted(self.extensions, key=lambda e: ORDER.get(e, len(ORDER)))


@cache
def _x86() -> capstone.Cs:
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    cs.skipdata = True  # bytes that are not an instruction become ".byte", decoding goes on
    return cs


@cache
def _arm64() -> capstone.Cs:
    return capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)


def scan(image: Image, *, budget: int = GUARDED_BUDGET) -> IsaScan:
    """Extensions the image's code uses and the dispatch evidence it carries."""
    result = IsaScan()
    data = image.data
    _static_evidence(image, data, result)
    if image.arch == "x86_64":
        _scan_x86(image, data, result, budget)
    elif image.arch == "aarch64":
        _scan_aarch64(image, data, result, budget)
    return result


def _outside_code(image: Image, size: int) -> list[tuple[int, int]]:
    """The byte ranges that are not code: string and symbol tables live there (OpenBLAS: 1 MB of 25)."""
    ranges, at = [], 0
    for r in sorted(image.code, key=lambda r: r.offset):
        if r.offset > at:
            ranges.append((at, r.offset))
        at = max(at, r.end)
    if at < size:
        ranges.append((at, size))
    return ranges


def _static_evidence(image: Image, data: bytes, result: IsaScan) -> None:
    ranges = _outside_code(image, len(data))
    for marker, label in STRONG_MARKERS:
        if any(data.find(marker, a, b) >= 0 for a, b in ranges):
            result.add_guard(label)
    for marker, label in WEAK_MARKERS:
        if any(data.find(marker, a, b) >= 0 for a, b in ranges):
            result.add_hint(label)
    for marker, label in CPU_QUERY_IMPORTS:
        if any(data.find(marker, a, b) >= 0 for a, b in ranges):
            result.cpu_queries.append(label)
    if image.ifuncs:
        result.add_guard("ifunc")
    # getauxval(AT_HWCAP) is how Linux code asks for CPU features on Arm, but
    # libgcc's outline atomics import it into almost every aarch64 binary:
    # a probe only together with confined code (guard_status).
    if "getauxval" in image.imports:
        result.add_hint("getauxval")
        result.os_probes.append("getauxval")
    if "sysctlbyname" in image.imports and any(
            data.find(m, a, b) >= 0 for m in _MACOS_SYSCTL_PROBE for a, b in ranges):
        result.add_guard("macOS sysctl hw.optional")
    if len(image.anchors) > len(image.code):
        result.function_count = len(image.anchors)
    else:
        # no function starts known beyond the code's own (a stripped Go
        # executable has no unwind table): "confined" is then counted in
        # pages, or any extension would be in "1 of 1 functions"
        result.unit = PAGES
        result.function_count = sum(-(-r.size // PAGE) for r in image.code)
    result.baseline = _baseline(data, ranges)


def _place(image: Image, result: IsaScan, offset: int) -> int | None:
    """The unit the code at ``offset`` is in: its function's start, or its page."""
    return offset // PAGE if result.unit == PAGES else image.anchor_before(offset)


# numpy's own text: "NumPy was built with baseline optimizations: \n(X86_V2) but …"
_NUMPY_BASELINE = re.compile(rb"built with baseline optimizations: \n?\(([A-Z0-9_ ]{1,200})\)")
_LEVELS = (("X86_V4", "x86-64-v4"), ("AVX512", "x86-64-v4"), ("X86_V3", "x86-64-v3"), ("AVX2", "x86-64-v3"),
           ("X86_V2", "x86-64-v2"), ("SSE42", "x86-64-v2"), ("POPCNT", "x86-64-v2"))


def _baseline(data: bytes, ranges: list[tuple[int, int]]) -> str:
    """The x86-64 level a binary is built for throughout, when it says so (numpy does)."""
    for a, b in ranges:
        m = _NUMPY_BASELINE.search(data, a, b)
        if m:
            features = m.group(1).decode("ascii").split()
            return next((level for name, level in _LEVELS if name in features), "")
    return ""


# ------------------------------------------------------------------ x86-64


class _Walker:
    """Forward-only linear decoder over one code region, synchronised on known instruction starts."""

    def __init__(self, image: Image, data: bytes, region: Region, result: IsaScan) -> None:
        self.image, self.data, self.region, self.result = image, data, region, result
        self.pos = region.offset  # an instruction boundary (or our best guess of one)

    def instruction_at(self, c: int) -> tuple[int, int, str, str] | None:
        """The instruction starting at file offset ``c`` (allowing legacy prefixes before it), else None."""
        if c < self.pos:
            return None  # inside the instruction decoded last
        # Most candidates in code without AVX are bytes inside other
        # instructions. A few instructions decoded from just before ``c`` are
        # already in step with the real stream and step over them; only a
        # candidate that survives this is checked from a known boundary.
        if c - self.pos > PRECHECK and self._decode(max(self.region.offset, c - PRECHECK), c) is None:
            return None
        return self._decode(self._sync_point(c), c, commit=True)

    def covering(self, c: int) -> tuple[int, int, str, str] | None:
        """The instruction that contains the byte at ``c`` (its prefixes may come before it), else None."""
        if c < self.pos:
            return None
        start, stop = self._sync_point(c), min(c + _X86_MAX_INSN, self.region.end)
        found, end = None, start
        for addr, size, mnemonic, op_str in _x86().disasm_lite(self.data[start:stop], start):
            self.result.decoded += 1
            end = addr + size
            if end > c:
                found = (addr, size, mnemonic, op_str) if addr <= c else None
                break
        self.pos = max(end, c + 1)
        return found

    def _sync_point(self, c: int) -> int:
        start = self.pos
        anchor = self.image.anchor_before(c)
        if anchor is not None and anchor > start:
            start = anchor
        if c - start > MAX_LINEAR:
            start = max(self.region.offset, c - WINDOW)
        return start

    def _decode(self, start: int, c: int, *, commit: bool = False) -> tuple[int, int, str, str] | None:
        stop = min(c + _X86_MAX_INSN, self.region.end)
        found = None
        end = start
        for addr, size, mnemonic, op_str in _x86().disasm_lite(self.data[start:stop], start):
            self.result.decoded += 1
            end = addr + size
            if end > c:
                if addr == c or (c - addr <= 4 and all(b in _LEGACY_PREFIXES for b in self.data[addr:c])):
                    found = (addr, size, mnemonic, op_str)
                break
        if commit:
            self.pos = max(end, c + 1)
        return found


def _text(addr: int, image: Image, region: Region, mnemonic: str, op_str: str) -> str:
    vaddr = region.vaddr + (addr - region.offset)
    return f"{vaddr:#x}: {mnemonic} {op_str}".rstrip()


def _scan_x86(image: Image, data: bytes, result: IsaScan, budget: int) -> None:
    # cpuid/xgetbv first: a guarded binary then needs only a sample of its vector code.
    for region in image.code:
        walker = _Walker(image, data, region, result)
        for m in _CPU_QUERY_CANDIDATES.finditer(data, region.offset, region.end):
            insn = walker.instruction_at(m.start())
            if insn is None:
                continue
            if insn[2] == "xgetbv":
                result.xgetbv = True
                result.add_hint("xgetbv")
            elif insn[2] == "cpuid":
                result.add_hint("cpuid")
                leaf = _cpuid_leaf(data, region, m.start())
                if leaf is None:
                    result.cpuid_unknown += 1
                else:
                    result.cpuid_leaves.add(leaf)
    spent = result.decoded
    regions = image.code
    if result.guarded:
        regions = _sample(image.code, budget * 4)  # ~4 bytes an instruction
        result.complete = regions == image.code
    elif result.xgetbv:
        regions, result.sampled_functions = _function_sample(image, budget * 4)
        result.complete = not result.sampled_functions
    for region in regions:
        walker = _Walker(image, data, region, result)
        for m in _VEX_CANDIDATES.finditer(data, region.offset, region.end):
            insn = walker.instruction_at(m.start())
            if insn is not None and insn[2] != ".byte":
                addr, _size, mnemonic, op_str = insn
                ext = AVX512 if data[m.start()] == 0x62 else classify_vex(mnemonic, op_str)
                text = _text(addr, image, region, mnemonic, op_str)
                result.found(ext, 1, text, _place(image, result, addr))
        if result.guarded and result.decoded - spent > budget:
            result.complete = False
            return
    probed = result.xgetbv or result.cpuid_leaves or result.cpu_queries
    if not result.guarded and probed and result.vex_vector >= MIN_VEX:
        # a probe may guard this code: unless the whole binary is built for AVX
        result.legacy_sse = _legacy_sse(image, data, regions, result, SSE_PER_VEX * result.vex_vector)


# Legacy SSE: 0F and an opcode of the common SSE moves and arithmetic (the
# instruction may start at a 66/F2/F3 or REX prefix before it).
_SSE_OPCODES = (0x10, 0x11, 0x28, 0x29, 0x51, 0x54, 0x57, 0x58, 0x59, 0x5C, 0x5E, 0x6E, 0x6F, 0x7E, 0x7F,
                0xD4, 0xD6, 0xEF, 0xFE)
_SSE_CANDIDATES = re.compile(b"\x0f" + _byte_class(_SSE_OPCODES))
_SSE_MNEMONIC = re.compile(r"(?:mov(?:aps|ups|apd|upd|ss|sd|dqa|dqu|d|q)|xorp[sd]|pxor|andp[sd]|"
                           r"(?:add|sub|mul|div|sqrt)[sp][sd]|padd[dq])$")


def _legacy_sse(image: Image, data: bytes, regions: list[Region], result: IsaScan, enough: float) -> int:
    """Legacy-SSE vector instructions in ``regions``, counted until ``enough``."""
    count = 0
    for region in regions:
        walker = _Walker(image, data, region, result)
        for m in _SSE_CANDIDATES.finditer(data, region.offset, region.end):
            insn = walker.covering(m.start())
            if insn is not None and _SSE_MNEMONIC.match(insn[2]) and "xmm" in insn[3]:
                count += 1
                if count >= enough:
                    return count
    return count


def _cpuid_leaf(data: bytes, region: Region, c: int) -> int | None:
    """The leaf (EAX) the ``cpuid`` at ``c`` asks for: the last ``mov eax, imm`` / ``xor eax, eax`` before it.

    Decoded from a few bytes back, the shortest run that ends exactly at the
    cpuid and sets EAX; None when EAX comes from elsewhere (a register, memory).
    """
    for back in range(2, min(24, c - region.offset) + 1):
        leaf: int | None = None
        end = c - back
        for _addr, size, mnemonic, op_str in _x86().disasm_lite(data[c - back:c], c - back):
            end = _addr + size
            if mnemonic == ".byte":
                break
            if op_str.startswith(("eax,", "rax,")):
                leaf = None
                if mnemonic == "mov":
                    try:
                        leaf = int(op_str.split(",", 1)[1], 0)
                    except ValueError:
                        leaf = None
                elif mnemonic == "xor" and op_str in ("eax, eax", "rax, rax"):
                    leaf = 0
        if end == c and leaf is not None:
            return leaf
    return None


def _sample(code: list[Region], nbytes: int, pieces: int = 64) -> list[Region]:
    """About ``nbytes`` of ``code`` as evenly spread pieces (all of it when it is smaller).

    A guarded binary's vector kernels are not at the start of its text (the
    OpenBLAS driver code comes first), so a sample must be spread out to say
    which extensions the binary has at all.
    """
    total = sum(r.size for r in code)
    if total <= nbytes:
        return code
    pieces = max(1, min(pieces, nbytes // 4096))
    step, length = total / pieces, nbytes // pieces
    out: list[Region] = []
    for i in range(pieces):
        at = int(i * step)
        for r in code:  # the region holding byte ``at`` of all code
            if at < r.size:
                n = min(length, r.size - at)
                out.append(Region(r.offset + at, n, r.vaddr + at))
                break
            at -= r.size
    return out


def _function_sample(image: Image, nbytes: int) -> tuple[list[Region], int]:
    """Whole functions spread evenly over the image's code, and how many (all its code, 0 when small).

    The share of functions that use an extension is then the share in the
    sample: each function is decoded from its start to the next one, so a
    function counts as using the extension exactly as in a full scan.
    """
    total = sum(r.size for r in image.code)
    starts = image.anchors
    if total <= nbytes or len(starts) < 2 * FUNCTION_SAMPLE:
        return image.code, 0
    step = len(starts) // FUNCTION_SAMPLE
    code = sorted(image.code, key=lambda r: r.offset)
    offsets = [r.offset for r in code]  # bisected: a hostile file can have 65 535 regions
    out: list[Region] = []
    for i in range(0, len(starts), step):
        start = starts[i]
        at = bisect.bisect_right(offsets, start) - 1
        if at < 0 or start >= code[at].end:
            continue
        region = code[at]
        end = min(starts[i + 1] if i + 1 < len(starts) else region.end, region.end, start + MAX_FUNCTION)
        out.append(Region(start, end - start, region.vaddr + (start - region.offset)))
    return out, len(out)


def classify_vex(mnemonic: str, op_str: str) -> str:
    """The extension a VEX-encoded instruction needs (the CPUID flag that must be set)."""
    if mnemonic.startswith(_FMA_PREFIXES):
        return FMA
    if mnemonic in _BMI:
        return BMI
    if mnemonic in _F16C:
        return F16C
    if mnemonic.startswith("k"):  # opmask instructions: VEX-encoded, but AVX-512
        return AVX512
    if mnemonic.startswith(("tile", "tdp", "ldtilecfg", "sttilecfg")):
        return AMX
    if mnemonic in _AVX2_ONLY:
        return AVX2
    if mnemonic.startswith("vp") and "ymm" in op_str and mnemonic not in _AVX_YMM_VP:
        return AVX2
    if mnemonic in ("vbroadcastss", "vbroadcastsd") and _XMM_SOURCE.search(op_str):
        return AVX2  # register source: AVX2 (AVX can only broadcast from memory)
    return AVX


# ------------------------------------------------------------------ aarch64

# Bits 28..25 of an instruction are bits 4..1 of its most significant byte
# (little-endian: the word's fourth byte).
_SVE_TOP_BYTE = re.compile(_byte_class(b for b in range(0x100) if b & 0x1E == 0x04))


def _scan_aarch64(image: Image, data: bytes, result: IsaScan, budget: int) -> None:
    for region in image.code:
        first = region.offset + (-region.vaddr) % 4
        if _mrs_sve_id_at(data, first, region.end):
            result.add_guard("mrs ID_AA64PFR0/ZFR0_EL1")
            break
    spent = result.decoded
    regions = image.code
    if result.guarded:
        regions = _sample(image.code, budget * 4)
        result.complete = regions == image.code
    for region in regions:
        first = region.offset + (-region.vaddr) % 4
        top = data[first + 3:region.end:4]  # the most significant byte of every word
        for m in _SVE_TOP_BYTE.finditer(top):
            word_off = first + 4 * m.start()
            result.decoded += 1
            decoded = list(_arm64().disasm_lite(data[word_off:word_off + 4], 0))
            if not decoded:
                continue  # data, or an encoding capstone does not know: not evidence
            _addr, _size, mnemonic, op_str = decoded[0]
            ext = SVE2 if mnemonic in _SVE2_ONLY else SVE
            vaddr = region.vaddr + (word_off - region.offset)
            result.found(ext, 1, f"{vaddr:#x}: {mnemonic} {op_str}".rstrip(), _place(image, result, word_off))
        if result.guarded and result.decoded - spent > budget:
            result.complete = False
            return
