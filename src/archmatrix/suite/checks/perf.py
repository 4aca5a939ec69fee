"""Performance probes: how fast each lane runs the user's kind of code, as findings.

Two probes, both *informational* (they never fail a lane: an error, crash or
timeout is reported as ``skipped`` with what went wrong, see
:func:`registry.check`):

``perf.matmul``
    Matrix-multiply GFLOP/s in float64 and float32: the BLAS kernel the lane
    really runs (AVX-512, Nehalem under the no-AVX CPU, NEON/SVE under QEMU).
``perf.pool_scaling``
    The Apple Silicon study's probe: a CPU-bound pure-Python loop (``math.cos``
    in a loop) in a :class:`multiprocessing.Pool` of 1, 2, … up to 2× the
    usable CPUs; throughput per pool size, the size after which more workers
    stop paying (the knee) and the worker count to recommend.

Bounded work. Emulated lanes are 10-200× slower than native (pure Python
~10×, SIMD-heavy BLAS ~100× under QEMU's TCG), so nothing here has a fixed
size: a quick calibration measures this lane's speed first and the work is
sized to a time budget (``PROBE_BUDGET_S``), so a probe takes about the same
couple of seconds natively and emulated. The calibration is recorded.

Contention. The matrix runs lanes side by side (two at a time on two cores),
so a wall-clock number from one lane is distorted by its neighbour. Speeds
are therefore measured in *CPU time* of the process doing the work (for the
BLAS with one thread: spinning BLAS threads would inflate CPU time), which a
neighbour does not change; wall-clock numbers are recorded next to them. The
pool's scaling curve is inherently wall-clock; its ``cpu_share`` says how
much of a CPU each worker really got (1.0: the curve is clean).

Stdlib only at import time; the pure decision functions (sizes, knee,
recommendation) are unit-tested with injected timings.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..registry import CheckContext, check

# Seconds of work per probe: the float64 matmul (float32 then takes about
# half of it), and the whole pool scan. About a second each, natively and
# emulated alike (the work is calibrated). Check options
# ``perf.matmul_budget_s`` / ``perf.pool_budget_s`` may change them.
PROBE_BUDGET_S = {"matmul": 1.0, "pool": 1.0}
MATMUL_REPS = 3
MATMUL_N_LIMITS = (32, 3072)  # 3072² float64 = 75 MB a matrix: fine on any CI runner
POOL_WAVES = 3  # batches per pool size: enough to average out one straggler
MAX_POOL_SIZES = 16  # pool sizes measured at most (every size on machines up to 8 CPUs)
MIN_GAIN = 0.10  # a worker "pays" while it adds ≥ 10 % of one worker's throughput
RECOMMEND_WITHIN = 0.05  # recommend the fewest workers within 5 % of the best
CALIBRATION_S = 0.05  # CPU seconds a calibration measures (tiny: it is paid in every lane)


class ProbeTimeout(TimeoutError):
    """A probe's work did not finish within its own generous limit (a hung pool)."""


# ------------------------------------------------------------------ pure decisions


def matmul_size(flops_per_s: float, seconds: float, limits: tuple[int, int] = MATMUL_N_LIMITS) -> int:
    """The n for which one n×n @ n×n product (2n³ flops) takes ``seconds`` at ``flops_per_s``.

    Rounded to a multiple of 16 (BLAS kernels block by powers of two, so odd
    sizes measure edge handling rather than the kernel) and clamped to ``limits``.
    """
    if flops_per_s <= 0 or seconds <= 0:
        return limits[0]
    n = (flops_per_s * seconds / 2.0) ** (1.0 / 3.0)
    n = 16 * round(n / 16)
    return max(limits[0], min(limits[1], int(n)))


def pool_sizes(cpus: int, most: int = MAX_POOL_SIZES) -> list[int]:
    """1, 2, … 2× the usable CPUs (past the CPU count the curve should be flat: that is the point).

    Every size up to ``most`` sizes (an 8-core M1: 1..16); on bigger machines
    about ``most`` sizes spread evenly, always with 2 (the first step says the
    most) and the CPU count itself, so a 64-core runner does not spend its
    budget on 128 tiny waves.
    """
    top = 2 * max(1, cpus)
    if top <= most:
        return list(range(1, top + 1))
    spread = {1 + round(i * (top - 1) / (most - 1)) for i in range(most)}
    return sorted(spread | {2, max(1, cpus)})


