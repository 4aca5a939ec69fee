"""Runners, registered by name: the config's ``lanes[].runner`` picks one.

:data:`RUNNERS` is the default registry. Nothing reads it behind the
caller's back: ``config.parse``, ``plan`` and ``run_matrix`` take a
``runners=`` mapping (this one unless told otherwise), so a new runner — or a
fake one in a test — is one more entry, and no code outside this package
branches on a runner's name.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import LaneConfig, LaneTarget
from .base import Availability, LaneInfraError, LaneJob, Launch, Option, OptionError, Runner, lane_cpu_profile
from .docker import DockerRunner
from .macos import MacosRunner
from .qemu import QemuRunner
from .venv import VenvRunner

RUNNERS: dict[str, Runner] = {
    runner.name: runner
    for runner in (
        VenvRunner(),
        DockerRunner(),
        QemuRunner(),
        MacosRunner(),
    )
}


def target_of(lane: LaneConfig, runners: Mapping[str, Runner] | None = None) -> LaneTarget | None:
    """The lane's target: as the config resolved it, else asked of its runner; None when it has none.

    (A lane built by hand, as tests and the audit do, has no target yet; an
    unknown runner or options it rejects give None.)
    """
    if lane.target is not None:
        return lane.target
    runner = (RUNNERS if runners is None else runners).get(lane.runner)
    if runner is None:
        return None
    try:
        return runner.resolve(lane)
    except OptionError:
        return None


__all__ = [
    "RUNNERS",
    "Availability",
    "LaneInfraError",
    "LaneJob",
    "Launch",
    "Option",
    "OptionError",
    "Runner",
    "lane_cpu_profile",
    "target_of",
]
