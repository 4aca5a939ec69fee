"""Run a matrix: plan, run the runnable lanes in parallel with progress, merge, write outputs.

Nothing a lane finished is ever lost: each lane's result file is saved as
soon as the lane ends (and the suite rewrites it after every check), a lane
that cannot start becomes an ``infra-error`` result, and Ctrl-C still
merges and prints whatever finished.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from . import matrix as matrix_mod
from .command import CancelScope, Interrupted, cancel_scope
from .hostfacts import HostFacts
from .model import MatrixConfig
from .plan import PlannedLane, parallelism, plan
from .pyversions import result_file
from .runners import RUNNERS, LaneInfraError, LaneJob, Runner
from .runners.common import run_prepared
from .suite.result import LaneResult, LaneStatus, ResultFileError, load, save

log = logging.getLogger("archmatrix")


@dataclass
class Progress:
    """One line per event, prefixed with the elapsed time and the lane (safe across threads)."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    start: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, lane: str, message: str) -> None:
        elapsed = time.monotonic() - self.start
        with self.lock:
            print(f"[{elapsed:6.1f}s] {lane:<22} {message}", file=self.stream, flush=True)

    def for_lane(self, lane: str) -> Callable[[str], None]:
        return lambda message: self.say(lane, message)


@dataclass
class RunOutcome:
    matrix: matrix_mod.Matrix
    planned: list[PlannedLane]
    interrupted: bool = False


def skipped_result(p: PlannedLane) -> LaneResult:
    return LaneResult(
        lane=p.lane.id, runner=p.lane.runner, status=LaneStatus.SKIPPED,
        reason=p.availability.reason, hint=p.availability.hint, required=p.lane.required,
    )


def run_lane(job: LaneJob, runners: Mapping[str, Runner] | None = None) -> LaneResult:
    """Run one lane; whatever goes wrong becomes that lane's result, never an exception."""
    runner = (RUNNERS if runners is None else runners)[job.lane.runner]
    started = time.monotonic()
    try:
        result = run_prepared(job, runner.prepare(job))
    except LaneInfraError as exc:
        result = LaneResult(lane=job.lane.id, runner=job.lane.runner, status=LaneStatus.INFRA_ERROR,
                            reason=str(exc), hint=exc.hint, required=job.lane.required)
    except Interrupted:
        # stopped while staging, building or running: keep the checks that finished
        result = _salvage(job) or LaneResult(lane=job.lane.id, runner=job.lane.runner,
                                             required=job.lane.required)
        result.status = LaneStatus.INTERRUPTED
        result.reason = result.reason or ("interrupted before every check ran" if result.checks
                                          else "interrupted before the lane's suite ran")
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a bug or an unexpected failure: keep the other lanes going
        log.debug("lane %s failed:\n%s", job.lane.id, traceback.format_exc())
        result = _salvage(job) or LaneResult(
            lane=job.lane.id, runner=job.lane.runner, status=LaneStatus.INFRA_ERROR,
            reason=f"{type(exc).__name__}: {exc}", hint="run with --verbose for the traceback",
            required=job.lane.required,
        )
    if not result.duration_s:
        result.duration_s = time.monotonic() - started
    save(result, job.out)
    return result


def _salvage(job: LaneJob) -> LaneResult | None:
    """A partial result the suite saved before the runner failed is better than none."""
    try:
        partial = load(job.out)
    except ResultFileError:
        return None
    return partial if partial.checks else None


def run_matrix(
    config: MatrixConfig,
    host: HostFacts,
    *,
    results_dir: Path,
    workdir: Path,
    only: Sequence[str] | None = None,
    progress: Progress | None = None,
    runners: Mapping[str, Runner] | None = None,
) -> RunOutcome:
    """Plan, run every runnable lane (``runners``: the registry, default RUNNERS), merge."""
    from .config import check_selection

    # here, not in config.parse: --checks-module adds check modules after parsing
    check_selection(config)
    progress = progress or Progress()
    planned = plan(config, host, only, runners=runners)
    # absolute: paths end up in container bind mounts and .pth files
    results_dir, workdir = results_dir.resolve(), workdir.resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, LaneResult] = {}
    for p in planned:
        if not p.runs:
            progress.say(p.lane.id, f"skipped: {p.availability.reason}")
            results[p.lane.id] = skipped_result(p)
            save(results[p.lane.id], result_file(results_dir, p.lane.id))
    runnable = [p for p in planned if p.runs]
    interrupted = False
    if runnable:
        workers = parallelism(config, host, len(runnable))
        progress.say("matrix", f"running {len(runnable)} lane(s), {workers} at a time")
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lane")
        futures: dict[Future[LaneResult], PlannedLane] = {}
        jobs: dict[Future[LaneResult], LaneJob] = {}
        for p in runnable:
            job = LaneJob(config=config, lane=p.lane, host=host, workdir=workdir,
                          out=result_file(results_dir, p.lane.id), progress=progress.for_lane(p.lane.id))
            fut = pool.submit(_announced, job, runners)
            futures[fut], jobs[fut] = p, job
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5)
                for fut in done:
                    lane_result = fut.result()
                    results[lane_result.lane] = lane_result
        except KeyboardInterrupt:
            interrupted = True
            progress.say("matrix", "interrupted: keeping the lanes that finished")
            pool.shutdown(wait=False, cancel_futures=True)
            # A terminal's Ctrl-C reached the lanes' processes too, but not a
            # container, nor anything when only archmatrix was signalled: tell
            # every running lane, then give them a moment to save.
            running = [f for f in futures if f.running()]
            for fut in running:
                jobs[fut].abort()
            # each lane's commands get SIGINT, a grace period, then SIGKILL
            wait(running, timeout=15)
            for fut, p in futures.items():
                if fut.cancelled():  # never started: any file there is an old run's
                    results[p.lane.id] = _interrupted(p)
                elif fut.done() and fut.exception() is None:
                    results[p.lane.id] = fut.result()
                else:
                    results[p.lane.id] = _salvage_or_interrupted(p, results_dir)
        finally:
            pool.shutdown(wait=not interrupted)
    ordered = [results[p.lane.id] for p in planned if p.lane.id in results]
    from .results import build_matrix

    built = build_matrix(ordered, config)
    return RunOutcome(built, planned, interrupted)


def _announced(job: LaneJob, runners: Mapping[str, Runner] | None) -> LaneResult:
    # The lane's interrupt (job.abort() from the main thread) stops whatever
    # command this thread runs, in any phase: staging, pip, debootstrap, a build.
    scope = CancelScope()
    job.aborts.append(scope.cancel)
    job.progress("starting")
    with cancel_scope(scope):
        result = run_lane(job, runners)
    summary = f"{sum(1 for c in result.checks if not c.outcome.failed)}/{len(result.checks)} checks ok"
    job.progress(f"done: {result.status}, {summary}, {result.duration_s:.0f}s")
    return result


def _interrupted(p: PlannedLane) -> LaneResult:
    return LaneResult(lane=p.lane.id, runner=p.lane.runner, status=LaneStatus.INTERRUPTED,
                      reason="interrupted before the lane finished", required=p.lane.required)


def _salvage_or_interrupted(p: PlannedLane, results_dir: Path) -> LaneResult:
    try:
        return load(result_file(results_dir, p.lane.id))
    except ResultFileError:
        return _interrupted(p)
