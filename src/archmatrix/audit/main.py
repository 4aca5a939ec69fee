"""``archmatrix audit PATH… [--lane ID …] [--json] [--all] [--compare MATRIX]``.

Exit status: 0 no predicted failure in the audited lanes (``guarded`` and
``unknown`` — an unreadable binary, a CPU probe the audit cannot tie to the
code — are not failures; unknown is printed as a warning); 1 a binary is
predicted to die (illegal instruction, a CPU below its baseline) or not to
load (wrong architecture) in one; 2 usage errors (a path that does not
exist, an unknown lane); 4 an unreadable ``--compare`` matrix.
"""

from __future__ import annotations

import argparse
import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .. import config as config_mod
from ..config import LaneConfig
from ..errors import ExitCode, ResultsError, UsageError
from ..suite.result import ResultFileError

if TYPE_CHECKING:
    from ..matrix import Matrix


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser(
        "audit", help="predict illegal-instruction and wrong-arch failures from the binaries, "
                      "without running anything")
    a.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="site-packages directory, venv, wheel file, a lane's staged environment, or a binary")
    a.add_argument("--lane", action="append", dest="lanes", metavar="ID",
                   help="predict for this lane (repeatable; default: the lanes the environment is built for)")
    a.add_argument("--config", type=Path, default=None,
                   help="matrix configuration for the lanes (default: ci/matrix.yaml when present, "
                        "else the default lanes)")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.add_argument("--all", action="store_true", help="list every binary, not only notable ones")
    a.add_argument("--compare", type=Path, metavar="MATRIX",
                   help="a matrix.json (or a directory of lane results) to compare the prediction with")


class AuditUsageError(UsageError):
    pass


def _lanes(config_path: Path | None) -> tuple[LaneConfig, ...]:
    from .predict import default_lanes

    path = config_path or (config_mod.DEFAULT_CONFIG if config_mod.DEFAULT_CONFIG.exists() else None)
    return config_mod.load(path).lanes if path is not None else default_lanes()


def _matrix(path: Path) -> Matrix:
    from ..results import load_matrix

    if not path.exists():
        raise AuditUsageError(f"audit: --compare {path}: no such file or directory")
    try:
        matrix = load_matrix(path, merged=False)
    except ResultFileError as exc:
        raise ResultsError(f"audit: {exc}") from None
    except (ValueError, RecursionError, KeyError, TypeError, AttributeError, OSError) as exc:
        # a malformed file the loader did not name (non-UTF-8, too deep, wrong types): still exit 4, one line
        raise ResultsError(f"audit: --compare {path}: cannot read it ({type(exc).__name__}: "
                           f"{str(exc)[:200]})") from None
    if not matrix.lanes and path.is_dir():
        unreadable = f": {'; '.join(matrix.problems)}" if matrix.problems else ""
        raise ResultsError(f"audit: --compare {path}: no readable lane result file{unreadable}")
    return matrix


def run(args: argparse.Namespace) -> int:
    # imported here so that `archmatrix --help` does not load capstone
    from .binaries import NotAnEnvironment
    from .predict import lane_targets
    from .render import compare, render, render_compare
    from .report import audit

    lanes = lane_targets(_lanes(args.config))
    known = [ln.id for ln in lanes]
    for lane_id in args.lanes or []:
        if lane_id not in known:
            close = difflib.get_close_matches(lane_id, known, n=1)
            hint = f" (perhaps you meant {close[0]!r}?)" if close else ""
            raise AuditUsageError(f"audit: unknown lane {lane_id!r}{hint}; lanes: {', '.join(known)}")
    for path in args.paths:
        if not path.exists():
            raise AuditUsageError(f"audit: {path}: no such file or directory")
    matrix = _matrix(args.compare) if args.compare else None
    try:
        report = audit(args.paths, lanes, args.lanes)
    except NotAnEnvironment as exc:
        raise AuditUsageError(f"audit: {exc}") from None
    if args.json:
        data = report.to_dict()
        if matrix is not None:
            data["compare"] = [
                {"lane": r.lane, "predicted": r.predicted.value, "actual": r.actual, "agree": r.agree,
                 "note": r.note} for r in compare(report, matrix)
            ]
        print(json.dumps(data, indent=2))
    else:
        print(render(report, everything=args.all))
        if matrix is not None:
            print()
            print(render_compare(compare(report, matrix)))
    return ExitCode.FAILED if report.failed else ExitCode.OK
