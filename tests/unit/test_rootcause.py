"""Root causes across cells (archmatrix.rootcause): no-wheel via a dependency, the library behind a SIGILL.

Lane results are built from what lanes really record: exception chains of
real forked children, faulthandler's report of a real AVX2 extension dying
under ``qemu-x86_64 -cpu Westmere``, and the audit reading the real binary.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from archmatrix import rootcause
from archmatrix.rootcause import BinaryScan
from archmatrix.suite.engine.child import run_check_body, run_forked
from archmatrix.suite.engine.supervise import judge
from archmatrix.suite.lane.executing import fingerprint
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.registry import Check, CheckContext
from archmatrix.suite.result import CheckResult, LaneResult

ROOT = Path(__file__).resolve().parents[2]
JAXLIB_ROW = CheckResult("wheel.jaxlib", Outcome.NO_WHEEL,
                         message="jaxlib==0.4.30 has no wheel for manylinux_2_36_aarch64")
JAX_CHAIN = [
    {"type": "ModuleNotFoundError", "message": "jax requires jaxlib to be installed. See "
     "https://github.com/jax-ml/jax#installation for installation instructions.", "name": None, "path": None},
    {"type": "ModuleNotFoundError", "message": "No module named 'jaxlib'", "name": "jaxlib", "path": None},
]


def jax_check(chain: list[dict[str, Any]] | None = JAX_CHAIN, **evidence: Any) -> CheckResult:
    message = "ModuleNotFoundError: jax requires jaxlib to be installed. See https://github.com/jax-ml/jax"
    exception: dict[str, Any] = {"type": "ModuleNotFoundError", "message": message.split(": ", 1)[1]}
    if chain:
        exception["chain"] = chain
    return CheckResult("jax_checks.grad", Outcome.IMPORT_ERROR, message=message,
                       evidence={"exception": exception, **evidence})


def lane(*checks: CheckResult, facts: dict[str, Any] | None = None) -> LaneResult:
    return LaneResult("linux-arm64-docker", "docker", facts=facts or {}, checks=list(checks))


# --- no-wheel via a dependency -----------------------------------------------------------------


def test_an_import_error_caused_by_a_dependency_without_a_wheel_is_no_wheel_via_it() -> None:
    before = lane(JAXLIB_ROW, jax_check())
    after = rootcause.apply(before)
    grad = after.check("jax_checks.grad")
    assert grad is not None
    assert grad.outcome is Outcome.NO_WHEEL
    assert grad.message == "via jaxlib: jaxlib==0.4.30 has no wheel for manylinux_2_36_aarch64"
    assert grad.evidence["symptom"] == {"outcome": "import-error",
                                        "message": before.checks[1].message}
    assert grad.evidence["root_cause"] == {"check": "wheel.jaxlib", "distribution": "jaxlib"}
    # pure: the result given is unchanged
    assert before.checks[1].outcome is Outcome.IMPORT_ERROR and "symptom" not in before.checks[1].evidence


def test_the_missing_module_is_found_in_recorded_text_without_a_chain() -> None:
    """A result of a lane from before the chain was recorded, or a crash's output."""
    tb = ("Traceback (most recent call last):\n  File \"jax/__init__.py\", line 1\n"
          "ModuleNotFoundError: No module named 'jaxlib'\n\nThe above exception was the direct cause …")
    after = rootcause.apply(lane(JAXLIB_ROW, jax_check(None, traceback=tb)))
    assert after.checks[1].outcome is Outcome.NO_WHEEL


def test_module_names_map_through_the_package_name_rule_and_the_lanes_facts() -> None:
    openblas = CheckResult("wheel.scipy-openblas32", Outcome.NO_WHEEL, message="no wheel")
    blas = CheckResult("blas.loaded", Outcome.BLAS_LOAD, message="x",
                       evidence={"exception": {"type": "ImportError", "chain": [
                           {"type": "ModuleNotFoundError", "name": "scipy_openblas32.lib", "message": ""}]}})
    assert rootcause.apply(lane(openblas, blas)).checks[1].message == "via scipy-openblas32: no wheel"
    # a distribution whose import name differs, known from the facts
    assert rootcause.distributions_of("sklearn.linear_model", {"scikit-learn": ["sklearn"]}) == [
        "scikit-learn", "sklearn"]


