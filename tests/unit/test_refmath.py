"""The pure-Python reference math, against answers computed by hand.

These tests use no numpy: the references must stand on their own.
"""

from __future__ import annotations

import math
from fractions import Fraction as F

import pytest

from archmatrix.suite.checks import refmath as rm


def _is_identity(m: rm.QMatrix) -> bool:
    return m == rm.identity(len(m))


# --------------------------------------------------------------------------
# exact linear algebra


def test_matmul_by_hand() -> None:
    assert rm.matmul([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[19, 22], [43, 50]]
    assert rm.matmul([[1, 2, 3]], [[1], [0], [-1]]) == [[-2]]
    assert rm.matvec([[1, 2], [3, 4]], [1, -1]) == [-1, -1]


def test_matmul_keeps_integers_and_fractions_exact() -> None:
    big = 2**70  # beyond float precision: a float path would round
    assert rm.matmul([[big, 1]], [[1], [1]]) == [[big + 1]]
    assert rm.matmul([[F(1, 3)]], [[F(3, 7)]]) == [[F(1, 7)]]


def test_matmul_rejects_misaligned_shapes() -> None:
    with pytest.raises(ValueError, match="do not align"):
        rm.matmul([[1, 2]], [[1, 2]])


def test_inverse_2x2() -> None:
    # [[4, 7], [2, 6]]⁻¹ = 1/10 [[6, -7], [-2, 4]]
    assert rm.inverse([[4, 7], [2, 6]]) == [[F(3, 5), F(-7, 10)], [F(-1, 5), F(2, 5)]]


def test_inverse_needs_row_swap() -> None:
    # The first pivot is zero: elimination must swap rows.
    assert rm.inverse([[0, 2], [1, 0]]) == [[0, 1], [F(1, 2), 0]]


def test_det_known_values() -> None:
    assert rm.det([[1, 2], [3, 4]]) == -2
    assert rm.det([[2, 0, 1], [1, 3, 2], [1, 1, 2]]) == 6  # 2·(6-2) - 0 + 1·(1-3)
    assert rm.det([[0, 1], [1, 0]]) == -1  # a row swap flips the sign
    assert rm.det([[1, 2], [2, 4]]) == 0
    assert rm.det([[F(1, 2), 0], [0, F(2, 3)]]) == F(1, 3)


def test_solve_and_singular() -> None:
    # 2x + y = 5, x + 3y = 10  →  x = 1, y = 3
    assert rm.solve([[2, 1], [1, 3]], [5, 10]) == [1, 3]
    with pytest.raises(ValueError, match="singular"):
        rm.solve([[1, 2], [2, 4]], [1, 2])


def test_rank_and_rref() -> None:
    reduced, pivots = rm.rref([[1, 2, 3], [2, 4, 6], [1, 0, 1]])
    assert pivots == [0, 1]
    assert reduced[0] == [1, 0, 1] and reduced[1] == [0, 1, 1] and reduced[2] == [0, 0, 0]
    assert rm.rank([[1, 2], [2, 4]]) == 1
    assert rm.rank([[0, 0], [0, 0]]) == 0


def test_lstsq_full_rank_line_fit() -> None:
    # Fit y = a + b·t through (0, 1), (1, 3), (2, 2): normal equations
    # [[3, 3], [3, 5]] [a, b] = [6, 7]  →  a = 3/2, b = 1/2.
    a = [[1, 0], [1, 1], [1, 2]]
    assert rm.lstsq(a, [1, 3, 2]) == [F(3, 2), F(1, 2)]


def test_lstsq_rank_deficient_is_minimum_norm() -> None:
    # The brief's example, centred: Xc = [[-2,-2],[0,0],[2,2]], yc = [-4, 0, 4].
    # Every w with -2(w0 + w1) = -4, i.e. w0 + w1 = 2, fits exactly; the
    # shortest such w is [1, 1].
    assert rm.lstsq([[-2, -2], [0, 0], [2, 2]], [-4, 0, 4]) == [1, 1]
    coef, intercept = rm.linear_regression([[1, 2], [3, 4], [5, 6]], [3, 7, 11])
    assert coef == [1, 1] and intercept == 0


def test_pinv_satisfies_penrose_conditions() -> None:
    a = rm.to_fractions([[1, 2, 3], [2, 4, 6], [1, 0, 1], [0, 2, 2]])  # rank 2
    p = rm.pinv(a)
    assert rm.matmul(rm.matmul(a, p), a) == a
    assert rm.matmul(rm.matmul(p, a), p) == p
    ap, pa = rm.matmul(a, p), rm.matmul(p, a)
    assert ap == rm.transpose(ap) and pa == rm.transpose(pa)


def test_pinv_of_invertible_is_inverse() -> None:
    assert rm.pinv([[4, 7], [2, 6]]) == rm.inverse([[4, 7], [2, 6]])


# --------------------------------------------------------------------------
# known-answer builders


def test_householder_is_a_symmetric_orthogonal_reflection() -> None:
    v: list[rm.Number] = [1, F(2, 3), -3]
    h = rm.householder(v)
    assert h == rm.transpose(h)
    assert _is_identity(rm.matmul(h, h))  # H² = I (orthogonal and symmetric)
    assert rm.matvec(h, rm.vec_fractions(v)) == [-x for x in rm.vec_fractions(v)]
    assert rm.det(h) == -1
    with pytest.raises(ValueError):
        rm.householder([0, 0])


def test_random_orthogonal_is_exactly_orthogonal_and_dense() -> None:
    q = rm.random_orthogonal(6, seed=3)
    assert _is_identity(rm.matmul(rm.transpose(q), q))
    assert sum(x == 0 for row in q for x in row) < 18  # not a permutation-like matrix


def test_with_eigenvalues_has_those_eigenpairs() -> None:
    lams = [F(-4), F(-1, 2), F(1), F(6)]
    a, q = rm.with_eigenvalues(lams, seed=11)
    assert a == rm.transpose(a)
    for i, lam in enumerate(lams):
        qi = [row[i] for row in q]
        assert rm.matvec(a, qi) == [lam * x for x in qi]  # A q_i = λ_i q_i exactly
    # Independent route: Jacobi on the float matrix finds the same spectrum.
    values, _ = rm.jacobi_eigh(a)
    assert values == pytest.approx([float(v) for v in lams], abs=1e-13)
    assert all(rm.fits_float32(x) for row in a for x in row)


def test_with_singular_values_has_those_singular_values() -> None:
    s = [F(6), F(5, 2), F(1, 2)]
    a, u, v = rm.with_singular_values(s, 5, 4, seed=7)
    assert _is_identity(rm.matmul(rm.transpose(u), u))
    assert _is_identity(rm.matmul(rm.transpose(v), v))
    assert rm.rank(a) == 3  # 3 non-zero singular values in a 5×4 matrix
    # AᵀA has eigenvalues s² (and 0): check A v_i = s_i u_i exactly.
    for i, si in enumerate(s):
        vi = [row[i] for row in v]
        ui = [row[i] for row in u]
        assert rm.matvec(a, vi) == [si * x for x in ui]
    assert all(rm.fits_float32(x) for row in a for x in row)


def test_fits_float32() -> None:
    assert rm.fits_float32(F(3, 64))
    assert rm.fits_float32(2**24)
    assert not rm.fits_float32(2**24 + 1)
    assert not rm.fits_float32(F(1, 3))
    assert not rm.fits_float32(0.1)  # a float64 value that float32 rounds
    assert not rm.fits_float32(1e300)


# --------------------------------------------------------------------------
# float algorithms


def test_cholesky_recovers_the_factor() -> None:
    lower = [[2, 0, 0], [1, 3, 0], [-1, 2, 4]]
    a = rm.matmul(lower, rm.transpose(lower))
    assert rm.cholesky(a) == [[2.0, 0.0, 0.0], [1.0, 3.0, 0.0], [-1.0, 2.0, 4.0]]
    got = rm.cholesky([[2, 1], [1, 2]])  # L = [[√2, 0], [1/√2, √(3/2)]]
    assert got[0][0] == pytest.approx(math.sqrt(2), rel=1e-15)
    assert got[1][0] == pytest.approx(1 / math.sqrt(2), rel=1e-15)
    assert got[1][1] == pytest.approx(math.sqrt(1.5), rel=1e-15)


def test_cholesky_rejects_non_spd() -> None:
    with pytest.raises(ValueError, match="positive definite"):
        rm.cholesky([[1, 2], [2, 1]])
    with pytest.raises(ValueError, match="symmetric"):
        rm.cholesky([[1, 2], [0, 1]])


def test_jacobi_2x2_by_hand() -> None:
    values, vectors = rm.jacobi_eigh([[2, 1], [1, 2]])
    assert values == pytest.approx([1.0, 3.0], abs=1e-15)
    r = 1 / math.sqrt(2)
    assert [abs(x) for x in (vectors[0][0], vectors[1][0])] == pytest.approx([r, r], abs=1e-15)
    assert vectors[0][0] * vectors[1][0] < 0  # eigenvector of 1 is (1, -1)/√2
    assert vectors[0][1] * vectors[1][1] > 0  # eigenvector of 3 is (1, 1)/√2


def test_jacobi_vectors_are_orthonormal_eigenvectors() -> None:
    a = [[4, 1, -2, 2], [1, 2, 0, 1], [-2, 0, 3, -2], [2, 1, -2, -1]]
    values, v = rm.jacobi_eigh(a)
    av = [[math.fsum(a[i][k] * v[k][j] for k in range(4)) for j in range(4)] for i in range(4)]
    for i in range(4):
        for j in range(4):
            assert av[i][j] == pytest.approx(values[j] * v[i][j], abs=1e-13)
            dot = math.fsum(v[k][i] * v[k][j] for k in range(4))
            assert dot == pytest.approx(float(i == j), abs=1e-14)
    assert sum(values) == pytest.approx(4 + 2 + 3 - 1, abs=1e-13)  # trace


def test_condition_numbers() -> None:
    assert rm.condition_number_spd([[4, 0], [0, 1]]) == pytest.approx(4.0)
    a, _, _ = rm.with_singular_values([F(4), F(2), F(1), F(1, 2)], 5, 4, seed=1)
    assert rm.condition_number(a) == pytest.approx(8.0, rel=1e-12)


def test_align_signs() -> None:
    signs, cos = rm.align_signs([[0.0, -1.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]])
    assert signs == [-1.0, 1.0]
    assert cos == [1.0, 1.0]


# --------------------------------------------------------------------------
# generators


def test_generators_are_deterministic_and_seed_dependent() -> None:
    assert rm.random_ints(5, 3, 4) == rm.random_ints(5, 3, 4)
    assert rm.random_ints(5, 3, 4) != rm.random_ints(6, 3, 4)
    ints = rm.random_ints(5, 20, 20, -8, 8)
    assert all(-8 <= v <= 8 for row in ints for v in row)
    assert rm.random_dyadic(1, 4, 3) == rm.random_dyadic(1, 4, 3)
    dy = rm.random_dyadic(1, 10, 10, denominator=16)
    assert all((v * 16).is_integer() and rm.fits_float32(v) for row in dy for v in row)
    pts, labels = rm.blobs(2, [[0.0, 0.0], [10.0, 10.0]], 5)
    assert len(pts) == 10 and labels == [0, 1] * 5


# --------------------------------------------------------------------------
# estimator references


def test_pairwise_euclidean_3_4_5() -> None:
    assert rm.pairwise_euclidean([[0, 0], [3, 4]], [[0, 0], [6, 8]]) == [[0.0, 10.0], [5.0, 5.0]]


def test_lloyd_kmeans_by_hand() -> None:
    x = [[0, 0], [0, 2], [10, 0], [10, 2]]
    res = rm.lloyd_kmeans(x, [[0, 0], [0, 2]])
    # 1st: labels [0,1,0,1] → centres (5,0), (5,2); 2nd: same labels → stop.
    assert res.labels == [0, 1, 0, 1]
    assert res.centers == [[5.0, 0.0], [5.0, 2.0]]
    assert res.inertia == 100.0
    assert res.n_iter == 2
    with pytest.raises(ValueError, match="empty"):
        rm.lloyd_kmeans(x, [[0, 1], [100, 100]])


def test_ridge_by_hand() -> None:
    # x = [0, 1, 2], y = x: centred xc = yc = [-1, 0, 1], w = 2 / (2 + α).
    coef, intercept = rm.ridge([[0], [1], [2]], [0, 1, 2], 2)
    assert coef == [F(1, 2)] and intercept == F(1, 2)
    coef, intercept = rm.ridge([[0], [1], [2]], [1, 3, 5], 0)  # OLS: y = 2x + 1
    assert coef == [2] and intercept == 1


def test_logistic_newton_one_dimensional() -> None:
    # X = [[-1], [1]], y = [0, 1], C = 1: by symmetry b = 0, and the gradient
    # -2σ(-w) + w = 0 gives w = 2σ(-w), whose root is w ≈ 0.67483.
    coef, intercept, _ = rm.logistic_newton([[-1], [1]], [0, 1], 1.0)
    w = coef[0]
    assert w == pytest.approx(2 / (1 + math.exp(w)), abs=1e-14)
    assert w == pytest.approx(0.67483, abs=1e-5)
    assert intercept == pytest.approx(0.0, abs=1e-14)


def test_logistic_newton_is_a_stationary_point() -> None:
    x, y = rm.blobs(4, [[-1.0, 0.0], [1.0, 0.5]], 15, spread=1.0)
    coef, intercept, it = rm.logistic_newton(x, y, 0.5)
    grad = rm.logistic_gradient(x, y, coef, intercept, 0.5)
    assert max(abs(g) for g in grad) < 1e-10
    assert it < 20  # Newton converges quadratically
    f0 = rm.logistic_objective(x, y, coef, intercept, 0.5)
    assert rm.logistic_objective(x, y, [c + 1e-3 for c in coef], intercept, 0.5) > f0


def test_pca_of_points_on_a_line() -> None:
    res = rm.pca([[0, 0], [1, 1], [2, 2], [3, 3]], 1)
    r = 1 / math.sqrt(2)
    assert [abs(c) for c in res.components[0]] == pytest.approx([r, r], abs=1e-15)
    # Var along (1,1)/√2: projections 0, √2, 2√2, 3√2 → variance (ddof=1) 10/3.
    assert res.explained_variance == pytest.approx([10 / 3], rel=1e-14)
    assert res.explained_variance_ratio == pytest.approx([1.0], rel=1e-14)
    assert res.mean == [1.5, 1.5]
