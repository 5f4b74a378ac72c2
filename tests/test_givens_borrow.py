"""kg.function(givens=...), kg.clone(replace=...) and the borrow flags of
shared variables, checked against NumPy computed here."""
import numpy as np
import pytest

import kgen as kg

T = kg.tensor


def test_givens_substitute_in_outputs_and_updates():
    x, idx = T.dmatrix("x"), T.lscalar("idx")
    data = np.arange(20.0).reshape(10, 2)
    X = kg.shared(data, name="X")
    w = kg.shared(np.ones(2), name="w")
    cost = (T.dot(x, w) ** 2).sum()
    step = kg.function([idx], cost, updates=[(w, w - 0.01 * kg.grad(cost, w))],
                       givens={x: X[idx * 3:(idx + 1) * 3]})
    wv = np.ones(2)
    for i in [1, 0, 3, 2]:
        xb = data[i * 3:(i + 1) * 3]
        r = xb @ wv
        assert step(i) == pytest.approx((r ** 2).sum(), rel=1e-12)
        wv = wv - 0.01 * 2 * xb.T @ r
        np.testing.assert_allclose(w.get_value(), wv, rtol=1e-12)


def test_givens_as_pairs_replace_shared_variables_and_inputs():
    a, b = T.dvector("a"), T.dvector("b")
    s = kg.shared(np.array([1.0, 2.0]), name="s")
    f = kg.function([b], [a + s, s * 2], givens=[(a, b * 10), (s, b + 1)])
    got = f(np.array([1.0, 3.0]))
    np.testing.assert_array_equal(got[0], np.array([10.0, 30.0]) + np.array([2.0, 4.0]))
    np.testing.assert_array_equal(got[1], np.array([4.0, 8.0]))
    # a single output stays a single output
    g = kg.function([b], a.sum(), givens={a: b})
    assert g(np.array([1.0, 2.0])) == 3.0


def test_givens_type_checks_name_the_variable():
    x, y, n = T.dmatrix("x"), T.lvector("y"), T.dvector("n")
    with pytest.raises(TypeError, match="givens: x is 2-d float64.*1-d int64"):
        kg.function([y], x.sum(), givens=[(x, y)])
    with pytest.raises(TypeError, match="givens: n is 1-d float64.*1-d float32"):
        kg.function([], n.sum(), givens={n: T.fvector("m")})
    with pytest.raises(TypeError, match="also in the inputs"):
        kg.function([x], x.sum(), givens={x: kg.shared(np.ones((2, 2)))})
    with pytest.raises(TypeError, match="replaced twice"):
        kg.function([], x.sum(), givens=[(x, x * 2), (x, x * 3)])


def test_clone_replaces_and_shares_the_rest():
    x, y = T.dvector("x"), T.dvector("y")
    e = T.exp(x) + T.sin(y)
    c = kg.clone(e, replace={x: y * 2})
    v = np.array([0.5, -1.0])
    np.testing.assert_allclose(c.eval({y: v}), np.exp(v * 2) + np.sin(v), rtol=1e-15)
    # hash-consing: nothing replaced gives back the same nodes
    assert kg.clone(e, replace={}) is e
    assert kg.clone(e, replace={x: x}) is e
    assert kg.clone([e, x], replace={x: y})[1] is y
    with pytest.raises(TypeError, match="clone"):
        kg.clone(e, replace={x: T.lvector("k")})


def test_clone_of_a_deep_chain_is_iterative():
    x, y = T.dvector("x"), T.dvector("y")
    e = x
    for _ in range(20000):
        e = e + 1.0
    c = kg.clone(e, replace={x: y})
    leaves = [v for v in kg.graph_inputs([c]) if not isinstance(v, kg.Constant)]
    assert c is not e and leaves == [y]


def test_shared_borrow_keeps_the_array_and_get_value_borrow_returns_it():
    a = np.arange(6.0)
    s = kg.shared(a, name="s", borrow=True)
    assert s.get_value(borrow=True) is a
    assert s.get_value() is not a and np.array_equal(s.get_value(), a)
    assert s.get_value(borrow=True, return_internal_type=True) is a
    t = kg.shared(a, name="t")  # no borrow: a copy
    assert t.get_value(borrow=True) is not a
    # an array that C cannot read as is is copied even with borrow
    odd = np.arange(12.0)[::2]
    assert kg.shared(odd, borrow=True).get_value(borrow=True) is not odd
    b = np.ones(3)
    s.set_value(b, borrow=True)
    assert s.get_value(borrow=True) is b
    s.set_value(np.ones(3, "float32"), borrow=True)  # a safe cast: a copy of ours
    assert s.get_value(borrow=True).dtype == np.float64


def test_updates_never_write_a_borrowed_array():
    a = np.arange(4.0)
    s = kg.shared(a, borrow=True)
    f = kg.function([], s.sum(), updates=[(s, s * 2)])
    assert f() == 6.0
    np.testing.assert_array_equal(a, np.arange(4.0))  # replaced, not written in place
    np.testing.assert_array_equal(s.get_value(), np.arange(4.0) * 2)


def test_a_function_with_givens_and_a_symbolic_slice_pickles():
    import pickle
    x, idx = T.dvector("x"), T.lscalar("idx")
    data = kg.shared(np.arange(10.0), name="data")
    f = kg.function([idx], (x * 2).sum(), givens={x: data[idx * 3:(idx + 1) * 3]})
    g = pickle.loads(pickle.dumps(f))
    for i in range(4):
        assert g(i) == f(i) == (np.arange(10.0)[i * 3:(i + 1) * 3] * 2).sum()
