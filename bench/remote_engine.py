"""What a Docker lane costs on another engine, and what QEMU costs against native, on one machine.

    python bench/remote_engine.py [--config ci/matrix.yaml] [--workdir .archmatrix] [--select PATTERN ...]
                                  [--no-warmup]

Runs ``linux-amd64-docker`` and ``linux-arm64-docker`` three ways with
``archmatrix matrix``: on the local engine (warm: its images cached by a
first, untimed run), then on a second engine of the bench's own
(tests/integration/second_engine.py: fresh data root, no shared files) cold —
its base images moved there from the local engine and its lane images built
through its API — and warm. Printed side by side: each lane's wall time (the
lane's own ``duration_s``) and the whole command's, with ratios to the local
run; what moving the base images cost; and, from the local run, every check's
time natively (amd64 on this x86-64 engine) against under QEMU (arm64), with
the ratio: what an arm64 lane gains on a native arm64 engine, as far as one
x86-64 machine can show it (the same suite, native against emulated).
``--select`` runs only those checks (fnmatch patterns; default every check of
the config): where a lane runs does not depend on which checks it runs.
``--no-warmup`` skips the untimed first run when the local images are known
to be built.

Needs root, dockerd, unshare and QEMU's aarch64 binfmt handler.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from second_engine import second_engine  # noqa: E402

from archmatrix.suite.result import LaneResult, load  # noqa: E402

LANES = ("linux-amd64-docker", "linux-arm64-docker")
MOVED = re.compile(r"(archmatrix-base:\S+): moved in ([0-9.]+) s")
MOVING = re.compile(r"(archmatrix-base:\S+): moving it from the local engine to .* \(([0-9]+) MB\)")


def config(source: Path, dest: Path, docker_host: str, select: list[str] | None) -> Path:
    data = yaml.safe_load(source.read_text())
    data["lanes"] = [lane for lane in data["lanes"] if lane["id"] in LANES]
    if select:
        data["checks"]["select"] = select
    data["checks"]["timeout"] = 900  # a machine shared with other work: measure, do not time out
    for lane in data["lanes"]:
        if docker_host:
            lane["options"]["docker_host"] = docker_host
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def matrix(cfg: Path, results: Path, workdir: Path) -> tuple[float, str, dict[str, LaneResult]]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "archmatrix.cli", "matrix", "--config", str(cfg), "--results", str(results),
         "--workdir", str(workdir)], cwd=ROOT, capture_output=True, text=True, timeout=3600,
    )
    took = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"archmatrix matrix failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return took, proc.stderr, {lane: load(results / f"{lane}.json") for lane in LANES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "ci" / "matrix.yaml")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".archmatrix")
    parser.add_argument("--select", action="append", help="only these checks (repeatable)")
    parser.add_argument("--no-warmup", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))

    local_cfg = config(args.config, tmp / "local.yaml", "", args.select)
    if not args.no_warmup:
        matrix(local_cfg, tmp / "warmup", args.workdir)  # untimed: local images built if missing
    runs: dict[str, tuple[float, str, dict[str, LaneResult]]] = {}
    runs["local engine (warm)"] = matrix(local_cfg, tmp / "local", args.workdir)
    with second_engine() as engine:
        remote_cfg = config(args.config, tmp / "remote.yaml", engine.url, args.select)
        runs["second engine, cold"] = matrix(remote_cfg, tmp / "cold", args.workdir)
        runs["second engine, warm"] = matrix(remote_cfg, tmp / "warm", args.workdir)

    base = runs["local engine (warm)"]
    rows = []
    for name, (took, _err, lanes) in runs.items():
        row: list[object] = [name, f"{took:.1f}", f"{took / base[0]:.2f}x"]
        for lane in LANES:
            d = lanes[lane].duration_s
            row += [f"{d:.1f}", f"{d / base[2][lane].duration_s:.2f}x"]
        rows.append(row)
    headers = ["run", "command s", "ratio"]
    for lane in LANES:
        headers += [f"{lane} s", "ratio"]
    print(tabulate(rows, headers=headers, tablefmt="github"))

    cold_err = runs["second engine, cold"][1]
    sizes = dict(MOVING.findall(cold_err))
    moved = [(tag, sizes.get(tag, "?"), seconds) for tag, seconds in MOVED.findall(cold_err)]
    print()
    print(tabulate(moved or [("(none moved: built through the engine)", "", "")],
                   headers=["base image moved to the second engine", "MB", "s"], tablefmt="github"))

    # native (amd64 on this x86-64 engine) against QEMU (arm64), check by check, same suite
    amd, arm = base[2]["linux-amd64-docker"], base[2]["linux-arm64-docker"]
    arm_by_id = {c.id: c.duration_s for c in arm.checks}
    pairs = [(c.id, c.duration_s, arm_by_id[c.id]) for c in amd.checks
             if c.id in arm_by_id and c.duration_s >= 0.05 and arm_by_id[c.id] > 0]
    pairs.sort(key=lambda p: p[2], reverse=True)
    print()
    print(tabulate([(i, f"{n:.2f}", f"{q:.2f}", f"{q / n:.1f}x") for i, n, q in pairs[:15]],
                   headers=["check (slowest under QEMU)", "native amd64 s", "QEMU arm64 s", "ratio"],
                   tablefmt="github"))
    if pairs:
        print(f"\nmedian QEMU/native ratio over {len(pairs)} checks of >= 0.05 s: "
              f"{statistics.median(q / n for _i, n, q in pairs):.1f}x; lanes: native {amd.duration_s:.1f} s, "
              f"QEMU {arm.duration_s:.1f} s ({arm.duration_s / amd.duration_s:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
