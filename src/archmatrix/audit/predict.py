"""Per-lane predictions: what a binary will do in a lane, from its images and the lane's CPU.

A lane is reduced to a :class:`LaneTarget`: the OS and architecture it
loads binaries for, and the instruction-set extensions its CPU lacks. The
targets come from each lane's resolved :class:`archmatrix.model.LaneTarget`
(what its runner says it is), so a new lane, runner or CPU profile is
configuration here too; only the QEMU CPU models' feature sets are a table in
this module.

Detection functions take their facts as optional arguments and only probe
the machine when none are given (the packaging.tags pattern), so tests pass
a CPU in rather than patching.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .. import hostfacts
from ..hostfacts import HostFacts
from ..model import QEMU_USER, LaneConfig
from ..profiles import CpuProfile
from ..runners import target_of
from ..suite.outcomes import Outcome
from .cpus import BELOW_V2, LEVEL_NEEDS, NO_AVX, NO_AVX2, NO_AVX512, NO_SVE, QEMU_MODEL_MISSING, X86_V2
from .image import OsName
from .isa import AMX, AVX, AVX2, AVX512, BMI, F16C, FMA, SVE, SVE2, UNGUARDED, UNKNOWN, IsaScan

# The extensions each baseline level above v2 needs, of those the scan names.

# re-exported from .cpus
__all__ = ["BELOW_V2", "NO_AVX", "NO_AVX2", "NO_AVX512", "NO_SVE", "QEMU_MODEL_MISSING", "X86_V2"]


class Prediction(str, enum.Enum):
    PASS = "pass"
    GUARDED = "guarded"  # code the lane's CPU lacks exists, but is selected at run time
    UNKNOWN = "unknown"  # unreadable, or a CPU probe the audit cannot tie to the code: a warning
    ILLEGAL_INSTRUCTION = "illegal-instruction"
    WRONG_ARCH = "wrong-arch"

    def __str__(self) -> str:
        return self.value

    @property
    def failed(self) -> bool:
        return self in (Prediction.ILLEGAL_INSTRUCTION, Prediction.WRONG_ARCH)

    @property
    def outcome(self) -> Outcome | None:
        """The outcome the lane's checks should show: guarded code passes; None when unknown."""
        if self is Prediction.UNKNOWN:
            return None
        return Outcome.PASS if self is Prediction.GUARDED else Outcome(self.value)

    @property
    def glyph(self) -> str:
        outcome = self.outcome
        return "◐" if self is Prediction.GUARDED else "?" if outcome is None else outcome.glyph

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Prediction.PASS: 0, Prediction.GUARDED: 1, Prediction.UNKNOWN: 2,
             Prediction.ILLEGAL_INSTRUCTION: 3, Prediction.WRONG_ARCH: 4}

# /proc/cpuinfo flags (Linux's names) each extension needs.
_X86_FLAGS = {AVX: ("avx",), AVX2: ("avx2",), FMA: ("fma",), F16C: ("f16c",), BMI: ("bmi1", "bmi2"),
              AVX512: ("avx512f",), AMX: ("amx_tile",),
              # the two numpy's own message names; a CPU with SSE4.2 has SSSE3 and SSE4.1
              X86_V2: ("sse4_2", "popcnt")}
_ARM_FLAGS = {SVE: ("sve",), SVE2: ("sve2",)}


@dataclass(frozen=True)
class LaneTarget:
    id: str
    os: OsName
    arch: str
    missing: frozenset[str]  # extensions the lane's CPU does not have
    cpu: str  # for people: "qemu Westmere (rosetta2)", "this host's CPU", …


@dataclass(frozen=True)
class HostCpu:
    os: OsName | str  # linux, macos, or another platform.system() in lower case
    arch: str
    missing: frozenset[str]
    translated: bool = False  # this process runs under Rosetta 2


