"""A real renderer draws the badges: every text must land inside its own box (issue 7).

cairosvg (cairo) rasterises the SVG. It ignores ``textLength``, so it draws
each text at its natural width in the fallback font (DejaVu Sans): exactly
the case where a width table that is too small would let text spill into
the next box or off the edge. The text is white, so its pixels are found by
brightness and their columns compared with the boxes.
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from archmatrix.render import badges as b

try:
    import cairosvg
    from PIL import Image
except (ImportError, OSError) as exc:  # cairocffi raises OSError when libcairo2 is missing
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise RuntimeError(f"the badge rendering test needs cairosvg and libcairo2: {exc}") from exc
    pytest.skip(f"cairosvg/libcairo2 not available: {exc}", allow_module_level=True)

SCALE = 4  # device pixels per badge pixel
SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class Ink:
    label_box: int  # badge px
    total: int
    columns: list[float]  # badge-px x of every column holding text pixels

    def within(self, lo: float, hi: float) -> list[float]:
        return [x for x in self.columns if lo <= x < hi]


def ink(svg: str) -> Ink:
    root = ET.fromstring(svg)
    total = int(root.get("width", "0"))
    label_box = next(int(r.get("width", "0")) for r in root.iter(f"{SVG}rect")
                     if r.get("fill") == b.LABEL_COLOR)
    png = cairosvg.svg2png(bytestring=svg.encode(), scale=SCALE)
    drawn = Image.open(io.BytesIO(png)).convert("RGBA")
    # onto black: the rounded corners' nearly transparent pixels carry white colour values
    image = Image.alpha_composite(Image.new("RGBA", drawn.size, (0, 0, 0, 255)), drawn).convert("RGB")
    width, height = image.size
    assert (width, height) == (total * SCALE, b.HEIGHT * SCALE)
    pixels = image.load()
    assert pixels is not None
    columns = []
    for x in range(width):
        # the white text (not its dark shadow, not the grey or coloured box)
        if any(min(pixels[x, y]) > 200 for y in range(height)):
            columns.append(x / SCALE)
    return Ink(label_box, total, columns)


def problems(svg: str) -> list[str]:
    """Why the texts of ``svg`` do not sit inside their boxes; empty when they do."""
    found = ink(svg)
    left, total, margin = found.label_box, found.total, 2.0  # of the 5 px padding
    label, message = found.within(0, left), found.within(left, total)
    out = []
    if not label or not message:
        out.append(f"no text drawn in the {'label' if not label else 'message'} box")
        return out
    if label[0] < margin:
        out.append(f"label text starts at the left edge ({label[0]} px)")
    if label[-1] > left - margin or (message[0] < left + margin):
        out.append(f"text touches the label/message boundary at {left} px")
    if message[-1] > total - margin - 1 / SCALE:
        out.append(f"message text runs to the right edge ({message[-1]} of {total} px)")
    # fit, the other way: the boxes are not much wider than the text in them
    for name, cols, box in (("label", label, left), ("message", message, total - left)):
        if cols[-1] - cols[0] < 0.7 * (box - 2 * b.PADDING):
            out.append(f"{name} text spans {cols[-1] - cols[0]:.1f} px of a {box} px box")
    return out


@pytest.mark.parametrize("label, message, color", [
    ("archmatrix", "3/5 lanes", "red"),
    ("host", "pass", "brightgreen"),
    ("linux-x86_64-noavx", "illegal-instruction", "red"),
    ("macos-x86_64-rosetta", "skipped", "lightgrey"),
    ("linux-arm64-docker", "infra-error", "orange"),
    ("WWWWMMMM", "iiiilll", "red"),  # the widest and the narrowest letters
    ("a<b>&c", "numeric-mismatch", "red"),  # escaped text is measured as the text it displays
])
def test_text_is_inside_its_box(label: str, message: str, color: str) -> None:
    assert problems(b.render_svg(label, message, color)) == []


def test_the_check_catches_a_width_table_that_is_too_small(monkeypatch: pytest.MonkeyPatch) -> None:
    # proves the test above can fail: shrink every width by 40 % and the text spills out
    monkeypatch.setattr(b, "_ASCII_WIDTHS", tuple(int(w * 0.6) for w in b._ASCII_WIDTHS))
    found = problems(b.render_svg("linux-x86_64-noavx", "illegal-instruction", "red"))
    assert any("boundary" in p or "edge" in p for p in found), found


def test_the_check_catches_boxes_far_too_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(b, "_ASCII_WIDTHS", tuple(w * 2 for w in b._ASCII_WIDTHS))
    found = problems(b.render_svg("linux-x86_64-noavx", "pass", "brightgreen"))
    assert any("spans" in p for p in found), found
