"""What the host tells the lane-side suite to run: the ``--spec`` argument.

The host builds a :class:`SuiteSpec` from the config
(``ChecksConfig.suite_spec()``) and passes it as one JSON object on the
suite's command line; the suite reads it back with :meth:`SuiteSpec.from_json`.
Both sides therefore agree on one typed value instead of a dict each reads
with ``.get``.

Stdlib only: this module runs inside lanes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .registry import Tolerance

# The user's tests: staged beside the suite package in this directory (not a
# module name: it never shadows an import), one cell per test, ``pytest::<nodeid>``.
PYTEST_PROJECT_DIR = "archmatrix-pytest"
PYTEST_PREFIX = "pytest::"


@dataclass(frozen=True)
class SuiteSpec:
    checks: tuple[str, ...] | None = None  # fnmatch patterns of the check ids to run; None (or empty): all
    exclude: tuple[str, ...] = ()  # patterns left out after ``checks``
    user_checks: tuple[str, ...] = ()  # modules (dotted names or staged file names) whose checks also run
    timeouts: Mapping[str, float] = field(default_factory=dict)  # per check id, seconds
    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)  # per dtype, over the defaults
    options: Mapping[str, Any] = field(default_factory=dict)  # CheckContext.options
    # The user's pytest arguments, rewritten for the project staged with the
    # suite (staging.suite.pytest_project); empty: no pytest cells.
    pytest: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (keys left out when they say nothing, so the suite's defaults apply)."""
        data: dict[str, Any] = {}
        if self.checks is not None:
            data["checks"] = list(self.checks)
        data["exclude"] = list(self.exclude)
        data["user_checks"] = list(self.user_checks)
        data["timeouts"] = dict(self.timeouts)
        data["tolerances"] = {k: {"rtol": t.rtol, "atol": t.atol} for k, t in self.tolerances.items()}
        if self.options:
            data["options"] = dict(self.options)
        if self.pytest:
            data["pytest"] = list(self.pytest)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def __getitem__(self, key: str) -> Any:
        """Read a key of the JSON object this spec travels as (``spec["exclude"]``)."""
        return self.to_dict()[key]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteSpec:
        """The spec of a JSON object; a missing key keeps its default. ValueError when malformed."""
        if not isinstance(data, Mapping):
            raise ValueError(f"--spec: expected a JSON object, found {type(data).__name__}")
        checks = data.get("checks")
        try:
            return cls(
                checks=None if checks is None else _strings("checks", checks),
                exclude=_strings("exclude", data.get("exclude") or ()),
                user_checks=_strings("user_checks", data.get("user_checks") or ()),
                timeouts={str(k): float(v) for k, v in _mapping("timeouts", data.get("timeouts")).items()},
                tolerances={
                    str(k): Tolerance(float(t["rtol"]), float(t["atol"]))
                    for k, t in _mapping("tolerances", data.get("tolerances")).items()
                },
                options=dict(_mapping("options", data.get("options"))),
                pytest=_strings("pytest", data.get("pytest") or ()),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"--spec: malformed value: {exc!r}") from None

    @classmethod
    def from_json(cls, text: str) -> SuiteSpec:
        return cls.from_dict(json.loads(text))


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"--spec: {key}: expected a list of strings")
    return tuple(value)


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"--spec: {key}: expected an object")
    return value
