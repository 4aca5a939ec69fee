"""A real project nobody here wrote: its own test suite through the Linux lanes (issue 17).

    PYTHONPATH=src python bench/real_project.py [--project ujson==6.0.0] [--lanes host,...]

1. Downloads the project's sdist with pip (``pip download --no-binary :all:``, so from whatever
   index pip is configured for; nothing here names a host) into an ignored cache,
   ``.archmatrix/real-project/``, once.
2. Extracts its tests (``--tests``, default ``tests``) and its pytest configuration file (nothing
   else: the package under test comes from the lock, as the project's published wheels).
3. Writes a config beside them: the lock pins the project, pytest and what pytest requires
   (``--pin``); ``checks.pytest`` points at the tests; the lanes are ``ci/matrix.yaml``'s.
4. Runs ``archmatrix matrix`` on it and prints, per lane, the cells by outcome, the lane's time
   (environment, self-check and tests) and the time its pytest processes took.
5. Runs the host lane alone (``archmatrix lane host``, best of ``--repeat``) interleaved with plain
   ``pytest`` on the same tests with the host lane's own interpreter (its staged venv), and once the
   same for the emulated lane that shares that venv (``linux-x86_64-noavx``: plain pytest under its
   emulator and CPU model); prints the ratios. (The matrix's lanes run side by side, so their
   times there are not compared with a plain pytest run alone.)

Nothing is asserted: the numbers go in docs/own-package.md. Lanes never reach the network: the
sdist and the wheels are fetched on the host.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import yaml
from tabulate import tabulate

from archmatrix.command import run
from archmatrix.suite.result import LaneResult, load

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".archmatrix" / "real-project"  # .archmatrix/ is git-ignored
LANES = ("host", "linux-amd64-docker", "linux-arm64-docker", "linux-x86_64-noavx")
# pytest 9 and what it requires (it imports pygments), cp311 wheels or pure Python
PYTEST_PINS = ("pytest==9.2.0", "iniconfig==2.3.1", "pluggy==1.7.0", "packaging==26.4", "pygments==2.21.0")
CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
PLAIN_TIMEOUT = 3600


def sdist(project: str, cache: Path) -> Path:
    """The project's sdist in ``cache``, downloaded by pip the first time."""
    name, _, version = project.partition("==")
    stem = f"{name.replace('_', '-').lower()}-{version}.tar.gz"  # sdist names spell the name either way
    found = [p for p in cache.glob("*.tar.gz") if p.name.lower().replace("_", "-") == stem]
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", project,
         "--dest", str(cache)], timeout=600)
    found = [p for p in cache.glob("*.tar.gz") if p.name.lower().replace("_", "-") == stem]
    if not found:
        raise SystemExit(f"pip downloaded no sdist of {project} into {cache}")
    return found[0]


