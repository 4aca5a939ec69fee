"""Integration tests run real lanes: real venvs, real processes, qemu-user, Docker.

Locally a test skips (with the reason) when this host lacks the
infrastructure; under CI (``CI=true``) a lane that cannot run is a failure,
never a skip: CI must prove the lanes work.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(available: bool, reason: str) -> None:
    """Skip locally, fail under CI, when ``available`` is false."""
    if available:
        return
    if CI:
        pytest.fail(f"CI=true and this cannot run: {reason}")
    pytest.skip(reason)


def require_lane(available: bool, reason: str) -> None:
    require(available, reason)


@pytest.fixture(scope="session")
def workdir() -> Path:
    """The repository's own cache (.archmatrix/): staged wheels, venvs and images are reused."""
    path = ROOT / ".archmatrix"
    path.mkdir(exist_ok=True)
    return path


def python_env() -> dict[str, str]:
    """Environment for running archmatrix in a subprocess: the installed one (``nox -s tests`` installs
    it as a wheel), never the checkout's ``src/`` behind its back."""
    return dict(os.environ)


def archmatrix_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "archmatrix.cli", *args]
