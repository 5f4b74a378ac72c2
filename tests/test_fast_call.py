"""The fast paths of a call (kgen/runtime/core.py, fast_class): kg.function's
call in C (templates/c/kg_fastcall.h), and the Python one packages use, which
reuses the last array's cffi pointer. Calls of plain arrays skip binding;
everything else still goes through the checked path with the same results and
errors. The fixture runs each test on both paths."""
import sys
import threading
import types

import numpy as np
import pytest

import kgen as kg
from kgen.errors import KgenIndexError, KgenTypeError, ShapeError

RNG = np.random.default_rng(4)


def python_fast_path(f):
    """`f` with the Python fast path a package's kernel has, instead of the C call."""
    from kgen.runtime import core
    base = type(f).__mro__[1]
    f.__class__ = core.fast_class(base, f)
    assert isinstance(type(f).__dict__["__call__"], types.FunctionType)
    return f


@pytest.fixture(scope="module", params=["c", "python"])
def axpy(request):
    a, b, c = kg.vector("a"), kg.vector("b"), kg.vector("c")
    f = kg.function([a, b, c], [a * b + c, a - c])
    assert isinstance(type(f).__dict__["__call__"], types.BuiltinFunctionType)  # the C call
    return f if request.param == "c" else python_fast_path(f)


def test_results_follow_arrays_changed_in_place(axpy):
    x, y, z = np.arange(4.0), np.full(4, 2.0), np.ones(4)
    for step in range(3):
        x[:] = step  # the same array again: its pointer is reused, its values are new
        got = axpy(x, y, z)
        np.testing.assert_array_equal(got[0], x * y + z)
        np.testing.assert_array_equal(got[1], x - z)
    other = np.linspace(0, 1, 7)  # another shape: another entry of the shape memo
    np.testing.assert_allclose(axpy(other, other, other)[0], other * other + other, rtol=1e-15)


def test_an_array_changed_in_kind_leaves_the_fast_path(axpy):
    x, y = np.arange(6.0), np.ones(6)
    axpy(x, y, y)
    x.shape = (3, 2)
    with pytest.raises(KgenTypeError, match="input 'a': expected a 1-d array"):
        axpy(x, y, y)
    x.shape = (6,)
    np.testing.assert_array_equal(axpy(x, y, y)[0], np.arange(6.0) + 1)
    x.dtype = np.int64  # the same bytes, now int64: cast safely, not reinterpreted
    np.testing.assert_array_equal(axpy(x, y, y)[0], x.astype(float) + 1)
    strided = np.arange(12.0)[::2]
    np.testing.assert_array_equal(axpy(strided, y, y)[0], strided + 1)


def test_other_calls_bind_as_before(axpy):
    x = np.arange(3.0)
    np.testing.assert_array_equal(axpy(x, x, c=x)[0], x * x + x)
    np.testing.assert_array_equal(axpy([1, 2], [3, 4], [5, 6])[0], [8.0, 14.0])
    with pytest.raises(KgenTypeError, match=r"takes 3 argument"):
        axpy(x, x)
    with pytest.raises(KgenTypeError, match=r"takes 3 argument"):
        axpy(x, x, x, x)
    with pytest.raises(KgenTypeError, match="unexpected argument 'd'"):
        axpy(x, x, x, d=x)
    with pytest.raises(ShapeError):
        axpy(x, np.ones(4), x)


def test_a_failed_run_reports_its_message():
    x, i = kg.vector("x"), kg.lvector("i")
    f = kg.function([x, i], x[i] * 2)
    data = np.arange(5.0)
    np.testing.assert_array_equal(f(data, np.array([4, 0])), [8.0, 0.0])
    with pytest.raises(KgenIndexError, match="out of") as e:
        f(data, np.array([1, 7]))
    assert "7" in str(e.value)


