"""Runners, registered by name: the config's ``lanes[].runner`` picks one."""

from __future__ import annotations

from .base import Availability, LaneInfraError, LaneJob, Runner
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

__all__ = ["RUNNERS", "Availability", "LaneInfraError", "LaneJob", "Runner"]