def wave_factor(size: int, cpus: int) -> float:
    """Wall time of one wave of ``size`` equal tasks, in units of one task, on ``cpus`` CPUs."""
    return max(1.0, size / max(1, cpus))


def pool_unit_iterations(
    iterations_per_s: float, cpus: int, budget_s: float, waves: int = POOL_WAVES, minimum: int = 1000
) -> int:
    """Loop iterations per task so the whole scan (every size, ``waves`` each) takes ``budget_s``."""
    total_units = waves * sum(wave_factor(p, cpus) for p in pool_sizes(cpus))
    return max(minimum, int(iterations_per_s * budget_s / total_units))


def scaling_knee(sizes: Sequence[int], throughput: Sequence[float], min_gain: float = MIN_GAIN) -> int:
    """The pool size after which more workers stop paying.

    The smallest size p such that no larger size gains, per added worker, at
    least ``min_gain`` × one worker's throughput over p. Measured against one
    worker, not against the current total: the 8th core of 8 adds only 14 %
    to the total but still a whole worker's worth, and an efficiency core
    adding a third of a performance core still pays (the study's M1 curve).
    Looking at every larger size, not just the next, steps over a noisy dip.
    """
    if not sizes or len(sizes) != len(throughput):
        raise ValueError("sizes and throughput must be non-empty and of equal length")
    one = throughput[0]
    for i, p in enumerate(sizes):
        gains = [(throughput[j] - throughput[i]) / (sizes[j] - p) for j in range(i + 1, len(sizes))]
        if not gains or max(gains) < min_gain * one:
            return p
    return sizes[-1]  # unreachable: the last size has no larger one


def recommended_workers(
    sizes: Sequence[int], throughput: Sequence[float], knee: int, within: float = RECOMMEND_WITHIN
) -> int:
    """The fewest workers (at most the knee) within ``within`` of the best throughput up to the knee."""
    upto = [(p, t) for p, t in zip(sizes, throughput, strict=True) if p <= knee]
    best = max(t for _, t in upto)
    return next(p for p, t in upto if t >= (1.0 - within) * best)


@dataclass(frozen=True)
class Wave:
    """One batch of ``size`` tasks run at once: its wall time and the CPU time each task used."""

    size: int
    wall_s: float
    cpu_s: Sequence[float]


@dataclass(frozen=True)
class ScalingResult:
    sizes: list[int]
    throughput: list[float]  # million loop iterations per wall second, per size
    knee: int
    recommended: int
    cpu_share: float  # CPU each worker got while size ≤ CPUs (1.0: nobody competed)
    per_cpu_rate: float  # million iterations per CPU second of one worker (contention-proof)


def summarise_scaling(waves: Sequence[Wave], iterations: int, cpus: int) -> ScalingResult:
    """Per-size throughput, knee, recommendation and contention from measured waves (pure)."""
    walls: dict[int, float] = {}
    tasks: dict[int, int] = {}
    for w in waves:
        walls[w.size] = walls.get(w.size, 0.0) + w.wall_s
        tasks[w.size] = tasks.get(w.size, 0) + len(w.cpu_s)
    sizes = sorted(walls)
    throughput = [tasks[p] * iterations / walls[p] / 1e6 if walls[p] > 0 else 0.0 for p in sizes]
    knee = scaling_knee(sizes, throughput)
    # each task of a wave no larger than the CPU count should own a CPU for the whole wave
    owned = [(sum(w.cpu_s), w.size * w.wall_s) for w in waves if w.size <= cpus]
    share = sum(c for c, _ in owned) / sum(t for _, t in owned) if owned else float("nan")
    cpu_total = sum(sum(w.cpu_s) for w in waves)
    task_total = sum(len(w.cpu_s) for w in waves)
    per_cpu = task_total * iterations / cpu_total / 1e6 if cpu_total > 0 else 0.0
    return ScalingResult(
        sizes=sizes,
        throughput=throughput,
        knee=knee,
        recommended=recommended_workers(sizes, throughput, knee),
        cpu_share=min(1.0, share) if not math.isnan(share) else share,
        per_cpu_rate=per_cpu,
    )


