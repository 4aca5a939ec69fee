"""What the audit knows about one native binary image (an ELF file, or one slice of a Mach-O file).

The format parsers (:mod:`.elf`, :mod:`.macho`) fill it in; the ISA scanner
(:mod:`.isa`) reads only ``data``, ``code`` and ``anchors``, so it does not
care which format the bytes came from.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Literal

Format = Literal["elf", "macho"]
OsName = Literal["linux", "macos"]


class BadBinary(Exception):
    """Bytes that start like a binary but cannot be parsed (truncated, corrupt)."""


@dataclass(frozen=True)
class Region:
    """Executable bytes: ``size`` bytes at file ``offset``, loaded at ``vaddr``."""

    offset: int
    size: int
    vaddr: int

    @property
    def end(self) -> int:
        return self.offset + self.size


def clamp_regions(regions: list[Region], size: int) -> list[Region]:
    """Code regions inside the file, sorted, overlaps merged.

    A corrupt section table can claim the same gigabyte 65 535 times; scanning
    each claim would make the audit's time the product of the two.
    """
    out: list[Region] = []
    for r in sorted(regions, key=lambda r: (r.offset, -r.size)):
        if r.offset >= size or r.size <= 0:
            continue
        r = Region(r.offset, min(r.size, size - r.offset), r.vaddr)
        if out and r.offset < out[-1].end:
            last = out[-1]
            if r.end > last.end:  # keep the first mapping; extend it over the rest
                out[-1] = Region(last.offset, r.end - last.offset, last.vaddr)
            continue
        out.append(r)
    return out


@dataclass
class Image:
    format: Format
    os: OsName
    arch: str  # normalised like hostfacts: x86_64, aarch64, i686, armv7l, ppc64le, ...
    data: bytes  # this image's bytes only (a Mach-O slice, not the whole fat file)
    code: list[Region] = field(default_factory=list)
    # File offsets known to start an instruction (function starts from the
    # unwind tables, symbols, LC_FUNCTION_STARTS): x86 decoding syncs on them.
    anchors: list[int] = field(default_factory=list)
    needed: list[str] = field(default_factory=list)  # DT_NEEDED / LC_LOAD_DYLIB, in order
    imports: set[str] = field(default_factory=set)  # undefined dynamic symbols
    ifuncs: int = 0  # STT_GNU_IFUNC symbols: glibc-style run-time selection
    glibc: tuple[int, ...] | None = None  # newest GLIBC_x.y symbol version needed
    min_macos: tuple[int, ...] | None = None  # LC_BUILD_VERSION / LC_VERSION_MIN_MACOSX

    def vaddr_to_offset(self, vaddr: int) -> int | None:
        for r in self.code:
            if r.vaddr <= vaddr < r.vaddr + r.size:
                return r.offset + (vaddr - r.vaddr)
        return None

    def set_anchors(self, vaddrs: list[int]) -> None:
        """Keep the addresses that fall in code, as sorted unique file offsets."""
        ordered = sorted(set(vaddrs))
        offsets: set[int] = set()
        for r in self.code:  # per region, the slice of sorted addresses inside it: no per-address scan
            lo, hi = bisect.bisect_left(ordered, r.vaddr), bisect.bisect_left(ordered, r.vaddr + r.size)
            delta = r.offset - r.vaddr
            offsets.update(v + delta for v in ordered[lo:hi])
        offsets.update(r.offset for r in self.code)  # a code section starts with an instruction
        self.anchors = sorted(offsets)

    def anchor_before(self, offset: int) -> int | None:
        i = bisect.bisect_right(self.anchors, offset)
        return self.anchors[i - 1] if i else None


def version_text(version: tuple[int, ...] | None) -> str:
    return ".".join(str(v) for v in version) if version else ""
