"""A binary for another architecture behind a package's own import error.

numpy and scipy catch the loader's error and raise their own ("Importing the
numpy C-extensions failed … Original error was: …"); a package may also
drop the loader's words altogether (``raise ImportError("…") from None``).
Whatever the text, the extension modules involved are still on disk, and
their ELF headers say which machine they are for. So after a check fails
with an import error, the child (which holds the exception) lists the files
involved — :func:`candidate_files`: the files named anywhere in the error
chain (``__cause__``/``__context__``, ``ImportError.path``, the messages),
the module being imported, and the compiled modules of the packages the
error passed through — and the supervisor reads their headers
(:func:`foreign`) with the one ELF reader. One of another architecture
makes the cell ``wrong-arch``, with the file and both architectures in the
evidence.

Stdlib only: this runs in lanes (the check's child and the supervisor).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import platform
import re
import sys
import sysconfig
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import arch as arch_mod
from .. import elffile

CHAIN_LIMIT = 16  # exceptions followed through __cause__/__context__
MESSAGE_LIMIT = 1000  # characters of each exception's message kept
FILES_LIMIT = 2000  # files whose headers are read, at most (numpy has ~100 compiled modules)

# An absolute path to a shared object in a message: ld.so's, dlopen's, a package's own words.
SO_PATH = re.compile(r"(/[^\s:'\"()]+\.(?:so(?:\.\d+)*|dylib))\b")

# The sentence the supervisor writes; classify.WRONG_ARCH matches it too.
SENTENCE = "{path}: {file_arch} in {article} {machine} process (a binary for another architecture)"


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it, cause before context, without cycles."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < CHAIN_LIMIT:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        # __context__ too when a package wrote "from None": the loader's error is still there
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return seen


def describe(exc: BaseException) -> list[dict[str, Any]]:
    """The chain as JSON: type, message, and an ImportError's ``name``/``path``."""
    out = []
    for e in chain(exc):
        entry: dict[str, Any] = {"type": type(e).__name__, "message": str(e)[:MESSAGE_LIMIT]}
        if isinstance(e, ImportError):
            entry["name"] = e.name
            entry["path"] = e.path
        out.append(entry)
    return out


# An OSError that is a loader's (ctypes.CDLL), not any failed file operation.
LOADER_WORDS = re.compile(r"shared object|ELF|dlopen|cannot open|wrong architecture|mach-o", re.IGNORECASE)


def _is_import_failure(exc: BaseException) -> bool:
    return isinstance(exc, ImportError) or _is_loader_oserror(exc)


def _is_loader_oserror(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and bool(LOADER_WORDS.search(str(exc)))


def candidate_files(exc: BaseException) -> list[str]:
    """The binaries involved in a failed import, most specific first; [] for any other failure.

    Named files first (``ImportError.path``, paths in any message), then the
    spec of each module that failed to import, then the compiled modules of
    the packages involved. A chain that only says a module is missing
    (``ModuleNotFoundError``) scans no package: a foreign binary a package
    merely carries did not cause that.
    """
    errors = chain(exc)
    if not any(_is_import_failure(e) for e in errors):
        return []
    files: dict[str, None] = {}
    for e in errors:
        if isinstance(e, ImportError) and e.path and SO_PATH.search(os.path.abspath(e.path)):
            files[os.path.abspath(e.path)] = None  # a binary (a "cannot import name" names the .py)
        for match in SO_PATH.findall(str(e)):
            files[match] = None
    loader_failure = any((isinstance(e, ImportError) and not isinstance(e, ModuleNotFoundError))
                         or _is_loader_oserror(e) for e in errors)
    if not loader_failure:
        return [f for f in files if os.path.isfile(f)]
    roots: dict[str, None] = {}
    for e in errors:
        if isinstance(e, ImportError) and e.name:
            roots.update(dict.fromkeys(_package_roots_of_module(e.name)))
        roots.update(dict.fromkeys(_package_roots_of_traceback(e)))
    for root in roots:
        files.update(dict.fromkeys(_compiled_under(Path(root))))
        if len(files) >= FILES_LIMIT:
            break
    return [f for f in list(files)[:FILES_LIMIT] if os.path.isfile(f)]


def _package_roots_of_module(name: str) -> Iterator[str]:
    """The directory (or file) of ``name``'s top-level package, found without importing anything.

    ``find_spec`` of a top-level name only asks the path finders; a dotted
    name would import its parents, which is the very thing that failed.
    """
    top = name.partition(".")[0]
    if top in sys.builtin_module_names:
        return
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    if spec.submodule_search_locations:
        yield from spec.submodule_search_locations
    elif spec.origin and spec.has_location:
        yield spec.origin


_NOT_PACKAGES = tuple(
    os.path.realpath(p) + os.sep
    for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"],
              str(Path(__file__).resolve().parents[2])}  # the stdlib and archmatrix itself
)


def _package_roots_of_traceback(exc: BaseException) -> Iterator[str]:
    """The top-level package directory of each frame the exception passed through."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if not filename.startswith("/") or os.path.realpath(filename).startswith(_NOT_PACKAGES):
            continue
        directory = Path(filename).parent
        if not (directory / "__init__.py").is_file():
            continue  # a plain module (a user's check file) is no package
        while (directory.parent / "__init__.py").is_file():
            directory = directory.parent
        yield str(directory)


def _compiled_under(root: Path) -> Iterator[str]:
    """A package's compiled modules, and the libraries of its auditwheel ``<package>.libs`` sibling.

    Only files this interpreter would import (its ``EXTENSION_SUFFIXES``): a
    package that carries builds for several platforms (``…-x86_64-linux-gnu.so``
    next to ``…-aarch64-linux-gnu.so``) never loads the others, so they are
    no cause.
    """
    if root.is_file():
        if _importable(root.name):
            yield str(root)
        return
    for dirpath, _dirs, names in os.walk(root):
        yield from (os.path.join(dirpath, n) for n in sorted(names) if _importable(n))
    libs = root.parent / f"{root.name}.libs"
    if libs.is_dir():
        yield from (str(p) for p in sorted(libs.iterdir()) if ".so" in p.name or p.suffix == ".dylib")


def _importable(name: str) -> bool:
    """Whether this interpreter would import a file of this name as an extension module.

    ``_native.cpython-311-aarch64-linux-gnu.so`` ends in ``.so`` too, but what
    is left is no module name: an x86-64 interpreter never loads it.
    """
    return any(name.endswith(suffix) and name[: -len(suffix)].isidentifier()
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


@dataclass(frozen=True)
class Foreign:
    path: str
    file_arch: str
    machine: str

    @property
    def sentence(self) -> str:
        spoken, machine = _spoken(self.file_arch), _spoken(self.machine)
        return SENTENCE.format(path=self.path, file_arch=spoken, machine=machine,
                               article="an" if machine[:1] in "aeiox" else "a")


def foreign(paths: Iterable[str], machine: str | None = None) -> list[Foreign]:
    """The files among ``paths`` that are ELF for another architecture than ``machine``.

    ``machine`` defaults to this process's; tests pass another.
    """
    this = arch_mod.normalise(machine or platform.machine())
    found = []
    for path in dict.fromkeys(paths):
        file_arch = elffile.file_arch(path)
        if file_arch is not None and arch_mod.normalise(file_arch) != this:
            found.append(Foreign(path, arch_mod.normalise(file_arch), this))
    return found


def _spoken(name: str) -> str:
    """How people write an architecture: ``x86-64`` (the kernel's ``x86_64`` has an underscore)."""
    return name.replace("_", "-")
