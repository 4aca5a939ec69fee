"""What archmatrix itself costs: the warm matrix against the bare work, and the cold matrix.

    python bench/matrix_overhead.py [--config ci/matrix.yaml] [--repeat 3] [--no-cold] [--keep]

Measured in one run, on this host, over the lanes it can run (``archmatrix
plan``: host, linux-amd64-docker, linux-arm64-docker, linux-x86_64-noavx):

(a) warm matrix: ``archmatrix matrix`` run once to warm every cache (staged
    wheels, venvs, lane images), then timed (best of ``--repeat``, default 3,
    interleaved with (b) so both sides see the same background load).
(b) bare work: the same checks run by hand in each lane's ready environment,
    one process per lane, imports paid once: a small script imports the
    suite's check functions and calls each one in-process, in the lane's venv
    python (host), under the lane's qemu command (noavx) or in a ``docker
    run`` of the lane image (Docker lanes). The commands come from what the
    warm run recorded in each lane's facts (venv, qemu binary and CPU model,
    image) and from the runners' own helpers (``qemu_command``, ``lane_env``,
    ``emulation``), so both sides run the very same environment. What the bare
    side leaves out is exactly archmatrix's overhead: the CLI and host probes,
    cache checks, the check server and one forked child per check, the
    facts, result files and reports.
(c) cold matrix: a fresh ``--workdir`` (no downloaded or staged wheels, no
    venvs) and no lane images, with the Debian base images cached (a one-time
    build per machine, see docs/docker.md). The Docker lanes run under their
    own ids (``bench-…``) so that the lane images this bench deletes for (c) are
    its own, never the repository's.

Parallelism is the same on both sides: the matrix runs lanes
``plan.parallelism`` at a time (one per core, two on a 2-core host), longest
first by the previous run's durations (``archmatrix.schedule``); the bare side
runs its lane processes with the same number of threads in the same order.
Two lanes at a time on two cores means each lane's work competes with the
other's on both sides alike.

The target (issue 8) is warm ≤ 1.3× bare. Everything the bench creates is
removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tabulate import tabulate

from archmatrix import config as config_mod
from archmatrix.command import CommandError, run
from archmatrix.hostfacts import HostFacts, detect
from archmatrix.plan import parallelism, plan
from archmatrix.profiles import DEFAULT_PROFILES
from archmatrix.runners.common import lane_env
from archmatrix.runners.docker import emulation
from archmatrix.runners.qemu import qemu_command
from archmatrix.schedule import read_durations, start_order
from archmatrix.staging.suite import stage_suite
from archmatrix.suite.result import LaneResult, load

ROOT = Path(__file__).resolve().parents[1]
LANES = ("host", "linux-amd64-docker", "linux-arm64-docker", "linux-x86_64-noavx")
PREFIX = "bench-"  # the Docker lanes' ids here: their lane images are the bench's own
TARGET = 1.3
BARE_TIMEOUT = 900.0

# Runs inside the lane: import the suite's checks and call each in this one
# process (imports paid once, no child per check, no facts, no result file).
BARE_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from archmatrix.suite.registry import CheckContext, builtin_checks, select
spec = json.loads(sys.argv[1])
checks = select(builtin_checks(), spec["checks"], spec["exclude"])
done = {}
for chk in checks:
    start = time.perf_counter()
    try:
        chk.func(CheckContext())
        status = "ok"
    except Exception as exc:  # recorded, the next check still runs
        status = f"{type(exc).__name__}: {exc}"[:200]
    done[chk.id] = [status, time.perf_counter() - start]
print(json.dumps({"total_s": time.perf_counter() - t0, "checks": done}))
"""


@dataclass
class Bare:
    lane: str
    wall_s: float
    inside_s: float  # the script's own time (without interpreter/container start)
    checks: dict[str, list[Any]]

    @property
    def failed(self) -> list[str]:
        return [cid for cid, (status, _) in self.checks.items() if status != "ok"]


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_config(source: Path, dest: Path, host: HostFacts) -> tuple[Path, list[str]]:
    """The config with the runnable lanes of LANES (Docker lanes renamed), and their ids in order."""
    cfg = config_mod.load(source)
    runnable = {p.lane.id for p in plan(cfg, host) if p.runs}
    data = yaml.safe_load(source.read_text())
    lanes = []
    for lane in data["lanes"]:
        if lane["id"] not in LANES:
            continue
        if lane["id"] not in runnable:
            say(f"{lane['id']}: not runnable here, left out (see archmatrix plan)")
            continue
        if lane["runner"] == "docker":
            lane = {**lane, "id": PREFIX + lane["id"]}
        lanes.append(lane)
    data["lanes"] = lanes
    # lock.wheels and user modules are relative to the config's directory
    data.setdefault("lock", {})["wheels"] = [
        str((source.parent / w).resolve()) for w in data.get("lock", {}).get("wheels", [])
    ]
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest, [str(lane["id"]) for lane in lanes]


