"""Badges: one SVG per lane and one for the whole matrix, plus shields.io endpoint JSON.

The SVG is the shields.io "flat" style drawn from a small template rather
than a badge library: pybadges (the maintained-looking candidate) pulls in
requests and Jinja2 for logo embedding we do not need, and ships a 200 kB
width table. The template needs two things done right:

* **widths that fit the text.** Each text's width comes from a per-character
  table of advance widths at 11 px (below); the box is that plus padding,
  and ``textLength`` tells renderers that have a slightly different font to
  squeeze or stretch the text into exactly that width.
* **escaping.** Labels and messages come from configuration and result
  files, so every one goes through :func:`.escape.xml_dropped` (characters XML
  cannot carry dropped) and is XML-escaped before it goes into an
  element or an attribute.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from ..matrix import Matrix
from ..pyversions import result_stem
from ..suite.outcomes import Outcome
from ..suite.result import LaneResult, LaneStatus, write_text_atomic
from . import escape as esc

OVERALL = "archmatrix"  # the overall badge's label and file name

# shields.io's named colours (the endpoint JSON carries the name; the SVG the hex)
COLORS = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "lightgrey": "#9f9f9f",
    "grey": "#555",
    "blue": "#007ec6",  # predicted pass: not green, nothing ran
    "purple": "#8a63d2",  # predicted failure: not red, nothing ran
}
LABEL_COLOR = COLORS["grey"]

# Advance widths of printable ASCII (space … tilde) at 11 px, in tenths of a
# pixel, rounded up. Measured from DejaVu Sans, the font our font-family list
# falls back to wherever Verdana is missing (Linux, and cairo-based
# renderers, which ignore textLength): Verdana's widths are within a few
# per cent of these, and browsers that have Verdana fit it with textLength.
_ASCII_WIDTHS = (
    35, 45, 51, 93, 70, 105, 86, 31, 43, 43, 55, 93, 35, 40, 35, 38,  # space ! " # $ % & ' ( ) * + , - . /
    70, 70, 70, 70, 70, 70, 70, 70, 70, 70, 38, 38, 93, 93, 93, 59,  # 0-9 : ; < = > ?
    110, 76, 76, 77, 85, 70, 64, 86, 83, 33, 33, 73, 62, 95, 83, 87,  # @ A-O
    67, 87, 77, 70, 68, 81, 76, 109, 76, 68, 76, 43, 38, 43, 93, 55,  # P-Z [ backslash ] ^ _
    55, 68, 70, 61, 70, 68, 39, 70, 70, 31, 31, 64, 31, 108, 70, 68,  # ` a-o
    70, 70, 46, 58, 44, 70, 66, 90, 66, 66, 58, 70, 38, 70, 93,  # p-z { | } ~
)
# Anything else (accents, CJK, symbols) is counted as a full em: too wide
# rather than too narrow, and textLength closes the gap.
_OTHER_WIDTH = 110
PADDING = 5  # px left and right of each text, as shields draws it
HEIGHT = 20

MAX_NAME = 100
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def text_width(text: str) -> int:
    """Pixels ``text`` takes at 11 px, rounded up to an odd number (centred text then sits on the grid)."""
    tenths = sum(
        _ASCII_WIDTHS[ord(ch) - 32] if 32 <= ord(ch) < 127 else _OTHER_WIDTH for ch in text
    )
    width = math.ceil(tenths / 10)
    return width if width % 2 else width + 1


def _xml(text: str) -> str:
    """Text safe both as element content and inside a double- or single-quoted attribute."""
    return escape(esc.xml_dropped(text), {'"': "&quot;", "'": "&apos;"})


def render_svg(label: str, message: str, color: str) -> str:
    """A flat-style badge. ``color`` is a shields.io colour name or a ``#hex`` value."""
    fill = COLORS.get(color) or (color if re.fullmatch(r"#[0-9a-fA-F]{3,8}", color) else COLORS["lightgrey"])
    label_text, message_text = esc.xml_dropped(label), esc.xml_dropped(message)
    lw, mw = text_width(label_text), text_width(message_text)
    left, right = lw + 2 * PADDING, mw + 2 * PADDING
    total = left + right
    # Texts are drawn at 10x size and scaled down by 0.1: finer positioning
    # than whole pixels, exactly as shields.io does it.
    lx, mx = left * 5, left * 10 + right * 5
    label_xml, message_xml = _xml(label_text), _xml(message_text)
    title = _xml(f"{label_text}: {message_text}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{HEIGHT}" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="{HEIGHT}" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="{HEIGHT}" fill="{LABEL_COLOR}"/>'
        f'<rect x="{left}" width="{right}" height="{HEIGHT}" fill="{fill}"/>'
        f'<rect width="{total}" height="{HEIGHT}" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'text-rendering="geometricPrecision" font-size="110">'
        f'{_text(lx, lw, label_xml)}{_text(mx, mw, message_xml)}</g></svg>\n'
    )


def _text(x: int, width: int, escaped: str) -> str:
    # a 30 % black copy 1 px lower is the flat style's text shadow
    return (
        f'<text aria-hidden="true" x="{x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" '
        f'textLength="{width * 10}">{escaped}</text>'
        f'<text x="{x}" y="140" transform="scale(.1)" fill="#fff" textLength="{width * 10}">{escaped}</text>'
    )


