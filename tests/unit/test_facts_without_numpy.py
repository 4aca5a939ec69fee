"""A lane whose lock has no numpy (a project's own pytest suite, issue 17): no false warnings.

The lane facts that need numpy, scipy, scikit-learn or threadpoolctl are simply
absent when those packages are not installed at all; a package that is there
but fails to import is still recorded, and becomes a warning on the host.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PROBE = """
import json, sys
{before}
from archmatrix.suite.lane.facts import library_facts
print(json.dumps(library_facts("x86_64")["errors"]))
"""


def lane_errors(before: str = "") -> dict[str, str]:
    # -S: no site-packages, so neither numpy nor its friends are installed for this interpreter
    out = subprocess.run([sys.executable, "-S", "-c", PROBE.format(before=before)],
                         env={"PYTHONPATH": str(SRC)}, capture_output=True, text=True, check=True, timeout=60)
    return dict(json.loads(out.stdout))


def test_packages_not_installed_leave_no_error() -> None:
    assert lane_errors() == {}


def test_a_package_that_is_installed_but_fails_to_import_is_still_recorded(tmp_path: Path) -> None:
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text("import numpy_missing_core  # a broken install\n")
    errors = lane_errors(f"sys.path.insert(0, {str(tmp_path)!r})")
    assert errors["cpu"] == "ModuleNotFoundError: No module named 'numpy_missing_core'"
    assert "import:scipy.linalg" not in errors
