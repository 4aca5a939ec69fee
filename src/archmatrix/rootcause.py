"""Root causes across cells: a cell reports the outcome that explains it, its symptom kept as evidence.

Applied once, where a lane's result is finished on the host
(:func:`archmatrix.runners.common.finish`), so the result file, the matrix,
the badges and the annotations all show the root:

- **no-wheel via a dependency.** With jax locked and no jaxlib wheel for
  linux/arm64, ``wheel.jaxlib`` is ``no-wheel`` and every jax check fails with
  ``import-error: jax requires jaxlib to be installed``. An ``import-error``
  (or ``blas-load``) whose missing module belongs to a distribution that is
  ``no-wheel`` in the same lane becomes ``no-wheel``, "via <distribution>".
  Modules map to distributions through the lane's own facts (``modules``:
  each installed distribution's top-level names) and, for a distribution
  that could not be installed, the package-name rule (``jaxlib`` →
  ``jaxlib``, ``scipy_openblas32`` → ``scipy-openblas32``).
- **the library behind an illegal instruction.** The lane records which
  extension modules were loaded when a check died of SIGILL (faulthandler's
  list, :mod:`archmatrix.suite.lane.executing`); here the audit reads the
  instructions of those files (the same bytes: size and digest checked) and
  names the one that uses an instruction-set extension the lane's CPU lacks
  without a CPU check. Several such files are listed as candidates; none
  readable, or none guilty, is said as such. A name is never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .suite.lane.executing import fingerprint
from .suite.lane.facts import canonical_name
from .suite.outcomes import Outcome
from .suite.result import CheckResult, LaneResult

NO_MODULE = re.compile(r"No module named '([\w.]+)'")
FOLLOWS = (Outcome.IMPORT_ERROR, Outcome.BLAS_LOAD)


def apply(result: LaneResult, *, scan: Scanner | None = None, sites: Sequence[Path] = (),
          baseline_of: BaselineReader | None = None) -> LaneResult:
    """``result`` with every root cause found (a new result; the one given is not changed).

    ``scan`` reads a binary's instructions (default: the audit's scanner);
    tests inject one. ``sites``: the lane's packages as staged on this host,
    where a package's stated baseline is read.
    """
    result = no_wheel_roots(result)
    result = attribute_illegal_instructions(result, scan=scan or audit_scan)
    return below_baseline(result, sites, baseline_of or stated_baseline)


# --- a CPU below a package's baseline ------------------------------------------------------------

BaselineReader = Callable[[Path], str]


def stated_baseline(package_dir: Path, limit: int = 40) -> str:
    """The x86-64 level a package's binaries say they are built for (numpy: "x86-64-v2"), or ''.

    Read from the binaries' own text by the audit (numpy states its baseline
    in its core module); the largest binaries first, at most ``limit``.
    """
    from .audit import binaries, isa
    from .audit.image import BadBinary

    candidates = sorted((p for p in package_dir.rglob("*.so") if p.is_file()),
                        key=lambda p: p.stat().st_size, reverse=True)[:limit]
    for path in candidates:
        try:
            images = binaries.images(path.read_bytes())
        except (OSError, BadBinary):
            continue
        if images and (level := isa.scan(images[0]).baseline):
            return level
    return ""


def below_baseline(result: LaneResult, sites: Sequence[Path], baseline_of: BaselineReader) -> LaneResult:
    """An ``import.<pkg>`` that died of SIGILL on a CPU below the package's stated baseline says so.

    The outcome stays ``illegal-instruction``; the message gains "this CPU is
    below numpy's baseline x86-64-v2", when the package's binaries state a
    level and the lane's CPU (its QEMU model) lacks what that level needs.
    """
    from .audit.cpus import LEVEL_NEEDS

    missing = lane_missing(result.facts) or frozenset()
    if not missing or not sites:
        return result
    checks = []
    for check in result.checks:
        module = check.id.removeprefix("import.")
        if check.outcome is Outcome.ILLEGAL_INSTRUCTION and module != check.id:
            package = next((site / module for site in sites if (site / module).is_dir()), None)
            level = baseline_of(package) if package is not None else ""
            lacking = LEVEL_NEEDS.get(level, frozenset()) & missing
            if lacking:
                check = replace(check, message=(
                    f"this CPU is below {module}'s baseline {level} (it lacks {', '.join(sorted(lacking))}): "
                    f"{module}'s wheels need a {level} CPU, or a build of {module} for an older baseline; "
                    f"{check.message}"))
        checks.append(check)
    return replace(result, checks=checks)


# --- no-wheel via a dependency -----------------------------------------------------------------


def missing_modules(check: CheckResult) -> list[str]:
    """The modules a failed check could not find: from the exception chain, else from the text."""
    exception = check.evidence.get("exception") or {}
    names = [str(e["name"]) for e in exception.get("chain") or ()
             if isinstance(e, dict) and e.get("type") == "ModuleNotFoundError" and e.get("name")]
    if exception.get("type") == "ModuleNotFoundError" and not names:
        names += NO_MODULE.findall(str(exception.get("message") or ""))
    texts = (check.message, exception.get("message"), check.evidence.get("traceback"),
             check.evidence.get("stderr_tail"))
    for text in texts:
        names += NO_MODULE.findall(str(text or ""))
    return list(dict.fromkeys(names))


def distributions_of(module: str, modules_fact: Mapping[str, Iterable[str]]) -> list[str]:
    """The distributions (canonical names) that provide ``module``'s top-level name.

    An installed distribution says so in the lane's facts; one that could not
    be installed is known only by the package-name rule.
    """
    top = module.partition(".")[0]
    found = [dist for dist, tops in modules_fact.items() if top in set(tops)]
    return list(dict.fromkeys([*found, canonical_name(top)]))


def no_wheel_roots(result: LaneResult) -> LaneResult:
    """Import failures caused by a dependency without a wheel become ``no-wheel`` via that dependency."""
    no_wheel = {c.id.removeprefix("wheel."): c for c in result.checks
                if c.id.startswith("wheel.") and c.outcome is Outcome.NO_WHEEL}
    if not no_wheel:
        return result
    modules_fact = result.facts.get("modules")
    fact: Mapping[str, Iterable[str]] = modules_fact if isinstance(modules_fact, dict) else {}
    checks = []
    for check in result.checks:
        root = _no_wheel_root(check, no_wheel, fact) if check.outcome in FOLLOWS else None
        if root is None:
            checks.append(check)
            continue
        dist, row = root
        evidence = {**check.evidence, "symptom": {"outcome": check.outcome.value, "message": check.message},
                    "root_cause": {"check": row.id, "distribution": dist}}
        checks.append(replace(check, outcome=Outcome.NO_WHEEL, message=f"via {dist}: {row.message}",
                              evidence=evidence))
    return replace(result, checks=checks)


def _no_wheel_root(check: CheckResult, no_wheel: Mapping[str, CheckResult],
                   fact: Mapping[str, Iterable[str]]) -> tuple[str, CheckResult] | None:
    for module in missing_modules(check):
        for dist in distributions_of(module, fact):
            if dist in no_wheel:
                return dist, no_wheel[dist]
    return None


# --- the library behind an illegal instruction --------------------------------------------------


@dataclass(frozen=True)
class BinaryScan:
    """What the audit read in one binary: the extensions its code uses, and whether it dispatches."""

    extensions: tuple[str, ...]
    guarded: bool
    example: Mapping[str, str]  # extension → an instruction, "0x1139: vpaddd ymm0, …"


Scanner = Callable[[Path], "BinaryScan | None"]

# numpy's CPU feature names (the lane's facts) for the audit's extension names
_NUMPY_FEATURE = {"AVX": "AVX", "AVX2": "AVX2", "FMA": "FMA3", "F16C": "F16C", "BMI": "BMI2",
                  "AVX-512": "AVX512F", "SVE": "SVE", "SVE2": "SVE2"}


def lane_missing(facts: Mapping[str, Any]) -> frozenset[str] | None:
    """The audit's extensions the lane's CPU lacks; None when the facts do not say."""
    from .audit.cpus import QEMU_MODEL_MISSING

    model = (facts.get("emulation") or {}).get("cpu_model")
    if model in QEMU_MODEL_MISSING:
        return QEMU_MODEL_MISSING[str(model)]
    cpu = facts.get("cpu") or {}
    absent, present = set(cpu.get("absent") or ()), set(cpu.get("present") or ())
    if not absent and not present:
        return None
    return frozenset(ext for ext, feature in _NUMPY_FEATURE.items() if feature in absent)


def audit_scan(path: Path) -> BinaryScan | None:
    """The audit's reading of ``path`` (the image for the lane's architecture: the first one)."""
    from .audit import binaries, isa
    from .audit.image import BadBinary

    try:
        images = binaries.images(path.read_bytes())
    except (OSError, BadBinary):
        return None
    if not images:
        return None
    result = isa.scan(images[0])
    # guarded as the audit predicts it: dispatch machinery, or a probe with the code confined
    guarded = all(result.guard_status(e)[0] == isa.GUARDED for e in result.extensions)
    return BinaryScan(tuple(result.sorted_extensions()), guarded, dict(result.examples))


def attribute_illegal_instructions(result: LaneResult, *, scan: Scanner = audit_scan) -> LaneResult:
    """Name the binary and the instruction-set extension behind each ``illegal-instruction`` cell."""
    if not any(c.outcome is Outcome.ILLEGAL_INSTRUCTION and "loaded_extensions" in c.evidence
               for c in result.checks):
        return result
    missing = lane_missing(result.facts)
    memo: dict[str, BinaryScan | None] = {}
    checks = []
    for check in result.checks:
        if check.outcome is not Outcome.ILLEGAL_INSTRUCTION or "loaded_extensions" not in check.evidence:
            checks.append(check)
            continue
        checks.append(_attribute(check, missing, scan, memo))
    return replace(result, checks=checks)


@dataclass(frozen=True)
class _Suspect:
    module: str
    path: str
    extensions: tuple[str, ...]
    example: str


def _attribute(check: CheckResult, missing: frozenset[str] | None, scan: Scanner,
               memo: dict[str, BinaryScan | None]) -> CheckResult:
    loaded = [e for e in check.evidence.get("loaded_extensions") or () if isinstance(e, dict)]
    evidence = {k: v for k, v in check.evidence.items() if k != "loaded_extensions"}
    unreadable: list[str] = []
    suspects: list[_Suspect] = []
    # the check's own imports first; the inherited ones only if none of those is guilty
    for group in ([e for e in loaded if e.get("new")], [e for e in loaded if not e.get("new")]):
        for entry in group:
            found = _suspect(entry, missing, scan, memo, unreadable)
            if found is not None:
                suspects.append(found)
        if suspects:
            break
    attribution: dict[str, Any] = {"loaded": len(loaded), "scanned": len(memo)}
    if missing is None:
        attribution["cpu"] = "the lane's CPU features are unknown: every unguarded extension counts"
    if len(suspects) == 1:
        (one,) = suspects
        what = "/".join(one.extensions)
        sentence = f"{what} in {Path(one.path).name}, not guarded by a CPU check"
        attribution.update(binary=one.path, module=one.module, extensions=list(one.extensions),
                           example=one.example)
    elif suspects:
        sentence = "one of: " + "; ".join(f"{'/'.join(s.extensions)} in {Path(s.path).name}"
                                          for s in suspects)
        attribution["candidates"] = [{"binary": s.path, "module": s.module, "extensions": list(s.extensions)}
                                     for s in suspects]
    else:
        sentence = "the library could not be named: " + (
            f"{len(unreadable)} of the loaded extension modules could not be read on the host, "
            "and none of the others uses an instruction this CPU lacks without a CPU check"
            if unreadable else
            "no loaded extension module uses an instruction this CPU lacks without a CPU check "
            "(the instruction may be in a library they load, or JIT-compiled)")
        if unreadable:
            attribution["unreadable"] = unreadable[:20]
    attribution["sentence"] = sentence
    evidence["attribution"] = attribution
    message = f"{check.message}: {sentence}" if check.message else sentence
    return replace(check, message=message, evidence=evidence)


def _suspect(entry: Mapping[str, Any], missing: frozenset[str] | None, scan: Scanner,
             memo: dict[str, BinaryScan | None], unreadable: list[str]) -> _Suspect | None:
    path, module = entry.get("path"), str(entry.get("module") or "")
    if not path:
        unreadable.append(module)
        return None
    if path not in memo:
        # the lane's file, read on the host only if it is the very same bytes
        same = fingerprint(path) == {"size": entry.get("size"), "sha256_head": entry.get("sha256_head")}
        memo[path] = scan(Path(path)) if same else None
    found = memo[path]
    if found is None:
        unreadable.append(module)
        return None
    if found.guarded:
        return None
    needed = tuple(e for e in found.extensions if missing is None or e in missing)
    if not needed:
        return None
    return _Suspect(module, path, needed, str(found.example.get(needed[0], "")))
