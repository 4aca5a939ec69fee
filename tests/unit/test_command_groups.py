"""command.run stops a command as a process group: on timeout and on its lane's interrupt (issue 16).

Real child trees: ``sh`` starts a background ``sleep`` and records its pid; after
the timeout or the interrupt, neither the shell nor the grandchild may survive.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from archmatrix.command import (
    CancelScope,
    CommandTimeout,
    Interrupted,
    call_interruptible,
    cancel_scope,
    check_interrupted,
    run,
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose (its parent, sh, is gone and init reaps it)
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def dies(pid: int, within: float = 2.0) -> bool:
    """SIGKILL is delivered asynchronously: give the kernel (and init's reaping) a moment."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def tree_argv(pidfile: Path) -> list[str]:
    return ["sh", "-c", f'sleep 100 & echo $! > {pidfile}; sleep 100']


def wait_for(path: Path) -> int:
    for _ in range(200):
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.01)
    raise AssertionError(f"{path} never written")


@pytest.mark.parametrize("streaming", [False, True])
def test_timeout_kills_every_descendant(tmp_path: Path, streaming: bool) -> None:
    pidfile = tmp_path / "pid"
    with pytest.raises(CommandTimeout):
        run(tree_argv(pidfile), timeout=0.5, on_line=(lambda _line: None) if streaming else None)
    grandchild = wait_for(pidfile)
    time.sleep(0.1)
    assert not alive(grandchild)


@pytest.mark.parametrize("streaming", [False, True])
def test_an_interrupted_lane_stops_its_command_and_every_descendant(tmp_path: Path, streaming: bool) -> None:
    pidfile = tmp_path / "pid"
    scope = CancelScope()
    outcome: dict[str, object] = {}

    def lane() -> None:
        with cancel_scope(scope):
            try:
                run(tree_argv(pidfile), on_line=(lambda _line: None) if streaming else None)
            except BaseException as exc:
                outcome["raised"] = exc

    thread = threading.Thread(target=lane)
    thread.start()
    grandchild = wait_for(pidfile)
    cancelled = time.monotonic()
    scope.cancel()
    thread.join(10)
    took = time.monotonic() - cancelled
    assert not thread.is_alive()
    assert isinstance(outcome.get("raised"), Interrupted)
    assert took < 4  # SIGINT stops sh at once; never longer than the grace period and a kill
    assert dies(grandchild)


def test_nothing_starts_after_the_interrupt(tmp_path: Path) -> None:
    scope = CancelScope()
    scope.cancel()
    with cancel_scope(scope):
        with pytest.raises(Interrupted):
            run(["touch", str(tmp_path / "never")])
        with pytest.raises(Interrupted):
            check_interrupted()
    assert not (tmp_path / "never").exists()
    check_interrupted()  # outside the scope: nothing to stop


def test_a_blocking_library_call_is_abandoned_on_interrupt() -> None:
    scope = CancelScope()
    release = threading.Event()
    threading.Timer(0.2, scope.cancel).start()
    started = time.monotonic()
    with cancel_scope(scope), pytest.raises(Interrupted):
        call_interruptible(release.wait, 30)
    assert time.monotonic() - started < 5
    release.set()
    with cancel_scope(CancelScope()):
        assert call_interruptible(lambda a, b: a + b, 2, b=3) == 5


def test_input_and_output_still_work_with_polling() -> None:
    done = run(["sh", "-c", "cat; echo err >&2"], input="x" * 200_000)
    assert done.stdout == "x" * 200_000
    assert done.stderr == "err\n"
