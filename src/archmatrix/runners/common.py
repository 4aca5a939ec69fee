"""What every runner does the same way: stage the lock and the suite, run it, finish the result.

The staging itself is :mod:`archmatrix.staging`; here it is done for a
:class:`LaneJob`, its errors turned into the lane's infra-error. Whatever the runner's
prefix (``qemu-x86_64 -cpu …``, ``arch -x86_64``, ``docker run …``), the
command ends in the same :func:`suite_args`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from packaging.utils import canonicalize_name

from .. import rootcause
from ..command import CommandError, Interrupted, run
from ..findings import lane_warnings
from ..lockfile import LaneLock, LockSelectError, lane_environment, lane_lock
from ..staging.lock import HashMismatch, StagedLock, stage_lock
from ..staging.prefix import PrefixSpec
from ..staging.pytest_project import PytestProject, PytestProjectError, pytest_project
from ..staging.result import StagingError, StagingResult
from ..staging.suite import UserModuleError, stage_suite, user_modules
from ..suite.checks.lane import CHECK_ID as SELF_CHECK
from ..suite.classify import classify, clean_evidence
from ..suite.outcomes import Outcome
from ..suite.result import CheckResult, LaneResult, LaneStatus, ResultFileError, load
from .base import LaneJob, Launch

# Variables that pin a library's CPU dispatch regardless of the CPU. With
# OPENBLAS_CORETYPE=Haswell inherited from the host (set on the machines this
# was built on) OpenBLAS runs AVX2 kernels on the no-AVX CPU and numpy dies in
# its import-time sanity check: a lane would test the host's environment
# variables, not its CPU. Every lane drops them (containers never inherit
# them) and records which it dropped.
CPU_OVERRIDE_VARS = (
    "OPENBLAS_CORETYPE",
    "MKL_DEBUG_CPU_TYPE",
    "MKL_ENABLE_INSTRUCTIONS",
    "NPY_ENABLE_CPU_FEATURES",
    "NPY_DISABLE_CPU_FEATURES",
)

# Set in every lane: a worker process that dies of a signal (a loky worker's SIGILL) dumps its
# loaded extension modules to the stderr it shares with its check, so the cell can name the library.
LANE_ENV = {"PYTHONFAULTHANDLER": "1"}


def lane_env(base: Mapping[str, str], suite_root: Path) -> tuple[dict[str, str], list[str]]:
    """The emulated process's environment, and the CPU-override variables removed from it."""
    removed = sorted(k for k in CPU_OVERRIDE_VARS if k in base)
    env = {k: v for k, v in base.items() if k not in removed}
    env["PYTHONPATH"] = str(suite_root)
    env.update(LANE_ENV)
    return env, removed


def job_lock(job: LaneJob) -> LaneLock:
    """The pins this lane installs: the lock's markers and per-Python tables evaluated for this lane."""
    from .base import LaneInfraError

    try:
        # job.lock: the config's lock on this lane's own Python (lock.python may list several)
        return lane_lock(job.lock, lane_environment(job.lane.target, job.host, job.lock.python))
    except LockSelectError as exc:
        raise LaneInfraError(f"cannot select the lock's pins for this lane: {exc}",
                             "fix the lock file (or leave the lane out): a lane installs exactly one pin "
                             "of each package its environment selects") from None


def stage_job_lock(job: LaneJob, arch: str, glibc: tuple[int, int], spec: PrefixSpec) -> StagedLock:
    """The job's lock (and ``lock.wheels``) staged for ``arch``/``glibc`` under ``job.workdir``, as the
    venv-shaped prefix ``spec`` describes."""
    from .base import LaneInfraError

    job.phase("staging")
    pins = job_lock(job)
    try:
        return stage_lock(pins, job.config.path.parent, arch, glibc, job.workdir, job.progress,
                          spec=spec, hashes=pins.hashes, lock_file=pins.file, extras=pins.extras)
    except HashMismatch as exc:
        raise LaneInfraError(f"could not stage the lock: {exc}",
                             "the index serves another file than the one the lock was made with: re-lock "
                             "(or delete the cached wheel under .archmatrix/wheels)") from None
    except StagingError as exc:
        raise LaneInfraError(f"could not stage the lock: {exc}") from exc


