"""What a second Python costs: the two-version matrix against the one-version matrix (warm), and how
often the wheels every version shares are fetched and installed (cold staging).

    python bench/python_versions.py [--pythons 3.11,3.13] [--lane ID ...] [--repeat 1] [--no-cold]

(a) warm matrix: ci/matrix.yaml restricted to ``--lane`` (default host,
    linux-x86_64-noavx, linux-arm64-docker), once with ``python: "3.11"`` and
    once with ``python: [3.11, 3.13]`` (``--pythons``); each run once to warm
    every cache (staged wheels, venvs, base and lane images), then timed
    alternately (best of ``--repeat``), the same workdir for both. The issue's
    target: two versions cost at most 2.1x one.
(b) cold staging of the two-version lock, for every (architecture, Python,
    glibc) target those lanes stage (``--unserialised``: without serialising
    the fetches, to see what that saves), two at a time as the matrix runs lanes on
    two cores, into a fresh workdir with an empty wheel cache: every ``pip
    download`` is counted by the requirements it named. A wheel every version
    shares (``py3-none-any``, ``abi3``) should be fetched once in all, not once
    per target; it is then installed into each target's environment
    (``lib/python3.X/site-packages`` differs by version), counted too.

Why 3.13 and not 3.12 by default: no Debian release ships 3.12, so this host
has no 3.12 container (docs/config.md, "Several Pythons").
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from packaging.utils import parse_wheel_filename
from tabulate import tabulate

from archmatrix import config as config_mod
from archmatrix.command import run
from archmatrix.hostfacts import detect
from archmatrix.pyversions import docker_base
from archmatrix.runners.docker import PLATFORMS
from archmatrix.runners.venv import host_glibc, host_prefix
from archmatrix.staging import lock as lock_mod
from archmatrix.staging import pip as pip_mod
from archmatrix.staging.lock import container_prefix, stage_lock
from archmatrix.staging.result import read_marker

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "ci" / "matrix.yaml"
DEFAULT_LANES = ("host", "linux-x86_64-noavx", "linux-arm64-docker")
TARGET = 2.1


def write_config(path: Path, lanes: Sequence[str], pythons: Sequence[str]) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["lock"]["python"] = pythons[0] if len(pythons) == 1 else list(pythons)
    data["lanes"] = [lane for lane in data["lanes"] if lane["id"] in lanes]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    config_mod.load(path)
    return path


def timed_matrix(cfg: Path, results: Path, workdir: Path) -> tuple[float, int]:
    started = time.monotonic()
    proc = run([sys.executable, "-m", "archmatrix.cli", "matrix", "--config", str(cfg), "--results",
                str(results), "--workdir", str(workdir), "--no-annotations"], timeout=7200, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"matrix failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed, proc.returncode


def warm(args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    one = write_config(tmp / "one.yaml", args.lane, args.pythons[:1])
    two = write_config(tmp / "two.yaml", args.lane, args.pythons)
    for cfg in (one, two):  # warm every cache
        elapsed, _code = timed_matrix(cfg, tmp / f"results-warmup-{cfg.stem}", args.workdir)
        print(f"warm-up {cfg.stem}: {elapsed:.1f} s", file=sys.stderr)
    times: dict[str, list[float]] = {"one": [], "two": []}
    for i in range(args.repeat):
        for cfg in (one, two):
            elapsed, code = timed_matrix(cfg, tmp / f"results-{cfg.stem}-{i}", args.workdir)
            print(f"{cfg.stem} #{i + 1}: {elapsed:.1f} s (exit {code})", file=sys.stderr)
            times[cfg.stem].append(elapsed)
    return min(times["one"]), min(times["two"])


def shared(name: str) -> bool:
    """A wheel every CPython version can install: pure Python or the stable ABI."""
    tags = parse_wheel_filename(name)[3]
    return all(t.abi in ("none", "abi3") and (t.platform == "any" or t.abi == "abi3") for t in tags)


def cold_staging(args: argparse.Namespace, tmp: Path) -> list[list[object]]:
    """Stage every target of the two-version matrix into a fresh workdir; count fetches and installs."""
    cfg = config_mod.load(write_config(tmp / "two-cold.yaml", args.lane, args.pythons))
    host = detect(check_docker=False)
    workdir = tmp / "cold-work"
    fetched: Counter[str] = Counter()
    real_download = pip_mod.download

    def counting(requirements: Sequence[str], wheel_cache: Path, pip_args: Sequence[str]) -> str | None:
        before = {p.name for p in wheel_cache.glob("*.whl")}
        reason = real_download(requirements, wheel_cache, pip_args)
        fetched.update(p.name for p in wheel_cache.glob("*.whl") if p.name not in before)
        return reason

    lock_mod.pip.download = counting  # type: ignore[attr-defined]
    serialised = lock_mod._FETCHING
    if args.unserialised:  # the ablation: fetches of concurrent targets may overlap
        lock_mod._FETCHING = contextlib.nullcontext()  # type: ignore[assignment]
    targets: dict[tuple[str, str, tuple[int, int], str], object] = {}
    for lane in cfg.lanes:
        python = lane.target.python if lane.target else cfg.lock.python
        if lane.runner == "docker":
            base = docker_base(lane)
            if base is None:
                continue
            arch = PLATFORMS[str(lane.options["platform"])]
            targets[(arch, python, base.glibc, "container")] = container_prefix(python)
        else:  # venv and qemu lanes share one venv of this host's interpreter
            interpreter = host.interpreter(python)
            if interpreter is None:
                continue
            targets[(host.machine, python, host_glibc(), "venv")] = host_prefix(interpreter, python)

    def stage(key: tuple[str, str, tuple[int, int], str]) -> Path:
        arch, python, glibc, _kind = key
        return stage_lock(cfg.lock.for_python(python), cfg.path.parent, arch, glibc, workdir,
                          spec=targets[key]).prefix  # type: ignore[arg-type]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        prefixes = list(pool.map(stage, targets))
    elapsed = time.monotonic() - started
    lock_mod.pip.download = real_download  # type: ignore[attr-defined]
    lock_mod._FETCHING = serialised
    print(f"cold staging of {len(targets)} targets: {elapsed:.0f} s", file=sys.stderr)
    cache = sorted(p.name for p in (workdir / "wheels").glob("*.whl"))
    rows: list[list[object]] = []
    # the wheels each staged environment was installed from (its marker records them)
    markers = [read_marker(prefix) for prefix in prefixes]
    installed_from = [set(m.wheels) for m in markers if m is not None]
    for name in cache:
        installs = sum(1 for wheels in installed_from if name in wheels)
        rows.append([name, "shared" if shared(name) else "per target", fetched[name], installs])
    described = [f"{arch} {py} glibc {glibc[0]}.{glibc[1]} ({kind})" for arch, py, glibc, kind in targets]
    print(f"targets: {'; '.join(described)}", file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pythons", default="3.11,3.13", type=lambda s: s.split(","))
    parser.add_argument("--lane", action="append", default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".archmatrix")
    parser.add_argument("--no-cold", action="store_true")
    parser.add_argument("--no-warm", action="store_true")
    parser.add_argument("--unserialised", action="store_true",
                        help="cold staging without serialised fetches (to see what the serialisation saves)")
    args = parser.parse_args()
    args.lane = args.lane or list(DEFAULT_LANES)
    print(f"host: {platform.machine()}, lanes: {', '.join(args.lane)}, Pythons: {', '.join(args.pythons)}")
    with tempfile.TemporaryDirectory(prefix="bench-pyversions-") as name:
        tmp = Path(name)
        if not args.no_cold:
            rows = cold_staging(args, tmp)
            print(tabulate(rows, headers=["wheel", "kind", "fetched", "installed into"]))
            shared_rows = [r for r in rows if r[1] == "shared"]
            fetches = sum(int(str(r[2])) for r in shared_rows)
            print(f"shared wheels: {len(shared_rows)}, fetched {fetches} time(s) in all "
                  f"({fetches / max(1, len(shared_rows)):.1f} per wheel)")
        if not args.no_warm:
            one, two = warm(args, tmp)
            print(tabulate([[f"1 Python ({args.pythons[0]})", f"{one:.1f}"],
                            [f"{len(args.pythons)} Pythons ({', '.join(args.pythons)})", f"{two:.1f}"]],
                           headers=["warm matrix", "seconds"]))
            print(f"ratio: {two / one:.2f}x (target <= {TARGET}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
