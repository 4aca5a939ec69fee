"""Predicted lanes: cells derived from the lock's wheels for a lane that did not run here.

A macOS lane on a Linux host cannot run, but most of what it would show is in
its wheels: whether there is one, whether every binary has the lane's slice,
which macOS it needs, what it links, and whether it executes instructions
Rosetta 2 lacks. :func:`predict_lanes` downloads the lock's wheels for each
lane's platform on the host (nothing is installed or run), reads them with
the audit and writes a lane result with ``"predicted": true`` on the lane and
on every cell (``wheel.<package>``, one per locked package). The lane's
status stays ``skipped`` with its reason: a predicted lane never counts as a
lane that ran, so it never changes the exit status.

``archmatrix matrix --predict-only`` predicts every lane, Linux ones from their
own manylinux wheels, in seconds: a pre-flight before the real matrix.
"""

from __future__ import annotations

import datetime as _dt
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from ..audit.predict import HostCpu, LaneTarget, detect_host_cpu, lane_target
from ..model import LaneConfig, MatrixConfig
from ..runners import target_of
from ..runners.macos import DEFAULT_MACOS_VERSION
from ..staging.lock import WheelSet, local_projects, local_wheel_files
from ..staging.result import MissingWheel, StagingError
from ..staging.tags import macos_wheel_fits, wheel_project
from ..suite.outcomes import Outcome
from ..suite.result import LaneResult, LaneStatus, LaneWarning
from .cells import WheelFacts, audit_wheel, cached_wheel, cell, library_index
from .wheels import Platform, fetch, macos_arch, macos_version_tuple, wheel_of

__all__ = ["DEFAULT_MACOS_VERSION", "disagreements", "lane_platform", "predict_lanes", "predicts"]


def predicts(lane: LaneConfig) -> bool:
    """Is ``lane`` predicted when it cannot run here? The macOS lanes (by what they resolve to)."""
    target = target_of(lane)
    return target is not None and target.os == "macos"


def lane_macos_version(lane: LaneConfig) -> tuple[int, int]:
    return macos_version_tuple(str(lane.options.get("macos_version") or DEFAULT_MACOS_VERSION))


def lane_platform(lane: LaneConfig, audit_target: LaneTarget, host_glibc: tuple[int, int]) -> Platform:
    """Where the lane loads wheels: macOS (the lane's ``macos_version``), or manylinux (a container: Debian
    bookworm's glibc; a host or qemu lane: this host's)."""
    if audit_target.os == "macos":
        return Platform("macos", audit_target.arch, lane_macos_version(lane))
    from ..runners.docker import BOOKWORM_GLIBC

    target = target_of(lane)
    return Platform("linux", audit_target.arch,
                    BOOKWORM_GLIBC if target is not None and target.platform else host_glibc)


@dataclass(frozen=True)
class _PlatformWheels:
    wheels: WheelSet
    local: tuple[Path, ...]  # lock.wheels that fit the platform (macOS only; Linux lanes stage their own)
    facts: Mapping[str, WheelFacts]  # wheel file name → what it holds
    error: str = ""


def predict_lanes(
    config: MatrixConfig,
    lanes: Sequence[LaneConfig],
    workdir: Path,
    *,
    reasons: Mapping[str, tuple[str, str]] | None = None,
    host_cpu: HostCpu | None = None,
    host_glibc: tuple[int, int] | None = None,
    docker_arch: str | None = None,
    progress: Callable[[str, str], None] = lambda lane, message: None,
) -> list[LaneResult]:
    """A predicted lane result for each of ``lanes``.

    ``reasons``: lane id → (why it did not run, the hint), kept on the predicted result.
    """
    from ..runners.venv import host_glibc as detect_glibc

    started = time.monotonic()
    host_cpu = host_cpu or detect_host_cpu()
    glibc = host_glibc or detect_glibc()
    reasons = reasons or {}
    targets: dict[str, tuple[LaneConfig, LaneTarget, Platform]] = {}
    plain: list[LaneResult] = []
    for lane in lanes:
        t = lane_target(lane, host_cpu, docker_arch=docker_arch)
        if t is None:
            reason, hint = reasons.get(lane.id, ("", ""))
            plain.append(LaneResult(lane.id, lane.runner, LaneStatus.SKIPPED, reason or "nothing to predict: "
                                    "the lane has no platform", hint, required=lane.required))
            continue
        targets[lane.id] = (lane, t, lane_platform(lane, t, glibc))
    platforms = sorted({p for _l, _t, p in targets.values()}, key=lambda p: p.name)
    wanted = {p: [t for _lane, t, q in targets.values() if q == p] for p in platforms}

    by_platform = _fetch_and_read(config, wanted, workdir)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    results = {r.lane: r for r in plain}
    for lane_id, (lane, t, platform) in targets.items():
        results[lane_id] = _lane_result(config, lane, t, platform, by_platform[platform], reasons, now)
        progress(lane_id, f"predicted from {platform.name} wheels")
    elapsed = time.monotonic() - started
    for r in results.values():
        r.duration_s = elapsed
    return [results[lane.id] for lane in lanes]


