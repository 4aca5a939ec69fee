"""Benchmark ``archmatrix audit`` on a real numpy + scipy + scikit-learn + matplotlib + pillow environment.

    python bench/audit_env.py [--baseline REV] [--dir DIR] [--repeat 3] [--packages …]

Stages the packages three times with pip (``pip install --target
--only-binary=:all:``, from the index pip is configured with): for this
host (x86-64 Linux wheels), for ``manylinux_2_28_aarch64`` and for
``macosx_14_0_arm64``. Then audits each, side by side, with the working
tree's archmatrix and with ``--baseline`` (a git revision, default
``main``; its ``src`` is exported with ``git archive``), each for the lane
that environment is for (linux-x86_64-noavx, linux-arm64-docker,
macos-arm64). Printed per environment: the wall time of the whole command
(best of ``--repeat``, the two sides interleaved so both see the same
background load), the ratio, the peak RSS, the exit status and the lane's
prediction on each side. ``--dir`` keeps the staged environments for
another run (they are reused when present).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from archmatrix.command import run

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["numpy", "scipy", "scikit-learn", "matplotlib", "pillow"]
# (environment name, pip platform or None for this host, the lane it is for)
ENVS = [("x86_64", None, "linux-x86_64-noavx"),
        ("aarch64", "manylinux_2_28_aarch64", "linux-arm64-docker"),
        ("macos-arm64", "macosx_14_0_arm64", "macos-arm64")]


def stage(target: Path, platform: str | None, packages: list[str]) -> None:
    if (target / ".staged").exists():
        return
    argv = [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "--only-binary=:all:"]
    if platform is not None:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        argv += ["--platform", platform, "--python-version", version]
    run([*argv, *packages], timeout=1800)
    (target / ".staged").write_text("")


# Runs the audit as its only child, then prints that child's peak RSS (KiB) on stderr's last line.
_MEASURE = """
import resource, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "archmatrix.cli", "audit", *sys.argv[1:]])
sys.stderr.write(f"\\n{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.exit(proc.returncode)
"""


def audit_once(src: Path, env: Path, lane: str) -> tuple[float, float, int, str]:
    """(seconds, peak RSS MB, exit status, the lane's prediction) of one audit in a child process."""
    started = time.perf_counter()
    done = run([sys.executable, "-c", _MEASURE, str(env), "--lane", lane, "--json"],
               env={**os.environ, "PYTHONPATH": str(src)}, check=False, timeout=600)
    seconds = time.perf_counter() - started  # includes the small measuring interpreter's start
    peak = int(done.stderr.strip().splitlines()[-1]) / 1024
    try:
        prediction = json.loads(done.stdout)["lanes"][0]["prediction"]
    except (ValueError, KeyError, IndexError):
        prediction = "(no JSON)"
    return seconds, peak, done.returncode, prediction


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="main", help="git revision to compare with (default: main)")
    ap.add_argument("--dir", type=Path, default=None, help="stage here and keep it (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--packages", nargs="+", default=PACKAGES)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        work = args.dir or Path(tmp)
        old_src = Path(tmp) / "baseline"
        old_src.mkdir()
        archive = Path(tmp) / "baseline.tar"
        run(["git", "-C", str(ROOT), "archive", "-o", str(archive), args.baseline, "src"])
        run(["tar", "-x", "-f", str(archive), "-C", str(old_src)])
        rows = []
        for name, platform, lane in ENVS:
            env = work / name
            stage(env, platform, args.packages)
            best: dict[str, tuple[float, float, int, str]] = {}
            for _ in range(args.repeat):
                for side, src in (("baseline", old_src / "src"), ("new", ROOT / "src")):
                    result = audit_once(src, env, lane)
                    if side not in best or result[0] < best[side][0]:
                        best[side] = result
            old, new = best["baseline"], best["new"]
            rows.append([name, lane, f"{old[0]:.2f}", f"{new[0]:.2f}", f"{old[0] / new[0]:.2f}×",
                         f"{old[1]:.0f} / {new[1]:.0f}", f"{old[2]} / {new[2]}", f"{old[3]} / {new[3]}"])
        print(f"archmatrix audit, {' '.join(args.packages)}; baseline {args.baseline} against the "
              f"working tree; best of {args.repeat}, whole command")
        print(tabulate(rows, headers=["environment", "lane", "baseline s", "new s", "speed-up",
                                      "peak RSS MB", "exit", "prediction"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
