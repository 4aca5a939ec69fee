"""The runner interface: what every way of reaching a lane provides.

A runner declares its options (a schema checked while the config is
parsed) and answers three questions. :meth:`Runner.resolve` — what is this
lane (OS, architecture, CPU, emulator, GitHub runner) — and
:meth:`Runner.availability` — can this host run it, and if not, why and what
to do about it — are pure, so planning is unit-tested without Docker or QEMU.
:meth:`Runner.prepare` builds the lane's environment and returns a
:class:`Launch`; one shared path (``common.run_prepared``) runs the suite and
finishes the result for every runner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..profiles import DEFAULT_PROFILES, CpuProfile

if TYPE_CHECKING:
    from ..hostfacts import HostFacts
    from ..model import LaneConfig, LaneTarget, Lock, MatrixConfig
    from ..staging.result import StagingResult
    from ..suite.result import CheckResult, LaneResult


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


@dataclass(frozen=True)
class Launch:
    """What a runner prepared: how the suite starts in the lane, and what the host adds to its result.

    Every runner's ``prepare`` builds one; :func:`~archmatrix.runners.common.run_prepared`
    does the rest the same way for all of them (suite arguments, progress,
    execution, verification, the wheel rows, saving). A runner supplies only
    what differs: the prefix (``qemu-x86_64 -cpu Westmere <python>``,
    ``arch -x86_64 <python>``, the container's ``python3``), the environment,
    where the result file is as the lane sees it, and — for a container — how
    to execute.
    """

    prefix: Sequence[str]  # everything before ``-m archmatrix.suite …``: emulator/arch prefix + interpreter
    env: Mapping[str, str] | None = None
    staging: StagingResult | None = None  # the lock as staged: the ``wheel.<pkg>`` rows
    facts: Mapping[str, object] = field(default_factory=dict)  # recorded under facts.runner
    user_checks: tuple[str, ...] = ()  # the user check modules as staged (names every lane imports)
    env_removed: tuple[str, ...] = ()  # CPU-override variables not passed to the lane
    emulator: str | None = None  # recorded by the suite as a fact
    cpu_model: str | None = None
    cpu: CpuProfile | None = None  # the CPU the lane claims to run on: its self-check proves it
    how: str = ""  # for the progress line: "under qemu-x86_64 -cpu Westmere"
    out: str | None = None  # the result file as the lane sees it (default: job.out)
    # How to start it; None: a process on this host (command.run). A container runner passes its own.
    execute: Callable[[LaneJob, list[str]], LaneResult] | None = None
    line_filter: Callable[[str], bool] | None = None  # drop emulator noise from the progress lines
    # Checks the host adds from the lane's facts (e.g. "did Rosetta really translate it?")
    verify: tuple[Callable[[Mapping[str, Any]], CheckResult], ...] = ()


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
    # The phase the lane enters, for the live display (archmatrix.progress: "staging",
    # "base image", "image", "running"); a job built by hand drops them.
    phase: Callable[[str], None] = field(default=lambda _phase: None)

    @property
    def lock(self) -> Lock:
        """The lock this lane stages: the config's on the lane's own Python (``lock.python`` may list
        several)."""
        python = self.lane.target.python if self.lane.target else ""
        lock = self.config.lock
        return lock.for_python(python) if python and python in lock.pythons else lock

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

    def prepare(self, job: LaneJob) -> Launch:
        """Build the lane's environment (stage, venv, image) and say how to start the suite in it."""
        ...
