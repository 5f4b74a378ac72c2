"""The runtime under kg.function (kgen/runtime/core.py): calls from many threads,
atomic updates, arguments that do not fit, shared values in any memory layout,
and pickled compiled functions. Oracles: NumPy in the test and counted values.
"""
import pickle
import threading

import numpy as np
import pytest

import kgen as kg


def run_threads(target, n=8):
    """Run target(k) on n threads at once; re-raise the first failure here."""
    errors = []
    start = threading.Barrier(n)

    def body(k):
        try:
            start.wait()
            target(k)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# ---- threads -------------------------------------------------------------------------
def test_one_function_from_eight_threads_with_changing_shapes():
    """The issue's repro: each call's output has its own shape and the right values
    (one shared shape buffer corrupted the heap and the per-shape memo)."""
    x = kg.vector('x')
    f = kg.function([x], x * 2.0)

    def work(s):
        r = np.random.default_rng(s)
        for _ in range(3000):
            n = int(r.integers(1, 4000))
            v = r.standard_normal(n)
            out = f(v)
            assert out.shape == (n,)
            np.testing.assert_array_equal(out, v * 2.0)

    run_threads(work)
    for n in (1, 17, 3999):   # the memo holds only right shapes afterwards
        assert f(np.ones(n)).shape == (n,)


def test_shape_errors_from_many_threads_name_their_own_shapes():
    x, y = kg.vector('x'), kg.vector('y')
    f = kg.function([x, y], x + y)

    def work(k):
        for i in range(300):
            n = 2 + (k * 300 + i) % 50
            with pytest.raises(kg.ShapeError) as err:
                f(np.ones(n), np.ones(n + 1))
            assert f"({n},) and ({n + 1},)" in str(err.value)

    run_threads(work)


def test_updates_from_eight_threads_are_atomic():
    c = kg.shared(np.float64(0.0), name='c')
    inc = kg.function([], [], updates=[(c, c + 1)])

    def work(_):
        for _ in range(2000):
            inc()

    run_threads(work)
    assert c.get_value() == 16000


def test_readers_see_every_update_whole():
    """An update of two shared variables is one step: a reader of both never sees
    one written and the other not, and set_value is never lost mid-update."""
    a, b = kg.shared(np.zeros(3), name='a'), kg.shared(np.zeros(3), name='b')
    step = kg.function([], [], updates=[(a, a + 1), (b, b + 1)])
    gap = kg.function([], a - b)

    def work(k):
        for _ in range(1000):
            if k % 2:
                step()
            else:
                np.testing.assert_array_equal(gap(), np.zeros(3))

    run_threads(work)
    np.testing.assert_array_equal(a.get_value(), np.full(3, 4000.0))
    np.testing.assert_array_equal(b.get_value(), np.full(3, 4000.0))


def test_updates_in_opposite_orders_do_not_deadlock():
    """Two functions updating the same pair, listed in opposite orders, from many
    threads: the locks are taken in one global order."""
    p, q = kg.shared(np.int64(0), name='p'), kg.shared(np.int64(0), name='q')
    f = kg.function([], [], updates=[(p, p + 1), (q, q + 2)])
    g = kg.function([], [], updates=[(q, q + 1), (p, p + 2)])

    def work(k):
        for _ in range(1000):
            (f if k % 2 else g)()

    run_threads(work)
    assert p.get_value() == 4000 * 1 + 4000 * 2
    assert q.get_value() == 4000 * 2 + 4000 * 1


# ---- arguments that do not fit ----------------------------------------------------------
def test_float32_input_takes_a_list_of_python_floats():
    """The drift repro: kg.function and packages both accept k([0.5, 1.5])."""
    x = kg.fvector('x')
    f = kg.function([x], x + 1)
    out = f([0.5, 1.5])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([1.5, 2.5], np.float32))
    np.testing.assert_array_equal(f([1, 2]), np.array([2, 3], np.float32))  # weak ints too
    big = f([np.inf, -np.inf, np.nan, 3e38])   # inf and nan are values, 3e38 fits
    assert np.isposinf(big[0]) and np.isneginf(big[1]) and np.isnan(big[2])


