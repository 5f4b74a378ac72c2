"""kg_gemm.h against NumPy: C = alpha*A@B + beta*C for float32 and float64.

Shapes cover the edges of the blocking (single rows and columns, sizes one
past a micro-tile or a KC block, zero sizes, the narrow-N "direct A" path);
operands come contiguous, transposed, strided, reversed and broadcast (zero
stride); C may be a column slice of a wider array. Each build variant runs
the same table: -march=native and the x86-64 baseline with OpenMP, the
baseline's AVX2 and SSE2 kernel families forced, the plain-C micro-kernel,
and a CBLAS build when scipy-openblas32 is installed.

The reference is computed in float64 for float32 results and in long double
for float64 ones; the bound is the classic dot-product bound
(K + 2) * eps * (|alpha| |A| @ |B| + |beta| |C|).
"""
import itertools
import shutil
import subprocess

import numpy as np
import pytest

import _c_harness as harness
from kgen.build import flags

pytestmark = pytest.mark.skipif(shutil.which(flags.default_compiler()[0]) is None,
                                reason="no C compiler")

VARIANTS = {
    "native-omp": dict(native=True, openmp=True),
    # the x86-64 baseline build, running the family its CPU dispatch picks
    "portable-omp": dict(native=False, openmp=True),
    # ... and its AVX2 and SSE2 families, forced
    "portable-avx2": dict(native=False, openmp=False, extra=["-DKG_GEMM_MAX_ISA=1"]),
    "portable-sse2": dict(native=False, openmp=False, extra=["-DKG_GEMM_NO_DISPATCH"]),
    "plain-c": dict(native=True, openmp=False, extra=["-DKG_GEMM_NO_VECTOR_EXT"]),
    "cblas": dict(native=True, openmp=True),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def gemm(request, tmp_path_factory):
    cblas = None
    if request.param == "cblas":
        cblas = flags.cblas_flags()
        if cblas is None:
            pytest.fail("scipy-openblas32 is not installed: it is in the test extra, "
                        "pip install -e '.[test]'")
    ffi, lib, _ = harness.build(tmp_path_factory.mktemp(request.param), cblas=cblas,
                                math=False, **VARIANTS[request.param])
    return ffi, lib


def call(ffi, lib, A, B, C, alpha=1.0, beta=0.0, fn=None):
    """Run kg_gemm on NumPy views: strides are passed in elements, so no copies."""
    dtype = C.dtype
    size = dtype.itemsize
    M, K = A.shape
    N = B.shape[1]
    assert C.size == 0 or N == 1 or C.strides[1] == size
    fn = fn or ("kg_gemm_f32" if dtype == np.float32 else "kg_gemm_f64")
    getattr(lib, fn)(M, N, K, alpha,
                     harness.ptr(ffi, A), A.strides[0] // size, A.strides[1] // size,
                     harness.ptr(ffi, B), B.strides[0] // size, B.strides[1] // size,
                     beta, harness.ptr(ffi, C), C.strides[0] // size if M > 1 else max(N, 1))


def operand(rng, rows, cols, dtype, layout):
    """A rows x cols view in the given memory layout, values in [-1, 1]."""
    if layout == "c":
        return rng.uniform(-1, 1, (rows, cols)).astype(dtype)
    if layout == "t":  # transposed: unit row stride
        return rng.uniform(-1, 1, (cols, rows)).astype(dtype).T
    if layout == "s":  # strided both ways, inside a bigger buffer
        return rng.uniform(-1, 1, (2 * rows + 1, 3 * cols + 2)).astype(dtype)[1::2, 2::3]
    if layout == "r":  # reversed: negative strides
        return rng.uniform(-1, 1, (rows, cols)).astype(dtype)[::-1, ::-1]
    if layout == "b":  # broadcast row: zero row stride
        return np.broadcast_to(rng.uniform(-1, 1, (1, cols)).astype(dtype), (rows, cols))
    raise ValueError(layout)


def _products(A, B):
    """A @ B in higher precision (float64 judges float32, long double float64)
    and |A| @ |B|, which scales the error bound."""
    hi = np.float64 if A.dtype == np.float32 else np.longdouble
    return A.astype(hi) @ B.astype(hi), np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64)


def check(ffi, lib, A, B, C, alpha, beta, fn=None, products=None):
    """Run on C and compare with alpha*A@B + beta*C under the bound
    (K + 2) * eps * (|alpha| |A| @ |B| + |beta| |C|)."""
    prod, absprod = products or _products(A, B)
    C0 = C.copy()
    want = alpha * prod
    scale = abs(alpha) * absprod
    if beta != 0:
        want = want + beta * C0.astype(prod.dtype)
        scale = scale + abs(beta) * np.abs(C0).astype(np.float64)
    else:
        C[...] = np.nan  # beta == 0 must never read C
    finfo = np.finfo(C.dtype)
    bound = (A.shape[1] + 2) * finfo.eps * scale + finfo.tiny
    call(ffi, lib, A, B, C, alpha, beta, fn)
    assert np.all(np.isfinite(C)), "non-finite output"
    err = np.abs(C.astype(prod.dtype) - want)
    assert np.all(err <= bound), f"max excess {np.max(err - bound)!r}"


SHAPES = [  # (M, N, K)
    (1, 1, 1), (1, 40, 300), (37, 1, 300), (1, 1, 1000), (7, 13, 5), (13, 7, 5),
    (12, 32, 256), (13, 33, 257), (6, 16, 3), (25, 65, 513), (150, 40, 600),
    (289, 10, 512), (64, 3100, 20), (300, 257, 129),
    (5, 700, 100),  # too few rows for two threads: split by columns
]
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_shapes_contiguous(gemm, shape, dtype):
    ffi, lib = gemm
    M, N, K = shape
    rng = np.random.default_rng(M * 10007 + N * 101 + K)
    A = operand(rng, M, K, dtype, "c")
    B = operand(rng, K, N, dtype, "c")
    products = _products(A, B)
    for alpha, beta in ((1.0, 0.0), (1.0, 1.0), (0.5, -2.0)):
        C = rng.uniform(-1, 1, (M, N)).astype(dtype)
        check(ffi, lib, A, B, C, alpha, beta, products=products)


LAYOUT_SHAPES = [(7, 13, 5), (31, 70, 300), (150, 40, 257), (5, 3, 1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("la,lb", list(itertools.product("ctsrb", "ctsr")))
def test_layouts(gemm, la, lb, dtype):
    ffi, lib = gemm
    rng = np.random.default_rng(ord(la) * 256 + ord(lb))
    for M, N, K in LAYOUT_SHAPES:
        A = operand(rng, M, K, dtype, la)
        B = operand(rng, K, N, dtype, lb)
        # C as a column slice of a wider array: ldc > N, other columns untouched.
        wide = rng.uniform(-1, 1, (M, N + 5)).astype(dtype)
        before = wide.copy()
        C = wide[:, 2:2 + N]
        check(ffi, lib, A, B, C, 1.0, 1.0)
        np.testing.assert_array_equal(wide[:, :2], before[:, :2])
        np.testing.assert_array_equal(wide[:, 2 + N:], before[:, 2 + N:])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 0, 3), (0, 0, 0), (4, 6, 0), (1, 1, 0)])
