"""Which GitHub Actions runner can really run each lane.

The reusable workflow (``.github/workflows/archmatrix.yml``) turns a
caller's config into its job matrix with :func:`github_lanes`
(``archmatrix ci-lanes``); archmatrix's own ``matrix.yml`` lists the same
entries for ``ci/matrix.yaml`` literally, and a unit test holds the two
together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .model import GITHUB_LINUX_ARM64 as LINUX_ARM64
from .model import GITHUB_LINUX_X86_64 as LINUX_X86_64
from .model import GITHUB_MACOS_ARM64 as MACOS_ARM64
from .model import LaneConfig, LaneTarget, MatrixConfig
from .pyversions import result_stem
from .runners import target_of

__all__ = ["LINUX_ARM64", "LINUX_X86_64", "MACOS_ARM64", "github_lanes", "parse_lane_list", "runs_on"]


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
