"""The configuration as frozen values: what ``config.parse`` produces and everything else reads.

A leaf module: it imports nothing of archmatrix's but the vocabulary it is
made of (CPU profiles, tolerances, errors), so runners, the planner and the
renderers can all depend on it without depending on each other, and
``config`` (which needs the runners' option schemas) is not imported back.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .profiles import DEFAULT_PROFILES, CpuProfile
from .suite.registry import DEFAULT_TOLERANCES, Tolerance
from .suite.spec import SuiteSpec

# GitHub Actions runner labels: which real machine runs a lane in CI.
GITHUB_LINUX_X86_64 = "ubuntu-24.04"
# GitHub's native arm64 Linux runner: real Arm hardware, so linux/arm64
# containers run without QEMU.
GITHUB_LINUX_ARM64 = "ubuntu-24.04-arm"
# Apple Silicon with Rosetta 2: both macOS lanes.
GITHUB_MACOS_ARM64 = "macos-14"


def github_linux_runner(arch: str) -> str:
    """The GitHub runner label of a Linux machine of ``arch`` (the x86-64 one for any other)."""
    return GITHUB_LINUX_ARM64 if arch == "aarch64" else GITHUB_LINUX_X86_64


# LaneTarget.emulator of the lanes qemu-user runs (the others are native or Rosetta 2).
QEMU_USER = "qemu-user"


@dataclass(frozen=True)
class Pin:
    """One locked package: an exact version, for the lanes its marker and Python select.

    Read from ``lock.packages`` (a per-Python table gives one pin per Python) or
    ``lock.file`` (a pylock.toml or a requirements.txt); :mod:`archmatrix.lockfile`
    evaluates it per lane.
    """

    name: str
    version: str
    marker: str | None = None  # PEP 508 environment marker, evaluated with each lane's environment
    hashes: tuple[str, ...] = ()  # "sha256:<hex>": the wheel staged for a lane must match one
    python: str | None = None  # a per-Python table's entry: only lanes of this Python ("3.12")
    extras: tuple[str, ...] = ()  # as written (pkg[extra]==1.0); their requirements are pins of their own
    where: str = ""  # "ci/requirements.txt:12": where it was written, for messages
    requires_python: str | None = None  # a pylock package's: a lane it applies to must have such a Python


def every_lane(pins: Sequence[Pin], python: str) -> dict[str, str]:
    """``Lock.packages``: the pins every lane of ``python`` installs (no marker; its Python's table entry)."""
    return {pin.name: pin.version for pin in pins if pin.marker is None and pin.python in (None, python)}


@dataclass(frozen=True)
class Lock:
    python: str  # the first (or only) of ``pythons``
    # What every lane of the lock's Python installs: the pins without a marker
    # (per-Python tables resolved for ``python``). Markers are per lane: ``pins``.
    packages: Mapping[str, str]
    wheels: tuple[str, ...] = ()  # local wheel files or directories (bring your own package)
    pins: tuple[Pin, ...] = ()  # every pin, markers and tables included; empty: ``packages`` as pins
    file: str = ""  # lock.file as found from here (config directory / path), for messages
    # a pylock.toml's own bounds: every lane must satisfy one of its environments and its requires-python
    environments: tuple[str, ...] = ()
    requires_python: str | None = None
    # every Python the lanes run on (lock.python as a list); () means just ``python``
    pythons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.pythons:
            object.__setattr__(self, "pythons", (self.python,))

    def all_pins(self) -> tuple[Pin, ...]:
        """Every pin of the lock (a lock built by hand has only ``packages``)."""
        return self.pins or tuple(Pin(name, version) for name, version in self.packages.items())

    def for_python(self, version: str) -> Lock:
        """The lock one lane × version stages: this lock on Python ``version`` alone (its per-Python
        table entries resolved for it)."""
        if self.pythons == (version,) and self.python == version:
            return self
        packages = every_lane(self.pins, version) if self.pins else self.packages
        return replace(self, python=version, pythons=(version,), packages=packages)


@dataclass(frozen=True)
class ChecksConfig:
    select: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()  # patterns left out after select (e.g. "perf.*": no probes)
    user_modules: tuple[str, ...] = ()
    timeout: float = 180.0
    timeouts: Mapping[str, float] = field(default_factory=dict)
    tolerances: Mapping[str, Tolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    drift_rtol: float = 1e-6
    # pytest arguments as written (test paths relative to the config file, -k, -m, …):
    # the project's own tests, one cell per test (docs/own-package.md)
    pytest: tuple[str, ...] = ()

    def suite_spec(self) -> SuiteSpec:
        """What the lane-side suite needs (its ``--spec``).

        ``pytest`` stays as written here; the runners' ``suite_args`` replaces it
        with the arguments of the project as staged, which is all a lane can see.
        """
        return SuiteSpec(checks=self.select, exclude=self.exclude, user_checks=self.user_modules,
                         timeouts=dict(self.timeouts), tolerances=dict(self.tolerances),
                         pytest=self.pytest)


@dataclass(frozen=True)
class LaneTarget:
    """What a lane is, resolved once from its runner and options (``Runner.resolve``).

    Everything outside ``runners/`` that needs to know what a lane means —
    the GitHub workflows, the audit's predictions, the plan — reads this, never
    the runner's name or its options.
    """

    os: str | None = None  # "linux", "macos"; None: whatever the host is
    arch: str | None = None  # canonical architecture (suite.arch); None: the host's
    platform: str | None = None  # a container's platform ("linux/arm64")
    # The CPU the lane's code sees when it is not the host's own: the profile a
    # qemu lane emulates, the one an emulated container gets, Rosetta's.
    cpu: CpuProfile | None = None
    # How the lane always reaches its CPU ("qemu-user", "Rosetta 2"); None when
    # it runs natively, or (containers) emulated only where the engine's
    # architecture differs, which is the host's to say.
    emulator: str | None = None
    emulated_cpu_default: str | None = None  # the CPU model an emulating engine gives without a profile
    runs_on: str = GITHUB_LINUX_X86_64  # the GitHub runner that runs it for real
    ci_setup: tuple[str, ...] = ()  # what that job must set up first ("x64_python")
    python: str = ""  # the lock's Python (major.minor): the interpreter the lane must run
    base_image: str = ""  # the Debian base image (its content tag) a container lane builds; "" for none


@dataclass(frozen=True)
class LaneConfig:
    id: str
    runner: str
    required: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    # options.cpu_profile resolved against the config's cpu_profiles, so a
    # runner's (pure) availability sees custom profiles without the whole config
    cpu_profile: CpuProfile | None = None
    # set by config.parse through the lane's runner; None for a lane built by hand
    target: LaneTarget | None = None
    # the line of the lane's ``id`` in the config file (GitHub annotations point at it); not part
    # of what the lane is, so two equal lanes written at different places still compare equal
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class MatrixConfig:
    path: Path
    lock: Lock
    checks: ChecksConfig
    lanes: tuple[LaneConfig, ...]
    parallel: int | None = None  # lanes at once; None: by the host's cores
    cpu_profiles: Mapping[str, CpuProfile] = field(default_factory=lambda: dict(DEFAULT_PROFILES))

    def lane(self, lane_id: str) -> LaneConfig:
        for lane in self.lanes:
            if lane.id == lane_id:
                return lane
        raise ConfigError(
            f"{self.path}: no lane {lane_id!r}{suggest(lane_id, [ln.id for ln in self.lanes])}"
        )

    def select(self, lane_ids: Sequence[str]) -> list[LaneConfig]:
        """The lanes ``lane_ids`` name, in config order: a lane id, or a configured lane's name for every
        Python version of it (``host`` → ``host@3.11``, ``host@3.12``); an unknown id is a ConfigError."""
        wanted: list[LaneConfig] = []
        for lane_id in lane_ids:
            # "<lane>@<version>" ids (pyversions.versioned_id); configured ids cannot contain "@"
            versions = [ln for ln in self.lanes if ln.id.rpartition("@")[0] == lane_id]
            exact = any(ln.id == lane_id for ln in self.lanes)
            wanted += versions if versions and not exact else [self.lane(lane_id)]
        return [lane for lane in self.lanes if lane in wanted]


def suggest(word: str, options: Sequence[str]) -> str:
    """`` (perhaps you meant 'x'?)`` for the closest of ``options``, or nothing."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (perhaps you meant {close[0]!r}?)" if close else ""
