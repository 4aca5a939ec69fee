"""A :class:`~archmatrix.matrix.Matrix` from lane results: the one place one is built.

``archmatrix matrix`` builds it from the lanes it ran; ``report``, ``badges``,
``readme`` and ``audit --compare`` load it from result files with
:func:`load_matrix`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .config import MatrixConfig
from .matrix import Matrix, build, load_dir, order_lanes, read_matrix
from .outputs import OUTPUT_NAMES
from .suite.registry import DEFAULT_TOLERANCES
from .suite.result import LaneResult


def float32_rtol(config: MatrixConfig) -> float:
    """The float32 tolerance cross-lane drift is judged with."""
    tol32 = config.checks.tolerances.get("float32") or DEFAULT_TOLERANCES["float32"]
    return tol32.rtol


def build_matrix(lanes: Sequence[LaneResult], config: MatrixConfig | None = None,
                 problems: Sequence[str] = ()) -> Matrix:
    """The matrix of ``lanes`` as given; with ``config``, against its lock and drift tolerances."""
    if config is None:
        return build(lanes, problems=problems)
    return build(lanes, lock=config.lock.packages, drift_rtol=config.checks.drift_rtol,
                 float32_rtol=float32_rtol(config), problems=problems)


def load_matrix(path: Path, config: MatrixConfig | None = None, *,
                order: Sequence[str] | Callable[[], Sequence[str]] = (), merged: bool = True) -> Matrix:
    """The matrix of a result path.

    ``path`` is a ``matrix.json``, or a directory: its ``matrix.json`` when
    ``merged`` and there is one, else built from every lane result file below
    it, in ``config``'s lane order (else ``order``, or what it returns when
    it is a function: it is called only when lanes are ordered; then
    alphabetically).
    Unreadable lane files become the matrix's ``problems``; a matrix with no
    lanes is returned as it is, for the caller to judge. An unreadable
    ``matrix.json`` raises ``ResultFileError``.
    """
    merged_file = path if path.is_file() else path / OUTPUT_NAMES["json"]
    if merged_file.is_file() and (merged or path.is_file()):
        return read_matrix(merged_file)
    lanes, problems = load_dir(path)
    if config is not None:
        order = [ln.id for ln in config.lanes]
    elif callable(order):
        order = order()
    return build_matrix(order_lanes(lanes, order), config, problems)
