"""ELF shared objects: architecture, DT_NEEDED, the newest glibc symbol version, code and anchors.

Read with ``struct`` over the file's bytes: the section and program header
tables, the dynamic section, the version needs, the symbol tables and the
``.eh_frame_hdr`` search table. (pyelftools, used before, re-parsed a
section header for every lookup: half the audit's time on a scipy
environment, and a garbage section table made it raise OverflowError.)
Every count and offset comes from the file, so each is checked against the
file's size and every loop is bounded by the bytes it walks: a hostile file
costs at most a linear pass.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ..suite.elffile import parse_header
from .image import BadBinary, Image, Region, clamp_regions

ELF_MAGIC = b"\x7fELF"

_GLIBC = re.compile(rb"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")

SHF_EXECINSTR = 0x4
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_DYNSYM = 11
SHT_DYNAMIC = 6
SHT_NOBITS = 8
SHT_GNU_VERNEED = 0x6FFFFFFE
PT_LOAD = 1
PT_DYNAMIC = 2
PF_X = 0x1
DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
STT_FUNC = 2
STT_GNU_IFUNC = 10
SHN_UNDEF = 0

# DWARF pointer encodings used by .eh_frame_hdr (LSB standard): value format
# in the low nibble, what it is relative to in the high nibble.
_DW_EH_PE_FORMATS = {0x03: "I", 0x0B: "i", 0x04: "Q", 0x0C: "q", 0x02: "H", 0x0A: "h"}
_DW_EH_PE_DATAREL = 0x30
_DW_EH_PE_OMIT = 0xFF


@dataclass(frozen=True)
class _Section:
    name: bytes
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int


@dataclass(frozen=True)
class _Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


def parse(data: bytes) -> Image:
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError, OverflowError) as exc:
        raise BadBinary(f"corrupt ELF: {type(exc).__name__}: {exc}") from None


def _parse(data: bytes) -> Image:
    header = parse_header(data)
    if header is None or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise BadBinary(f"corrupt ELF: class {data[4:5]!r}, data encoding {data[5:6]!r}")
    wide = header.bits == 64
    endian = "<" if header.little_endian else ">"
    arch = header.arch
    if arch == "ppc64le" and not header.little_endian:
        arch = "ppc64"
    image = Image(format="elf", os="linux", arch=arch, data=data)
    sections = _sections(data, endian, wide)
    segments = _segments(data, endian, wide)

    if sections:
        image.code = [Region(s.offset, s.size, s.addr) for s in sections
                      if s.flags & SHF_EXECINSTR and s.type == SHT_PROGBITS and s.size]
    else:  # section headers stripped: the executable load segments are the code
        image.code = [Region(p.offset, p.filesz, p.vaddr) for p in segments
                      if p.type == PT_LOAD and p.flags & PF_X and p.filesz]
    image.code = clamp_regions(image.code, len(data))

    image.needed = _needed(data, endian, wide, sections, segments)
    image.glibc = _newest_glibc(data, endian, sections)

    starts: list[int] = []
    for kind in (SHT_DYNSYM, SHT_SYMTAB):
        for sym in (s for s in sections if s.type == kind):
            names = sections[sym.link] if 0 < sym.link < len(sections) else None
            if names is not None:
                _read_symbols(image, data, sym, names, wide, endian, starts, imports=kind == SHT_DYNSYM)
    hdr = next((s for s in sections if s.name == b".eh_frame_hdr"), None)
    if hdr is not None:
        starts.extend(_eh_frame_starts(data, hdr, endian))
    image.set_anchors(starts)
    return image


def _sections(data: bytes, endian: str, wide: bool) -> list[_Section]:
    if wide:
        shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
        fmt = endian + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
        fmt = endian + "IIIIIIIIII"
    size = struct.calcsize(fmt)
    if shoff == 0 or shnum == 0:
        return []
    if shentsize < size or shoff + shnum * shentsize > len(data):
        raise BadBinary(f"corrupt ELF: section header table ({shnum} × {shentsize} bytes at {shoff}) "
                        f"does not fit in the file ({len(data)} bytes)")
    raw = []
    for i in range(shnum):
        name, typ, flags, addr, offset, sz, link, _info, _align, _entsize = struct.unpack_from(
            fmt, data, shoff + i * shentsize)
        raw.append((name, typ, flags, addr, offset, sz, link))
    for i, (_n, typ, _f, _a, offset, sz, _l) in enumerate(raw):
        # SHT_NULL and SHT_NOBITS (.bss) occupy no bytes of the file; any other
        # section past its end means the table is garbage, not a file to guess at
        if typ not in (0, SHT_NOBITS) and offset + sz > len(data):
            raise BadBinary(f"corrupt ELF: section {i} ({sz} bytes at {offset}) runs past the end of "
                            f"the file ({len(data)} bytes)")
    strtab = raw[shstrndx] if shstrndx < len(raw) else None

    def name_of(off: int) -> bytes:
        if strtab is None or off >= strtab[5] or strtab[4] >= len(data):
            return b""
        start = strtab[4] + off
        end = data.find(b"\0", start, min(len(data), strtab[4] + strtab[5]))
        return data[start:end] if end >= 0 else b""

    return [_Section(name_of(n), t, f, a, o, s, ln) for n, t, f, a, o, s, ln in raw]


def _segments(data: bytes, endian: str, wide: bool) -> list[_Segment]:
    if wide:
        phoff, = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
        fmt, fields = endian + "IIQQQQQQ", (0, 1, 2, 3, 5)  # type flags offset vaddr _paddr filesz
    else:
        phoff, = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
        fmt, fields = endian + "IIIIIIII", (0, 6, 1, 2, 4)  # type offset vaddr _paddr filesz _memsz flags
    size = struct.calcsize(fmt)
    if phoff == 0 or phnum == 0 or phentsize < size or phoff + phnum * phentsize > len(data):
        return []  # the sections are enough; only a stripped file needs these
    out = []
    for i in range(phnum):
        v = struct.unpack_from(fmt, data, phoff + i * phentsize)
        typ, flags, offset, vaddr, filesz = (v[j] for j in fields)
        out.append(_Segment(typ, flags, offset, vaddr, filesz))
    return out


def _cstring(data: bytes, start: int, end: int) -> bytes:
    if not 0 <= start < min(end, len(data)):
        return b""
    stop = data.find(b"\0", start, end)
    return data[start:stop if stop >= 0 else end]


def _vaddr_to_offset(segments: list[_Segment], vaddr: int) -> int | None:
    for p in segments:
        if p.type == PT_LOAD and p.vaddr <= vaddr < p.vaddr + p.filesz:
            return p.offset + (vaddr - p.vaddr)
    return None


def _needed(data: bytes, endian: str, wide: bool, sections: list[_Section],
            segments: list[_Segment]) -> list[str]:
    dynamic = next((s for s in sections if s.type == SHT_DYNAMIC), None)
    strtab: tuple[int, int] | None = None
    if dynamic is not None:
        start, size = dynamic.offset, dynamic.size
        if 0 < dynamic.link < len(sections):
            link = sections[dynamic.link]
            strtab = (link.offset, link.offset + link.size)
    else:
        seg = next((p for p in segments if p.type == PT_DYNAMIC), None)
        if seg is None:
            return []
        start, size = seg.offset, seg.filesz
    fmt = endian + ("qQ" if wide else "iI")
    entsize = struct.calcsize(fmt)
    table = data[start:start + size]
    entries = []
    for tag, value in struct.iter_unpack(fmt, table[:len(table) - len(table) % entsize]):
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    if strtab is None:  # no sections: DT_STRTAB is an address
        addr = next((v for t, v in entries if t == DT_STRTAB), None)
        off = _vaddr_to_offset(segments, addr) if addr is not None else None
        if off is None:
            return []
        strtab = (off, len(data))
    end = min(strtab[1], len(data))
    return [_cstring(data, strtab[0] + v, end).decode("utf-8", "replace")
            for t, v in entries if t == DT_NEEDED]


def _newest_glibc(data: bytes, endian: str, sections: list[_Section]) -> tuple[int, ...] | None:
    section = next((s for s in sections if s.type == SHT_GNU_VERNEED), None)
    if section is None or not 0 < section.link < len(sections):
        return None
    names = sections[section.link]
    names_end = min(names.offset + names.size, len(data))
    end = min(section.offset + section.size, len(data))
    newest: tuple[int, ...] | None = None
    pos = section.offset
    # every entry is at least 16 bytes: the loops end within the section even if the links go round
    for _ in range(section.size // 16 + 1):
        if pos + 16 > end:
            break
        _version, count, _file, aux, nxt = struct.unpack_from(endian + "HHIII", data, pos)
        apos = pos + aux
        for _ in range(min(count, section.size // 16)):
            if apos + 16 > end:
                break
            _hash, _flags, _other, name, anext = struct.unpack_from(endian + "IHHII", data, apos)
            m = _GLIBC.match(_cstring(data, names.offset + name, names_end))
            if m:
                version = tuple(int(g) for g in m.groups() if g is not None)
                if newest is None or version > newest:
                    newest = version
            if not anext:
                break
            apos += anext
        if not nxt:
            break
        pos += nxt
    return newest


def _read_symbols(image: Image, data: bytes, sym: _Section, names: _Section, wide: bool, endian: str,
                  starts: list[int], *, imports: bool) -> None:
    off, size = sym.offset, sym.size
    str_off, str_size = names.offset, names.size
    if wide:
        fmt, entsize = endian + "IBBHQQ", 24
    else:
        fmt, entsize = endian + "IIIBBH", 16
    table = data[off:off + size]
    table = table[:len(table) - len(table) % entsize]
    str_end = min(len(data), str_off + str_size)
    for entry in struct.iter_unpack(fmt, table):
        if wide:
            name_off, info, _other, shndx, value, _size = entry
        else:
            name_off, value, _size, info, _other, shndx = entry
        kind = info & 0xF
        if kind == STT_GNU_IFUNC and shndx != SHN_UNDEF:
            image.ifuncs += 1
        if kind in (STT_FUNC, STT_GNU_IFUNC) and shndx != SHN_UNDEF and value:
            starts.append(value)
        elif imports and shndx == SHN_UNDEF and name_off and name_off < str_size:
            image.imports.add(_cstring(data, str_off + name_off, str_end).decode("latin-1"))


def _eh_frame_starts(data: bytes, hdr: _Section, endian: str) -> list[int]:
    """Function start addresses from the ``.eh_frame_hdr`` binary-search table.

    The table lists the first address of every function with unwind info:
    nearly all compiled code, read in one ``struct.iter_unpack`` instead of
    parsing each FDE.
    """
    base_off, base_addr, size = hdr.offset, hdr.addr, hdr.size
    raw = data[base_off:base_off + size]
    if len(raw) < 4 or raw[0] != 1:
        return []
    ptr_enc, count_enc, table_enc = raw[1], raw[2], raw[3]
    pos = 4
    if ptr_enc != _DW_EH_PE_OMIT:
        fmt = _DW_EH_PE_FORMATS.get(ptr_enc & 0x0F)
        if fmt is None:
            return []
        pos += struct.calcsize(fmt)
    count_fmt = _DW_EH_PE_FORMATS.get(count_enc & 0x0F)
    entry_fmt = _DW_EH_PE_FORMATS.get(table_enc & 0x0F)
    if count_enc == _DW_EH_PE_OMIT or count_fmt is None or entry_fmt is None:
        return []
    (count,) = struct.unpack_from(endian + count_fmt, raw, pos)
    pos += struct.calcsize(count_fmt)
    pair = endian + entry_fmt * 2
    table = raw[pos:pos + max(0, count) * struct.calcsize(pair)]
    table = table[:len(table) - len(table) % struct.calcsize(pair)]
    relative = base_addr if table_enc & 0x70 == _DW_EH_PE_DATAREL else 0
    return [relative + start for start, _fde in struct.iter_unpack(pair, table)]
