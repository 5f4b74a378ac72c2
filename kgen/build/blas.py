"""Which GEMM a local (JIT) build uses: OpenBLAS from NumPy's wheel, or kgen's.

NumPy wheels ship OpenBLAS (scipy-openblas64: CBLAS entry points named
`scipy_cblas_sgemm64_`, 64-bit integers). Local builds call it through
kg_blas.h: matrix products as fast as NumPy's, and no GEMM to compile.
Shipped packages (`python -m kgen build`) keep the built-in kg_gemm.h so they
depend on nothing.

kgen loads its own instance of that library, a copy of the file in its cache
folder, rather than sharing NumPy's. The reason is threads: after each
product, an OpenBLAS worker thread spins, waiting for the next one, for about
0.1 s (2**28 cycles) by default; in a step that alternates products with
kgen's OpenMP loops it takes half a core from those loops (measured: the DAE
step's elementwise work 1.6-1.7x slower). kgen's instance is loaded with
OPENBLAS_THREAD_TIMEOUT=6 (64 cycles, then its workers sleep) unless the user
set that variable, and NumPy's instance, and what NumPy code gets from it,
stay exactly as they were. The modules get the two entry points' addresses
when they load (`bind`), not at link time: a module linked against the file
would be bound to whichever instance of that soname is loaded first, NumPy's.
Where the copy cannot be made or loaded, kgen uses NumPy's instance.

KGEN_BLAS=builtin forces kg_gemm.h; KGEN_BLAS=numpy (the default) uses the
library when it is found.
"""
import ctypes
import functools
import glob
import hashlib
import os
import shutil
import threading

import numpy as np

from .compiler import log

_SGEMM, _DGEMM = "scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"
# 2**6 cycles of spinning before an idle OpenBLAS worker sleeps. The DAE step
# (benchmarks/bench_random.py R2) measured 21.0-22.3 ms with 4 to 10, and
# 23.9-27.0 ms with OpenBLAS's default, 28.
THREAD_TIMEOUT = "6"
_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def numpy_openblas():
    """Path of NumPy's bundled OpenBLAS if it exports the ILP64 CBLAS GEMMs, else None."""
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so*"))):
        try:
            lib = ctypes.CDLL(path)
            if all(hasattr(lib, sym) for sym in (_SGEMM, _DGEMM)):
                return path
        except OSError:
            continue
    return None


def gemm_build_args():
    """Extra compiler arguments for a kernel with matrix products: the defines of
    kg_blas.h's route bound at load time, or () for the built-in GEMM."""
    if os.environ.get("KGEN_BLAS", "numpy") == "builtin" or numpy_openblas() is None:
        return ()
    return ("-DKG_BLAS", "-DKG_BLAS_INT=int64_t")


def bind(module):
    """Give a module built with gemm_build_args() the GEMM entry points (its
    kg_blas_bind; until then its products take a plain loop)."""
    lib = kgen_openblas()
    ffi = module.ffi
    module.lib.kg_blas_bind(ffi.cast("void *", ctypes.cast(getattr(lib, _SGEMM), ctypes.c_void_p).value),
                            ffi.cast("void *", ctypes.cast(getattr(lib, _DGEMM), ctypes.c_void_p).value),
                            int(_single_threaded))


def binder(module):
    """`bind` if `module` needs it (a local build with products on kgen's OpenBLAS), else None."""
    return bind if hasattr(module.lib, "kg_blas_bind") else None


_instance = None
# kgen's own instance runs each call on the caller's thread; kernels cut large
# products into bands on their OpenMP team instead (kg_blas.h says why).
# NumPy's instance, where kgen must share it, keeps NumPy's settings.
_single_threaded = False


def kgen_openblas():
    """kgen's own instance of NumPy's OpenBLAS (a ctypes CDLL), loaded once per
    process; NumPy's instance where a private copy cannot be had."""
    global _instance, _single_threaded
    with _lock:
        if _instance is None:
            source = numpy_openblas()
            _single_threaded = False
            try:
                _instance = _load_private(source)
                set_threads = getattr(_instance, "scipy_openblas_set_num_threads64_", None)
                if set_threads is not None:
                    set_threads(1)
                    _single_threaded = True
            except OSError as exc:
                log.info("kgen: using NumPy's OpenBLAS instance (%s)", exc)
                _instance = ctypes.CDLL(source)
        return _instance


def _load_private(source):
    from .cache import cache_dir, private_subdir
    from ..errors import KgenError
    try:
        folder = private_subdir(cache_dir(), "blas")
    except KgenError as exc:
        raise OSError(str(exc)) from None
    # named by the source file's identity (no need to read 25 MB per process)
    st = os.stat(source)
    stamp = hashlib.sha256(f"{source}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    path = folder / f"libscipy_openblas64_kgen-{stamp[:16]}.so"
    if not path.is_file() or path.stat().st_size != st.st_size:  # missing, or cut short
        tmp = folder / f".tmp-{os.getpid()}-{os.urandom(4).hex()}.so"
        try:
            shutil.copyfile(source, tmp)  # raises rather than copy in part
            if tmp.stat().st_size != st.st_size:
                raise OSError(f"the copy {tmp} of {source} is not whole")
            os.replace(tmp, path)  # readers see a whole copy or none
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
    # OpenBLAS reads its settings when it loads; this one only for this instance
    saved = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    if saved is None:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = THREAD_TIMEOUT
    try:
        return ctypes.CDLL(str(path))
    finally:
        if saved is None:
            os.environ.pop("OPENBLAS_THREAD_TIMEOUT", None)