def test_zero_sizes(gemm, shape, dtype):
    ffi, lib = gemm
    M, N, K = shape
    A = np.ones((M, K), dtype)
    B = np.ones((K, N), dtype)
    C = np.full((M, N), 3.0, dtype)
    call(ffi, lib, A, B, C, 1.0, 0.5)
    np.testing.assert_array_equal(C, np.full((M, N), 1.5, dtype))
    C = np.full((M, N), np.nan, dtype)
    call(ffi, lib, A, B, C, 1.0, 0.0)  # K == 0, beta == 0: zeros, not NaN
    np.testing.assert_array_equal(C, np.zeros((M, N), dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_alpha_zero_is_beta_scaling(gemm, dtype):
    ffi, lib = gemm
    A = np.ones((4, 3), dtype)
    B = np.ones((3, 5), dtype)
    C = np.arange(20, dtype=dtype).reshape(4, 5)
    call(ffi, lib, A, B, C, 0.0, 2.0)
    np.testing.assert_array_equal(C, 2 * np.arange(20, dtype=dtype).reshape(4, 5))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_nan_and_inf_propagate(gemm, dtype):
    ffi, lib = gemm
    A = np.ones((20, 30), dtype)
    B = np.ones((30, 40), dtype)
    A[3, 7] = np.nan
    B[5, 9] = np.inf
    C = np.zeros((20, 40), dtype)
    call(ffi, lib, A, B, C)
    with np.errstate(invalid="ignore"):
        want = A @ B
    np.testing.assert_array_equal(np.isnan(C), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(C), np.isinf(want))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(300, 257, 600), (7, 1000, 300)], ids=["rows", "columns"])
