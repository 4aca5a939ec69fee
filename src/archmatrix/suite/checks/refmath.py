"""Reference math in pure Python, independent of the BLAS/LAPACK under test.

The numerical checks compare numpy/scipy/scikit-learn against the numbers
computed here. Nothing in this module imports a third-party package: a
reference that called the same OpenBLAS it is meant to judge would agree with
a wrong kernel. Exactness comes from :class:`fractions.Fraction` wherever an
answer is rational (solve, det, inverse, least squares, ridge, covariance);
only genuinely irrational answers (square roots, eigenvectors of arbitrary
symmetric matrices, the logistic regression optimum) are computed in floats,
with algorithms whose error is a few ulps, far below any check's tolerance.

The matrix builders produce problems whose answer is known by construction:
``A = Q diag(λ) Qᵀ`` has eigenvalues ``λ`` and ``A = U diag(s) Vᵀ`` singular
values ``s``, with ``Q``, ``U``, ``V`` products of rational Householder
reflectors. Their reflectors are chosen so every entry is a dyadic rational
that float32 holds exactly: numpy then receives exactly the matrix whose answer
we know, in both float32 and float64, and any error is the library's.

Stdlib only: this module runs inside lanes.
"""

from __future__ import annotations

import math
import operator
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar, cast

Number = int | float | Fraction
Matrix = list[list[float]]
QMatrix = list[list[Fraction]]  # exact rational matrix
QVector = list[Fraction]

# Exact matmul works for ints (fast), Fractions (exact) and floats.
S = TypeVar("S", int, Fraction, float)
T = TypeVar("T")


# --------------------------------------------------------------------------
# conversions and basic matrix algebra


def to_fractions(m: Sequence[Sequence[Number]]) -> QMatrix:
    """Exact rational copy; ``Fraction(float)`` is exact, so no rounding happens."""
    return [[Fraction(x) for x in row] for row in m]


def vec_fractions(v: Sequence[Number]) -> QVector:
    return [Fraction(x) for x in v]


def to_floats(m: Sequence[Sequence[Number]]) -> Matrix:
    """Nearest floats (``float(Fraction)`` rounds correctly)."""
    return [[float(x) for x in row] for row in m]


def vec_floats(v: Sequence[Number]) -> list[float]:
    return [float(x) for x in v]


def identity(n: int) -> QMatrix:
    return [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]


def diag(values: Sequence[Number]) -> QMatrix:
    n = len(values)
    return [[Fraction(values[i]) if i == j else Fraction(0) for j in range(n)] for i in range(n)]


def transpose(m: Sequence[Sequence[T]]) -> list[list[T]]:
    return [list(col) for col in zip(*m, strict=True)]


def matmul(a: Sequence[Sequence[S]], b: Sequence[Sequence[S]]) -> list[list[S]]:
    """``a @ b``, exact for ints and Fractions.

    ``sum(map(mul, row, col))`` over pre-transposed columns keeps the inner
    loop in C: a 96×96×96 integer product takes well under a second.
    """
    if a and len(a[0]) != len(b):
        raise ValueError(f"shapes do not align: {len(a)}x{len(a[0])} @ {len(b)}x?")
    cols = list(zip(*b, strict=True))
    mul = operator.mul
    return [[cast(S, sum(map(mul, row, col))) for col in cols] for row in a]


def matvec(a: Sequence[Sequence[S]], x: Sequence[S]) -> list[S]:
    mul = operator.mul
    return [cast(S, sum(map(mul, row, x))) for row in a]


def dot(x: Sequence[S], y: Sequence[S]) -> S:
    return cast(S, sum(map(operator.mul, x, y)))


def max_abs(values: Sequence[Number] | Sequence[Sequence[Number]]) -> float:
    """Largest absolute entry of a vector or matrix (0.0 when empty)."""
    best = 0.0
    for item in values:
        if isinstance(item, (int, float, Fraction)):
            best = max(best, abs(float(item)))
        else:
            best = max(best, max_abs(item))
    return best


