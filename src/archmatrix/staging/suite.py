"""The lane-side suite staged for a lane's ``sys.path``, with the user's check modules beside it.

The suite is copied (content-addressed) into ``<workdir>/suite/<hash>/`` as a
tiny ``archmatrix`` package holding only ``archmatrix/suite`` (subpackages
included), so a lane interpreter needs nothing but the locked packages and
that directory on its path. User check modules given as ``.py`` paths are
copied beside it as top-level modules: a container or an emulated lane cannot
see the host's paths, but every lane has the staged suite on its path.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import suite as suite_pkg
from ..suite.registry import is_module_path
from .pytest_project import PROJECT_DIR, PytestProject, project_digest_items, write_project
from .store import publish_dir

SUITE_SOURCE = Path(suite_pkg.__file__).parent
PACKAGE_INIT = SUITE_SOURCE.parent / "__init__.py"
# Modules of the archmatrix package the suite imports besides itself (stdlib
# only, staged beside it): the exit codes.
SHARED_MODULES = (SUITE_SOURCE.parent / "errors.py",)
# what a complete staged suite has (publish_dir's marker)
ENTRY_POINT = "archmatrix/suite/__main__.py"


def suite_files() -> list[Path]:
    """Every source file of the suite package, subpackages included, in a stable order."""
    return sorted(p for p in SUITE_SOURCE.rglob("*.py") if "__pycache__" not in p.parts)



def suite_digest(user_files: Sequence[Path] = (), pytest: PytestProject | None = None) -> str:
    """Hash of the suite's source (and staged user modules, pytest project): part of every cache key
    that bakes it in."""
    h = hashlib.sha256()
    named = [(p.name, p) for p in SHARED_MODULES]
    named += [(f"suite/{p.relative_to(SUITE_SOURCE).as_posix()}", p) for p in suite_files()]
    for name, path in named:
        h.update(name.encode())
        h.update(path.read_bytes())
    for path in sorted(user_files, key=lambda p: p.name):
        h.update(b"\0user\0" + path.name.encode())
        h.update(path.read_bytes())
    if pytest is not None:
        for rel, data in project_digest_items(pytest):
            h.update(b"\0pytest\0" + rel.encode() + b"\0")
            h.update(data)
    return h.hexdigest()[:16]


class UserModuleError(Exception):
    """A ``checks.user_modules`` entry that cannot be staged (missing file, clashing name)."""


@dataclass(frozen=True)
class UserModules:
    """``checks.user_modules`` resolved on the host: files staged with the suite, names each lane imports."""

    files: tuple[Path, ...] = ()
    names: tuple[str, ...] = ()


def user_modules(entries: Sequence[str], base: Path) -> UserModules:
    """Resolve ``checks.user_modules`` (relative paths against ``base``, the config's directory).

    A dotted name is a module of the lane's own environment (a locked or local
    wheel) and is passed on as it is. A ``.py`` path is staged with the suite
    and imported by its file name, so its checks keep their ids
    (``<stem>.<name>``) in every lane.
    """
    files: list[Path] = []
    names: list[str] = []
    for entry in entries:
        if not is_module_path(entry):
            names.append(entry)
            continue
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise UserModuleError(f"checks.user_modules: {entry}: no such file ({path})")
        name = path.stem
        if not name.isidentifier() or name == "archmatrix":
            raise UserModuleError(f"checks.user_modules: {entry}: {name!r} cannot be a module name")
        if name in names:
            raise UserModuleError(f"checks.user_modules: two modules are called {name!r}; rename one")
        files.append(path)
        names.append(name)
    return UserModules(tuple(files), tuple(names))


def stage_suite(workdir: Path, user_files: Sequence[Path] = (), pytest: PytestProject | None = None) -> Path:
    """Copy the suite and ``user_files`` into ``workdir/suite/<hash>``; return the directory for sys.path.

    ``pytest``: the user's tests, copied into ``PROJECT_DIR`` beside the suite package.
    """
    root = workdir / "suite" / suite_digest(user_files, pytest)

    def build(tmp: Path) -> None:
        (tmp / "archmatrix").mkdir()
        shutil.copy2(PACKAGE_INIT, tmp / "archmatrix" / "__init__.py")
        for path in SHARED_MODULES:
            shutil.copy2(path, tmp / "archmatrix" / path.name)
        shutil.copytree(SUITE_SOURCE, tmp / "archmatrix" / "suite", ignore=_not_source)
        for path in user_files:
            shutil.copy2(path, tmp / path.name)
        if pytest is not None:
            write_project(pytest, tmp / PROJECT_DIR)

    publish_dir(root, build, marker=ENTRY_POINT)
    return root


def _not_source(directory: str, names: list[str]) -> list[str]:
    """copytree's ignore: only ``.py`` files and the package directories holding them."""
    return [n for n in names
            if n == "__pycache__" or (not n.endswith(".py") and not Path(directory, n).is_dir())]
