"""Benchmark the linux/arm64 Docker lane: cold, warm, and host staging against pip under QEMU.

    python bench/docker_lanes.py [--config ci/matrix.yaml] [--keep]

Measured side by side in one run, on this host:

(a) cold arm64 lane: ``archmatrix lane`` with a fresh ``--workdir`` (empty
    wheel cache, nothing staged, no lane image). The Debian base image is
    reused: it is a one-time build per machine, reported separately.
(b) warm arm64 lane: the same command and workdir again; asserts that nothing
    was rebuilt (no image build, same image id, no new staging).
(c) host staging (``archmatrix.staging.lock.stage_site_packages`` for aarch64, empty
    wheel cache, downloads included) against the naive way: pip installing the
    same lock inside an emulated linux/arm64 container. Containers have no
    network, so the naive side gets the same wheels pre-downloaded on the host
    and mounted read-only; its download time is excluded, which favours it.
    A second staging from the already downloaded wheels gives the like-for-like
    ratio too. Both sides install with pip's defaults (bytecode compiled). Each
    side runs ``--repeat`` times (default 3) and the best run counts.

The lane runs under its own lane id, so its image tag is new (cold) and the
repository's cached lane images are left alone; that image and the temporary
directory are removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tabulate import tabulate

from archmatrix import config
from archmatrix.baseimage import DEFAULT_PACKAGES as BASE_PACKAGES
from archmatrix.baseimage import DEFAULT_SUITE as BASE_SUITE
from archmatrix.baseimage import BaseImageError, base_image_tag, ensure_base_image
from archmatrix.command import CommandError, run
from archmatrix.hostfacts import detect
from archmatrix.runners.docker import BOOKWORM_GLIBC
from archmatrix.staging.lock import stage_site_packages
from archmatrix.staging.result import StagingResult

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = "linux/arm64"
LANE = "linux-arm64-docker"
TARGET_RATIO = 5.0
# "[  12.3s] lane-id   message": the orchestrator's progress lines (stderr)
PROGRESS = re.compile(r"^\[\s*(?P<t>[0-9.]+)s\]\s+(?P<lane>\S+)\s+(?P<msg>.*)$")


@dataclass
class LaneTiming:
    wall_s: float
    events: list[tuple[float, str]] = field(default_factory=list)

    def at(self, needle: str) -> float | None:
        return next((t for t, msg in self.events if needle in msg), None)

    def span(self, start: str, end: str) -> float | None:
        a, b = self.at(start), self.at(end)
        return b - a if a is not None and b is not None else None

    def said(self, needle: str) -> bool:
        return self.at(needle) is not None

    def built(self) -> list[str]:
        """Tags of the lane images this run built."""
        return [msg.split()[1] for _, msg in self.events if msg.startswith("building ")]


def lane_config(source: Path, lane_id: str, dest: Path) -> Path:
    """``source`` with only the arm64 Docker lane, renamed ``lane_id`` (so its image tag is new)."""
    data = yaml.safe_load(source.read_text())
    lanes = [lane for lane in data["lanes"] if lane["id"] == LANE]
    if not lanes:
        raise SystemExit(f"{source}: no lane {LANE}")
    lanes[0]["id"] = lane_id
    data["lanes"] = lanes
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    config.load(dest)
    return dest


def run_lane(lane_id: str, cfg: Path, workdir: Path, results: Path, label: str) -> LaneTiming:
    events: list[tuple[float, str]] = []

    def on_line(line: str) -> None:
        match = PROGRESS.match(line)
        if match and match["lane"] == lane_id:
            events.append((float(match["t"]), match["msg"]))
            if not re.match(r"\d+/\d+ ", match["msg"]):  # phases, not every check
                print(f"  {label}: [{float(match['t']):6.1f}s] {match['msg']}", flush=True)

    argv = [sys.executable, "-m", "archmatrix.cli", "lane", lane_id, "--config", str(cfg),
            "--workdir", str(workdir), "--results", str(results)]
    started = time.monotonic()
    try:
        run(argv, cwd=ROOT, timeout=3600, on_line=on_line)
    except CommandError as exc:
        raise SystemExit(f"the {label} lane run failed: {exc}\n{exc.tail(30)}") from exc
    return LaneTiming(time.monotonic() - started, events)


def naive_pip_in_container(client: Any, base: str, wheels: Path, pip_wheel: Path, out: Path,
                           requirements: Sequence[str]) -> float:
    """pip installing the lock inside an emulated linux/arm64 container; seconds."""
    from docker.errors import DockerException

    command = ["python3", f"/pipwheel/{pip_wheel.name}/pip", "install", "--no-index", "--find-links",
               "/wheels", "--target", "/out/site-packages", "--disable-pip-version-check",
               "--no-cache-dir", "--root-user-action=ignore", *requirements]
    started = time.monotonic()
    container = client.containers.run(
        base, command, platform=PLATFORM, network_mode="none", init=True, detach=True,
        volumes={str(wheels): {"bind": "/wheels", "mode": "ro"},
                 str(pip_wheel.parent): {"bind": "/pipwheel", "mode": "ro"},
                 str(out): {"bind": "/out", "mode": "rw"}},
    )
    try:
        status = container.wait(timeout=3600)
        elapsed = time.monotonic() - started
        if status.get("StatusCode") != 0:
            logs = container.logs().decode(errors="replace")
            raise SystemExit(f"pip inside the container failed ({status}):\n{logs[-3000:]}")
        return elapsed
    finally:
        try:
            container.remove(force=True)
        except DockerException as exc:
            print(f"warning: could not remove container {container.id[:12]}: {exc}", file=sys.stderr)


def dist_infos(site_packages: Path) -> set[str]:
    return {p.name for p in site_packages.glob("*.dist-info")}


def runs(samples: Sequence[float]) -> str:
    return " ".join(f"{x:.1f}" for x in samples)


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=ROOT / "ci" / "matrix.yaml")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and bench image")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="time each side of (c) N times, the best run counts (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")

    import docker

    host = detect()
    server = host.docker.server_arch or host.machine
    if not host.docker.reachable:
        print(f"docker daemon not reachable ({host.docker.error}): ci/setup-linux-host.sh",
              file=sys.stderr)
        return 2
    if server != "aarch64" and "aarch64" not in host.binfmt and not host.docker.desktop:
        print("no qemu-aarch64 binfmt handler: ci/setup-linux-host.sh", file=sys.stderr)
        return 2
    client = docker.from_env(timeout=3600)
    cfg = config.load(args.config)
    lock = cfg.lock
    bench_started = time.monotonic()

    # The base image: a one-time cost per machine, not part of a cold lane.
    base_tag = base_image_tag(PLATFORM, BASE_SUITE, BASE_PACKAGES)
    base_note = "cached"
    try:
        client.images.get(base_tag)
        created = str(client.images.get(base_tag).attrs.get("Created", ""))[:19]
        base_note = f"cached (built {created.replace('T', ' ')} UTC), not part of the lane times"
    except docker.errors.ImageNotFound:
        print(f"building the base image {base_tag} (one time per machine)", flush=True)
        started = time.monotonic()
        try:
            ensure_base_image(client, PLATFORM, workdir=ROOT / ".archmatrix",
                              progress=lambda m: print(f"  base: {m}", flush=True))
        except BaseImageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        base_note = f"built now in {time.monotonic() - started:.0f} s (one time per machine)"

    tmp = Path(tempfile.mkdtemp(prefix="archmatrix-bench-"))
    lane_id = f"bench-arm64-docker-{int(time.time())}"
    image_tags: set[str] = set()
    try:
        # (a) cold, (b) warm --------------------------------------------------------
        lane_cfg = lane_config(args.config, lane_id, tmp / "matrix.yaml")
        workdir = tmp / "workdir"
        print(f"(a) cold {lane_id}: fresh workdir {workdir}", flush=True)
        cold = run_lane(lane_id, lane_cfg, workdir, tmp / "results-cold", "cold")
        staged_after_cold = sorted(p.name for p in (workdir / "site-packages").iterdir())
        image_tags.update(cold.built())
        if not cold.built():
            raise SystemExit("the cold run did not build a lane image: it was not cold")
        tag = cold.built()[0]
        cold_id = client.images.get(tag).id

        print(f"(b) warm {lane_id}: same workdir", flush=True)
        warm = run_lane(lane_id, lane_cfg, workdir, tmp / "results-warm", "warm")
        image_tags.update(warm.built())
        rebuilt = [m for _, m in warm.events if m.startswith("building ") or "mmdebstrap" in m]
        if warm.built() and warm.built() != [tag]:
            # a new tag means new inputs, not a cache miss: the suite, the lane
            # Dockerfile or the runner changed between the two runs
            rebuilt.append("its inputs changed since the cold run (was the checkout edited meanwhile?)")
        staged_after_warm = sorted(p.name for p in (workdir / "site-packages").iterdir())
        nothing_rebuilt = (not rebuilt and warm.said(f"image {tag} is up to date")
                           and client.images.get(tag).id == cold_id
                           and staged_after_warm == staged_after_cold)

        # (c) host staging against pip inside an emulated container ------------------
        # Each side is timed `--repeat` times and the best run counts (as timeit
        # does): this host is shared, and load from elsewhere only ever adds time.
        staging_s: list[float] = []
        staging_cached_s: list[float] = []
        first: StagingResult | None = None
        for i in range(args.repeat):
            print(f"(c) host staging for aarch64 {i + 1}/{args.repeat} (empty wheel cache, downloads "
                  "included; then again from the downloaded wheels)", flush=True)
            stage_dir = tmp / f"staging-{i}"
            started = time.monotonic()
            staging = stage_site_packages(lock, "aarch64", BOOKWORM_GLIBC, stage_dir / "site-packages",
                                          wheel_cache=stage_dir / "wheels")
            staging_s.append(time.monotonic() - started)
            if staging.missing:
                raise SystemExit(f"the lock has no aarch64 wheel for {staging.missing}: nothing to compare")
            # like for like with the naive side: the same wheels, already downloaded
            started = time.monotonic()
            stage_site_packages(lock, "aarch64", BOOKWORM_GLIBC, stage_dir / "site-packages-again",
                                wheel_cache=stage_dir / "wheels")
            staging_cached_s.append(time.monotonic() - started)
            first = first or staging
        assert first is not None

        # The naive side's inputs, prepared on the host and not timed: the very
        # wheels staging used, and pip's own wheel (the base image has no pip).
        naive = tmp / "naive"
        (naive / "wheels").mkdir(parents=True)
        for name in first.wheels:
            shutil.copy2(tmp / "staging-0" / "wheels" / name, naive / "wheels" / name)  # first: run 0
        pip_version = importlib.metadata.version("pip")
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "--dest", str(naive / "pip"), f"pip=={pip_version}"])
        pip_wheel = next((naive / "pip").glob("pip-*.whl"))
        requirements = [f"{name}=={version}" for name, version in sorted(lock.packages.items())]
        naive_s: list[float] = []
        same = True
        for i in range(args.repeat):
            print(f"(c) naive {i + 1}/{args.repeat}: pip {pip_version} install inside {PLATFORM} "
                  f"({base_tag}) under QEMU", flush=True)
            out = naive / f"out-{i}"
            out.mkdir()
            naive_s.append(naive_pip_in_container(client, base_tag, naive / "wheels", pip_wheel, out,
                                                  requirements))
            same = same and dist_infos(out / "site-packages") == dist_infos(first.site_packages)
        ratio = min(naive_s) / min(staging_s)
        ratio_cached = min(naive_s) / min(staging_cached_s)
    finally:
        if not args.keep:
            for image in image_tags:
                try:
                    client.images.remove(image, force=True)
                except docker.errors.DockerException as exc:
                    print(f"warning: could not remove {image}: {exc}", file=sys.stderr)
            shutil.rmtree(tmp, ignore_errors=True)

    emulator = "native" if server == "aarch64" else "QEMU via binfmt" if not host.docker.desktop \
        else "Docker Desktop"
    print()
    print(f"arm64 Docker lane ({PLATFORM}, {emulator}), {len(lock.packages)} locked packages, "
          f"{host.cpu_count} CPUs")
    print(f"base image {base_tag}: {base_note}")
    rows = []
    for label, t in (("(a) cold", cold), ("(b) warm", warm)):
        rows.append([
            label,
            fmt(t.span("staging the lock", "archmatrix-base")),
            fmt(t.span("archmatrix-lane", "running the suite")),
            fmt(t.span("running the suite", "done:")),
            fmt(t.wall_s),
            "built" if t.said("building ") else "up to date",
        ])
    print(tabulate(rows, headers=["arm64 lane", "staging s", "lane image s", "suite s", "total s",
                                  "lane image"], tablefmt="github"))
    print(f"warm re-run rebuilt nothing: {'yes' if nothing_rebuilt else 'NO: ' + '; '.join(rebuilt)}")
    print()
    print(tabulate([
        ["host staging (stage_site_packages, aarch64)", f"{min(staging_s):.1f}", runs(staging_s),
         "empty wheel cache: includes downloading the wheels from the index"],
        ["host staging, wheels already downloaded", f"{min(staging_cached_s):.1f}", runs(staging_cached_s),
         "the same inputs as the naive way below"],
        ["naive: pip install in a linux/arm64 container", f"{min(naive_s):.1f}", runs(naive_s),
         "same wheels pre-downloaded and mounted; download time excluded (favours naive)"],
        ["ratio naive / staging (empty wheel cache)", f"{ratio:.1f}x", "",
         f"target >= {TARGET_RATIO:g}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'}"],
        ["ratio naive / staging (both from downloaded wheels)", f"{ratio_cached:.1f}x", "", "like for like"],
    ], headers=["staging the lock", "best s", "all runs s", "note"], tablefmt="github"))
    print(f"same distributions installed both ways: {'yes' if same else 'NO'}")
    print(f"bench wall time: {time.monotonic() - bench_started:.0f} s")
    return 0 if nothing_rebuilt and same and ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