def extract_tests(archive: Path, dest: Path, tests: str) -> Path:
    """``<sdist>/<tests>/`` and its pytest configuration into ``dest`` (recreated); returns ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        top = members[0].name.split("/")[0]
        wanted = [m for m in members
                  if m.name.startswith(f"{top}/{tests}/") or m.name in {f"{top}/{c}" for c in CONFIG_FILES}]
        for m in wanted:
            m.name = m.name[len(top) + 1:]
        tar.extractall(dest, members=wanted, filter="data")
    if not (dest / tests).is_dir():
        raise SystemExit(f"{archive.name} has no {tests}/ directory")
    return dest


def write_config(project_dir: Path, pins: list[str], tests: str, lanes: list[str], timeout: int) -> Path:
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    packages = dict(pin.split("==", 1) for pin in pins)
    config = {
        "lock": {"python": shipped["lock"]["python"], "packages": packages},
        "checks": {"select": ["lane.self", "pytest::*"], "timeout": timeout, "pytest": [tests]},
        "lanes": [lane for lane in shipped["lanes"] if lane["id"] in lanes],
    }
    path = project_dir / "matrix.yaml"  # beside the tests: checks.pytest is relative to it
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def plain_pytest(prefix: list[str], python: str, project_dir: Path, tests: str) -> tuple[float, str]:
    """Plain ``pytest`` on the same tests with ``python`` (behind ``prefix``, an emulator or nothing)."""
    drop = ("PYTHONPATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # as the lanes drop them
    env = {k: v for k, v in os.environ.items() if k not in drop}
    start = time.monotonic()
    done = run([*prefix, python, "-m", "pytest", tests, "-q", "-p", "no:cacheprovider"], cwd=project_dir,
               env=env, check=False, timeout=PLAIN_TIMEOUT)
    took = time.monotonic() - start
    last = [ln for ln in done.stdout.splitlines() if ln.strip()][-1:] or [f"exit {done.returncode}"]
    return took, last[0].strip("= ")


def archmatrix(*args: str) -> None:
    run([sys.executable, "-m", "archmatrix.cli", *args], env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        cwd=ROOT, check=False, timeout=4 * 3600, capture=False)


def counts(lane: LaneResult) -> str:
    by = collections.Counter(c.outcome.value for c in lane.checks if c.id.startswith("pytest::"))
    if not by:
        return f"{lane.status}: {lane.reason}"[:120]
    return " · ".join(f"{n} {outcome}" for outcome, n in by.most_common())


def pytest_seconds(lane: LaneResult) -> float:
    return float((lane.facts.get("pytest") or {}).get("duration_s") or 0.0)


def emulator_prefix(lane: LaneResult) -> list[str] | None:
    """How the qemu lane started its interpreter: the emulator and its CPU model, from its facts."""
    runner: dict[str, Any] = lane.facts.get("runner") or {}
    if not runner.get("qemu") or not runner.get("qemu_cpu"):
        return None
    return [str(runner["qemu"]), "-cpu", str(runner["qemu_cpu"])]


def solo(config: Path, lane_id: str, out: Path, workdir: Path) -> LaneResult:
    """The lane alone (its environment already staged by the matrix run), for a fair comparison."""
    if out.exists():
        shutil.rmtree(out)
    archmatrix("lane", lane_id, "--config", str(config), "--results", str(out), "--workdir", str(workdir))
    return load(out / f"{lane_id}.json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--project", default="ujson==6.0.0", help="name==version on the configured index")
    p.add_argument("--tests", default="tests", help="the test directory inside the sdist")
    p.add_argument("--pin", action="append", default=[], help="more name==version pins the tests need")
    p.add_argument("--lanes", default=",".join(LANES))
    p.add_argument("--timeout", type=int, default=300, help="seconds per test (checks.timeout)")
    p.add_argument("--repeat", type=int, default=3, help="solo host lane and plain pytest runs (best counts)")
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--no-matrix", action="store_true", help="reuse the last matrix results")
    args = p.parse_args()
    lanes = args.lanes.split(",")
    name = args.project.partition("==")[0]
    archive = sdist(args.project, args.cache / "sdist")
    project_dir = extract_tests(archive, args.cache / name, args.tests)
    pins = [args.project, *PYTEST_PINS, *args.pin]
    config = write_config(project_dir, pins, args.tests, lanes, args.timeout)
    results, workdir = args.cache / f"{name}-results", args.cache / "workdir"
    wall = 0.0
    if not args.no_matrix:
        if results.exists():
            shutil.rmtree(results)
        start = time.monotonic()
        archmatrix("matrix", "--config", str(config), "--results", str(results), "--workdir", str(workdir))
        wall = time.monotonic() - start
    got = {lane: load(results / f"{lane}.json") for lane in lanes if (results / f"{lane}.json").is_file()}
    # Lanes of one matrix run side by side on a 2-core machine: their times are not comparable with
    # plain pytest run alone. So the lanes sharing the host's venv also run alone, interleaved with
    # plain pytest in the same venv (natively, and under the noavx lane's emulator and CPU model).
    fair: dict[str, tuple[float, float, str]] = {}  # lane -> (pytest in it alone, plain pytest, summary)
    host = got.get("host")
    python = str((host.facts.get("runner") or {}).get("venv", "")) if host else ""
    pairs: list[tuple[str, list[str], int]] = []
    if python:
        pairs.append(("host", [], args.repeat))
        noavx = got.get("linux-x86_64-noavx")
        prefix = emulator_prefix(noavx) if noavx else None
        if prefix:
            pairs.append(("linux-x86_64-noavx", prefix, 1))  # emulated: minutes a run
    for lane_id, prefix, repeat in pairs:
        lane_runs: list[float] = []
        plain_runs: list[float] = []
        summary = ""
        for _ in range(repeat):
            lane_runs.append(pytest_seconds(solo(config, lane_id, args.cache / "solo", workdir)))
            took, summary = plain_pytest(prefix, python, project_dir, args.tests)
            plain_runs.append(took)
        fair[lane_id] = (min(lane_runs), min(plain_runs), summary)
    rows = []
    for lane_id, lane in got.items():
        solo_s, plain_s, _ = fair.get(lane_id, (0.0, 0.0, ""))
        rows.append([lane_id, counts(lane), f"{lane.duration_s:.1f}", f"{pytest_seconds(lane):.1f}",
                     f"{solo_s:.1f}" if solo_s else "–", f"{plain_s:.1f}" if plain_s else "–",
                     f"{solo_s / plain_s:.2f}x" if plain_s else "–",
                     (lane.facts.get("pytest") or {}).get("processes", "?")])
    print(f"\n{args.project}: {archive.name}, tests {args.tests}/, matrix wall time {wall:.0f} s "
          f"(lanes in parallel)")
    print(tabulate(rows, headers=["lane", "pytest cells by outcome", "lane s", "pytest in lane s",
                                  "alone s", "plain s", "ratio", "processes"], disable_numparse=True))
    print("lane s, pytest in lane s: in the matrix run, lanes side by side; alone s: pytest in the lane "
          f"run alone (best of {args.repeat} for host); plain s: plain pytest, same interpreter and venv "
          "(and emulator)")
    for lane_id, (_, took, summary) in fair.items():
        print(f"plain pytest ({lane_id}): {took:.1f} s — {summary}")


if __name__ == "__main__":
    main()
