"""Write every report format of a matrix next to the lane results."""

from __future__ import annotations

from pathlib import Path

from .diff import MatrixDiff
from .errors import UsageError
from .matrix import Matrix
from .render import html, junit, markdown
from .suite.result import write_text_atomic

OUTPUT_NAMES = {
    "json": "matrix.json",
    "markdown": "matrix.md",
    "html": "matrix.html",
    "junit": "junit.xml",
}


def write_all(matrix: Matrix, directory: Path, *, diff: MatrixDiff | None = None) -> dict[str, Path]:
    """Every report into ``directory`` (created); a directory that cannot take them is a UsageError.

    ``diff``, the comparison with a baseline, goes at the top of the markdown and the HTML.
    """
    paths = {kind: directory / name for kind, name in OUTPUT_NAMES.items()}
    # rendered first, so a renderer's bug cannot leave half the reports old and half new
    texts = {"markdown": markdown.render(matrix, diff=diff), "html": html.render(matrix, diff=diff),
             "junit": junit.render(matrix)}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        matrix.save(paths["json"])
        for kind, text in texts.items():
            write_text_atomic(paths[kind], text)
    except OSError as exc:
        # an unwritable --out, a file where the directory should be, a full disk
        raise UsageError(f"{exc.filename or directory}: cannot write the reports "
                         f"({exc.strerror or exc})") from None
    return paths
