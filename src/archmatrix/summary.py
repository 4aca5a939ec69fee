"""Each lane's facts in the few words a matrix header shows (shared by every renderer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .suite.outcomes import Outcome
from .suite.result import LaneResult, LaneStatus

# (label, numpy feature names that count as "has it")
X86_SHOWN = (("AVX", ("AVX",)), ("AVX2", ("AVX2",)), ("FMA", ("FMA3",)), ("AVX-512", ("AVX512F",)))
ARM_SHOWN = (("NEON", ("NEON", "ASIMD")), ("SVE", ("SVE",)))

HEADER_ROWS = ("platform", "how", "python", "numpy", "scipy", "scikit-learn", "BLAS", "CPU", "lock")


@dataclass(frozen=True)
class LaneSummary:
    lane: str
    rows: Mapping[str, str]  # HEADER_ROWS → text
    total: int
    passed: int
    status_text: str  # "25/25 pass", "skipped: …", "infra-error: …"

    @property
    def ok(self) -> bool:
        return self.status_text.endswith("pass") and self.passed == self.total


def how_it_ran(lane: LaneResult) -> str:
    facts = lane.facts
    emu = facts.get("emulation") or {}
    runner_facts = facts.get("runner") or {}
    parts = []
    # only a container lane's runner records the platform it was started with
    if runner_facts.get("platform"):
        parts.append(f"Docker {runner_facts['platform']}")
    if facts.get("translated"):
        parts.append("Rosetta 2")
    if emu.get("emulator"):
        model = emu.get("cpu_model")
        parts.append(f"QEMU{' ' + model if model else ''}")
    if lane.predicted:
        return "predicted, not run"
    if not emu.get("emulator") and not facts.get("translated"):
        parts.append("native")
    return " · ".join(parts)


def blas_text(facts: Mapping[str, Any]) -> str:
    libs = facts.get("libraries")
    if not isinstance(libs, list):
        return "?"
    seen = []
    for lib in libs:
        if lib.get("user_api") != "blas":
            continue
        text = f"{lib.get('internal_api')} {lib.get('version') or ''}".strip()
        if lib.get("architecture"):
            text += f" ({lib['architecture']})"
        if text not in seen:
            seen.append(text)
    return ", ".join(seen) or "none loaded"


def cpu_text(facts: Mapping[str, Any]) -> str:
    cpu = facts.get("cpu") or {}
    present = set(cpu.get("present") or [])
    if not present and not cpu.get("absent"):
        return "?"
    machine = str(facts.get("machine", "")).lower()
    shown = ARM_SHOWN if machine in ("aarch64", "arm64") else X86_SHOWN
    return ", ".join(
        f"{label} {'yes' if any(n in present for n in names) else 'no'}" for label, names in shown
    )


def lock_text(lane: LaneResult, lock: Mapping[str, str]) -> str:
    packages = lane.facts.get("packages")
    if not isinstance(packages, Mapping) or not lock:
        return "?"
    from .findings import lock_differences

    differ = [f"{name} {'missing' if have is None else have}"
              for name, have, _ in lock_differences(lock, packages)]
    return "matches" if not differ else "DIFFERS: " + ", ".join(differ)


def summarise(lane: LaneResult, lock: Mapping[str, str]) -> LaneSummary:
    facts = lane.facts
    raw_packages = facts.get("packages")
    packages: Mapping[str, str] = raw_packages if isinstance(raw_packages, Mapping) else {}
    python = (facts.get("python") or {}).get("version", "?")
    rows = {
        "platform": f"{facts.get('os', '?')} {facts.get('machine', '?')}" if facts else "?",
        "how": how_it_ran(lane) if facts else "?",
        "python": str(python),
        "numpy": packages.get("numpy", "?"),
        "scipy": packages.get("scipy", "?"),
        "scikit-learn": packages.get("scikit-learn", "?"),
        "BLAS": blas_text(facts),
        "CPU": cpu_text(facts),
        "lock": lock_text(lane, lock),
    }
    total = len(lane.checks)
    passed = sum(1 for c in lane.checks if c.outcome is Outcome.PASS)
    if lane.predicted:  # never "n/n pass": nothing ran
        failed = total - passed - sum(1 for c in lane.checks if c.outcome is Outcome.SKIPPED)
        status = f"{passed}/{total} predicted pass (not run)"
        status += f", {failed} predicted to fail" if failed else ""
    elif lane.status == LaneStatus.SKIPPED:
        status = f"skipped: {lane.reason}"
    elif lane.status == LaneStatus.INFRA_ERROR:
        status = f"infra-error: {lane.reason}"
    elif lane.status == LaneStatus.INTERRUPTED:
        status = f"interrupted after {total} checks"
    else:
        failed = total - passed - sum(1 for c in lane.checks if c.outcome is Outcome.SKIPPED)
        status = f"{passed}/{total} pass" if not failed else f"{passed}/{total} pass, {failed} failed"
    return LaneSummary(lane.lane, rows, total, passed, status)
