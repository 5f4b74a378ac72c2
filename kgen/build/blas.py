"""Which GEMM a local (JIT) build uses: NumPy's own OpenBLAS, or kgen's.

NumPy wheels ship OpenBLAS (scipy-openblas64: CBLAS entry points named
`scipy_cblas_sgemm64_`, 64-bit integers). It is already loaded in any process
that imports kgen, so local builds link against it through kg_blas.h: matrix
products as fast as NumPy's, and no GEMM to compile. Shipped packages
(`python -m kgen build`) keep the built-in kg_gemm.h so they depend on nothing.

KGEN_BLAS=builtin forces kg_gemm.h; KGEN_BLAS=numpy (the default) uses NumPy's
library when it is found.
"""
import ctypes
import functools
import glob
import os

import numpy as np

_SYMBOLS = {"KG_BLAS_SGEMM": "scipy_cblas_sgemm64_", "KG_BLAS_DGEMM": "scipy_cblas_dgemm64_"}


@functools.lru_cache(maxsize=None)
def numpy_openblas():
    """Path of NumPy's bundled OpenBLAS if it exports the ILP64 CBLAS GEMMs, else None."""
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so*"))):
        try:
            lib = ctypes.CDLL(path)
            if all(hasattr(lib, sym) for sym in _SYMBOLS.values()):
                return path
        except OSError:
            continue
    return None


def gemm_build_args():
    """Extra compiler arguments for a kernel with matrix products: the defines
    and link arguments for NumPy's OpenBLAS, or () for the built-in GEMM."""
    if os.environ.get("KGEN_BLAS", "numpy") == "builtin":
        return ()
    path = numpy_openblas()
    if path is None:
        return ()
    defines = ["-DKG_BLAS", "-DKG_BLAS_INT=int64_t"] + [f"-D{k}={v}" for k, v in _SYMBOLS.items()]
    # the library comes before the source on the command line: keep it even
    # where the linker defaults to --as-needed (Debian, Ubuntu)
    return tuple(defines + ["-Wl,--no-as-needed", path, "-Wl,--as-needed",
                            f"-Wl,-rpath,{os.path.dirname(path)}"])
