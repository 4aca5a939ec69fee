"""The one architecture vocabulary and the one ELF header reader."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from archmatrix import hostfacts
from archmatrix.audit import macho
from archmatrix.runners.docker import PLATFORMS
from archmatrix.suite import arch, elffile
from archmatrix.suite.lane import ldso


@pytest.mark.parametrize(("name", "canonical"), [
    ("x86_64", "x86_64"), ("AMD64", "x86_64"), ("amd64", "x86_64"), ("x64", "x86_64"), ("x86-64", "x86_64"),
    ("aarch64", "aarch64"), ("arm64", "aarch64"), ("ARM64", "aarch64"), ("armv8", "aarch64"),
    ("arm64e", "aarch64"), ("i386", "i686"), ("armhf", "armv7l"), ("ppc64le", "ppc64le"),
    ("riscv64", "riscv64"), ("mips", "mips"),  # unknown: as it was, lower-cased
])
def test_every_tools_name_means_one_architecture(name: str, canonical: str) -> None:
    assert arch.normalise(name) == canonical


def test_each_tool_gets_its_own_name_back() -> None:
    x86 = arch.X86_64
    assert (x86.docker, x86.macos, x86.docker_platform) == ("amd64", "x86_64", "linux/amd64")
    assert (arch.AARCH64.docker, arch.AARCH64.macos, arch.AARCH64.elf_machine) == ("arm64", "arm64", 183)
    assert arch.from_docker_platform("linux/arm64") is arch.AARCH64
    assert arch.from_docker_platform("linux/aarch64") is None  # Docker says arm64
    assert arch.from_docker_platform("windows/amd64") is None
    assert macho.slice_name("aarch64") == "arm64" and macho.slice_name("x86_64") == "x86_64"


def test_the_other_tables_are_derived_from_it() -> None:
    assert PLATFORMS == {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
    assert hostfacts.normalise_arch("arm64") == "aarch64"
    assert ldso.ELF_MACHINES[62] == "x86_64" and ldso.ELF_MACHINES[183] == "aarch64"


def test_a_name_cannot_mean_two_architectures() -> None:
    with pytest.raises(ValueError, match="already names x86_64"):
        arch.register(arch.Arch("x86_64-clone", docker="amd64"))
    with pytest.raises(arch.UnknownArch):
        arch.parse("z80")


def _header(machine: int, *, bits: int = 64, little: bool = True) -> bytes:
    order = "<" if little else ">"
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1]) + bytes(9)
    return ident + struct.pack(order + "HH", 3, machine)


def test_the_elf_reader_names_the_architecture(tmp_path: Path) -> None:
    assert elffile.parse_header(_header(62)) == elffile.ElfHeader(bits=64, little_endian=True, machine=62)
    assert elffile.parse_header(_header(183)).arch == "aarch64"  # type: ignore[union-attr]
    assert elffile.parse_header(_header(22, little=False)).arch == "s390x"  # type: ignore[union-attr]
    assert elffile.parse_header(_header(3, bits=32)).bits == 32  # type: ignore[union-attr]
    assert elffile.parse_header(_header(9999)).arch == "e_machine 9999"  # type: ignore[union-attr]
    assert elffile.parse_header(b"#!/bin/sh\n" + bytes(20)) is None
    assert elffile.parse_header(b"\x7fELF") is None
    (tmp_path / "lib.so").write_bytes(_header(183) + bytes(100))
    (tmp_path / "link.so").symlink_to(tmp_path / "lib.so")
    assert elffile.file_arch(tmp_path / "link.so") == "aarch64"
    assert elffile.file_arch(tmp_path / "missing.so") is None
    assert elffile.file_arch(Path(sys.executable).resolve()) == arch.normalise(hostfacts.machine())