def _fetch_and_read(config: MatrixConfig, wanted: Mapping[Platform, Sequence[LaneTarget]],
                    workdir: Path) -> dict[Platform, _PlatformWheels]:
    """Download each platform's wheels (pip subprocesses, one thread per platform) and read every wheel
    not read before in a pool of processes (the reading is CPU-bound Python), as soon as it is there."""
    cache = workdir / "predictions"
    fetched: dict[Platform, tuple[WheelSet, tuple[Path, ...], str]] = {}
    facts: dict[tuple[Platform, str], WheelFacts] = {}
    reading: dict[Future[WheelFacts], tuple[Platform, str]] = {}
    pool: ProcessPoolExecutor | None = None
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as threads:
            downloads = {threads.submit(_fetch, config, p, workdir): p for p in wanted}
            for done in as_completed(downloads):
                platform = downloads[done]
                wheels, local, _error = fetched[platform] = done.result()
                # largest first: the pool finishes sooner
                for path in sorted((*wheels.wheels, *local), key=_size, reverse=True):
                    hit = cached_wheel(path, wanted[platform], cache)
                    if hit is not None:
                        facts[(platform, path.name)] = hit
                        continue
                    if pool is None:
                        # spawn, not fork: this process has threads (a fork could copy a held lock)
                        pool = ProcessPoolExecutor(max_workers=min(READERS, os.cpu_count() or 1),
                                                   mp_context=multiprocessing.get_context("spawn"))
                    job = pool.submit(audit_wheel, path, list(wanted[platform]), cache)
                    reading[job] = (platform, path.name)
        for fut in as_completed(reading):
            platform, name = reading[fut]
            try:
                facts[(platform, name)] = fut.result()
            except BrokenProcessPool:  # a worker died (or could not start): read it here instead
                wheels, local, _error = fetched[platform]
                path = next(p for p in (*wheels.wheels, *local) if p.name == name)
                facts[(platform, name)] = audit_wheel(path, list(wanted[platform]), cache)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return {p: _PlatformWheels(w, local, {name: f for (q, name), f in facts.items() if q == p}, error)
            for p, (w, local, error) in fetched.items()}


READERS = 4  # processes reading wheels at most (fewer on a machine with fewer cores)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fetch(config: MatrixConfig, platform: Platform, workdir: Path) -> tuple[WheelSet, tuple[Path, ...], str]:
    lock = config.lock
    try:
        files = local_wheel_files(lock.wheels, config.path.parent) if platform.os == "macos" else []
        replaced = local_projects(files)
        kept = {n: v for n, v in lock.packages.items() if canonicalize_name(n) not in replaced}
        pins = _Pins(lock.python, kept)
        wheels = fetch(pins, platform, workdir / "wheels")
    except StagingError as exc:
        return WheelSet(), (), f"could not fetch the wheels for {platform.name}: {exc}"
    local = tuple(p for p in files if macos_wheel_fits(p.name, macos_arch(platform.arch)))
    return wheels, local, ""


def _lane_result(config: MatrixConfig, lane: LaneConfig, t: LaneTarget, platform: Platform,
                 staged: _PlatformWheels, reasons: Mapping[str, tuple[str, str]], now: str) -> LaneResult:
    reason, hint = reasons.get(lane.id, ("not run", ""))
    result = LaneResult(lane.id, lane.runner, LaneStatus.SKIPPED, reason, hint, started=now,
                        required=lane.required, predicted=True)
    if staged.error:
        result.predicted = False
        result.reason = f"{reason}; no prediction: {staged.error}"
        return result
    macos = platform.version if platform.os == "macos" else None
    libs = library_index(staged.facts.values())
    missing: dict[str, MissingWheel] = {canonicalize_name(m.name): m for m in staged.wheels.missing}
    packages = {**staged.wheels.installed}
    for name, version in sorted(config.lock.packages.items()):
        path = wheel_of(staged.wheels, name)
        miss = missing.get(canonicalize_name(name))
        if path is None and miss is None:
            continue  # replaced by a local wheel (below)
        result.checks.append(cell(name, version, staged.facts.get(path.name) if path else None, t,
                                  macos_version=macos, libs=libs, platform=platform.name,
                                  no_wheel_reason=miss.reason if miss else ""))
    for path in staged.local:
        name, version = wheel_project(path.name)
        packages[name] = version
        result.checks.append(cell(name, version, staged.facts[path.name], t, macos_version=macos, libs=libs,
                                  platform=platform.name))
    result.checks.sort(key=lambda c: c.id)
    machine = macos_arch(platform.arch) if platform.os == "macos" else platform.arch
    result.facts = {
        "os": "macOS" if platform.os == "macos" else "Linux",
        "machine": machine,
        "python": {"version": config.lock.python},
        "packages": {str(canonicalize_name(n)): v for n, v in packages.items()},
        "prediction": {"platform": platform.name, "cpu": t.cpu, "missing": sorted(t.missing),
                       "wheels": sorted(staged.facts)},
    }
    return result


@dataclass(frozen=True)
class _Pins:
    python: str
    packages: Mapping[str, str]


# The observed cells that say whether a package's binaries loaded (and ran their first code) in a lane.
_IMPORT_CHECKS = {"scikit-learn": "import.sklearn"}


def disagreements(observed: LaneResult, predicted: LaneResult) -> list[LaneWarning]:
    """Where a lane that ran contradicts its prediction: one warning per package, nothing when they agree.

    A package's observed outcome is its ``import.<module>`` cell when the suite has one (numpy, scipy,
    scikit-learn), else its ``wheel.<package>`` cell (was there a wheel at all).
    """
    out = []
    for cell_ in predicted.checks:
        package = cell_.id.removeprefix("wheel.")
        seen = observed.check(_IMPORT_CHECKS.get(package, f"import.{package}")) or observed.check(cell_.id)
        if seen is None or seen.predicted or Outcome.SKIPPED in (seen.outcome, cell_.outcome):
            continue
        if seen.outcome.failed != cell_.outcome.failed:
            out.append(LaneWarning(
                "prediction-disagrees",
                f"{package}: predicted {cell_.outcome.value} "
                f"({cell_.evidence.get('reason', cell_.message)}), "
                f"observed {seen.outcome.value} in {seen.id}",
                "the observed cell is the truth; please report the wheel if the prediction was wrong"))
    return out
