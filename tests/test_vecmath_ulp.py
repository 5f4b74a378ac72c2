"""Accuracy and IEEE behaviour of kg_math.h's vectorized math (glibc libmvec).

Each function runs inside a `#pragma omp simd` loop built with kgen's real
flags (kgen.build.flags), for the x86-64 baseline (libmvec's SSE variants),
x86-64-v3 (AVX2) and -march=native (AVX-512 here), over ~1e5 points spread
across its whole domain plus edge values. The error is measured in ULP against a
higher-precision oracle: float32 results against the float64 NumPy result,
float64 results against np.longdouble (80-bit on x86), and must be <= 4 ULP.
Specials (NaN, +-inf, +-0, domain errors) must match NumPy exactly.
"""
import shutil
import subprocess
import zlib

import numpy as np
import pytest

import _c_harness as harness
from kgen.build import flags

MAX_ULP = 4.0
N_POINTS = 100_000

pytestmark = pytest.mark.skipif(shutil.which(flags.default_compiler()[0]) is None,
                                reason="no C compiler")


def _cpu_has(*features):
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu_flags = next((line.split(":", 1)[1].split() for line in f
                              if line.startswith("flags")), [])
    except OSError:
        return False
    return all(feature in cpu_flags for feature in features)


# x86-64 baseline (libmvec's SSE variants), AVX2 (_ZGVd) and this machine's
# best (AVX-512 _ZGVe on such a CPU).
VARIANTS = {
    "portable": dict(native=False),
    "x86-64-v3": dict(native=False, extra=["-march=x86-64-v3"]),
    "native": dict(native=True),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def built(request, tmp_path_factory):
    if request.param == "x86-64-v3" and not _cpu_has("avx2", "fma", "bmi2"):
        pytest.skip("this CPU cannot run x86-64-v3 code")
    ffi, lib, so_path = harness.build(tmp_path_factory.mktemp(request.param), gemm=False,
                                      openmp=False, **VARIANTS[request.param])
    return request.param, ffi, lib, so_path


# ---- oracles ----------------------------------------------------------------
# NumPy's longdouble ufuncs call the C library's long double functions; erf and
# erfc have no ufunc, so the harness runs erfl/erfcl.

def _ld_ref(lib, ffi, cname, x):
    x = np.ascontiguousarray(x, dtype=np.longdouble)
    out = np.empty_like(x)
    getattr(lib, cname)(x.size, harness.ptr(ffi, x), harness.ptr(ffi, out))
    return out


ORACLES = {
    "exp": np.exp, "exp2": np.exp2, "exp10": lambda x: np.power(x.dtype.type(10), x),
    "expm1": np.expm1, "log": np.log, "log2": np.log2, "log10": np.log10,
    "log1p": np.log1p, "sqrt": np.sqrt, "cbrt": np.cbrt, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh,
    "acosh": np.arccosh, "atanh": np.arctanh,
    "atan2": np.arctan2, "pow": np.power, "hypot": np.hypot,
    "erf": "h_ref_erfl", "erfc": "h_ref_erfcl",
}
NUMPY = {**ORACLES, "erf": None, "erfc": None}


def oracle(name, lib, ffi, *args, hi):
    """The function at `args` in precision `hi` (float64 or longdouble)."""
    ref = ORACLES[name]
    if isinstance(ref, str):
        out = _ld_ref(lib, ffi, ref, args[0])
        return out.astype(hi)
    with np.errstate(all="ignore"):
        return ref(*(a.astype(hi) for a in args))


# ---- samplers ----------------------------------------------------------------

def _uniform(rng, lo, hi, n):
    return rng.uniform(lo, hi, n)


def _logu(rng, lo, hi, n, signed=False):
    """Magnitudes log-uniform in [lo, hi], optionally with random signs."""
    mag = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return mag * rng.choice([-1.0, 1.0], n) if signed else mag


def _edges(dtype):
    fi = np.finfo(dtype)
    tiny, sub = float(fi.tiny), float(fi.smallest_subnormal)
    big = float(fi.max)
    vals = [0.0, -0.0, sub, -sub, 3 * sub, tiny, -tiny, tiny / 3, 1.0, -1.0,
            0.5, -0.5, 2.0, -2.0, 1e-7, -1e-7, 1e-20, big, -big, big / 2]
    return np.array(vals, dtype=np.float64)


def domain(name, dtype, rng, n=N_POINTS):
    """~n points over the function's domain, dense where it is hard."""
    q = n // 4
    fi = np.finfo(dtype)

    def lim(f32, f64):  # a bound that depends on the precision (overflow, ...)
        return f32 if dtype == np.float32 else f64

    whole_pos = _logu(rng, float(fi.smallest_subnormal), float(fi.max), q)
    near1 = 1 + _logu(rng, 1e-12, 0.5, q, signed=True)
    parts = {
        "exp": [_uniform(rng, lim(-104, -746), lim(89, 710), 2 * q),
                _uniform(rng, -1, 1, q), _logu(rng, 1e-30, 1, q, signed=True)],
        "exp2": [_uniform(rng, lim(-151, -1076), lim(128.5, 1024.5), 2 * q),
                 _uniform(rng, -1, 1, q), _logu(rng, 1e-30, 1, q, signed=True)],
        "exp10": [_uniform(rng, lim(-46, -324), lim(38.6, 308.3), 2 * q),
                  _uniform(rng, -1, 1, q), _logu(rng, 1e-30, 1, q, signed=True)],
        "expm1": [_uniform(rng, lim(-20, -40), lim(89, 710), q),
                  _uniform(rng, -2, 2, q), _logu(rng, 1e-30, 1, 2 * q, signed=True)],
        "log": [whole_pos, near1, _uniform(rng, 0, 4, q), _logu(rng, 1e-3, 1e3, q)],
        "log2": [whole_pos, near1, _uniform(rng, 0, 4, q), _logu(rng, 1e-3, 1e3, q)],
        "log10": [whole_pos, near1, _uniform(rng, 0, 4, q), _logu(rng, 1e-3, 1e3, q)],
        "log1p": [_logu(rng, 1e-30, float(fi.max) / 2, q),
                  _logu(rng, 1e-30, 1, q, signed=True),
                  -1 + _logu(rng, 1e-15, 1, q), _uniform(rng, -1, 10, q)],
        "sqrt": [whole_pos, _uniform(rng, 0, 10, q), near1, _logu(rng, 1e-3, 1e3, q)],
        "cbrt": [_logu(rng, float(fi.smallest_subnormal), float(fi.max), 2 * q, signed=True),
                 _uniform(rng, -10, 10, 2 * q)],
        "sin": [_uniform(rng, -10, 10, 2 * q), _logu(rng, 1e-30, 1e4, q, signed=True),
                _logu(rng, 1e4, lim(1e9, 1e22), q, signed=True)],
        "cos": [_uniform(rng, -10, 10, 2 * q), _logu(rng, 1e-30, 1e4, q, signed=True),
                _logu(rng, 1e4, lim(1e9, 1e22), q, signed=True)],
        "tan": [_uniform(rng, -10, 10, 2 * q), _logu(rng, 1e-30, 1e4, q, signed=True),
                np.pi / 2 + _logu(rng, 1e-7, 1e-2, q, signed=True)],
        "asin": [_uniform(rng, -1, 1, 2 * q), _logu(rng, 1e-30, 1, q, signed=True),
                 (1 - _logu(rng, 1e-12, 0.5, q)) * rng.choice([-1.0, 1.0], q)],
        "acos": [_uniform(rng, -1, 1, 2 * q), _logu(rng, 1e-30, 1, q, signed=True),
                 (1 - _logu(rng, 1e-12, 0.5, q)) * rng.choice([-1.0, 1.0], q)],
        "atan": [_uniform(rng, -4, 4, 2 * q),
                 _logu(rng, 1e-30, float(fi.max), 2 * q, signed=True)],
        "sinh": [_uniform(rng, lim(-89.4, -710.4), lim(89.4, 710.4), 2 * q),
                 _uniform(rng, -2, 2, q), _logu(rng, 1e-30, 1, q, signed=True)],
        "cosh": [_uniform(rng, lim(-89.4, -710.4), lim(89.4, 710.4), 2 * q),
                 _uniform(rng, -2, 2, q), _logu(rng, 1e-30, 1, q, signed=True)],
        "tanh": [_uniform(rng, -20, 20, 2 * q), _uniform(rng, -1, 1, q),
                 _logu(rng, 1e-30, 1, q, signed=True)],
        "asinh": [_logu(rng, 1e-30, float(fi.max), 2 * q, signed=True),
                  _uniform(rng, -4, 4, 2 * q)],
        "acosh": [1 + _logu(rng, 1e-12, float(fi.max) / 4, 2 * q), _uniform(rng, 1, 4, 2 * q)],
        "atanh": [_uniform(rng, -1, 1, 2 * q), _logu(rng, 1e-30, 1, q, signed=True),
                  (1 - _logu(rng, 1e-12, 0.5, q)) * rng.choice([-1.0, 1.0], q)],
        "erf": [_uniform(rng, -6, 6, 2 * q), _uniform(rng, -1, 1, q),
                _logu(rng, 1e-30, 1, q, signed=True)],
        "erfc": [_uniform(rng, -6, lim(10, 27), 2 * q), _uniform(rng, -1, 1, q),
                 _logu(rng, 1e-30, 1, q, signed=True)],
    }[name]
    return np.concatenate([*parts, _edges(dtype)])


def domain2(name, dtype, rng, n=N_POINTS):
    """Argument pairs for the binary functions."""
    q = n // 4
    fi = np.finfo(dtype)
    if name == "atan2":
        y = np.concatenate([_logu(rng, 1e-30, 1e30, 2 * q, signed=True),
                            _uniform(rng, -2, 2, 2 * q)])
        x = np.concatenate([_logu(rng, 1e-30, 1e30, 2 * q, signed=True),
                            _uniform(rng, -2, 2, 2 * q)])
    elif name == "hypot":
        x = _logu(rng, float(fi.smallest_subnormal), float(fi.max) / 2, 4 * q, signed=True)
        with np.errstate(over="ignore"):
            y = x * _logu(rng, 1e-20, 1e20, 4 * q, signed=True)
        y = np.clip(y, -float(fi.max) / 2, float(fi.max) / 2)
    else:  # pow: results kept inside the finite range, plus integer powers of negatives
        emax = np.log(float(fi.max)) * 0.99
        x = _logu(rng, 1e-30, 1e30, 3 * q)
        y = rng.uniform(-1, 1, 3 * q) * emax / np.abs(np.log(x))
        xn = -_logu(rng, 0.5, 2, q)
        yn = rng.integers(-30, 30, q).astype(np.float64)
        near1 = 1 + _logu(rng, 1e-10, 1e-2, q, signed=True)
        x = np.concatenate([x, xn, near1])
        y = np.concatenate([y, yn, rng.uniform(-1e4, 1e4, q)])
    return x, y


# ---- measuring ---------------------------------------------------------------

def ulp_error(got, ref_hi, dtype):
    """|got - exact| in units of the last place of `dtype` at the exact value.

    `ref_hi` is the exact value to within a small fraction of a ULP (float64
    for float32 results, longdouble for float64 ones). A result equal to the
    rounded reference scores 0; a wrong inf, NaN or sign of zero scores inf.
    """
    fi = np.finfo(dtype)
    p = fi.nmant + 1
    hi = ref_hi.dtype.type
    with np.errstate(over="ignore"):  # beyond the range: rounds to inf, as it should
        ref = ref_hi.astype(dtype)
    same = (got == ref) & (np.signbit(got) == np.signbit(ref)) | (np.isnan(got) & np.isnan(ref))
    err = np.zeros(got.shape)
    bad = ~same
    finite = np.isfinite(got) & np.isfinite(ref_hi)
    check = bad & finite
    r = ref_hi[check]
    _, e = np.frexp(np.where(r == 0, hi(1), r))
    e = np.where(r == 0, -100000, e)
    ulp = np.ldexp(hi(1), np.maximum(e - p, fi.minexp - fi.nmant))
    err[check] = (np.abs(got[check].astype(hi) - r) / ulp).astype(np.float64)
    err[bad & ~finite] = np.inf
    return err


def _worst(x, err, k=3):
    idx = np.argsort(err)[-k:][::-1]
    return ", ".join(f"x={x[i]!r} err={err[i]:.3g}" for i in idx)


def _run(lib, ffi, cname, dtype, *args):
    args = [np.ascontiguousarray(a, dtype=dtype) for a in args]
    out = np.empty_like(args[0])
    getattr(lib, cname)(out.size, *(harness.ptr(ffi, a) for a in args), harness.ptr(ffi, out))
    return out


# Functions the brief requires plus the other libmvec ones kg_math.h exposes.
UNARY = harness.UNARY
BINARY = harness.BINARY


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_ulp(built, name, dtype):
    _, ffi, lib, _ = built
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = domain(name, dtype, rng).astype(dtype)
    cname = f"h_{name}f" if dtype == np.float32 else f"h_{name}"
    got = _run(lib, ffi, cname, dtype, x)
    hi = np.float64 if dtype == np.float32 else np.longdouble
    ref = oracle(name, lib, ffi, x, hi=hi)
    err = ulp_error(got, ref, dtype)
    assert err.max() <= MAX_ULP, f"{name} {np.dtype(dtype).name}: {_worst(x, err)}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", BINARY)
