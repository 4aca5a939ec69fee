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

from .. import arch as arch_mod
from .. import elffile

# e_machine → architecture, as the one vocabulary has it (for tests and messages)
ELF_MACHINES = {a.elf_machine: a.name for a in arch_mod.known() if a.elf_machine is not None}

# The path ld.so (or ctypes) could not open: an absolute path, up to the colon.
NOT_FOUND = re.compile(r"(/[^\s:'\"]+): cannot open shared object file: No such file or directory")

# The sentence :func:`explain` writes; :data:`classify.WRONG_ARCH` matches it.
SENTENCE = "{path} is an ELF file for {file_arch}, but this process is {machine} (ld.so calls it missing)"


def elf_machine(header: bytes) -> str | None:
    """The architecture an ELF header is for; None when ``header`` is not ELF."""
    parsed = elffile.parse_header(header)
    return parsed.arch if parsed else None


def explain(text: str, machine: str | None = None) -> str:
    """One sentence per "cannot open shared object file" path that exists and is ELF for another machine.

    ``machine`` defaults to this process's (``platform.machine()``).
    """
    this = _norm(machine or platform.machine())
    lines = []
    for path in dict.fromkeys(NOT_FOUND.findall(text)):
        file_arch = elffile.file_arch(path)
        if file_arch is not None and _norm(file_arch) != this:
            lines.append(SENTENCE.format(path=path, file_arch=file_arch, machine=this))
    return "\n".join(lines)


_norm = arch_mod.normalise
