"""The staged suite is the whole suite: every module, subpackages included, imports from the staged tree.

The stager copies ``archmatrix/suite`` into a content-addressed directory that
is the only thing of archmatrix a lane has on its path. A subpackage left out
of that copy would only show in a real lane, so here the staged tree is
imported by an interpreter that sees nothing else: no site-packages (``-S``),
no ``PYTHON*`` variables (``-E``), not ``src/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archmatrix.staging import suite as staging_suite
from archmatrix.staging.suite import SUITE_SOURCE, stage_suite, suite_digest

IMPORT_ALL = """
import importlib, json, sys
root = sys.argv[1]
sys.path[:] = [root] + [p for p in sys.path if p and 'site-packages' not in p]
names = json.loads(sys.argv[2])
for name in names:
    importlib.import_module(name)
files = {m.__name__: getattr(m, '__file__', None) for m in list(sys.modules.values())
         if m.__name__.startswith('archmatrix')}
third = sorted(m for m in ('numpy', 'scipy', 'sklearn', 'threadpoolctl') if m in sys.modules)
print(json.dumps({'files': files, 'third_party': third}))
"""


def modules_under(root: Path) -> list[str]:
    """Dotted names of every module of the ``archmatrix.suite`` package found under ``root``."""
    names = []
    for path in sorted((root / "archmatrix" / "suite").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def isolated_python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-S", "-E", *args], cwd=cwd, env={}, capture_output=True,
                          text=True, timeout=120, check=False)


def test_every_module_of_the_suite_imports_from_the_staged_tree_alone(tmp_path: Path) -> None:
    root = stage_suite(tmp_path / "work")
    staged = modules_under(root)
    expected = modules_under(SUITE_SOURCE.parents[1])
    assert staged == expected
    assert {"archmatrix.suite.engine.main", "archmatrix.suite.checks.linalg", "archmatrix.suite.lane.ldso",
            "archmatrix.suite.spec"} <= set(staged)
    assert not list(root.rglob("__pycache__"))

    out = isolated_python("-c", IMPORT_ALL, str(root), json.dumps(expected), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["third_party"] == []  # stdlib only until a check runs
    assert set(expected) <= set(report["files"])
    for name, file in report["files"].items():
        assert file is not None and Path(file).is_relative_to(root), (name, file)


def test_the_staged_suite_runs_and_lists_every_builtin_check(tmp_path: Path) -> None:
    root = stage_suite(tmp_path / "work")
    out = isolated_python("-m", "archmatrix.suite", "--list", cwd=root)  # -m: the staged root is sys.path[0]
    assert out.returncode == 0, out.stderr
    ids = [line.split("\t")[0] for line in out.stdout.splitlines()]
    assert {i.split(".")[0] for i in ids} == {"lane", "import", "blas", "linalg", "sklearn", "perf"}
    assert ids[:2] == ["lane.self", "import.numpy"] and ids[-1].startswith("perf.")  # the self-check first


def test_the_digest_covers_files_in_subpackages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "suite"
    shutil.copytree(SUITE_SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(staging_suite, "SUITE_SOURCE", copy)
    before = suite_digest()
    with (copy / "checks" / "blas.py").open("a", encoding="utf-8") as fh:
        fh.write("\n# edited\n")
    assert suite_digest() != before