@dataclass(frozen=True)
class LanePrediction:
    prediction: Prediction
    reason: str = ""
    extensions: tuple[str, ...] = field(default=())  # the extensions the verdict is about

    def to_dict(self) -> dict[str, object]:
        return {"prediction": self.prediction.value, "reason": self.reason,
                "extensions": list(self.extensions)}


def missing_from_flags(arch: str, flags: Iterable[str]) -> frozenset[str]:
    have = set(flags)
    table = _X86_FLAGS if arch == "x86_64" else _ARM_FLAGS if arch == "aarch64" else {}
    missing = {ext for ext, needs in table.items() if not all(f in have for f in needs)}
    if "avx" in have:  # every CPU with AVX has the x86-64-v2 level (Sandy Bridge is after Nehalem)
        missing.discard(X86_V2)
    return frozenset(missing)


def detect_host_cpu(*, system: str | None = None, machine: str | None = None,
                    cpuinfo: str | None = None) -> HostCpu:
    """This machine's CPU as the audit needs it. Probes (in :mod:`hostfacts`) only what is not passed in.

    On Linux the kernel's /proc/cpuinfo is the truth for a native process (the
    lanes distrust it only inside QEMU, which shows the host's). On macOS,
    Apple silicon has no SVE, and an x86_64 process translated by Rosetta has
    no AVX (the rosetta2 profile).
    """
    system = (system or hostfacts.system()).lower()
    arch = hostfacts.normalise_arch(machine or hostfacts.machine())
    if system == "darwin":
        if arch == "aarch64":
            return HostCpu("macos", arch, NO_SVE)
        if hostfacts.process_translated():
            return HostCpu("macos", arch, NO_AVX, translated=True)
        return HostCpu("macos", arch, missing_from_flags(arch, hostfacts.cpu_flags(system, cpuinfo)))
    flags = hostfacts.cpu_flags(system, cpuinfo)
    if not flags:  # nothing to go on: assume the CPU has everything rather than cry wolf
        return HostCpu(system, arch, frozenset())
    return HostCpu(system, arch, missing_from_flags(arch, flags))


def _host_os(cpu: HostCpu) -> OsName:
    return "macos" if cpu.os == "macos" else "linux"


def _model(model: str, profile: CpuProfile | None = None) -> tuple[frozenset[str], str]:
    label = f"qemu {model}" + (f" ({profile.name})" if profile else "")
    if model in QEMU_MODEL_MISSING:
        return QEMU_MODEL_MISSING[model], label
    return frozenset(), f"{label}: unknown model, assumed to have every extension"


def lane_target(lane: LaneConfig, host: HostCpu, *, docker_arch: str | None = None) -> LaneTarget | None:
    """What ``lane`` loads binaries for and which extensions its CPU lacks; None for a lane with no target.

    Read from the lane's resolved target. ``docker_arch`` is the Docker
    engine's own architecture when known (it decides whether a container is
    emulated); the host's otherwise.
    """
    target = target_of(lane)
    if target is None:
        return None
    if target.arch is None:  # the host as it is
        return LaneTarget(lane.id, _host_os(host), host.arch, host.missing, "this host's CPU")
    os_name: OsName = "macos" if target.os == "macos" else "linux"
    if target.platform is not None and target.arch == (docker_arch or host.arch):
        # a native container: the engine sets QEMU_CPU only for emulated ones
        return LaneTarget(lane.id, os_name, target.arch, host.missing, "this host's CPU")
    profile = target.cpu
    emulated_by_qemu = target.emulator == QEMU_USER or target.platform is not None
    if profile is None and not emulated_by_qemu:
        return LaneTarget(lane.id, os_name, target.arch, frozenset(), f"{target.arch} CPU")
    missing, cpu = _model(profile.qemu_cpu if profile else (target.emulated_cpu_default or "max"), profile)
    if not emulated_by_qemu and profile is not None:  # a real CPU (Apple's) or Rosetta, as its profile says
        cpu = f"{target.emulator + ': ' if target.emulator else ''}{profile.description or profile.name}"
    return LaneTarget(lane.id, os_name, target.arch, missing, cpu)


