"""archmatrix: one numpy/scipy/scikit-learn environment, every CPU architecture.

This file stays import-free on purpose: the lane-side suite (``archmatrix.suite``)
is staged into lanes that have nothing but the locked packages and the standard
library, and importing ``archmatrix.suite`` imports this module first.
"""

__version__ = "0.1.0"
