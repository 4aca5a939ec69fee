"""What containment and the self-check cost the warm no-AVX lane.

    python bench/containment_overhead.py [--config ci/matrix.yaml] [--repeat 3] [--lane linux-x86_64-noavx]

Both sides run the same warm lane (staged wheels and venv cached by a first,
untimed run of each) with ``archmatrix lane ID --no-probes``, interleaved A B
A B … so both see the same background load, and the ratio is taken pair by
pair:

(A) as shipped: the lane's ``sys.executable`` is the launcher that re-enters
    qemu (every child stays on the emulated CPU) and ``lane.self`` runs first;
(B) as before either existed: ``contain_children: false`` (the interpreter is
    started by qemu directly) and ``lane.self`` excluded.

The target (issue 14) is A/B ≤ 1.10. Prints each run, the best of each side
and the median of the pairwise ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from archmatrix.command import run

ROOT = Path(__file__).resolve().parents[1]


def variant(config: Path, lane_id: str, dest: Path, *, contained: bool) -> Path:
    data = yaml.safe_load(config.read_text())
    lane = next(ln for ln in data["lanes"] if ln["id"] == lane_id)
    data["lanes"] = [lane]
    if not contained:
        lane["options"] = {**lane.get("options", {}), "contain_children": False}
        data.setdefault("checks", {})["exclude"] = ["lane.self"]
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def timed(config: Path, lane_id: str, results: Path, workdir: Path) -> float:
    started = time.monotonic()
    run([sys.executable, "-m", "archmatrix", "lane", lane_id, "--config", str(config), "--no-probes",
         "--results", str(results), "--workdir", str(workdir)], check=False, timeout=1800)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "ci" / "matrix.yaml")
    parser.add_argument("--lane", default="linux-x86_64-noavx")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".archmatrix")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="archmatrix-bench-") as tmp:
        tmpdir = Path(tmp)
        sides = {
            "A contained + self-check": variant(args.config, args.lane, tmpdir / "a.yaml", contained=True),
            "B uncontained, no self-check": variant(args.config, args.lane, tmpdir / "b.yaml",
                                                    contained=False),
        }
        for name, cfg in sides.items():  # warm every cache first
            print(f"warming {name} …", flush=True)
            timed(cfg, args.lane, tmpdir / "results", args.workdir)
        times: dict[str, list[float]] = {name: [] for name in sides}
        for i in range(args.repeat):
            for name, cfg in sides.items():
                took = timed(cfg, args.lane, tmpdir / "results", args.workdir)
                times[name].append(took)
                print(f"run {i + 1}: {name}: {took:.1f} s", flush=True)
    (a, b) = times.values()
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    print(f"\n{args.lane}, warm, {args.repeat} interleaved pairs")
    for name, values in times.items():
        print(f"  {name:<30} best {min(values):6.1f} s   median {statistics.median(values):6.1f} s")
    print(f"  A/B median of pairwise ratios: {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); target <= 1.10")
    return 0


if __name__ == "__main__":
    sys.exit(main())
