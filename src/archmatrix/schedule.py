"""The order in which runnable lanes start: the longest first, by how long each took last time.

With more lanes than cores, the config's order puts the quick native lanes
first and the emulated ones last, so the slowest lane often starts late and
runs alone at the end while the other cores idle. Starting the longest lanes
first (longest-processing-time-first) packs the cores: on two cores the
default matrix's five Linux lanes took 74 s instead of 86 s
(``bench/start_order.py``).

How long a lane takes is read from the previous run's durations, kept in the
workdir beside the other caches (``lane-durations.json``). A lane without a
recorded duration starts before the others, in config order: a lane never
seen is usually cold (base image, staging) and the longest of all. The file
is a cache: missing, unreadable or malformed, it is ignored and rewritten.
Only the start order changes: results, tables and files keep the config's order.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from .suite.result import LaneResult, LaneStatus, write_text_atomic

log = logging.getLogger("archmatrix")

DURATIONS = "lane-durations.json"


def read_durations(workdir: Path) -> dict[str, float]:
    """Each lane's last duration in seconds (lane id → s); {} when there is no usable record."""
    try:
        data = json.loads((workdir / DURATIONS).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.debug("ignoring %s: %s", workdir / DURATIONS, exc)
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0}


def start_order(ids: Sequence[str], durations: dict[str, float]) -> list[str]:
    """``ids`` in the order to start them: never-timed lanes first (config order), then longest first."""
    position = {lane_id: i for i, lane_id in enumerate(ids)}
    return sorted(ids, key=lambda i: (i in durations, -durations.get(i, 0.0), position[i]))


def record_durations(workdir: Path, results: Iterable[LaneResult]) -> None:
    """Remember how long each lane that ran took, for the next run's start order (other lanes kept)."""
    ran = {r.lane: round(r.duration_s, 1) for r in results if r.status == LaneStatus.RAN and r.duration_s > 0}
    if not ran:
        return
    durations = read_durations(workdir) | ran
    try:
        write_text_atomic(workdir / DURATIONS, json.dumps(durations, indent=1, sort_keys=True) + "\n")
    except OSError as exc:  # only a hint for the next run: never a reason to fail this one
        log.warning("could not record lane durations in %s: %s", workdir / DURATIONS, exc)