@dataclass(frozen=True)
class Badge:
    name: str  # file stem: <name>.svg, <name>.json
    label: str
    message: str
    color: str  # a key of COLORS

    def svg(self) -> str:
        return render_svg(self.label, self.message, self.color)

    def endpoint(self) -> dict[str, Any]:
        """shields.io's endpoint schema: ``https://img.shields.io/endpoint?url=<this file>``."""
        return {"schemaVersion": 1, "label": self.label, "message": self.message, "color": self.color}


def outcome_color(outcome: Outcome) -> str:
    if outcome is Outcome.PASS:
        return "brightgreen"
    if outcome is Outcome.SKIPPED:
        return "lightgrey"
    if outcome is Outcome.INFRA_ERROR:
        return "orange"  # our infrastructure, not the package's fault
    return "red"


def lane_message(lane: LaneResult) -> tuple[str, str]:
    """(message, colour) of one lane: ``pass``, the first failing check's outcome, or why it did not run."""
    if lane.predicted:
        failed = lane.failed_checks
        if failed:
            return f"predicted {failed[0].outcome.value}", "purple"
        return ("predicted pass", "blue") if lane.checks else ("skipped", "lightgrey")
    if lane.status == LaneStatus.SKIPPED:
        return "skipped", "lightgrey"
    if lane.status == LaneStatus.INFRA_ERROR:
        return "infra-error", "orange"
    if lane.status == LaneStatus.INTERRUPTED:
        return "interrupted", "orange"
    failed = lane.failed_checks
    if failed:
        # Checks run in dependency order (wheel → import → BLAS → numerics), so
        # the first failure is the cause and the later ones its consequences.
        return failed[0].outcome.value, outcome_color(failed[0].outcome)
    if any(c.outcome is Outcome.PASS for c in lane.checks):
        return "pass", "brightgreen"
    return ("skipped" if lane.checks else "no checks"), "lightgrey"


def lane_ok(lane: LaneResult) -> bool:
    return lane_message(lane)[0] == "pass"


def overall_badge(matrix: Matrix) -> Badge:
    """``3/5 lanes``: lanes that passed out of the lanes that ran or broke (skipped lanes do not count)."""
    counted = [ln for ln in matrix.lanes if ln.status != LaneStatus.SKIPPED]
    if not counted:
        return Badge(OVERALL, OVERALL, "no lanes ran", "lightgrey")
    passed = [ln for ln in counted if lane_ok(ln)]
    message = f"{len(passed)}/{len(counted)} lanes"
    failing = [ln for ln in counted if not lane_ok(ln)]
    if not failing:
        color = "brightgreen"
    elif any(ln.status == LaneStatus.RAN and ln.failed_checks and ln.required for ln in failing):
        color = "red"
    elif any(ln.status == LaneStatus.RAN and ln.failed_checks for ln in failing):
        color = "yellow"  # only lanes marked required: false fail
    else:
        color = "orange"  # nothing failed, something could not run
    return Badge(OVERALL, OVERALL, message, color)


def safe_name(lane_id: str) -> str:
    """A file stem for a lane id from a config or results file: no path separators, no leading dot."""
    # short enough for any file system with the atomic writer's temp-file affixes (names ≤ 255 bytes)
    # host@3.12 → host-py3.12, as its result file is named
    name = _UNSAFE_NAME.sub("_", result_stem(lane_id)).lstrip(".")[:MAX_NAME] or "lane"
    return f"lane-{name}" if name == OVERALL else name


def badges(matrix: Matrix) -> list[Badge]:
    """The overall badge, then one per lane in matrix order."""
    out = [overall_badge(matrix)]
    taken = {OVERALL}
    for lane in matrix.lanes:
        name = base = safe_name(lane.lane)
        n = 2
        while name in taken:  # two ids that sanitise alike must not overwrite each other
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        message, color = lane_message(lane)
        out.append(Badge(name, lane.lane, message, color))
    return out


def write_badges(matrix: Matrix, directory: Path) -> list[Path]:
    """``<name>.svg`` and ``<name>.json`` per badge; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for badge in badges(matrix):
        svg, endpoint = directory / f"{badge.name}.svg", directory / f"{badge.name}.json"
        write_text_atomic(svg, badge.svg())
        write_text_atomic(endpoint, json.dumps(badge.endpoint(), indent=1) + "\n")
        for path in (svg, endpoint):
            path.chmod(0o644)  # badges are for serving; the atomic temp file was 0600
        written += [svg, endpoint]
    return written


def markdown_images(items: Sequence[Badge], url_base: str) -> str:
    """Markdown image links, one per badge, for a README."""
    # a results path with spaces or parentheses would end the link early: percent-encode it
    base = quote(url_base.rstrip("/"), safe="/:@~!$&'*+,;=%.-_")
    links = []
    for badge in items:
        alt = esc.markdown(f"{badge.label}: {badge.message}")
        links.append(f"![{alt}]({base}/{badge.name}.svg)")
    return "\n".join(links)
