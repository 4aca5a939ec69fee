"""``archmatrix matrix --predict-only`` on the default lock: cold and warm, against its targets.

    python bench/predict_only.py [--config ci/matrix.yaml] [--repeat 3] [--pip-cache] [--keep]

(a) cold: a fresh ``--workdir`` (no downloaded wheels, no cached readings) and,
    unless ``--pip-cache``, pip's own HTTP cache turned off (``PIP_NO_CACHE_DIR=1``),
    so every wheel of every platform (manylinux x86_64 and aarch64, macOS arm64
    and x86_64) is downloaded and every binary read. Run once.
(b) warm: the same command again on that workdir (wheels and readings cached),
    best of ``--repeat``.

Each run is the CLI in a subprocess (``python -m archmatrix.cli``: imports,
host probes, downloads, reading, every report written), timed from outside.
The targets (issue 19) are cold < 30 s and warm < 5 s; the table prints both
and the ratios. Everything the bench creates is removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from archmatrix.command import CommandError, run

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"cold": 30.0, "warm": 5.0}


def once(config: Path, workdir: Path, results: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the CLI and every process it started: pip, the reading pool)."""
    argv = [sys.executable, "-m", "archmatrix.cli", "matrix", "--predict-only", "--config", str(config),
            "--workdir", str(workdir), "--results", str(results)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        run(argv, env=env, timeout=900)
    except CommandError as exc:
        if exc.returncode != 1:  # 1: a predicted failure in a required lane is still a finished run
            raise SystemExit(f"predict-only failed: {exc}\n{exc.tail()}") from None
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "ci" / "matrix.yaml")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--pip-cache", action="store_true", help="let pip use its HTTP cache in the cold run")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    cold_env = env if args.pip_cache else {**env, "PIP_NO_CACHE_DIR": "1"}
    try:
        workdir, results = base / "work", base / "results"
        cold, cold_cpu = once(args.config, workdir, results, cold_env)
        warm, warm_cpu = min(once(args.config, workdir, results, env) for _ in range(max(1, args.repeat)))
        wheels = sorted(p.name for p in (workdir / "wheels").glob("*.whl"))
        size = sum((workdir / "wheels" / w).stat().st_size for w in wheels) / 2**20
        rows = [[name, f"{t:.1f} s", f"< {TARGETS[name]:.0f} s", f"{t / TARGETS[name]:.2f}×",
                 "ok" if t < TARGETS[name] else "OVER", f"{cpu:.1f} s"]
                for name, t, cpu in (("cold", cold, cold_cpu), ("warm", warm, warm_cpu))]
        # CPU seconds do not depend on what else the machine runs; wall seconds do
        print(tabulate(rows, headers=["run", "wall", "target", "wall/target", "", "CPU (all processes)"]))
        print(f"\n{len(wheels)} wheels ({size:.0f} MiB) for 4 platforms; warm/cold = {warm / cold:.2f}; "
              f"cpus: {os.cpu_count()}; load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}; "
              f"pip cache in the cold run: {'on' if args.pip_cache else 'off'}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept: {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
