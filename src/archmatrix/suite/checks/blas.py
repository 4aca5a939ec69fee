"""BLAS health: a BLAS is loaded, and which one (threadpoolctl's view).

Reference BLAS and several OpenMP runtimes are lane *warnings*, not check
failures (docs/suite.md): the host derives them from the facts. The check here
fails only when no BLAS is found at all, which means numpy's linear algebra
is not backed by the library the lock promised.
"""

from __future__ import annotations

from typing import Any

from ..registry import CheckContext, check


class NoBlasLoaded(ImportError):
    """No BLAS library is loaded in a process that imported numpy.linalg."""


def loaded_libraries() -> list[dict[str, Any]]:
    """threadpoolctl's description of every BLAS/OpenMP library in this process."""
    from threadpoolctl import threadpool_info

    return [dict(info) for info in threadpool_info()]


def assess_blas(libraries: list[dict[str, Any]]) -> dict[str, Any]:
    """Pure summary of threadpoolctl's records (unit-tested with injected records)."""
    blas = [lib for lib in libraries if lib.get("user_api") == "blas"]
    openmp = [lib for lib in libraries if lib.get("user_api") == "openmp"]
    return {
        "blas_count": len(blas),
        "blas": [
            f"{lib.get('internal_api')} {lib.get('version') or '?'}"
            f" ({lib.get('architecture') or 'kernel ?'})"
            for lib in blas
        ],
        "reference_blas": any(
            str(lib.get("internal_api")).lower() in ("reference", "netlib")
            or "refblas" in str(lib.get("filepath", "")).lower()
            for lib in blas
        ),
        "openmp_runtimes": sorted({str(lib.get("prefix") or lib.get("internal_api")) for lib in openmp}),
    }


@check("blas.loaded", description="numpy and scipy have a BLAS loaded (threadpoolctl)")
def blas_loaded(ctx: CheckContext) -> None:
    import numpy  # noqa: F401  (loads numpy's BLAS)
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS)

    summary = assess_blas(loaded_libraries())
    for key, value in summary.items():
        ctx.record(key, value if not isinstance(value, list) else ", ".join(value))
    if summary["blas_count"] == 0:
        raise NoBlasLoaded("no BLAS library is loaded after importing numpy and scipy.linalg")
    if len(summary["openmp_runtimes"]) > 1:
        ctx.warn(f"several OpenMP runtimes loaded: {', '.join(summary['openmp_runtimes'])}")
