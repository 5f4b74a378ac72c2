"""ifelse and until() in a GPU package on a real GPU, through its host launcher
(the driver alone), against NumPy and the package's CPU kernels. The same spec
runs on the stand-in driver in tests/test_cuda_launcher_control.py. Skipped
without a GPU (tests/gpu/conftest.py); tools/gpu_check.sh runs these."""
import importlib
import sys

import numpy as np
import pytest

from _control_spec import SPEC


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    """tests/_control_spec.py built with --target c,cuda (default architectures), on the GPU."""
    from kgen.package import build_package, load_spec
    root = tmp_path_factory.mktemp("gpu_ctl")
    (root / "gpu_ctl.py").write_text(SPEC)
    spec = load_spec(root / "gpu_ctl.py")
    build_package(spec.kernels, root / "out", "gpu_ctl", spec.path, targets=("c", "cuda"))
    sys.path.insert(0, str(root / "out"))
    try:
        module = importlib.import_module("gpu_ctl")
    finally:
        sys.path.remove(str(root / "out"))
    assert module.device("cuda") == "cuda"
    return module


def on_cpu(pkg, kernel, *args):
    pkg.device("cpu")
    try:
        return getattr(pkg, kernel)(*args)
    finally:
        pkg.device("cuda")


def test_ifelse_runs_the_taken_branch_only(pkg):
    rng = np.random.default_rng(4)
    A, x = rng.standard_normal((300, 200)), rng.standard_normal(200)
    p, q = pkg.branchy(-1.0, A[:200, :], x, 10 ** 6)   # x[10**6] is never read
    np.testing.assert_allclose(p, x + 1, rtol=1e-15)
    np.testing.assert_allclose(q, x.sum(), rtol=1e-12)
    p, q = pkg.branchy(2.0, A[:200, :], x, -3)
    np.testing.assert_allclose(p, 2 * (A[:200] @ x), rtol=1e-12)
    assert q == x[-3]
    cpu = on_cpu(pkg, "branchy", 2.0, A[:200, :], x, -3)
    np.testing.assert_allclose(p, cpu[0], rtol=1e-12)
    with pytest.raises(IndexError):
        pkg.branchy(2.0, A[:200, :], x, 10 ** 6)
    for cv, dv in ((1.0, 1.0), (1.0, -1.0), (-1.0, 0.5)):
        want = (x * 3 if dv > 0 else x - 1) if cv > 0 else np.exp(x)
        np.testing.assert_allclose(pkg.nested(cv, dv, x), want, rtol=1e-14)


def test_until_stops_and_cuts_like_the_cpu(pkg):
    rng = np.random.default_rng(5)
    v = rng.uniform(0.01, 0.05, 1000)
    stop = int(np.argmax(np.cumsum(v) > 2.5)) + 1
    got = pkg.upto(v)
    np.testing.assert_allclose(got, np.cumsum(v)[:stop], rtol=1e-12)
    np.testing.assert_allclose(got, on_cpu(pkg, "upto", v), rtol=1e-14)
    assert float(pkg.upto_last(v)) == pytest.approx(2 * np.cumsum(v)[stop - 1], rel=1e-12)
    np.testing.assert_allclose(pkg.upto(np.full(4, 0.1)), [0.1, 0.2, 0.3, 0.4], rtol=1e-14)
    pkg.upto.device_outputs = True
    try:
        out = pkg.upto(v)
    finally:
        pkg.upto.device_outputs = False
    assert isinstance(out, pkg.DeviceArray) and out.shape == (stop,)


def test_a_loop_inside_a_branch(pkg):
    v = np.linspace(-1, 1, 50)
    h = 0.0
    for e in v:
        h = np.tanh(h + e)
    assert float(pkg.loop_in_branch(1.0, v)) == pytest.approx(h, rel=1e-12)
    assert float(pkg.loop_in_branch(-1.0, v)) == pytest.approx(v.sum(), abs=1e-12)
