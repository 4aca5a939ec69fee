"""One predicted cell per locked package: what loading its wheel's binaries does in a lane.

A wheel is read once per platform (every binary, every slice: :mod:`archmatrix.audit`),
and what the cells need of it — each image's OS, architecture, links and
minimum macOS, and the audit's verdict per lane CPU — is kept in a small
:class:`WheelFacts`, cached on disk by the wheel's name, size and time, so a
second run reads JSON instead of disassembling. :func:`cell` is then a pure
function of those facts and the lane, the rules in the order a real import
meets them:

- ``no-wheel``: no wheel for the platform (pip would build from source);
- ``wrong-arch``: a binary without the lane's slice (an x86_64-only library in an arm64 wheel);
- ``import-error``: a binary whose minimum macOS is above the lane's (dyld refuses it);
- ``blas-load``: a BLAS/LAPACK/OpenMP/Fortran library linked from outside the wheel
  (a build machine's Homebrew path), or one in the lock without the lane's slice;
- ``illegal-instruction``: AVX/AVX2/FMA/AVX-512 code with no CPU dispatch, on a CPU that lacks it;
- ``skipped``: the audit cannot tell (an unreadable binary, a CPU probe it cannot tie to the code);
- ``pass`` otherwise (code the CPU lacks behind run-time dispatch passes, and says so).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..audit.image import version_text
from ..audit.predict import LaneTarget, Prediction, predict
from ..suite.outcomes import Outcome
from ..suite.result import CheckResult, write_json_atomic

if TYPE_CHECKING:
    from ..audit.report import BinaryAudit

# Bump when what is cached (or how it is judged) changes: old entries are then not read.
CACHE_VERSION = 2
MAX_FINDINGS = 5  # listed in a cell's evidence; the count says how many more

# BLAS/LAPACK, OpenMP and Fortran runtimes: the libraries whose failing to load is ``blas-load``.
RUNTIME_LIBS = re.compile(r"openblas|flexiblas|blis|mkl_|libmkl|armpl|blas|lapack|libgomp|libiomp|libomp|"
                          r"gfortran|quadmath", re.IGNORECASE)
# Where macOS itself keeps libraries every Mac has.
SYSTEM_PREFIXES = ("/usr/lib/", "/System/")
_RELATIVE = ("@rpath/", "@loader_path/", "@executable_path/")


@dataclass(frozen=True)
class ImageFacts:
    os: str
    arch: str
    needed: tuple[str, ...] = ()
    min_macos: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Verdict:
    """The audit's prediction (a :class:`~archmatrix.audit.predict.Prediction` value) on one CPU."""

    prediction: str
    reason: str = ""
    example: str = ""  # an instruction the CPU lacks, as the scan found it


@dataclass(frozen=True)
class BinaryFacts:
    path: str  # inside the wheel
    images: tuple[ImageFacts, ...] = ()
    error: str = ""
    verdicts: Mapping[str, Verdict] = field(default_factory=dict)  # target key → verdict


@dataclass(frozen=True)
class WheelFacts:
    wheel: str  # file name
    binaries: tuple[BinaryFacts, ...] = ()


def target_key(target: LaneTarget) -> str:
    """What a verdict depends on: the lane's OS, architecture and the extensions its CPU lacks."""
    return f"{target.os}/{target.arch}/{','.join(sorted(target.missing))}"


# --- reading wheels (the expensive part), cached -------------------------------------------------


def audit_wheel(path: Path, targets: Sequence[LaneTarget], cache_dir: Path | None = None) -> WheelFacts:
    """Read every binary of the wheel at ``path`` and judge it for every target (cached in ``cache_dir``)."""
    keys = {target_key(t): t for t in targets}
    cache_file = _cache_file(path, cache_dir) if cache_dir is not None else None
    cached = _load(cache_file) if cache_file is not None else None
    if cached is not None and _covers(cached, keys):
        return cached
    facts = _read_wheel(path, list(keys.values()))
    if cached is not None and len(cached.binaries) == len(facts.binaries):  # keep verdicts asked for before
        merged = (BinaryFacts(b.path, b.images, b.error, {**old.verdicts, **b.verdicts})
                  for b, old in zip(facts.binaries, cached.binaries, strict=True))
        facts = WheelFacts(facts.wheel, tuple(merged))
    if cache_file is not None:
        write_json_atomic(cache_file, _to_json(facts))
    return facts


def cached_wheel(path: Path, targets: Sequence[LaneTarget], cache_dir: Path) -> WheelFacts | None:
    """The cached reading of the wheel when it judged every target already, else None."""
    cache_file = _cache_file(path, cache_dir)
    cached = _load(cache_file) if cache_file is not None else None
    return cached if cached is not None and _covers(cached, {target_key(t) for t in targets}) else None


def _covers(facts: WheelFacts, keys: Iterable[str]) -> bool:
    return all(k in b.verdicts for b in facts.binaries if not b.error and b.images for k in keys)


