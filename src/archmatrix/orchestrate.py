"""Run a matrix: plan, run the runnable lanes in parallel with progress, merge, write outputs.

Nothing a lane finished is ever lost: each lane's result file is saved as
soon as the lane ends (and the suite rewrites it after every check), a lane
that cannot start becomes an ``infra-error`` result, and Ctrl-C still
merges and prints whatever finished.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from . import matrix as matrix_mod
from .command import CancelScope, Interrupted, cancel_scope
from .hostfacts import HostFacts
from .model import MatrixConfig
from .plan import PlannedLane, machines, plan
from .progress import LaneProgress, PlainProgress, Reporter, for_terminal
from .pyversions import result_file
from .runners import RUNNERS, LaneInfraError, LaneJob, Runner
from .runners.common import run_prepared
from .schedule import read_durations, record_durations, start_order
from .suite.result import LaneResult, LaneStatus, ResultFileError, load, save

log = logging.getLogger("archmatrix")

# The plain line log (CI, pipes), by the name callers know; archmatrix.progress.for_terminal
# picks the live display on a terminal.
Progress = PlainProgress


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
    progress: Reporter | None = None,
    runners: Mapping[str, Runner] | None = None,
) -> RunOutcome:
    """Plan, run every runnable lane (``runners``: the registry, default RUNNERS), merge.

    ``progress``: where the lanes report (default: the live display on a
    terminal, the plain line log elsewhere); it runs for the whole call.
    """
    from .config import check_selection

    # here, not in config.parse: --checks-module adds check modules after parsing
    check_selection(config)
    progress = progress or for_terminal()
    planned = plan(config, host, only, runners=runners)
    with progress:
        return _run_planned(config, host, planned, results_dir, workdir, progress, runners)


def _run_planned(
    config: MatrixConfig, host: HostFacts, planned: list[PlannedLane], results_dir: Path, workdir: Path,
    progress: Reporter, runners: Mapping[str, Runner] | None,
) -> RunOutcome:
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
        # one pool per machine: lanes on a remote Docker engine use its cores, not this host's
        groups = machines(config, host, runnable, runners=runners)
        workers = sum(w for w, _lanes in groups.values())
        where = "" if list(groups) == [""] else " (" + ", ".join(
            f"{w} on {name or 'this host'}" for name, (w, _lanes) in groups.items()) + ")"
        progress.say("matrix", f"running {len(runnable)} lane(s), {workers} at a time{where}")
        pools = {name: ThreadPoolExecutor(max_workers=w, thread_name_prefix="lane")
                 for name, (w, _lanes) in groups.items()}
        futures: dict[Future[LaneResult], PlannedLane] = {}
        jobs: dict[Future[LaneResult], LaneJob] = {}
        trackers = {p.lane.id: progress.lane(p.lane.id) for p in runnable}  # every lane shown, waiting
        # each pool starts its longest lanes first (by the last run's durations): see archmatrix.schedule
        order = {lane_id: i for i, lane_id in
                 enumerate(start_order([p.lane.id for p in runnable], read_durations(workdir)))}
        for name, (_w, lanes) in groups.items():
            for p in sorted(lanes, key=lambda p: order[p.lane.id]):
                tracker = trackers[p.lane.id]
                job = LaneJob(config=config, lane=p.lane, host=host, workdir=workdir,
                              out=result_file(results_dir, p.lane.id), progress=tracker, phase=tracker.phase)
                fut = pools[name].submit(_announced, job, tracker, runners)
                futures[fut], jobs[fut] = p, job
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5)
                progress.tick()  # heartbeats and the live redraw, from this (the main) thread
                for fut in done:
                    lane_result = fut.result()
                    results[lane_result.lane] = lane_result
        except KeyboardInterrupt:
            interrupted = True
            progress.say("matrix", "interrupted: keeping the lanes that finished")
            for pool in pools.values():
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
            for pool in pools.values():
                pool.shutdown(wait=not interrupted)
    ordered = [results[p.lane.id] for p in planned if p.lane.id in results]
    record_durations(workdir, ordered)
    from .results import build_matrix

    built = build_matrix(ordered, config)
    return RunOutcome(built, planned, interrupted)


def _announced(job: LaneJob, tracker: LaneProgress, runners: Mapping[str, Runner] | None) -> LaneResult:
    # The lane's interrupt (job.abort() from the main thread) stops whatever
    # command this thread runs, in any phase: staging, pip, debootstrap, a build.
    scope = CancelScope()
    job.aborts.append(scope.cancel)
    tracker.phase("starting")
    job.progress("starting")
    with cancel_scope(scope):
        result = run_lane(job, runners)
    ok = sum(1 for c in result.checks if not c.outcome.failed)
    summary = f"{ok}/{len(result.checks)} checks ok"
    tracker.finish(f"done: {result.status}, {summary}, {result.duration_s:.0f}s",
                   failed=result.status != LaneStatus.RAN or ok < len(result.checks))
    return result


def _interrupted(p: PlannedLane) -> LaneResult:
    return LaneResult(lane=p.lane.id, runner=p.lane.runner, status=LaneStatus.INTERRUPTED,
                      reason="interrupted before the lane finished", required=p.lane.required)


def _salvage_or_interrupted(p: PlannedLane, results_dir: Path) -> LaneResult:
    try:
        return load(result_file(results_dir, p.lane.id))
    except ResultFileError:
        return _interrupted(p)
