"""The self-check: the first check of every lane, proving the lane is what it claims.

The host passes what the lane claims in ``options["self_check"]``: the CPU
profile's name, the extensions it lacks, and the lock's Python. See
:mod:`archmatrix.suite.lane.selfcheck` for how the lane proves it.
"""

from __future__ import annotations

from ..lane import selfcheck
from ..registry import CheckContext, check

CHECK_ID = "lane.self"


class LaneNotAsClaimed(Exception):
    """The lane is not what it claims (CPU, children, interpreter): its results would not be the lane's."""


@check("lane.self", description="the lane is what it claims: its CPU, its children's CPU, its interpreter")
def lane_self(ctx: CheckContext) -> None:
    claim = ctx.options.get("self_check") or {}
    absent = [str(name) for name in claim.get("absent") or ()]
    names = selfcheck.features()
    parent = selfcheck.probe_all(names)
    children = selfcheck.children(names) if names else {}
    for name, found in parent.items():
        ctx.record(f"cpu.{name}", found)
    for how, seen in children.items():
        ctx.record(f"children.{how}", seen if isinstance(seen, str) else
                   ", ".join(f"{name} {found}" for name, found in seen.items()))
    problems = selfcheck.judge(parent, children, absent, str(claim.get("profile") or ""))
    interpreter = selfcheck.python_problem(str(claim.get("python") or ""))
    if interpreter:
        problems.append(interpreter)
    if problems:
        raise LaneNotAsClaimed("; ".join(problems))
