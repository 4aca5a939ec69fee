"""Each lane's speed relative to the host's native lane: the price of emulation or translation.

Pure functions of the lane results (the ``perf.*`` probes' metrics), shared
by every renderer. Two numbers per lane, because emulation does not cost
every kind of code the same: QEMU's TCG makes SIMD-heavy BLAS kernels ~100×
slower but a pure-Python loop only ~10×.

- BLAS: ``perf.matmul`` float64 GFLOP/s (one BLAS thread, CPU time).
- Python: ``perf.pool_scaling``'s per-CPU loop rate (million ``math.cos``
  iterations per CPU second of one worker).

Both are measured in CPU time, so the ratio holds even though the matrix
runs lanes side by side. The reference is the ``host`` lane, else the first
lane that ran natively (neither emulated nor translated) with probe numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .suite.outcomes import Outcome
from .suite.result import LaneResult

MATMUL = "perf.matmul"
POOL = "perf.pool_scaling"
REFERENCE_ID = "host"
SPEED_ROWS = ("speed", "workers")
BUSY_SHARE = 0.8  # below this CPU share per worker, the scaling curve was measured on a busy host
NO_DATA = "–"
# A pool probe measures a handful of sizes up to the CPU count; the HTML
# table and plot have a column or tick per size up to the largest, so a
# result file claiming more (``pool_sizes: [1, 1e9]``) is not drawn.
MAX_POOL_SIZE = 1024
MAX_POOL_POINTS = 64


@dataclass(frozen=True)
class PoolCurve:
    sizes: list[int]
    throughput: list[float]  # million loop iterations per second, per pool size
    knee: int | None
    recommended: int | None
    cpus: int | None
    cpu_share: float | None

    @property
    def busy(self) -> bool:
        """Measured while other work shared the CPUs: the curve understates scaling."""
        return self.cpu_share is not None and self.cpu_share < BUSY_SHARE


@dataclass(frozen=True)
class LaneSpeed:
    lane: str
    native: bool
    gflops64: float | None = None
    gflops32: float | None = None
    python_rate: float | None = None  # million iterations per CPU second
    curve: PoolCurve | None = None

    @property
    def measured(self) -> bool:
        return self.gflops64 is not None or self.python_rate is not None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return round(number) if number is not None else None


def is_native(lane: LaneResult) -> bool:
    """Neither emulated (QEMU) nor translated (Rosetta), by the lane's own facts."""
    emulation = lane.facts.get("emulation") or {}
    return bool(lane.facts) and not emulation.get("emulator") and not lane.facts.get("translated")


def pool_curve(metrics: dict[str, Any]) -> PoolCurve | None:
    sizes = metrics.get("pool_sizes")
    throughput = metrics.get("throughput_mcos_s")
    if not isinstance(sizes, list) or not isinstance(throughput, list) or len(sizes) != len(throughput):
        return None
    if not sizes or len(sizes) > MAX_POOL_POINTS:
        return None
    if any(_number(s) is None for s in sizes) or any(_number(t) is None for t in throughput):
        return None
    if any(not 1 <= s <= MAX_POOL_SIZE for s in sizes):
        return None
    return PoolCurve(
        sizes=[round(float(s)) for s in sizes],
        throughput=[float(t) for t in throughput],
        knee=_count(metrics.get("knee")),
        recommended=_count(metrics.get("recommended_workers")),
        cpus=_count(metrics.get("cpus")),
        cpu_share=_number(metrics.get("cpu_share")),
    )


def lane_speed(lane: LaneResult) -> LaneSpeed:
    """What the probes measured in this lane (None for what did not run or did not pass)."""
    matmul = lane.check(MATMUL)
    pool = lane.check(POOL)
    mm = matmul.metrics if matmul is not None and matmul.outcome is Outcome.PASS else {}
    pm = pool.metrics if pool is not None and pool.outcome is Outcome.PASS else {}
    return LaneSpeed(
        lane=lane.lane,
        native=is_native(lane),
        gflops64=_number(mm.get("float64.gflops")),
        gflops32=_number(mm.get("float32.gflops")),
        python_rate=_number(pm.get("per_cpu_mcos_s")),
        curve=pool_curve(pm) if pm else None,
    )


def reference(speeds: Sequence[LaneSpeed]) -> LaneSpeed | None:
    """The ``host`` lane if it ran natively with probes, else the first native lane that did."""
    native = [s for s in speeds if s.native and s.measured]
    return next((s for s in native if s.lane == REFERENCE_ID), native[0] if native else None)


def ratio_text(ratio: float) -> str:
    """Two decimals down to 0.1×, then one significant digit (0.006×): emulation spans 1000×."""
    return f"{ratio:.2f}×" if ratio >= 0.095 else f"{ratio:.1g}×"


def speed_text(speed: LaneSpeed, ref: LaneSpeed | None) -> str:
    if not speed.measured:
        return NO_DATA
    if ref is None:  # nothing native to compare with (e.g. one emulated lane fanned out in CI)
        parts = []
        if speed.gflops64 is not None:
            parts.append(f"{speed.gflops64:.3g} GFLOP/s")
        if speed.python_rate is not None:
            parts.append(f"Python {speed.python_rate:.3g} M/s")
        return ", ".join(parts)
    label = "host" if ref.lane == REFERENCE_ID else ref.lane
    if speed.lane == ref.lane:
        return f"{ratio_text(1.0)} ({'host' if ref.lane == REFERENCE_ID else 'reference'})"
    blas = speed.gflops64 / ref.gflops64 if speed.gflops64 and ref.gflops64 else None
    python = speed.python_rate / ref.python_rate if speed.python_rate and ref.python_rate else None
    if blas is not None and python is not None:
        return f"{ratio_text(blas)} {label} (Python {ratio_text(python)})"
    if blas is not None:
        return f"{ratio_text(blas)} {label}"
    if python is not None:
        return f"Python {ratio_text(python)} {label}"
    return NO_DATA


def workers_text(speed: LaneSpeed) -> str:
    """The worker count the pool probe recommends, unless its curve cannot be trusted."""
    curve = speed.curve
    if curve is None or curve.recommended is None:
        return NO_DATA
    if curve.busy and curve.cpu_share is not None:
        # other lanes (or processes) shared the CPUs while it ran: the curve
        # understates scaling, so a recommendation from it would mislead
        return f"unclear: busy host ({curve.cpu_share:.0%} CPU per worker)"
    text = f"{curve.recommended}"
    if curve.cpus:
        text += f" of {curve.cpus} CPUs"
    if curve.knee is not None and curve.knee != curve.recommended:
        text += f", knee {curve.knee}"
    return text


def speed_rows(lanes: Sequence[LaneResult]) -> list[list[str]]:
    """Header rows ``speed`` and ``workers`` for these lanes; none when no lane ran a probe."""
    speeds = [lane_speed(ln) for ln in lanes]
    if not any(s.measured for s in speeds):
        return []
    ref = reference(speeds)
    return [
        ["speed", *(speed_text(s, ref) for s in speeds)],
        ["workers", *(workers_text(s) for s in speeds)],
    ]


def pool_curves(lanes: Sequence[LaneResult]) -> list[tuple[str, PoolCurve]]:
    """(lane id, curve) for every lane that ran the pool probe, in lane order."""
    out = []
    for lane in lanes:
        curve = lane_speed(lane).curve
        if curve is not None:
            out.append((lane.lane, curve))
    return out
