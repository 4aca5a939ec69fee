"""Files shipped inside the package (``archmatrix/resources/``), found the same way installed or not."""

from __future__ import annotations

from importlib.resources import files


def read_text(name: str) -> str:
    return (files("archmatrix") / "resources" / name).read_text(encoding="utf-8")
