"""The ``archmatrix`` command line.

Exit status: 0 every required lane passed; 1 a required lane failed; 2 bad
configuration or usage; 3 a lane could not be built or started (or a lane
asked for by name cannot run on this host); 4 unreadable result files;
130 interrupted. ``readme --check``: 0 the block is current, 1 it is stale,
2 the file has no marker pair. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from . import config as config_mod
from .errors import ExitCode, ResultsError, UsageError, reporting_errors
from .matrix import Matrix
from .pyversions import result_file
from .render.escape import terminal_lines
from .suite.registry import is_module_path
from .suite.result import LaneStatus

if TYPE_CHECKING:
    from .diff import MatrixDiff
    from .hostfacts import HostFacts

DEFAULT_RESULTS = Path("results")
DEFAULT_WORKDIR = Path(".archmatrix")

log = logging.getLogger("archmatrix")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=config_mod.DEFAULT_CONFIG,
                   help="matrix configuration (default: %(default)s)")


def _add_dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                   help="where lane results and reports go (default: %(default)s)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                   help="caches: staged wheels, venvs, images (default: %(default)s)")


def _add_probes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-probes", action="store_true",
                   help="leave out the performance probes (perf.*) for a quicker run")
    # a workflow that fans lanes out to jobs annotates once, in the job that collects them
    p.add_argument("--no-annotations", action="store_true",
                   help="in GitHub Actions, print no ::error annotations (the job summary is still written)")


def _add_predict(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--no-predict", action="store_true",
                       help="a macOS lane this host cannot run stays skipped (default: its cells are "
                            "predicted from the lock's macOS wheels, marked as predicted)")
    group.add_argument("--predict-only", action="store_true",
                       help="run no lane: predict every lane's cells from its wheels (downloaded, read, "
                            "never installed), in seconds; exit 1 when a required lane has a predicted "
                            "failure")


def _add_report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                   help="compare every cell with this earlier matrix (a results directory or matrix.json, "
                        "e.g. the default branch's): new failures, fixed, changed root cause, printed first")
    p.add_argument("--fail-on", choices=("any", "new"), default="any",
                   help="any: a failing required lane fails the run; new: only failures the baseline did "
                        "not have (needs --baseline; default: %(default)s)")
    p.add_argument("--all-rows", action="store_true",
                   help="print every check row (default: only rows some lane did not pass, failing first)")


def load_baseline(args: argparse.Namespace) -> Matrix | None:
    """The ``--baseline`` matrix, read before any lane runs (a wrong path fails at once)."""
    from .results import load_matrix
    from .suite.result import ResultFileError

    path: Path | None = getattr(args, "baseline", None)
    if path is None:
        if getattr(args, "fail_on", "any") == "new":
            raise UsageError("--fail-on new needs --baseline DIR (the matrix to compare with)")
        return None
    if not path.exists():
        raise UsageError(f"--baseline {path}: no such file or directory")
    try:
        baseline = load_matrix(path)
    except ResultFileError as exc:
        raise ResultsError(f"--baseline: {exc}") from None
    if not baseline.lanes:
        raise UsageError(f"--baseline {path}: no matrix.json and no lane result files")
    return baseline


def _add_own_packages(p: argparse.ArgumentParser) -> None:
    # a one-off run for your own wheels, without editing the config
    p.add_argument("--wheel", action="append", dest="wheels", default=[], metavar="PATH", type=Path,
                   help="also install this local wheel file, or every wheel in this directory, in every "
                        "lane (added to lock.wheels; repeatable)")
    p.add_argument("--checks-module", action="append", dest="checks_modules", default=[],
                   metavar="PATH_OR_MODULE",
                   help="also run the checks of this .py file or module (added to checks.user_modules; "
                        "repeatable)")
    p.add_argument("--pytest", action="append", dest="pytest", default=[], metavar="ARGS",
                   help="also run your pytest suite in every lane, one cell per test (added to "
                        "checks.pytest; split like a shell would: --pytest 'tests/ -k fast'; paths relative "
                        "to the current directory; pytest must be in the lock; repeatable)")


def with_own_packages(cfg: config_mod.MatrixConfig, wheels: Sequence[Path],
                      modules: Sequence[str]) -> config_mod.MatrixConfig:
    """``cfg`` with ``--wheel``/``--checks-module`` added (paths are relative to the current directory)."""
    import dataclasses

    for path in wheels:
        if not (path.is_dir() or (path.is_file() and path.suffix == ".whl")):
            raise UsageError(f"--wheel {path}: not a .whl file or a directory of wheels")
    extra_modules = []
    for module in modules:
        if is_module_path(module):
            if not Path(module).is_file():
                raise UsageError(f"--checks-module {module}: no such file")
            module = str(Path(module).resolve())  # the config's entries are relative to the config
        extra_modules.append(module)
    if not wheels and not extra_modules:
        return cfg
    lock = dataclasses.replace(cfg.lock, wheels=(*cfg.lock.wheels, *(str(w.resolve()) for w in wheels)))
    checks = dataclasses.replace(cfg.checks, user_modules=(*cfg.checks.user_modules, *extra_modules))
    return dataclasses.replace(cfg, lock=lock, checks=checks)


def with_pytest(cfg: config_mod.MatrixConfig, values: Sequence[str]) -> config_mod.MatrixConfig:
    """``cfg`` with ``--pytest`` added to ``checks.pytest`` (its paths made absolute: they are
    relative to the current directory, the config's to the config)."""
    import dataclasses
    import shlex

    from .staging.pytest_project import PATH_OPTIONS, option_name, path_arguments, refused, split_node

    if not values:
        return cfg
    try:
        args = [arg for value in values for arg in shlex.split(value)]
    except ValueError as exc:
        raise UsageError(f"--pytest: {exc}") from None
    why = refused(args)
    if why:
        raise UsageError(f"--pytest {why}")

    def absolute(value: str) -> str:
        path, rest = split_node(value)
        if not Path(path).exists():
            raise UsageError(f"--pytest {value}: no such file or directory")
        return str(Path(path).resolve()) + rest

    for i in path_arguments(args):
        args[i] = absolute(args[i])
    for i, arg in enumerate(args):
        name = option_name(arg)
        if name in PATH_OPTIONS and "=" not in arg and i + 1 < len(args) and name != "--ignore-glob":
            args[i + 1] = absolute(args[i + 1])
    cfg = dataclasses.replace(cfg, checks=dataclasses.replace(cfg.checks, pytest=(*cfg.checks.pytest, *args)))
    config_mod.require_pytest(cfg)
    return cfg


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="archmatrix", description="Does the same numpy/scipy/scikit-learn "
                                "environment work on every CPU architecture your users run?")
    p.add_argument("--version", action="version", version=f"archmatrix {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = sub.add_parser("matrix", help="run every lane this host can run; print and write the matrix")
    _add_config(m)
    _add_dirs(m)
    m.add_argument("--lane", action="append", dest="lanes", metavar="ID",
                   help="run only this lane (repeatable)")
    _add_own_packages(m)
    _add_probes(m)
    _add_report_options(m)
    _add_predict(m)

    ln = sub.add_parser("lane", help="run one lane (fails when this host cannot run it)")
    ln.add_argument("lane_id", metavar="ID")
    _add_config(ln)
    _add_dirs(ln)
    _add_own_packages(ln)
    _add_probes(ln)

    r = sub.add_parser("report", help="build the matrix from a directory of lane result files")
    r.add_argument("directory", type=Path, nargs="?", default=DEFAULT_RESULTS)
    r.add_argument("--config", type=Path, default=None,
                   help="for the lock and lane order (default: ci/matrix.yaml when present)")
    r.add_argument("--out", type=Path, default=None, help="where to write the reports (default: DIRECTORY)")
    _add_report_options(r)

    pl = sub.add_parser("plan", help="show which lanes this host can run, and why not")
    _add_config(pl)

    d = sub.add_parser("doctor", help="this interpreter's facts and the problems they show")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.add_argument("--python", default=sys.executable, help="diagnose another interpreter")

    from .baseimage import PLATFORMS as BASE_IMAGE_PLATFORMS

    b = sub.add_parser("base-images", help="build the Debian base images for the Docker lanes")
    b.add_argument("--platform", action="append", dest="platforms", choices=sorted(BASE_IMAGE_PLATFORMS),
                   help="linux/amd64, linux/arm64 (default: both)")
    b.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)

    from .audit.main import add_parser as add_audit_parser

    add_audit_parser(sub)

    bg = sub.add_parser("badges", help="an SVG badge and a shields.io endpoint JSON per lane and overall")
    bg.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                    help="matrix.json or the lane result files (default: %(default)s)")
    bg.add_argument("--out", type=Path, default=None, help="badges go to OUT/badges/ (default: RESULTS)")

    rd = sub.add_parser("readme", help="rewrite the badges and matrix between the archmatrix markers of a "
                        "markdown file")
    rd.add_argument("file", type=Path, metavar="FILE")
    rd.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                    help="matrix.json or the lane result files (default: %(default)s)")
    rd.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 when the block is stale (CI, pre-commit)")
    rd.add_argument("--badge-url-base", metavar="URL", default=None,
                    help="where the badge SVGs are published (default: RESULTS/badges relative to FILE)")
    rd.add_argument("--rows", choices=("all", "notable"), default="all",
                    help="check rows to show: all, or only those some lane did not pass "
                         "(default: %(default)s)")

    ci = sub.add_parser("ci-lanes", help="the GitHub Actions job matrix for a config's lanes (JSON)")
    _add_config(ci)
    ci.add_argument("--lanes", default="", metavar="JSON",
                    help='only these lanes, a JSON list such as ["host"] (default: all)')
    ci.add_argument("--linux-arm64-runner", default=None, metavar="LABEL",
                    help="runs-on for linux/arm64 lanes (default: GitHub's native arm64 runner)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _setup_logging(args.verbose)
    return reporting_errors(run_command, args, clean=terminal_lines)


def run_command(args: argparse.Namespace) -> int:
    if args.command in ("matrix", "lane"):
        # SIGTERM (a CI cancel, `kill`) ends a run as Ctrl-C does: every
        # running lane is interrupted and keeps what it finished.
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return cmd_matrix(args)
        finally:
            signal.signal(signal.SIGTERM, previous)
    if args.command == "report":
        return cmd_report(args)
    if args.command == "plan":
        return cmd_plan(args)
    if args.command == "doctor":
        from .doctor import main as doctor_main

        return doctor_main(python=args.python, as_json=args.json)
    if args.command == "base-images":
        return cmd_base_images(args)
    if args.command == "audit":
        from .audit.main import run as audit_run

        return audit_run(args)
    if args.command == "badges":
        return cmd_badges(args)
    if args.command == "readme":
        return cmd_readme(args)
    if args.command == "ci-lanes":
        return cmd_ci_lanes(args)
    raise AssertionError(args.command)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_matrix(args: argparse.Namespace) -> int:
    from .diff import exit_code as fail_on_new
    from .hostfacts import detect
    from .orchestrate import run_matrix
    from .render.escape import terminal_lines
    from .runners.docker import named_engines

    cfg = with_own_packages(config_mod.load(args.config), args.wheels, args.checks_modules)
    cfg = with_pytest(cfg, args.pytest)
    if args.no_probes:
        cfg = config_mod.without_probes(cfg)
    only = [args.lane_id] if args.command == "lane" else args.lanes
    if only:
        cfg.select(only)  # unknown lane → ConfigError with a suggestion
    if args.results.exists() and not args.results.is_dir():
        raise UsageError(f"{args.results}: not a directory (--results is where lane results go)")
    baseline = load_baseline(args)
    host = detect(engines=named_engines(cfg.lane(i) for i in only) if only else named_engines(cfg.lanes))
    if getattr(args, "predict_only", False):
        return _predict_only(args, cfg, host, only, baseline)
    outcome = run_matrix(cfg, host, results_dir=args.results, workdir=args.workdir, only=only)
    matrix = outcome.matrix
    if not outcome.interrupted and not getattr(args, "no_predict", False):
        matrix = _with_predictions(matrix, cfg, host, args.results, args.workdir)
    diff = _publish(matrix, baseline, args.results, cfg, all_rows=getattr(args, "all_rows", False),
                    annotate=not args.no_annotations)
    if outcome.interrupted:
        return ExitCode.INTERRUPTED
    code = fail_on_new(matrix, diff) if diff is not None and args.fail_on == "new" else matrix.exit_code()
    if only and code == ExitCode.OK:
        # a lane asked for by name that could not run is not a success (CI fans lanes out)
        skipped = [ln for ln in matrix.lanes if ln.status == LaneStatus.SKIPPED]
        if skipped:
            for ln in skipped:
                print(terminal_lines(f"archmatrix: lane {ln.lane} cannot run here: {ln.reason}"
                                     + (f" (hint: {ln.hint})" if ln.hint else "")), file=sys.stderr)
            return ExitCode.INFRA
    return code


def _with_predictions(matrix: Matrix, cfg: config_mod.MatrixConfig, host: HostFacts, results: Path,
                      workdir: Path) -> Matrix:
    """``matrix`` with each macOS lane that could not run here predicted from its wheels (saved as its
    result file, marked predicted; still skipped, so the exit status is what it was). A macOS lane that
    ran keeps its observed cells; where its prediction disagrees, it gets a ``prediction-disagrees``
    warning per package."""
    from .orchestrate import Progress
    from .prediction import disagreements, predict_lanes, predicts
    from .results import build_matrix
    from .suite.result import save

    lanes = {lane.id: lane for lane in cfg.lanes}
    macos = [r for r in matrix.lanes if r.lane in lanes and predicts(lanes[r.lane])
             and r.status in (LaneStatus.SKIPPED, LaneStatus.RAN)]
    if not macos:
        return matrix
    progress = Progress()
    progress.say("matrix", "predicting from the wheels: " + ", ".join(r.lane for r in macos))
    reasons = {r.lane: (r.reason, r.hint) for r in matrix.lanes}
    guesses = predict_lanes(cfg, [lanes[r.lane] for r in macos], workdir.resolve(), reasons=reasons,
                            docker_arch=host.docker.server_arch or None, progress=progress.say)
    predicted = {r.lane: r for r in guesses}
    out = []
    for r in matrix.lanes:
        guess = predicted.get(r.lane)
        if guess is not None and r.status == LaneStatus.SKIPPED:
            r = guess  # not run here: the prediction, marked as such
        elif guess is not None and guess.predicted:
            # it ran (on a Mac): the observed cells stand; a prediction shows only where it disagrees
            extra = disagreements(r, guess)
            if not extra:
                out.append(r)
                continue
            r.warnings.extend(extra)
        else:
            out.append(r)
            continue
        save(r, result_file(results.resolve(), r.lane))
        out.append(r)
    return build_matrix(out, cfg, matrix.problems)


def _predict_only(args: argparse.Namespace, cfg: config_mod.MatrixConfig, host: HostFacts,
                  only: Sequence[str] | None, baseline: Matrix | None) -> int:
    """``matrix --predict-only``: every lane predicted, none run. Exit 1 when a required lane has a
    predicted failure, else 0 (no lane ran: 0 says only that nothing is predicted to fail)."""
    from .orchestrate import Progress
    from .prediction import predict_lanes
    from .results import build_matrix
    from .suite.result import save

    lanes = [lane for lane in cfg.lanes if not only or lane.id in only]
    progress = Progress()
    why = ("--predict-only", "")
    results = predict_lanes(cfg, lanes, args.workdir.resolve(), reasons={lane.id: why for lane in lanes},
                            docker_arch=host.docker.server_arch or None, progress=progress.say)
    args.results.mkdir(parents=True, exist_ok=True)
    for r in results:
        save(r, result_file(args.results, r.lane))
    matrix = build_matrix(results, cfg)
    _publish(matrix, baseline, args.results, cfg, all_rows=getattr(args, "all_rows", False),
             annotate=not args.no_annotations)
    failing = any(r.required and r.predicted and r.failed_checks for r in results)
    return ExitCode.FAILED if failing else ExitCode.OK


def _results_dir(directory: Path) -> None:
    """A results directory given on the command line must be one: never created, never a file."""
    if not directory.exists():
        raise UsageError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory")


def _publish(matrix: Matrix, baseline: Matrix | None, out: Path, cfg: config_mod.MatrixConfig | None, *,
             all_rows: bool, annotate: bool = True, quiet: bool = False) -> MatrixDiff | None:
    """Every output of ``matrix`` written into ``out`` (compared with ``baseline`` when there is one),
    the table and GitHub's lines printed, and (unless ``quiet``) where the reports went."""
    from .diff import compare
    from .outputs import write_all
    from .render import github, terminal

    diff = compare(matrix, baseline) if baseline is not None else None
    paths = write_all(matrix, out, diff=diff)
    print(terminal.render(matrix, diff=diff, all_rows=all_rows))
    for line in github.publish(matrix, annotate=annotate, diff=diff, config=cfg):
        print(line)
    if not quiet:
        print(terminal_lines("reports: " + ", ".join(str(p) for p in paths.values())), file=sys.stderr)
    return diff


def cmd_report(args: argparse.Namespace) -> int:
    from .diff import exit_code as fail_on_new
    from .render.escape import terminal_lines
    from .results import load_matrix

    _results_dir(args.directory)
    baseline = load_baseline(args)
    cfg = None
    config_path = args.config or (config_mod.DEFAULT_CONFIG if config_mod.DEFAULT_CONFIG.exists() else None)
    if config_path is not None:
        cfg = config_mod.load(config_path)
    matrix = load_matrix(args.directory, cfg, merged=False)
    problems = matrix.problems
    if not matrix.lanes and not problems:
        raise UsageError(f"{args.directory}: no lane result files found")
    diff = _publish(matrix, baseline, args.out or args.directory, cfg, all_rows=args.all_rows, quiet=True)
    for problem in problems:
        print(terminal_lines(f"archmatrix: skipped unreadable result file: {problem}"), file=sys.stderr)
    code = fail_on_new(matrix, diff) if diff is not None and args.fail_on == "new" else matrix.exit_code()
    return code if code != ExitCode.OK else (ExitCode.BAD_RESULTS if problems else ExitCode.OK)


def cmd_plan(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from .hostfacts import detect
    from .plan import plan
    from .runners.docker import named_engines

    cfg = config_mod.load(args.config)
    rows = []
    for p in plan(cfg, detect(engines=named_engines(cfg.lanes))):
        av = p.availability
        rows.append([p.lane.id, p.lane.runner, "run" if av.ok else "skip", av.reason, av.hint])
    print(tabulate(rows, headers=["lane", "runner", "", "reason / how", "hint"], tablefmt="simple"))
    return ExitCode.OK


def cmd_base_images(args: argparse.Namespace) -> int:
    from .baseimage import PLATFORMS, build_images

    return build_images(args.platforms or list(PLATFORMS), workdir=args.workdir)


def results_matrix(results: Path) -> Matrix:
    """The matrix of a results directory: its matrix.json, else built from its lane files.

    ``results`` may also name a matrix.json directly (a committed example, say).
    """
    from .outputs import OUTPUT_NAMES
    from .results import load_matrix
    from .suite.result import ResultFileError

    def order() -> list[str]:
        if not config_mod.DEFAULT_CONFIG.exists():
            return []
        return [ln.id for ln in config_mod.load(config_mod.DEFAULT_CONFIG).lanes]

    try:
        matrix = load_matrix(results, order=order)
    except ResultFileError as exc:
        raise ResultsError(str(exc)) from None
    if not matrix.lanes:
        problems = matrix.problems
        detail = f" ({'; '.join(problems)})" if problems else ""
        raise UsageError(f"{results}: no {OUTPUT_NAMES['json']} and no lane result files{detail}")
    return matrix


def cmd_badges(args: argparse.Namespace) -> int:
    from .render.badges import write_badges

    matrix = results_matrix(args.results)
    base = args.out or (args.results.parent if args.results.is_file() else args.results)
    try:
        paths = write_badges(matrix, base / "badges")
    except OSError as exc:
        raise UsageError(f"{exc.filename or base / 'badges'}: cannot write the badges "
                         f"({exc.strerror or exc})") from None
    print(f"archmatrix: {len(paths) // 2} badges in {base / 'badges'}", file=sys.stderr)
    return ExitCode.OK


def cmd_readme(args: argparse.Namespace) -> int:
    from . import readme

    matrix = results_matrix(args.results)
    badges_dir = (args.results.parent if args.results.is_file() else args.results) / "badges"
    url_base = args.badge_url_base or readme.default_badge_url_base(args.file, badges_dir)
    try:
        update = readme.plan_update(args.file, matrix, badge_url_base=url_base, rows=args.rows)
    except readme.BlockError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{args.file}: cannot read it ({exc})") from None
    if args.check:
        if not update.stale:
            print(f"archmatrix: {args.file}: the archmatrix block is up to date", file=sys.stderr)
            return ExitCode.OK
        from .render.escape import terminal_lines

        # the diff shows README lines on stderr, which the Actions runner reads for commands too
        print("\n".join(terminal_lines(line) for line in update.diff().split("\n")), file=sys.stderr)
        again = f"archmatrix readme {args.file} --results {args.results}"
        if args.badge_url_base:
            again += f" --badge-url-base {args.badge_url_base}"
        if args.rows != "all":
            again += f" --rows {args.rows}"
        print(f"archmatrix: {args.file}: the archmatrix block is stale; regenerate it with: {again}",
              file=sys.stderr)
        return ExitCode.FAILED
    if update.stale:
        try:
            readme.write(update)
        except readme.WriteError as exc:
            raise UsageError(str(exc)) from None
        print(f"archmatrix: {args.file}: archmatrix block updated", file=sys.stderr)
    else:
        print(f"archmatrix: {args.file}: the archmatrix block is up to date", file=sys.stderr)
    return ExitCode.OK


def cmd_ci_lanes(args: argparse.Namespace) -> int:
    import json

    from .workflows import LINUX_ARM64, github_lanes, parse_lane_list

    try:
        only = parse_lane_list(args.lanes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    cfg = config_mod.load(args.config)
    print(json.dumps(github_lanes(cfg, only, linux_arm64=args.linux_arm64_runner or LINUX_ARM64)))
    return ExitCode.OK


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
