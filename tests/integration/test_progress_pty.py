"""Progress as a person and as CI see it (issue 21): the same real run recorded through a pseudo-terminal.

On a terminal, rich's live display: one line per lane redrawn in place
(cursor hidden, lines erased and rewritten, the cursor moved up over the
other lane's line), each with its phase and its check i/N; the lanes' own
lines never printed one after the other. With ``CI=true`` on the same
terminal: the plain line log, not one escape sequence.

The run is ``progress_run.py``: two lanes running the real suite (three
checks) with this interpreter, in parallel.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from conftest import python_env

HERE = Path(__file__).parent
SGR = re.compile(r"\x1b\[[0-9;]*m")


def recorded(workdir: Path, **env: str) -> tuple[int, str]:
    """Run progress_run.py with a pseudo-terminal (120×40) as stdin, stdout and stderr; all it wrote."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    environ = {k: v for k, v in python_env().items() if k not in ("CI", "NO_COLOR", "TERM", "COLUMNS")}
    environ.update(TERM="xterm-256color", PYTHONPATH=os.pathsep.join(filter(None, [
        str(HERE), environ.get("PYTHONPATH")])), **env)
    proc = subprocess.Popen([sys.executable, str(HERE / "progress_run.py"), str(workdir)],
                            stdin=slave, stdout=slave, stderr=slave, env=environ, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", errors="replace")


def test_a_terminal_gets_one_live_line_per_lane_and_ci_the_plain_log(tmp_path: Path) -> None:
    (tmp_path / "tty").mkdir()
    code, screen = recorded(tmp_path / "tty")
    assert code == 0, screen[-3000:]
    assert "\x1b[?25l" in screen and "\x1b[?25h" in screen  # cursor hidden while live, shown after
    assert "\x1b[2K" in screen  # a lane's line erased and drawn again in place …
    assert "\x1b[1A" in screen  # … the cursor moved up over the other lane's line
    plain = SGR.sub("", screen)
    # a lane's live line: lane, phase, check i/N, elapsed
    assert re.search(r"(here|there) +running +check [123]/3 +\d+s ", plain), plain[-3000:]
    # the lanes' own lines are not printed: only the run's lines and each lane's last one
    assert not re.search(r"\] (here|there) +\d/3 ", plain)
    assert re.search(r"\] here +done: ran, 3/3 checks ok", plain)
    assert re.search(r"\] there +done: ran, 3/3 checks ok", plain)

    (tmp_path / "ci").mkdir()
    code, log = recorded(tmp_path / "ci", CI="true")
    assert code == 0, log[-3000:]
    assert "\x1b" not in log, log[-3000:]
    lines = log.splitlines()
    for lane in ("here", "there"):
        assert any(re.search(rf"^\[ *[\d.]+s\] {lane} +1/3 import\.numpy ", ln) for ln in lines), log
        assert any(re.search(rf"^\[ *[\d.]+s\] {lane} +done: ran, 3/3 checks ok", ln) for ln in lines), log
    # every line is one whole event of one lane: none carries another lane's text
    assert all(ln.count("] ") == 1 for ln in lines if ln.startswith("[")), log
