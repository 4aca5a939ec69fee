"""Exit codes live in archmatrix.errors only, and errors become exit codes in cli.main only."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import archmatrix
from archmatrix import cli
from archmatrix.baseimage import DockerUnreachable
from archmatrix.errors import (
    ArchmatrixError,
    ConfigError,
    ExitCode,
    InfraError,
    LaneInfraError,
    ResultsError,
    UsageError,
    reporting_errors,
)
from archmatrix.staging.suite import stage_suite, suite_digest

PACKAGE = Path(archmatrix.__file__).parent
# Functions whose int results are exit statuses: every command, and the entry points.
ENTRY_POINTS = ("main", "run", "run_command", "reporting_errors", "build_images")


def _int_literal(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def exit_code_definitions(source: str) -> list[str]:
    """Where ``source`` defines an exit code of its own.

    That is an ``EXIT_*`` name bound to an int literal, an int ``Enum`` of
    exit codes, or an int literal returned by (or passed to ``sys.exit`` /
    ``SystemExit`` in) an entry point or a ``cmd_*`` function.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            values = [v for v in ast.walk(node.value) if _int_literal(v)] if node.value else []
            if values and any(name.upper().startswith("EXIT") for name in names):
                found.append(f"line {node.lineno}: {', '.join(names)} = an int")
        elif isinstance(node, ast.ClassDef) and "exit" in node.name.lower():
            if any(isinstance(b, (ast.Name, ast.Attribute)) and "Enum" in ast.unparse(b) for b in node.bases):
                found.append(f"line {node.lineno}: class {node.name}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
            node.name in ENTRY_POINTS or node.name.startswith("cmd_")
        ):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and _int_literal(sub.value):
                    found.append(f"line {sub.lineno}: {node.name} returns a bare int")
                elif (isinstance(sub, ast.Call) and ast.unparse(sub.func) in ("sys.exit", "SystemExit")
                      and sub.args and _int_literal(sub.args[0])):
                    found.append(f"line {sub.lineno}: {node.name} exits with a bare int")
    return found


def test_the_scan_finds_each_way_of_defining_an_exit_code() -> None:
    # the forms the code base used before archmatrix.errors
    assert exit_code_definitions("EXIT_BAD_RESULTS = 4")
    assert exit_code_definitions("EXIT_OK: int = 0")
    assert exit_code_definitions("def main() -> int:\n    return 3")
    assert exit_code_definitions("def cmd_x(a):\n    if a:\n        return 2\n    return 0")
    assert exit_code_definitions("def main():\n    sys.exit(2)")
    assert exit_code_definitions("import enum\nclass ExitStatus(enum.IntEnum):\n    OK = 0")
    # and leaves alone what is not one
    assert not exit_code_definitions("def main() -> int:\n    return ExitCode.OK")
    assert not exit_code_definitions("EXIT_OK = ExitCode.OK")  # an alias of the one definition
    assert not exit_code_definitions("def helper() -> int:\n    return 3")


def test_exit_codes_are_defined_in_exactly_one_module() -> None:
    where = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        found = exit_code_definitions(path.read_text(encoding="utf-8"))
        if found:
            where[str(path.relative_to(PACKAGE))] = found
    assert list(where) == ["errors.py"], where


def test_exit_codes_keep_their_documented_values() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0, "FAILED": 1, "CONFIG": 2, "INFRA": 3, "BAD_RESULTS": 4, "INTERRUPTED": 130}


@pytest.mark.parametrize(("error", "code", "line"), [
    (ConfigError("m.yaml:3:1: lanes: bad"), 2, "archmatrix: config error: m.yaml:3:1: lanes: bad"),
    (UsageError("--wheel x: no such file"), 2, "archmatrix: --wheel x: no such file"),
    (InfraError("no docker"), 3, "archmatrix: no docker"),
    (LaneInfraError("cannot start", hint="run setup"), 3, "archmatrix: cannot start"),
    (ResultsError("audit: bad.json: unreadable"), 4, "archmatrix: audit: bad.json: unreadable"),
    (DockerUnreachable("docker daemon not reachable (x); run: y"), 2,
     "error: docker daemon not reachable (x); run: y"),
])
def test_reporting_errors_prints_one_line_and_returns_the_errors_code(
    error: ArchmatrixError, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail() -> int:
        raise error

    assert reporting_errors(fail) == code
    assert capsys.readouterr().err == line + "\n"


def test_interrupt_is_130(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert reporting_errors(interrupted) == ExitCode.INTERRUPTED == 130
    assert capsys.readouterr().err == "archmatrix: interrupted\n"


def test_doctor_that_cannot_ask_the_interpreter_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["doctor", "--python", str(tmp_path / "no-python")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("archmatrix doctor: could not ask"), err
    assert "Traceback" not in err


def test_report_of_an_empty_directory_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    assert cli.main(["report", "results"]) == 2
    assert capsys.readouterr().err == "archmatrix: results: no lane result files found\n"


def test_base_images_refuses_an_unknown_platform(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["base-images", "--platform", "linux/amd46"])
    assert info.value.code == 2
    assert "invalid choice: 'linux/amd46'" in capsys.readouterr().err


def test_the_staged_suite_runs_with_nothing_but_its_directory(tmp_path: Path) -> None:
    """The suite imports its exit codes from archmatrix.errors, so staging must copy errors.py too."""
    root = stage_suite(tmp_path / "work")
    assert (root / "archmatrix" / "errors.py").read_bytes() == (PACKAGE / "errors.py").read_bytes()
    assert root.name == suite_digest()
    env = {"PYTHONPATH": str(root), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    where = subprocess.run(
        [sys.executable, "-c", "import archmatrix.errors, archmatrix.suite.__main__ as m; print(m.__file__)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(root)
    listed = subprocess.run([sys.executable, "-m", "archmatrix.suite", "--list"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("lane.self\t"), listed.stdout  # the self-check first
