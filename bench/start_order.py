"""What starting the longest lanes first saves: the warm matrix in config order against longest first.

    python bench/start_order.py [--config ci/matrix.yaml] [--repeat 2] [--workdir .archmatrix]

The runnable lanes of the config (default: ci/matrix.yaml's, all this host
can run; ``--no-predict``), warm: one run first to warm every cache and record
each lane's duration, then timed alternately (best of ``--repeat``, so both
sides see the same background load):

- config order: ``lane-durations.json`` removed from the workdir before the
  run, so every lane is untimed and they start in the config's order — what
  archmatrix did before ``archmatrix.schedule``;
- longest first: the durations the previous run recorded are there, so the
  longest lanes start first.

The same workdir, lanes and parallelism (``plan.parallelism``, one per core)
on both sides; only the start order differs. Prints both times and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from archmatrix.command import run
from archmatrix.schedule import DURATIONS, read_durations, start_order

ROOT = Path(__file__).resolve().parents[1]


def timed_matrix(cfg: Path, results: Path, workdir: Path) -> float:
    started = time.monotonic()
    proc = run([sys.executable, "-m", "archmatrix.cli", "matrix", "--config", str(cfg), "--results",
                str(results), "--workdir", str(workdir), "--no-annotations", "--no-predict"],
               timeout=7200, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"matrix failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "ci" / "matrix.yaml")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".archmatrix")
    args = parser.parse_args()
    durations = args.workdir / DURATIONS
    with tempfile.TemporaryDirectory(prefix="bench-start-order-") as tmp_name:
        tmp = Path(tmp_name)
        warm = timed_matrix(args.config, tmp / "results-warmup", args.workdir)
        print(f"warm-up: {warm:.1f} s", file=sys.stderr)
        times: dict[str, list[float]] = {"config order": [], "longest first": []}
        for i in range(args.repeat):
            recorded = read_durations(args.workdir)
            order = start_order(sorted(recorded), recorded)
            print(f"#{i + 1} longest first: {', '.join(f'{lane} {recorded[lane]:.0f} s' for lane in order)}",
                  file=sys.stderr)
            times["longest first"].append(timed_matrix(args.config, tmp / f"results-lpt-{i}", args.workdir))
            durations.unlink(missing_ok=True)  # every lane untimed: the config's order
            times["config order"].append(timed_matrix(args.config, tmp / f"results-config-{i}", args.workdir))
            print(f"#{i + 1}: longest first {times['longest first'][-1]:.1f} s, "
                  f"config order {times['config order'][-1]:.1f} s", file=sys.stderr)
    rows = [[name, f"{min(values):.1f}"] for name, values in times.items()]
    print(tabulate(rows, headers=[f"warm matrix (best of {args.repeat})", "seconds"]))
    ratio = min(times["longest first"]) / min(times["config order"])
    print(f"ratio: longest first / config order = {ratio:.2f}")


if __name__ == "__main__":
    main()