def _read_wheel(path: Path, targets: Sequence[LaneTarget]) -> WheelFacts:
    from ..audit.binaries import NotAnEnvironment, ReadBudget, find
    from ..audit.report import audit_binary

    budget = ReadBudget()
    binaries = []
    try:
        archive: zipfile.ZipFile | None = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        archive = None  # find() says what is wrong with it
    with archive if archive is not None else contextlib.nullcontext():
        try:
            for found in find(path):
                binaries.append(_binary(audit_binary(found, budget, archive), targets))
        except NotAnEnvironment as exc:  # a damaged wheel: the cell cannot say it passes
            binaries.append(BinaryFacts(path.name, (), str(exc)))
    return WheelFacts(path.name, tuple(binaries))


def _binary(entry: BinaryAudit, targets: Sequence[LaneTarget]) -> BinaryFacts:
    """What the cells need of one read binary: its images and the audit's verdict per target."""
    images = tuple(ImageFacts(im.os, im.arch, tuple(im.needed), im.min_macos) for im in entry.images)
    verdicts: dict[str, Verdict] = {}
    if not entry.error and entry.images:
        package = entry.dist.name if entry.dist else None
        for t in targets:
            p = predict(entry.images, t, package)
            matching = [im for im in entry.images if im.os == t.os and im.arch == t.arch]
            example = ""
            if p.extensions and matching:
                example = matching[0].scan.examples.get(p.extensions[0], "")
            verdicts[target_key(t)] = Verdict(p.prediction.value, p.reason, example)
    return BinaryFacts(entry.path, images, entry.error, verdicts)


def _cache_file(path: Path, cache_dir: Path) -> Path | None:
    try:
        st = path.stat()
    except OSError:
        return None
    key = hashlib.sha256(json.dumps([CACHE_VERSION, path.name, st.st_size, st.st_mtime_ns]).encode())
    return cache_dir / f"{key.hexdigest()[:24]}.json"


def _to_json(facts: WheelFacts) -> dict[str, Any]:
    return {"version": CACHE_VERSION, "wheel": facts.wheel, "binaries": [
        {"path": b.path, "error": b.error,
         "images": [{"os": i.os, "arch": i.arch, "needed": list(i.needed),
                     "min_macos": list(i.min_macos) if i.min_macos else None} for i in b.images],
         "verdicts": {k: [v.prediction, v.reason, v.example] for k, v in b.verdicts.items()}}
        for b in facts.binaries]}


def _load(path: Path) -> WheelFacts | None:
    """A cached reading, or None when absent or not of this version (then the wheel is read again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != CACHE_VERSION:
            return None
        return WheelFacts(str(data["wheel"]), tuple(
            BinaryFacts(str(b["path"]),
                        tuple(ImageFacts(str(i["os"]), str(i["arch"]), tuple(map(str, i["needed"])),
                                         tuple(int(v) for v in i["min_macos"]) if i["min_macos"] else None)
                              for i in b["images"]),
                        str(b["error"]),
                        {str(k): Verdict(*(str(x) for x in v)) for k, v in b["verdicts"].items()})
            for b in data["binaries"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# --- the cell (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    outcome: Outcome
    binary: str
    slice: str
    reason: str
    example: str = ""


# The order a real import meets them: a binary that cannot load never reaches an instruction.
_ORDER = (Outcome.WRONG_ARCH, Outcome.IMPORT_ERROR, Outcome.BLAS_LOAD, Outcome.ILLEGAL_INSTRUCTION,
          Outcome.SKIPPED)


def library_index(wheels: Iterable[WheelFacts]) -> dict[str, set[tuple[str, str]]]:
    """Every binary's file name in the lane's wheels → the (OS, architecture) slices it has."""
    index: dict[str, set[tuple[str, str]]] = {}
    for w in wheels:
        for b in w.binaries:
            index.setdefault(Path(b.path).name, set()).update((i.os, i.arch) for i in b.images)
    return index


def _links(image: ImageFacts, target: LaneTarget, libs: Mapping[str, set[tuple[str, str]]]) -> list[str]:
    """Why the BLAS/OpenMP/Fortran libraries this image links may fail to load in the lane."""
    out = []
    for needed in image.needed:
        base = needed.rsplit("/", 1)[-1]
        if not RUNTIME_LIBS.search(base):
            continue
        have = libs.get(base)
        if have is not None and (target.os, target.arch) not in have:
            slices = ", ".join(sorted(a for _os, a in have)) or "no readable slice"
            out.append(f"links {needed}, which the lock ships only for {slices}")
        elif needed.startswith("/") and not needed.startswith(SYSTEM_PREFIXES) and have is None:
            if needed.startswith("/usr/local/") and target.arch != "x86_64":
                where = "an Intel Homebrew path (x86_64)"
            elif needed.startswith("/opt/homebrew/") and target.arch != "aarch64":
                where = "an Apple silicon Homebrew path (arm64)"
            else:
                where = "a path on the machine that built it"
            out.append(f"links {needed}, {where}, not shipped in the wheel")
        elif needed.startswith(_RELATIVE) and have is None and target.os == "macos":
            out.append(f"links {needed}, which no wheel of the lock provides")
    return out


def findings(wheel: WheelFacts, target: LaneTarget, macos_version: tuple[int, int] | None,
             libs: Mapping[str, set[tuple[str, str]]]) -> list[Finding]:
    """Everything that would go wrong loading the wheel's binaries in the lane, by binary."""
    key = target_key(target)
    want = "arm64" if target.arch == "aarch64" and target.os == "macos" else target.arch
    out: list[Finding] = []
    for b in wheel.binaries:
        if b.error or not b.images:
            out.append(Finding(Outcome.SKIPPED, b.path, "", f"unreadable: {b.error or 'no image'}"))
            continue
        verdict = b.verdicts.get(key)
        matching = [i for i in b.images if i.os == target.os and i.arch == target.arch]
        if (verdict is not None and verdict.prediction == Prediction.WRONG_ARCH.value) or not matching:
            out.append(Finding(Outcome.WRONG_ARCH, b.path, "", verdict.reason if verdict else
                               f"no {want} slice ({', '.join(sorted(i.arch for i in b.images))})"))
            continue
        image = matching[0]
        if target.os == "macos" and macos_version and image.min_macos and image.min_macos[:2] > macos_version:
            out.append(Finding(Outcome.IMPORT_ERROR, b.path, want,
                               f"built for macOS {version_text(image.min_macos)}, newer than the lane's "
                               f"macOS {macos_version[0]}.{macos_version[1]}: dyld refuses to load it"))
        out += [Finding(Outcome.BLAS_LOAD, b.path, want, why) for why in _links(image, target, libs)]
        if verdict is None:
            out.append(Finding(Outcome.SKIPPED, b.path, want, "not audited for this lane's CPU"))
        elif verdict.prediction == Prediction.ILLEGAL_INSTRUCTION.value:
            out.append(Finding(Outcome.ILLEGAL_INSTRUCTION, b.path, want, verdict.reason, verdict.example))
        elif verdict.prediction == Prediction.UNKNOWN.value:
            out.append(Finding(Outcome.SKIPPED, b.path, want, f"cannot tell: {verdict.reason}"))
    return out


