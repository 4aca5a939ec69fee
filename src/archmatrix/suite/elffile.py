"""The one ELF header reader: which architecture a file is for (stdlib, like packaging's ``_elffile``).

The lane-side ld.so explanation, the qemu runner's "is this interpreter
really an ELF binary of the profile's architecture?" and the audit all ask
the same question of the first 20 bytes of a file. The audit reads far more
(sections, symbols, code), but takes the architecture from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import arch as arch_mod

MAGIC = b"\x7fELF"
HEADER_SIZE = 20  # e_ident (16) + e_type (2) + e_machine (2)


@dataclass(frozen=True)
class ElfHeader:
    bits: int  # 32 or 64 (EI_CLASS)
    little_endian: bool  # EI_DATA
    machine: int  # e_machine

    @property
    def arch(self) -> str:
        """Canonical architecture name (``x86_64``, ``aarch64``, …), ``e_machine N`` when unknown."""
        return arch_mod.from_elf_machine(self.machine)


def parse_header(data: bytes) -> ElfHeader | None:
    """The header of ``data``; None when it is not ELF (a script, a Mach-O, too short)."""
    if len(data) < HEADER_SIZE or data[:4] != MAGIC:
        return None
    little = data[5] == 1
    return ElfHeader(
        bits=64 if data[4] == 2 else 32,
        little_endian=little,
        machine=int.from_bytes(data[18:20], "little" if little else "big"),
    )


def read_header(path: str | os.PathLike[str]) -> ElfHeader | None:
    """The ELF header of the file at ``path`` (symlinks followed); None when unreadable or not ELF."""
    try:
        with open(path, "rb") as fh:
            return parse_header(fh.read(HEADER_SIZE))
    except OSError:
        return None


def file_arch(path: str | os.PathLike[str]) -> str | None:
    header = read_header(path)
    return header.arch if header else None