def test_values_too_large_for_float32_are_refused():
    x, s = kg.fvector('speed'), kg.fscalar('dt')
    f = kg.function([x, s], x * s)
    ok = np.ones(2, np.float32)
    with pytest.raises(kg.KgenTypeError, match=r"input 'dt'.*1e\+300.*float32"):
        f(ok, 1e300)
    with pytest.raises(kg.KgenTypeError, match=r"input 'dt'.*float32"):
        f(ok, -2 ** 200)                   # an int that fits float64, not float32
    with pytest.raises(kg.KgenTypeError, match=r"input 'speed'.*float32"):
        f([1.0, 1e300], 1.0)
    with pytest.raises(kg.KgenTypeError, match=r"input 'speed'.*float32"):
        f([1e39, 0.0], 1.0)
    assert f(ok, float('inf'))[0] == np.inf
    limit = float(np.finfo(np.float32).max)
    assert f(ok, limit)[0] == limit
    assert f(ok, limit + 2.0 ** 102)[0] == limit        # rounds down to the largest float32
    with pytest.raises(kg.KgenTypeError, match="float32"):
        f(ok, limit + 2.0 ** 103)                      # rounds up to inf


def test_huge_python_int_into_a_float_input_is_a_type_error():
    x = kg.dscalar('x')
    f = kg.function([x], x + 1)
    for bad in (2 ** 2000, -(2 ** 1024)):
        with pytest.raises(TypeError, match=r"input 'x'.*int of \d+ bits.*float64") as err:
            f(bad)
        assert isinstance(err.value, kg.KgenTypeError)
    assert f(2 ** 1000) == float(2 ** 1000)   # large but representable
    k = kg.lscalar('k')
    with pytest.raises(TypeError, match=r"input 'k'.*does not fit in int64"):
        kg.function([k], k + 1)(10 ** 5000)  # too many digits even to print


def test_ragged_list_is_a_type_error_naming_the_input():
    m = kg.matrix('grid')
    f = kg.function([m], m.sum())
    for ragged in ([[1.0, 2.0], [3.0]], [[1.0], 2.0]):
        with pytest.raises(TypeError, match="input 'grid'") as err:
            f(ragged)
        assert isinstance(err.value, kg.KgenTypeError)
    assert f([[1.0, 2.0], [3.0, 4.0]]) == 10.0


def test_eval_uses_the_same_rules():
    x = kg.fvector('x')
    np.testing.assert_array_equal((x * 2).eval({x: [0.5, 1.5]}), np.float32([1, 3]))
    with pytest.raises(kg.KgenTypeError, match="float32"):
        (x * 2).eval({x: [1e300]})


# ---- shared values in any layout -----------------------------------------------------------
def test_big_endian_shared_value_is_read_right():
    v = np.arange(3, dtype='>f8')
    s = kg.shared(v, name='s')
    f = kg.function([], s * 2)
    np.testing.assert_array_equal(f(), np.arange(3.0) * 2)
    s.set_value(np.array([5, 6], dtype='>i4'))          # int32 casts safely to float64
    np.testing.assert_array_equal(f(), [10.0, 12.0])
    s.set_value(np.array([1.5, -2.0], dtype='>f8'))
    np.testing.assert_array_equal(f(), [3.0, -4.0])
    assert s.get_value().dtype.isnative
    x = kg.vector('x')
    g = kg.function([x], x * s)                            # and big-endian inputs
    np.testing.assert_array_equal(g(np.array([2.0, 3.0], dtype='>f8')), [3.0, -6.0])