def cell(package: str, version: str, wheel: WheelFacts | None, target: LaneTarget, *,
         macos_version: tuple[int, int] | None = None, libs: Mapping[str, set[tuple[str, str]]] | None = None,
         no_wheel_reason: str = "", platform: str = "") -> CheckResult:
    """The predicted ``wheel.<package>`` cell of one lane."""
    from packaging.utils import canonicalize_name

    check_id = f"wheel.{canonicalize_name(package)}"
    if wheel is None:
        missing = {"reason": f"no wheel of {package}=={version} for {platform}: pip builds it from source"}
        if no_wheel_reason:
            missing["pip"] = no_wheel_reason
        return CheckResult(check_id, Outcome.NO_WHEEL, predicted=True, metrics={"version": version},
                           message=f"predicted: {package}=={version} has no wheel for {platform}",
                           evidence=missing)
    found = findings(wheel, target, macos_version, libs if libs is not None else library_index([wheel]))
    evidence: dict[str, Any] = {"wheel": wheel.wheel, "binaries": len(wheel.binaries), "cpu": target.cpu}
    for outcome in _ORDER:
        hits = [f for f in found if f.outcome is outcome]
        if not hits:
            continue
        first = hits[0]
        evidence.update({"binary": first.binary, "slice": first.slice, "reason": first.reason})
        if first.example:
            evidence["instruction"] = first.example
        listed = [f"{f.outcome.value}: {f.binary}: {f.reason}" for f in found[:MAX_FINDINGS]]
        if len(found) > MAX_FINDINGS:
            listed.append(f"… {len(found) - MAX_FINDINGS} more")
        evidence["findings"] = listed
        what = "cannot tell" if outcome is Outcome.SKIPPED else outcome.value
        return CheckResult(check_id, outcome, predicted=True, metrics={"version": version}, evidence=evidence,
                           message=f"predicted {what}: {first.binary}: {first.reason}")
    key = target_key(target)
    guarded = [b.path for b in wheel.binaries
               if (v := b.verdicts.get(key)) is not None and v.prediction == Prediction.GUARDED.value]
    if not wheel.binaries:
        reason = "pure Python: no native code"
    else:
        reason = (f"{len(wheel.binaries)} binaries with the lane's slice, no code the CPU lacks outside "
                  "run-time dispatch")
        if guarded:
            reason += f" ({len(guarded)} select newer instructions at run time, e.g. {guarded[0]})"
    evidence["reason"] = reason
    return CheckResult(check_id, Outcome.PASS, predicted=True, metrics={"version": version},
                       evidence=evidence, message=f"predicted pass: {wheel.wheel}: {reason}")
