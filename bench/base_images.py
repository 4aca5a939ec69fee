"""Benchmark cold Debian base images, debootstrap against mmdebstrap, and a cold matrix (issue 20).

    python bench/base_images.py [--config ci/matrix.yaml] [--skip-before] [--skip-matrix] [--keep]

Everything runs against a Docker engine of its own, started here with a fresh
data root, exec root, socket and pid file (in a private mount namespace, so its
mounts stay its own), and stopped and removed at the end: every image is cold,
and the shared daemon's images and containers are never touched.

(a) Cold base images, both platforms, side by side in one run (then both
    again at once, in two threads, as a matrix's two Docker lanes build them):
    before = the debootstrap --variant=minbase recipe exactly as it was (the
    module at commit BEFORE_COMMIT, loaded from git: arm64's second stage under
    QEMU, gzipped context); after = today's :func:`ensure_base_image`
    (mmdebstrap --variant=extract, nothing foreign but ldconfig). Each includes
    packing, the image build and the python3 smoke test. Target: both after
    images in at most 30 s together.
(b) Cold matrix of the four Linux lanes (host, linux-amd64-docker,
    linux-arm64-docker, linux-x86_64-noavx): ``archmatrix matrix`` with a fresh
    ``--workdir`` on the fresh engine, base images included. pip's own HTTP
    cache on this host is not cleared (downloads then come from it). Target:
    at most 90 s. The "before" column is derived, not run: the same matrix with
    (a)'s debootstrap times in place of the mmdebstrap ones.

Timings on a shared 2-core machine are noisy: the load average is printed.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tabulate import tabulate

from archmatrix.baseimage import PLATFORMS, debian_arch, ensure_base_image
from archmatrix.command import run

ROOT = Path(__file__).resolve().parents[1]
# main before issue 20's base images: debootstrap --variant=minbase, gzipped tarball
BEFORE_COMMIT = "f68f7f8b573e44c5276081fcbcede7262526d8f8"
LANES = ["host", "linux-amd64-docker", "linux-arm64-docker", "linux-x86_64-noavx"]
TARGET_IMAGES_S = 30.0
TARGET_MATRIX_S = 90.0
ENGINE_WAIT_S = 60.0


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@contextmanager
def fresh_engine(scratch: Path) -> Iterator[str]:
    """A dockerd of its own with an empty data root; yields its DOCKER_HOST; stopped and removed after.

    Popen, not command.run: the daemon must outlive the call that starts it.
    """
    import docker

    data, execroot, run_dir = scratch / "data", scratch / "exec", scratch / "run"
    for d in (data, execroot, run_dir):
        d.mkdir(parents=True)
    host = f"unix://{run_dir / 'docker.sock'}"
    argv = ["unshare", "--mount", "--propagation", "private",
            "dockerd", "--data-root", str(data), "--exec-root", str(execroot), "-H", host,
            "--pidfile", str(run_dir / "docker.pid"), "--bridge=none", "--iptables=false", "--ip-masq=false"]
    log = (scratch / "dockerd.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + ENGINE_WAIT_S
        while True:
            try:
                docker.DockerClient(base_url=host).ping()
                break
            except docker.errors.DockerException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    where = scratch / "dockerd.log"
                    raise SystemExit(f"the bench's dockerd did not answer; see {where}") from None
                time.sleep(0.5)
        yield host
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def before_module() -> types.ModuleType | None:
    """archmatrix.baseimage as of BEFORE_COMMIT (the debootstrap recipe), or None without that commit."""
    try:
        source = run(["git", "-C", str(ROOT), "show", f"{BEFORE_COMMIT}:src/archmatrix/baseimage.py"]).stdout
    except Exception as exc:  # any reason: the comparison is then skipped, and said so
        print(f"(before skipped: commit {BEFORE_COMMIT[:10]} not readable: {exc})")
        return None
    spec = importlib.util.spec_from_loader("archmatrix_bench_baseimage_before", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    exec(compile(source, f"{BEFORE_COMMIT[:10]}:baseimage.py", "exec"), module.__dict__)
    return module


def drop_base_images(client: Any) -> None:
    for image in client.images.list(name="archmatrix-base"):
        for tag in image.tags:
            client.images.remove(tag, force=True)
    client.images.prune()


def timed(label: str, build: Callable[[], str]) -> tuple[float, str]:
    print(f"--- {label} (load {load_average()})", flush=True)
    started = time.monotonic()
    tag = build()
    return time.monotonic() - started, tag


def ratio(before: float | None, after: float) -> str:
    return f"{before / after:.1f}x" if before else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "ci" / "matrix.yaml")
    parser.add_argument("--skip-before", action="store_true", help="time only today's recipe")
    parser.add_argument("--skip-matrix", action="store_true", help="only the base images")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (not the engine)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: a dockerd of its own, debootstrap and mmdebstrap")
    # SIGTERM (and SIGINT, which a background job ignores) unwind through the finally
    # blocks: the engine is stopped and the scratch directory removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import docker

    scratch = Path(tempfile.mkdtemp(prefix="archmatrix-bench-base-", dir="/var/tmp"))
    before_mod = None if args.skip_before else before_module()
    times: dict[tuple[str, str], float] = {}
    matrix_s: float | None = None
    both_s = 0.0
    try:
        with fresh_engine(scratch / "engine") as host:
            client = docker.DockerClient(base_url=host, timeout=600)
            say = lambda msg: print(f"    {msg}", flush=True)  # noqa: E731
            # interleaved, so the machine's changing load falls on both recipes alike
            for platform in PLATFORMS:
                if before_mod is not None:
                    old = functools.partial(before_mod.ensure_base_image, client, platform,
                                            workdir=scratch / "work-before", progress=say)
                    times["before", platform], _ = timed(f"before: debootstrap {platform}", old)
                new = functools.partial(ensure_base_image, client, platform,
                                        workdir=scratch / "work-after", progress=say)
                times["after", platform], _ = timed(f"after: mmdebstrap {platform}", new)
            # both again, cold, side by side in two threads: how a matrix builds them (each Docker
            # lane prepares its own base image while the other lanes run)
            drop_base_images(client)
            print(f"--- after: mmdebstrap, both platforms at once (load {load_average()})", flush=True)
            started = time.monotonic()
            with ThreadPoolExecutor(len(PLATFORMS)) as pool:
                list(pool.map(lambda p: ensure_base_image(
                    client, p, workdir=scratch / f"work-both-{debian_arch(p)}", progress=say), PLATFORMS))
            both_s = time.monotonic() - started
            if not args.skip_matrix:
                # the matrix must build the mmdebstrap images itself: drop them from the fresh engine
                drop_base_images(client)
                argv = [sys.executable, "-m", "archmatrix.cli", "matrix", "--config", str(args.config),
                        "--workdir", str(scratch / "matrix-work"),
                        "--results", str(scratch / "matrix-results"),
                        *[a for lane in LANES for a in ("--lane", lane)]]
                env = {**os.environ, "DOCKER_HOST": host}
                print(f"--- cold matrix of {', '.join(LANES)} on the fresh engine (load {load_average()})",
                      flush=True)
                started = time.monotonic()
                # a session of its own: when the bench is stopped, its lanes (qemu processes
                # outside the engine too) are stopped with it
                proc = subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)
                try:
                    returncode = proc.wait()
                finally:
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                matrix_s = time.monotonic() - started
                if returncode != 0:
                    print(f"(the matrix exited {returncode}: its time is reported, "
                          "its result is not a pass)")
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    rows = []
    for platform in PLATFORMS:
        before = times.get(("before", platform))
        rows.append([f"base image {platform}", f"{before:.1f}" if before else "-",
                     f"{times['after', platform]:.1f}", ratio(before, times["after", platform])])
    total_after = sum(times["after", p] for p in PLATFORMS)
    total_before = sum(times["before", p] for p in PLATFORMS) if before_mod is not None else None
    rows.append(["base images, both", f"{total_before:.1f}" if total_before else "-", f"{total_after:.1f}",
                 ratio(total_before, total_after)])
    rows.append(["base images, both at once", "-", f"{both_s:.1f}", "-"])
    if matrix_s is not None:
        derived = matrix_s - total_after + total_before if total_before else None
        rows.append(["cold matrix, 4 Linux lanes", f"{derived:.1f} (derived)" if derived else "-",
                     f"{matrix_s:.1f}", ratio(derived, matrix_s)])
    print()
    print(tabulate(rows, headers=["cold", "before (s)", "after (s)", "before/after"], tablefmt="github"))
    print(f"\nload average at the end: {load_average()} (2 cores, shared)")
    verdict = lambda seconds, target: "met" if seconds <= target else "NOT met"  # noqa: E731
    line = (f"targets: base images <= {TARGET_IMAGES_S:.0f} s: one after the other "
            f"{verdict(total_after, TARGET_IMAGES_S)}, at once {verdict(both_s, TARGET_IMAGES_S)}")
    if matrix_s is not None:
        line += f"; cold matrix <= {TARGET_MATRIX_S:.0f} s: {verdict(matrix_s, TARGET_MATRIX_S)}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