def stage_job_suite(job: LaneJob) -> tuple[Path, tuple[str, ...]]:
    """The suite staged with this job's user check modules: (directory for sys.path, modules to load)."""
    from .base import LaneInfraError

    job.phase("staging")
    try:
        modules = user_modules(job.config.checks.user_modules, job.config.path.parent)
    except UserModuleError as exc:
        raise LaneInfraError(str(exc), "fix checks.user_modules (paths are relative to the config)") from None
    return stage_suite(job.workdir, modules.files, job_pytest(job)), modules.names


def job_pytest(job: LaneJob) -> PytestProject | None:
    """``checks.pytest`` resolved into the project staged with the suite (None: no pytest cells)."""
    from .base import LaneInfraError

    if not job.config.checks.pytest:
        return None
    try:
        return pytest_project(job.config.checks.pytest, job.config.path.parent)
    except PytestProjectError as exc:
        raise LaneInfraError(str(exc), "fix checks.pytest (paths are relative to the config)") from None


# The module every lane runs (``python -m SUITE_MODULE …``), named here only:
# the runners' commands, the Docker lane's included, all come from suite_args.
SUITE_MODULE = "archmatrix.suite"


def suite_args(
    job: LaneJob,
    out: str,
    *,
    emulator: str | None = None,
    cpu_model: str | None = None,
    user_checks: Sequence[str] | None = None,
    self_check: Mapping[str, object] | None = None,
) -> list[str]:
    """``-m SUITE_MODULE …`` arguments (after the interpreter) for this lane.

    ``user_checks``: the module names :func:`stage_job_suite` staged (runners
    pass them, so no lane is given a host path it may not see); None keeps
    ``checks.user_modules`` as written.
    """
    spec = job.config.checks.suite_spec()
    if user_checks is not None:
        spec = replace(spec, user_checks=tuple(user_checks))
    project = job_pytest(job)
    if project is not None:  # the arguments of the project as staged with the suite
        spec = replace(spec, pytest=project.args)
    if self_check is not None:  # what the lane claims to be, for its self-check
        spec = replace(spec, options={**spec.options, "self_check": dict(self_check)})
    args = [
        "-m", SUITE_MODULE,
        "--lane", job.lane.id,
        "--runner", job.lane.runner,
        "--out", out,
        "--timeout", f"{job.config.checks.timeout:g}",
        "--spec", spec.to_json(),
    ]
    if emulator:
        args += ["--emulator", emulator]
    if cpu_model:
        args += ["--cpu-model", cpu_model]
    return args


def run_prepared(job: LaneJob, launch: Launch) -> LaneResult:
    """The one way every lane's suite runs: arguments, progress, execution, verification, finish."""
    if launch.line_filter is not None:
        keep, say = launch.line_filter, job.progress
        job = dataclasses.replace(job, progress=lambda line: say(line) if keep(line) else None)
    if launch.env_removed:
        job.progress(f"not passing {', '.join(launch.env_removed)} to the lane (they pin the CPU dispatch)")
    claim = {"python": job.lock.python, "profile": launch.cpu.name if launch.cpu else "",
             "absent": list(launch.cpu.absent) if launch.cpu else []}
    argv = [*launch.prefix, *suite_args(job, launch.out or str(job.out), emulator=launch.emulator,
                                        cpu_model=launch.cpu_model, user_checks=launch.user_checks,
                                        self_check=claim)]
    job.phase("running")
    job.progress("running the suite" + (f" {launch.how}" if launch.how else ""))
    if launch.execute is not None:
        result = launch.execute(job, argv)
    else:
        result = execute_suite(job, argv, env=launch.env)
    result.checks.extend(verify(result.facts) for verify in launch.verify)
    facts = dict(launch.facts)
    if launch.env is not None:  # a process this host started: say which variables it did not pass
        facts["env_removed"] = list(launch.env_removed)
    return finish(job, result, staging=launch.staging, facts=facts)


