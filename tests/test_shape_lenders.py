"""Values that only lend a shape: where(c, x, x) becomes second(c, x), whose
condition c is read for its shape alone. Such a map group has nothing to
store; it must vanish from the loops (its shape checks still run), not crash
the lowering (`IndexError: list index out of range` in `_map_stage`)."""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T


def _repro():
    x1 = T.tensor("x1", "float32", (None, None))
    x2 = T.tensor("x2", "float64", (3, None))
    x3 = T.tensor("x3", "float64", (1, 4))
    out = kg.where((x3 > 0) & ~(x2 > 0.5) | (x3 < -1), x1, x1)
    return kg.function([x1, x2, x3], out)


def _numpy(a1, a2, a3):
    return np.where((a3 > 0) & ~(a2 > 0.5) | (a3 < -1), a1, a1)


@pytest.fixture(scope="module")
def repro():
    return _repro()


@pytest.mark.parametrize("s1, s2", [((3, 4), (3, 4)), ((1, 1), (3, 4)), ((3, 1), (3, 1)),
                                    ((1, 4), (3, 1)), ((3, 4), (3, 1))])
def test_condition_that_only_lends_its_shape(repro, s1, s2):
    rng = np.random.default_rng(0)
    a1 = rng.uniform(-2, 2, s1).astype(np.float32)
    a2 = rng.uniform(-2, 2, s2)
    a3 = rng.uniform(-2, 2, (1, 4))
    got = repro(a1, a2, a3)
    want = _numpy(a1, a2, a3)
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("s1, s2", [((3, 4), (3, 5)),   # x2 and x3 do not broadcast
                                    ((2, 4), (3, 4)),   # x1 and the condition do not
                                    ((3, 3), (3, 1))])
def test_shapes_that_do_not_fit_are_a_shape_error(repro, s1, s2):
    a1, a2, a3 = np.ones(s1, np.float32), np.ones(s2), np.ones((1, 4))
    with pytest.raises(ValueError):
        _numpy(a1, a2, a3)
    with pytest.raises(kg.ShapeError, match="shape|broadcast"):
        repro(a1, a2, a3)


def test_condition_groups_of_several_shapes():
    """Each comparison its own loop shape, all of them only lending a shape."""
    u, v, M = kg.vector("u"), kg.vector("v"), kg.matrix("M")
    a = kg.scalar("a")
    c = ((u > 0) | (a < 1)) & ~(M < -1) & (v > 0.5)
    outs = [kg.where(c, a, a), kg.zeros_like(c) + a, kg.where(c, u * 2, u * 2)]
    f = kg.function([a, u, v, M], outs)
    rng = np.random.default_rng(1)
    A, U, V, MM = np.float64(0.5), rng.uniform(-2, 2, 4), rng.uniform(-2, 2, 4), \
        rng.uniform(-2, 2, (3, 4))
    C = ((U > 0) | (A < 1)) & ~(MM < -1) & (V > 0.5)
    for got, want in zip(f(A, U, V, MM), [np.where(C, A, A), np.zeros_like(C) + A,
                                           np.where(C, U * 2, U * 2)]):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    with pytest.raises(kg.ShapeError):
        f(A, U, np.ones(5), MM)  # v does not broadcast with u


def test_values_read_for_their_sizes_only():
    """arange's bounds, sum_to's and split_part's shape operands: sizes the
    shape phase computes; results as NumPy's."""
    x, y = kg.matrix("x"), kg.vector("y")
    n = x.shape[0] * x.shape[1] + 1
    cost = kg.concatenate([kg.sin(x).flatten(), y]).sum() * 2.0
    gy = kg.grad(cost, y)
    f = kg.function([x, y], [kg.arange(n), gy, kg.reshape(y, (n - x.shape[0] * x.shape[1],))])
    X, Y = np.ones((2, 3)), np.array([0.5])
    r, g, yy = f(X, Y)
    np.testing.assert_array_equal(r, np.arange(7))
    np.testing.assert_array_equal(g, np.full(1, 2.0))
    np.testing.assert_array_equal(yy, Y)


def test_a_gather_that_only_lends_its_shape_still_checks_its_indices():
    """A gather may fail at run time, so it runs even where nothing reads it."""
    t, i, x = kg.vector("t"), kg.lvector("i"), kg.vector("x")
    f = kg.function([t, i, x], kg.where(t[i] > 0, x, x))
    T_, X = np.array([1.0, -1.0, 2.0]), np.arange(2.0)
    np.testing.assert_array_equal(f(T_, np.array([0, 2]), X), X)
    with pytest.raises(IndexError):
        T_[np.array([0, 7])]
    with pytest.raises(IndexError):
        f(T_, np.array([0, 7]), X)
