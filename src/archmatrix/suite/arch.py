"""The architecture vocabulary: one name per CPU architecture, one table of what others call it.

Every tool names the same architecture differently — the kernel and
``platform.machine()`` say ``x86_64``/``aarch64``, Docker and Debian
``amd64``/``arm64``, Apple ``x86_64``/``arm64``, ELF headers a number — and
each of those names used to have its own table somewhere in archmatrix. This
module is the one place that knows them (cibuildwheel's ``architecture.py``
and its ``ARCH_SYNONYMS`` are the model). A new architecture is one
:func:`register` call; nothing else branches on architecture names.

Stdlib only: the lane-side suite uses it too (reading ELF headers), and the
host side imports it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UnknownArch(ValueError):
    """A name that is no registered architecture's."""


@dataclass(frozen=True)
class Arch:
    name: str  # canonical: what the Linux kernel (uname -m) calls it
    docker: str  # Docker's, Debian's and Go's name: linux/<docker>, dpkg --print-architecture
    elf_machine: int | None = None  # ELF e_machine (elf.h)
    macos: str | None = None  # Apple's name (lipo, arch -<name>), where macOS runs on it
    synonyms: tuple[str, ...] = field(default=())  # other spellings seen in the wild

    def __str__(self) -> str:
        return self.name

    @property
    def docker_platform(self) -> str:
        return f"linux/{self.docker}"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for n in (self.name, self.docker, self.macos, *self.synonyms) if n))


_REGISTRY: dict[str, Arch] = {}
_BY_NAME: dict[str, Arch] = {}
_BY_ELF: dict[int, Arch] = {}


def register(arch: Arch) -> Arch:
    """Make ``arch`` known under all its names; returns it (for module-level constants)."""
    for name in arch.names:
        other = _BY_NAME.get(name.lower())
        if other is not None and other.name != arch.name:
            raise ValueError(f"{name!r} already names {other.name}")
    _REGISTRY[arch.name] = arch
    for name in arch.names:
        _BY_NAME[name.lower()] = arch
    if arch.elf_machine is not None:
        _BY_ELF[arch.elf_machine] = arch
    return arch


X86_64 = register(Arch("x86_64", docker="amd64", elf_machine=62, macos="x86_64",
                       synonyms=("x64", "x86-64", "em64t")))
AARCH64 = register(Arch("aarch64", docker="arm64", elf_machine=183, macos="arm64",
                        synonyms=("armv8", "armv8l", "arm64e")))
# Architectures archmatrix has no lanes for, but meets in files and messages
# (an i686 extension in a wheel, an ELF header of a riscv64 build).
register(Arch("i686", docker="386", elf_machine=3, synonyms=("i386", "i586", "x86")))
register(Arch("armv7l", docker="arm", elf_machine=40, synonyms=("arm", "armv7", "armhf")))
register(Arch("ppc64le", docker="ppc64le", elf_machine=21, synonyms=("ppc64", "powerpc64le")))
register(Arch("s390x", docker="s390x", elf_machine=22))
register(Arch("riscv64", docker="riscv64", elf_machine=243))
register(Arch("loongarch64", docker="loong64", elf_machine=258))


def known() -> tuple[Arch, ...]:
    return tuple(_REGISTRY.values())


def lookup(name: str) -> Arch | None:
    """The architecture ``name`` means in any tool's spelling (``arm64``, ``AMD64``, ``aarch64``), or None."""
    return _BY_NAME.get(name.strip().lower())


def parse(name: str) -> Arch:
    arch = lookup(name)
    if arch is None:
        raise UnknownArch(f"unknown architecture {name!r}; known: {', '.join(_REGISTRY)}")
    return arch


def normalise(name: str) -> str:
    """The canonical name for ``name``; an unknown name comes back lower-cased, as it was."""
    arch = lookup(name)
    return arch.name if arch else name.strip().lower()


def from_elf_machine(number: int) -> str:
    """The canonical name for an ELF ``e_machine``; ``e_machine N`` when it is none we know."""
    arch = _BY_ELF.get(number)
    return arch.name if arch else f"e_machine {number}"


def from_docker_platform(platform: str) -> Arch | None:
    """``linux/arm64`` → aarch64; None for another OS or an unknown architecture."""
    os_name, _, arch = platform.partition("/")
    if os_name != "linux" or not arch:
        return None
    found = lookup(arch.split("/")[0])
    return found if found is not None and found.docker == arch.split("/")[0] else None


def docker_platforms(arches: tuple[Arch, ...] | None = None) -> tuple[str, ...]:
    return tuple(a.docker_platform for a in (arches or (X86_64, AARCH64)))
