"""Mach-O files: thin images and every slice of fat (universal2) files.

The headers are a few fixed structs (``<mach-o/loader.h>``, ``<mach-o/fat.h>``),
so they are read with ``struct`` here rather than through a dependency;
macholib would add a package for the same dozen fields and does not expose
LC_FUNCTION_STARTS.
"""

from __future__ import annotations

import struct

from ..suite import arch as arch_mod
from .image import BadBinary, Image, Region, clamp_regions

MH_MAGIC_64 = 0xFEEDFACF
MH_MAGIC = 0xFEEDFACE
FAT_MAGIC = 0xCAFEBABE
FAT_MAGIC_64 = 0xCAFEBABF
MAX_FAT_ARCHES = 16  # Java class files share 0xCAFEBABE; their "count" is a version ≥ 45

CPU_ARCH_ABI64 = 0x01000000
_CPU_TYPES = {
    7: "i686",
    7 | CPU_ARCH_ABI64: "x86_64",
    12: "armv7",
    12 | CPU_ARCH_ABI64: "aarch64",  # arm64 and arm64e
    18: "ppc",
    18 | CPU_ARCH_ABI64: "ppc64",
}
# Load commands (LC_REQ_DYLD = 0x80000000 marks those dyld must understand).
LC_SEGMENT = 0x1
LC_SYMTAB = 0x2
LC_LOAD_DYLIB = 0xC
LC_SEGMENT_64 = 0x19
LC_VERSION_MIN_MACOSX = 0x24
LC_FUNCTION_STARTS = 0x26
LC_LAZY_LOAD_DYLIB = 0x20
LC_BUILD_VERSION = 0x32
LC_LOAD_WEAK_DYLIB = 0x80000018
LC_REEXPORT_DYLIB = 0x8000001F
LC_LOAD_UPWARD_DYLIB = 0x80000023
_DYLIB_COMMANDS = {LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, LC_LAZY_LOAD_DYLIB,
                   LC_LOAD_UPWARD_DYLIB}
PLATFORM_MACOS = 1
S_ATTR_PURE_INSTRUCTIONS = 0x80000000
S_ATTR_SOME_INSTRUCTIONS = 0x00000400
N_EXT = 0x01
N_TYPE = 0x0E
N_UNDF = 0x0


def is_macho(head: bytes) -> bool:
    if len(head) < 8:
        return False
    if struct.unpack_from("<I", head)[0] in (MH_MAGIC_64, MH_MAGIC):
        return True
    magic, count = struct.unpack_from(">II", head)
    return magic in (FAT_MAGIC, FAT_MAGIC_64) and 0 < count <= MAX_FAT_ARCHES


def slice_name(arch: str) -> str:
    """The name Apple tools use for an architecture (``lipo -archs``)."""
    known = arch_mod.lookup(arch)
    return known.macos if known is not None and known.macos else arch


def parse(data: bytes) -> list[Image]:
    """One image per architecture: a thin file has one, a fat file one per slice."""
    try:
        if len(data) < 8:
            raise BadBinary("truncated Mach-O header")
        magic = struct.unpack_from(">I", data)[0]
        if magic in (FAT_MAGIC, FAT_MAGIC_64):
            return [_thin(data[off:off + size]) for off, size in _fat_slices(data, magic)]
        return [_thin(data)]
    except (struct.error, ValueError, OverflowError, IndexError) as exc:
        raise BadBinary(f"truncated Mach-O: {exc}") from None


def _fat_slices(data: bytes, magic: int) -> list[tuple[int, int]]:
    (count,) = struct.unpack_from(">I", data, 4)
    if not 0 < count <= MAX_FAT_ARCHES:
        raise BadBinary(f"fat header claims {count} architectures")
    slices = []
    pos = 8
    for _ in range(count):
        if magic == FAT_MAGIC:
            _cpu, _sub, offset, size, _align = struct.unpack_from(">iiIII", data, pos)
            pos += 20
        else:
            _cpu, _sub, offset, size, _align, _reserved = struct.unpack_from(">iiQQII", data, pos)
            pos += 32
        if offset + size > len(data):
            raise BadBinary(f"fat slice at {offset} (+{size}) runs past the end of the file")
        slices.append((offset, size))
    return slices


