"""A second Docker daemon of the caller's own, which shares none of the client's files.

Its own data root, exec root and socket (all under one directory in /var/tmp),
no bridge network, inside its own mount namespace where ``/tmp`` and the
parent of this checkout are empty tmpfs: no path the client uses (results,
``.archmatrix/``, staged wheels) exists for it, as none would on another
machine. Used by tests/integration/test_remote_engine.py and
bench/remote_engine.py. Needs root, ``dockerd`` and ``unshare``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
# The daemon's namespace: mount two empty tmpfs, then become dockerd. The paths
# are arguments, never spliced into the script.
NAMESPACE_SCRIPT = 'mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs "$1" && shift && exec "$@"'


class EngineStartError(RuntimeError):
    """The second daemon did not come up; the message carries its log."""


@dataclass
class SecondEngine:
    root: Path  # data root, exec root, socket, pid file and log: all of it, and nothing else
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "dockerd.log").read_text(errors="replace")[-3000:]
        return ""


def engine_processes(root: Path) -> list[str]:
    """Processes whose command line names the engine's directory (dockerd, its containerd, shims)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if str(root) in argv:
                found.append(f"{entry.name}: {argv.strip()}")
    return found


def mounts_naming(root: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(root) in line]


@contextlib.contextmanager
def second_engine() -> Iterator[SecondEngine]:
    """A dockerd of the test's own that cannot see /tmp nor this checkout's parent directory."""
    # Under /var/tmp: neither /tmp nor the checkout's parent, which the daemon's namespace hides.
    root = Path(tempfile.mkdtemp(prefix="archmatrix-engine-", dir="/var/tmp"))
    hidden = ROOT.parent
    argv = [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", NAMESPACE_SCRIPT, "sh", str(hidden),
        "dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
        "-H", f"unix://{root / 'docker.sock'}", "--pidfile", str(root / "docker.pid"),
        "--bridge=none", "--iptables=false", "--ip-masq=false",
    ]
    with open(root / "dockerd.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine = SecondEngine(root, proc)
    try:
        _wait_until_it_answers(engine)
        yield engine
    finally:
        _stop(engine)


def _wait_until_it_answers(engine: SecondEngine) -> None:
    import docker

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if engine.proc.poll() is not None:
            raise EngineStartError(f"the second dockerd exited ({engine.proc.returncode}):\n"
                                   f"{engine.log_tail()}")
        if engine.socket.exists():
            with contextlib.suppress(Exception):
                client = docker.DockerClient(base_url=engine.url, timeout=10)
                client.ping()
                client.close()
                return
        time.sleep(0.5)
    raise EngineStartError(f"the second dockerd did not answer within {START_TIMEOUT:.0f} s:\n"
                           f"{engine.log_tail()}")


def _stop(engine: SecondEngine) -> None:
    """SIGTERM (dockerd stops its containers and its containerd), then remove everything it had."""
    if engine.proc.poll() is None:
        engine.proc.send_signal(signal.SIGTERM)
        try:
            engine.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(engine.proc.pid, signal.SIGKILL)
            engine.proc.wait(STOP_TIMEOUT)
    # its containerd and shims are its children; give them a moment to go with it
    deadline = time.monotonic() + STOP_TIMEOUT
    while engine_processes(engine.root) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not engine_processes(engine.root) and not mounts_naming(engine.root):
        shutil.rmtree(engine.root, ignore_errors=True)
