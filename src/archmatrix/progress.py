"""Progress of a matrix run: one live line per lane on a terminal, the plain line log elsewhere.

Every lane reports through one small interface, a :class:`LaneProgress`
handed to it in its :class:`~archmatrix.runners.base.LaneJob` (never a
global): lines (``job.progress(message)``) and phases (``job.phase(name)``:
staging, base image, image, running). The lane's check ``i/N`` comes from
the suite's own progress lines (``i/N check-id glyph outcome …``, printed by
``suite/engine/main.py``).

Two displays share that state:

* :class:`PlainProgress` — one line per event, ``[elapsed] lane message``,
  as archmatrix always printed; for CI logs and pipes (no TTY, ``CI=true``,
  ``TERM=dumb``). A lane that printed nothing for :data:`HEARTBEAT_S` gets a
  heartbeat line (``still staging, 40s``): pip downloads, debootstrap, image
  builds and long checks are silent for minutes otherwise. The run's main
  thread drives the heartbeats and the live redraw (:meth:`Reporter.tick`).
* :class:`LiveProgress` — rich's live display: one line per lane (phase,
  check i/N, elapsed, last message) redrawn in place, so the lines of
  parallel lanes never interleave; run-wide messages and each lane's final
  line are printed above it. ``NO_COLOR`` is honoured.

Messages come from lanes (data): they are shown through :mod:`.render.escape`
(no control character reaches the terminal) and as rich ``Text``, never markup.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from .render.escape import terminal, terminal_lines

if TYPE_CHECKING:
    from rich.console import RenderableType

# a silent lane gets a heartbeat line (plain) at least this often (the run ticks every 0.5 s)
HEARTBEAT_S = 10.0
_TICK_S = 0.5

# The phases a lane goes through, in order (a runner reports the ones it has).
WAITING, STARTING, STAGING, BASE_IMAGE, IMAGE, RUNNING, DONE = (
    "waiting", "starting", "staging", "base image", "image", "running", "done")

# the suite's progress line, after the "[lane] " prefix the runners strip: "3/12 linalg.solve ✔ pass …"
_CHECK_LINE = re.compile(r"^\s*(\d+)/(\d+)\s+(\S+)")


def is_ci(env: Mapping[str, str]) -> bool:
    return env.get("CI", "").strip().lower() in ("1", "true", "yes")


@dataclass
class LaneState:
    """What the display knows of one lane."""

    lane: str
    phase: str = WAITING
    message: str = ""  # the last line it reported
    done: int = 0  # checks finished …
    total: int = 0  # … of this many (0: none reported yet)
    started: float | None = None  # when it left "waiting"
    phase_started: float = 0.0
    ended: float | None = None
    failed: bool = False
    last_line: float = 0.0  # when a line was last printed for it (plain: the heartbeat's clock)

    def elapsed(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else now) - self.started

    def checks(self) -> str:
        return f"{self.done}/{self.total}" if self.total else ""


class Reporter:
    """The run-wide interface: lines for the run (``say``) and one :class:`LaneProgress` per lane.

    A context manager: the display (a heartbeat thread, the live redraw) runs
    between enter and exit; lines can be said outside it too.
    """

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.start = clock()
        self.lock = threading.RLock()
        self.lanes: dict[str, LaneState] = {}

    # -- the interface lanes and the orchestrator use

    def lane(self, lane_id: str) -> LaneProgress:
        with self.lock:
            self.lanes.setdefault(lane_id, LaneState(lane_id, last_line=self.clock()))
        return LaneProgress(self, lane_id)

    def say(self, lane: str, message: str) -> None:
        """One line about ``lane`` (or the run: ``matrix``)."""
        with self.lock:
            state = self.lanes.get(lane)
            if state is not None:
                state.message = message
                state.last_line = self.clock()
                self._count(state, message)
        # outside the state lock: the live display's redraw holds rich's lock while it reads the state
        self._line(lane, message, state)

    def for_lane(self, lane: str) -> Callable[[str], None]:
        return self.lane(lane)

    def set_phase(self, lane: str, phase: str) -> None:
        with self.lock:
            state = self.lanes.setdefault(lane, LaneState(lane))
            now = self.clock()
            if state.started is None and phase != WAITING:
                state.started = state.last_line = now
            if phase != state.phase:
                state.phase, state.phase_started = phase, now
                if phase == RUNNING:
                    state.done = state.total = 0

    def finish(self, lane: str, message: str, failed: bool) -> None:
        with self.lock:
            state = self.lanes.setdefault(lane, LaneState(lane))
            state.phase, state.ended, state.failed, state.message = DONE, self.clock(), failed, message
        self._line(lane, message, state, final=True)

    # -- what a display does with them

    def _count(self, state: LaneState, message: str) -> None:
        if state.phase != RUNNING:
            return
        match = _CHECK_LINE.match(message)
        if match:
            state.done, state.total = int(match.group(1)), int(match.group(2))

    def _line(self, lane: str, message: str, state: LaneState | None, final: bool = False) -> None:
        raise NotImplementedError

    def tick(self) -> None:
        """Called by the run's main thread about twice a second: heartbeats, the live redraw.

        From the main thread, not a thread of the display's own: under CPython
        3.11 a thread that keeps waking up can leave Ctrl-C's signal pending
        for the main thread for seconds (the test of Ctrl-C saw 20 s).
        """

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None


class LaneProgress:
    """One lane's progress: call it with a line, ``phase(name)`` when the lane enters a phase."""

    def __init__(self, progress: Reporter, lane: str) -> None:
        self.progress = progress
        self.lane = lane

    def __call__(self, message: str) -> None:
        self.progress.say(self.lane, message)

    def phase(self, name: str) -> None:
        self.progress.set_phase(self.lane, name)

    def finish(self, message: str, *, failed: bool = False) -> None:
        self.progress.finish(self.lane, message, failed)


