"""The supervisor's judgement and the check registry, with injected reports (no forking here)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archmatrix.suite import registry
from archmatrix.suite.engine.supervise import ChildReport, judge
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.registry import (
    Check,
    CheckContext,
    Mismatch,
    Tolerance,
    flatten,
    load_user_module,
    select,
)

QEMU_SIGILL = (
    "qemu-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.vmx [bit 5]\n"
    "Fatal Python error: Illegal instruction\n\n"
    "Current thread 0x00007f1c (most recent call first):\n"
    '  File "/suite/checks_linalg.py", line 88 in check_solve\n'
    "qemu: uncaught target signal 4 (Illegal instruction) - core dumped\n"
)


def report(
    payload: dict[str, Any] | None,
    returncode: int | None = 0,
    *,
    stdout: str = "",
    stderr: str = "",
    timed_out: bool = False,
    duration_s: float = 0.5,
) -> ChildReport:
    return ChildReport(
        payload=payload,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        duration_s=duration_s,
    )


# ---------------------------------------------------------------- judge


def test_ok_payload_passes_with_its_metrics() -> None:
    result = judge(
        "linalg.solve",
        report(
            {"status": "ok", "message": "", "metrics": {"x.float64": [1.0, 2.0]}, "warnings": ["slow BLAS"]},
            duration_s=1.25,
        ),
    )
    assert result.id == "linalg.solve"
    assert result.outcome is Outcome.PASS
    assert result.metrics == {"x.float64": [1.0, 2.0]}
    assert result.warnings == ["slow BLAS"]
    assert result.duration_s == 1.25
    assert result.evidence == {}


def test_ok_payload_with_output_keeps_it_as_evidence() -> None:
    result = judge("blas.loaded", report({"status": "ok"}, stdout="hello\n", stderr="OpenBLAS Warning : x\n"))
    assert result.outcome is Outcome.PASS
    assert result.evidence == {"stdout_tail": "hello\n", "stderr_tail": "OpenBLAS Warning : x\n"}


def test_mismatch() -> None:
    message = "x.float64[1] = 2.5, expected 2.0 (rtol=1e-09, atol=1e-12, float64)"
    result = judge(
        "linalg.solve", report({"status": "mismatch", "message": message, "metrics": {"x": [1, 2.5]}})
    )
    assert result.outcome is Outcome.NUMERIC_MISMATCH
    assert result.message == message
    assert result.metrics == {"x": [1, 2.5]}


def test_skipped() -> None:
    result = judge("sklearn.hgb", report({"status": "skipped", "message": "scikit-learn is not installed"}))
    assert result.outcome is Outcome.SKIPPED
    assert result.message == "scikit-learn is not installed"
    assert not result.outcome.failed


@pytest.mark.parametrize(
    ("exc_type", "exc_message", "outcome", "reason"),
    [
        ("ValueError", "matrix is singular", Outcome.ERROR, "ValueError: matrix is singular"),
        (
            "ModuleNotFoundError",
            "No module named 'scipy'",
            Outcome.IMPORT_ERROR,
            "ModuleNotFoundError: No module named 'scipy'",
        ),
        (
            "ImportError",
            "libscipy_openblas64_.so: cannot open shared object file: No such file or directory",
            Outcome.BLAS_LOAD,
            "libscipy_openblas64_.so: cannot open shared object file",
        ),
    ],
)
def test_exception_payload(exc_type: str, exc_message: str, outcome: Outcome, reason: str) -> None:
    payload = {
        "status": "exception",
        "exc_type": exc_type,
        "exc_message": exc_message,
        "traceback": f"Traceback (most recent call last):\n{exc_type}: {exc_message}\n",
        "metrics": {},
    }
    result = judge("import.scipy", report(payload))
    assert result.outcome is outcome
    assert reason in result.message
    assert result.evidence["exception"] == {"type": exc_type, "message": exc_message}
    assert result.evidence["traceback"].startswith("Traceback")


def test_child_killed_by_sigill_under_qemu() -> None:
    result = judge("linalg.solve", report(None, -4, stderr=QEMU_SIGILL, duration_s=0.2))
    assert result.outcome is Outcome.ILLEGAL_INSTRUCTION
    assert result.message == "Fatal Python error: Illegal instruction"
    assert result.evidence["returncode"] == -4
    assert result.evidence["signal"] == "SIGILL"
    assert "uncaught target signal 4" in result.evidence["stderr_tail"]


def test_child_killed_by_sigsegv_without_output() -> None:
    result = judge("blas.gemm", report(None, -11))
    assert result.outcome is Outcome.SEGFAULT
    assert result.message == "killed by SIGSEGV"
    assert result.evidence == {"returncode": -11, "signal": "SIGSEGV"}


def test_child_killed_by_an_unnamed_signal() -> None:
    result = judge("x.y", report(None, -200))
    assert result.evidence["signal"] == "200"
    assert result.outcome is Outcome.ERROR


def test_timed_out() -> None:
    result = judge("sklearn.hgb", report(None, -9, timed_out=True, duration_s=180.0))
    assert result.outcome is Outcome.TIMEOUT
    assert result.message
    assert result.evidence["signal"] == "SIGKILL"


def test_ok_payload_but_timed_out_is_a_timeout() -> None:
    result = judge("sklearn.hgb", report({"status": "ok"}, -9, timed_out=True))
    assert result.outcome is Outcome.TIMEOUT


def test_reported_ok_then_died_is_not_a_pass() -> None:
    # the check finished, then the process crashed on the way out (atexit, thread teardown)
    result = judge("sklearn.kmeans", report({"status": "ok", "metrics": {"inertia": 1.5}}, -11))
    assert result.outcome is Outcome.SEGFAULT
    assert result.metrics == {"inertia": 1.5}


def test_exit_status_without_a_report_is_an_error() -> None:
    result = judge("x.y", report(None, 70, stderr="could not write the report\n"))
    assert result.outcome is Outcome.ERROR
    assert result.message == "exited with status 70: could not write the report"


def test_clean_exit_without_a_report_is_not_a_pass() -> None:
    result = judge("x.y", report(None, 0))
    assert result.outcome is Outcome.ERROR
    assert result.message == "check failed without a message"


# ---------------------------------------------------------------- CheckContext.assert_close


def test_assert_close_within_tolerance_records_values_and_error() -> None:
    ctx = CheckContext()
    ctx.assert_close("x", [[1.0, 2.0], [3.0, 4.0 + 1e-13]], [1.0, 2.0, 3.0, 4.0])
    assert ctx.metrics["x"] == [1.0, 2.0, 3.0, 4.0 + 1e-13]
    assert ctx.metrics["x.max_abs_err"] == pytest.approx(1e-13, rel=1e-3)


def test_assert_close_beyond_tolerance_names_the_worst_element() -> None:
    ctx = CheckContext()
    with pytest.raises(Mismatch) as info:
        ctx.assert_close("coef", [1.0, 1.0 + 1e-6, 1.1], [1.0, 1.0, 1.0])
    assert str(info.value) == "coef[2] = 1.1, expected 1.0 (rtol=1e-09, atol=1e-12, float64)"
    assert ctx.metrics["coef.max_abs_err"] == pytest.approx(0.1)


def test_assert_close_uses_the_dtype_tolerance() -> None:
    ctx = CheckContext(tolerances={"float32": Tolerance(rtol=1e-3, atol=0.0)})
    ctx.assert_close("y", [1.0005], [1.0], dtype="float32")  # within 1e-3
    with pytest.raises(Mismatch, match=r"rtol=0\.001, atol=0, float32"):
        ctx.assert_close("y", [1.002], [1.0], dtype="float32")
    # an explicit rtol beats the dtype's
    ctx.assert_close("z", [1.002], [1.0], dtype="float32", rtol=1e-2)
    # a dtype the context does not know falls back to float64's tolerance
    with pytest.raises(Mismatch):
        ctx.assert_close("w", [1.0 + 1e-6], [1.0], dtype="float16")


def test_assert_close_atol_covers_values_near_zero() -> None:
    ctx = CheckContext()
    ctx.assert_close("intercept", [3e-13], [0.0])
    with pytest.raises(Mismatch):
        ctx.assert_close("intercept", [3e-12], [0.0])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_assert_close_rejects_nan_and_inf(bad: float) -> None:
    ctx = CheckContext()
    with pytest.raises(Mismatch, match=r"x\[1\] is "):
        ctx.assert_close("x", [1.0, bad], [1.0, 2.0], rtol=1e9, atol=1e9)


def test_assert_close_rejects_a_length_mismatch() -> None:
    with pytest.raises(Mismatch, match="got 2 values, expected 3"):
        CheckContext().assert_close("x", [1.0, 2.0], [1.0, 2.0, 3.0])


def test_assert_close_accepts_numpy_arrays() -> None:
    np = pytest.importorskip("numpy")
    ctx = CheckContext()
    ctx.assert_close("a", np.eye(2, dtype=np.float32), [1, 0, 0, 1], dtype="float32")
    assert ctx.metrics["a"] == [1.0, 0.0, 0.0, 1.0]
    assert all(type(v) is float for v in ctx.metrics["a"])


def test_record_and_flatten() -> None:
    ctx = CheckContext()
    ctx.record("n", 3)
    ctx.record("ok", True)
    ctx.record("name", "openblas")
    ctx.record("values", list(range(100)))
    assert ctx.metrics["n"] == 3 and ctx.metrics["ok"] is True and ctx.metrics["name"] == "openblas"
    assert ctx.metrics["values"] == [float(i) for i in range(registry.MAX_METRIC_VALUES)]
    assert flatten([[1, 2], (3,), 4.5]) == [1.0, 2.0, 3.0, 4.5]
    ctx.warn("careful")
    assert ctx.warnings == ["careful"]


# ---------------------------------------------------------------- select and user modules


def _noop(ctx: CheckContext) -> None:
    return None


CHECKS = [
    Check(cid, _noop) for cid in ("import.numpy", "import.scipy", "linalg.solve", "linalg.svd", "sklearn.pca")
]


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (None, ["import.numpy", "import.scipy", "linalg.solve", "linalg.svd", "sklearn.pca"]),
        (["*"], ["import.numpy", "import.scipy", "linalg.solve", "linalg.svd", "sklearn.pca"]),
        (["import.*"], ["import.numpy", "import.scipy"]),
        (["linalg.s?d", "sklearn.pca"], ["linalg.svd", "sklearn.pca"]),
        (
            ["sklearn.pca", "import.numpy"],
            ["import.numpy", "sklearn.pca"],
        ),  # registry order, not pattern order
        (["Import.*"], []),  # case-sensitive
        (["nothing.*"], []),
    ],
)
def test_select(patterns: list[str] | None, expected: list[str]) -> None:
    assert [c.id for c in select(CHECKS, patterns)] == expected


def test_check_group() -> None:
    assert Check("linalg.solve", _noop).group == "linalg"


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """User modules register into the process-wide registry (and sys.modules): put both back afterwards."""
    before = dict(registry._REGISTRY)
    modules = set(sys.modules)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)
    for name in set(sys.modules) - modules:
        if name.endswith("_for_archmatrix_test"):
            del sys.modules[name]


def test_load_user_module_from_a_py_file(tmp_path: Path, clean_registry: None) -> None:
    module = tmp_path / "mychecks_for_archmatrix_test.py"
    module.write_text(
        '"""Checks a user brings."""\n'
        "def check_foo(ctx):\n"
        '    """Foo adds up."""\n'
        "    return {'total': 1 + 2}\n"
        "\n"
        "def check_bar(ctx):\n"
        "    ctx.record('bar', 1.5)\n"
        "\n"
        "def helper():\n"
        "    return 1\n"
        "\n"
        "check_not_callable = 3\n",
        encoding="utf-8",
    )
    checks = load_user_module(str(module))
    assert sorted(c.id for c in checks) == [
        "mychecks_for_archmatrix_test.bar",
        "mychecks_for_archmatrix_test.foo",
    ]
    foo = next(c for c in checks if c.id.endswith(".foo"))
    assert foo.description == "Foo adds up."
    assert foo.group == "mychecks_for_archmatrix_test"
    ctx = CheckContext()
    assert foo.func(ctx) == {"total": 3}
    assert "mychecks_for_archmatrix_test.foo" in registry._REGISTRY


def test_load_user_module_with_the_decorator(tmp_path: Path, clean_registry: None) -> None:
    module = tmp_path / "decorated_for_archmatrix_test.py"
    module.write_text(
        "from archmatrix.suite.registry import check\n"
        "@check('user.custom_id', timeout=5)\n"
        "def anything(ctx):\n"
        "    return None\n",
        encoding="utf-8",
    )
    checks = load_user_module(str(module))
    assert [(c.id, c.timeout) for c in checks] == [("user.custom_id", 5)]


def test_load_user_module_that_does_not_exist(tmp_path: Path, clean_registry: None) -> None:
    with pytest.raises((ImportError, FileNotFoundError, OSError)):
        load_user_module(str(tmp_path / "missing_module_for_archmatrix_test.py"))


def test_registering_two_functions_under_one_id_fails(clean_registry: None) -> None:
    registry.check("dup.id_for_archmatrix_test")(_noop)
    registry.check("dup.id_for_archmatrix_test")(_noop)  # the same function again is fine

    def other(ctx: CheckContext) -> None:
        return None

    with pytest.raises(ValueError, match="registered twice"):
        registry.check("dup.id_for_archmatrix_test")(other)
