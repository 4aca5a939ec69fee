"""Root causes the lane itself finds: a foreign binary behind a package's own ImportError, failed assertions.

Real forked children: a package built here (a wheel with an x86-64
extension, unpacked as pip would) is imported in a child whose ``__init__``
catches the loader's error and raises its own, as numpy does. On this
x86-64 host the extension loads as far as its (missing) init function, so
the supervisor is told it is an aarch64 process (an injected machine): the
extension is then of another architecture, whatever the package said.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archmatrix.suite.classify import classify
from archmatrix.suite.engine.child import run_check_body, run_forked
from archmatrix.suite.engine.supervise import judge
from archmatrix.suite.lane import wrongarch
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.registry import Check, CheckContext

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64" or shutil.which("gcc") is None,
                                reason="builds an x86-64 extension with gcc")

# numpy's words (numpy/_core/__init__.py), the original error appended
WRAPPING_INIT = '''
try:
    from ._native import answer
except ImportError as exc:
    raise ImportError(
        "\\nIMPORTANT: PLEASE READ THIS FOR ADVICE ON HOW TO SOLVE THIS ISSUE!\\n\\n"
        "Importing the {name} C-extensions failed. This error can happen for\\n"
        "many reasons, often due to issues with your setup.\\n\\n"
        "Original error was: %s" % exc) from None
'''
# a package that drops the loader's error altogether: no cause, no context, no path
SILENT_INIT = '''
_failed = False
try:
    from ._native import answer
except ImportError:
    _failed = True
if _failed:
    raise ImportError("{name} is not installed correctly; reinstall it")
'''
# plain C: an ELF shared object with no PyInit_ function, so importing it fails on any machine
NATIVE_C = "int answer(void) { return 42; }\n"


def build_wheel(tmp: Path, name: str, init: str) -> Path:
    """A wheel of package ``name`` with an x86-64 ``_native`` extension, tagged for aarch64."""
    source = tmp / "native.c"
    source.write_text(NATIVE_C)
    so = tmp / "native.so"
    subprocess.run(["gcc", "-shared", "-fPIC", str(source), "-o", str(so)], check=True)
    wheel = tmp / f"{name}-1.0-cp311-cp311-linux_aarch64.whl"
    info = f"{name}-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{name}/__init__.py", init.format(name=name))
        # named with the suffix this interpreter loads, so the import reaches the file
        zf.writestr(f"{name}/_native{_suffix()}", so.read_bytes())
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
                                     "Tag: cp311-cp311-linux_aarch64\n")
    return wheel


def _suffix() -> str:
    import importlib.machinery

    return importlib.machinery.EXTENSION_SUFFIXES[0]


def install(wheel: Path, site: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return site


def importing(site: Path, module: str) -> Callable[[CheckContext], Any]:
    def check(ctx: CheckContext) -> None:
        sys.path.insert(0, str(site))
        __import__(module)

    return check


def run_check(func: Callable[[CheckContext], Any], check_id: str = "user.check") -> Any:
    chk = Check(check_id, func)
    return run_forked(lambda: run_check_body(chk, CheckContext()), timeout=60)


@pytest.mark.parametrize("init", [WRAPPING_INIT, SILENT_INIT], ids=["wrapped", "silent"])
def test_a_foreign_extension_behind_a_packages_own_import_error_is_wrong_arch(
    tmp_path: Path, init: str,
) -> None:
    site = install(build_wheel(tmp_path, "wrapped", init), tmp_path / "site")
    report = run_check(importing(site, "wrapped"))
    assert report.payload["exc_type"] == "ImportError"
    native = site / "wrapped" / f"_native{_suffix()}"
    assert str(native) in report.payload["binaries"]

    result = judge("user.check", report, machine="aarch64")
    assert result.outcome is Outcome.WRONG_ARCH, result.message
    assert result.message.startswith(f"{native}: x86-64 in an aarch64 process"), result.message
    (sentence,) = result.evidence["wrong_arch"]
    assert str(native) in sentence and "x86-64 in an aarch64 process" in sentence
    # the package's own words stay the evidence of the symptom
    assert "wrapped" in result.evidence["exception"]["message"]
    # the same sentence read back on the host is still wrong-arch
    assert classify(output=result.message).outcome is Outcome.WRONG_ARCH

    # in the process the extension was built for, it is the import error it is
    native_result = judge("user.check", report, machine="x86_64")
    assert native_result.outcome is Outcome.IMPORT_ERROR, native_result.message


def test_the_wrapped_chain_is_kept_as_evidence(tmp_path: Path) -> None:
    site = install(build_wheel(tmp_path, "wrapped", WRAPPING_INIT), tmp_path / "site")
    result = judge("user.check", run_check(importing(site, "wrapped")), machine="aarch64")
    chain = result.evidence["exception"]["chain"]
    assert chain[0]["message"].lstrip().startswith("IMPORTANT")
    # the loader's own error, with the file it could not load
    assert chain[1]["type"] == "ImportError"
    assert chain[1]["path"].endswith(f"_native{_suffix()}")


def test_a_missing_module_scans_no_package(tmp_path: Path) -> None:
    """ModuleNotFoundError names no binary: a foreign file a package merely carries is not the cause."""
    site = install(build_wheel(tmp_path, "carrier", "import not_installed_anywhere\n"), tmp_path / "site")
    report = run_check(importing(site, "carrier"))
    assert report.payload["exc_type"] == "ModuleNotFoundError"
    assert report.payload["binaries"] == []
    result = judge("user.check", report, machine="aarch64")
    assert result.outcome is Outcome.IMPORT_ERROR


def test_an_error_that_is_no_import_failure_reads_no_binary() -> None:
    try:
        raise ValueError("/usr/lib/libc.so.6 is mentioned but did not fail")
    except ValueError as exc:
        assert wrongarch.candidate_files(exc) == []


def test_foreign_speaks_of_architectures_as_people_do(tmp_path: Path) -> None:
    so = tmp_path / "x.so"
    so.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(11) + (183).to_bytes(2, "little"))
    (found,) = wrongarch.foreign([str(so)], machine="AMD64")
    assert found.sentence == f"{so}: aarch64 in an x86-64 process (a binary for another architecture)"
    assert wrongarch.foreign([str(so)], machine="arm64") == []
    assert wrongarch.foreign([str(tmp_path / "missing.so")], machine="AMD64") == []


# --- failed assertions -------------------------------------------------------------------------


def _allclose(ctx: CheckContext) -> None:
    import numpy as np
    import numpy.testing

    numpy.testing.assert_allclose(np.array([1.0, 2.0]), np.array([1.0, 2.5]), rtol=1e-7)


BARE_ASSERT = "def check_bare(ctx):\n    total = 1 + 1\n    assert total == 3\n"


def _user_check(tmp: Path, source: str, name: str) -> Callable[[CheckContext], Any]:
    """A check from a user's file (pytest rewrites asserts only in test modules)."""
    import importlib.util

    path = tmp / "user_checks.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("user_checks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)  # type: ignore[no-any-return]


