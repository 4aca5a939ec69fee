"""Which GitHub Actions runner can really run each lane.

The reusable workflow (``.github/workflows/archmatrix.yml``) turns a
caller's config into its job matrix with :func:`github_lanes`
(``archmatrix ci-lanes``); archmatrix's own ``matrix.yml`` lists the same
entries for ``ci/matrix.yaml`` literally, and a unit test holds the two
together.

The lane jobs cache what is expensive to make and determined by its inputs:
the downloaded wheels (``.archmatrix/wheels``) and the Docker lanes' Debian
base image (``docker save``/``docker load``). :func:`cache_keys` names both by
content, and ``python -m archmatrix.workflows cache-keys --config C --lane L``
prints them as ``name=value`` lines for ``$GITHUB_OUTPUT``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .model import GITHUB_LINUX_ARM64 as LINUX_ARM64
from .model import GITHUB_LINUX_X86_64 as LINUX_X86_64
from .model import GITHUB_MACOS_ARM64 as MACOS_ARM64
from .model import LaneConfig, LaneTarget, MatrixConfig
from .pyversions import result_stem
from .runners import target_of

__all__ = ["LINUX_ARM64", "LINUX_X86_64", "MACOS_ARM64", "cache_keys", "github_lanes", "parse_lane_list",
           "runs_on"]

# Bump when what the wheel cache holds changes shape: old entries are then not restored.
WHEEL_CACHE_VERSION = 1


def runs_on(lane: LaneConfig, *, linux_arm64: str = LINUX_ARM64) -> str:
    """The GitHub runner label for the lane (its target says; ``linux_arm64`` overrides the arm64 label)."""
    label = (target_of(lane) or LaneTarget()).runs_on
    return linux_arm64 if label == LINUX_ARM64 else label


def github_lanes(
    config: MatrixConfig, only: Sequence[str] = (), *, linux_arm64: str = LINUX_ARM64
) -> list[dict[str, Any]]:
    """``strategy.matrix.include`` entries: lane id, runner kind, runs-on, and what else the job sets up."""
    lanes = config.select(only) if only else list(config.lanes)
    versions = len(config.lock.pythons) > 1
    entries = []
    for lane in lanes:
        entry: dict[str, Any] = {"lane": lane.id, "runner": lane.runner,
                                 "os": runs_on(lane, linux_arm64=linux_arm64)}
        target = target_of(lane) or LaneTarget()
        if versions:
            # one job per lane × version: setup-python gets the lane's Python, the artifact its file name
            entry["python"] = target.python
            entry["result"] = result_stem(lane.id)
        for step in target.ci_setup:  # e.g. x64_python: the job installs an x86_64 Python for the lane
            entry[step] = True
        entries.append(entry)
    return entries


def parse_lane_list(text: str) -> list[str]:
    """The workflow's ``lanes`` input: a JSON list of lane ids; empty, ``[]`` or ``all`` mean every lane."""
    text = text.strip()
    if text in ("", "all"):
        return []
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"lanes must be a JSON list of lane ids, e.g. [\"host\"]; found {text!r}") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"lanes must be a JSON list of lane ids (strings); found {text!r}")
    return value




def cache_keys(config: MatrixConfig, lane_id: str) -> dict[str, str]:
    """``actions/cache`` keys of one lane job, each derived from what determines the cached content.

    ``wheels``: the lock (Python, pinned packages) and the lane's runner and
    options (its platform and CPU decide which wheels are fetched), with
    ``wheels-prefix`` for a partial restore (the cache is content-addressed
    inside: a wheel no longer pinned is simply not used). ``base-image``: the
    image tag, itself a hash of its recipe (empty: nothing to cache), with
    its ``base-image-platform``, ``base-image-key`` the same made safe for a
    cache key and ``base-image-file`` a file name for ``docker save``.
    """
    lane = config.lane(lane_id)
    target = target_of(lane) or LaneTarget()  # its runner names the base image it builds, if any
    # the lane × version's own lock: its Python, its per-Python table entries, every pin's marker
    lock = config.lock.for_python(target.python or config.lock.python)
    facts = {"version": WHEEL_CACHE_VERSION, "python": lock.python,
             "packages": dict(sorted(lock.packages.items())),
             "pins": sorted(f"{p.name}=={p.version}; {p.marker or ''}" for p in lock.pins
                            if p.python in (None, lock.python)),
             "runner": lane.runner, "options": {k: str(v) for k, v in sorted(lane.options.items())}}
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    prefix = f"archmatrix-wheels-{_key_part(lane.id)}-"
    image = target.base_image
    safe_image = _key_part(image)
    return {
        "wheels": prefix + digest,
        "wheels-prefix": prefix,
        "base-image": image,
        "base-image-platform": (target.platform or "") if image else "",
        "base-image-key": f"archmatrix-base-image-{safe_image}" if image else "",
        "base-image-file": f"{safe_image}.tar" if image else "",
    }


def _key_part(text: str) -> str:
    """Letters, digits, dot, dash, underscore only: safe in a cache key, a file name and an output line."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m archmatrix.workflows cache-keys --config FILE --lane ID``: ``name=value`` lines."""
    from . import config as config_mod
    from .errors import ExitCode

    parser = argparse.ArgumentParser(prog="python -m archmatrix.workflows")
    sub = parser.add_subparsers(dest="command", required=True)
    keys = sub.add_parser("cache-keys", help="a lane job's actions/cache keys, as name=value lines")
    keys.add_argument("--config", type=Path, required=True)
    keys.add_argument("--lane", required=True)
    args = parser.parse_args(argv)
    for name, value in cache_keys(config_mod.load(args.config), args.lane).items():
        print(f"{name}={value}")
    return ExitCode.OK


if __name__ == "__main__":
    from .errors import reporting_errors
    from .render.escape import terminal_lines

    sys.exit(reporting_errors(main, clean=terminal_lines))
