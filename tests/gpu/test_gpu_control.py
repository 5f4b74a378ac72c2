"""kg.function(target='cuda') with ifelse and until() on a real GPU (PyCUDA, or
cuda-python where PyCUDA is missing), against NumPy. Skipped without a GPU."""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.ifelse import ifelse


def _drivers():
    """kg.function's default driver, and cuda-python's where it is installed."""
    out = [None]
    try:
        import cuda.bindings.driver  # noqa: F401
        out.append("cuda-python")
    except ImportError:
        pass
    return out


def _build(inputs, outputs, driver):
    if driver is None:
        return kg.function(inputs, outputs, target="cuda")
    from kgen.runtime.cuda import CudaFunction
    from kgen.runtime.cuda_python import CudaPythonDriver
    return CudaFunction(kg.kernel("f", inputs, outputs), driver=CudaPythonDriver())


@pytest.mark.parametrize("driver", _drivers())
def test_ifelse_on_the_gpu(gpu, driver):
    c, A, x, i = T.dscalar("c"), T.dmatrix("A"), T.dvector("x"), T.lscalar("i")
    p, q = ifelse(T.gt(c, 0), [T.dot(A, x) * 2, x[i]], [x + 1, x.sum()])
    f = _build([c, A, x, i], [p, q], driver)
    rng = np.random.default_rng(6)
    Av, xv = rng.standard_normal((64, 64)), rng.standard_normal(64)
    got = f(-1.0, Av, xv, 10 ** 6)          # the untaken x[10**6] is never read
    np.testing.assert_allclose(got[0], xv + 1)
    np.testing.assert_allclose(got[1], xv.sum(), rtol=1e-12)
    got = f(1.0, Av, xv, 5)
    np.testing.assert_allclose(got[0], 2 * Av @ xv, rtol=1e-12)
    assert got[1] == xv[5]
    with pytest.raises(IndexError):
        f(1.0, Av, xv, 10 ** 6)


@pytest.mark.parametrize("driver", _drivers())
def test_until_on_the_gpu(gpu, driver):
    v = T.dvector("v")
    out, _ = kg.scan(lambda e, acc: (acc + e, kg.scan_module.until(acc + e > 2.5)),
                     sequences=v, outputs_info=T.zeros_like(v[0]), name="upto")
    f = _build([v], out, driver)
    vv = np.random.default_rng(7).uniform(0.01, 0.05, 1000)
    stop = int(np.argmax(np.cumsum(vv) > 2.5)) + 1
    np.testing.assert_allclose(f(vv), np.cumsum(vv)[:stop], rtol=1e-12)
    np.testing.assert_allclose(f(np.full(3, 0.1)), [0.1, 0.2, 0.3], rtol=1e-14)
