"""Write every report format of a matrix next to the lane results."""

from __future__ import annotations

from pathlib import Path

from .matrix import Matrix
from .render import html, junit, markdown
from .suite.result import write_text_atomic

OUTPUT_NAMES = {
    "json": "matrix.json",
    "markdown": "matrix.md",
    "html": "matrix.html",
    "junit": "junit.xml",
}


def write_all(matrix: Matrix, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {kind: directory / name for kind, name in OUTPUT_NAMES.items()}
    matrix.save(paths["json"])
    write_text_atomic(paths["markdown"], markdown.render(matrix))
    write_text_atomic(paths["html"], html.render(matrix))
    write_text_atomic(paths["junit"], junit.render(matrix))
    return paths
