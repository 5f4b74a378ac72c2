"""kgen's own OpenBLAS instance (kgen/build/blas.py): local builds' products call a
copy of NumPy's library, loaded apart from NumPy's, with its own thread settings;
the modules get its entry points when they load."""
import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

import kgen as kg
from kgen.build import blas

pytestmark = pytest.mark.skipif(blas.numpy_openblas() is None or
                                os.environ.get("KGEN_BLAS") == "builtin",
                                reason="NumPy's wheel OpenBLAS (scipy-openblas64) is not here")


def _product():
    a, b = kg.dmatrix("a"), kg.dmatrix("b")
    return kg.function([a, b], kg.dot(a, b) + 1.0, name="blas_instance")


def test_products_run_on_a_separate_instance_with_its_own_settings():
    f = _product()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((70, 50)), rng.standard_normal((50, 90))
    np.testing.assert_allclose(f(a, b), a @ b + 1.0, rtol=1e-12, atol=1e-12)
    ours, numpys = blas.kgen_openblas(), ctypes.CDLL(blas.numpy_openblas())
    mapped = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line}
    assert ours._name in mapped and blas.numpy_openblas() in mapped
    # the settings OpenBLAS read when it loaded: the short spin only in kgen's
    if "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
        assert ours.openblas_thread_timeout() == int(blas.THREAD_TIMEOUT)
        assert numpys.openblas_thread_timeout() == 0
    # and a setting changed in one is not seen by the other
    get = "scipy_openblas_get_num_threads64_"
    # kgen's runs each call on the caller's thread (kernels cut products into
    # bands on their OpenMP team); NumPy's keeps its own count
    assert blas._single_threaded and getattr(ours, get)() == 1
    before = getattr(numpys, get)()
    ours.scipy_openblas_set_num_threads64_(3)
    try:
        assert getattr(ours, get)() == 3 and getattr(numpys, get)() == before
        np.testing.assert_allclose(f(a, b), a @ b + 1.0, rtol=1e-12, atol=1e-12)
    finally:
        ours.scipy_openblas_set_num_threads64_(1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_products_in_bands(dtype):
    """Products over kg_blas.h's threshold (2**20 multiply-adds) are cut into
    bands of rows (M >= N) or of columns on the OpenMP team, each one whole
    sgemm/dgemm call: A transposed or not, beta != 0 (an update), edges of
    bands off the 16-row grid."""
    a, b, c = (kg.matrix(n, dtype=dtype) for n in "abc")
    f = kg.function([a, b, c], [kg.dot(a, b), c - 0.5 * kg.dot(b.T, a.T)], name="blas_bands")
    rng = np.random.default_rng(4)
    tol = {"float32": 2e-4, "float64": 1e-11}[dtype]
    for M, K, N in [(301, 200, 97), (45, 130, 333), (20, 4000, 40)]:
        x = rng.standard_normal((M, K)).astype(dtype)
        y = rng.standard_normal((K, N)).astype(dtype)
        z = rng.standard_normal((N, M)).astype(dtype)
        p, q = f(x, y, z)
        want = x.astype(np.float64) @ y
        scale = np.abs(x).astype(np.float64) @ np.abs(y)
        assert np.all(np.abs(p - want) <= tol * scale), (M, K, N)
        want_q = z - 0.5 * want.T
        assert np.all(np.abs(q - want_q) <= tol * (np.abs(z) + scale.T)), (M, K, N)


def test_an_unbound_module_still_multiplies():
    """Until kg_blas_bind runs, products take kg_blas.h's plain loop: right, not fast."""
    f = _product()
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((9, 33)), rng.standard_normal((33, 5))
    module = f._module
    module.lib.kg_blas_bind(module.ffi.NULL, module.ffi.NULL, 0)
    try:
        np.testing.assert_allclose(f(a, b), a @ b + 1.0, rtol=1e-12, atol=1e-12)
    finally:
        blas.bind(module)
    np.testing.assert_allclose(f(a, b), a @ b + 1.0, rtol=1e-12, atol=1e-12)


CHILD = """
import numpy as np, kgen as kg
a, b = kg.dmatrix("a"), kg.dmatrix("b")
f = kg.function([a, b], kg.dot(a, b), name="blas_child")
x = np.arange(12.0).reshape(3, 4)
assert np.allclose(f(x, x.T), x @ x.T)
from kgen.build import blas
print(blas.kgen_openblas()._name)
"""


def test_a_damaged_copy_is_made_again(tmp_path):
    env = dict(os.environ, KGEN_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("OPENBLAS_THREAD_TIMEOUT", None)
    run = lambda: subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,  # noqa: E731
                                 text=True, check=True).stdout.strip()
    path = run()
    assert path.startswith(str(tmp_path / "cache" / "blas"))
    good = open(path, "rb").read()
    assert good == open(blas.numpy_openblas(), "rb").read()
    with open(path, "r+b") as f:  # truncated, as by a full disk
        f.truncate(4096)
    assert run() == path
    assert open(path, "rb").read() == good


def test_no_copy_falls_back_to_numpys_instance(tmp_path, monkeypatch):
    """A cache folder that cannot hold the copy: kgen shares NumPy's instance."""
    monkeypatch.setattr(blas, "_instance", None)
    (tmp_path / "cache").mkdir(mode=0o700)
    (tmp_path / "cache" / "blas").mkdir(mode=0o500)  # read-only
    monkeypatch.setenv("KGEN_CACHE_DIR", str(tmp_path / "cache"))
    if os.geteuid() == 0:  # root writes anyway: make the copy fail another way
        monkeypatch.setattr(blas.shutil, "copyfile", _no_space)
    lib = blas.kgen_openblas()
    assert lib._name == blas.numpy_openblas()
    assert not blas._single_threaded  # NumPy's threads stay NumPy's: no bands
    monkeypatch.setattr(blas, "_instance", None)  # the next test loads kgen's again


def _no_space(src, dst):
    raise OSError(28, "No space left on device", str(dst))
