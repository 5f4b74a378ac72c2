"""kg_narrow.h (the products with a narrow result that local builds take
before OpenBLAS) against NumPy: C = alpha*A@B + beta*C, float32 and float64.

Built as generated kernels are (-march=native, OpenMP, -O2 last). Shapes
cover a single block of rows and a partial last block, N from 1 to a full
vector, K over one packing chunk; A comes contiguous (X @ W), transposed
(X.T @ delta), strided, reversed and broadcast; C is a column slice of a
wider array. Shapes it does not take (N wider than a vector, fewer rows than
a block) return 0 and leave C alone. The bound is the dot-product bound of
tests/test_gemm_kernel.py, against a float64 / long double product.
"""
import contextlib
import importlib.util
import io
import shutil

import cffi
import numpy as np
import pytest

import _c_harness as harness
from kgen.build import flags
from test_gemm_kernel import _products, operand

pytestmark = pytest.mark.skipif(shutil.which(flags.default_compiler()[0]) is None,
                                reason="no C compiler")

_SOURCE = r"""
#include "kg_narrow.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#define H(T, SFX)                                                              \
int h_narrow_##SFX(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, T alpha,            \
                   const T *A, ptrdiff_t rsa, ptrdiff_t csa, const T *B,       \
                   ptrdiff_t rsb, ptrdiff_t csb, T beta, T *C, ptrdiff_t ldc)  \
{ return kg_narrow_##SFX(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc); } \
int h_lanes_##SFX(void) { return KG__NARROW_VL_##SFX; }
H(float, f32)
H(double, f64)
int h_chunk(void) { return KG__NARROW_KC; }
int h_set_threads(int n)
{
#ifdef _OPENMP
    int old = omp_get_max_threads();
    omp_set_num_threads(n);
    return old;
#else
    (void)n;
    return 1;
#endif
}
"""
_CDEF = """
int h_narrow_f32(ptrdiff_t, ptrdiff_t, ptrdiff_t, float, const float *, ptrdiff_t, ptrdiff_t,
                 const float *, ptrdiff_t, ptrdiff_t, float, float *, ptrdiff_t);
int h_narrow_f64(ptrdiff_t, ptrdiff_t, ptrdiff_t, double, const double *, ptrdiff_t, ptrdiff_t,
                 const double *, ptrdiff_t, ptrdiff_t, double, double *, ptrdiff_t);
int h_lanes_f32(void);
int h_lanes_f64(void);
int h_chunk(void);
int h_set_threads(int);
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("narrow")
    compile_args, link_args, libraries = harness.kernel_args(native=True, openmp=True)
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    ffi.set_source("_kg_narrow_harness", _SOURCE, include_dirs=[str(flags.TEMPLATE_C_DIR)],
                   libraries=libraries, extra_compile_args=compile_args + ["-O2", "-Werror"],
                   extra_link_args=link_args)
    with contextlib.redirect_stdout(io.StringIO()):
        so = ffi.compile(tmpdir=str(tmp), verbose=False)
    spec = importlib.util.spec_from_file_location("_kg_narrow_harness", so)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ffi, module.lib


def _call(lib, A, B, C, alpha, beta):
    ffi, lib = lib
    size = C.dtype.itemsize
    fn = lib.h_narrow_f32 if C.dtype == np.float32 else lib.h_narrow_f64
    t = "float *" if C.dtype == np.float32 else "double *"
    (M, K), N = A.shape, B.shape[1]
    return fn(M, N, K, alpha, ffi.cast(t, A.ctypes.data), A.strides[0] // size,
              A.strides[1] // size, ffi.cast(t, B.ctypes.data), B.strides[0] // size,
              B.strides[1] // size, beta, ffi.cast(t, C.ctypes.data), C.strides[0] // size)


def _lanes(lib, dtype):
    return lib[1].h_lanes_f32() if dtype == np.float32 else lib[1].h_lanes_f64()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("la", "ctsrb")
def test_against_numpy(lib, dtype, la):
    rng = np.random.default_rng(ord(la))
    lanes = _lanes(lib, dtype)
    chunk = lib[1].h_chunk()
    # (the dot and columns forms take N <= 12 with rows or columns of A
    # contiguous: 12 and 13 sit either side of that bound; 2000 x 10 is too
    # big a C for the columns form's split of K in halves)
    for M, N, K in [(8, 1, 1), (13, lanes, 5), (600, 10 if lanes >= 10 else lanes, 784),
                    (37, 3, chunk + 7), (17, lanes - 1, 64), (49, min(12, lanes), 70),
                    (31, min(13, lanes), 9), (2000, min(10, lanes), 65)]:
        A = operand(rng, M, K, dtype, la)
        B = operand(rng, K, N, dtype, "ct"[M % 2])
        prod, absprod = _products(A, B)
        for alpha, beta in ((1.0, 0.0), (0.5, -2.0)):
            wide = rng.uniform(-1, 1, (M, N + 3)).astype(dtype)
            before = wide.copy()
            C = wide[:, 1:1 + N]
            C0 = C.copy()
            if beta == 0:
                C[...] = np.nan  # beta == 0 never reads C
            assert _call(lib, A, B, C, alpha, beta) == 1
            want = alpha * prod + beta * C0.astype(prod.dtype)
            eps = np.finfo(dtype).eps
            bound = (K + 2) * eps * (abs(alpha) * absprod + abs(beta) * np.abs(C0)) \
                + np.finfo(dtype).tiny
            assert np.all(np.abs(C.astype(prod.dtype) - want) <= bound), (M, N, K, alpha, beta)
            np.testing.assert_array_equal(wide[:, 0], before[:, 0])
            np.testing.assert_array_equal(wide[:, 1 + N:], before[:, 1 + N:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_shapes_it_does_not_take(lib, dtype):
    """Too wide, too few rows, K == 0: returns 0 and writes nothing."""
    lanes = _lanes(lib, dtype)
    for M, N, K in [(20, lanes + 1, 4), (7, 2, 4), (20, 2, 0)]:
        A, B = np.ones((M, K), dtype), np.ones((K, N), dtype)
        C = np.full((M, N), 5.0, dtype)
        assert _call(lib, A, B, C, 1.0, 0.0) == 0
        np.testing.assert_array_equal(C, 5.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("la", "ct")
def test_deterministic_across_threads(lib, dtype, la):
    """Big enough to run threaded: 1, 2 and 3 threads agree bit for bit (A
    transposed: the columns form, which splits K in halves)."""
    rng = np.random.default_rng(3)
    A = operand(rng, 2003, 1100, dtype, la)
    B = operand(rng, 1100, 8, dtype, "c")
    results = []
    previous = lib[1].h_set_threads(1)
    try:
        for threads in (1, 2, 3):
            lib[1].h_set_threads(threads)
            C = np.zeros((2003, 8), dtype)
            assert _call(lib, A, B, C, 1.0, 0.0) == 1
            results.append(C)
    finally:
        lib[1].h_set_threads(previous)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)
    np.testing.assert_allclose(results[0], A.astype(np.float64) @ B, rtol=1e-4, atol=1e-4)
