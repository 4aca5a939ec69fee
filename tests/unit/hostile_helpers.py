"""Shared by the test_hostile_* tests: a real lane result to spoil, and the CLI run as a user runs it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "example" / "matrix.json"
# archmatrix's own annotations: the only stdout lines allowed to start with "::" (an ::error per
# failing lane, one ::notice with the totals)
OWN_ANNOTATION = ("::error title=archmatrix ", "::notice title=archmatrix totals::")
OWN_NOTICE = OWN_ANNOTATION[1]


def example_lane() -> dict[str, Any]:
    """The committed example's host lane, as a lane result file holds it."""
    return copy.deepcopy(json.loads(EXAMPLE.read_text(encoding="utf-8"))["lanes"][0])


def write_lane(directory: Path, data: Any, name: str = "host.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def command_lines(self) -> list[str]:
        """stdout lines the GitHub runner would read as workflow commands (it trims leading blanks)."""
        lines = self.stdout.replace("\r", "\n").split("\n")
        return [ln for ln in lines if ln.lstrip().startswith("::")]

    @property
    def error_lines(self) -> list[str]:
        """The command lines that are not archmatrix's one notice."""
        return [ln for ln in self.command_lines if not ln.startswith(OWN_NOTICE)]


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60,
        preexec: Any = None) -> Run:
    """``python -m archmatrix.cli ARGS`` in a fresh process (so a traceback would show as one)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    src = Path(__file__).resolve().parents[2] / "src"
    full_env["PYTHONPATH"] = os.pathsep.join([str(src), full_env.get("PYTHONPATH", "")])
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "archmatrix.cli", *args], cwd=cwd, env=full_env, capture_output=True,
        timeout=timeout, preexec_fn=preexec, check=False,
    )
    return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"),
               proc.stderr.decode("utf-8", "replace"))


def assert_one_line_error(run: Run, code: int, *names: str) -> str:
    """The run failed with ``code`` and one stderr line naming ``names``; no traceback. Returns the line."""
    assert "Traceback" not in run.stderr, run.stderr
    assert run.code == code, (run.code, run.stderr)
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("archmatrix:")]
    assert len(lines) == 1, run.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]
