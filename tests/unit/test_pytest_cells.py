"""The user's pytest suite in a lane (issue 17): config, staging, outcome mapping, the restart loop.

The restart loop runs the real pytest of this environment against projects
written here: a segfault, a hang and a crash while collecting must each cost
only their own cell, and the session fixture must run once per pytest process.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from archmatrix import cli
from archmatrix.config import ConfigError, check_selection, parse
from archmatrix.errors import UsageError
from archmatrix.staging.pytest_project import EMPTY_INI, PytestProjectError, pytest_project, write_project
from archmatrix.suite.engine import pytest_runner
from archmatrix.suite.engine.pytest_runner import collection_error, report_cell, run_pytest
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult
from archmatrix.suite.spec import SuiteSpec

CONFIG = """\
lock:
  python: "3.11"
  packages:
    numpy: "2.4.6"
PYTEST_PIN
checks:
  select: ["lane.self", "pytest::*"]
  pytest: [ARGS]
lanes:
  - id: host
    runner: venv
"""


def config_text(args: str = '"tests", "-k", "not slow"', pinned: bool = True) -> str:
    return CONFIG.replace("PYTEST_PIN\n", '    pytest: "9.2.0"\n' if pinned else "").replace("ARGS", args)


# ---------------------------------------------------------------- config and CLI

def test_checks_pytest_parses_and_reaches_the_spec() -> None:
    cfg = parse(config_text(), Path("ci/matrix.yaml"))
    assert cfg.checks.pytest == ("tests", "-k", "not slow")
    spec = SuiteSpec.from_json(cfg.checks.suite_spec().to_json())
    assert spec.pytest == ("tests", "-k", "not slow")
    check_selection(cfg)  # "pytest::*" matches the tests collected in the lanes: not an error


def test_pytest_not_locked_is_a_located_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse(config_text(pinned=False), Path("ci/matrix.yaml"))
    assert str(info.value).startswith("ci/matrix.yaml:7:3: ")
    assert "checks.pytest: pytest needs pytest in the lock" in str(info.value)


def test_an_option_that_would_escape_the_lane_is_refused_where_written() -> None:
    with pytest.raises(ConfigError) as info:
        parse(config_text('"tests", "-n", "4"'), Path("ci/matrix.yaml"))
    assert "checks.pytest[1]" in str(info.value) and "xdist" in str(info.value)


def test_pytest_patterns_without_pytest_configured_still_match_nothing() -> None:
    text = config_text().replace('  pytest: ["tests", "-k", "not slow"]\n', "")
    with pytest.raises(ConfigError, match="'pytest::\\*' matches no check"):
        check_selection(parse(text, Path("ci/matrix.yaml")))


def test_cli_pytest_makes_paths_absolute_and_needs_pytest_locked(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tests").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = parse(config_text(), tmp_path / "matrix.yaml")
    out = cli.with_pytest(cfg, ["tests/::test_a -k fast", "--deselect=tests/x.py::t"])
    assert out.checks.pytest[-4:] == (f"{tmp_path / 'tests'}::test_a", "-k", "fast",
                                      "--deselect=tests/x.py::t")
    with pytest.raises(UsageError, match="--pytest nope: no such file"):
        cli.with_pytest(cfg, ["nope"])
    unpinned = parse(config_text(pinned=False).replace('  pytest: ["tests", "-k", "not slow"]\n', ""),
                     tmp_path / "matrix.yaml")
    with pytest.raises(ConfigError, match="pytest needs pytest in the lock"):
        cli.with_pytest(unpinned, ["tests"])
    args = cli.parser().parse_args(["matrix", "--pytest", "tests", "--pytest=-k fast"])
    assert args.pytest == ["tests", "-k fast"]


# ---------------------------------------------------------------- staging

def test_the_project_is_staged_from_pytest_s_rootdir(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n\n[tool.pytest.ini_options]\nmarkers=[]\n")
    (tmp_path / "conftest.py").write_text("")
    sub = tmp_path / "tests" / "unit"
    sub.mkdir(parents=True)
    (tmp_path / "tests" / "conftest.py").write_text("")
    (tmp_path / "tests" / "__init__.py").write_text("")
    (sub / "test_a.py").write_text("def test_a(): pass\n")
    (sub / "data.json").write_text("{}")
    (sub / "__pycache__").mkdir()
    (sub / "__pycache__" / "x.pyc").write_text("")
    (tmp_path / "other.py").write_text("")
    project = pytest_project(["tests/unit/test_a.py::test_a", "-k", "a", "--ignore", "tests/unit/skip"],
                             tmp_path)
    assert project.root == tmp_path
    assert sorted(project.files) == ["conftest.py", "pyproject.toml", "tests/__init__.py",
                                     "tests/conftest.py", "tests/unit/test_a.py"]
    assert project.args == ("-c", "pyproject.toml", "--rootdir", ".", "tests/unit/test_a.py::test_a",
                            "-k", "a", "--ignore", "tests/unit/skip")
    whole = pytest_project([str(sub)], tmp_path / "elsewhere")  # absolute paths (--pytest) too
    assert "tests/unit/data.json" in whole.files and not any("__pycache__" in f for f in whole.files)
    write_project(whole, tmp_path / "staged")
    assert (tmp_path / "staged" / "tests" / "unit" / "test_a.py").read_text() == "def test_a(): pass\n"


def test_no_configuration_stages_an_empty_one_so_pytest_looks_no_further(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_a.py").write_text("")
    project = pytest_project(["t"], tmp_path)
    assert project.files[EMPTY_INI] == b"[pytest]\n"
    assert project.args[:4] == ("-c", EMPTY_INI, "--rootdir", ".")
    with pytest.raises(PytestProjectError, match="no such file"):
        pytest_project(["missing"], tmp_path)
    with pytest.raises(PytestProjectError, match="name the test paths"):
        pytest_project(["-k", "t"], tmp_path)


# ---------------------------------------------------------------- outcome mapping

def test_reports_map_to_outcomes() -> None:
    def cell(**event: object) -> CheckResult:
        return report_cell("t.py::x", event)

    assert cell(status="passed").outcome is Outcome.PASS
    xfail = cell(status="xfail", reason="known")
    assert (xfail.outcome, xfail.message, xfail.evidence) == (Outcome.PASS, "xfail", {"xfail": "known"})
    skipped = cell(status="skipped", reason="needs a GPU")
    assert (skipped.outcome, skipped.message) == (Outcome.SKIPPED, "needs a GPU")
    numeric = cell(status="failed", when="call", exc_type="AssertionError", numeric=True,
                   message="AssertionError: \nNot equal to tolerance rtol=1e-07", longrepr="E  Not equal")
    assert numeric.outcome is Outcome.NUMERIC_MISMATCH
    assert numeric.message == "AssertionError:; Not equal to tolerance rtol=1e-07"
    assert numeric.evidence["traceback"] == "E  Not equal"
    plain = cell(status="failed", when="call", exc_type="AssertionError", numeric=False,
                 message="assert [1] == [2]")
    assert (plain.outcome, plain.message) == (Outcome.ERROR, "assert [1] == [2]")
    setup = cell(status="failed", when="setup", exc_type="KeyError", exc_message="'x'",
                 message="KeyError: 'x'")
    assert (setup.outcome, setup.message) == (Outcome.ERROR, "in setup: KeyError: 'x'")
    blas = cell(status="failed", when="call", exc_type="ImportError",
                exc_message="libscipy_openblas64_.so: cannot open shared object file: "
                            "No such file or directory")
    assert blas.outcome is Outcome.BLAS_LOAD
    missing = collection_error("t.py", {"exc_type": "ModuleNotFoundError",
                                        "exc_message": "No module named 'x'"})
    assert (missing.id, missing.outcome) == ("pytest::t.py", Outcome.IMPORT_ERROR)
    assert missing.message.startswith("collecting: ")


def test_a_dead_process_is_judged_like_a_check_child() -> None:
    sigill = pytest_runner._crash("t.py::avx", -int(signal.SIGILL), False,
                                  "qemu: uncaught target signal 4 (Illegal instruction) - core dumped\n", 60)
    assert (sigill.id, sigill.outcome) == ("pytest::t.py::avx", Outcome.ILLEGAL_INSTRUCTION)
    assert sigill.evidence["signal"] == "SIGILL"
    assert pytest_runner._crash("t.py::s", -int(signal.SIGSEGV), False, "", 60).outcome is Outcome.SEGFAULT
    hung = pytest_runner._crash("t.py::h", -int(signal.SIGKILL), True, "", 7)
    assert (hung.outcome, hung.message) == (Outcome.TIMEOUT, "no result within 7 s")


# ---------------------------------------------------------------- the restart loop (real pytest)

PROJECT = {
    "pyproject.toml": "[tool.pytest.ini_options]\nmarkers = []\n",
    "tests/conftest.py": """\
