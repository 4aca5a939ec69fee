"""Escaping, one function per medium, for every text from a lane, a result file, a config or a package.

Lane ids, check ids, messages, evidence, facts, skip reasons, warnings and
hints are data, written by whatever ran in the lane (or by whoever wrote the
file). Every renderer passes them through the function for its medium here,
and nowhere else escapes, so a medium is made safe in one place:

* :func:`terminal` — control characters (C0, DEL, C1), line and paragraph
  separators and bidi overrides become visible ``\\xNN`` / ``\\uNNNN``:
  no escape sequence reaches the terminal and no data text can start a line.
  :func:`no_commands` then makes sure no printed line starts with ``::``,
  which the GitHub runner would read as a workflow command (it trims leading
  whitespace before looking, on stdout and stderr alike).
* :func:`markdown` — table-safe (``|``, newlines) and no raw HTML, links or
  code spans: GitHub renders a job summary and a README with its own
  sanitiser, which we do not rely on.
* :func:`html` — :func:`html.escape` after :func:`terminal` (HTML forbids
  most control characters too).
* :func:`xml` — characters XML 1.0 cannot carry at all, escaped or not, made
  visible (then the XML library escapes ``<&>"``), so ``junit.xml`` stays XML
  even with an ANSI-coloured stderr tail.
* :func:`workflow_data` / :func:`workflow_property` — ``::error`` message and
  property escaping as ``@actions/core`` does it.
"""

from __future__ import annotations

import html as _html
import re

# C0 controls, DEL, C1 controls; U+2028/2029 (line/paragraph separators,
# which str.splitlines and some terminals break lines on); bidi embeddings,
# overrides and isolates (they reorder what a reader sees); lone surrogates
# (JSON can carry them, no encoder can write them); BOM/ZWNBSP.
_TERMINAL_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff]")
# the same, minus tab and newline, for preformatted blocks
_PRE_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff]")
# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")
COMMAND_PREFIX = "::"


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: object) -> str:
    """One line of plain text: every control character, newline included, shown as ``\\xNN``."""
    return _TERMINAL_UNSAFE.sub(_visible, str(text))


def no_commands(text: str) -> str:
    """``text`` (several lines) with any line that would start a GitHub workflow command defused.

    Applied to the whole of what archmatrix prints itself (its own ``::error``
    annotations are printed apart, after this), so no data can become a
    command whatever line it lands at the start of.
    """
    lines = text.split("\n")
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(COMMAND_PREFIX):
            lines[i] = line[: len(line) - len(stripped)] + "\\x3a" + stripped[1:]
    return "\n".join(lines)


def terminal_lines(text: object) -> str:
    """:func:`terminal` and :func:`no_commands` together: one safe line to print."""
    return no_commands(terminal(text))


def markdown(text: object) -> str:
    """Text for a markdown table cell or list item: one line, no markup, no raw HTML.

    Backslash, backtick, ``*``, ``[``, ``]`` and ``|`` are backslash-escaped
    (no code spans, emphasis, links or images, no cell boundary); ``&``,
    ``<`` and ``>`` become entities (no raw HTML, so no ``<img onerror=…>``
    and no ``<!-- archmatrix:end -->`` marker); control characters and line
    breaks become visible ``\\xNN``.
    """
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # control characters last: their visible "\x0a" is not a markdown escape ("x" is a letter)
    return terminal(_MD_SPECIAL.sub(r"\\\1", out))


def markdown_code(text: object) -> str:
    """A code span for an identifier when it is plain (letters, digits, ``._-``), else :func:`markdown`."""
    value = str(text)
    if re.fullmatch(r"[A-Za-z0-9._+-]+", value):
        return f"`{value}`"
    return markdown(value)


def html(text: object) -> str:
    """Element content or a quoted attribute value."""
    return _html.escape(terminal(text), quote=True)


def html_block(text: object) -> str:
    """Content of a ``<pre>``: newlines and tabs kept, every other control character visible."""
    return _html.escape(_PRE_UNSAFE.sub(_visible, str(text)), quote=True)


def xml(text: object) -> str:
    """Text XML 1.0 can carry (for ElementTree, which escapes ``<&>"`` itself but not these)."""
    return _NOT_XML.sub(_visible, str(text))


def xml_dropped(text: object) -> str:
    """:func:`xml` for a short label (a badge): the characters XML cannot carry are dropped, not shown."""
    return _NOT_XML.sub("", str(text))


def workflow_data(text: object) -> str:
    """A workflow command's message, as ``@actions/core`` escapes it."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: object) -> str:
    """A workflow command's property value (``title=…``)."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")
