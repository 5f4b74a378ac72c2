"""Build tests/_c_harness.c (kg_math.h + kg_gemm.h behind cffi) with chosen flags.

Shared by tests/test_vecmath_ulp.py, tests/test_gemm_kernel.py and
benchmarks/bench_kernels_micro.py, so they all exercise the headers with the
flags from kgen.build.flags, as generated kernels get them.
"""
import contextlib
import hashlib
import importlib.util
import io
from pathlib import Path

import cffi
import numpy as np

from kgen.build import flags

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "_c_harness.c"

UNARY = ["exp", "exp2", "exp10", "expm1", "log", "log2", "log10", "log1p", "sqrt", "cbrt",
         "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
         "asinh", "acosh", "atanh", "erf", "erfc"]
BINARY = ["atan2", "pow", "hypot"]

_GEMM_DECL = """
void {name}(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, {t} alpha,
            const {t} *A, ptrdiff_t rsa, ptrdiff_t csa,
            const {t} *B, ptrdiff_t rsb, ptrdiff_t csb,
            {t} beta, {t} *C, ptrdiff_t ldc);
"""


def cdef(math=True, gemm=True):
    """The cffi declarations of what the harness exports."""
    lines = ["int h_set_threads(int);", "int h_have_libmvec(void);"]
    if math:
        lines += _math_decls()
    decls = "\n".join(lines)
    if gemm:
        decls += _GEMM_DECL.format(name="kg_gemm_f32", t="float")
        decls += _GEMM_DECL.format(name="kg_gemm_f64", t="double")
        # The loop without scratch memory that the header falls back on.
        decls += _GEMM_DECL.format(name="kg__gemm_naive_float", t="float")
        decls += _GEMM_DECL.format(name="kg__gemm_naive_double", t="double")
    return decls


def _math_decls():
    lines = []
    for name in UNARY:
        lines.append(f"void h_{name}(ptrdiff_t, const double *, double *);")
        lines.append(f"void h_{name}f(ptrdiff_t, const float *, float *);")
    for name in BINARY:
        lines.append(f"void h_{name}(ptrdiff_t, const double *, const double *, double *);")
        lines.append(f"void h_{name}f(ptrdiff_t, const float *, const float *, float *);")
    lines += [
        "void h_nan_to_minus1(ptrdiff_t, const double *, double *);",
        "void h_ref_erfl(ptrdiff_t, const long double *, long double *);",
        "void h_ref_erfcl(ptrdiff_t, const long double *, long double *);",
        "void h_w1(ptrdiff_t, const double *, const double *, const double *, double *);",
        "void h_w1f(ptrdiff_t, const float *, const float *, const float *, float *);",
    ]
    return lines


def kernel_args(native=False, openmp=True, libmvec=True, extra=()):
    """(compile args, link args, libraries) the way kgen builds a kernel."""
    # -g0 overrides the -g that setuptools takes from Python's CFLAGS: builds get faster.
    compile_args = [*flags.OPT_FLAGS, *flags.C_FLAGS, *flags.WARN_FLAGS, "-g0"]
    compile_args += flags.NATIVE_FLAGS if native else flags.PORTABLE_FLAGS
    link_args = []
    libraries = list(flags.NO_LIBMVEC_LIBS)
    if libmvec and flags.libmvec_available():
        libraries = list(flags.C_LIBS)
    else:
        compile_args += flags.NO_LIBMVEC_FLAGS
    if openmp and flags.openmp_available():
        compile_args += flags.OPENMP_FLAGS
        link_args += flags.OPENMP_FLAGS
    compile_args += list(extra)
    return compile_args, link_args, libraries


def build(tmpdir, native=False, openmp=True, libmvec=True, extra=(), cblas=None,
          math=True, gemm=True):
    """Compile the harness into `tmpdir`; returns (ffi, lib, path of the .so).

    `extra` adds compile arguments (e.g. -DKG_GEMM_NAIVE); `cblas` is a dict
    from kgen.build.flags.cblas_flags() to link a BLAS; `math` and `gemm`
    choose the parts to build (each alone builds faster).
    """
    compile_args, link_args, libraries = kernel_args(native, openmp, libmvec, extra)
    compile_args += ["-DH_MATH"] * math + ["-DH_GEMM"] * gemm
    include_dirs = [str(flags.TEMPLATE_C_DIR), str(HERE)]
    library_dirs = []
    if cblas:
        compile_args += [f"-D{k}={v}" for k, v in cblas["define_macros"]]
        include_dirs += cblas["include_dirs"]
        library_dirs += cblas["library_dirs"]
        libraries += cblas["libraries"]
        link_args += cblas["extra_link_args"]
    key = repr((compile_args, link_args, libraries, include_dirs, SOURCE.read_bytes(),
                (flags.TEMPLATE_C_DIR / "kg_math.h").read_bytes(),
                (flags.TEMPLATE_C_DIR / "kg_gemm.h").read_bytes()))
    modname = "_kg_harness_" + hashlib.sha256(key.encode()).hexdigest()[:16]
    ffi = cffi.FFI()
    ffi.cdef(cdef(math, gemm))
    ffi.set_source(modname, f'#include "{SOURCE.name}"\n', include_dirs=include_dirs,
                   library_dirs=library_dirs, libraries=libraries,
                   extra_compile_args=compile_args, extra_link_args=link_args)
    with contextlib.redirect_stdout(io.StringIO()):
        so_path = ffi.compile(tmpdir=str(tmpdir), verbose=False)
    spec = importlib.util.spec_from_file_location(modname, so_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ffi, module.lib, Path(so_path)


def ptr(ffi, arr):
    """A C pointer to arr's first element (views included: strides go separately)."""
    if arr.dtype == np.longdouble:
        ctype = "long double *"
    else:
        ctype = {"float32": "float *", "float64": "double *"}[arr.dtype.name]
    return ffi.cast(ctype, arr.ctypes.data)
