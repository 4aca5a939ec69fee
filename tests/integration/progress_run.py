"""A small real matrix run for the progress tests: ``python progress_run.py WORKDIR``.

Two lanes of a runner registered the public way (``runners=``) that stages
the real suite and runs it with this interpreter on this host: three real
checks each, in parallel, through ``run_matrix`` and the progress display it
picks for stderr (live on a terminal, plain lines in CI). No lock is staged
(no pip, no network), so it takes seconds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from archmatrix import config as config_mod
from archmatrix.hostfacts import HostFacts
from archmatrix.model import LaneConfig, LaneTarget
from archmatrix.orchestrate import run_matrix
from archmatrix.runners import RUNNERS, Availability, LaneJob, Launch, Option, Runner
from archmatrix.runners.common import lane_env, stage_job_suite

CONFIG = """\
lock:
  python: "{python}"
  packages: {{numpy: "2.4.6"}}
checks:
  select: ["import.numpy", "linalg.matmul", "linalg.solve"]
lanes:
  - {{id: here, runner: this-python}}
  - {{id: there, runner: this-python}}
"""


class ThisPython:
    """The suite as the venv runner runs it, with the interpreter running this script."""

    name: ClassVar[str] = "this-python"
    options: ClassVar[Mapping[str, Option]] = {}

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        return LaneTarget()

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability:
        return Availability.yes("native")

    def prepare(self, job: LaneJob) -> Launch:
        suite_root, user_checks = stage_job_suite(job)  # the "staging" phase
        env, removed = lane_env(os.environ, suite_root)
        return Launch(prefix=[sys.executable], env=env, env_removed=tuple(removed), user_checks=user_checks)


def main(workdir: Path) -> int:
    registry: dict[str, Runner] = {**RUNNERS, "this-python": ThisPython()}
    path = workdir / "matrix.yaml"
    path.write_text(CONFIG.format(python=f"{sys.version_info[0]}.{sys.version_info[1]}"), encoding="utf-8")
    cfg = config_mod.load(path, runners=registry)
    host = HostFacts(system="Linux", machine="x86_64", cpu_count=2)
    outcome = run_matrix(cfg, host, results_dir=workdir / "results", workdir=workdir / "work",
                         runners=registry)
    return outcome.matrix.exit_code()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
