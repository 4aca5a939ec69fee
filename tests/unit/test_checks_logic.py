"""The linalg and sklearn checks: stdlib-only import, pass on this host, and can fail.

Every check is ``_check_<name>(ctx, np, impl)``; the tests below pass the real
implementation (it must pass) and deliberately wrong ones (they must raise
``Mismatch``), so a check that could only pass would be caught here.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from archmatrix.suite.checks import linalg as cl
from archmatrix.suite.checks import refmath as rm
from archmatrix.suite.checks import sklearn as cs
from archmatrix.suite.registry import DEFAULT_TOLERANCES, CheckContext, Mismatch, Tolerance

# The checks judge these libraries; without them there is nothing to run.
np = pytest.importorskip("numpy")
pytest.importorskip("scipy")
pytest.importorskip("sklearn")

SRC = Path(__file__).resolve().parents[2] / "src"

LINALG_IDS = {
    "linalg.matmul",
    "linalg.solve",
    "linalg.lstsq",
    "linalg.cholesky",
    "linalg.eigh",
    "linalg.svd",
    "linalg.det",
    "linalg.inv",
    "linalg.scipy_solve",
}
SKLEARN_IDS = {
    "sklearn.linear_regression",
    "sklearn.ridge",
    "sklearn.logistic_regression",
    "sklearn.pca",
    "sklearn.kmeans",
    "sklearn.hist_gradient_boosting",
    "sklearn.random_forest",
    "sklearn.pairwise_distances",
}


def test_modules_import_only_the_standard_library() -> None:
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(SRC)!r})\n"
        "from archmatrix.suite import registry\n"
        "linalg = registry.load_user_module('archmatrix.suite.checks.linalg')\n"
        "sk = registry.load_user_module('archmatrix.suite.checks.sklearn')\n"
        "third = sorted(m for m in ('numpy', 'scipy', 'sklearn', 'threadpoolctl', 'joblib')"
        " if m in sys.modules)\n"
        "print(json.dumps({'linalg': [c.id for c in linalg], 'sklearn': [c.id for c in sk],"
        " 'third_party': third}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    report = json.loads(out.stdout)
    assert report["third_party"] == []
    assert set(report["linalg"]) == LINALG_IDS
    assert set(report["sklearn"]) == SKLEARN_IDS


# --------------------------------------------------------------------------
# the real libraries pass


def _registered(module: Any) -> list[tuple[str, Callable[[CheckContext], Any]]]:
    return [(name, getattr(module, name)) for name in dir(module) if name.startswith(("linalg_", "sklearn_"))]


@pytest.mark.parametrize(("name", "func"), _registered(cl), ids=[n for n, _ in _registered(cl)])
def test_linalg_check_passes_on_this_host(name: str, func: Callable[[CheckContext], Any]) -> None:
    ctx = CheckContext()
    func(ctx)
    errs = {k: v for k, v in ctx.metrics.items() if k.endswith(".max_abs_err")}
    assert any(k.startswith("float64.") for k in errs), name
    assert any(k.startswith("float32.") for k in errs), name
    # Every error is within the bound it was checked against, and recorded.
    for key, err in errs.items():
        bound = ctx.metrics.get(key[: -len(".max_abs_err")] + ".atol", 0.0)
        assert isinstance(err, float) and isinstance(bound, float)
        assert err <= bound or err == 0.0, key


@pytest.mark.parametrize(("name", "func"), _registered(cs), ids=[n for n, _ in _registered(cs)])
def test_sklearn_check_passes_on_this_host(name: str, func: Callable[[CheckContext], Any]) -> None:
    ctx = CheckContext()
    func(ctx)
    assert ctx.metrics, name


def test_metrics_are_keyed_by_dtype() -> None:
    ctx = CheckContext()
    cl.linalg_solve(ctx)
    for dtype in ("float64", "float32"):
        assert f"{dtype}.solve.x.max_abs_err" in ctx.metrics
        assert f"{dtype}.solve.x.atol" in ctx.metrics
    # float32's bound is the configured rtol scaled by κ = 8 (and by max|x|).
    tol = ctx.tolerance("float32")
    atol32 = ctx.metrics["float32.solve.x.atol"]
    assert isinstance(atol32, float) and atol32 > tol.atol + tol.rtol * 8


def test_tolerances_come_from_the_context() -> None:
    # float64 keeps its default; float32 demands 1e-12, which no float32 solve meets.
    tight = CheckContext(
        tolerances={"float64": DEFAULT_TOLERANCES["float64"], "float32": Tolerance(rtol=1e-12, atol=0.0)}
    )
    with pytest.raises(Mismatch, match=r"float32\.solve\.x"):
        cl._check_solve(tight, np, np.linalg.solve)
    loose = CheckContext(tolerances={"float32": Tolerance(rtol=1e-3, atol=0.0)})
    cl._check_solve(loose, np, np.linalg.solve)
    assert loose.metrics["float32.solve.x.atol"] == pytest.approx(
        1e-3 * 8 * rm.max_abs(rm.solve(*_solve_problem()))
    )


def _solve_problem() -> tuple[rm.QMatrix, list[int]]:
    a, _ = cl._square_problem()
    return a, [3, -1, 4, 1, -5, 9]


def test_optimizer_tolerance_comes_from_the_context() -> None:
    from sklearn.linear_model import LogisticRegression

    exact = CheckContext(tolerances={"optimizer": Tolerance(0.0, 0.0)})
    with pytest.raises(Mismatch, match="model"):
        cs._check_logistic_regression(exact, np, LogisticRegression)


# --------------------------------------------------------------------------
# deliberately wrong implementations are caught: linalg


def _perturb_one(result: Any, index: int, delta: float) -> Any:
    out = np.array(result, copy=True)
    out.flat[index] += delta
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("shape", "label"),
    [((96, 96), "gemm96"), ((67, 45), "gemm_67x45x31"), ((128, 520), "gemm_k520"), ((24, 16), "gemm_gauss")],
)
def test_matmul_catches_one_wrong_element(dtype: str, shape: tuple[int, int], label: str) -> None:
    def bad_matmul(a: Any, b: Any) -> Any:
        c = np.matmul(a, b)
        if a.dtype == np.dtype(dtype) and a.shape == shape and b.ndim == 2:
            return _perturb_one(c, 7 * c.shape[1] + 3, 1.0)
        return c

    with pytest.raises(Mismatch, match=f"{dtype}.{label}"):
        cl._check_matmul(CheckContext(), np, bad_matmul)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matmul_exact_cases_catch_one_ulp(dtype: str) -> None:
    def off_by_an_ulp(a: Any, b: Any) -> Any:
        c = np.matmul(a, b)
        if a.dtype == np.dtype(dtype) and b.ndim == 1:  # the GEMV case
            c = c.copy()
            c[0] = np.nextafter(c[0], np.inf, dtype=c.dtype)
        return c

    with pytest.raises(Mismatch, match=f"{dtype}.gemv96"):
        cl._check_matmul(CheckContext(), np, off_by_an_ulp)


def test_matmul_gauss_case_tolerates_rounding() -> None:
    def rounded_differently(a: Any, b: Any) -> Any:
        c = np.matmul(a, b)
        if a.shape == (24, 16):  # a 1-ulp change is legitimate rounding here
            c = np.nextafter(c, np.inf, dtype=c.dtype)
        return c

    cl._check_matmul(CheckContext(), np, rounded_differently)


# Relative perturbations: small enough to be a plausible wrong kernel, large
# enough to exceed float32's κ-scaled bounds (float64's are far tighter).
PERTURB = {"float64": 1e-6, "float32": 2e-2}


def _scaled_for(
    dtype: str, func: Callable[..., Any], pick: Callable[[Any], Any] = lambda r: r
) -> Callable[..., Any]:
    def wrapped(a: Any, *args: Any, **kw: Any) -> Any:
        result = func(a, *args, **kw)
        if a.dtype != np.dtype(dtype):
            return result
        return pick(result)

    return wrapped


def _times(factor: float) -> Callable[[Any], Any]:
    return lambda r: r * factor


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_solve_inv_det_cholesky_catch_relative_errors(dtype: str) -> None:
    f = 1 + PERTURB[dtype]
    ctx = CheckContext
    with pytest.raises(Mismatch, match=f"{dtype}.solve.x"):
        cl._check_solve(ctx(), np, _scaled_for(dtype, np.linalg.solve, _times(f)))
    with pytest.raises(Mismatch, match=f"{dtype}.inv"):
        cl._check_inv(ctx(), np, _scaled_for(dtype, np.linalg.inv, _times(f)))
    with pytest.raises(Mismatch, match=f"{dtype}.det"):
        cl._check_det(ctx(), np, _scaled_for(dtype, np.linalg.det, _times(f)), np.linalg.slogdet)
    with pytest.raises(Mismatch, match=f"{dtype}.cholesky"):
        cl._check_cholesky(ctx(), np, _scaled_for(dtype, np.linalg.cholesky, _times(f)))
    import scipy.linalg

    with pytest.raises(Mismatch, match=f"{dtype}.scipy_solve"):
        cl._check_scipy_solve(ctx(), np, _scaled_for(dtype, scipy.linalg.solve, _times(f)))


def test_det_catches_wrong_sign() -> None:
    def flipped(a: Any) -> Any:
        sign, logabs = np.linalg.slogdet(a)
        return -sign, logabs

    with pytest.raises(Mismatch, match="slogdet sign"):
        cl._check_det(CheckContext(), np, np.linalg.det, flipped)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lstsq_catches_non_minimum_norm_and_wrong_rank(dtype: str) -> None:
    def plus_null_vector(a: Any, b: Any, rcond: Any = None) -> Any:
        x, res, rank, sv = np.linalg.lstsq(a, b, rcond=rcond)
        if a.dtype == np.dtype(dtype) and int(rank) < a.shape[1]:
            # Adding a null-space vector keeps the residual, loses minimum norm.
            _, _, vt = np.linalg.svd(a.astype(np.float64))
            x = (x + 0.5 * vt[-1]).astype(a.dtype)
        return x, res, rank, sv

    with pytest.raises(Mismatch, match=f"{dtype}.lstsq_rank3.x"):
        cl._check_lstsq(CheckContext(), np, plus_null_vector)

    def wrong_rank(a: Any, b: Any, rcond: Any = None) -> Any:
        x, res, rank, sv = np.linalg.lstsq(a, b, rcond=rcond)
        return x, res, (rank - 1 if a.dtype == np.dtype(dtype) else rank), sv

    with pytest.raises(Mismatch, match="rank"):
        cl._check_lstsq(CheckContext(), np, wrong_rank)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_eigh_is_sign_insensitive_but_catches_errors(dtype: str) -> None:
    def negate_column(a: Any) -> Any:
        w, v = np.linalg.eigh(a)
        v = v.copy()
        v[:, 2] *= -1
        return w, v

    cl._check_eigh(CheckContext(), np, negate_column)

    def shifted_value(a: Any) -> Any:
        w, v = np.linalg.eigh(a)
        return (w * (1 + PERTURB[dtype]) if a.dtype == np.dtype(dtype) else w), v

    with pytest.raises(Mismatch, match=f"{dtype}.eigh.values"):
        cl._check_eigh(CheckContext(), np, shifted_value)

    def rotated_vectors(a: Any) -> Any:
        w, v = np.linalg.eigh(a)
        if a.dtype == np.dtype(dtype):
            t = 0.05  # rotate eigenvectors 0 and 1 into each other by 0.05 rad
            v = v.copy()
            v0, v1 = v[:, 0].copy(), v[:, 1].copy()
            v[:, 0], v[:, 1] = np.cos(t) * v0 + np.sin(t) * v1, -np.sin(t) * v0 + np.cos(t) * v1
        return w, v

    with pytest.raises(Mismatch, match=f"{dtype}.eigh.vectors"):
        cl._check_eigh(CheckContext(), np, rotated_vectors)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_svd_allows_joint_sign_flips_only(dtype: str) -> None:
    def flip(both: bool) -> Callable[..., Any]:
        def svd(a: Any, full_matrices: bool = True) -> Any:
            u, s, vt = np.linalg.svd(a, full_matrices=full_matrices)
            if a.dtype == np.dtype(dtype):
                u, vt = u.copy(), vt.copy()
                u[:, 1] *= -1
                if both:
                    vt[1, :] *= -1
            return u, s, vt

        return svd

    cl._check_svd(CheckContext(), np, flip(both=True))
    with pytest.raises(Mismatch, match=f"{dtype}.svd.v"):
        cl._check_svd(CheckContext(), np, flip(both=False))

    def scaled_s(a: Any, full_matrices: bool = True) -> Any:
        u, s, vt = np.linalg.svd(a, full_matrices=full_matrices)
        return u, (s * (1 + PERTURB[dtype]) if a.dtype == np.dtype(dtype) else s), vt

    with pytest.raises(Mismatch, match=f"{dtype}.svd.s"):
        cl._check_svd(CheckContext(), np, scaled_s)


def test_exact_array_refuses_inexact_input() -> None:
    from fractions import Fraction

    with pytest.raises(RuntimeError, match="float32"):
        cl._exact_array(np, [[Fraction(1, 3)]], "float32")
    assert cl._exact_array(np, [[Fraction(3, 8)]], "float32").tolist() == [[0.375]]


# --------------------------------------------------------------------------
# deliberately wrong implementations are caught: scikit-learn


def test_linear_regression_rejects_a_non_minimum_norm_fit() -> None:
    from sklearn.linear_model import LinearRegression

    class OtherSolution(LinearRegression):  # type: ignore[misc]
        def fit(self, x: Any, y: Any, sample_weight: Any = None) -> Any:
            super().fit(x, y, sample_weight)
            if x.shape == (3, 2):
                # coef [2, 0], intercept 1 also fits y exactly, but is not minimum-norm.
                self.coef_ = np.array([2.0, 0.0])
                self.intercept_ = 1.0
            return self

    with pytest.raises(Mismatch, match=r"rank_deficient\.model"):
        cs._check_linear_regression(CheckContext(), np, OtherSolution)


def test_ridge_catches_a_wrong_alpha() -> None:
    from sklearn.linear_model import Ridge

    def double_alpha(alpha: float, solver: str) -> Any:
        return Ridge(alpha=2 * alpha, solver=solver)

    with pytest.raises(Mismatch, match=r"float64\.cholesky\.model"):
        cs._check_ridge(CheckContext(), np, double_alpha)


def test_logistic_regression_catches_an_unconverged_optimiser() -> None:
    import warnings

    from sklearn.linear_model import LogisticRegression

    def early_stop(**kw: Any) -> Any:
        return LogisticRegression(**{**kw, "max_iter": 2})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning is the point
        with pytest.raises(Mismatch, match="model"):
            cs._check_logistic_regression(CheckContext(), np, early_stop)


def test_pca_is_sign_insensitive_but_catches_errors() -> None:
    from sklearn.decomposition import PCA

    class Flipped(PCA):  # type: ignore[misc]
        def fit(self, x: Any, y: Any = None) -> Any:
            super().fit(x)
            self.components_[1] *= -1
            return self

    cs._check_pca(CheckContext(), np, Flipped)

    class WrongVariance(PCA):  # type: ignore[misc]
        def fit(self, x: Any, y: Any = None) -> Any:
            super().fit(x)
            self.explained_variance_[0] *= 1 + 1e-6  # the largest one
            return self

    with pytest.raises(Mismatch, match="explained_variance"):
        cs._check_pca(CheckContext(), np, WrongVariance)


def test_kmeans_catches_a_stopped_iteration() -> None:
    from sklearn.cluster import KMeans

    def one_iteration(**kw: Any) -> Any:
        return KMeans(**{**kw, "max_iter": 1})

    with pytest.raises(Mismatch, match="float64"):
        cs._check_kmeans(CheckContext(), np, one_iteration)


class _FakeClassifier:
    """Predicts with a fixed rule; ``flip`` changes one prediction (a thread-dependent model)."""

    def __init__(self, rule: Callable[[Any], Any], flip: bool = False) -> None:
        self.rule, self.flip = rule, flip

    def fit(self, x: Any, y: Any) -> _FakeClassifier:
        return self

    def predict(self, x: Any) -> Any:
        pred = self.rule(x).astype(int)
        if self.flip:
            pred[0] = 1 - pred[0]
        return pred

    def decision_function(self, x: Any) -> Any:
        return self.predict(x).astype(float)

    def predict_proba(self, x: Any) -> Any:
        p = self.decision_function(x)
        return np.stack([1 - p, p], axis=1)


def _second_fit_differs() -> Callable[..., _FakeClassifier]:
    calls = itertools.count()
    return lambda *args: _FakeClassifier(_xor_rule, flip=next(calls) > 0)


def _xor_rule(x: Any) -> Any:
    return (x[:, 0] > 0) != (x[:, 1] > 0.5)


@contextlib.contextmanager
def _no_threads(n: int) -> Iterator[int | None]:
    yield n


def test_thread_checks_accept_a_correct_deterministic_model() -> None:
    cs._check_hist_gradient_boosting(
        CheckContext(), np, lambda: _FakeClassifier(_xor_rule), threads=_no_threads
    )
    cs._check_random_forest(CheckContext(), np, lambda n: _FakeClassifier(_xor_rule))


def test_thread_checks_catch_thread_dependent_predictions() -> None:
    with pytest.raises(Mismatch, match="differ between 1 and 2 threads"):
        cs._check_hist_gradient_boosting(CheckContext(), np, _second_fit_differs(), threads=_no_threads)
    with pytest.raises(Mismatch, match="differ between 1 and 2 threads"):
        cs._check_random_forest(CheckContext(), np, _second_fit_differs())


def test_thread_checks_catch_poor_accuracy() -> None:
    with pytest.raises(Mismatch, match="accuracy"):
        cs._check_random_forest(CheckContext(), np, lambda n: _FakeClassifier(lambda x: x[:, 0] > 0))


def test_forest_catches_thread_dependent_probabilities() -> None:
    from sklearn.ensemble import RandomForestClassifier

    def seed_depends_on_jobs(n_jobs: int) -> Any:
        return RandomForestClassifier(n_estimators=25, random_state=n_jobs, n_jobs=n_jobs)

    with pytest.raises(Mismatch, match="forest"):
        cs._check_random_forest(CheckContext(), np, seed_depends_on_jobs)


def test_openmp_threads_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("threadpoolctl")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with cs.openmp_threads(2) as effective:
        assert os.environ["OMP_NUM_THREADS"] == "2"
        assert effective == 2  # OMP_NUM_THREADS lifts sklearn's physical-core cap
    assert "OMP_NUM_THREADS" not in os.environ
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with cs.openmp_threads(1) as effective:
        assert effective == 1
    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_pairwise_distances_catches_errors() -> None:
    from sklearn.metrics import pairwise_distances

    def off(x: Any, y: Any = None, **kw: Any) -> Any:
        d = pairwise_distances(x, y, **kw)
        return _perturb_one(d, 5, 1e-3) if y is not None else d

    with pytest.raises(Mismatch, match=r"float64\.xy"):
        cs._check_pairwise_distances(CheckContext(), np, off)

    def nonzero_diagonal(x: Any, y: Any = None, **kw: Any) -> Any:
        d = pairwise_distances(x, y, **kw)
        return d if y is not None else d + 1e-12 * np.eye(len(d))

    with pytest.raises(Mismatch, match="diagonal"):
        cs._check_pairwise_distances(CheckContext(), np, nonzero_diagonal)