def align_signs(
    actual: Sequence[Sequence[float]], reference: Sequence[Sequence[float]]
) -> tuple[list[float], list[float]]:
    """Per pair of vectors: the sign (±1.0) that aligns ``actual`` with ``reference``, and |cos|.

    Eigen- and singular vectors are defined up to sign; a comparison must not
    fail because LAPACK picked the other one.
    """
    signs, cosines = [], []
    for got, want in zip(actual, reference, strict=True):
        d = math.fsum(g * w for g, w in zip(got, want, strict=True))
        norm = math.sqrt(math.fsum(g * g for g in got) * math.fsum(w * w for w in want))
        signs.append(-1.0 if d < 0 else 1.0)
        cosines.append(abs(d) / norm if norm else 0.0)
    return signs, cosines


def fits_float32(x: Number) -> bool:
    """True when ``x`` is exactly a float32 value (so float32 and float64 inputs agree)."""
    f = float(x)
    if Fraction(f) != Fraction(x):
        return False
    try:
        back: float = struct.unpack("f", struct.pack("f", f))[0]
        return back == f
    except OverflowError:
        return False


# --------------------------------------------------------------------------
# exact linear algebra (Gaussian elimination over the rationals)


def solve_matrix(a: Sequence[Sequence[Number]], b: Sequence[Sequence[Number]]) -> QMatrix:
    """Exact ``X`` with ``A X = B`` (Gauss–Jordan over Fractions); ValueError if singular.

    Pivoting only needs a non-zero pivot: there is no rounding to control.
    """
    n = len(a)
    if any(len(row) != n for row in a):
        raise ValueError("solve needs a square matrix")
    if len(b) != n:
        raise ValueError("right-hand side has the wrong number of rows")
    aug = [to_fractions([a[i]])[0] + to_fractions([b[i]])[0] for i in range(n)]
    width = len(aug[0]) if aug else 0
    for col in range(n):
        pivot = next((r for r in range(col, n) if aug[r][col] != 0), None)
        if pivot is None:
            raise ValueError("matrix is singular")
        aug[col], aug[pivot] = aug[pivot], aug[col]
        inv_p = 1 / aug[col][col]
        prow = [x * inv_p for x in aug[col]]
        aug[col] = prow
        for r in range(n):
            if r != col and aug[r][col] != 0:
                f = aug[r][col]
                row = aug[r]
                aug[r] = [row[k] - f * prow[k] for k in range(width)]
    return [row[n:] for row in aug]


def solve(a: Sequence[Sequence[Number]], b: Sequence[Number]) -> QVector:
    """Exact ``x`` with ``A x = b``."""
    return [row[0] for row in solve_matrix(a, [[x] for x in b])]


def inverse(a: Sequence[Sequence[Number]]) -> QMatrix:
    return solve_matrix(a, identity(len(a)))


def det(a: Sequence[Sequence[Number]]) -> Fraction:
    """Exact determinant by elimination over Fractions (row swaps flip the sign)."""
    m = to_fractions(a)
    n = len(m)
    if any(len(row) != n for row in m):
        raise ValueError("det needs a square matrix")
    result = Fraction(1)
    for col in range(n):
        pivot = next((r for r in range(col, n) if m[r][col] != 0), None)
        if pivot is None:
            return Fraction(0)
        if pivot != col:
            m[col], m[pivot] = m[pivot], m[col]
            result = -result
        p = m[col][col]
        result *= p
        for r in range(col + 1, n):
            if m[r][col] != 0:
                f = m[r][col] / p
                m[r] = [m[r][k] - f * m[col][k] for k in range(n)]
    return result


def rref(a: Sequence[Sequence[Number]]) -> tuple[QMatrix, list[int]]:
    """Exact reduced row echelon form and the pivot columns."""
    m = to_fractions(a)
    rows = len(m)
    cols = len(m[0]) if m else 0
    pivots: list[int] = []
    r = 0
    for c in range(cols):
        pivot = next((i for i in range(r, rows) if m[i][c] != 0), None)
        if pivot is None:
            continue
        m[r], m[pivot] = m[pivot], m[r]
        inv_p = 1 / m[r][c]
        m[r] = [x * inv_p for x in m[r]]
        for i in range(rows):
            if i != r and m[i][c] != 0:
                f = m[i][c]
                m[i] = [m[i][k] - f * m[r][k] for k in range(cols)]
        pivots.append(c)
        r += 1
        if r == rows:
            break
    return m, pivots


