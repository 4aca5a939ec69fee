"""Which binaries a check that died of a signal had loaded: the suspects of an illegal instruction.

What a lane can observe of a SIGILL is little. A Python-level handler never
runs (the C code re-executes the instruction forever), the process's
``/proc/self/maps`` vanishes with it, and neither qemu-user nor the kernel
tells a parent the faulting address (qemu prints only "uncaught target
signal 4"; ``si_addr`` reaches no one but a C handler). What survives is
faulthandler's report on the child's stderr: the Python frames and, since
Python 3.10, every extension module loaded (``Extension modules: …``).
The supervisor maps those names to files without importing anything and
fingerprints them; the host then reads the files' instructions with the
audit (:mod:`archmatrix.rootcause`). Modules the check imported itself are
told apart from those its parent had preloaded: the first suspects.

Stdlib only: this runs in the supervisor, inside lanes.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

# faulthandler's line, whole (classify.clean_evidence shortens it in the evidence)
EXTENSION_MODULES = re.compile(r"^Extension modules: (.*) \(total: \d+\)$", re.MULTILINE)
MODULES_LIMIT = 400
# Bytes hashed from the start of a file: the ELF headers and the GNU build-id
# note (a hash of the whole build) live there; cheap under qemu for 150 modules.
HEAD = 64 * 1024


# faulthandler's first line when a process of the lane died of SIGILL (lanes set PYTHONFAULTHANDLER,
# so worker processes dump too)
WORKER_DIED = "Fatal Python error: Illegal instruction"


def listed_modules(stderr: str) -> list[str]:
    """The extension modules faulthandler listed as loaded when the process died; [] if it did not."""
    found = EXTENSION_MODULES.findall(stderr)
    if not found:
        return []
    return [m for m in found[-1].split(", ") if m and m != "…"][:MODULES_LIMIT]


def module_file(module: str, search: Sequence[str] | None = None) -> str | None:
    """The extension file ``module`` was loaded from, by path search alone (importing nothing).

    A module this process has imported answers from ``sys.modules``.
    """
    loaded = sys.modules.get(module)
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    if origin:
        return str(origin)
    *parents, leaf = module.split(".")
    for entry in search if search is not None else sys.path:
        base = os.path.join(entry or os.curdir, *parents)
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = os.path.join(base, leaf + suffix)
            if os.path.isfile(candidate):
                return os.path.abspath(candidate)
    return None


def fingerprint(path: str) -> dict[str, Any] | None:
    """Size and a digest of the file's head: the host checks it reads the very same file."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            digest = hashlib.sha256(fh.read(HEAD)).hexdigest()
    except OSError:
        return None
    return {"size": size, "sha256_head": digest}


def describe(modules: Iterable[str], inherited: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One entry per listed module: its file and fingerprint, and whether the check imported it."""
    before = set(inherited)
    out = []
    for module in modules:
        path = module_file(module)
        entry: dict[str, Any] = {"module": module, "path": path, "new": module not in before}
        if path:
            entry.update(fingerprint(path) or {})
        out.append(entry)
    # the check's own imports first: the likeliest to hold the instruction
    return sorted(out, key=lambda e: not e["new"])
