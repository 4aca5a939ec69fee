"""Lane facts: what this process is and what it really loaded.

Two halves. :func:`base_facts` uses only the standard library and is safe to
call in the suite's supervisor. :func:`library_facts` imports numpy, scipy,
scikit-learn and threadpoolctl, so the supervisor runs it in a forked child
like any check: a crash there costs the facts, never the lane.

CPU features come from numpy's CPUID-based table, never from /proc/cpuinfo:
qemu shows the host's /proc/cpuinfo to x86 guests (docs/lanes.md). The two
disagreeing is itself evidence of emulation, and is recorded as such.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import struct
import sys
import sysconfig
from typing import Any

# Features the matrix shows, by architecture family (numpy's names).
X86_FEATURES = ("SSE42", "AVX", "F16C", "FMA3", "AVX2", "BMI2", "AVX512F", "AVX512_SKX")
ARM_FEATURES = ("NEON", "ASIMD", "ASIMDHP", "ASIMDDP", "SVE", "SVE2")

# /proc/cpuinfo flag → numpy feature name, for the emulation cross-check.
_CPUINFO_TO_NUMPY = {"avx": "AVX", "avx2": "AVX2", "fma": "FMA3", "avx512f": "AVX512F"}


def proc_translated() -> bool | None:
    """macOS: is this process translated by Rosetta 2? (sysctl.proc_translated)

    Through ctypes rather than the ``sysctl`` command, so nothing is exec'd.
    None where the question does not apply or cannot be asked.
    """
    if sys.platform != "darwin":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.dylib")
        value = ctypes.c_int(0)
        size = ctypes.c_size_t(ctypes.sizeof(value))
        rc = libc.sysctlbyname(b"sysctl.proc_translated", ctypes.byref(value), ctypes.byref(size), None, 0)
    except (OSError, AttributeError):
        return None
    if rc != 0:
        return False  # the sysctl does not exist on Intel Macs: not translated
    return value.value == 1


def base_facts(emulator: str | None = None, cpu_model: str | None = None) -> dict[str, Any]:
    """Stdlib-only facts. ``emulator``/``cpu_model`` are what the runner says it used."""
    libc_name, libc_version = platform.libc_ver()
    return {
        "os": platform.system(),
        "os_release": platform.release(),
        "mac_ver": platform.mac_ver()[0] or None,
        "libc": f"{libc_name} {libc_version}".strip() or None,
        "machine": platform.machine(),
        "platform_tag": sysconfig.get_platform(),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "prefix": sys.prefix,
            "bits": struct.calcsize("P") * 8,
        },
        "cpu_count": os.cpu_count(),
        "translated": proc_translated(),
        "emulation": {"emulator": emulator, "cpu_model": cpu_model},
    }


def cpu_features() -> dict[str, Any]:
    """numpy's CPUID view: the features present, the build baseline and dispatch."""
    try:
        from numpy._core._multiarray_umath import __cpu_baseline__ as baseline
        from numpy._core._multiarray_umath import __cpu_dispatch__ as dispatch
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_baseline__ as baseline  # type: ignore[no-redef]
        from numpy.core._multiarray_umath import __cpu_dispatch__ as dispatch  # type: ignore[no-redef]
        from numpy.core._multiarray_umath import __cpu_features__ as features  # type: ignore[no-redef]
    return {
        "source": "numpy CPUID",
        "present": sorted(k for k, v in features.items() if v),
        "absent": sorted(k for k, v in features.items() if not v),
        "baseline": list(baseline),
        "dispatch": list(dispatch),
    }


