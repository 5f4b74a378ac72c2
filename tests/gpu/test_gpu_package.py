"""A package's kernels on a real GPU through its host launcher (driver only), and
kg.function(target='cuda') through cuda-python, both against NumPy. Skipped
without a GPU (tests/gpu/conftest.py); tools/gpu_check.sh runs these."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import kgen as kg

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """examples/specs/mlp.py built with --target c,cuda (default architectures), on the GPU."""
    from kgen.package import build_package, load_spec
    out = tmp_path_factory.mktemp("gpu_pkg")
    spec = load_spec(REPO / "examples" / "specs" / "mlp.py")
    build_package(spec.kernels, out, "mlp_gpu", spec.path, targets=("c", "cuda"))
    sys.path.insert(0, str(out))
    try:
        pkg = importlib.import_module("mlp_gpu")
    finally:
        sys.path.remove(str(out))
    return pkg


def _batch(n=256, seed=0):
    """A batch for examples/specs/mlp.py: 4 float32 features, labels in [0, 3)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n).astype(np.int32)


def test_package_kernels_on_the_gpu_match_the_cpu(mlp):
    x, y = _batch()
    start = {s: getattr(mlp, s).get_value() for s in ("W1", "b1", "W2", "b2")}
    mlp.device("cpu")
    cpu = [mlp.train(x, y) for _ in range(3)]
    cpu_params = {s: getattr(mlp, s).get_value() for s in start}
    for s, v in start.items():
        getattr(mlp, s).set_value(v)
    assert mlp.device("cuda") == "cuda"
    gpu = [mlp.train(x, y) for _ in range(3)]
    tol = 1e-4  # float32: the GPU's and the CPU's summation orders differ
    np.testing.assert_allclose(gpu, cpu, rtol=tol)
    for s in start:
        np.testing.assert_allclose(getattr(mlp, s).get_value(), cpu_params[s], rtol=tol,
                                   atol=tol)
    on_gpu = mlp.probabilities(x)
    mlp.device("cpu")
    np.testing.assert_allclose(on_gpu, mlp.probabilities(x), rtol=tol, atol=tol)
    mlp.device("cuda")
    # a DeviceArray (or a CuPy array) goes in without a host copy
    mlp.probabilities.device_outputs = True
    p = mlp.probabilities(x)
    mlp.probabilities.device_outputs = False
    assert isinstance(p, mlp.DeviceArray)
    try:
        import cupy
    except ImportError:
        return
    xd = cupy.asarray(x)
    np.testing.assert_allclose(mlp.probabilities(xd), cupy.asnumpy(cupy.asarray(p)), rtol=tol)


def test_function_through_cuda_python():
    pytest.importorskip("cuda.bindings.driver", reason="cuda-python is not installed")
    from kgen.runtime.cuda_python import CudaPythonDriver
    from kgen.runtime.cuda import CudaFunction
    x, y = kg.dvector("x"), kg.dvector("y")
    k = kg.kernel("w", [x, y], [kg.sum((x - y) ** 2), kg.exp(-x * x) * kg.sin(y)])
    f = CudaFunction(k, driver=CudaPythonDriver())
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(100_000), rng.standard_normal(100_000)
    s, e = f(a, b)
    np.testing.assert_allclose(s, np.sum((a - b) ** 2), rtol=1e-11)
    np.testing.assert_allclose(e, np.exp(-a * a) * np.sin(b), rtol=1e-14)
