"""Lane-side entry point: ``python -m archmatrix.suite --lane ID --out FILE`` (see :mod:`.engine.main`)."""

from __future__ import annotations

import sys

from .engine.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
