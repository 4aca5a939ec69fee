"""GitHub Actions: the job summary and an ``::error`` annotation per failing cell."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from ..diff import MatrixDiff
from ..matrix import Matrix
from . import markdown
from .escape import terminal_lines
from .escape import workflow_data as _escape_data
from .escape import workflow_property as _escape_property
from .table import failing_cells

MAX_ANNOTATIONS = 100  # GitHub shows 10 per step and 50 per job; more is only noise on stdout


def error_annotations(matrix: Matrix) -> list[str]:
    lines = []
    for lane, c in failing_cells(matrix)[:MAX_ANNOTATIONS]:
        title = _escape_property(f"archmatrix {lane.lane} {c.id}")
        message = _escape_data(f"{lane.lane} / {c.id}: {c.outcome.value}: {c.message}")
        lines.append(f"::error title={title}::{message}")
    return lines


def publish(matrix: Matrix, env: Mapping[str, str] | None = None, *, annotate: bool = True,
            diff: MatrixDiff | None = None) -> list[str]:
    """When running in Actions: append the summary and return the annotation lines to print."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") != "true":
        return []
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with Path(summary).open("a", encoding="utf-8") as fh:
                fh.write(markdown.render(matrix, diff=diff) + "\n")
        except OSError as exc:
            # the summary is a nicety: the annotations and the exit status still go out
            print(terminal_lines(f"archmatrix: cannot write the job summary GITHUB_STEP_SUMMARY={summary} "
                                 f"({exc.strerror or exc}); annotations follow"), file=sys.stderr)
    return error_annotations(matrix) if annotate else []