@pytest.mark.parametrize("check", [
    # the missing module is another distribution's, which has its wheel
    CheckResult("a.b", Outcome.IMPORT_ERROR, message="ModuleNotFoundError: No module named 'jaxlab'"),
    # not an import failure
    CheckResult("a.c", Outcome.ERROR, message="ModuleNotFoundError: No module named 'jaxlib'"),
    CheckResult("a.d", Outcome.SEGFAULT, message="No module named 'jaxlib'"),
    # an import error that names no module
    CheckResult("a.e", Outcome.IMPORT_ERROR, message="ImportError: cannot import name 'grad' from 'jax'"),
])
def test_other_cells_are_left_alone(check: CheckResult) -> None:
    after = rootcause.apply(lane(JAXLIB_ROW, check))
    assert after.checks[1] == check


def test_without_a_no_wheel_row_nothing_changes() -> None:
    before = lane(jax_check())
    assert rootcause.apply(before).checks == before.checks


PURE_PACKAGE = '''
try:
    import compiledep
except ModuleNotFoundError as err:
    raise ModuleNotFoundError("puredep requires compiledep to be installed") from err
'''


def test_a_real_childs_wrapped_module_not_found_is_no_wheel_via_the_dependency(tmp_path: Path) -> None:
    (tmp_path / "puredep").mkdir()
    (tmp_path / "puredep" / "__init__.py").write_text(PURE_PACKAGE)

    def check(ctx: CheckContext) -> None:
        sys.path.insert(0, str(tmp_path))
        import puredep  # noqa: F401

    report = run_forked(lambda: run_check_body(Check("pure_checks.use", check), CheckContext()), 60)
    judged = judge("pure_checks.use", report)
    assert judged.outcome is Outcome.IMPORT_ERROR
    assert judged.message == "ModuleNotFoundError: puredep requires compiledep to be installed"
    row = CheckResult("wheel.compiledep", Outcome.NO_WHEEL,
                      message="compiledep==1.0 has no wheel for linux_aarch64")
    after = rootcause.apply(lane(row, judged)).checks[1]
    assert after.outcome is Outcome.NO_WHEEL
    assert after.message == "via compiledep: compiledep==1.0 has no wheel for linux_aarch64"


# --- the library behind an illegal instruction --------------------------------------------------


def sigill_check(*entries: dict[str, Any]) -> CheckResult:
    return CheckResult("avx2_checks.add_epi32", Outcome.ILLEGAL_INSTRUCTION,
                       message="Fatal Python error: Illegal instruction",
                       evidence={"signal": "SIGILL", "loaded_extensions": list(entries)})


def entry(path: Path, module: str, *, new: bool = True) -> dict[str, Any]:
    return {"module": module, "path": str(path), "new": new, **(fingerprint(str(path)) or {})}


def fake_scan(table: dict[str, BinaryScan]) -> rootcause.Scanner:
    return lambda path: table.get(path.name)


WESTMERE = {"emulation": {"emulator": "qemu-x86_64", "cpu_model": "Westmere"}}


def test_the_one_unguarded_binary_with_an_extension_the_cpu_lacks_is_named(tmp_path: Path) -> None:
    for name in ("a.so", "b.so", "c.so"):
        (tmp_path / name).write_bytes(name.encode() * 100)
    scans = {"a.so": BinaryScan(("AVX2",), True, {}),  # dispatches at run time: not the culprit
             "b.so": BinaryScan(("AVX2", "FMA"), False, {"AVX2": "0x10: vpaddd ymm0, ymm1, ymm2"}),
             "c.so": BinaryScan((), False, {})}
    check = sigill_check(entry(tmp_path / "a.so", "a"), entry(tmp_path / "b.so", "b"),
                         entry(tmp_path / "c.so", "c", new=False))
    after = rootcause.apply(lane(check, facts=WESTMERE), scan=fake_scan(scans)).checks[0]
    assert after.outcome is Outcome.ILLEGAL_INSTRUCTION
    assert after.message == ("Fatal Python error: Illegal instruction: "
                             "AVX2/FMA in b.so, not guarded by a CPU check")
    assert after.evidence["attribution"]["binary"] == str(tmp_path / "b.so")
    assert after.evidence["attribution"]["example"] == "0x10: vpaddd ymm0, ymm1, ymm2"
    assert "loaded_extensions" not in after.evidence  # the bulky list gives way to its reading


