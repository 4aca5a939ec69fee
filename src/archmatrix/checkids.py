"""The check ids a configuration can name, known on the host without importing any check.

The built-in checks import numpy when they run, and the host need not have it:
their ids are read from the check modules' source (``@check("id", …)``
decorators) with :mod:`ast`. A user check module given as a ``.py`` file is read
the same way (``@check("id")`` calls and ``def check_<name>`` functions, id
``<stem>.<name>``). A user module given by dotted name lives in the lane's own
environment, and a ``check(...)`` whose id is not a literal cannot be read: then
the ids are *unknown* (``None``) and no pattern may be called a typo.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterable, Sequence
from pathlib import Path

from .suite import registry

CHECKS_DIR = Path(registry.__file__).parent


def builtin_check_ids() -> frozenset[str] | None:
    """Every built-in check id (None if a check module cannot be read: then nothing is rejected)."""
    ids: set[str] = set()
    for module in registry.BUILTIN_MODULES:
        found = module_check_ids(CHECKS_DIR.joinpath(*module.split(".")).with_suffix(".py"),
                                 discovered=False)
        if found is None:
            return None
        ids |= found
    return frozenset(ids)


def module_check_ids(path: Path, *, discovered: bool = True) -> frozenset[str] | None:
    """The check ids a check module file registers, or None when they cannot be known statically.

    ``discovered``: also ``def check_<name>`` functions at module level (user
    modules; :func:`~archmatrix.suite.registry.load_user_module` registers those).
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError):
        return None
    ids: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called_name(node.func) == "check":
            first = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg == "id"), None)
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                return None  # an id computed at run time
            ids.add(first.value)
    if discovered:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("check_"):
                ids.add(f"{path.stem}.{node.name.removeprefix('check_')}")
    return frozenset(ids)


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def known_check_ids(user_modules: Sequence[str], base: Path) -> frozenset[str] | None:
    """The ids of the built-in checks and of ``user_modules`` (``.py`` paths relative to ``base``);
    None when any of them cannot be known on the host."""
    ids = builtin_check_ids()
    if ids is None:
        return None
    for entry in user_modules:
        if not registry.is_module_path(entry):
            return None  # a module of the lane's environment: its ids are not readable here
        path = Path(entry).expanduser()
        found = module_check_ids(path if path.is_absolute() else base / path)
        if found is None:
            return None
        ids |= found
    return ids


def matches_any(pattern: str, ids: Iterable[str]) -> bool:
    """Whether the fnmatch ``pattern`` selects at least one of ``ids`` (as the suite's ``select`` does)."""
    return any(fnmatch.fnmatchcase(cid, pattern) for cid in ids)
