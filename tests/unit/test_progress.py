"""The progress display (issue 21): which display where, lane state from phases and the suite's lines,
heartbeats for silent lanes, and lane text that cannot drive the terminal.

The live display in a real pseudo-terminal is ``tests/integration/test_progress_pty.py``.
"""

from __future__ import annotations

import io
import re
import threading

import pytest

from archmatrix.progress import HEARTBEAT_S, LiveProgress, PlainProgress, for_terminal

SGR_COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_live_display_ci_a_pipe_and_dumb_terminals_plain_lines() -> None:
    assert isinstance(for_terminal(Terminal(), env={}), LiveProgress)
    assert isinstance(for_terminal(Terminal(), env={"CI": "true"}), PlainProgress)
    assert isinstance(for_terminal(Terminal(), env={"CI": "1"}), PlainProgress)
    assert isinstance(for_terminal(Terminal(), env={"TERM": "dumb"}), PlainProgress)
    assert isinstance(for_terminal(io.StringIO(), env={}), PlainProgress)  # a pipe, a file
    assert isinstance(for_terminal(Terminal(), env={"CI": "false"}), LiveProgress)


def test_phases_and_the_suites_check_lines_make_the_lane_state() -> None:
    clock = Clock()
    progress = PlainProgress(io.StringIO(), clock=clock)
    lane = progress.lane("linux-arm64-docker")
    state = progress.lanes["linux-arm64-docker"]
    assert state.phase == "waiting" and state.started is None
    lane.phase("staging")
    lane("7/9 looks like a count but the lane is not running yet")
    assert (state.done, state.total) == (0, 0)
    clock.now += 5
    lane.phase("running")
    lane("1/3 import.numpy                     ✔ pass                  0.40s  (elapsed 0s)")
    lane("preloaded numpy, numpy.linalg")
    lane("2/3 linalg.matmul                    ✘ illegal-instruction   1.20s  (elapsed 8s)")
    assert (state.phase, state.checks(), state.message) == ("running", "2/3", state.message)
    assert state.message.startswith("2/3 linalg.matmul")
    clock.now += 10
    lane.finish("done: ran, 2/3 checks ok, 15s", failed=True)
    clock.now += 100
    assert state.phase == "done" and state.failed and state.elapsed(clock()) == 15


def test_a_silent_lane_gets_a_heartbeat_line_at_least_every_ten_seconds() -> None:
    clock, out = Clock(), io.StringIO()
    progress = PlainProgress(out, clock=clock)
    lane = progress.lane("linux-arm64-docker")
    progress.lane("never-started")  # waiting for a worker: nothing to report
    lane.phase("base image")
    lane("debootstrap bookworm (arm64)")
    clock.now += HEARTBEAT_S - 1
    progress.beat()
    assert "still" not in out.getvalue()
    clock.now += 1
    progress.beat()
    lines = out.getvalue().splitlines()
    assert lines[-1].endswith("linux-arm64-docker     still base image: 10s in this phase, 10s in all")
    progress.beat()  # just said: not again at once
    assert len(out.getvalue().splitlines()) == len(lines)
    lane.phase("running")
    lane("1/2 import.numpy ✔ pass")
    clock.now += HEARTBEAT_S
    progress.beat()
    assert out.getvalue().splitlines()[-1].endswith("still running, check 1/2: 10s in this phase, 20s in all")
    lane.finish("done: ran, 2/2 checks ok, 20s")
    clock.now += 60
    before = out.getvalue()
    progress.beat()
    assert out.getvalue() == before  # a finished lane is silent
    assert not any("never-started" in line for line in out.getvalue().splitlines())


def test_the_display_starts_no_thread_the_runs_main_thread_ticks_it() -> None:
    # a thread that keeps waking up can keep Ctrl-C from the main thread under CPython 3.11
    clock, out = Clock(), io.StringIO()
    before = threading.active_count()
    for progress in (PlainProgress(out, clock=clock), LiveProgress(Terminal())):
        with progress:
            assert threading.active_count() == before
    plain = PlainProgress(out, clock=clock)
    with plain:
        plain.lane("slow").phase("staging")
        clock.now += HEARTBEAT_S
        plain.tick()
    last = out.getvalue().splitlines()[-1]
    assert last.endswith("slow                   still staging: 10s in this phase, 10s in all")


@pytest.mark.parametrize("no_color", [False, True])
def test_live_lines_show_lane_text_as_text_and_honour_no_color(no_color: bool) -> None:
    out = Terminal()
    progress = for_terminal(out, env={"NO_COLOR": "1"} if no_color else {})
    assert isinstance(progress, LiveProgress)
    hostile = "[bold red]markup[/bold red] \x1b[2J\x1b]0;title\x07 ::error::x"
    with progress:
        lane = progress.lane("host")
        lane.phase("running")
        lane(hostile)
        progress.console.print(progress.render())
        lane.finish(f"done: {hostile}", failed=True)
    text = out.getvalue()
    assert "[bold red]markup[/bold red]" in text  # shown, not interpreted
    assert "\x1b[2J" not in text and "\x1b]0;" not in text and "\\x1b[2J" in text
    assert "\x1b[?25l" in text  # the live display hid the cursor while it ran
    assert bool(SGR_COLOUR.search(text)) is not no_color


def test_the_plain_log_escapes_lane_text_and_keeps_whole_lines() -> None:
    out = io.StringIO()
    progress = PlainProgress(out)
    progress.say("matrix", "::error::from a lane\nsecond line \x1b[31m")
    [line] = out.getvalue().splitlines()
    assert "\x1b" not in line and "\\x0a" in line and "\\x1b[31m" in line
