"""Theano's everyday names that are not ops: plural constructors, row/col,
TensorType(dtype, broadcastable), .broadcastable, and the behaviour of the
new compositions at their edges (0 * log 0, no aliasing of updated arrays)."""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T


def test_plural_constructors_follow_theano():
    a, b = T.dmatrices("a", "b")
    assert (a.name, b.name, a.dtype, a.ndim) == ("a", "b", "float64", 2)
    assert T.fvectors("x").dtype == "float32" and T.fvectors("x").name == "x"  # one: itself
    three = T.iscalars(3)
    assert len(three) == 3 and all(v.dtype == "int32" and v.ndim == 0 for v in three)
    assert [v.dtype for v in T.lvectors("i", "j")] == ["int64", "int64"]
    assert T.scalars("s", "t")[0].dtype == kg.config.floatX
    assert T.matrices("m", "n")[1].ndim == 2 and T.vectors(2)[0].ndim == 1
    assert [v.ndim for v in (T.tensor3s("p", "q")[0], T.dtensor4s("r", "s")[1])] == [3, 4]
    assert T.dmatrices is kg.dmatrices and T.dscalars.__name__ == "dscalars"
    r, c = T.drows("r", "c2")
    assert r.broadcastable == (True, False)
    assert T.fcols("c", "d")[0].broadcastable == (False, True)


def test_row_and_col():
    r, c = T.row("r"), T.col("c")
    assert r.type.shape == (1, None) and c.type.shape == (None, 1)
    assert r.dtype == kg.config.floatX
    assert T.drow().dtype == "float64" and T.fcol().dtype == "float32"
    assert T.irow().dtype == "int32" and T.lcol().dtype == "int64"
    f = kg.function([r, c], r + c)
    np.testing.assert_allclose(f(np.ones((1, 3)), np.arange(2.0)[:, None]),
                               np.ones((1, 3)) + np.arange(2.0)[:, None])
    with pytest.raises(kg.ShapeError):  # a row has one row
        kg.function([r], r)(np.ones((2, 3)))


def test_tensor_type_is_callable_as_in_theano():
    tt = T.TensorType("float64", (False, True))
    x = tt("x")
    assert x.type == tt and x.type.shape == (None, 1) and x.name == "x"
    assert x.broadcastable == (False, True) and tt.broadcastable == (False, True)
    assert T.TensorType("float32", broadcastable=(True,))().type.shape == (1,)
    assert kg.TensorType("int64", (3, None)).shape == (3, None)  # kgen's own spelling stays
    assert T.TensorType is kg.TensorType
    assert T.matrix().broadcastable == (False, False) and T.scalar().broadcastable == ()
    assert kg.constant(np.ones((1, 3))).broadcastable == (True, False)
    f = kg.function([x], x * 2)
    np.testing.assert_allclose(f(np.ones((4, 1))), 2 * np.ones((4, 1)))


def test_xlogx_conventions_at_zero():
    x, y = T.dvector("x"), T.dvector("y")
    v = np.array([0.0, 0.5, 2.0])
    want = np.array([0.0, 0.5 * np.log(0.5), 2 * np.log(2.0)])
    np.testing.assert_allclose(T.xlogx.xlogx(x).eval({x: v}), want)
    f = kg.function([x, y], [T.xlogx.xlogy0(x, y), kg.grad(kg.sum(T.xlogx.xlogy0(x, y)), y)])
    val, gy = f(v, np.array([0.0, 1.0, 4.0]))
    np.testing.assert_allclose(val, [0.0, 0.0, 2 * np.log(4.0)])
    np.testing.assert_allclose(gy, [0.0, 0.5, 0.5])  # 0 where x == 0, not NaN
    from kgen.tensor.xlogx import xlogy0
    assert xlogy0 is T.xlogx.xlogy0


def test_updated_arrays_do_not_alias_their_input():
    x, i = T.dmatrix("x"), T.lvector("i")
    f = kg.function([x, i], [T.set_subtensor(x[1:], 5.0), T.inc_subtensor(x[i], 1.0), x * 1])
    value = np.zeros((3, 2))
    s, inc, same = f(value, np.array([0, 0, 2]))
    assert not value.any()
    np.testing.assert_allclose(s, [[0, 0], [5, 5], [5, 5]])
    np.testing.assert_allclose(inc, [[2, 2], [0, 0], [1, 1]])  # repeated indices accumulate
    assert not np.shares_memory(s, value) and not np.shares_memory(inc, value)


def test_subtensor_updates_of_the_whole_array():
    x, y = T.dmatrix("x"), T.dvector("y")
    f = kg.function([x, y], [T.set_subtensor(x[:], y), T.inc_subtensor(x[...], y)])
    s, inc = f(np.ones((2, 3)), np.arange(3.0))
    np.testing.assert_allclose(s, [[0, 1, 2], [0, 1, 2]])
    np.testing.assert_allclose(inc, [[1, 2, 3], [1, 2, 3]])


def test_sizes_from_input_values():
    """The value of an int scalar input may decide a size; a float one may not."""
    n, t = T.lscalar("n"), T.dscalar("t")
    f = kg.function([n], T.zeros((n, 2)))
    np.testing.assert_array_equal(f(3), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="depends on the value of input"):
        kg.function([t], T.arange(t))