def test_deterministic_across_threads(gemm, shape, dtype):
    """The summation order depends only on KG_GEMM_KC: 1, 2 and 3 threads agree
    bit for bit, whether the team splits rows or columns."""
    ffi, lib = gemm
    M, N, K = shape
    rng = np.random.default_rng(5)
    A = operand(rng, M, K, dtype, "c")
    B = operand(rng, K, N, dtype, "t")
    results = []
    previous = lib.h_set_threads(1)
    try:
        for threads in (1, 2, 2, 3):
            lib.h_set_threads(threads)
            C = np.zeros((M, N), dtype)
            call(ffi, lib, A, B, C, 1.0, 0.0)
            results.append(C)
    finally:
        lib.h_set_threads(previous)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_naive_fallback(gemm, dtype):
    """The loop used when scratch allocation fails gives the same answers."""
    ffi, lib = gemm
    rng = np.random.default_rng(9)
    name = "kg__gemm_naive_float" if dtype == np.float32 else "kg__gemm_naive_double"
    for la, lb in (("c", "c"), ("t", "s")):
        A = operand(rng, 13, 70, dtype, la)
        B = operand(rng, 70, 9, dtype, lb)
        C = rng.uniform(-1, 1, (13, 9)).astype(dtype)
        check(ffi, lib, A, B, C, 0.5, 1.0, fn=name)


@pytest.mark.parametrize("extra", [[], ["-fopenmp"], ["-DKG_GEMM_NO_VECTOR_EXT"],
                                   ["-DKG_GEMM_NAIVE"], ["-DKG_GEMM_NO_CACHE"],
                                   ["-march=native", "-fopenmp"], "cblas"],
                         ids=["default", "openmp", "plain-c", "naive", "no-cache", "native",
                              "cblas"])
def test_header_compiles_cleanly(tmp_path, extra):
    """kg_gemm.h alone under -std=c99 -pedantic -Wall -Wextra: no warnings."""
    if extra == "cblas":
        cb = flags.cblas_flags()
        if cb is None:
            pytest.fail("scipy-openblas32 is not installed: it is in the test extra, "
                        "pip install -e '.[test]'")
        extra = [f"-I{d}" for d in cb["include_dirs"]]
        extra += [f"-D{k}={v}" for k, v in cb["define_macros"]]
    src = tmp_path / "t.c"
    src.write_text('#include "kg_gemm.h"\n'
                   "void f(float *c, const float *a, const float *b)\n"
                   "{\n    kg_gemm_f32(2, 3, 4, 1.0f, a, 4, 1, b, 3, 1, 0.0f, c, 3);\n}\n")
    cmd = [*flags.default_compiler(), "-std=c99", "-pedantic", *flags.WARN_FLAGS,
           *flags.OPT_FLAGS, *flags.C_FLAGS, *extra, f"-I{flags.TEMPLATE_C_DIR}",
           "-c", str(src), "-o", str(tmp_path / "t.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_header_has_no_template_syntax():
    text = (flags.TEMPLATE_C_DIR / "kg_gemm.h").read_text()
    assert not any(tok in text for tok in ("{{", "{%", "{#"))
