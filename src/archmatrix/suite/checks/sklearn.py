"""scikit-learn estimators on fixed, seeded data, against pure-Python references.

References come from :mod:`refmath` (exact rational least squares and ridge,
Newton's method for logistic regression, Jacobi PCA, exact Lloyd k-means,
exact distances). Data are dyadic (multiples of 1/16 or 1/64), so float32 and
float64 runs start from the same numbers and the references are exact.

Tolerances are ``ctx.tolerance(dtype)`` scaled by the problem's sensitivity
(see :mod:`.linalg`), except where an *optimiser* stops at its own
tolerance (logistic regression): that comparison uses
``ctx.tolerances["optimizer"]`` (default :data:`OPTIMIZER_TOLERANCE`), a
key the config's ``checks.tolerances`` mapping can override.

Each check is a thin registered wrapper around ``_check_<name>(ctx, np, impl)``
so unit tests can inject a wrong estimator and see ``Mismatch``.

Stdlib only at import time: numpy/sklearn are imported inside the checks.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Any

from ..registry import CheckContext, CheckSkipped, Mismatch, Tolerance, check
from . import refmath as rm
from .linalg import assert_normwise

DTYPES = ("float64", "float32")

Func = Callable[..., Any]

# lbfgs stops when its projected gradient is below tol (we set 1e-10), not at
# the exact optimum: on this problem it lands ~4e-9 from Newton's answer, so
# 1e-4 relative leaves a wide margin while still catching a fit that stopped
# early or optimised another objective (e.g. a different C).
OPTIMIZER_TOLERANCE = Tolerance(rtol=1e-4, atol=1e-6)

# The problem is separable with a margin: any working tree ensemble learns it almost perfectly.
MIN_ACCURACY = 0.9


def _numpy() -> Any:
    import numpy

    return numpy


def _optimizer_tolerance(ctx: CheckContext) -> Tolerance:
    return ctx.tolerances.get("optimizer", OPTIMIZER_TOLERANCE)


def _model_vector(coef: Sequence[rm.Number], intercept: rm.Number) -> list[float]:
    return [*rm.vec_floats(coef), float(intercept)]


# --------------------------------------------------------------------------
# linear models

# y = x0 + x1 exactly, but the two columns are collinear after centring, so
# the least-squares solutions form a line; the minimum-norm one (what
# scipy.linalg.lstsq's default gelsd driver returns) is coef [1, 1], intercept 0.
RANK_DEFICIENT_X = [[1, 2], [3, 4], [5, 6]]
RANK_DEFICIENT_Y = [3, 7, 11]


def _regression_data(
    seed: int, rows: int, coef: Sequence[float], intercept: float
) -> tuple[rm.Matrix, list[float]]:
    x = rm.random_dyadic(seed, rows, len(coef))
    noise = rm.random_dyadic(seed + 1, rows, 1, scale=0.25)
    y = [
        math.fsum(a * w for a, w in zip(row, coef, strict=True)) + intercept + e[0]
        for row, e in zip(x, noise, strict=True)
    ]
    return x, y


def _check_linear_regression(ctx: CheckContext, np: Any, estimator: Any) -> None:
    model = estimator().fit(
        np.array(RANK_DEFICIENT_X, dtype="float64"), np.array(RANK_DEFICIENT_Y, dtype="float64")
    )
    ctx.record("rank_deficient.rank", int(model.rank_))
    if int(model.rank_) != 1:
        raise Mismatch(f"rank_deficient: rank_ = {int(model.rank_)}, expected 1")
    # The exact minimum-norm answer, stated rather than computed: coef [1, 1], intercept 0.
    ctx.assert_close(
        "rank_deficient.model",
        [*model.coef_.tolist(), float(model.intercept_)],
        [1.0, 1.0, 0.0],
        dtype="float64",
    )

    x, y = _regression_data(701, 20, [1.5, -2.0, 0.5], 3.0)
    coef, intercept = rm.linear_regression(x, y)
    kappa = rm.condition_number(rm.center(x)[0])  # of the centred design, what is solved
    ctx.record("full_rank.cond", kappa)
    for dtype in DTYPES:
        model = estimator().fit(np.array(x, dtype=dtype), np.array(y, dtype=dtype))
        # Least squares with a residual: sensitivity ~κ².
        assert_normwise(
            ctx,
            f"{dtype}.full_rank.model",
            [*model.coef_.tolist(), float(model.intercept_)],
            _model_vector(coef, intercept),
            dtype=dtype,
            factor=kappa**2,
        )


@check(
    "sklearn.linear_regression", description="LinearRegression: minimum-norm rank-deficient fit, seeded OLS"
)
def sklearn_linear_regression(ctx: CheckContext) -> None:
    from sklearn.linear_model import LinearRegression

    _check_linear_regression(ctx, _numpy(), LinearRegression)


RIDGE_ALPHA = 1.0
RIDGE_SOLVERS = ("cholesky", "svd")


def _check_ridge(ctx: CheckContext, np: Any, estimator: Any) -> None:
    x, y = _regression_data(711, 30, [2.0, -1.0, 0.5, 0.0], -1.0)
    coef, intercept = rm.ridge(x, y, RIDGE_ALPHA)
    ref = _model_vector(coef, intercept)
    xc = rm.center(x)[0]
    gram = rm.matmul(rm.transpose(xc), xc)
    for i in range(len(gram)):
        gram[i][i] += Fraction(RIDGE_ALPHA)
    kappa = rm.condition_number_spd(gram)  # of the system the solvers solve
    ctx.record("cond", kappa)
    for solver in RIDGE_SOLVERS:
        for dtype in DTYPES:
            model = estimator(alpha=RIDGE_ALPHA, solver=solver).fit(
                np.array(x, dtype=dtype), np.array(y, dtype=dtype)
            )
            assert_normwise(
                ctx,
                f"{dtype}.{solver}.model",
                [*model.coef_.tolist(), float(model.intercept_)],
                ref,
                dtype=dtype,
                factor=kappa,
            )


@check("sklearn.ridge", description="Ridge (cholesky and svd solvers) vs exact closed form")
def sklearn_ridge(ctx: CheckContext) -> None:
    from sklearn.linear_model import Ridge

    _check_ridge(ctx, _numpy(), Ridge)


LOGISTIC_C = 1.0


def _logistic_data() -> tuple[rm.Matrix, list[int]]:
    # Overlapping blobs: not separable, so the optimum is driven by both loss
    # and penalty (a separable set would push ‖w‖ up to where only C binds).
    return rm.blobs(721, [[-0.75, -0.5], [0.75, 0.5]], 20, spread=1.0)


def _check_logistic_regression(ctx: CheckContext, np: Any, estimator: Any) -> None:
    x, y = _logistic_data()
    coef, intercept, newton_iter = rm.logistic_newton(x, y, LOGISTIC_C)
    ref = _model_vector(coef, intercept)
    ctx.record("newton_iterations", newton_iter)
    model = estimator(C=LOGISTIC_C, tol=1e-10, max_iter=1000).fit(
        np.array(x, dtype="float64"), np.array(y, dtype="int64")
    )
    got = [*model.coef_.ravel().tolist(), float(model.intercept_.ravel()[0])]
    ctx.record("n_iter", int(np.asarray(model.n_iter_).max()))
    f_ref = rm.logistic_objective(x, y, coef, intercept, LOGISTIC_C)
    f_got = rm.logistic_objective(x, y, got[:-1], got[-1], LOGISTIC_C)
    ctx.record("objective", f_got)
    ctx.record("objective.excess", f_got - f_ref)
    tol = _optimizer_tolerance(ctx)
    atol = tol.atol + tol.rtol * rm.max_abs(ref)
    ctx.record("model.atol", atol)
    ctx.assert_close("model", got, ref, rtol=0.0, atol=atol)
    proba = model.predict_proba(np.array(x, dtype="float64"))[:, 1]
    ref_proba = [
        1.0 / (1.0 + math.exp(-(math.fsum(a * w for a, w in zip(row, coef, strict=True)) + intercept)))
        for row in x
    ]
    # dp/dz <= 1/4: probabilities move less than the decision values do.
    ctx.assert_close("proba", proba, ref_proba, rtol=0.0, atol=atol)


@check(
    "sklearn.logistic_regression",
    description="LogisticRegression (lbfgs, L2) vs Newton's method in pure Python",
)
def sklearn_logistic_regression(ctx: CheckContext) -> None:
    from sklearn.linear_model import LogisticRegression

    _check_logistic_regression(ctx, _numpy(), LogisticRegression)


# --------------------------------------------------------------------------
# PCA and k-means

PCA_COMPONENTS = 3


def _pca_data() -> rm.Matrix:
    # Distinct column scales give well-separated explained variances.
    scales = [3.0, 2.0, 1.0, 0.5]
    return [[v * s for v, s in zip(row, scales, strict=True)] for row in rm.random_dyadic(731, 30, 4)]


def _check_pca(ctx: CheckContext, np: Any, estimator: Any) -> None:
    x = _pca_data()
    ref = rm.pca(x, PCA_COMPONENTS)
    eig = ref.eigenvalues
    # Components turn by ~‖ΔC‖/gap, where the gap includes the first discarded eigenvalue.
    gap = min(eig[i] - eig[i + 1] for i in range(min(PCA_COMPONENTS, len(eig) - 1)))
    ctx.record("gap", gap)
    model = estimator(n_components=PCA_COMPONENTS, svd_solver="full").fit(np.array(x, dtype="float64"))
    assert_normwise(ctx, "mean", model.mean_, ref.mean, dtype="float64")
    # Eigenvalues of the covariance move by at most ‖ΔC‖ (Weyl): scale λ_max.
    assert_normwise(
        ctx, "explained_variance", model.explained_variance_, ref.explained_variance, dtype="float64"
    )
    assert_normwise(
        ctx,
        "explained_variance_ratio",
        model.explained_variance_ratio_,
        ref.explained_variance_ratio,
        dtype="float64",
    )
    comps = model.components_.tolist()
    signs, cosines = rm.align_signs(comps, ref.components)
    ctx.record("components.abs_cos", cosines)
    aligned = [[s * v for v in row] for s, row in zip(signs, comps, strict=True)]
    assert_normwise(
        ctx, "components", aligned, ref.components, dtype="float64", factor=eig[0] / gap, scale=1.0
    )


@check("sklearn.pca", description="PCA (full SVD) vs Jacobi eigenvectors of the exact covariance")
def sklearn_pca(ctx: CheckContext) -> None:
    from sklearn.decomposition import PCA

    _check_pca(ctx, _numpy(), PCA)


KMEANS_CENTERS = [[0.0, 0.0], [4.0, 4.0], [0.0, 4.0]]
# Deliberately off-centre, so Lloyd needs 4 iterations. Over all iterations, a
# point's two nearest squared distances differ by >= 0.16 (checked in exact
# arithmetic), far above float32 rounding: no assignment is a near-tie.
KMEANS_INIT = [[2.25, 1.0], [2.5, 2.0], [1.5, 1.75]]


def _check_kmeans(ctx: CheckContext, np: Any, estimator: Any) -> None:
    x, _ = rm.blobs(741, KMEANS_CENTERS, 10, spread=0.8)
    ref = rm.lloyd_kmeans(x, KMEANS_INIT)
    ctx.record("reference.n_iter", ref.n_iter)
    for dtype in DTYPES:
        model = estimator(
            n_clusters=len(KMEANS_INIT),
            init=np.array(KMEANS_INIT, dtype=dtype),
            n_init=1,
            max_iter=300,
            tol=0.0,  # converge only when labels stop changing, like the reference
            algorithm="lloyd",
        ).fit(np.array(x, dtype=dtype))
        labels = [int(v) for v in model.labels_.tolist()]
        ctx.record(f"{dtype}.n_iter", int(model.n_iter_))
        if labels != ref.labels:
            wrong = sum(a != b for a, b in zip(labels, ref.labels, strict=True))
            raise Mismatch(f"{dtype}.labels: {wrong} of {len(labels)} points assigned differently")
        if int(model.n_iter_) != ref.n_iter:
            raise Mismatch(f"{dtype}.n_iter: {int(model.n_iter_)} iterations, reference needed {ref.n_iter}")
        assert_normwise(ctx, f"{dtype}.centers", model.cluster_centers_, ref.centers, dtype=dtype)
        assert_normwise(ctx, f"{dtype}.inertia", float(model.inertia_), [ref.inertia], dtype=dtype)


@check("sklearn.kmeans", description="KMeans (lloyd, explicit init, n_init=1) vs exact Lloyd iterations")
def sklearn_kmeans(ctx: CheckContext) -> None:
    from sklearn.cluster import KMeans

    _check_kmeans(ctx, _numpy(), KMeans)


# --------------------------------------------------------------------------
# threaded tree ensembles


def _classification_data() -> tuple[rm.Matrix, list[int], rm.Matrix, list[int]]:
    """An axis-aligned XOR with a margin (trees need depth 2): 200 training and ~110 test points."""
    x: rm.Matrix = []
    y: list[int] = []
    for row in rm.random_dyadic(751, 560, 4):
        # Drop points within 0.2 of either boundary, so the labels are learnable.
        if abs(row[0]) >= 0.2 and abs(row[1] - 0.5) >= 0.2:
            x.append(row)
            y.append(int((row[0] > 0) != (row[1] > 0.5)))
    return x[:200], y[:200], x[200:], y[200:]


@contextlib.contextmanager
def openmp_threads(n: int) -> Iterator[int | None]:
    """Run OpenMP regions (scikit-learn's Cython) with ``n`` threads; yield sklearn's effective count.

    scikit-learn caps OpenMP threads at the number of *physical* cores unless
    OMP_NUM_THREADS is set, so set it too: a one-core lane still runs two
    threads (slower, but the point is to exercise the threaded code).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise CheckSkipped(f"threadpoolctl is not importable ({exc}): cannot set OpenMP threads") from None
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(n)
    try:
        with threadpool_limits(limits=n, user_api="openmp"):
            try:
                from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

                effective: int | None = int(_openmp_effective_n_threads())
            except (ImportError, AttributeError):  # private helper: may move
                effective = None
            yield effective
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old


def _accuracy(pred: Sequence[int], truth: Sequence[int]) -> float:
    return sum(int(p) == t for p, t in zip(pred, truth, strict=True)) / len(truth)


def _compare_runs(
    ctx: CheckContext,
    name: str,
    runs: dict[int, tuple[list[int], list[float]]],
    truth: Sequence[int],
) -> None:
    """Accuracy >= MIN_ACCURACY in every run; identical predictions and equal scores across runs."""
    (base_threads, (base_pred, base_score)), *others = sorted(runs.items())
    for threads, (pred, _) in sorted(runs.items()):
        acc = _accuracy(pred, truth)
        ctx.record(f"{name}.accuracy.threads{threads}", acc)
        if acc < MIN_ACCURACY:
            raise Mismatch(
                f"{name}: test accuracy {acc:.3f} with {threads} thread(s), expected >= {MIN_ACCURACY}"
            )
    for threads, (pred, score) in others:
        if pred != base_pred:
            wrong = sum(a != b for a, b in zip(pred, base_pred, strict=True))
            raise Mismatch(
                f"{name}: {wrong} of {len(pred)} predictions differ"
                f" between {base_threads} and {threads} threads"
            )
        # Threads may reorder float sums, nothing more: float64 rounding level.
        assert_normwise(ctx, f"{name}.score.threads{threads}", score, base_score, dtype="float64")


def _check_hist_gradient_boosting(
    ctx: CheckContext,
    np: Any,
    make_model: Callable[[], Any],
    threads: Callable[[int], contextlib.AbstractContextManager[int | None]] = openmp_threads,
) -> None:
    x, y, x_test, y_test = _classification_data()
    runs: dict[int, tuple[list[int], list[float]]] = {}
    for n in (1, 2):
        with threads(n) as effective:
            ctx.record(f"threads{n}.effective", effective)
            if effective is not None and effective != n:
                ctx.warn(
                    f"hist_gradient_boosting asked for {n} OpenMP threads, scikit-learn used {effective}"
                )
            model = make_model().fit(np.array(x), np.array(y))
            xt = np.array(x_test)
            runs[n] = ([int(v) for v in model.predict(xt).tolist()], model.decision_function(xt).tolist())
    _compare_runs(ctx, "hgb", runs, y_test)


@check(
    "sklearn.hist_gradient_boosting",
    description="HistGradientBoostingClassifier with 1 and 2 OpenMP threads: accurate and identical",
)
def sklearn_hist_gradient_boosting(ctx: CheckContext) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    def make() -> Any:
        return HistGradientBoostingClassifier(max_iter=10, early_stopping=False, random_state=0)

    _check_hist_gradient_boosting(ctx, _numpy(), make)


def _check_random_forest(ctx: CheckContext, np: Any, make_model: Callable[[int], Any]) -> None:
    x, y, x_test, y_test = _classification_data()
    runs: dict[int, tuple[list[int], list[float]]] = {}
    for n_jobs in (1, 2):
        model = make_model(n_jobs).fit(np.array(x), np.array(y))
        xt = np.array(x_test)
        runs[n_jobs] = ([int(v) for v in model.predict(xt).tolist()], model.predict_proba(xt)[:, 1].tolist())
    _compare_runs(ctx, "forest", runs, y_test)


@check(
    "sklearn.random_forest",
    description="RandomForestClassifier with n_jobs=1 and 2 (joblib threads): accurate and identical",
)
def sklearn_random_forest(ctx: CheckContext) -> None:
    from sklearn.ensemble import RandomForestClassifier

    def make(n_jobs: int) -> Any:
        # An odd number of trees: averaged votes never tie at 0.5.
        return RandomForestClassifier(n_estimators=25, random_state=0, n_jobs=n_jobs)

    _check_random_forest(ctx, _numpy(), make)


# --------------------------------------------------------------------------
# pairwise distances


def _check_pairwise_distances(ctx: CheckContext, np: Any, pairwise_distances: Func) -> None:
    x = rm.random_dyadic(761, 12, 5)
    y = rm.random_dyadic(762, 9, 5)
    ref = rm.pairwise_euclidean(x, y)
    ref_xx = rm.pairwise_euclidean(x, x)
    sq_x = max(math.fsum(v * v for v in row) for row in x)
    sq_y = max(math.fsum(v * v for v in row) for row in y)
    min_d = min(v for row in ref for v in row)
    min_xx = min(ref_xx[i][j] for i in range(len(x)) for j in range(len(x)) if i != j)
    # scikit-learn computes d² = ‖x‖² - 2x·y + ‖y‖², which loses ~u·(‖x‖²+‖y‖²)
    # of absolute accuracy in d², i.e. that divided by 2d in d: the smallest
    # distance sets the scale.
    scale = (sq_x + sq_y) / (2 * min_d)
    scale_xx = (2 * sq_x) / (2 * min_xx)
    ctx.record("min_distance", min_d)
    for dtype in DTYPES:
        ax, ay = np.array(x, dtype=dtype), np.array(y, dtype=dtype)
        d1 = pairwise_distances(ax, ay, metric="euclidean")
        assert_normwise(ctx, f"{dtype}.xy", d1, ref, dtype=dtype, scale=scale)
        # Two joblib threads split the work: same numbers.
        d2 = pairwise_distances(ax, ay, metric="euclidean", n_jobs=2)
        assert_normwise(ctx, f"{dtype}.xy.n_jobs2", d2, ref, dtype=dtype, scale=scale)
        dxx = pairwise_distances(ax, metric="euclidean").tolist()
        diagonal = [dxx[i][i] for i in range(len(dxx))]
        ctx.assert_close(f"{dtype}.xx.diagonal", diagonal, [0.0] * len(diagonal), rtol=0.0, atol=0.0)
        off = [dxx[i][j] for i in range(len(x)) for j in range(len(x)) if i != j]
        off_ref = [ref_xx[i][j] for i in range(len(x)) for j in range(len(x)) if i != j]
        assert_normwise(ctx, f"{dtype}.xx", off, off_ref, dtype=dtype, scale=scale_xx)


@check(
    "sklearn.pairwise_distances",
    description="euclidean pairwise_distances (also n_jobs=2) vs exact distances",
)
def sklearn_pairwise_distances(ctx: CheckContext) -> None:
    from sklearn.metrics import pairwise_distances

    _check_pairwise_distances(ctx, _numpy(), pairwise_distances)
