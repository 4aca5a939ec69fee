"""The runner interface: what every way of reaching a lane provides.

A runner answers two questions. :meth:`Runner.availability` — can this host
run this lane, and if not, why and what to do about it — is a pure function
of the lane's configuration and :class:`~archmatrix.hostfacts.HostFacts`, so
planning is unit-tested without Docker or QEMU. :meth:`Runner.run` builds the
lane's environment and executes the suite in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from ..profiles import DEFAULT_PROFILES, CpuProfile

if TYPE_CHECKING:
    from ..hostfacts import HostFacts
    from ..model import LaneConfig, LaneTarget, MatrixConfig
    from ..suite.result import LaneResult


from ..errors import LaneInfraError as LaneInfraError  # defined with its exit code in errors


def lane_cpu_profile(lane: LaneConfig) -> CpuProfile | None:
    """The lane's CPU profile: as the config resolved it (custom profiles), else a default one by name.

    The one place a profile name becomes a profile; a lane built by hand (tests,
    the audit) has only the name.
    """
    if lane.cpu_profile is not None:
        return lane.cpu_profile
    name = lane.options.get("cpu_profile")
    return DEFAULT_PROFILES.get(str(name)) if name else None


class OptionError(ValueError):
    """A lane option whose value the runner cannot use; ``config`` says where it was written."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Option:
    """One ``lanes[].options`` key a runner accepts: its type, allowed values, whether it must be set.

    ``config.parse`` checks every lane's options against its runner's schema
    with the same located messages as the rest of the file, so a bad value is
    a configuration error, never a lane that is quietly skipped.
    """

    type: type = str
    choices: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""  # why not (or, when ok, a note such as "emulated by QEMU via binfmt")
    hint: str = ""  # the exact fix, when not ok

    @classmethod
    def yes(cls, note: str = "") -> Availability:
        return cls(True, note)

    @classmethod
    def no(cls, reason: str, hint: str = "") -> Availability:
        return cls(False, reason, hint)


@dataclass
class LaneJob:
    """Everything a runner needs to run one lane."""

    config: MatrixConfig
    lane: LaneConfig
    host: HostFacts
    workdir: Path  # caches and staging (.archmatrix/)
    out: Path  # where the lane result goes (results/<lane>.json)
    progress: Callable[[str], None]
    # Called when the run is interrupted (Ctrl-C): for work that does not
    # receive the terminal's SIGINT, such as a container.
    aborts: list[Callable[[], None]] = field(default_factory=list)

    def abort(self) -> None:
        for hook in list(self.aborts):
            # best effort: the lane is being abandoned anyway
            with contextlib.suppress(Exception):
                hook()


class Runner(Protocol):
    name: ClassVar[str]
    options: ClassVar[Mapping[str, Option]]

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        """What the lane is (OS, architecture, CPU, emulator, GitHub runner), from its options alone.

        Pure, called once by ``config.parse``; raises :class:`OptionError` for
        values that cannot work on any host.
        """
        ...

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability: ...

    def run(self, job: LaneJob) -> LaneResult: ...