def test_an_extension_the_cpu_has_is_no_suspect(tmp_path: Path) -> None:
    (tmp_path / "b.so").write_bytes(b"x" * 10)
    # SandyBridge has AVX, not AVX2
    facts = {"emulation": {"cpu_model": "SandyBridge"}}
    check = sigill_check(entry(tmp_path / "b.so", "b"))
    avx = fake_scan({"b.so": BinaryScan(("AVX",), False, {})})
    after = rootcause.apply(lane(check, facts=facts), scan=avx)
    assert "could not be named" in after.checks[0].message
    # numpy's CPUID table stands in for an unknown model
    facts = {"cpu": {"present": ["SSE42", "AVX"], "absent": ["AVX2", "FMA3"]}}
    avx2 = fake_scan({"b.so": BinaryScan(("AVX2",), False, {})})
    after = rootcause.apply(lane(check, facts=facts), scan=avx2)
    assert after.checks[0].message.endswith("AVX2 in b.so, not guarded by a CPU check")


def test_several_suspects_are_listed_as_candidates_not_guessed(tmp_path: Path) -> None:
    for name in ("a.so", "b.so"):
        (tmp_path / name).write_bytes(name.encode())
    scans = {"a.so": BinaryScan(("AVX",), False, {}), "b.so": BinaryScan(("AVX2",), False, {})}
    check = sigill_check(entry(tmp_path / "a.so", "a"), entry(tmp_path / "b.so", "b"))
    after = rootcause.apply(lane(check, facts=WESTMERE), scan=fake_scan(scans)).checks[0]
    assert after.message.endswith(": one of: AVX in a.so; AVX2 in b.so")
    assert "binary" not in after.evidence["attribution"]


def test_a_file_that_is_not_the_lanes_is_not_read(tmp_path: Path) -> None:
    """The host reads a lane's file only if it holds the same bytes (a container's path may exist here)."""
    (tmp_path / "b.so").write_bytes(b"host's own file")
    lane_entry = {**entry(tmp_path / "b.so", "b"), "sha256_head": "0" * 64}
    after = rootcause.apply(lane(sigill_check(lane_entry), facts=WESTMERE),
                            scan=fake_scan({"b.so": BinaryScan(("AVX2",), False, {})})).checks[0]
    assert ("the library could not be named: 1 of the loaded extension modules could not be read"
            in after.message)
    assert after.evidence["attribution"]["unreadable"] == ["b"]


QEMU = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
CHILD = '''
import json, sys
from archmatrix.suite.engine.child import run_check_body, run_forked
from archmatrix.suite.engine.supervise import judge
from archmatrix.suite.registry import Check, CheckContext

def check(ctx):
    import avx2ext
    return {"sum": avx2ext.add()}

report = run_forked(lambda: run_check_body(Check("avx2_checks.add_epi32", check), CheckContext()), 120)
print(json.dumps(judge("avx2_checks.add_epi32", report).to_dict()))
'''


@pytest.mark.skipif(platform.machine() != "x86_64" or QEMU is None or shutil.which("gcc") is None,
                    reason="needs an x86-64 host, gcc and qemu-user")
def test_a_real_avx2_extension_dying_under_westmere_is_named_with_avx2(tmp_path: Path) -> None:
    """The whole way: a real SIGILL under qemu, faulthandler's report, the audit reading the real file."""
    import importlib.machinery

    site = tmp_path / "site"
    site.mkdir()
    so = site / f"avx2ext{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-mavx2", f"-I{sysconfig.get_paths()['include']}",
                    str(ROOT / "tests" / "fixtures" / "avx2ext" / "avx2ext.c"), "-o", str(so)], check=True)
    (tmp_path / "child.py").write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "src")])}
    env.pop("OPENBLAS_CORETYPE", None)
    done = subprocess.run([str(QEMU), "-cpu", "Westmere", os.path.realpath(sys.executable),
                           str(tmp_path / "child.py")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    judged = CheckResult.from_dict(json.loads(done.stdout), "child")
    assert judged.outcome is Outcome.ILLEGAL_INSTRUCTION
    assert judged.evidence["loaded_extensions"][0]["path"] == str(so)

    after = rootcause.apply(lane(judged, facts=WESTMERE)).checks[0]
    assert after.outcome is Outcome.ILLEGAL_INSTRUCTION
    assert f"AVX2 in {so.name}, not guarded by a CPU check" in after.message, after.message
    assert "ymm" in after.evidence["attribution"]["example"]  # an instruction of the AVX family, as read