@pytest.mark.parametrize("layout", ["fortran", "transposed", "strided", "misaligned"])
def test_shared_values_in_other_layouts(layout):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((4, 6))
    value = {"fortran": np.asfortranarray(base), "transposed": base.T.copy().T,   # a view of a (6, 4) array
             "strided": np.repeat(base, 2, axis=1)[:, ::2],
             "misaligned": _misaligned(base)}[layout]
    np.testing.assert_array_equal(value, base)
    w = kg.shared(value, name='w')
    v = kg.vector('v')
    f = kg.function([v], [kg.dot(w, v), w.sum(axis=0)])
    x = rng.standard_normal(6)
    got = f(x)
    np.testing.assert_allclose(got[0], base @ x, rtol=1e-12)
    np.testing.assert_allclose(got[1], base.sum(axis=0), rtol=1e-12)
    # and through set_value, with another shape
    other = rng.standard_normal((6, 3)).T        # a transposed view, shape (3, 6)
    w.set_value(np.asfortranarray(other) if layout == "fortran" else other)
    np.testing.assert_allclose(f(x)[0], other @ x, rtol=1e-12)
    assert w.get_value().flags.c_contiguous


def _misaligned(a):
    raw = np.zeros(a.nbytes + 1, np.uint8)[1:].view(a.dtype).reshape(a.shape)
    raw[...] = a
    assert not raw.flags.aligned
    return raw


# ---- pickling -------------------------------------------------------------------------------
def test_shared_variable_pickles_with_a_lock_of_its_own():
    s = kg.shared(np.arange(3.0), name='s')
    t = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(t.get_value(), [0.0, 1.0, 2.0])
    assert t.name == 's' and t._lock is not s._lock
    t.set_value(np.ones(3))
    np.testing.assert_array_equal(s.get_value(), [0.0, 1.0, 2.0])


def test_compiled_function_of_leaves_pickles():
    """A function whose graphs are leaves only (no op nodes) round-trips: it loads
    from the disk cache, and its shared variable comes back as the pickled one."""
    w = kg.shared(np.zeros(2), name='w')
    x = kg.vector('x')
    f = kg.function([x], [w, x], updates=[(w, x)], name='keep')
    g, w2 = pickle.loads(pickle.dumps((f, w)))
    assert g.from_cache and g.__name__ == 'keep' and g.kernel.updates[0][0] is w2
    out = g(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(out[0], [0.0, 0.0])
    np.testing.assert_array_equal(w2.get_value(), [1.0, 2.0])
    np.testing.assert_array_equal(w.get_value(), [0.0, 0.0])   # the original is its own
    single = pickle.loads(pickle.dumps(kg.function([x], x)))
    np.testing.assert_array_equal(single([3.0]), [3.0])


def test_compiled_function_pickles_and_reloads_from_the_cache():
    w = kg.shared(np.zeros(2), name='w')
    x = kg.vector('x')
    f = kg.function([x], (w * x).sum(), updates=[(w, w + x)], name='acc')
    f(np.ones(2))
    g, w2 = pickle.loads(pickle.dumps((f, w)))
    assert g.from_cache and g.__name__ == f.__name__
    assert g(np.array([1.0, 2.0])) == 3.0       # w was [1, 1] when pickled: 1*1 + 1*2
    np.testing.assert_array_equal(w2.get_value(), [2.0, 3.0])
    np.testing.assert_array_equal(w.get_value(), [1.0, 1.0])  # the original is its own
    h = pickle.loads(pickle.dumps(kg.function([x], x * 3, optimize=False)))
    np.testing.assert_array_equal(h([1.0, 2.0]), [3.0, 6.0])


def test_a_value_given_by_position_and_by_name_is_refused():
    """One binding rule for kg.function and packages: `f(a, x=b)` names x twice
    (the runtime's old rule let the keyword silently replace a sole positional)."""
    x = kg.vector('x')
    y = kg.vector('y')
    one = kg.function([x], x * 2)
    with pytest.raises(TypeError, match="two values for 'x'"):
        one(np.ones(2), x=np.zeros(2))
    two = kg.function([x, y], x - y)
    with pytest.raises(TypeError, match="two values for 'y'"):
        two(np.ones(2), np.ones(2), y=np.zeros(2))
    np.testing.assert_array_equal(two(np.ones(2), y=np.full(2, 3.0)), [-2.0, -2.0])
    with pytest.raises(TypeError, match="takes 2 argument"):
        two(np.ones(2))