def rank(a: Sequence[Sequence[Number]]) -> int:
    return len(rref(a)[1])


def pinv(a: Sequence[Sequence[Number]]) -> QMatrix:
    """Exact Moore–Penrose pseudo-inverse via a full-rank factorisation ``A = C R``.

    ``C`` = the pivot columns of ``A`` (full column rank), ``R`` = the non-zero
    rows of rref(A) (full row rank); then ``A⁺ = Rᵀ (R Rᵀ)⁻¹ (CᵀC)⁻¹ Cᵀ``.
    Everything is rational, so the minimum-norm answer is exact.
    """
    m = to_fractions(a)
    if not m or not m[0]:
        return []
    reduced, pivots = rref(m)
    if not pivots:
        return [[Fraction(0)] * len(m) for _ in m[0]]
    c = [[row[p] for p in pivots] for row in m]
    r = reduced[: len(pivots)]
    ct = transpose(c)
    rt = transpose(r)
    left = solve_matrix(matmul(ct, c), ct)  # (CᵀC)⁻¹ Cᵀ
    right = transpose(solve_matrix(matmul(r, rt), r))  # Rᵀ (R Rᵀ)⁻¹ (R Rᵀ symmetric)
    return matmul(right, left)


def lstsq(a: Sequence[Sequence[Number]], b: Sequence[Number]) -> QVector:
    """Exact least-squares solution of ``A x ≈ b``; the minimum-norm one if rank-deficient.

    Full column rank: the normal equations ``AᵀA x = Aᵀb`` (exact in Fractions,
    so their squaring of the condition number costs nothing). Otherwise the
    exact pseudo-inverse.
    """
    m = to_fractions(a)
    bq = vec_fractions(b)
    cols = len(m[0]) if m else 0
    if rank(m) == cols:
        at = transpose(m)
        return solve(matmul(at, m), matvec(at, bq))
    return matvec(pinv(m), bq)


# --------------------------------------------------------------------------
# known-answer matrix builders


def householder(v: Sequence[Number]) -> QMatrix:
    """The rational reflector ``I - 2 v vᵀ / (vᵀv)``: symmetric, orthogonal, ``H v = -v``."""
    vq = vec_fractions(v)
    vv = dot(vq, vq)
    if vv == 0:
        raise ValueError("householder vector must be non-zero")
    n = len(vq)
    return [[Fraction(int(i == j)) - 2 * vq[i] * vq[j] / vv for j in range(n)] for i in range(n)]


def _dyadic_reflector_vector(rng: random.Random, n: int) -> list[int]:
    """Four ±1 entries, the rest 0: ``vᵀv = 4``, so ``H = I - v vᵀ/2`` has entries in {0, ±½, ±1}.

    Halves keep products of several reflectors exactly representable in
    float32 (a general rational reflector would not be).
    """
    if n < 4:
        raise ValueError("dyadic reflectors need n >= 4")
    v = [0] * n
    for i in rng.sample(range(n), 4):
        v[i] = rng.choice((-1, 1))
    return v


def random_orthogonal(n: int, seed: int, reflections: int | None = None) -> QMatrix:
    """A dense exact orthogonal matrix: a product of dyadic Householder reflectors (n >= 4)."""
    rng = random.Random(seed)
    q = identity(n)
    for _ in range(n if reflections is None else reflections):
        q = matmul(q, householder(_dyadic_reflector_vector(rng, n)))
    return q


def _all_fit_float32(*mats: QMatrix) -> bool:
    return all(fits_float32(x) for m in mats for row in m for x in row)


def with_eigenvalues(eigenvalues: Sequence[Number], seed: int) -> tuple[QMatrix, QMatrix]:
    """Symmetric ``A = Q diag(λ) Qᵀ`` and ``Q`` (column ``i`` is the eigenvector of ``λ[i]``).

    Retries the next seed in the same stream until every entry of ``A`` and
    ``Q`` is exactly a float32, so both dtypes see the same matrix.
    """
    n = len(eigenvalues)
    rng = random.Random(seed)
    for _ in range(100):
        q = random_orthogonal(n, rng.randrange(2**32))
        a = matmul(matmul(q, diag(eigenvalues)), transpose(q))
        if _all_fit_float32(a, q):
            return a, q
    raise ValueError("could not build a float32-exact matrix; use dyadic eigenvalues")