# ------------------------------------------------------------------ measuring


def usable_cpus() -> int:
    """CPUs this process may run on (affinity / cgroup-pinned containers), else the CPU count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def burn(iterations: int) -> float:
    """One work unit, the study's loop; returns the CPU seconds it took (a pool task: module level)."""
    start = time.process_time()
    for i in range(iterations):
        math.cos(i)
    return time.process_time() - start


def calibrate(work: Callable[[int], float], start: int, target_s: float = CALIBRATION_S) -> tuple[int, float]:
    """Double ``start`` until ``work(size)`` takes ``target_s`` CPU seconds; return (size, seconds)."""
    size = start
    while True:
        seconds = work(size)
        if seconds >= target_s or size >= 1 << 40:
            return size, seconds
        size *= 2


def pool_context() -> Any:
    """``fork`` on Linux: qemu-user follows fork but not exec, so workers stay emulated
    (docs/lanes.md); elsewhere (macOS: spawn) the platform's default."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def run_pool_scan(
    iterations: int, cpus: int, *, waves: int = POOL_WAVES, limit_s: float = 120.0
) -> list[Wave]:
    """Run ``waves`` waves of every pool size in one pool of the largest size.

    One pool, not one per size: starting 2×CPUs workers once keeps the
    start-up cost (a spawn per worker on macOS) out of the budget. A wave of
    ``p`` equal tasks runs on exactly ``p`` workers (an idle worker takes one
    task and is busy until it ends), so it measures a pool of ``p``. Each
    wait is bounded: a pool that hangs raises :class:`ProbeTimeout`, and the
    pool is terminated whatever happens.
    """
    sizes = pool_sizes(cpus)
    deadline = time.monotonic() + limit_s
    out: list[Wave] = []
    pool = pool_context().Pool(processes=sizes[-1], initializer=_worker_init)
    finished = False
    try:
        # every worker up and running before anything is timed
        pool.map_async(burn, [1] * sizes[-1], chunksize=1).get(timeout=max(1.0, deadline - time.monotonic()))
        for size in sizes:
            for _ in range(waves):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProbeTimeout(f"the pool scan did not finish within {limit_s:g} s")
                start = time.perf_counter()
                try:
                    cpu = pool.map_async(burn, [iterations] * size, chunksize=1).get(timeout=remaining)
                except multiprocessing.TimeoutError:
                    raise ProbeTimeout(
                        f"a pool of {size} did not finish its tasks within {limit_s:g} s"
                    ) from None
                out.append(Wave(size, time.perf_counter() - start, cpu))
        finished = True
    finally:
        _shutdown(pool, graceful=finished)
    return out


def _shutdown(pool: Any, *, graceful: bool, wait_s: float = 10.0) -> None:
    """Stop the pool without ever hanging the probe.

    Graceful (idle workers take the sentinel and leave) after a scan that
    finished; otherwise ``terminate``. Either runs in a helper thread with a
    bounded wait: ``terminate`` first takes the task queue's lock, which a
    stuck worker may hold forever. If the helper does not return, the
    workers are killed outright; the pool is already marked closed or
    terminated by then, so its handler thread does not start new ones (and
    under the supervisor the whole process group dies with the check anyway).
    """

    def stop() -> None:
        if graceful:
            pool.close()
            pool.join()
        else:
            pool.terminate()

    helper = threading.Thread(target=stop, name="pool-shutdown", daemon=True)
    helper.start()
    helper.join(wait_s)
    if helper.is_alive():
        for worker in list(getattr(pool, "_pool", [])):
            with contextlib.suppress(Exception):
                worker.kill()
        helper.join(wait_s)


def _worker_init() -> None:
    """Pool workers inherit the suite's SIGTERM → KeyboardInterrupt handler; a worker
    interrupted inside the queue's lock would leave it held. Die plainly instead."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _budget(ctx: CheckContext, name: str) -> float:
    value = ctx.options.get(f"perf.{name}_budget_s", PROBE_BUDGET_S[name])
    return float(value)