def cpuinfo_flags(text: str | None = None) -> set[str]:
    """Flags /proc/cpuinfo claims (only used to detect emulation, never as truth)."""
    if text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def emulation_evidence(
    machine: str, present: set[str], cpuinfo_text: str | None = None
) -> list[str]:
    """Signs that this process runs emulated, from facts the process can see."""
    evidence = []
    text = cpuinfo_text
    if text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            text = ""
    is_arm = machine.lower() in ("aarch64", "arm64")
    if is_arm and ("GenuineIntel" in text or "AuthenticAMD" in text):
        evidence.append(f"/proc/cpuinfo describes an x86 CPU but the process is {machine}")
    if not is_arm and present:
        flags = cpuinfo_flags(text)
        hidden = [feat for flag, feat in _CPUINFO_TO_NUMPY.items() if flag in flags and feat not in present]
        if hidden:
            evidence.append(
                "/proc/cpuinfo lists " + ", ".join(hidden) + " but CPUID does not report them"
            )
    return evidence


def numpy_build() -> dict[str, Any]:
    """numpy's build configuration: the machine it was built for vs this one."""
    import numpy

    try:
        config = numpy.show_config(mode="dicts")
    except TypeError:  # numpy < 1.26 has no mode=
        return {"available": False}
    machine = config.get("Machine Information", {})
    deps = config.get("Build Dependencies", {})
    simd = config.get("SIMD Extensions", {})
    build = machine.get("build", {})
    host = machine.get("host", {})
    return {
        "build_machine": build,
        "host_machine": host,
        "cross_compiled": bool(machine.get("cross-compiled", False)) or build.get("cpu") != host.get("cpu"),
        "blas": {k: deps.get("blas", {}).get(k) for k in ("name", "version", "openblas configuration")},
        "lapack": {k: deps.get("lapack", {}).get(k) for k in ("name", "version")},
        "simd_baseline": simd.get("baseline"),
        "simd_not_found": simd.get("not found"),
    }


_NAME_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """A distribution's PEP 503 name: ``packaging.utils.canonicalize_name``'s rule, in the stdlib.

    The host side uses packaging's own function; ``tests/unit/test_names.py``
    checks that the two agree.
    """
    return _NAME_SEPARATORS.sub("-", name).lower()


def installed_packages() -> dict[str, str]:
    """Exact versions of every distribution this interpreter can import."""
    out: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[canonical_name(name)] = dist.version
    return dict(sorted(out.items()))


def top_level_modules() -> dict[str, list[str]]:
    """Each distribution's top-level import names (``scikit-learn`` → ``sklearn``), by canonical name.

    The host maps a check's missing module to the distribution that provides
    it (:mod:`archmatrix.rootcause`); the names differ too often to guess.
    """
    out: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            out.setdefault(canonical_name(dist), set()).add(module)
    return {dist: sorted(modules) for dist, modules in sorted(out.items())}


def not_installed(package: str) -> bool:
    """``package`` is not in this environment at all (as opposed to there and failing to import)."""
    try:
        return importlib.util.find_spec(package) is None
    except (ImportError, ValueError):
        return False


def library_facts(machine: str) -> dict[str, Any]:
    """Facts that need numpy and friends; each part guarded so one failure is recorded, not fatal."""
    facts: dict[str, Any] = {"errors": {}}

    def attempt(key: str, func: Any, needs: str = "") -> None:
        try:
            facts[key] = func()
        except ModuleNotFoundError as exc:
            # a package the lock does not have (a project's own tests need no numpy): no fact, no error
            if not (needs and not_installed(needs)):
                facts["errors"][key] = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # recorded: a missing fact is information too
            facts["errors"][key] = f"{type(exc).__name__}: {exc}"

    attempt("packages", installed_packages)
    attempt("modules", top_level_modules)
    attempt("cpu", cpu_features, "numpy")
    attempt("numpy_build", numpy_build, "numpy")
    # Import the stack first so threadpoolctl sees every library it loads.
    for module in ("numpy.linalg", "scipy.linalg", "sklearn.linear_model"):
        attempt(f"import:{module}", lambda m=module: bool(importlib.import_module(m)), module.split(".")[0])
        facts.pop(f"import:{module}", None)
    from ..checks.blas import loaded_libraries

    attempt("libraries", loaded_libraries, "threadpoolctl")
    present = set(facts.get("cpu", {}).get("present", []))
    facts["emulation_evidence"] = emulation_evidence(machine, present)
    return facts
