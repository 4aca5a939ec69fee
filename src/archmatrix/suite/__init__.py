"""The validation suite that runs inside a lane.

Everything in this package imports only the standard library (and only
relative siblings), until a check itself imports numpy, scipy or
scikit-learn. That is what lets it run in any lane that has just the locked
packages: it is staged next to them and started as ``python -m archmatrix.suite``.
"""

from .registry import Check, CheckContext, Mismatch, check

__all__ = ["Check", "CheckContext", "Mismatch", "check"]
