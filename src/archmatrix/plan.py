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


def machines(
    config: MatrixConfig,
    host: HostFacts,
    runnable: Sequence[PlannedLane],
    *,
    runners: Mapping[str, Runner] | None = None,
) -> dict[str, tuple[int, list[PlannedLane]]]:
    """The runnable lanes by the machine whose cores they use, each with its lanes-at-once.

    ``""`` is this host (:func:`parallelism`); a lane on a Docker engine that is another machine
    (``ssh://``, ``tcp://``) counts against that engine's cores instead, so it never waits for local
    ones. A runner says where its lane runs with an optional ``machine(lane, host)`` → (name, cores).
    """
    runners = RUNNERS if runners is None else runners
    groups: dict[str, tuple[int, list[PlannedLane]]] = {}
    for p in runnable:
        where = getattr(runners[p.lane.runner], "machine", None)
        name, cores = where(p.lane, host) if where is not None else ("", 0)
        groups.setdefault(name, (cores, []))[1].append(p)
    return {
        name: ((parallelism(config, host, len(lanes)) if not name
                else max(1, min(config.parallel or cores or 1, len(lanes)))), lanes)
        for name, (cores, lanes) in groups.items()
    }
