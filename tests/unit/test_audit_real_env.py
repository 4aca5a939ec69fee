"""The audit of this interpreter's real numpy, scipy, scikit-learn, matplotlib and pillow (test deps).

Their AVX/AVX-512/BMI code (numpy's dispatch targets, OpenBLAS's DYNAMIC_ARCH
kernels, libgfortran's matmul variants, the BMI2 decoders of pillow's
vendored zstd behind zstd's own cpuid probe) is selected at run time: it
must be reported as guarded, never as an illegal instruction for the no-AVX
lane — which agrees with the real linux-x86_64-noavx lane, where every check
of these packages passes under qemu -cpu Westmere (and libzstd compresses
and decompresses there: issue 15's false alarm).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import pytest
from audit_fixtures import targets

from archmatrix.audit.predict import Prediction, predict
from archmatrix.audit.report import audit

numpy = pytest.importorskip("numpy")
scipy = pytest.importorskip("scipy")
sklearn = pytest.importorskip("sklearn")
matplotlib = pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL")

# generous: a full audit takes a few seconds; this only catches a scan gone quadratic
TIME_LIMIT_S = 60.0


def package_dirs() -> list[Path]:
    site = Path(numpy.__file__).resolve().parents[1]
    dirs = [Path(m.__file__).resolve().parent for m in (numpy, scipy, sklearn, matplotlib, PIL)]
    # auditwheel's vendored libraries
    libs = ("numpy.libs", "scipy.libs", "scikit_learn.libs", "matplotlib.libs", "pillow.libs")
    dirs += [site / name for name in libs if (site / name).is_dir()]
    return dirs


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 wheels only")
def test_real_numpy_scipy_sklearn_avx_is_guarded_no_false_alarm() -> None:
    lanes = list(targets().values())
    started = time.perf_counter()
    report = audit(package_dirs(), lanes, ["host", "linux-x86_64-noavx"])
    elapsed = time.perf_counter() - started
    print(f"\naudit of {len(report.binaries)} binaries: {elapsed:.1f} s")
    assert elapsed < TIME_LIMIT_S
    assert len(report.binaries) > 100 and not any(b.error for b in report.binaries)

    with_avx = [b for b in report.binaries if any({"AVX", "AVX2", "AVX-512", "BMI"} & set(im.scan.extensions)
                                                  for im in b.images)]
    names = {Path(b.path).name.split(".")[0] for b in with_avx}
    # numpy's dispatched loops and OpenBLAS's kernels are found …
    assert "_multiarray_umath" in names
    assert any(n.startswith("libscipy_openblas") for n in names)
    # … and every one of them is guarded, so no illegal-instruction anywhere
    for b in with_avx:
        assert b.predictions["linux-x86_64-noavx"].prediction is Prediction.GUARDED, (
            b.path, b.predictions["linux-x86_64-noavx"].reason)
    assert report.lane_prediction("linux-x86_64-noavx") is Prediction.GUARDED
    assert not report.failed
    core = next(b for b in with_avx if b.path.endswith(".so") and "_multiarray_umath" in b.path)
    assert "numpy __cpu_features__" in core.images[0].scan.guards
    openblas = next(b for b in with_avx if "libscipy_openblas" in b.path)
    assert "OpenBLAS DYNAMIC_ARCH" in openblas.images[0].scan.guards
    # pillow's zstd: no machine-wide dispatch marker, its own cpuid leaf 7 probe and a few BMI2 functions
    zstd = [b for b in with_avx if Path(b.path).name.startswith("libzstd")]
    for b in zstd:
        scan = b.images[0].scan
        assert scan.guards == [] and 7 in scan.cpuid_leaves, b.path
        assert "cpuid leaf 7 probe" in b.predictions["linux-x86_64-noavx"].reason
    # Linux ELF files do not load in the Rosetta lane at all
    rosetta = next(ln for ln in lanes if ln.id == "macos-x86_64-rosetta")
    assert predict(core.images, rosetta).prediction is Prediction.WRONG_ARCH