def lane_targets(lanes: Sequence[LaneConfig], host: HostCpu | None = None,
                 facts: HostFacts | None = None) -> list[LaneTarget]:
    host = host or detect_host_cpu()
    docker_arch = facts.docker.server_arch if facts and facts.docker.server_arch else None
    return [t for lane in lanes if (t := lane_target(lane, host, docker_arch=docker_arch)) is not None]


def default_lanes() -> tuple[LaneConfig, ...]:
    """The default lanes (the matrix shipped with archmatrix), for an audit run without a configuration."""
    from ..config import packaged_default

    return packaged_default().lanes


class ScannedImage(Protocol):
    """An image with its scan (report.ImageAudit)."""

    @property
    def format(self) -> str: ...
    @property
    def os(self) -> str: ...
    @property
    def arch(self) -> str: ...
    @property
    def scan(self) -> IsaScan: ...


def _kind(fmt: str) -> str:
    return "ELF" if fmt == "elf" else "Mach-O"


def predict(images: Sequence[ScannedImage], lane: LaneTarget, package: str | None = None) -> LanePrediction:
    """What loading this binary (all its images: a fat file has several) does in ``lane``.

    The loader picks the image for the lane's OS and architecture (one slice
    of a universal2 file); none means the binary cannot load at all there.
    Only code with no CPU probe at all predicts a failure; a probe the audit
    cannot tie to the code is ``unknown`` (see :meth:`IsaScan.guard_status`).
    """
    matching = [im for im in images if im.os == lane.os and im.arch == lane.arch]
    if not matching:
        have = ", ".join(sorted({f"{im.arch} {_kind(im.format)}" for im in images}))
        want = f"{lane.arch} {_kind('elf' if lane.os == 'linux' else 'macho')}"
        return LanePrediction(Prediction.WRONG_ARCH, f"{have}; the lane loads {want}")
    scan = matching[0].scan
    below = LEVEL_NEEDS.get(scan.baseline, frozenset()) & lane.missing
    if below:
        owner = package or "the binary"
        return LanePrediction(Prediction.ILLEGAL_INSTRUCTION,
                              f"this CPU is below {owner}'s baseline {scan.baseline} ({lane.cpu} lacks "
                              f"{', '.join(sorted(below))}); use a CPU with {scan.baseline}, or a build of "
                              f"{owner} for an older baseline", (scan.baseline,))
    needed = tuple(e for e in scan.sorted_extensions() if e in lane.missing)
    if not needed:
        return LanePrediction(Prediction.PASS)
    status = {e: scan.guard_status(e) for e in needed}
    bare = tuple(e for e in needed if status[e][0] == UNGUARDED)
    if bare:
        probes = "; ".join(f"{e}: {why}" for e in needed if (why := status[e][1]))
        return LanePrediction(Prediction.ILLEGAL_INSTRUCTION,
                              f"{'/'.join(bare)} with no CPU dispatch, e.g. {scan.examples[bare[0]]}; "
                              f"{lane.cpu} lacks {'it' if len(bare) == 1 else 'them'}"
                              + (f" (other code: {probes})" if probes else ""), bare)
    unknown = tuple(e for e in needed if status[e][0] == UNKNOWN)
    if unknown:
        return LanePrediction(Prediction.UNKNOWN,
                              f"{'/'.join(unknown)} code and a CPU probe the audit cannot tie to it "
                              f"({'; '.join(status[e][1] for e in unknown)}); {lane.cpu} lacks "
                              f"{'it' if len(unknown) == 1 else 'them'}", unknown)
    evidence = "; ".join(dict.fromkeys(status[e][1] for e in needed))
    return LanePrediction(Prediction.GUARDED, f"{'/'.join(needed)} selected at run time ({evidence})", needed)
