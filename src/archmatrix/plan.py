"""Planning: config + host facts → which lanes run here and which are skipped, and why.

A pure function (no Docker, no QEMU, no filesystem), unit-tested with
hand-built :class:`~archmatrix.hostfacts.HostFacts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import ConfigError
from .hostfacts import HostFacts
from .model import LaneConfig, MatrixConfig
from .runners import RUNNERS, Availability, Runner


@dataclass(frozen=True)
class PlannedLane:
    lane: LaneConfig
    availability: Availability

    @property
    def runs(self) -> bool:
        return self.availability.ok


def plan(
    config: MatrixConfig,
    host: HostFacts,
    only: Sequence[str] | None = None,
    *,
    runners: Mapping[str, Runner] | None = None,
) -> list[PlannedLane]:
    """Every configured lane (or just ``only``, in config order), with its availability here.

    ``runners``: the registry (default :data:`~archmatrix.runners.RUNNERS`), the one the config was
    parsed with.
    """
    runners = RUNNERS if runners is None else runners
    # a configured lane's name selects every Python version of it; unknown ids raise ConfigError
    lanes = config.select(only) if only else list(config.lanes)
    if not lanes:
        raise ConfigError(f"{config.path}: no lanes selected")
    return [PlannedLane(lane, runners[lane.runner].availability(lane, host)) for lane in lanes]


def parallelism(config: MatrixConfig, host: HostFacts, runnable: int) -> int:
    """Lanes at once: the config's choice, else one per core, never more than there are lanes."""
    wanted = config.parallel or max(1, host.cpu_count)
    return max(1, min(wanted, runnable))
