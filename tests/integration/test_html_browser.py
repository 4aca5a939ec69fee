"""The HTML dashboard in a real browser (issue 21): headless Chromium renders it and takes a screenshot.

The page must run without script errors, show the failing cells in the first
screen even when they are the last of 40 checks (failing rows come first),
and its CSS-only filter must hide the rows where every lane passed.
Chromium comes from the distribution (``ci/setup-linux-host.sh`` installs it
when no Chromium or Chrome is there); without one the test is skipped
locally and fails under ``CI=true``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require

from archmatrix.matrix import Matrix, build
from archmatrix.render import html
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1400, 1000
FAIL_BG = (0xFC, 0xE8, 0xE6)  # td.fail in render/html.py
PASS_BG = (0xE6, 0xF4, 0xEA)  # td.pass


def browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def many_checks() -> Matrix:
    """40 passing checks, then the two that fail in the emulated lane (the last rows in check order)."""
    def lane(name: str, failing: bool) -> LaneResult:
        checks = [CheckResult(f"check.{i:02d}", Outcome.PASS, 0.1) for i in range(40)]
        checks.append(CheckResult("avx2.add", Outcome.ILLEGAL_INSTRUCTION if failing else Outcome.PASS,
                                  message="Fatal Python error: Illegal instruction" if failing else ""))
        checks.append(CheckResult("blas.gemm", Outcome.SEGFAULT if failing else Outcome.PASS,
                                  message="Fatal Python error: Segmentation fault" if failing else ""))
        facts = {"os": "Linux", "machine": "x86_64", "python": {"version": "3.11.7"},
                 "emulation": {"emulator": "qemu-x86_64" if failing else None,
                               "cpu_model": "Westmere" if failing else None}}
        return LaneResult(name, "qemu" if failing else "venv", started="2026-01-02T03:00:00+00:00",
                          facts=facts, checks=checks)
    return build([lane("host", False), lane("linux-x86_64-noavx", True)])


def screenshot(page: Path, png: Path) -> str:
    """Chromium's screenshot of ``page``; returns its log (console messages and script errors land there)."""
    exe = browser()
    assert exe is not None
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},{HEIGHT}",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0", f"--screenshot={png}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False, cwd=png.parent)
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-3000:]
    return proc.stderr


def count(png: Path, colour: tuple[int, int, int]) -> int:
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (WIDTH, HEIGHT)
        colours = rgb.getcolors(maxcolors=WIDTH * HEIGHT) or []
    return sum(n for n, px in colours if px == colour)


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = browser()
    require(exe is not None, "no Chromium or Chrome on this host (ci/setup-linux-host.sh installs chromium)")
    pytest.importorskip("PIL")  # Pillow comes with matplotlib (the plots extra)
    assert exe is not None
    return exe


def test_the_dashboard_shows_the_failures_in_the_first_screen(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "matrix.html"
    page.write_text(html.render(many_checks(), plots=False), encoding="utf-8")
    png = tmp_path / "matrix.png"
    log = screenshot(page, png)
    assert "Uncaught" not in log and "CONSOLE" not in log, log[-3000:]
    # two failing cells, each at least a row's height by a column's width of their colour
    assert count(png, FAIL_BG) > 2 * 2_000


def test_the_filter_hides_rows_every_lane_passed(chromium: str, tmp_path: Path) -> None:
    text = html.render(many_checks(), plots=False)
    # the page as it is after a click on "only failing rows"
    filtered = text.replace("id=show-all checked>", "id=show-all>")
    filtered = filtered.replace("id=show-fail>", "id=show-fail checked>")
    assert filtered != text
    every, failing = tmp_path / "every.html", tmp_path / "failing.html"
    every.write_text(text, encoding="utf-8")
    failing.write_text(filtered, encoding="utf-8")
    screenshot(every, tmp_path / "every.png")
    screenshot(failing, tmp_path / "failing.png")
    green_every = count(tmp_path / "every.png", PASS_BG)
    green_failing = count(tmp_path / "failing.png", PASS_BG)
    # left: only the host's two passing cells of the failing rows
    assert green_failing < green_every / 5, (green_failing, green_every)
    assert count(tmp_path / "failing.png", FAIL_BG) == count(tmp_path / "every.png", FAIL_BG)