def with_singular_values(
    singular_values: Sequence[Number], rows: int, cols: int, seed: int
) -> tuple[QMatrix, QMatrix, QMatrix]:
    """``A = U[:, :k] diag(s) V[:, :k]ᵀ`` (``rows×cols``, rank = number of non-zero ``s``).

    Returns ``(A, U, V)`` with ``U`` (rows×rows) and ``V`` (cols×cols) exactly
    orthogonal; the first ``k = len(s)`` columns are the singular vectors.
    """
    k = len(singular_values)
    if k > min(rows, cols):
        raise ValueError("more singular values than min(rows, cols)")
    rng = random.Random(seed)
    for _ in range(100):
        u = random_orthogonal(rows, rng.randrange(2**32))
        v = random_orthogonal(cols, rng.randrange(2**32))
        s = [[Fraction(0)] * cols for _ in range(rows)]
        for i, value in enumerate(singular_values):
            s[i][i] = Fraction(value)
        a = matmul(matmul(u, s), transpose(v))
        if _all_fit_float32(a, u, v):
            return a, u, v
    raise ValueError("could not build a float32-exact matrix; use dyadic singular values")


# --------------------------------------------------------------------------
# float algorithms where the answer is irrational


def cholesky(a: Sequence[Sequence[Number]]) -> Matrix:
    """Lower-triangular ``L`` with ``L Lᵀ = A``; ValueError unless ``A`` is SPD.

    ``A = L₁ D L₁ᵀ`` is computed exactly over Fractions; only the final
    ``L = L₁ √D`` is rounded (one correctly rounded sqrt and a product per
    entry), so ``L`` is within a few ulps.
    """
    m = to_fractions(a)
    n = len(m)
    unit: QMatrix = [[Fraction(0)] * n for _ in range(n)]
    d: QVector = [Fraction(0)] * n
    for j in range(n):
        if any(m[i][j] != m[j][i] for i in range(n)):
            raise ValueError("matrix is not symmetric")
        d[j] = m[j][j] - sum((unit[j][k] ** 2 * d[k] for k in range(j)), Fraction(0))
        if d[j] <= 0:
            raise ValueError("matrix is not positive definite")
        unit[j][j] = Fraction(1)
        for i in range(j + 1, n):
            s = m[i][j] - sum((unit[i][k] * unit[j][k] * d[k] for k in range(j)), Fraction(0))
            unit[i][j] = s / d[j]
    roots = [math.sqrt(dj) for dj in d]
    return [[float(unit[i][j]) * roots[j] if j <= i else 0.0 for j in range(n)] for i in range(n)]


def jacobi_eigh(
    a: Sequence[Sequence[Number]], *, tol: float = 1e-18, max_sweeps: int = 60
) -> tuple[list[float], Matrix]:
    """Eigenvalues (ascending) and eigenvectors (columns) of a small symmetric matrix.

    Cyclic Jacobi (Golub & Van Loan, Alg. 8.5.3): rotations only, no library
    involved, accurate to a few ulps of ‖A‖ and converging quadratically.
    """
    n = len(a)
    m = [[float(x) for x in row] for row in a]
    for i in range(n):
        for j in range(i):
            if m[i][j] != m[j][i]:
                raise ValueError("matrix is not symmetric")
    v = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    frob = math.sqrt(math.fsum(x * x for row in m for x in row))
    for _ in range(max_sweeps):
        off = math.sqrt(math.fsum(m[p][q] ** 2 for p in range(n) for q in range(p + 1, n)))
        if off <= tol * frob:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = m[p][q]
                if apq == 0.0:
                    continue
                theta = (m[q][q] - m[p][p]) / (2.0 * apq)
                t = math.copysign(1.0, theta) / (abs(theta) + math.hypot(theta, 1.0))
                c = 1.0 / math.hypot(t, 1.0)
                s = t * c
                for k in range(n):  # M ← M J
                    mkp, mkq = m[k][p], m[k][q]
                    m[k][p] = c * mkp - s * mkq
                    m[k][q] = s * mkp + c * mkq
                for k in range(n):  # M ← Jᵀ M
                    mpk, mqk = m[p][k], m[q][k]
                    m[p][k] = c * mpk - s * mqk
                    m[q][k] = s * mpk + c * mqk
                # The rotation was chosen to annihilate (p, q): store the exact
                # zero rather than its rounding residue.
                m[p][q] = m[q][p] = 0.0
                for k in range(n):  # V ← V J
                    vkp, vkq = v[k][p], v[k][q]
                    v[k][p] = c * vkp - s * vkq
                    v[k][q] = s * vkp + c * vkq
    order = sorted(range(n), key=lambda i: m[i][i])
    values = [m[i][i] for i in order]
    vectors = [[v[r][i] for i in order] for r in range(n)]
    return values, vectors