def test_numpy_testing_assertion_is_a_numeric_mismatch_with_its_message() -> None:
    result = judge("user.allclose", run_check(_allclose))
    assert result.outcome is Outcome.NUMERIC_MISMATCH
    assert "Not equal to tolerance rtol=1e-07" in result.message
    assert "Mismatched elements: 1 / 2" in result.message
    assert "Mismatched elements" in result.evidence["exception"]["message"]  # whole, as evidence


def test_a_bare_assert_is_a_numeric_mismatch_naming_its_line(tmp_path: Path) -> None:
    result = judge("user.bare", run_check(_user_check(tmp_path, BARE_ASSERT, "check_bare")))
    assert result.outcome is Outcome.NUMERIC_MISMATCH
    assert result.message == "assert failed at user_checks.py:3: assert total == 3"


def test_classify_assertion_error() -> None:
    verdict = classify(exc_type="AssertionError", exc_message="\nNot equal to tolerance\n\nmax diff 1\n")
    assert verdict.outcome is Outcome.NUMERIC_MISMATCH
    assert verdict.reason == "Not equal to tolerance; max diff 1"


def test_a_build_for_another_platform_that_a_package_merely_carries_is_no_cause(tmp_path: Path) -> None:
    """Only files this interpreter would import count: a carried ``…-aarch64-linux-gnu.so`` never loads."""
    site = tmp_path / "site"
    (site / "carrier").mkdir(parents=True)
    (site / "carrier" / "__init__.py").write_text("from .missing_helper import thing\n")
    (site / "carrier" / "missing_helper.py").write_text("")
    # ELF for aarch64, named as only an aarch64 interpreter loads it
    (site / "carrier" / "_native.cpython-311-aarch64-linux-gnu.so").write_bytes(
        b"\x7fELF\x02\x01\x01" + bytes(11) + (183).to_bytes(2, "little"))
    report = run_check(importing(site, "carrier"))
    assert report.payload["exc_message"].startswith("cannot import name 'thing'")
    assert report.payload["binaries"] == []
    assert judge("user.check", report).outcome is Outcome.IMPORT_ERROR


def test_a_failed_file_operation_is_no_loader_failure(tmp_path: Path) -> None:
    try:
        open(tmp_path / "missing.so")  # noqa: SIM115
    except OSError as exc:
        assert wrongarch.candidate_files(exc) == []
