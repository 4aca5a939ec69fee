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

if TYPE_CHECKING:
    from ..config import LaneConfig, MatrixConfig
    from ..hostfacts import HostFacts
    from ..suite.result import LaneResult


from ..errors import LaneInfraError as LaneInfraError  # defined with its exit code in errors


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
    # option name → the type its value must have in the config
    options: ClassVar[Mapping[str, type]]

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability: ...

    def run(self, job: LaneJob) -> LaneResult: ...