def condition_number_spd(a: Sequence[Sequence[Number]]) -> float:
    """2-norm condition number of a symmetric positive definite matrix (via Jacobi)."""
    values, _ = jacobi_eigh(a)
    if values[0] <= 0:
        raise ValueError("matrix is not positive definite")
    return values[-1] / values[0]


def condition_number(a: Sequence[Sequence[Number]]) -> float:
    """2-norm condition number of a full-column-rank matrix: sqrt(κ(AᵀA))."""
    q = to_fractions(a)
    return math.sqrt(condition_number_spd(matmul(transpose(q), q)))


# --------------------------------------------------------------------------
# deterministic data generators


def random_ints(seed: int, rows: int, cols: int, lo: int = -8, hi: int = 8) -> list[list[int]]:
    """Integers in ``[lo, hi]``: products of such matrices are exact in float32 for n ≲ 250."""
    rng = random.Random(seed)
    values = range(lo, hi + 1)
    # choices() draws a whole row per call: 10x faster than randint for 512×512.
    return [rng.choices(values, k=cols) for _ in range(rows)]


def random_dyadic(seed: int, rows: int, cols: int, *, scale: float = 1.0, denominator: int = 16) -> Matrix:
    """Roughly N(0, scale²) values rounded to multiples of ``1/denominator``.

    Such values are exact in float32 and float64 alike, so a float32 and a
    float64 run of a check start from the same numbers.
    """
    rng = random.Random(seed)
    return [
        [round(rng.gauss(0.0, scale) * denominator) / denominator for _ in range(cols)] for _ in range(rows)
    ]


def random_gauss(seed: int, rows: int, cols: int, scale: float = 1.0) -> Matrix:
    """Full-precision N(0, scale²) floats (NOT float32-exact: read back what the library got)."""
    rng = random.Random(seed)
    return [[rng.gauss(0.0, scale) for _ in range(cols)] for _ in range(rows)]


def blobs(
    seed: int, centers: Sequence[Sequence[float]], per_center: int, spread: float = 0.5
) -> tuple[Matrix, list[int]]:
    """Gaussian blobs around ``centers`` (dyadic coordinates), interleaved, with their labels."""
    rng = random.Random(seed)
    points: Matrix = []
    labels: list[int] = []
    for _ in range(per_center):
        for label, c in enumerate(centers):
            points.append([round((ci + rng.gauss(0.0, spread)) * 64) / 64 for ci in c])
            labels.append(label)
    return points, labels


# --------------------------------------------------------------------------
# reference versions of the estimators the sklearn checks exercise