def _thin(data: bytes) -> Image:
    (magic,) = struct.unpack_from("<I", data)
    if magic == MH_MAGIC_64:
        cputype, _sub, _ftype, ncmds, sizeofcmds, _flags = struct.unpack_from("<iiIIII", data, 4)
        pos = 32
    elif magic == MH_MAGIC:
        cputype, _sub, _ftype, ncmds, sizeofcmds, _flags = struct.unpack_from("<iiIIII", data, 4)
        pos = 28
    else:
        raise BadBinary(f"not a little-endian Mach-O image (magic {magic:#x})")
    arch = _CPU_TYPES.get(cputype & 0xFFFFFFFF, f"cputype-{cputype:#x}")
    image = Image(format="macho", os="macos", arch=arch, data=data)
    end = pos + sizeofcmds
    if end > len(data):
        raise BadBinary("load commands run past the end of the file")
    text_vmaddr: int | None = None
    function_starts: tuple[int, int] | None = None
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if size < 8 or pos + size > end:
            raise BadBinary(f"load command {cmd:#x} has a bad size {size}")
        if cmd in (LC_SEGMENT_64, LC_SEGMENT):
            vmaddr = _segment(image, data, pos, wide=cmd == LC_SEGMENT_64)
            if text_vmaddr is None and vmaddr is not None:
                text_vmaddr = vmaddr
        elif cmd in _DYLIB_COMMANDS:
            (name_off,) = struct.unpack_from("<I", data, pos + 8)
            raw = data[pos + name_off:pos + size]
            image.needed.append(raw.split(b"\0", 1)[0].decode("utf-8", "replace"))
        elif cmd == LC_BUILD_VERSION:
            platform, minos = struct.unpack_from("<II", data, pos + 8)
            if platform == PLATFORM_MACOS:
                image.min_macos = _version(minos)
        elif cmd == LC_VERSION_MIN_MACOSX:
            (version,) = struct.unpack_from("<I", data, pos + 8)
            image.min_macos = image.min_macos or _version(version)
        elif cmd == LC_FUNCTION_STARTS:
            function_starts = struct.unpack_from("<II", data, pos + 8)
        elif cmd == LC_SYMTAB:
            _imports(image, data, *struct.unpack_from("<IIII", data, pos + 8), wide=magic == MH_MAGIC_64)
        pos += size
    image.code = clamp_regions(image.code, len(data))
    starts: list[int] = []
    if function_starts is not None and text_vmaddr is not None:
        starts = _uleb_starts(data, *function_starts, text_vmaddr)
    image.set_anchors(starts)
    return image


def _segment(image: Image, data: bytes, pos: int, *, wide: bool) -> int | None:
    """Add the segment's code sections; return the vmaddr of __TEXT (function starts count from it)."""
    if wide:
        segname, vmaddr, _vmsize, _fileoff, _filesize, _maxp, _initp, nsects, _flags = struct.unpack_from(
            "<16sQQQQiiII", data, pos + 8)
        sect_pos, sect_fmt, sect_size = pos + 72, "<16s16sQQIIIIIIII", 80
    else:
        segname, vmaddr, _vmsize, _fileoff, _filesize, _maxp, _initp, nsects, _flags = struct.unpack_from(
            "<16sIIIIiiII", data, pos + 8)
        sect_pos, sect_fmt, sect_size = pos + 56, "<16s16sIIIIIIIII", 68
    for i in range(nsects):
        fields = struct.unpack_from(sect_fmt, data, sect_pos + i * sect_size)
        addr, size, offset, flags = fields[2], fields[3], fields[4], fields[8]
        if flags & (S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS) and size and offset:
            size = min(size, max(0, len(data) - offset))
            image.code.append(Region(offset, size, addr))
    return int(vmaddr) if segname.rstrip(b"\0") == b"__TEXT" else None


def _imports(image: Image, data: bytes, symoff: int, nsyms: int, stroff: int, strsize: int,
             *, wide: bool) -> None:
    fmt = "<IBBHQ" if wide else "<IBBhI"
    entsize = struct.calcsize(fmt)
    table = data[symoff:symoff + nsyms * entsize]
    table = table[:len(table) - len(table) % entsize]
    for strx, ntype, _sect, _desc, _value in struct.iter_unpack(fmt, table):
        if ntype & N_EXT and ntype & N_TYPE == N_UNDF and 0 < strx < strsize:
            start = stroff + strx
            stop = data.find(b"\0", start, stroff + strsize)
            name = data[start:stop if stop >= 0 else stroff + strsize].decode("latin-1")
            image.imports.add(name.removeprefix("_"))  # C symbols carry a leading underscore


def _uleb_starts(data: bytes, offset: int, size: int, base: int) -> list[int]:
    """LC_FUNCTION_STARTS: ULEB128 deltas from the start of __TEXT, ended by a zero.

    Linear in the table's size: a delta longer than 64 bits is corrupt and
    ends the table (accumulating it would shift an ever larger integer:
    quadratic, a minute for a crafted 1 MiB table).
    """
    out: list[int] = []
    address = base
    value = shift = 0
    for byte in data[offset:offset + size]:
        if shift > 63:
            break
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            continue
        if value == 0:
            break
        address += value
        out.append(address)
        value = shift = 0
    return out


def _version(packed: int) -> tuple[int, ...]:
    """xxxx.yy.zz in nibbles; a trailing .0 patch level is dropped (11.0, not 11.0.0)."""
    major, minor, patch = packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF
    return (major, minor, patch) if patch else (major, minor)
