"""pip, run on the host (or in a lane's own interpreter) to fetch and install wheels for a target.

A locked version without a wheel for the lane's platform is a result (outcome
``no-wheel``), not a crash: :func:`fetch` tells it apart from pip failing for
any other reason (no network, a broken index), and returns pip's explanation.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from ..command import CommandError, run
from .result import StagingError
from .tags import platform_tags, python_tuple

PIP_TIMEOUT = 20 * 60  # one package; scipy for aarch64 is tens of MB

# Text pip prints when it could not talk to the index at all. Without these a
# network outage would look like "no version found", i.e. like a missing wheel.
_NETWORK_FAILURE_MARKERS = (
    "Retrying (Retry(",
    "NewConnectionError",
    "Max retries exceeded",
    "Could not fetch URL",
    "ConnectionError",
    "ReadTimeoutError",
    "SSLError",
    "Temporary failure in name resolution",
)


def classify_pip_failure(output: str) -> Literal["no-wheel", "infra"]:
    """Was a failed ``pip download`` a missing wheel, or could pip not work at all?"""
    if any(marker in output for marker in _NETWORK_FAILURE_MARKERS):
        return "infra"
    if "No matching distribution found" in output:
        return "no-wheel"
    return "infra"


def pip_reason(output: str) -> str:
    """pip's one informative line: which versions it found for this platform."""
    for line in output.splitlines():
        if "Could not find a version that satisfies" in line:
            return line.removeprefix("ERROR: ").strip()
    return output.strip().splitlines()[-1] if output.strip() else ""


def fetch(argv: Sequence[str], what: str, *, env: Mapping[str, str] | None = None) -> str | None:
    """Run a ``pip download`` command line: None when it downloaded, pip's reason when a wheel does not exist.

    Any other failure is a :class:`StagingError` ("pip could not download <what>: …").
    """
    try:
        run(list(argv), env=env, timeout=PIP_TIMEOUT)
    except CommandError as exc:
        output = f"{exc.stdout}\n{exc.stderr}"
        if exc.returncode is not None and classify_pip_failure(output) == "no-wheel":
            return pip_reason(output)
        raise StagingError(f"pip could not download {what}: {exc}\n{exc.tail()}") from exc
    return None


def target_args(python_version: str, arch: str, glibc: tuple[int, int], *extra_platforms: str) -> list[str]:
    """pip's options for a CPython ``python_version`` on manylinux ``arch``/``glibc``: wheels only."""
    major, minor = python_tuple(python_version)
    args = [
        "--only-binary=:all:",
        "--python-version",
        f"{major}.{minor}",
        "--implementation",
        "cp",
        "--abi",
        f"cp{major}{minor}",
    ]
    for tag in [*platform_tags(arch, glibc), *extra_platforms]:
        args += ["--platform", tag]
    return args


def download(requirements: Sequence[str], wheel_cache: Path, args: Sequence[str]) -> str | None:
    """Download wheels into the cache; return pip's reason when one does not exist."""
    # pip writes the file in place; a crash could leave a truncated wheel that
    # later looks cached. Download beside it and move complete files in.
    incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=wheel_cache))
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    argv += [*args, "--dest", str(incoming), *requirements]
    try:
        reason = fetch(argv, " ".join(requirements))
        if reason is None:
            for path in incoming.iterdir():
                os.replace(path, wheel_cache / path.name)
        return reason
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def install(
    wheels: Sequence[Path], target_dir: Path, args: Sequence[str], what: str = "the staged wheels"
) -> None:
    """Unpack exactly ``wheels`` into ``target_dir`` (no index, no dependencies)."""
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index"]
    argv += ["--disable-pip-version-check", "--target", str(target_dir), *args]
    argv += [str(w) for w in wheels]
    try:
        run(argv, timeout=PIP_TIMEOUT)
    except CommandError as exc:
        raise StagingError(f"pip could not install {what}: {exc}\n{exc.tail()}") from exc
