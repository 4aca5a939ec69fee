"""CPU profiles: what users mean ("the CPU Rosetta 2 gives x86 code") → a QEMU CPU model.

Profiles are configuration: these are the defaults, and ``cpu_profiles:`` in
the matrix config adds or overrides entries, so another CPU is a config
change, not code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CpuProfile:
    name: str
    arch: str  # guest architecture: x86_64 or aarch64
    qemu_cpu: str  # the model given to qemu (-cpu / QEMU_CPU)
    description: str = ""
    # Extensions this CPU must not execute (numpy's names: AVX, AVX2, FMA3, F16C,
    # AVX512F, SVE): the lane's self-check proves it by executing one of each.
    absent: tuple[str, ...] = ()


NO_AVX = ("AVX", "AVX2", "FMA3", "F16C", "AVX512F")
NO_AVX512 = ("AVX512F",)
NO_SVE = ("SVE",)

DEFAULT_PROFILES: dict[str, CpuProfile] = {
    p.name: p
    for p in (
        CpuProfile("rosetta2", "x86_64", "Westmere",
                   "x86-64 without AVX/AVX2/AVX-512/FMA/BMI, as Rosetta 2 runs x86 code on macOS 11-14",
                   NO_AVX),
        CpuProfile("x86-64-v2", "x86_64", "Nehalem", "x86-64-v2: SSE4.2, POPCNT; no AVX", NO_AVX),
        CpuProfile("x86-64-v3", "x86_64", "Haswell", "x86-64-v3: AVX2, FMA, BMI2", NO_AVX512),
        CpuProfile("armv8.0", "aarch64", "cortex-a72", "Armv8.0 (Cortex-A72, Raspberry Pi 4): NEON, no SVE",
                   NO_SVE),
        CpuProfile("neoverse-n1", "aarch64", "neoverse-n1", "AWS Graviton 2: Armv8.2, no SVE", NO_SVE),
        CpuProfile("max", "aarch64", "max", "QEMU's most capable aarch64 CPU, with SVE"),
        # The macos-arm64 lanes' CPU, for predictions; QEMU has no Apple model,
        # Cortex-A76 is the nearest that, like every Apple chip, lacks SVE.
        CpuProfile("apple-silicon", "aarch64", "cortex-a76", "Apple silicon (no SVE)", NO_SVE),
        # macOS 15's Rosetta executes AVX, AVX2, FMA, F16C and BMI1/2 (it advertises
        # them in CPUID only with ROSETTA_ADVERTISE_AVX=1); AVX-512 never. QEMU's
        # Haswell executes and advertises the same set: whether code dies is the
        # same, only CPU dispatch may pick other kernels than un-advertised Rosetta.
        CpuProfile("rosetta2-macos15", "x86_64", "Haswell",
                   "x86-64 with AVX, AVX2, FMA, F16C, BMI1/2 and no AVX-512, as Rosetta 2 runs x86 code "
                   "on macOS 15", NO_AVX512),
    )
}
