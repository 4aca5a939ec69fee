"""User-facing errors (placeholder until the errors module lands)."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem, already phrased for the user (file:line:col: path: what)."""