def test_binary_ulp(built, name, dtype):
    _, ffi, lib, _ = built
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x, y = (a.astype(dtype) for a in domain2(name, dtype, rng))
    cname = f"h_{name}f" if dtype == np.float32 else f"h_{name}"
    got = _run(lib, ffi, cname, dtype, x, y)
    hi = np.float64 if dtype == np.float32 else np.longdouble
    ref = oracle(name, lib, ffi, x, y, hi=hi)
    err = ulp_error(got, ref, dtype)
    worst = np.argsort(err)[-3:][::-1]
    detail = ", ".join(f"({x[i]!r}, {y[i]!r}) err={err[i]:.3g}" for i in worst)
    assert err.max() <= MAX_ULP, f"{name} {np.dtype(dtype).name}: {detail}"


# ---- IEEE specials -------------------------------------------------------------

def _specials(dtype):
    fi = np.finfo(dtype)
    vals = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5,
            3.0, -3.0, float(fi.smallest_subnormal), -float(fi.smallest_subnormal),
            float(fi.max), -float(fi.max), 1e30, -1e30, 1000.0, -1000.0]
    return np.array(vals, dtype=dtype)


def _expected_specials(name, dtype, lib, ffi, *args):
    if NUMPY[name] is None:  # erf, erfc: the long-double reference, rounded
        return oracle(name, lib, ffi, *args, hi=np.longdouble).astype(dtype)
    with np.errstate(all="ignore"):
        return NUMPY[name](*args).astype(dtype)


