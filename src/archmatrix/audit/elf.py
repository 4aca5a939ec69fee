"""ELF shared objects: architecture, DT_NEEDED, the newest glibc symbol version, code and anchors.

pyelftools reads the headers, the dynamic section and the version needs.
Symbol tables and the ``.eh_frame_hdr`` search table are read with
``struct`` directly: OpenBLAS carries more than 10 000 symbols and
pyelftools' per-symbol objects would cost more time than the disassembly.
"""

from __future__ import annotations

import io
import re
import struct
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..suite.elffile import parse_header
from .image import BadBinary, Image, Region, clamp_regions

ELF_MAGIC = b"\x7fELF"

_GLIBC = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")

SHF_EXECINSTR = 0x4
PF_X = 0x1
STT_FUNC = 2
STT_GNU_IFUNC = 10
SHN_UNDEF = 0

# DWARF pointer encodings used by .eh_frame_hdr (LSB standard): value format
# in the low nibble, what it is relative to in the high nibble.
_DW_EH_PE_FORMATS = {0x03: "I", 0x0B: "i", 0x04: "Q", 0x0C: "q", 0x02: "H", 0x0A: "h"}
_DW_EH_PE_DATAREL = 0x30
_DW_EH_PE_OMIT = 0xFF


# What pyelftools raises on a corrupt file besides ELFError: garbage section
# tables give OverflowError (a seek past 2**63), TypeError, AttributeError …
_CORRUPT = (ELFError, struct.error, ValueError, KeyError, IndexError, OverflowError, TypeError,
            AttributeError, EOFError, OSError, RecursionError, UnicodeDecodeError)


def parse(data: bytes) -> Image:
    try:
        elf = ELFFile(io.BytesIO(data))
        return _parse(elf, data)
    except _CORRUPT as exc:
        raise BadBinary(f"unreadable ELF: {type(exc).__name__}: {exc}") from None


def _parse(elf: ELFFile, data: bytes) -> Image:
    header = parse_header(data)
    machine = str(elf["e_machine"])
    # the architecture's name from the one ELF header reader; pyelftools' name
    # for one archmatrix has no name for
    arch = header.arch if header and not header.arch.startswith("e_machine") else (
        machine.removeprefix("EM_").lower())
    if arch == "ppc64le" and not elf.little_endian:
        arch = "ppc64"
    image = Image(format="elf", os="linux", arch=arch, data=data)
    endian = "<" if elf.little_endian else ">"
    sections = list(elf.iter_sections()) if elf.num_sections() else []

    if sections:
        image.code = [
            Region(int(s["sh_offset"]), int(s["sh_size"]), int(s["sh_addr"]))
            for s in sections
            if int(s["sh_flags"]) & SHF_EXECINSTR and s["sh_type"] == "SHT_PROGBITS" and s["sh_size"]
        ]
    else:  # section headers stripped: the executable load segments are the code
        image.code = [
            Region(int(p["p_offset"]), int(p["p_filesz"]), int(p["p_vaddr"]))
            for p in elf.iter_segments()
            if p["p_type"] == "PT_LOAD" and int(p["p_flags"]) & PF_X and p["p_filesz"]
        ]
    image.code = clamp_regions(image.code, len(data))

    # pyelftools types these as plain Section/Segment; they are DynamicSection / GNUVerNeedSection
    dynamic: Any = elf.get_section_by_name(".dynamic") if sections else None
    if dynamic is None:
        dynamic = next((seg for seg in elf.iter_segments() if seg["p_type"] == "PT_DYNAMIC"), None)
    if dynamic is not None:
        image.needed = [str(tag.needed) for tag in dynamic.iter_tags("DT_NEEDED")]

    image.glibc = _newest_glibc(elf) if sections else None

    starts: list[int] = []
    for name, strtab in ((".dynsym", ".dynstr"), (".symtab", ".strtab")):
        sym = elf.get_section_by_name(name) if sections else None
        names = elf.get_section_by_name(strtab) if sections else None
        if sym is None or names is None:
            continue
        _read_symbols(image, data, sym, names, elf.elfclass, endian, starts, imports=name == ".dynsym")
    starts.extend(_eh_frame_starts(elf, data, endian) if sections else [])
    image.set_anchors(starts)
    return image


def _newest_glibc(elf: ELFFile) -> tuple[int, ...] | None:
    section: Any = elf.get_section_by_name(".gnu.version_r")
    if section is None:
        return None
    newest: tuple[int, ...] | None = None
    for _verneed, auxiliaries in section.iter_versions():
        for aux in auxiliaries:
            m = _GLIBC.match(str(aux.name))
            if m:
                version = tuple(int(g) for g in m.groups() if g is not None)
                if newest is None or version > newest:
                    newest = version
    return newest


def _read_symbols(image: Image, data: bytes, sym: Any, names: Any, elfclass: int, endian: str,
                  starts: list[int], *, imports: bool) -> None:
    off, size = int(sym["sh_offset"]), int(sym["sh_size"])
    str_off, str_size = int(names["sh_offset"]), int(names["sh_size"])
    if elfclass == 64:
        fmt, entsize = endian + "IBBHQQ", 24
    else:
        fmt, entsize = endian + "IIIBBH", 16
    table = data[off:off + size - size % entsize]
    for entry in struct.iter_unpack(fmt, table):
        if elfclass == 64:
            name_off, info, _other, shndx, value, _size = entry
        else:
            name_off, value, _size, info, _other, shndx = entry
        kind = info & 0xF
        if kind == STT_GNU_IFUNC and shndx != SHN_UNDEF:
            image.ifuncs += 1
        if kind in (STT_FUNC, STT_GNU_IFUNC) and shndx != SHN_UNDEF and value:
            starts.append(value)
        elif imports and shndx == SHN_UNDEF and name_off and name_off < str_size:
            start = str_off + name_off
            end = data.find(b"\0", start, str_off + str_size)
            image.imports.add(data[start:end if end >= 0 else str_off + str_size].decode("latin-1"))


def _eh_frame_starts(elf: ELFFile, data: bytes, endian: str) -> list[int]:
    """Function start addresses from the ``.eh_frame_hdr`` binary-search table.

    The table lists the first address of every function with unwind info:
    nearly all compiled code, read in one ``struct.iter_unpack`` instead of
    parsing each FDE.
    """
    hdr = elf.get_section_by_name(".eh_frame_hdr")
    if hdr is None:
        return []
    base_off, base_addr, size = int(hdr["sh_offset"]), int(hdr["sh_addr"]), int(hdr["sh_size"])
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
    table = raw[pos:pos + count * struct.calcsize(pair)]
    table = table[:len(table) - len(table) % struct.calcsize(pair)]
    relative = base_addr if table_enc & 0x70 == _DW_EH_PE_DATAREL else 0
    return [relative + start for start, _fde in struct.iter_unpack(pair, table)]
