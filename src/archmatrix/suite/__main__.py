"""Lane-side entry point: ``python -m archmatrix.suite --lane ID --out FILE`` (see :mod:`.engine.main`)."""

from __future__ import annotations

import sys

from .engine.main import EXIT_CHECKS_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main

__all__ = ["EXIT_CHECKS_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

if __name__ == "__main__":
    sys.exit(main())
