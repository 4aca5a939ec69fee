"""The audit as a pipeline of plain functions: find binaries → read each → choose lanes → predict.

Binaries are read one at a time and their bytes dropped after the scan, so
the audit of a large environment holds one binary in memory, not all.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .binaries import DistInfo, Found, ReadBudget, find, images
from .image import BadBinary, version_text
from .isa import IsaScan, scan
from .macho import slice_name
from .predict import LanePrediction, LaneTarget, Prediction, predict

SCHEMA = "archmatrix/audit"
SCHEMA_VERSION = 1

# Libraries whose loading is the lane outcome ``blas-load`` when it fails:
# BLAS/LAPACK, OpenMP runtimes, the Fortran runtime OpenBLAS needs.
_RUNTIME_LIBS = re.compile(
    r"openblas|flexiblas|blis|mkl_|libmkl|armpl|blas|lapack|accelerate|veclib|"
    r"libgomp|libiomp|libomp|gfortran|quadmath", re.IGNORECASE)


@dataclass
class ImageAudit:
    """One image of a binary (ELF file, or one slice of a Mach-O file)."""

    format: str
    os: str
    arch: str
    needed: list[str]
    glibc: tuple[int, ...] | None
    min_macos: tuple[int, ...] | None
    scan: IsaScan

    @property
    def links(self) -> list[str]:
        """The BLAS/LAPACK/OpenMP/Fortran runtime libraries it loads (basenames)."""
        return [Path(n).name for n in self.needed if _RUNTIME_LIBS.search(Path(n).name)]

    @property
    def arch_name(self) -> str:
        return slice_name(self.arch) if self.format == "macho" else self.arch

    def to_dict(self) -> dict[str, Any]:
        s = self.scan
        return {
            "format": self.format, "os": self.os, "arch": self.arch,
            "glibc": version_text(self.glibc) or None, "min_macos": version_text(self.min_macos) or None,
            "needed": self.needed, "links": self.links,
            "extensions": {e: s.extensions[e] for e in s.sorted_extensions()},
            "examples": {e: s.examples[e] for e in s.sorted_extensions()},
            "guarded": s.guarded, "guards": s.guards, "hints": s.hints,
            # per extension: guarded | unknown | unguarded, and the evidence
            "dispatch": {e: dict(zip(("status", "evidence"), s.guard_status(e), strict=True))
                         for e in s.sorted_extensions()},
            "baseline": s.baseline or None,
            "scan_complete": s.complete, "instructions_decoded": s.decoded,
        }


@dataclass
class BinaryAudit:
    root: str  # the directory, site-packages or wheel it was found in
    path: str  # inside it
    dist: DistInfo | None
    images: list[ImageAudit] = field(default_factory=list)
    predictions: dict[str, LanePrediction] = field(default_factory=dict)
    error: str = ""  # unreadable binary

    @property
    def platforms(self) -> set[tuple[str, str]]:
        return {(im.os, im.arch) for im in self.images}

    def tag_problems(self) -> list[str]:
        """Needing a newer glibc/macOS than the wheel tag promises breaks where pip installs it."""
        out: list[str] = []
        if self.dist is None:
            return out
        tag_glibc, tag_macos = self.dist.manylinux_glibc(), self.dist.macos_min()
        for im in self.images:
            # macOS on Apple silicon starts at 11.0: a universal2 wheel tagged
            # macosx_10_9 promises 10.9 for its x86_64 slice only
            floor = max(tag_macos, (11, 0)) if tag_macos and im.arch == "aarch64" else tag_macos
            if im.glibc and tag_glibc and im.glibc[:2] > tag_glibc:
                out.append(f"needs GLIBC_{version_text(im.glibc)} but is tagged manylinux_"
                           f"{tag_glibc[0]}_{tag_glibc[1]}")
            if im.min_macos and tag_macos and floor and im.min_macos[:2] > floor:
                out.append(f"{im.arch_name} slice needs macOS {version_text(im.min_macos)} but is tagged "
                           f"macosx_{tag_macos[0]}_{tag_macos[1]}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root, "path": self.path,
            "package": self.dist.name if self.dist else None,
            "version": self.dist.version if self.dist else None,
            "wheel_tags": list(self.dist.tags) if self.dist else [],
            "error": self.error or None,
            "images": [im.to_dict() for im in self.images],
            "tag_problems": self.tag_problems(),
            "predictions": {lane: p.to_dict() for lane, p in self.predictions.items()},
        }


@dataclass
class AuditReport:
    paths: list[str]
    lanes: list[LaneTarget]
    binaries: list[BinaryAudit]
    duration_s: float = 0.0

    def lane_prediction(self, lane_id: str) -> Prediction:
        """The worst prediction over every binary: what the lane as a whole should show."""
        worst = Prediction.PASS
        for b in self.binaries:
            p = b.predictions.get(lane_id)
            if p is not None and p.prediction.severity > worst.severity:
                worst = p.prediction
        return worst

    def counts(self, lane_id: str) -> Counter[Prediction]:
        return Counter(b.predictions[lane_id].prediction for b in self.binaries if lane_id in b.predictions)

    @property
    def failed(self) -> bool:
        return any(self.lane_prediction(lane.id).failed for lane in self.lanes)

    @property
    def unreadable(self) -> list[BinaryAudit]:
        return [b for b in self.binaries if b.error]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "paths": self.paths,
            "duration_s": round(self.duration_s, 3),
            "lanes": [
                {"id": ln.id, "os": ln.os, "arch": ln.arch, "cpu": ln.cpu, "missing": sorted(ln.missing),
                 "prediction": self.lane_prediction(ln.id).value,
                 "counts": {p.value: n for p, n in sorted(self.counts(ln.id).items(),
                                                          key=lambda x: x[0].severity)}}
                for ln in self.lanes
            ],
            "binaries": [b.to_dict() for b in self.binaries],
        }


def audit_binary(found: Found, budget: ReadBudget | None = None, archive: Any = None) -> BinaryAudit:
    """Read and scan one binary (``archive``: its wheel, already open). A corrupt file becomes an error
    entry, never an exception."""
    entry = BinaryAudit(root=found.root, path=found.path or Path(found.root).name, dist=found.dist)
    try:
        parsed = images(found.read(budget, archive))
        entry.images = [ImageAudit(im.format, im.os, im.arch, im.needed, im.glibc, im.min_macos, scan(im))
                        for im in parsed]
    except (BadBinary, OSError) as exc:
        entry.error = str(exc) or type(exc).__name__
    except MemoryError:
        entry.error = "too large to read into memory"
    except Exception as exc:  # hostile bytes: one binary's surprise must not lose the whole audit
        entry.error = f"{type(exc).__name__} while reading it: {exc}"
    if entry.error:
        entry.images = []
    return entry


def choose_lanes(all_lanes: Sequence[LaneTarget], binaries: Sequence[BinaryAudit],
                 requested: Sequence[str] | None = None) -> list[LaneTarget]:
    """The lanes asked for; else those the environment is built for.

    A site-packages is staged for one platform: predicting its x86-64 ELF
    files on macOS arm64 says nothing. So by default a lane is audited when
    its (OS, arch) is one that at least half of the binaries have; a minority
    of binaries of another architecture then shows up as ``wrong-arch``.
    """
    if requested:
        by_id = {ln.id: ln for ln in all_lanes}
        return [by_id[i] for i in requested]
    usable = [b for b in binaries if b.images]
    if not usable:
        return list(all_lanes)
    votes = Counter(p for b in usable for p in b.platforms)
    majority = {p for p, n in votes.items() if 2 * n >= len(usable)}
    chosen = [ln for ln in all_lanes if (ln.os, ln.arch) in majority]
    return chosen or list(all_lanes)


def apply_predictions(binaries: Iterable[BinaryAudit], lanes: Sequence[LaneTarget]) -> None:
    for b in binaries:
        if b.error or not b.images:  # nothing read: the audit cannot say it passes
            why = LanePrediction(Prediction.UNKNOWN, f"unreadable: {b.error or 'no image'}")
            b.predictions = {lane.id: why for lane in lanes}
            continue
        package = b.dist.name if b.dist else None
        b.predictions = {lane.id: predict(b.images, lane, package) for lane in lanes}


def audit(paths: Sequence[Path], lanes: Sequence[LaneTarget], requested: Sequence[str] | None = None,
          *, now: Any = time.perf_counter) -> AuditReport:
    """Audit every binary under ``paths`` for ``lanes`` (or the ones the environment is built for)."""
    started = now()
    binaries: list[BinaryAudit] = []
    budget = ReadBudget()
    for path in paths:
        binaries.extend(audit_binary(found, budget) for found in find(path))
    chosen = choose_lanes(lanes, binaries, requested)
    apply_predictions(binaries, chosen)
    return AuditReport([str(p) for p in paths], chosen, binaries, now() - started)