import os, pytest
@pytest.fixture(scope="session", autouse=True)
def counted():
    path = os.environ["COUNTER_FILE"]
    n = int(open(path).read()) if os.path.exists(path) else 0
    open(path, "w").write(str(n + 1))
    yield
""",
    "tests/test_a.py": """\
import ctypes, time, pytest
def test_first(): pass
def test_segv(): ctypes.string_at(0)
def test_second(): assert 0.1 + 0.2 == pytest.approx(0.4)
def test_hang(): time.sleep(300)
def test_third(): pass
""",
}


def stage(tmp_path: Path, files: dict[str, str], args: list[str]) -> tuple[Path, tuple[str, ...]]:
    src = tmp_path / "src"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    project = pytest_project(args, src)
    write_project(project, tmp_path / "staged")
    return tmp_path / "staged", project.args


def test_a_crash_and_a_hang_cost_only_their_own_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = tmp_path / "counter"
    monkeypatch.setenv("COUNTER_FILE", str(counter))
    cwd, args = stage(tmp_path, PROJECT, ["tests"])
    cells: list[CheckResult] = []
    facts = run_pytest(args, on_result=cells.append, default_timeout=60, cwd=cwd, python=sys.executable,
                       timeouts={"pytest::tests/test_a.py::test_hang": 2})
    got = {c.id.removeprefix("pytest::tests/test_a.py::"): c.outcome for c in cells}
    assert got == {"test_first": Outcome.PASS, "test_segv": Outcome.SEGFAULT,
                   "test_second": Outcome.NUMERIC_MISMATCH, "test_hang": Outcome.TIMEOUT,
                   "test_third": Outcome.PASS}
    assert facts.processes == 3 and facts.collected == 5
    assert int(counter.read_text()) == facts.processes  # the session fixture: once per process, not per test
    segv = next(c for c in cells if c.id.endswith("test_segv"))
    assert "test_segv" in segv.evidence["stderr_tail"]  # faulthandler's traceback names the test


def test_a_crash_while_collecting_is_the_file_s_cell_and_the_rest_runs(tmp_path: Path) -> None:
    files = {"tests/test_boom.py": "import ctypes\nctypes.string_at(0)\n",
             "tests/test_ok.py": "def test_ok(): pass\n", "tests/test_imp.py": "import no_such_mod_xyz\n"}
    cwd, args = stage(tmp_path, files, ["tests", "-p", "no:randomly"])
    cells: list[CheckResult] = []
    facts = run_pytest(args, on_result=cells.append, default_timeout=60, cwd=cwd)
    got = {c.id: c.outcome for c in cells}
    assert got == {"pytest::test_boom.py": Outcome.SEGFAULT, "pytest::test_imp.py": Outcome.IMPORT_ERROR,
                   "pytest::test_ok.py::test_ok": Outcome.PASS}
    assert facts.processes == 2


def test_selection_and_a_usage_error(tmp_path: Path) -> None:
    files = {"tests/test_s.py": "def test_a(): pass\ndef test_b(): pass\n"}
    cwd, args = stage(tmp_path, files, ["tests"])
    cells: list[CheckResult] = []
    run_pytest(args, on_result=cells.append, default_timeout=60, cwd=cwd, select=["pytest::*::test_b"])
    assert [c.id for c in cells] == ["pytest::test_s.py::test_b"]  # no configuration: the rootdir is tests/
    cells.clear()
    facts = run_pytest([*args, "--no-such-option"], on_result=cells.append, default_timeout=60, cwd=cwd)
    assert [(c.id, c.outcome) for c in cells] == [("pytest::(session)", Outcome.ERROR)]
    assert "exited with status 4" in cells[0].message and facts.processes == 1


def test_a_lane_without_pytest_gets_a_cell_saying_so(tmp_path: Path) -> None:
    # an interpreter that cannot import pytest: exit status 1 before collecting, with the words
    # `python -m pytest` says then. (-S alone is not enough where archmatrix and pytest share
    # site-packages, as in an installed venv: the plugin's path brings pytest along.)
    blocker = tmp_path / "no-pytest"
    blocker.mkdir()
    (blocker / "pytest.py").write_text(
        'import sys\nsys.stderr.write(sys.executable + ": No module named pytest\\n")\nsys.exit(1)\n')
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{blocker}:$PYTHONPATH" exec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    cwd, args = stage(tmp_path, {"tests/test_s.py": "def test_a(): pass\n"}, ["tests"])
    cells: list[CheckResult] = []
    run_pytest(args, on_result=cells.append, default_timeout=60, cwd=cwd, python=str(python))
    assert [(c.id, c.outcome) for c in cells] == [("pytest::(session)", Outcome.ERROR)]
    assert "No module named pytest" in cells[0].message