def _check_specials(name, got, want, args):
    """NaN where NumPy gives NaN; identical infinities and signed zeros."""
    exact = np.isnan(want) | np.isinf(want) | (want == 0)
    ok = np.where(np.isnan(want), np.isnan(got),
                  (got == want) & (np.signbit(got) == np.signbit(want)))
    bad = exact & ~ok
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        cases = "; ".join(f"{tuple(a[j] for a in args)} -> {got[j]!r}, NumPy {want[j]!r}"
                          for j in i)
        pytest.fail(f"{name}: {cases}")


# Each special is repeated so that it goes through the vector loop body, not
# just the scalar epilogue.
REPEAT = 40


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_specials_like_numpy(built, name, dtype):
    _, ffi, lib, _ = built
    x = np.repeat(_specials(dtype), REPEAT)
    cname = f"h_{name}f" if dtype == np.float32 else f"h_{name}"
    got = _run(lib, ffi, cname, dtype, x)
    _check_specials(name, got, _expected_specials(name, dtype, lib, ffi, x), (x,))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", BINARY)
def test_binary_specials_like_numpy(built, name, dtype):
    _, ffi, lib, _ = built
    s = _specials(dtype)
    x = np.repeat(np.repeat(s, s.size), REPEAT // 4)
    y = np.repeat(np.tile(s, s.size), REPEAT // 4)
    cname = f"h_{name}f" if dtype == np.float32 else f"h_{name}"
    got = _run(lib, ffi, cname, dtype, x, y)
    _check_specials(name, got, _expected_specials(name, dtype, lib, ffi, x, y), (x, y))


def test_headline_specials(built):
    """The cases the brief names: exp(inf)=inf, exp(-inf)=0, log(0)=-inf, log(-1)=nan."""
    _, ffi, lib, _ = built
    for dtype, sfx in ((np.float32, "f"), (np.float64, "")):
        x = np.repeat(np.array([np.inf, -np.inf, np.nan], dtype=dtype), 32)
        got = _run(lib, ffi, f"h_exp{sfx}", dtype, x).reshape(3, 32)
        assert np.all(got[0] == np.inf) and np.all(got[1] == 0) and np.isnan(got[2]).all()
        x = np.repeat(np.array([0.0, -0.0, -1.0, np.inf], dtype=dtype), 32)
        got = _run(lib, ffi, f"h_log{sfx}", dtype, x).reshape(4, 32)
        assert np.all(got[0] == -np.inf) and np.all(got[1] == -np.inf)
        assert np.isnan(got[2]).all() and np.all(got[3] == np.inf)


def test_isnan_survives_the_flags(built):
    _, ffi, lib, _ = built
    x = np.tile(np.array([np.nan, 0.0, 1.0, -np.nan, np.inf]), 50)
    got = _run(lib, ffi, "h_nan_to_minus1", np.float64, x)
    nan = np.isnan(x)
    assert np.all(got[nan] == -1.0)
    np.testing.assert_allclose(got[~nan], np.exp(x[~nan]), rtol=1e-15)


# ---- the route itself ------------------------------------------------------------

def _undefined_symbols(so_path):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not available")
    out = subprocess.run([nm, "-D", "--undefined-only", str(so_path)],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


@pytest.mark.skipif(not flags.libmvec_available(), reason="libmvec route not available here")
def test_loops_call_libmvec(built):
    """Every function's loop calls a SIMD variant (_ZGV<isa>N<lanes>v_<name>), sqrt
    excepted: it becomes the sqrtps/sqrtpd instruction; and tanh, kgen's own,
    which calls nothing at all."""
    variant, ffi, lib, so_path = built
    assert lib.h_have_libmvec() == 1
    undefined = _undefined_symbols(so_path)
    vector_names = {s.split("_", 2)[2] for s in undefined if s.startswith("_ZGV")}
    own = {"sqrt", "sqrtf", "tanh", "tanhf"}
    wanted = {f + sfx for f in UNARY + BINARY for sfx in ("", "f")} - own
    assert wanted - vector_names == set()
    assert not {"tanh", "tanhf"} & (undefined | vector_names)


def test_scalar_fallback_is_correct(tmp_path):
    """-DKG_NO_LIBMVEC: plain libm, no libmvec symbols, same accuracy."""
    ffi, lib, so_path = harness.build(tmp_path, openmp=False, libmvec=False, gemm=False)
    assert lib.h_have_libmvec() == 0
    if shutil.which("nm"):
        assert not any(s.startswith("_ZGV") for s in _undefined_symbols(so_path))
    rng = np.random.default_rng(0)
    for name in ("exp", "log1p", "sin", "tanh", "erf"):
        for dtype, sfx in ((np.float32, "f"), (np.float64, "")):
            x = domain(name, dtype, rng, n=4000).astype(dtype)
            got = _run(lib, ffi, f"h_{name}{sfx}", dtype, x)
            hi = np.float64 if dtype == np.float32 else np.longdouble
            err = ulp_error(got, oracle(name, lib, ffi, x, hi=hi), dtype)
            assert err.max() <= MAX_ULP, f"{name}{sfx}: {_worst(x, err)}"


@pytest.mark.parametrize("std", ["c99", "gnu99", "c11"])
@pytest.mark.parametrize("extra", [[], ["-DKG_NO_LIBMVEC"], ["-fopenmp"], ["-ffast-math"]],
                         ids=["default", "no-libmvec", "openmp", "fast-math"])
def test_header_compiles_cleanly(tmp_path, std, extra):
    """kg_math.h alone, pedantic C: not a single warning."""
    src = tmp_path / "t.c"
    src.write_text('#include "kg_math.h"\n'
                   "double f(double *restrict y, const double *restrict x, int n)\n"
                   "{\n    int i;\n    KG_OMP_PARALLEL_FOR_SIMD(n)\n"
                   "    for (i = 0; i < n; i++) y[i] = kg_exp(x[i]) + kg_atan2f((float)x[i], 1.0f);\n"
                   "    return kg_exp10(2.0) + kg_erf(0.5);\n}\n")
    cc = flags.default_compiler()
    cmd = [*cc, f"-std={std}", "-pedantic", *flags.WARN_FLAGS, *flags.OPT_FLAGS, *flags.C_FLAGS,
           *extra, f"-I{flags.TEMPLATE_C_DIR}", "-c", str(src), "-o", str(tmp_path / "t.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_header_has_no_template_syntax():
    text = (flags.TEMPLATE_C_DIR / "kg_math.h").read_text()
    assert not any(tok in text for tok in ("{{", "{%", "{#"))


# ---- a fused kernel loop, threaded and multi-versioned ---------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_fused_loop_matches_numpy(built, dtype):
    """W1 = exp(-x*x)*sin(y) + log1p(z*z), as in the benchmark."""
    _, ffi, lib, _ = built
    rng = np.random.default_rng(3)
    n = 100_003
    x, y, z = (rng.uniform(-lo, lo, n).astype(dtype) for lo in (3, 10, 3))
    out = np.empty_like(x)
    fn = lib.h_w1f if dtype == np.float32 else lib.h_w1
    fn(n, *(harness.ptr(ffi, a) for a in (x, y, z, out)))
    xd, yd, zd = (a.astype(np.float64) for a in (x, y, z))
    want = np.exp(-xd * xd) * np.sin(yd) + np.log1p(zd * zd)
    # each term is within a few ULP; the sum may cancel, so scale by the terms
    scale = np.abs(np.exp(-xd * xd) * np.sin(yd)) + np.log1p(zd * zd)
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(out - want) <= 16 * eps * scale + np.finfo(dtype).tiny)


@pytest.mark.skipif(not flags.libmvec_available(), reason="libmvec route not available here")
def test_portable_build_carries_wider_clones(built):
    """KG_MULTIVERSION: the baseline build of W1 also holds x86-64-v3 and -v4
    clones, each calling the libmvec variants of its width."""
    variant, _, _, so_path = built
    if variant != "portable":
        pytest.skip("native builds need no clones")
    sinf_variants = {s.rsplit("_", 1)[0] for s in _undefined_symbols(so_path)
                     if s.startswith("_ZGV") and s.endswith("_sinf")}
    assert sinf_variants == {"_ZGVbN4v", "_ZGVdN8v", "_ZGVeN16v"}


@pytest.mark.skipif(not flags.libmvec_available(), reason="libmvec (glibc, x86-64) not here")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sin_and_cos_of_one_value_stay_vectorized(dtype):
    """A gradient of sin has sin(t) and cos(t) in one loop; gcc would merge
    them into one sincos call, which has no SIMD variant, and the whole loop
    (here with kg_tanh's selects in it) would run on scalar libm. The kernel
    must call libmvec's sin and cos, and give NumPy's values."""
    import kgen as kg
    x = kg.vector("x", dtype)
    y = kg.sin(kg.tanh(x))
    f = kg.function([x], [y, kg.grad(y.sum(), x)])
    a = np.linspace(-3, 3, 1001).astype(dtype)
    t = np.tanh(a.astype(np.float64))
    tol = 1e-13 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(f(a)[0], np.sin(t), rtol=tol, atol=tol)
    np.testing.assert_allclose(f(a)[1], np.cos(t) * (1 - t * t), rtol=tol, atol=tol)
    symbols = subprocess.run(["nm", "-D", f._module.__file__], capture_output=True, text=True,
                             check=True).stdout
    suffix = "f" if dtype == "float32" else ""
    assert " U sincos" not in symbols
    vector = {s.split("@")[0].split("_")[-1] for s in symbols.split() if s.startswith("_ZGV")}
    assert {"sin" + suffix, "cos" + suffix} <= vector, symbols