def _sqdist(x: Sequence[Number], y: Sequence[Number]) -> Fraction:
    return sum(((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(x, y, strict=True)), Fraction(0))


def pairwise_euclidean(x: Sequence[Sequence[Number]], y: Sequence[Sequence[Number]]) -> Matrix:
    """Euclidean distances: exact squared distances, then one correctly rounded sqrt."""
    return [[math.sqrt(_sqdist(a, b)) for b in y] for a in x]


def _nearest(point: QVector, centers: QMatrix) -> int:
    """Index of the nearest centre; ties go to the lowest index (exact distances)."""
    dists = [_sqdist(point, c) for c in centers]
    return dists.index(min(dists))


@dataclass(frozen=True)
class KMeansResult:
    centers: Matrix
    labels: list[int]
    inertia: float
    n_iter: int


def lloyd_kmeans(
    x: Sequence[Sequence[Number]], init: Sequence[Sequence[Number]], max_iter: int = 300
) -> KMeansResult:
    """Lloyd's algorithm in exact arithmetic, iterating like scikit-learn's lloyd with tol=0.

    Each iteration assigns every point to its nearest centre (ties: lowest
    index), then moves each centre to the mean of its points; it stops when an
    iteration's labels equal the previous iteration's. ``n_iter`` counts
    iterations the same way (``sklearn.cluster.KMeans.n_iter_``).
    """
    points = to_fractions(x)
    centers = to_fractions(init)
    labels_old: list[int] | None = None
    labels: list[int] = []
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        labels = [_nearest(p, centers) for p in points]
        new_centers: QMatrix = []
        for j in range(len(centers)):
            members = [p for p, lab in zip(points, labels, strict=True) if lab == j]
            if not members:
                raise ValueError(f"cluster {j} became empty; choose other initial centres")
            new_centers.append([sum(col, Fraction(0)) / len(members) for col in zip(*members, strict=True)])
        centers = new_centers
        if labels == labels_old:
            break
        labels_old = labels
    inertia = sum((_sqdist(p, centers[lab]) for p, lab in zip(points, labels, strict=True)), Fraction(0))
    return KMeansResult(to_floats(centers), labels, float(inertia), n_iter)


def center(
    x: Sequence[Sequence[Number]], y: Sequence[Number] | None = None
) -> tuple[QMatrix, QVector, QVector, Fraction]:
    """Exact centring: ``(X - mean, column means, y - mean(y), mean(y))`` (y parts empty/0 without y)."""
    xs = to_fractions(x)
    n = len(xs)
    means = [sum(col, Fraction(0)) / n for col in zip(*xs, strict=True)]
    xc = [[v - mu for v, mu in zip(row, means, strict=True)] for row in xs]
    if y is None:
        return xc, means, [], Fraction(0)
    ys = vec_fractions(y)
    ymean = sum(ys, Fraction(0)) / n
    return xc, means, [v - ymean for v in ys], ymean


def ridge(x: Sequence[Sequence[Number]], y: Sequence[Number], alpha: Number) -> tuple[QVector, Fraction]:
    """Exact ridge with intercept: centre X and y, solve ``(XcᵀXc + αI) w = Xcᵀ yc``.

    ``alpha = 0`` gives ordinary least squares (full column rank required;
    use :func:`linear_regression` for the rank-deficient case).
    Returns ``(coef, intercept)`` as Fractions.
    """
    xc, means, yc, ymean = center(x, y)
    xt = transpose(xc)
    gram = matmul(xt, xc)
    for i in range(len(gram)):
        gram[i][i] += Fraction(alpha)
    coef = solve(gram, matvec(xt, yc))
    return coef, ymean - dot(means, coef)


def linear_regression(x: Sequence[Sequence[Number]], y: Sequence[Number]) -> tuple[QVector, Fraction]:
    """Exact least squares with intercept, minimum-norm coefficients when rank-deficient."""
    xc, means, yc, ymean = center(x, y)
    coef = lstsq(xc, yc)
    return coef, ymean - dot(means, coef)


def _log1pexp(z: float) -> float:
    """log(1 + e^z) without overflow."""
    return z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _solve_floats(a: Matrix, b: list[float]) -> list[float]:
    """Small dense float solve with partial pivoting (used inside Newton iterations)."""
    n = len(a)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        p = max(range(col, n), key=lambda r: abs(m[r][col]))
        if m[p][col] == 0.0:
            raise ValueError("singular Newton system")
        m[col], m[p] = m[p], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                m[r] = [m[r][k] - f * m[col][k] for k in range(n + 1)]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (m[i][n] - math.fsum(m[i][k] * x[k] for k in range(i + 1, n))) / m[i][i]
    return x


def logistic_objective(
    x: Sequence[Sequence[float]],
    y: Sequence[int],
    coef: Sequence[float],
    intercept: float,
    c: float,
) -> float:
    """``C Σ log(1 + exp(-s_i z_i)) + ½‖w‖²`` with ``s_i = ±1`` (scikit-learn's L2 objective)."""
    total = math.fsum(
        _log1pexp(-(1 if yi else -1) * (math.fsum(map(operator.mul, xi, coef)) + intercept))
        for xi, yi in zip(x, y, strict=True)
    )
    return c * total + 0.5 * math.fsum(w * w for w in coef)


def logistic_gradient(
    x: Sequence[Sequence[float]],
    y: Sequence[int],
    coef: Sequence[float],
    intercept: float,
    c: float,
) -> list[float]:
    """Gradient of :func:`logistic_objective` w.r.t. ``(w, b)`` (b last)."""
    p = len(coef)
    resid = [
        _sigmoid(math.fsum(map(operator.mul, xi, coef)) + intercept) - (1.0 if yi else 0.0)
        for xi, yi in zip(x, y, strict=True)
    ]
    grad = [c * math.fsum(r * xi[j] for r, xi in zip(resid, x, strict=True)) + coef[j] for j in range(p)]
    grad.append(c * math.fsum(resid))
    return grad


def logistic_newton(
    x: Sequence[Sequence[Number]], y: Sequence[int], c: float = 1.0, *, max_iter: int = 100
) -> tuple[list[float], float, int]:
    """L2-regularised binary logistic regression by Newton's method.

    Minimises ``C Σ logloss + ½‖w‖²`` with an unpenalised intercept — the
    objective scikit-learn's lbfgs solver minimises for ``C`` (it divides
    everything by ``C·n``, which moves no minimum). The objective is strictly
    convex in ``(w, b)`` once both classes are present, so plain Newton from 0
    converges quadratically; we stop when the step is at rounding level.
    Returns ``(coef, intercept, iterations)``.
    """
    xs = [[float(v) for v in row] for row in x]
    if set(y) != {0, 1}:
        raise ValueError("labels must be 0 and 1, both present")
    p = len(xs[0])
    theta = [0.0] * (p + 1)
    for it in range(1, max_iter + 1):
        w, b = theta[:p], theta[p]
        grad = logistic_gradient(xs, y, w, b, c)
        hess = [[0.0] * (p + 1) for _ in range(p + 1)]
        rows = [[*xi, 1.0] for xi in xs]
        weights = [
            c * pr * (1.0 - pr) for pr in (_sigmoid(math.fsum(map(operator.mul, xi, w)) + b) for xi in xs)
        ]
        for i in range(p + 1):
            for j in range(i, p + 1):
                hij = math.fsum(wt * r[i] * r[j] for wt, r in zip(weights, rows, strict=True))
                hess[i][j] = hess[j][i] = hij
        for j in range(p):  # the penalty's Hessian; the intercept is not penalised
            hess[j][j] += 1.0
        step = _solve_floats(hess, grad)
        theta = [t - s for t, s in zip(theta, step, strict=True)]
        if max(abs(s) for s in step) <= 1e-15 * max(1.0, max(abs(t) for t in theta)):
            return theta[:p], theta[p], it
    return theta[:p], theta[p], max_iter


@dataclass(frozen=True)
class PCAResult:
    components: Matrix  # rows, by decreasing explained variance
    explained_variance: list[float]
    explained_variance_ratio: list[float]
    mean: list[float]
    eigenvalues: list[float]  # all of them, decreasing (for gap-aware tolerances)


def pca(x: Sequence[Sequence[Number]], n_components: int) -> PCAResult:
    """PCA from the exact covariance (``ddof=1``) and Jacobi eigenvectors.

    Component signs are arbitrary here and in scikit-learn; the check aligns them.
    """
    xc, means, _, _ = center(x)
    n = len(xc)
    cov = [[v / (n - 1) for v in row] for row in matmul(transpose(xc), xc)]
    values, vectors = jacobi_eigh(cov)
    order = sorted(range(len(values)), key=lambda i: -values[i])
    eig = [values[i] for i in order]
    total = float(sum((cov[i][i] for i in range(len(cov))), Fraction(0)))
    comps = [[vectors[r][i] for r in range(len(values))] for i in order[:n_components]]
    return PCAResult(
        components=comps,
        explained_variance=eig[:n_components],
        explained_variance_ratio=[v / total for v in eig[:n_components]],
        mean=vec_floats(means),
        eigenvalues=eig,
    )
