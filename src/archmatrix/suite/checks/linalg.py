"""Dense linear algebra through numpy.linalg (and scipy.linalg.solve), in float64 and float32.

Every reference comes from :mod:`refmath` (pure Python), never from the BLAS
or LAPACK being judged. Most problems are built with a known answer
(``A = U diag(s) Vᵀ`` with exact dyadic entries, so float32 and float64 see
the very same matrix), which also makes their condition number known exactly.

Tolerances. ``ctx.tolerance(dtype)`` gives the accuracy expected of a
perfectly conditioned operation. A backward-stable algorithm's forward error
grows with the problem's condition number κ, and float32's unit roundoff
(6e-8) times a modest κ quickly reaches the configured rtol, so every
comparison here is *normwise* and *condition-aware*:
``|actual - expected| <= atol + rtol * factor * max|expected|`` element by
element, where ``factor`` is the sensitivity that numerical analysis gives for
that quantity (κ for solve/inverse, κ² for least squares with a residual,
‖A‖/gap for eigenvectors, …). Each comparison records the bound it used
(``<name>.atol``) next to its error (``<name>.max_abs_err``).

Each check is a thin registered wrapper around ``_check_<name>(ctx, np, impl)``
so unit tests can pass a deliberately wrong ``impl`` and see ``Mismatch``.

Stdlib only at import time: numpy/scipy are imported inside the checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from ..registry import CheckContext, Mismatch, check
from . import refmath as rm

DTYPES = ("float64", "float32")

Func = Callable[..., Any]

# Known-answer problems. Singular values / eigenvalues are dyadic so the built
# matrices are exact in float32; their spread sets κ, kept modest (≤ 16) so
# that κ-scaled float32 tolerances still catch a 1 % error.
F = Fraction
SQUARE_SINGULAR_VALUES = (F(4), F(3), F(2), F(1), F(3, 4), F(1, 2))  # 6×6, κ = 8
LSTSQ_SINGULAR_VALUES = (F(2), F(3, 2), F(1), F(3, 4), F(1, 2))  # 8×5, κ = 4
RANK3_SINGULAR_VALUES = (F(2), F(1), F(1, 2))  # 7×5 of rank 3, κ on its range = 4
SPD_EIGENVALUES = (F(4), F(3), F(2), F(1), F(1, 2), F(1, 4))  # κ = 16
EIGH_EIGENVALUES = (F(-4), F(-2), F(-1, 2), F(1), F(3), F(6))  # min gap 1.5, ‖A‖ = 6
SVD_SINGULAR_VALUES = (F(6), F(4), F(5, 2), F(1), F(1, 2))  # 7×5

# rcond for the rank-deficient lstsq, relative to the largest singular value:
# far above rounding noise in the zero singular values (~n·eps32·‖A‖ ≈ 1e-6)
# and far below the smallest true one (1/4 of the largest).
RANK_RCOND = 1e-3


def _numpy() -> Any:
    import numpy

    return numpy


def _exact_array(np: Any, values: Sequence[Sequence[rm.Number]] | Sequence[rm.Number], dtype: str) -> Any:
    """An array holding exactly ``values``; refuses (error, not mismatch) if it cannot.

    The known answers assume numpy received these exact numbers; a value that
    float32 cannot hold would make the reference wrong, not the library.
    """
    floats: Any = [[float(x) for x in row] if isinstance(row, Sequence) else float(row) for row in values]
    arr = np.array(floats, dtype=dtype)
    if arr.tolist() != floats:
        raise RuntimeError(f"reference input is not exactly representable in {dtype}")
    return arr


def assert_normwise(
    ctx: CheckContext,
    name: str,
    actual: Any,
    expected: Any,
    *,
    dtype: str,
    factor: float = 1.0,
    scale: float | None = None,
) -> None:
    """Element-wise ``|a - e| <= atol + rtol·factor·scale`` (scale defaults to max|expected|)."""
    tol = ctx.tolerance(dtype)
    if scale is None:
        scale = rm.max_abs(rm.vec_floats(_flat(expected)))
    atol = tol.atol + tol.rtol * factor * scale
    ctx.record(f"{name}.atol", atol)
    ctx.assert_close(name, actual, _floats(expected), dtype=dtype, rtol=0.0, atol=atol)


def _flat(value: Any) -> list[rm.Number]:
    if isinstance(value, (list, tuple)):
        out: list[rm.Number] = []
        for item in value:
            out.extend(_flat(item))
        return out
    return [value]


def _floats(value: Any) -> Any:
    """Nested Fractions → nested floats (assert_close compares floats)."""
    if isinstance(value, (list, tuple)):
        return [_floats(v) for v in value]
    return float(value)


def _column(m: Sequence[Sequence[Any]], j: int) -> list[Any]:
    return [row[j] for row in m]


def _fmatmul(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> list[list[float]]:
    """Float matmul with correctly rounded sums (for reconstructions from library output)."""
    cols = list(zip(*b, strict=True))
    return [[math.fsum(x * y for x, y in zip(row, col, strict=True)) for col in cols] for row in a]


# --------------------------------------------------------------------------
# matmul


def _check_matmul(ctx: CheckContext, np: Any, matmul: Func) -> None:
    # Integer entries in [-8, 8]: every product and partial sum is an integer
    # below 2**24, so the result is EXACT in float32 and float64 whatever the
    # kernel's summation order or FMA use: any difference is a wrong kernel.
    # 96³ is past OpenBLAS's threading threshold (M·N·K > 4·65536), so with
    # several threads it runs the optimised kernels in parallel.
    a96, b96 = rm.random_ints(101, 96, 96), rm.random_ints(102, 96, 96)
    a_odd, b_odd = rm.random_ints(103, 67, 45), rm.random_ints(104, 45, 31)  # edge/tail handling
    x96 = rm.random_ints(105, 96, 1)
    exact_cases = [
        ("gemm96", a96, b96, rm.matmul(a96, b96), False),
        ("gemm_67x45x31", a_odd, b_odd, rm.matmul(a_odd, b_odd), False),
        ("gemv96", a96, x96, [row[0] for row in rm.matmul(a96, x96)], True),
    ]
    # K = 520 exceeds OpenBLAS's K blocking (GEMM_Q, 128-512 across targets),
    # so partial products are accumulated across panels. A Python product
    # would be slow; verify with Freivalds' test instead: C·r == A·(B·r) in
    # exact integers for random vectors r with entries in [1, 2**20]. r has no
    # zero, so one wrong entry in a row is always caught; several wrong
    # entries cancel in one probe with probability <= 2**-20.
    ak, bk = rm.random_ints(106, 128, 520), rm.random_ints(107, 520, 128)
    probes = rm.random_ints(108, 3, 128, 1, 2**20)
    probe_refs = [rm.matvec(ak, rm.matvec(bk, r)) for r in probes]
    # Full-precision Gaussian data: rounding happens, so compare with the
    # classic dot-product bound |fl(AB) - AB| <= k·u·(|A||B|), i.e. a tolerance
    # scaled by max (|A||B|)_ij, against the exact product of the numbers the
    # library actually received (read back from the array).
    ga, gb = rm.random_gauss(109, 24, 16), rm.random_gauss(110, 16, 12)

    for dtype in DTYPES:
        for label, a, b, ref, vector in exact_cases:
            arr_b = np.array([row[0] for row in b] if vector else b, dtype=dtype)
            got = matmul(np.array(a, dtype=dtype), arr_b)
            ctx.assert_close(f"{dtype}.{label}", got, ref, dtype=dtype, rtol=0.0, atol=0.0)

        c = matmul(np.array(ak, dtype=dtype), np.array(bk, dtype=dtype)).tolist()
        try:
            c_int = [[int(v) for v in row] for row in c]
        except (ValueError, OverflowError):  # NaN or inf
            c_int = []
        if c_int != c:  # compares numerically, in C
            raise Mismatch(f"{dtype}.gemm_k520: result is not integer-valued")
        for k, (r, ref) in enumerate(zip(probes, probe_refs, strict=True)):
            ctx.assert_close(
                f"{dtype}.gemm_k520.probe{k}",
                rm.matvec(c_int, r),
                ref,
                dtype=dtype,
                rtol=0.0,
                atol=0.0,
            )

        arr_a, arr_b = np.array(ga, dtype=dtype), np.array(gb, dtype=dtype)
        qa, qb = rm.to_fractions(arr_a.tolist()), rm.to_fractions(arr_b.tolist())
        # The bound is only a scale: floats are accurate enough for it.
        abs_a = [[abs(float(v)) for v in row] for row in qa]
        abs_b = [[abs(float(v)) for v in row] for row in qb]
        abs_bound = rm.max_abs(_fmatmul(abs_a, abs_b))
        assert_normwise(
            ctx, f"{dtype}.gemm_gauss", matmul(arr_a, arr_b), rm.matmul(qa, qb), dtype=dtype, scale=abs_bound
        )


@check("linalg.matmul", description="numpy matmul (GEMM/GEMV, threaded GEMM) exact on integer data")
def linalg_matmul(ctx: CheckContext) -> None:
    np = _numpy()
    _check_matmul(ctx, np, np.matmul)


# --------------------------------------------------------------------------
# solve, inverse, determinant


def _square_problem() -> tuple[rm.QMatrix, float]:
    a, _, _ = rm.with_singular_values(SQUARE_SINGULAR_VALUES, 6, 6, seed=201)
    kappa = float(max(SQUARE_SINGULAR_VALUES) / min(SQUARE_SINGULAR_VALUES))
    return a, kappa


def _check_solve(ctx: CheckContext, np: Any, solve: Func, *, prefix: str = "solve") -> None:
    a, kappa = _square_problem()
    b = [3, -1, 4, 1, -5, 9]
    bm = rm.random_ints(202, 6, 3, -9, 9)
    x_ref = rm.solve(a, b)
    xm_ref = rm.solve_matrix(a, bm)
    ctx.record(f"{prefix}.cond", kappa)
    for dtype in DTYPES:
        arr = _exact_array(np, a, dtype)
        # Forward error of a backward-stable solve <= κ·(backward error): scale by κ.
        x = solve(arr, _exact_array(np, b, dtype))
        assert_normwise(ctx, f"{dtype}.{prefix}.x", x, x_ref, dtype=dtype, factor=kappa)
        xm = solve(arr, _exact_array(np, bm, dtype))
        assert_normwise(ctx, f"{dtype}.{prefix}.multi_rhs", xm, xm_ref, dtype=dtype, factor=kappa)


@check("linalg.solve", description="numpy.linalg.solve vs exact rational solution (κ = 8)")
def linalg_solve(ctx: CheckContext) -> None:
    np = _numpy()
    _check_solve(ctx, np, np.linalg.solve)


def _check_inv(ctx: CheckContext, np: Any, inv: Func) -> None:
    a, kappa = _square_problem()
    ref = rm.inverse(a)
    for dtype in DTYPES:
        # Like solve: relative forward error of the inverse is κ times the backward error.
        got = inv(_exact_array(np, a, dtype))
        assert_normwise(ctx, f"{dtype}.inv", got, ref, dtype=dtype, factor=kappa)


@check("linalg.inv", description="numpy.linalg.inv vs exact rational inverse (κ = 8)")
def linalg_inv(ctx: CheckContext) -> None:
    np = _numpy()
    _check_inv(ctx, np, np.linalg.inv)


def _check_det(ctx: CheckContext, np: Any, det: Func, slogdet: Func) -> None:
    a, kappa = _square_problem()
    ints = [[2, -1, 0, 3, 1], [1, 4, -2, 0, 2], [0, 3, 5, -1, -2], [-3, 1, 2, 6, 0], [2, 0, -1, 1, 7]]
    cases: list[tuple[str, Sequence[Sequence[rm.Number]], float]] = [
        ("det", a, kappa),
        ("det_int5", ints, rm.condition_number(ints)),
    ]
    for label, m, cond in cases:
        ref = rm.det(m)
        n = len(m)
        ctx.record(f"{label}.exact", float(ref))
        ctx.record(f"{label}.cond", cond)
        for dtype in DTYPES:
            arr = _exact_array(np, m, dtype)
            # d(det)/det = tr(A⁻¹ dA): relative error <= n·κ·(relative backward error).
            factor = n * cond
            assert_normwise(ctx, f"{dtype}.{label}", det(arr), ref, dtype=dtype, factor=factor)
            sign, logabs = slogdet(arr)
            if float(sign) != (1.0 if ref > 0 else -1.0):
                raise Mismatch(
                    f"{dtype}.{label}: slogdet sign {float(sign)}, expected {math.copysign(1, ref)}"
                )
            # An absolute error in log|det| is the relative error of det.
            assert_normwise(
                ctx,
                f"{dtype}.{label}.logabsdet",
                logabs,
                math.log(abs(ref)),
                dtype=dtype,
                factor=factor,
                scale=1.0,
            )


@check("linalg.det", description="numpy.linalg.det/slogdet vs exact rational determinants")
def linalg_det(ctx: CheckContext) -> None:
    np = _numpy()
    _check_det(ctx, np, np.linalg.det, np.linalg.slogdet)


# --------------------------------------------------------------------------
# least squares


def _check_lstsq(ctx: CheckContext, np: Any, lstsq: Func) -> None:
    a, _, _ = rm.with_singular_values(LSTSQ_SINGULAR_VALUES, 8, 5, seed=301)
    b = [5, -3, 2, 7, -1, 0, 4, -6]  # not in range(A): the residual is non-zero
    x_ref = rm.lstsq(a, b)
    r = [bi - axi for bi, axi in zip(rm.vec_fractions(b), rm.matvec(a, x_ref), strict=True)]
    res_ref = rm.dot(r, r)
    kappa = float(max(LSTSQ_SINGULAR_VALUES) / min(LSTSQ_SINGULAR_VALUES))

    deficient, _, _ = rm.with_singular_values(RANK3_SINGULAR_VALUES, 7, 5, seed=302)
    b_def = [1, 2, -3, 4, 0, -2, 5]
    x_def_ref = rm.lstsq(deficient, b_def)  # minimum-norm (exact pseudo-inverse)
    kappa_def = float(max(RANK3_SINGULAR_VALUES) / min(RANK3_SINGULAR_VALUES))
    ctx.record("lstsq.cond", kappa)
    ctx.record("lstsq.residual.exact", float(res_ref))
    for dtype in DTYPES:
        x, residuals, rank, sv = lstsq(_exact_array(np, a, dtype), _exact_array(np, b, dtype), rcond=None)
        # With a non-zero residual the LS solution's sensitivity has a κ² term.
        assert_normwise(ctx, f"{dtype}.lstsq.x", x, x_ref, dtype=dtype, factor=kappa**2)
        # Residual norm²: sensitivity ~κ relative to ‖b‖².
        bnorm2 = float(sum(v * v for v in b))
        assert_normwise(
            ctx, f"{dtype}.lstsq.residual", residuals, [res_ref], dtype=dtype, factor=kappa, scale=bnorm2
        )
        # Singular values are perfectly conditioned: |Δσ| <= ‖ΔA‖ (Weyl).
        assert_normwise(
            ctx, f"{dtype}.lstsq.sv", sv, sorted(LSTSQ_SINGULAR_VALUES, reverse=True), dtype=dtype
        )
        if int(rank) != 5:
            raise Mismatch(f"{dtype}.lstsq: rank {int(rank)}, expected 5")

        x, _, rank, _ = lstsq(
            _exact_array(np, deficient, dtype), _exact_array(np, b_def, dtype), rcond=RANK_RCOND
        )
        ctx.record(f"{dtype}.lstsq_rank3.rank", int(rank))
        if int(rank) != 3:
            raise Mismatch(f"{dtype}.lstsq_rank3: rank {int(rank)}, expected 3 (rcond={RANK_RCOND})")
        assert_normwise(ctx, f"{dtype}.lstsq_rank3.x", x, x_def_ref, dtype=dtype, factor=kappa_def**2)


@check("linalg.lstsq", description="numpy.linalg.lstsq: full rank and minimum-norm rank-deficient")
def linalg_lstsq(ctx: CheckContext) -> None:
    np = _numpy()
    _check_lstsq(ctx, np, np.linalg.lstsq)


# --------------------------------------------------------------------------
# Cholesky, symmetric eigenproblem, SVD


def _spd_problem() -> tuple[rm.QMatrix, float]:
    a, _ = rm.with_eigenvalues(SPD_EIGENVALUES, seed=401)
    return a, float(max(SPD_EIGENVALUES) / min(SPD_EIGENVALUES))


def _check_cholesky(ctx: CheckContext, np: Any, cholesky: Func) -> None:
    a, kappa = _spd_problem()
    ref = rm.cholesky(a)
    norm_a = float(max(SPD_EIGENVALUES))
    ctx.record("cholesky.cond", kappa)
    for dtype in DTYPES:
        got = cholesky(_exact_array(np, a, dtype))
        # Forward error of the factor grows at most like κ(A) (Sun 1991).
        assert_normwise(ctx, f"{dtype}.cholesky.L", got, ref, dtype=dtype, factor=kappa)
        # Backward stability: L·Lᵀ reproduces A to ~u·‖A‖ whatever κ is.
        lower = got.tolist()
        assert_normwise(
            ctx,
            f"{dtype}.cholesky.LLt",
            _fmatmul(lower, rm.transpose(lower)),
            a,
            dtype=dtype,
            scale=norm_a,
        )


@check("linalg.cholesky", description="numpy.linalg.cholesky of an SPD matrix with known spectrum (κ = 16)")
def linalg_cholesky(ctx: CheckContext) -> None:
    np = _numpy()
    _check_cholesky(ctx, np, np.linalg.cholesky)


def _check_eigh(ctx: CheckContext, np: Any, eigh: Func) -> None:
    a, q = rm.with_eigenvalues(EIGH_EIGENVALUES, seed=501)
    order = sorted(range(len(EIGH_EIGENVALUES)), key=lambda i: EIGH_EIGENVALUES[i])
    values = [EIGH_EIGENVALUES[i] for i in order]
    vectors = [[float(x) for x in _column(q, i)] for i in order]
    norm_a = float(max(abs(v) for v in values))
    gap = float(min(values[i + 1] - values[i] for i in range(len(values) - 1)))
    for dtype in DTYPES:
        w, v = eigh(_exact_array(np, a, dtype))
        # Weyl: each eigenvalue moves by at most ‖ΔA‖₂ ~ u‖A‖: absolute, scale ‖A‖.
        assert_normwise(ctx, f"{dtype}.eigh.values", w, values, dtype=dtype, scale=norm_a)
        cols = [_column(v.tolist(), j) for j in range(len(values))]
        signs, cosines = rm.align_signs(cols, vectors)
        ctx.record(f"{dtype}.eigh.abs_cos", cosines)
        aligned = [[s * x for x in col] for s, col in zip(signs, cols, strict=True)]
        # Davis–Kahan: an eigenvector turns by ~‖ΔA‖/gap.
        assert_normwise(
            ctx, f"{dtype}.eigh.vectors", aligned, vectors, dtype=dtype, factor=norm_a / gap, scale=1.0
        )


@check("linalg.eigh", description="numpy.linalg.eigh of A = Q diag(λ) Qᵀ with known λ and Q")
def linalg_eigh(ctx: CheckContext) -> None:
    np = _numpy()
    _check_eigh(ctx, np, np.linalg.eigh)


def _check_svd(ctx: CheckContext, np: Any, svd: Func) -> None:
    rows, cols = 7, 5
    a, u_ref, v_ref = rm.with_singular_values(SVD_SINGULAR_VALUES, rows, cols, seed=601)
    k = len(SVD_SINGULAR_VALUES)
    s_ref = [float(s) for s in SVD_SINGULAR_VALUES]
    left = [[float(x) for x in _column(u_ref, i)] for i in range(k)]
    right = [[float(x) for x in _column(v_ref, i)] for i in range(k)]
    s_max = max(s_ref)
    # Sensitivity of singular vectors: ‖ΔA‖ / (distance to the other singular
    # values, and to 0 for the thin U of a tall matrix).
    gap = min(
        min(abs(s_ref[i] - s_ref[j]) for j in range(k) if j != i) if k > 1 else s_ref[i] for i in range(k)
    )
    gap = min(gap, min(s_ref))
    for dtype in DTYPES:
        u, s, vt = svd(_exact_array(np, a, dtype), full_matrices=False)
        assert_normwise(ctx, f"{dtype}.svd.s", s, s_ref, dtype=dtype, scale=s_max)  # Weyl
        u_cols = [_column(u.tolist(), j) for j in range(k)]
        v_cols = vt.tolist()[:k]
        # u_i and v_i may flip sign together, never separately: align both by u's sign.
        signs, cosines = rm.align_signs(u_cols, left)
        ctx.record(f"{dtype}.svd.u_abs_cos", cosines)
        u_al = [[sg * x for x in col] for sg, col in zip(signs, u_cols, strict=True)]
        v_al = [[sg * x for x in col] for sg, col in zip(signs, v_cols, strict=True)]
        factor = s_max / gap
        assert_normwise(ctx, f"{dtype}.svd.u", u_al, left, dtype=dtype, factor=factor, scale=1.0)
        assert_normwise(ctx, f"{dtype}.svd.v", v_al, right, dtype=dtype, factor=factor, scale=1.0)
        # Backward stability: U·diag(s)·Vᵀ reproduces A to ~u·‖A‖.
        us = [[x * sv for x, sv in zip(row, s.tolist(), strict=True)] for row in u.tolist()]
        assert_normwise(ctx, f"{dtype}.svd.USVt", _fmatmul(us, vt.tolist()), a, dtype=dtype, scale=s_max)


@check("linalg.svd", description="numpy.linalg.svd of U diag(s) Vᵀ with known factors (sign-insensitive)")
def linalg_svd(ctx: CheckContext) -> None:
    np = _numpy()
    _check_svd(ctx, np, np.linalg.svd)


# --------------------------------------------------------------------------
# scipy.linalg.solve: scipy wheels bundle their own OpenBLAS build, a separate
# library from numpy's, so it gets its own numeric check.


def _check_scipy_solve(ctx: CheckContext, np: Any, solve: Func) -> None:
    _check_solve(ctx, np, solve, prefix="scipy_solve")
    a, kappa = _spd_problem()
    b = [1, -2, 3, -4, 5, -6]
    ref = rm.solve(a, b)
    for dtype in DTYPES:
        x = solve(_exact_array(np, a, dtype), _exact_array(np, b, dtype), assume_a="pos")
        assert_normwise(ctx, f"{dtype}.scipy_solve.pos", x, ref, dtype=dtype, factor=kappa)


@check("linalg.scipy_solve", description="scipy.linalg.solve (general and assume_a='pos'), own OpenBLAS")
def linalg_scipy_solve(ctx: CheckContext) -> None:
    np = _numpy()
    import scipy.linalg

    _check_scipy_solve(ctx, np, scipy.linalg.solve)
