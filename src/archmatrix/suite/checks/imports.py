"""Import checks: one per package, so one broken package does not hide the others."""

from __future__ import annotations

import importlib
import importlib.metadata

from ..registry import CheckContext, check


def _import(ctx: CheckContext, module: str, dist: str) -> None:
    mod = importlib.import_module(module)
    ctx.record("version", importlib.metadata.version(dist))
    ctx.record("file", str(getattr(mod, "__file__", "")))


@check("import.numpy", description="import numpy (and its bundled BLAS)")
def import_numpy(ctx: CheckContext) -> None:
    _import(ctx, "numpy", "numpy")
    # numpy's C core is only fully initialised once an ufunc/linalg module
    # loads; linalg pulls in the BLAS, which is where a wrong-arch or missing
    # library shows up.
    importlib.import_module("numpy.linalg")


@check("import.scipy", description="import scipy.linalg")
def import_scipy(ctx: CheckContext) -> None:
    _import(ctx, "scipy.linalg", "scipy")


@check("import.sklearn", description="import sklearn (and its OpenMP runtime)")
def import_sklearn(ctx: CheckContext) -> None:
    _import(ctx, "sklearn", "scikit-learn")
    # sklearn's compiled helpers load lazily; these two load libgomp and
    # the Cython BLAS wrappers.
    importlib.import_module("sklearn.linear_model")
    importlib.import_module("sklearn.ensemble")
