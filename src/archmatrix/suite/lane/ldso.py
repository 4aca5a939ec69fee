"""What the dynamic loader did not say: that a "missing" shared object is there, for another CPU.

glibc's ``ld.so`` skips a file whose ELF header names another machine and
then reports it exactly as it reports a file that does not exist::

    ImportError: /opt/…/wrongarch/_native.abi3.so: cannot open shared object file: No such file or directory

(seen in the ``linux-arm64-docker`` lane for an x86-64 extension; Debian
bookworm, glibc 2.36). Only ``wrong ELF class`` (32- vs 64-bit) gets its own
words. So when the lane sees that message for a path that exists, it reads the
file's ELF header and says what it is; :mod:`classify` turns that sentence into
``wrong-arch``. The message of a file that is really missing stays as it was.

Stdlib only: this runs in the suite's supervisor, inside lanes.
"""

from __future__ import annotations

import platform
import re

# ELF e_machine values (elf.h) → the names platform.machine() uses.
ELF_MACHINES = {
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm",
    62: "x86_64",
    183: "aarch64",
    243: "riscv64",
    258: "loongarch64",
}
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64", "i686": "i386", "i586": "i386", "armv7l": "arm",
            "ppc64le": "ppc64"}

# The path ld.so (or ctypes) could not open: an absolute path, up to the colon.
NOT_FOUND = re.compile(r"(/[^\s:'\"]+): cannot open shared object file: No such file or directory")

# The sentence :func:`explain` writes; :data:`classify.WRONG_ARCH` matches it.
SENTENCE = "{path} is an ELF file for {file_arch}, but this process is {machine} (ld.so calls it missing)"


def elf_machine(header: bytes) -> str | None:
    """The architecture an ELF header is for; None when ``header`` is not ELF."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    number = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return ELF_MACHINES.get(number, f"e_machine {number}")


def _read_header(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(20)
    except OSError:
        return b""


def explain(text: str, machine: str | None = None) -> str:
    """One sentence per "cannot open shared object file" path that exists and is ELF for another machine.

    ``machine`` defaults to this process's (``platform.machine()``).
    """
    this = _norm(machine or platform.machine())
    lines = []
    for path in dict.fromkeys(NOT_FOUND.findall(text)):
        file_arch = elf_machine(_read_header(path))
        if file_arch is not None and _norm(file_arch) != this:
            lines.append(SENTENCE.format(path=path, file_arch=file_arch, machine=this))
    return "\n".join(lines)


def _norm(name: str) -> str:
    return _ALIASES.get(name.lower(), name.lower())
