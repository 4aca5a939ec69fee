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

from .config import LaneConfig, MatrixConfig
from .runners.qemu import lane_profile

LINUX_X86_64 = "ubuntu-24.04"
# GitHub's native arm64 Linux runner: real Arm hardware, so linux/arm64
# containers run without QEMU.
LINUX_ARM64 = "ubuntu-24.04-arm"
# Apple Silicon with Rosetta 2: both macOS lanes.
MACOS_ARM64 = "macos-14"


def runs_on(lane: LaneConfig, *, linux_arm64: str = LINUX_ARM64) -> str:
    if lane.runner == "macos":
        return MACOS_ARM64
    if lane.runner == "docker":
        return linux_arm64 if lane.options.get("platform") == "linux/arm64" else LINUX_X86_64
    if lane.runner == "qemu":
        # qemu-user runs the host's own environment on another CPU model of
        # the same architecture, so the host must be that architecture
        profile = lane_profile(lane)
        return linux_arm64 if profile is not None and profile.arch == "aarch64" else LINUX_X86_64
    return LINUX_X86_64


def github_lanes(
    config: MatrixConfig, only: Sequence[str] = (), *, linux_arm64: str = LINUX_ARM64
) -> list[dict[str, Any]]:
    """``strategy.matrix.include`` entries: lane id, runner kind, runs-on, and what else the job sets up."""
    lanes = [config.lane(lane_id) for lane_id in only] if only else list(config.lanes)
    entries = []
    for lane in lanes:
        entry: dict[str, Any] = {"lane": lane.id, "runner": lane.runner,
                                 "os": runs_on(lane, linux_arm64=linux_arm64)}
        if lane.runner == "macos" and lane.options.get("arch") == "x86_64" and not lane.options.get("python"):
            entry["x64_python"] = True  # the job installs an x86_64 Python and points the lane at it
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