def test_threads_share_a_fast_kernel(axpy):
    def work(seed, errors):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            a, b, c = rng.random((3, 5 + seed))
            got = axpy(a, b, c)
            if not np.allclose(got[0], a * b + c, rtol=1e-15, atol=0):
                errors.append(seed)
    errors = []
    threads = [threading.Thread(target=work, args=(k, errors)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_python_floats_for_float64_scalars():
    """A Python float for a 0-d float64 input is read as itself on the fast
    path; other Python scalars (an int, a float for float32) still take the
    checked path, with NumPy's values."""
    x, w, w32 = kg.vector("x"), kg.scalar("w", "float64"), kg.scalar("w32", "float32")
    f = kg.function([x, w, w32], [x * w, x * w32])
    xv = np.linspace(-1, 1, 4)
    for wv in (0.3, -2.5, 1e300, float("inf")):
        got = f(xv, wv, 0.5)
        np.testing.assert_array_equal(got[0], xv * np.float64(wv))
        np.testing.assert_array_equal(got[1], xv * np.float32(0.5))
    np.testing.assert_array_equal(f(xv, 3, 0.5)[0], xv * 3.0)   # an int: checked, cast
    with pytest.raises(KgenTypeError, match="does not fit in float32"):
        f(xv, 0.3, 1e300)


def test_kept_temporaries_serve_growing_and_concurrent_calls():
    """A kernel keeps its temporaries' block between calls (prelude.h,
    kg_ws_take): calls with larger inputs get a larger block, and calls from
    several threads at once each work in their own."""
    x, y = kg.matrix("x"), kg.matrix("y")
    f = kg.function([x, y], [kg.tensor.tanh(kg.tensor.dot(x, y) + 1).sum(axis=0),
                             (x * 2).sum()])
    assert "kg_ws = kg_ws_take(" in f.source()   # it has temporaries

    def want(a, b):
        return np.tanh(a @ b + 1).sum(axis=0), (a * 2).sum()

    for n in (3, 40, 7, 120, 2):
        a, b = RNG.standard_normal((n, n + 1)), RNG.standard_normal((n + 1, n))
        for got, w in zip(f(a, b), want(a, b)):
            np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-12)
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(30):
            n = int(rng.integers(1, 60))
            a, b = rng.standard_normal((n, 5)), rng.standard_normal((5, n))
            for got, w in zip(f(a, b), want(a, b)):
                if not np.allclose(got, w, rtol=1e-12, atol=1e-12):
                    errors.append((seed, n))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "int64", "bool"])
def test_the_c_call_for_every_dtype(dtype):
    x, y = kg.matrix("x", dtype), kg.matrix("y", dtype)
    f = kg.function([x, y], (x * y).sum(axis=1) if dtype != "bool" else x & y)
    rng = np.random.default_rng(1)
    a = (rng.random((3, 5)) * 10).astype(dtype)
    b = (rng.random((3, 5)) * 10).astype(dtype)
    got = f(a, b)
    want = a & b if dtype == "bool" else (a * b).sum(axis=1)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_the_c_call_hands_odd_arrays_to_the_checked_path(axpy):
    """Read-only, misaligned, subclassed, Fortran-ordered and 0-length arrays:
    the results NumPy gives, and for those the C call does not take, the
    checked path's (which copies or casts)."""
    x = np.linspace(0, 1, 6)
    want = x * x + x
    readonly = x.copy()
    readonly.flags.writeable = False
    raw = np.zeros(6 * 8 + 1, np.uint8)
    misaligned = np.frombuffer(raw.data, np.float64, 6, offset=1)
    misaligned[:] = x
    assert misaligned.ctypes.data % 8 != 0

    class Sub(np.ndarray):
        pass

    for arr in (readonly, misaligned, x.view(Sub), np.asfortranarray(x)):
        np.testing.assert_array_equal(axpy(arr, arr, arr)[0], want)
    empty = np.zeros(0)
    got = axpy(empty, empty, empty)
    assert got[0].shape == (0,) and got[1].shape == (0,)


def test_the_c_call_keeps_no_reference_and_no_buffer():
    """After many calls, each argument has the references it had before (the C
    call releases every buffer it took), and each result is held only by its
    caller."""
    a, b = kg.vector("a"), kg.vector("b")
    f = kg.function([a, b], a * b)
    x, y = np.arange(5.0), np.ones(5)
    before = sys.getrefcount(x), sys.getrefcount(y)
    for _ in range(1000):
        out = f(x, y)
    assert (sys.getrefcount(x), sys.getrefcount(y)) == before
    assert sys.getrefcount(out) == 2   # `out` and getrefcount's argument
    x.resize(7, refcheck=False)        # no buffer is still exported (else BufferError)
    np.testing.assert_array_equal(f(x, np.ones(7))[:5], np.arange(5.0))


def test_large_c_calls_run_in_parallel_threads():
    """From 32768 elements the C call releases the GIL: threads calling one
    kernel at once each get their own right answer."""
    x = kg.vector("x")
    f = kg.function([x], kg.tensor.tanh(x) * 2 + 1)
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(20):
            v = rng.standard_normal(40000 + seed)
            if not np.allclose(f(v), np.tanh(v) * 2 + 1, rtol=1e-13, atol=1e-15):
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
