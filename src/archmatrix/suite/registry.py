"""How checks are declared, registered and given their context.

A check is a small function with an id. It receives a :class:`CheckContext`,
records the numbers it computed as metrics (so lanes can later be compared
number by number), and either returns (``pass``), raises :class:`Mismatch`
(``numeric-mismatch``), raises :class:`CheckSkipped` (``skipped``), or raises
anything else (classified from the exception). A check may also return a
mapping of extra metrics, which is what user check modules usually do.

Stdlib only: this module runs inside lanes.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Metric = float | int | str | bool | list[float] | None
CheckFunc = Callable[["CheckContext"], "Mapping[str, Metric] | None"]

# The built-in check modules, in the order their checks are reported.
BUILTIN_MODULES = (
    "checks.lane",  # first: the self-check proves the lane is what it claims
    "checks.imports",
    "checks.blas",
    "checks.linalg",
    "checks.sklearn",
    "checks.perf",  # last: probes inform, and a quick run can leave them out (checks.exclude)
)

# How many numbers of one array a metric keeps: enough to compare lanes
# number by number, small enough that a result file stays readable.
MAX_METRIC_VALUES = 64


class Mismatch(AssertionError):
    """The check ran, but its numbers differ from the reference beyond tolerance."""


class CheckSkipped(Exception):
    """The check does not apply in this lane (the message says why)."""


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-9, atol=1e-12),
    "float32": Tolerance(rtol=2e-4, atol=1e-5),
}


@dataclass(frozen=True)
class Check:
    id: str
    func: CheckFunc
    description: str = ""
    timeout: float | None = None  # seconds; None: the run's default
    # a probe: it reports findings (speeds) but never fails a lane, whatever happens to it
    informational: bool = False

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass
class CheckContext:
    """What a running check can read (tolerances, options) and write (metrics, warnings)."""

    tolerances: Mapping[str, Tolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    options: Mapping[str, Any] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def tolerance(self, dtype: str) -> Tolerance:
        return self.tolerances.get(dtype, DEFAULT_TOLERANCES["float64"])

    def record(self, name: str, value: Any) -> None:
        """Record a metric; arrays (anything with ``tolist``) become flat float lists."""
        self.metrics[name] = _metric_value(value)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def assert_close(
        self,
        name: str,
        actual: Any,
        expected: Any,
        *,
        dtype: str = "float64",
        rtol: float | None = None,
        atol: float | None = None,
    ) -> None:
        """Compare element by element in plain Python and record the evidence.

        Records ``name`` (the actual values) and ``name.max_abs_err``; raises
        :class:`Mismatch` naming the worst element when any element is off by
        more than ``atol + rtol * |expected|``.
        """
        tol = self.tolerance(dtype)
        rtol = tol.rtol if rtol is None else rtol
        atol = tol.atol if atol is None else atol
        got = flatten(actual)
        want = flatten(expected)
        self.record(name, got)
        if len(got) != len(want):
            raise Mismatch(f"{name}: got {len(got)} values, expected {len(want)}")
        worst_i, worst_err, worst_excess = -1, 0.0, 0.0
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if math.isnan(w) or math.isinf(w):  # a non-finite reference must be matched exactly
                if not (g == w or (math.isnan(g) and math.isnan(w))):
                    raise Mismatch(f"{name}[{i}] = {g!r}, expected {w!r}")
                continue
            if math.isnan(g) or math.isinf(g):
                raise Mismatch(f"{name}[{i}] is {g}, expected {w!r}")
            err = abs(g - w)
            excess = err - (atol + rtol * abs(w))
            if err > worst_err:
                worst_err = err
            if excess > worst_excess:
                worst_i, worst_excess = i, excess
        self.metrics[f"{name}.max_abs_err"] = worst_err
        if worst_i >= 0:
            raise Mismatch(
                f"{name}[{worst_i}] = {got[worst_i]!r}, expected {want[worst_i]!r} "
                f"(rtol={rtol:g}, atol={atol:g}, {dtype})"
            )


def flatten(value: Any) -> list[float]:
    """Nested sequences / numpy arrays / scalars → a flat list of Python floats."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        out: list[float] = []
        for item in value:
            out.extend(flatten(item))
        return out
    return [float(value)]


def _metric_value(value: Any) -> Metric:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return flatten(value)[:MAX_METRIC_VALUES]
    if isinstance(value, bool | int | str) or value is None:
        return value
    return float(value)


_REGISTRY: dict[str, Check] = {}


def check(
    id: str, *, timeout: float | None = None, description: str = "", informational: bool = False
) -> Callable[[CheckFunc], CheckFunc]:
    """Register ``func`` as the check ``id`` (dotted, e.g. ``linalg.solve``).

    An ``informational`` check (a performance probe) is reported like any
    other, but if it fails, crashes or times out the supervisor reports it as
    ``skipped`` with the failure in its message: it informs, never fails a lane.
    """

    def register(func: CheckFunc) -> CheckFunc:
        if id in _REGISTRY and _REGISTRY[id].func is not func:
            raise ValueError(f"check id {id!r} is registered twice")
        text = description or next(iter((func.__doc__ or "").strip().splitlines()), "")
        _REGISTRY[id] = Check(id=id, func=func, description=text, timeout=timeout,
                              informational=informational)
        return func

    return register


def builtin_checks() -> list[Check]:
    """Import the built-in check modules (stdlib-only at import) and list their checks."""
    for name in BUILTIN_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    # in BUILTIN_MODULES order even if a module was imported earlier (a test, a user module)
    rank = {f"{__package__}.{name}": i for i, name in enumerate(BUILTIN_MODULES)}
    return sorted(_REGISTRY.values(), key=lambda c: rank.get(c.func.__module__, len(rank)))


def is_module_path(entry: str) -> bool:
    """Whether a user check module entry is a ``.py`` file's path (else it is a dotted module name)."""
    return entry.endswith(".py") or "/" in entry or os.sep in entry


def load_user_module(spec: str) -> list[Check]:
    """Import a user check module by dotted name or by ``.py`` path; return its checks.

    Checks are registered with :func:`check`, or discovered from module-level
    functions named ``check_<name>`` (id ``<module>.<name>``), so a user module
    needs no import of archmatrix at all.
    """
    before = set(_REGISTRY)
    if is_module_path(spec):
        path = Path(spec)
        mod_name = path.stem
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot load check module from {spec}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(spec)
        mod_name = spec.rsplit(".", 1)[-1]
    for attr, value in vars(module).items():
        if attr.startswith("check_") and callable(value):
            check_id = f"{mod_name}.{attr[len('check_'):]}"
            if check_id not in _REGISTRY:
                check(check_id)(value)
    return [c for cid, c in _REGISTRY.items() if cid not in before]


def select(
    checks: Iterable[Check], patterns: Iterable[str] | None, exclude: Iterable[str] | None = None
) -> list[Check]:
    """Keep the checks whose id matches one of ``patterns`` (fnmatch; ``None`` keeps all)
    and none of ``exclude`` (e.g. ``perf.*`` for a quick run without the probes)."""
    import fnmatch

    pats = list(patterns) if patterns is not None else None
    kept = list(checks) if not pats else [
        c for c in checks if any(fnmatch.fnmatchcase(c.id, p) for p in pats)
    ]
    drop = list(exclude or ())
    return [c for c in kept if not any(fnmatch.fnmatchcase(c.id, p) for p in drop)]