class PlainProgress(Reporter):
    """The plain line log: ``[elapsed] lane message``, plus a heartbeat for silent lanes."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 heartbeat: float = HEARTBEAT_S) -> None:
        super().__init__(stream, clock)
        self.heartbeat = heartbeat
        self._out = threading.Lock()  # whole lines: the lanes' threads and the heartbeat print at once

    def _line(self, lane: str, message: str, state: LaneState | None, final: bool = False) -> None:
        line = terminal_lines(f"[{self.clock() - self.start:6.1f}s] {lane:<22} {terminal(message)}")
        with self._out:
            self.stream.write(line + "\n")
            self.stream.flush()

    def tick(self) -> None:
        self.beat()

    def beat(self) -> None:
        """A heartbeat line for each lane silent for the heartbeat period."""
        beats = []
        with self.lock:
            now = self.clock()
            for state in self.lanes.values():
                if state.phase in (WAITING, DONE) or now - state.last_line < self.heartbeat - _TICK_S:
                    continue
                state.last_line = now
                check = f", check {state.checks()}" if state.total and state.phase == RUNNING else ""
                beats.append((state, f"still {state.phase}{check}: {now - state.phase_started:.0f}s "
                                     f"in this phase, {state.elapsed(now):.0f}s in all"))
        for state, message in beats:
            self._line(state.lane, message, state)


_PHASE_STYLE = {WAITING: "dim", STARTING: "cyan", STAGING: "cyan", BASE_IMAGE: "magenta",
                IMAGE: "magenta", RUNNING: "bold blue"}


class LiveProgress(Reporter):
    """rich's live display: one line per lane redrawn in place; run-wide and final lines above it."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 *, no_color: bool = False) -> None:
        from rich.console import Console

        super().__init__(stream, clock)
        self.console = Console(file=self.stream, force_terminal=True, no_color=no_color, highlight=False,
                               emoji=False, markup=False)
        self._live: Any = None

    def _line(self, lane: str, message: str, state: LaneState | None, final: bool = False) -> None:
        # a lane's own lines only update its live line; the run's lines and a lane's last are printed
        if state is not None and not final:
            return
        from rich.text import Text

        now = self.clock()
        text = Text()
        text.append(f"[{now - self.start:6.1f}s] ", style="dim")
        text.append(f"{lane:<22} ", style="bold")
        text.append(terminal(message), style=("red" if state.failed else "green") if final and state else "")
        live = self._live
        if live is not None:
            live.refresh()  # the live lines as they are now (without a lane that just finished) …
        self.console.print(text, soft_wrap=True)  # … drawn again under this line

    def render(self) -> RenderableType:
        """The live part: one line per lane that has not finished (finished ones are printed above)."""
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True)  # lane
        grid.add_column(no_wrap=True, min_width=10)  # phase
        grid.add_column(no_wrap=True, justify="right", min_width=7)  # check i/N
        grid.add_column(no_wrap=True, justify="right", min_width=6)  # elapsed
        grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)  # last message
        with self.lock:
            now = self.clock()
            for state in self.lanes.values():
                if state.phase == DONE:
                    continue
                grid.add_row(
                    Text(state.lane, style="bold"),
                    Text(state.phase, style=_PHASE_STYLE.get(state.phase, "")),
                    Text(f"check {state.checks()}" if state.total else ""),
                    Text(f"{state.elapsed(now):.0f}s" if state.started is not None else ""),
                    Text(" ".join(terminal(state.message).split()), style="dim"),
                )
        return grid

    def tick(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def __enter__(self) -> Reporter:
        from rich.live import Live

        # redrawn by tick() from the main thread (see Reporter.tick), not by rich's refresh thread
        self._live = Live(get_renderable=self.render, console=self.console, transient=True,
                          auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
        self._live.start(refresh=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def for_terminal(stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> Reporter:
    """The live display on an interactive terminal; the plain line log in CI, a pipe or a file."""
    stream = stream if stream is not None else sys.stderr
    env = os.environ if env is None else env
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream
        tty = False
    if not tty or is_ci(env) or env.get("TERM") == "dumb":
        return PlainProgress(stream)
    return LiveProgress(stream, no_color=bool(env.get("NO_COLOR")))
