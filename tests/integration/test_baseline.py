"""A CPU below numpy's baseline: ``qemu -cpu qemu64`` (x86-64-v1) with the locked numpy.

numpy ≥ 2.4's x86-64 wheels are built for x86-64-v2 throughout, so on an
x86-64-v1 CPU ``import numpy`` dies of SIGILL before numpy can say anything.
The cell stays ``illegal-instruction``, and its message names the cause the
user can act on: the CPU is below numpy's stated baseline.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix import hostfacts

pytestmark = pytest.mark.integration


def test_a_cpu_below_numpys_baseline_is_named(tmp_path: Path, workdir: Path) -> None:
    host = hostfacts.detect(check_docker=False)
    require(host.machine == "x86_64" and "x86_64" in host.qemu_user, "needs an x86-64 host with qemu-x86_64")
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    cfg = {
        "lock": shipped["lock"],
        "checks": {"select": ["lane.self", "import.numpy"]},
        "cpu_profiles": {"x86-64-v1": {"arch": "x86_64", "qemu_cpu": "qemu64",
                                       "description": "the original x86-64: no SSE4.2, no POPCNT",
                                       "absent": ["AVX", "AVX2", "FMA3", "F16C", "AVX512F"]}},
        "lanes": [{"id": "linux-x86_64-v1", "runner": "qemu", "options": {"cpu_profile": "x86-64-v1"}}],
    }
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    results = tmp_path / "results"
    proc = subprocess.run(
        archmatrix_argv("lane", "linux-x86_64-v1", "--config", str(path), "--results", str(results),
                        "--workdir", str(workdir), "--no-probes"),
        env=python_env(), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    lane = json.loads((results / "linux-x86_64-v1.json").read_text())
    cells = {c["id"]: c for c in lane["checks"]}
    assert cells["lane.self"]["outcome"] == "pass", cells["lane.self"]
    numpy = cells["import.numpy"]
    assert numpy["outcome"] == "illegal-instruction", numpy
    assert numpy["message"].startswith("this CPU is below numpy's baseline x86-64-v2"), numpy["message"]
