"""Files archmatrix ships inside its package (the lane image definition), read in one place.

They are package data, so a normal (non-editable) install has them too: nothing
is looked up relative to a source checkout.
"""

from __future__ import annotations

from importlib import resources


def read_text(name: str) -> str:
    """The text of the packaged file ``name``; OSError (FileNotFoundError) when it is missing."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
