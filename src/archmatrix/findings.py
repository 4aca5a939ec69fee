"""Findings: what is wrong (or merely notable) about a process, from its facts.

Pure functions of the facts the suite records, so ``archmatrix doctor`` and
the lanes' warnings say the same thing and are unit-tested with injected
facts. Each finding names the problem and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from .hostfacts import normalise_arch
from .suite.result import LaneWarning

OPENMP_LINK = "https://github.com/joblib/threadpoolctl/blob/master/multiple_openmp.md"


@dataclass(frozen=True)
class Finding:
    id: str
    message: str
    hint: str = ""
    severity: str = "warning"  # "warning" (the lane still counts) or "problem" (doctor's red flag)


def diagnose(facts: Mapping[str, Any], lock: Mapping[str, str] | None = None) -> list[Finding]:
    out: list[Finding] = []
    machine = normalise_arch(str(facts.get("machine", "")))
    emulation = facts.get("emulation") or {}

    if facts.get("translated"):
        out.append(Finding(
            "translated",
            "this process is translated by Rosetta 2 (x86_64 code on Apple Silicon): no AVX, slower",
            "use an arm64 or universal2 Python (python.org installer, or Homebrew in /opt/homebrew) "
            "unless you mean to test the x86_64 build",
        ))
        if machine == "x86_64":
            out.append(Finding(
                "x86_64-python-on-arm64-mac",
                "the interpreter is x86_64 on an arm64 Mac: every package installs x86_64 wheels",
                "install an arm64 Python (python.org universal2, or `brew install python` with "
                "/opt/homebrew/bin first on PATH) and recreate the environment",
                "problem",
            ))
    if emulation.get("emulator"):
        model = f" with CPU model {emulation['cpu_model']}" if emulation.get("cpu_model") else ""
        out.append(Finding("emulated", f"this process is emulated by {emulation['emulator']}{model}"))
    elif facts.get("emulation_evidence"):
        out.append(Finding("emulated", "signs of emulation: " + "; ".join(facts["emulation_evidence"])))

    build = facts.get("numpy_build") or {}
    built_for = normalise_arch(str((build.get("host_machine") or {}).get("cpu", "")))
    if built_for and machine and built_for != machine:
        out.append(Finding(
            "numpy-foreign-build",
            f"numpy was built for {built_for} but runs on {machine}",
            "reinstall numpy for this platform: pip install --force-reinstall --no-cache-dir numpy",
            "problem",
        ))

    libraries = facts.get("libraries")
    loaded = libraries if isinstance(libraries, list) else []
    blas = [lib for lib in loaded if lib.get("user_api") == "blas"]
    # either what is loaded (threadpoolctl) or what numpy was built against says so
    if any(str(lib.get("internal_api", "")).lower() in ("reference", "netlib") for lib in blas) or \
            str((build.get("blas") or {}).get("name", "")).lower() in ("blas", "cblas", "reference"):
        out.append(Finding(
            "reference-blas",
            "the reference (unoptimised) BLAS is loaded: linear algebra will be slow",
            "install numpy/scipy wheels (they bundle OpenBLAS) or link an optimised BLAS",
        ))
    if isinstance(libraries, list):
        omp = sorted({str(lib.get("prefix") or lib.get("internal_api")) for lib in libraries
                      if lib.get("user_api") == "openmp"})
        if len(omp) > 1:
            out.append(Finding(
                "several-openmp",
                f"several OpenMP runtimes are loaded ({', '.join(omp)}): crashes or deadlocks may follow",
                f"install packages that share one OpenMP runtime; see {OPENMP_LINK}",
            ))
    for key, error in sorted((facts.get("errors") or {}).items()):
        out.append(Finding(f"facts-error:{key}", f"could not collect {key}: {error}", severity="problem"))

    packages = facts.get("packages")
    if lock and isinstance(packages, Mapping):
        differ = [f"{name} {have or 'missing'} (lock: {version})"
                  for name, have, version in lock_differences(lock, packages)]
        if differ:
            out.append(Finding(
                "lock-mismatch", "installed versions differ from the lock: " + ", ".join(differ),
                "rebuild the lane (delete .archmatrix/ to force it)",
            ))
    return out


def lock_differences(lock: Mapping[str, str], packages: Mapping[str, Any]
                     ) -> list[tuple[str, str | None, str]]:
    """Each locked package not installed as locked: ``(name in the lock, installed or None, locked)``.

    Names are compared by their PEP 503 form on both sides (lock keys are
    written by hand, and older lanes recorded names less normalised).
    """
    installed = {canonicalize_name(str(name)): version for name, version in packages.items()}
    out = []
    for name, version in lock.items():
        have = installed.get(canonicalize_name(name))
        if have != version:
            out.append((name, have, version))
    return out


def lane_warnings(facts: Mapping[str, Any], lock: Mapping[str, str] | None) -> list[LaneWarning]:
    return [LaneWarning(f.id, f.message, f.hint) for f in diagnose(facts, lock)]