def run_matrix(cfg: Path, results: Path, workdir: Path, label: str) -> tuple[float, bool]:
    """Wall time of one ``archmatrix matrix``, and whether it had to build a lane image."""
    shutil.rmtree(results, ignore_errors=True)
    say(f"{label}: archmatrix matrix --results {results} --workdir {workdir}")
    start = time.perf_counter()
    done = run([sys.executable, "-m", "archmatrix.cli", "matrix", "--config", cfg,
                "--results", results, "--workdir", workdir], check=False, timeout=1800)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: a check failed somewhere, the timing still holds
        say(f"{label}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
        raise SystemExit(f"{label}: the matrix could not run (exit {done.returncode}); not timing it")
    if done.returncode == 1:
        say(f"{label}: some check failed (exit 1); timing it anyway")
    # a warm run builds nothing; if it did, the suite's source changed under the bench
    rebuilt = "building archmatrix-lane" in done.stderr
    say(f"{label}: {wall:.1f} s" + (" (rebuilt a lane image)" if rebuilt else ""))
    return wall, rebuilt


def bare_command(result: LaneResult, cfg: config_mod.MatrixConfig, host: HostFacts, suite_root: Path,
                 spec: str) -> tuple[list[str], dict[str, str] | None]:
    """The lane's own interpreter command (as its runner built it) running BARE_SCRIPT."""
    runner = result.facts.get("runner") or {}
    lane = cfg.lane(result.lane)
    script = ["-c", BARE_SCRIPT, spec]
    if lane.runner == "venv":
        env, _removed = lane_env(os.environ, suite_root)
        return [str(runner["venv"]), *script], env
    if lane.runner == "qemu":
        env, _removed = lane_env(os.environ, suite_root)
        profile = lane.cpu_profile or DEFAULT_PROFILES[str(lane.options["cpu_profile"])]
        return [*qemu_command(str(runner["qemu"]), profile, str(runner["venv"])), *script], env
    if lane.runner == "docker":
        platform_ = str(lane.options["platform"])
        qemu_cpu = lane.cpu_profile.qemu_cpu if lane.cpu_profile else None
        emulator, cpu_model = emulation(platform_, host, qemu_cpu)
        argv = ["docker", "run", "--rm", "--init", "--network", "none", "--platform", platform_]
        if emulator and cpu_model:
            argv += ["-e", f"QEMU_CPU={cpu_model}"]
        return [*argv, "--entrypoint", "python3", str(runner["image"]), *script], None
    raise SystemExit(f"{result.lane}: no bare command for runner {lane.runner!r}")


def run_bare(commands: Sequence[tuple[str, list[str], dict[str, str] | None]], workers: int) -> tuple[
        float, list[Bare]]:
    def one(item: tuple[str, list[str], dict[str, str] | None]) -> Bare:
        lane, argv, env = item
        start = time.perf_counter()
        try:
            done = run(argv, env=env, timeout=BARE_TIMEOUT)
        except CommandError as exc:
            raise SystemExit(f"bare {lane}: {exc}\n{exc.tail()}") from None
        wall = time.perf_counter() - start
        report = json.loads(done.stdout.strip().splitlines()[-1])
        return Bare(lane, wall, float(report["total_s"]), report["checks"])

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:  # submission order = the matrix's start order
        out = list(pool.map(one, commands))
    return time.perf_counter() - start, out


def remove_bench_images(lane_ids: Sequence[str]) -> list[str]:
    """Delete this bench's own lane images (never another tag), so (c) builds them."""
    out = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "archmatrix-lane"],
              check=False).stdout.split()
    mine = [tag for tag in out if any(tag.startswith(f"archmatrix-lane:{lid}-") for lid in lane_ids
                                      if lid.startswith(PREFIX))]
    if mine:
        run(["docker", "image", "rm", *mine], check=False)
    return mine


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
            + (f" ({model})" if model else "") + f", Python {platform.python_version()}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=ROOT / "ci" / "matrix.yaml")
    p.add_argument("--repeat", type=int, default=3,
                   help="timed runs of each side, interleaved; the best counts")
    p.add_argument("--no-cold", action="store_true", help="skip the cold run")
    p.add_argument("--keep", action="store_true", help="keep the bench directory and its lane images")
    p.add_argument("--dir", type=Path, default=None, help="bench directory (default: a temporary one)")
    args = p.parse_args(argv)

    started = time.perf_counter()
    load_before = os.getloadavg()
    host = detect()
    root = args.dir or Path(tempfile.mkdtemp(prefix="archmatrix-overhead-"))
    root.mkdir(parents=True, exist_ok=True)
    cfg_path, lane_ids = bench_config(args.config.resolve(), root / "matrix.yaml", host)
    if not lane_ids:
        raise SystemExit("no lane of " + ", ".join(LANES) + " can run here")
    cfg = config_mod.load(cfg_path)
    workers = parallelism(cfg, host, len(lane_ids))
    workdir = root / "workdir"  # fresh: nothing downloaded, staged or built yet
    if workdir.exists() and not args.no_cold:
        raise SystemExit(f"{workdir} exists: give a new --dir (the cold run needs a fresh workdir)")
    try:
        # (c) cold first: a fresh workdir and none of this bench's lane images;
        # it is also the warm-up of (a)
        cold = None
        if args.no_cold:
            run_matrix(cfg_path, root / "results-warmup", workdir, "warm-up")
        else:
            removed = remove_bench_images(lane_ids)
            say(f"cold: removed this bench's lane images: {', '.join(removed) or 'none'}")
            cold, _ = run_matrix(cfg_path, root / "results-warmup", workdir, "cold run (and warm-up)")

        # (a) warm and (b) bare, interleaved: this machine may be shared, and
        # alternating the two sides exposes both to the same background load
        lanes = {lid: load(root / "results-warmup" / f"{lid}.json") for lid in lane_ids}
        suite_root = stage_suite(workdir)
        spec = json.dumps({"checks": list(cfg.checks.select), "exclude": list(cfg.checks.exclude)})
        # the environments the warm-up used (its facts), run as their runners run them
        commands = [(lid, *bare_command(lanes[lid], cfg, host, suite_root, spec)) for lid in lane_ids]
        warm_times: list[float] = []
        rebuilt: list[bool] = []
        bare_runs: dict[float, list[Bare]] = {}
        for i in range(args.repeat):
            wall, built = run_matrix(cfg_path, root / f"results-warm{i}", workdir, f"warm run {i + 1}")
            warm_times.append(wall)
            rebuilt.append(built)
            say(f"bare run {i + 1}: {len(commands)} lane process(es), {workers} at a time")
            # in the order the matrix starts them: longest first by the durations it recorded
            order = start_order(lane_ids, read_durations(workdir))
            wall, per_lane = run_bare(sorted(commands, key=lambda c: order.index(c[0])), workers)
            bare_runs[wall] = per_lane
            say(f"bare run {i + 1}: {wall:.1f} s")
        # a warm run that rebuilt an image is not a warm run (unless every one did)
        counted = [t for t, b in zip(warm_times, rebuilt, strict=True) if not b] or warm_times
        warm, bare = min(counted), min(bare_runs)
        best_warm = warm_times.index(warm)
        lanes = {lid: load(root / f"results-warm{best_warm}" / f"{lid}.json") for lid in lane_ids}
        per_lane_bare = bare_runs[bare]
        say("warm matrix: " + ", ".join(f"{t:.1f} s" for t in warm_times)
            + "; bare: " + ", ".join(f"{t:.1f} s" for t in bare_runs))
    finally:
        if not args.keep:
            remove_bench_images(lane_ids)
            shutil.rmtree(root, ignore_errors=True)

    rows = []
    for b in per_lane_bare:
        checks_in_lane = [c for c in lanes[b.lane].checks if not c.id.startswith("wheel.")]
        rows.append([b.lane, f"{lanes[b.lane].duration_s:.1f}", f"{b.wall_s:.1f}", f"{b.inside_s:.1f}",
                     f"{len(b.checks)} / {len(checks_in_lane)}", ", ".join(b.failed) or "-"])
    print()
    print(f"machine: {machine()}")
    print(f"load average: {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after "
          "(other work on this machine inflates both sides)")
    print(f"lanes: {', '.join(lane_ids)}; {workers} at a time on both sides "
          f"(the matrix's plan.parallelism: one per core), longest first")
    print()
    print(tabulate(rows, headers=["lane", "matrix lane s", "bare s", "bare in-process s",
                                  "checks bare / matrix", "bare failures"], tablefmt="simple"))
    print()
    ratio = warm / bare
    print(f"warm matrix  {warm:6.1f} s   (best of {args.repeat}: "
          + ", ".join(f"{t:.1f}" + (" rebuilt, not counted" if b else "")
                      for t, b in zip(warm_times, rebuilt, strict=True)) + ")")
    print(f"bare work    {bare:6.1f} s   (best of {args.repeat}: "
          + ", ".join(f"{t:.1f}" for t in bare_runs) + ")")
    print(f"warm / bare  {ratio:6.2f}×   target ≤ {TARGET}× : {'met' if ratio <= TARGET else 'NOT met'}")
    if cold is not None:
        print(f"cold matrix  {cold:6.1f} s   (fresh --workdir: wheels downloaded (pip's own HTTP cache "
              "may be warm), staged, venvs and lane images built; Debian base images cached)")
    print(f"bench took   {time.perf_counter() - started:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
