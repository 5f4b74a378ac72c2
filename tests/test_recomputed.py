"""Cheap values computed again where they are read (kgen/lower/fusion.py,
recomputed): `1 - x` beside x is not stored in a buffer of its own and read
back; each loop that reads it computes it from x, which is in memory anyway.
Whatever reads it (later maps, reductions, a branch of an ifelse), the answers
are NumPy's."""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T


def _rng():
    return np.random.default_rng(7)


def _stored(f):
    """The expressions (op names and inputs' names) the kernel's loops store."""
    out = []
    for step in f.kernel.plan().steps:
        by_var = {lc.var: lc.node for lc in getattr(step, "locals", None) or []}
        for value, _view in getattr(step, "stores", None) or []:
            node = by_var.get(value)
            if node is not None:
                out.append((node.op.name, tuple(i.name for i in node.inputs)))
    return out


def test_one_minus_an_input_read_by_maps_and_reductions():
    x, W = T.matrix("x"), T.matrix("W")
    c = 1 - x
    h = T.dot(x, W)
    r = T.sum(c * T.exp(x), axis=1)            # a reduction reads c
    m = c * T.dot(h, W.T) + r.dimshuffle(0, "x")  # a map after two products reads it
    f = kg.function([x, W], [r, m])
    assert ("sub", (None, "x")) not in _stored(f), "each loop computes 1 - x itself"
    xv, Wv = _rng().normal(size=(6, 5)), _rng().normal(size=(5, 3))
    rv, mv = f(xv, Wv)
    cv = 1 - xv
    np.testing.assert_allclose(rv, np.sum(cv * np.exp(xv), axis=1), rtol=1e-12)
    np.testing.assert_allclose(mv, cv * ((xv @ Wv) @ Wv.T) + rv[:, None], rtol=1e-12)


def test_a_stored_map_value_stays_until_its_recomputed_readers_ran():
    """y = sigmoid(...) is stored for its product; 1 - y is computed from it
    in loops after that product, so y's buffer must not be reused before."""
    x, W = T.matrix("x"), T.matrix("W")
    y = T.nnet.sigmoid(x)
    c = 1 - y
    z = T.dot(y, W)                              # y stored for this
    t = T.tanh(z)                                # a temporary that could take y's buffer
    out = T.sum(T.dot(t, W.T) * c, axis=1) + T.sum(c * y, axis=1)
    f = kg.function([x, W], [out, t])
    xv, Wv = _rng().normal(size=(8, 4)), _rng().normal(size=(4, 4))
    yv = 1 / (1 + np.exp(-xv))
    tv = np.tanh(yv @ Wv)
    got, got_t = f(xv, Wv)
    np.testing.assert_allclose(got, np.sum((tv @ Wv.T) * (1 - yv), axis=1)
                               + np.sum((1 - yv) * yv, axis=1), rtol=1e-12)
    np.testing.assert_allclose(got_t, tv, rtol=1e-12)


@pytest.mark.parametrize("flag", [0, 1])
def test_read_inside_an_ifelse_branch(flag):
    from kgen.ifelse import ifelse
    x, W, k = T.matrix("x"), T.matrix("W"), T.iscalar("k")
    c = 1 - x
    other = T.sum(c * T.dot(x, W).sum(), axis=0)
    out = ifelse(k > 0, c * 2.0, c * T.exp(x))
    f = kg.function([x, W, k], [out, other])
    xv, Wv = _rng().normal(size=(3, 4)), _rng().normal(size=(4, 2))
    got, got_other = f(xv, Wv, flag)
    cv = 1 - xv
    np.testing.assert_allclose(got, cv * 2.0 if flag else cv * np.exp(xv), rtol=1e-12)
    np.testing.assert_allclose(got_other, np.sum(cv * (xv @ Wv).sum(), axis=0), rtol=1e-12)


def test_an_output_is_still_stored():
    x = T.matrix("x")
    c = 1 - x
    f = kg.function([x], [c, T.sum(c, axis=1), c * T.exp(x).sum()])
    assert ("sub", (None, "x")) in _stored(f)
    xv = _rng().normal(size=(4, 6))
    a, b, d = f(xv)
    np.testing.assert_allclose(a, 1 - xv)
    np.testing.assert_allclose(b, np.sum(1 - xv, axis=1), rtol=1e-12)
    np.testing.assert_allclose(d, (1 - xv) * np.exp(xv).sum(), rtol=1e-12)
