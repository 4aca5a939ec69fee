"""Lane-side entry point: ``python -m archmatrix.suite --lane ID --out FILE``.

Runs in the lane's own interpreter (venv, container, under qemu or Rosetta),
so it imports only the standard library. It collects the lane's facts, runs
every selected check in its own forked child, and writes one lane result
file, rewritten after every check so an interrupted run keeps what it did.
Progress goes to stderr, one line per check.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from archmatrix.errors import ExitCode

from ..lane import facts as lane_facts
from ..registry import DEFAULT_TOLERANCES, CheckContext, builtin_checks, load_user_module, select
from ..result import CheckResult, LaneResult, LaneStatus, save
from ..spec import SuiteSpec
from . import pytest_runner
from .supervise import DEFAULT_TIMEOUT, ChildReport, Stage, run_checks, run_forked

# A pytest suite's cells are saved at most this often: saving the whole lane
# result after each of thousands of tests is quadratic in the tests (it made
# a 478-test suite ~1.6x slower than plain pytest, more under emulation). A
# lane killed outright loses at most this much; an interrupt saves everything.
SAVE_EVERY_S = 1.0


class Throttled:
    """``func()`` when at least ``every_s`` passed since the last call that ran it (the first runs)."""

    def __init__(self, func: Callable[[], None], every_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.func, self.every_s, self.clock = func, every_s, clock
        self.last: float | None = None

    def __call__(self) -> None:
        now = self.clock()
        if self.last is None or now - self.last >= self.every_s:
            self.last = now
            self.func()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m archmatrix.suite", description=__doc__)
    p.add_argument("--lane", default="host", help="lane id recorded in the result")
    p.add_argument("--runner", default="direct", help="runner name recorded in the result")
    p.add_argument("--out", type=Path, help="write the lane result here (default: stdout)")
    p.add_argument("--checks", action="append", metavar="PATTERN",
                   help="only checks whose id matches (fnmatch; repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="leave out checks whose id matches (fnmatch; repeatable), e.g. 'perf.*'")
    p.add_argument("--user-checks", action="append", default=[], metavar="MODULE_OR_PATH",
                   help="also run the checks of this module (repeatable)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per check")
    p.add_argument("--spec", help="JSON object: timeouts, tolerances, options (from the config)")
    p.add_argument("--emulator", help="the emulator the runner used (recorded as a fact)")
    p.add_argument("--cpu-model", help="the emulated CPU model (recorded as a fact)")
    p.add_argument("--facts-only", action="store_true", help="print this interpreter's facts and exit")
    p.add_argument("--list", action="store_true", help="list the check ids and exit")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--no-preload", action="store_true",
                   help="every check imports numpy & co. itself (slower, maximal isolation)")
    return p.parse_args(argv)


def facts_job(machine: str) -> dict[str, Any]:
    """In a forked child: the facts that need numpy & co."""
    return {"status": "ok", "facts": lane_facts.library_facts(machine)}


def merge_facts(facts: dict[str, Any], report: ChildReport) -> dict[str, Any]:
    """The stdlib facts plus what the facts child reported, or why it could not."""
    payload = report.payload or {}
    if payload.get("status") == "ok":
        facts.update(payload["facts"])
    else:
        # The facts child crashed (e.g. SIGILL importing numpy): say so and go on.
        facts["errors"] = {
            "library_facts": payload.get("exc_message")
            or f"child exited with status {report.returncode}: {report.stderr.strip()[-300:]}"
        }
    return facts


def collect_facts(args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    facts = lane_facts.base_facts(args.emulator, args.cpu_model)
    return merge_facts(facts, run_forked(partial(facts_job, facts["machine"]), timeout))


# What the checks import, loaded once by the check server after the import
# checks passed in it: every check's child then starts with it imported.
# Under emulation an import of the stack costs seconds, so paying it once
# per lane instead of once per check is most of a lane's time. OpenBLAS
# registers pthread_atfork handlers and OpenMP starts its threads lazily, so
# forking after the import is safe; nothing has computed.
PRELOAD = (
    "numpy", "numpy.linalg", "scipy.linalg", "sklearn", "sklearn.linear_model", "sklearn.ensemble",
    "sklearn.cluster", "sklearn.decomposition", "sklearn.metrics", "threadpoolctl",
)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = SuiteSpec.from_json(args.spec) if args.spec else SuiteSpec()
    checks = builtin_checks()
    for module in list(args.user_checks) + list(spec.user_checks):
        checks += load_user_module(module)
    checks = select(checks, args.checks or spec.checks, list(args.exclude) + list(spec.exclude))
    if args.list:
        for chk in checks:
            print(f"{chk.id}\t{chk.description}")
        return ExitCode.OK
    if args.facts_only:
        print(json.dumps(collect_facts(args, args.timeout), indent=1, default=str))
        return ExitCode.OK

    tolerances = {**DEFAULT_TOLERANCES, **spec.tolerances}
    options = dict(spec.options)

    def context() -> CheckContext:
        return CheckContext(tolerances=tolerances, options=options)

    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    result = LaneResult(lane=args.lane, runner=args.runner, started=started,
                        status=LaneStatus.INTERRUPTED)

    def save_now() -> None:
        result.duration_s = time.monotonic() - t0
        if args.out:
            save(result, args.out)

    def progress(i: int, n: int, res: CheckResult) -> None:
        if not args.quiet:
            print(
                f"[{args.lane}] {i}/{n} {res.id:<32} {res.outcome.glyph} {res.outcome.value:<19} "
                f"{res.duration_s:6.2f}s  (elapsed {time.monotonic() - t0:.0f}s)",
                file=sys.stderr, flush=True,
            )

    def on_result(res: CheckResult) -> None:
        result.checks.append(res)
        save_now()

    # SIGTERM (docker stop, a CI cancel) ends the run like Ctrl-C: the
    # current check's child is killed and what finished is kept.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    base = lane_facts.base_facts(args.emulator, args.cpu_model)

    # How the checks ran, recorded with the facts: a lane that was slow
    # because its check server stopped early says why.
    server: dict[str, Any] = {"used": not args.no_preload, "preloaded": []}

    def on_facts(report: ChildReport, preloaded: list[str]) -> None:
        if preloaded and not args.quiet:
            print(f"[{args.lane}] preloaded {', '.join(preloaded)}", file=sys.stderr, flush=True)
        server["preloaded"] = preloaded
        result.facts = {**merge_facts(dict(base), report), "check_server": server}
        save_now()

    def notice(message: str) -> None:
        server["stopped"] = message
        if not args.quiet:
            print(f"[{args.lane}] {message}", file=sys.stderr, flush=True)

    try:
        run_checks(
            checks,
            context_factory=context,
            default_timeout=args.timeout,
            timeouts=dict(spec.timeouts),
            progress=progress,
            on_result=on_result,
            stage=Stage(partial(facts_job, base["machine"]), on_facts, args.timeout),
            preload=None if args.no_preload else PRELOAD,
            notice=notice,
        )
        patterns = args.checks or spec.checks
        if spec.pytest and pytest_runner.may_select(patterns):
            # the project's own tests, after the built-in checks: one cell per test
            tests: list[CheckResult] = []
            save_soon = Throttled(save_now, SAVE_EVERY_S)

            def on_test(res: CheckResult) -> None:
                tests.append(res)
                result.checks.append(res)
                save_soon()
                progress(len(tests), len(tests), res)  # how many there are is known only at the end

            try:
                pytest_facts = pytest_runner.run_pytest(
                    spec.pytest, on_result=on_test, default_timeout=args.timeout,
                    timeouts=dict(spec.timeouts), select=patterns,
                    exclude=list(args.exclude) + list(spec.exclude), notice=notice)
            finally:
                save_now()  # the cells since the last save, however pytest's run ended
            result.facts["pytest"] = pytest_facts.to_dict()
    except KeyboardInterrupt:
        result.reason = "interrupted before every check ran"
        save_now()
        return ExitCode.INTERRUPTED
    result.status = LaneStatus.RAN
    save_now()
    if not args.out:
        json.dump(result.to_dict(), sys.stdout, indent=1, default=str)
        print()
    failed = any(c.outcome.failed for c in result.checks)
    return ExitCode.FAILED if failed else ExitCode.OK