def test_shape_errors_name_the_function():
    with pytest.raises(kg.ShapeError, match="tensordot"):
        T.tensordot(T.tensor("a", shape=(2, 3)), T.tensor("b", shape=(4, 2)), [[1], [0]])
    with pytest.raises(kg.ShapeError, match="batched_dot"):
        T.batched_dot(T.tensor("a", shape=(2, 3, 4)), T.tensor("b", shape=(3, 4, 5)))
    with pytest.raises(kg.ShapeError, match="alloc"):
        T.alloc(T.matrix(), 3)


def test_specify_shape_refines_and_checks():
    x = T.dmatrix("x")
    y = T.specify_shape(x, (3, None))
    assert y.type.shape == (3, None)
    assert T.specify_shape(T.tensor("z", shape=(None, 4)), (2, None)).type.shape == (2, 4)
    with pytest.raises(kg.ShapeError, match="specify_shape"):
        T.specify_shape(T.tensor("z", shape=(None, 4)), (2, 5))  # static conflict: at once
    with pytest.raises(kg.ShapeError, match="specify_shape"):
        (y * 2).eval({x: np.ones((2, 4))})
    f = kg.function([x], y * 2)
    np.testing.assert_allclose(f(np.ones((3, 1))), 2 * np.ones((3, 1)))
    with pytest.raises(kg.ShapeError, match=r"specify_shape.*\(2, 4\).*\(3, 4\)"):
        f(np.ones((2, 4)))


def test_sort_is_stable_and_routes_gradients_to_sorted_positions():
    x = T.dvector("x")
    value = np.array([2.0, 1.0, 2.0, np.nan, 1.0, 0.0])
    f = kg.function([x], [T.sort(x), T.argsort(x)])
    s, order = f(value)
    np.testing.assert_array_equal(order, [5, 1, 4, 0, 2, 3])  # ties keep their order, NaN last
    np.testing.assert_array_equal(s, value[order])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    g = kg.grad(kg.sum(T.sort(x) * w), x)
    np.testing.assert_allclose(kg.function([x], g)(np.array([3.0, 1.0, 2.0, 0.5, 4.0, 5.0])),
                               [4.0, 2.0, 3.0, 1.0, 5.0, 6.0])
    with pytest.raises(kg.ShapeError, match="sort"):
        T.sort(T.dscalar(), axis=-1)


def test_cumulative_ops_follow_numpy():
    x = T.dmatrix("x")
    value = np.arange(1.0, 7.0).reshape(2, 3)
    f = kg.function([x], [T.cumsum(x), T.cumsum(x, axis=0), T.cumprod(x, axis=-1)])
    for got, want in zip(f(value), [np.cumsum(value), np.cumsum(value, 0), np.cumprod(value, -1)]):
        np.testing.assert_allclose(got, want)
    assert T.cumsum(T.bvector()).dtype == "int64" and T.cumsum(T.ivector()).dtype == "int64"
    assert T.cumsum(T.fvector()).dtype == "float32"


def test_theano_keywords_of_subtensor_updates():
    x = T.dvector("x")
    y = T.inc_subtensor(x[1:], 5.0, set_instead_of_inc=True, inplace=True)
    np.testing.assert_allclose(y.eval({x: np.zeros(3)}), [0, 5, 5])


def test_theano_tutorial_examples_give_theanos_answers():
    """Examples from Theano's tutorial, with only the imports changed."""
    import kgen as theano
    a, b = T.dmatrices("a", "b")
    diff = a - b
    f = theano.function([a, b], [diff, abs(diff), diff ** 2])
    d, ad, d2 = f([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(d, [[1.0, 0.0], [-1.0, -2.0]])
    np.testing.assert_array_equal(ad, [[1.0, 0.0], [1.0, 2.0]])
    np.testing.assert_array_equal(d2, [[1.0, 0.0], [1.0, 4.0]])
    # the everyday names in one training-style graph: one row of W per index
    W = theano.shared(np.zeros((4, 2)), name="W")
    idx, g = T.lvector("idx"), T.dmatrix("g")
    step = theano.function([idx, g], T.sum(W[idx]), updates=[(W, T.inc_subtensor(W[idx], -g))])
    step(np.array([1, 1, 3]), np.ones((3, 2)))
    np.testing.assert_array_equal(W.get_value(), [[0, 0], [-2, -2], [0, 0], [-1, -1]])
    x = T.TensorType("float64", (False, True))("x")
    y = T.tile(x, (1, 3)) + T.alloc(T.cast(T.arange(3), "float64"), x.shape[0], 3)
    np.testing.assert_array_equal(theano.function([x], y)(np.array([[10.0], [20.0]])),
                                  [[10, 11, 12], [20, 21, 22]])


def test_nnet_softmax_is_theanos_a_vector_gives_a_row():
    """Theano's softmax op is 2-d: T.nnet.softmax of a vector is a (1, n) matrix
    (elman.py reads s[:, 0, :]); kg.softmax keeps the vector's shape."""
    import kgen.tensor as T
    v, m = T.dvector("v"), T.dmatrix("m")
    vv = np.array([0.5, -1.0, 2.0])
    mv = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -3.0]])
    ref = lambda a: np.exp(a - a.max(-1, keepdims=True)) / np.exp(a - a.max(-1, keepdims=True)).sum(-1, keepdims=True)  # noqa: E731
    row = T.nnet.softmax(v)
    assert row.ndim == 2 and row.type.shape[0] == 1
    np.testing.assert_allclose(row.eval({v: vv}), ref(vv)[None, :])
    np.testing.assert_allclose(T.nnet.softmax(m).eval({m: mv}), ref(mv))
    assert kg.softmax(v).ndim == 1
