"""What each QEMU CPU model lacks, of the instruction-set extensions the audit's scan looks for.

Shared by the audit's predictions and the host's root-cause attribution of a
SIGILL (:mod:`archmatrix.rootcause`): one table, in a module that depends on
nothing but the extension names.
"""

from __future__ import annotations

from collections.abc import Mapping

from .isa import AMX, AVX, AVX2, AVX512, BMI, F16C, FMA, SVE, SVE2

# Not an instruction-set extension: the x86-64 level above the original
# x86-64 (SSSE3, SSE4.1, SSE4.2, POPCNT, CMPXCHG16B, LAHF), which numpy ≥ 2.4's
# x86-64 wheels are built for throughout. Only CPUs older than Nehalem lack it.
X86_V2 = "x86-64-v2"

NO_AVX = frozenset({AVX, AVX2, FMA, F16C, BMI, AVX512, AMX})
BELOW_V2 = NO_AVX | {X86_V2}  # pre-Nehalem: no SSE4.2/POPCNT either
NO_AVX2 = frozenset({AVX2, FMA, BMI, AVX512, AMX})
NO_AVX512 = frozenset({AVX512, AMX})
NO_SVE = frozenset({SVE, SVE2})
# What each QEMU CPU model lacks, of the extensions the scan looks for.
QEMU_MODEL_MISSING: Mapping[str, frozenset[str]] = {
    "qemu64": BELOW_V2, "core2duo": BELOW_V2, "Conroe": BELOW_V2, "Penryn": BELOW_V2, "Nehalem": NO_AVX,
    "Westmere": NO_AVX, "SandyBridge": NO_AVX2 | {F16C}, "IvyBridge": NO_AVX2,
    "Haswell": NO_AVX512, "Broadwell": NO_AVX512, "Skylake-Client": NO_AVX512,
    "Skylake-Server": frozenset({AMX}), "Cascadelake-Server": frozenset({AMX}),
    "Icelake-Server": frozenset({AMX}), "SapphireRapids": frozenset(),
    "cortex-a53": NO_SVE, "cortex-a57": NO_SVE, "cortex-a72": NO_SVE, "cortex-a76": NO_SVE,
    "neoverse-n1": NO_SVE, "neoverse-v1": frozenset({SVE2}), "a64fx": frozenset({SVE2}),
    "neoverse-n2": frozenset(), "max": frozenset(),
}
# The extensions each baseline level above v2 needs, of those the scan names.
LEVEL_NEEDS: Mapping[str, frozenset[str]] = {
    X86_V2: frozenset({X86_V2}),
    "x86-64-v3": frozenset({X86_V2, AVX, AVX2, FMA, F16C, BMI}),
    "x86-64-v4": frozenset({X86_V2, AVX, AVX2, FMA, F16C, BMI, AVX512}),
}