@dataclass(frozen=True)
class MatmulTiming:
    """``reps`` products of two n×n matrices: CPU and wall seconds of each."""

    n: int
    cpu_s: Sequence[float]
    wall_s: Sequence[float]

    @property
    def flops(self) -> float:  # of one product
        return 2.0 * self.n**3

    @property
    def gflops(self) -> float:
        """The best repetition: the first product at a new size runs slower (the BLAS
        allocates and packs its buffers, pages fault in), which is not its speed."""
        best = min(self.cpu_s, default=0.0)
        return self.flops / best / 1e9 if best > 0 else 0.0

    @property
    def gflops_wall(self) -> float:
        best = min(self.wall_s, default=0.0)
        return self.flops / best / 1e9 if best > 0 else 0.0


def time_matmul(np: Any, n: int, dtype: str, reps: int) -> MatmulTiming:
    # constant operands: a GEMM's speed does not depend on the values (no denormals
    # here), and random ones cost ~0.5 s natively at n≈2500, outside the measurement
    a = np.full((n, n), 0.5, dtype=dtype)
    b = np.full((n, n), 0.25, dtype=dtype)
    out = np.zeros((n, n), dtype=dtype)
    cpu, wall = [], []
    for _ in range(reps):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        np.matmul(a, b, out=out)
        cpu.append(time.process_time() - cpu0)
        wall.append(time.perf_counter() - wall0)
    return MatmulTiming(n, cpu, wall)


def _one_blas_thread() -> Any:
    """A context limiting the BLAS to one thread (threadpoolctl), or a no-op if it is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext(None)
    return threadpool_limits(limits=1, user_api="blas")


@check("perf.matmul", informational=True,
       description="matrix-multiply GFLOP/s, float64 and float32, one BLAS thread, about a second natively")
def matmul(ctx: CheckContext) -> None:
    import numpy as np

    budget = _budget(ctx, "matmul")
    with _one_blas_thread() as limited:
        ctx.record("blas_threads", 1 if limited is not None else "default")
        # calibrate at a small size (which also starts the BLAS), then at about the
        # final size: a BLAS is faster on large matrices, so a size from the small
        # one alone undershoots. Best repetition each time (see MatmulTiming).
        probe = time_matmul(np, 128, "float64", MATMUL_REPS)
        n0 = matmul_size(probe.gflops * 1e9, budget / MATMUL_REPS / 8)
        second = time_matmul(np, n0, "float64", MATMUL_REPS)
        n = matmul_size(second.gflops * 1e9, budget / MATMUL_REPS)
        ctx.record("calibration.gflops", [probe.gflops, second.gflops])
        ctx.record("calibration.n", [128, n0])
        ctx.record("n", n)
        ctx.record("reps", MATMUL_REPS)
        for dtype in ("float64", "float32"):
            t = time_matmul(np, n, dtype, MATMUL_REPS)
            ctx.record(f"{dtype}.seconds", sum(t.cpu_s))
            ctx.record(f"{dtype}.gflops", t.gflops)
            ctx.record(f"{dtype}.gflops_wall", t.gflops_wall)


@check("perf.pool_scaling", informational=True,
       description="pure-Python math.cos loop in a process pool of 1..2×CPUs: throughput, knee, workers")
def pool_scaling(ctx: CheckContext) -> None:
    cpus = usable_cpus()
    budget = _budget(ctx, "pool")
    calib_iters, calib_s = calibrate(burn, 10_000)
    rate = calib_iters / calib_s if calib_s > 0 else 1e6
    iterations = pool_unit_iterations(rate, cpus, budget)
    method = pool_context().get_start_method()
    ctx.record("cpus", cpus)
    ctx.record("start_method", method)
    ctx.record("calibration.iterations", calib_iters)
    ctx.record("calibration.cpu_s", calib_s)
    ctx.record("task_iterations", iterations)
    ctx.record("waves", POOL_WAVES)
    # generous: 20× the budget (a lane twice as contended as expected still finishes)
    started = time.perf_counter()
    waves = run_pool_scan(iterations, cpus, limit_s=20 * budget + 30)
    result = summarise_scaling(waves, iterations, cpus)
    ctx.record("pool_sizes", result.sizes)
    ctx.record("throughput_mcos_s", result.throughput)
    ctx.record("knee", result.knee)
    ctx.record("recommended_workers", result.recommended)
    ctx.record("cpu_share", result.cpu_share)
    ctx.record("per_cpu_mcos_s", result.per_cpu_rate)
    ctx.record("seconds", time.perf_counter() - started)
