"""``archmatrix doctor``: an interpreter's facts in human form, and what is wrong with them.

The facts come from the lane-side suite (``python -m archmatrix.suite
--facts-only``) run by the interpreter in question, so the doctor sees what
a lane would see, and the findings are the same pure function the lanes'
warnings use.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .command import CommandError, run
from .errors import ExitCode, InfraError
from .findings import Finding, diagnose
from .summary import blas_text


class DoctorError(InfraError):
    """The interpreter could not be asked for its facts."""

    def report(self) -> str:
        return f"archmatrix doctor: {self}"


def collect(python: str, workdir: Path) -> dict[str, Any]:
    """Ask ``python`` for its facts, with a staged copy of the suite on its path."""
    from .staging.suite import stage_suite

    suite_root = stage_suite(workdir)
    env = {**os.environ, "PYTHONPATH": str(suite_root)}
    try:
        out = run([python, "-m", "archmatrix.suite", "--facts-only"], env=env, timeout=300).stdout
        data: dict[str, Any] = json.loads(out)
    except CommandError as exc:
        raise DoctorError(f"could not ask {python} for its facts: {exc}\n{exc.tail()}") from None
    except ValueError as exc:
        raise DoctorError(f"{python} printed facts that are not JSON ({exc})") from None
    return data


def human(facts: Mapping[str, Any], findings: list[Finding]) -> str:
    py = facts.get("python") or {}
    cpu = facts.get("cpu") or {}
    build = facts.get("numpy_build") or {}
    packages = facts.get("packages") or {}
    emu = (facts.get("emulation") or {}).get("emulator")
    emulated = emu or ("signs of it" if facts.get("emulation_evidence") else "no")
    lines = [
        f"interpreter   {py.get('executable')} (Python {py.get('version')}, {py.get('bits')}-bit)",
        f"platform      {facts.get('os')} {facts.get('machine')} ({facts.get('platform_tag')}, "
        f"{facts.get('libc') or facts.get('mac_ver') or ''})",
        f"translated    {_yes_no(facts.get('translated'))}   emulated: {emulated}",
        f"CPU features  {', '.join(cpu.get('present', [])) or '?'}",
        f"numpy         {packages.get('numpy', 'not installed')}, built for "
        f"{(build.get('host_machine') or {}).get('cpu', '?')}",
        f"BLAS loaded   {blas_text(facts)}",
        "",
    ]
    if findings:
        lines.append("problems found:")
        for f in findings:
            lines.append(f"  ✘ {f.message}" if f.severity == "problem" else f"  ! {f.message}")
            if f.hint:
                lines.append(f"      fix: {f.hint}")
    else:
        lines.append("no problems found")
    return "\n".join(lines)


def _yes_no(value: object) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def main(python: str = sys.executable, as_json: bool = False, workdir: Path = Path(".archmatrix")) -> int:
    facts = collect(python, workdir)
    findings = diagnose(facts)
    if as_json:
        print(json.dumps({"facts": facts, "findings": [f.__dict__ for f in findings]}, indent=1))
    else:
        print(human(facts, findings))
    return ExitCode.OK