def execute_suite(
    job: LaneJob,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    result_path: Path | None = None,
    timeout: float | None = None,
) -> LaneResult:
    """Run the suite command and read the lane result it wrote.

    A suite process that dies before writing its result (the interpreter
    itself crashed, a binary of the wrong architecture) still yields a
    result: one ``suite.start`` check classified from its exit status and
    output, so the failure is the lane's finding rather than a lost lane.
    """
    path = result_path or job.out
    started = time.monotonic()
    # a stale file must never pass for this run's result
    path.unlink(missing_ok=True)
    returncode: int | None
    try:
        done = run(
            argv,
            env=env,
            check=False,
            timeout=timeout,
            on_line=lambda line: job.progress(line.split("] ", 1)[-1]),
        )
        returncode, output = done.returncode, done.stdout + done.stderr
    except Interrupted:
        # the lane was interrupted (command.run gave the suite SIGINT, then
        # stopped it): what the suite saved is the lane's result, if anything
        try:
            return load(path)
        except ResultFileError:
            raise Interrupted("interrupted before the suite saved a result") from None
    except CommandError as exc:
        returncode, output = exc.returncode, f"{exc}\n{exc.stdout}{exc.stderr}"
    return result_or_crash(job, path, returncode, output, time.monotonic() - started)


def result_or_crash(
    job: LaneJob, path: Path, returncode: int | None, output: str, duration_s: float
) -> LaneResult:
    """The lane result the suite wrote at ``path``; if it wrote none, its crash as a result."""
    try:
        return load(path)
    except ResultFileError as exc:
        verdict = classify(returncode=returncode, output=output)
        outcome = verdict.outcome if verdict.outcome is not Outcome.PASS else Outcome.ERROR
        result = LaneResult(lane=job.lane.id, runner=job.lane.runner)
        result.checks.append(CheckResult(
            id="suite.start",
            outcome=outcome,
            duration_s=duration_s,
            message=verdict.reason or f"the suite wrote no result ({exc})",
            evidence={"returncode": returncode, "output_tail": clean_evidence(output, 2000)},
        ))
    return result


def wheel_checks(staging: StagingResult) -> list[CheckResult]:
    """One ``wheel.<package>`` row per locked package: which wheel, or ``no-wheel``."""
    rows = []
    by_name = {canonicalize_name(n): n for n in staging.installed}
    for name, version in staging.installed.items():
        key = canonicalize_name(name)
        wheel = next((w for w in staging.wheels if canonicalize_name(w.split("-")[0]) == key), "")
        rows.append(CheckResult(id=f"wheel.{key}", outcome=Outcome.PASS,
                                message=wheel, metrics={"version": version}))
    for miss in staging.missing:
        if canonicalize_name(miss.name) in by_name:
            continue
        rows.append(CheckResult(
            id=f"wheel.{canonicalize_name(miss.name)}",
            outcome=Outcome.NO_WHEEL,
            message=f"{miss.name}=={miss.version} has no wheel for {miss.platform}",
            evidence={"pip": miss.reason} if miss.reason else {},
        ))
    return sorted(rows, key=lambda r: r.id)


def staged_sites(staging: StagingResult | None) -> tuple[Path, ...]:
    """Where this host has the lane's packages (the staged site-packages), for reading their binaries."""
    return (staging.site_packages,) if staging is not None and staging.site_packages.is_dir() else ()


def not_as_claimed(result: LaneResult) -> None:
    """A lane whose self-check failed is ``infra-error``: its cells ran somewhere else than it claims."""
    proof = next((c for c in result.checks if c.id == SELF_CHECK), None)
    if proof is None or not proof.outcome.failed or result.status != LaneStatus.RAN:
        return
    result.status = LaneStatus.INFRA_ERROR
    result.reason = f"{SELF_CHECK} failed, so no cell of this lane can be trusted: {proof.message}"
    result.hint = ("the evidence is in the lane.self cell; children escaping the emulated CPU, or a CPU "
                   "that is not the profile's, are archmatrix's fault: please report it")


def finish(job: LaneJob, result: LaneResult, *, staging: StagingResult | None = None,
           facts: Mapping[str, object] | None = None) -> LaneResult:
    """Add what the host knows to the lane's own result, and save it."""
    result.lane = job.lane.id
    result.runner = job.lane.runner
    result.required = job.lane.required
    if facts:
        result.facts.setdefault("runner", {}).update(facts)
    if staging is not None:
        result.checks = wheel_checks(staging) + [c for c in result.checks if not c.id.startswith("wheel.")]
    # root causes across cells: no-wheel via a dependency, SIGILL's library, a CPU below a baseline
    result = rootcause.apply(result, sites=staged_sites(staging))
    if result.status == LaneStatus.RAN or result.checks:
        result.warnings = lane_warnings(result.facts, job_lock(job).packages)  # this lane's pins
    not_as_claimed(result)
    from ..suite.result import save

    save(result, job.out)
    return result
