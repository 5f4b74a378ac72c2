"""Issue 11's smaller Theano idioms: truthiness, theano.pp / printing.debugprint,
T.Rop / T.Lop / grad(known_grads=), and x.shape as a value.

Oracles: Theano's documented answers (its Rop/Lop tutorial), NumPy, central
finite differences and hand-derived derivatives.
"""
import io

import numpy as np
import pytest

import kgen as theano
import kgen as kg
import kgen.tensor as T


def test_variables_are_truthy_and_eq_is_identity():
    W = kg.shared(np.zeros(2), "W")
    x = T.dvector("x")
    taken = []
    for v in (W, x, x + 1, x.sum(), x.shape, T.dscalar().shape):
        if not v:
            taken.append(v)
    assert taken == []
    assert (x == x) is True and (x == W) is False


# ---- printing --------------------------------------------------------------------------
def test_pp_is_pprint():
    x = T.dvector("x")
    assert theano.pp(x * 2 + 1) == kg.pprint(x * 2 + 1) == theano.printing.pp(x * 2 + 1)


def test_debugprint_draws_theanos_tree():
    x = T.dvector("x")
    e = T.exp(x)
    e.name = "e"
    text = theano.printing.debugprint(e + x, file="str")
    assert text == ("add [id A] ''\n"
                    " |exp [id B] 'e'\n"
                    " | |x [id C]\n"
                    " |x [id C]\n")
    # a node met again prints one line; print_type adds the type
    y = (x * e).sum() + e.sum()
    lines = theano.printing.debugprint(y, file="str", print_type=True).splitlines()
    assert lines[0] == "add [id A] <float64[]> ''"
    assert lines[1].startswith(" |sum{axis=(0,),keepdims=False} [id B]")
    assert lines[2] == " | |mul [id C] <float64[?]> ''"
    assert lines[-1] == "   |exp [id E] <float64[?]> 'e'"  # seen before: not expanded again
    assert sum(1 for line in lines if "[id E]" in line) == 2


def test_debugprint_prints_lists_and_functions():
    x = T.dvector("x")
    out = io.StringIO()
    assert theano.printing.debugprint([x * 2, x + 1], file=out) is out
    assert out.getvalue().splitlines()[0] == "mul [id A] ''"
    assert "add [id D] ''\n |x [id B]\n" in out.getvalue()  # x keeps its id
    f = kg.function([x], T.log(1 + x))
    text = theano.printing.debugprint(f, file="str")
    # the compiled graph, each op followed by its place in the topological order
    assert text.splitlines()[0] == "log1p [id A] ''   0"
    assert theano.printing.debugprint(x, file="str", ids="") == "x\n"
    with pytest.raises(TypeError, match="cannot print"):
        theano.printing.debugprint(object(), file="str")


def test_debugprint_goes_to_stdout(capsys):
    x = T.dvector("x")
    theano.printing.debugprint(x.sum())
    assert capsys.readouterr().out.startswith("sum{axis=(0,),keepdims=False} [id A] ''")


def test_pydotprint_says_it_is_unavailable():
    with pytest.raises(RuntimeError, match="pydotprint is not available.*debugprint"):
        theano.printing.pydotprint(T.dvector("x"))


# ---- Rop, Lop, known_grads -----------------------------------------------------------------
def test_rop_and_lop_give_theanos_documented_answers():
    # Theano's "Derivatives in Theano" tutorial, R-operator and L-operator sections
    W, V = T.dmatrices("W", "V")
    x, v = T.dvector("x"), T.dvector("v")
    y = T.dot(x, W)
    JV = T.Rop(y, W, V)
    f = kg.function([W, V, x], JV)
    np.testing.assert_array_equal(f([[1, 1], [1, 1]], [[2, 2], [2, 2]], [0, 1]), [2.0, 2.0])
    VJ = T.Lop(y, W, v)
    g = kg.function([v, x], VJ)
    np.testing.assert_array_equal(g([2, 2], [0, 1]), [[0.0, 0.0], [2.0, 2.0]])


def _numeric_jacobian(fn, a, eps=1e-6):
    cols = []
    for k in range(a.size):
        d = np.zeros_like(a)
        d.flat[k] = eps
        cols.append((fn(a + d) - fn(a - d)) / (2 * eps))
    return np.stack(cols, axis=-1)  # output axes, then the input's (flattened)


def test_rop_and_lop_against_finite_differences():
    x = T.dvector("x")
    y = T.tanh(x) * x.sum() + T.exp(x[::-1])
    numpy_y = lambda a: np.tanh(a) * a.sum() + np.exp(a[::-1])  # noqa: E731
    a = np.array([0.3, -0.5, 1.1])
    t, u = np.array([1.0, 2.0, -1.0]), np.array([0.5, -1.0, 2.0])
    J = _numeric_jacobian(numpy_y, a)
    v = T.dvector("v")
    np.testing.assert_allclose(T.Rop(y, x, v).eval({x: a, v: t}), J @ t, rtol=1e-7)
    np.testing.assert_allclose(T.Lop(y, x, v).eval({x: a, v: u}), u @ J, rtol=1e-7)
    # lists in, lists out
    z = T.dscalar("z")
    outs = T.Rop([y, y * z], [x, z], [v, T.constant(1.0)])
    assert isinstance(outs, list) and len(outs) == 2
    np.testing.assert_allclose(outs[1].eval({x: a, v: t, z: 2.0}), 2 * J @ t + numpy_y(a))
    grads = T.Lop([y.sum()], [x, z], [T.constant(1.0)], disconnected_inputs="ignore")
    np.testing.assert_allclose(grads[0].eval({x: a}), J.sum(axis=0), rtol=1e-7)
    with pytest.raises(TypeError, match="eval point"):
        T.Lop(y, x, T.dmatrix())
    with pytest.raises(TypeError, match="2 wrt but 1 eval point"):
        T.Rop(y, [x, z], [v])


def test_grad_with_known_grads():
    x = T.dvector("x")
    h = T.tanh(x)
    a = np.array([0.0, 1.0, -2.0])
    # cost=None: backpropagate a given gradient at h (3 everywhere) to x
    g = T.grad(None, x, known_grads={h: T.ones_like(h) * 3})
    np.testing.assert_allclose(g.eval({x: a}), 3 * (1 - np.tanh(a) ** 2), rtol=1e-14)
    # with a cost: the known gradient replaces what flows into h from above
    w = T.dvector("w")
    cost = (h * w).sum() + (w ** 2).sum()
    gx, gw = T.grad(cost, [x, w], known_grads={h: T.constant(np.ones(3))})
    wv = np.array([5.0, 6.0, 7.0])
    np.testing.assert_allclose(gx.eval({x: a, w: wv}), 1 - np.tanh(a) ** 2, rtol=1e-14)
    np.testing.assert_allclose(gw.eval({x: a, w: wv}), np.tanh(a) + 2 * wv, rtol=1e-14)
    with pytest.raises(TypeError, match="cost is None and no known_grads"):
        T.grad(None, x)
    with pytest.raises(TypeError, match="known_grads gives a 0-d gradient"):
        T.grad(None, x, known_grads={h: T.constant(1.0)})


def test_grad_disconnected_inputs_warn():
    x, y = T.dvectors("x", "y")
    with pytest.warns(UserWarning, match="disconnected"):
        g = T.grad(x.sum(), y, disconnected_inputs="warn")
    np.testing.assert_array_equal(g.eval({y: np.ones(2)}), [0.0, 0.0])


# ---- x.shape as a value ----------------------------------------------------------------
def test_shape_vector_as_a_function_output():
    x = T.dmatrix("x")
    f = kg.function([x], x.shape)
    r = f(np.ones((3, 4)))
    assert isinstance(r, np.ndarray) and r.dtype == np.int64 and r.tolist() == [3, 4]
    both = kg.function([x], [x.shape, x.sum()])(np.ones((2, 5)))
    assert both[0].tolist() == [2, 5] and both[1] == 10.0
    s = T.dscalar("s")
    assert kg.function([s], s.shape)(1.0).shape == (0,)
    g = kg.function([x], [x.shape * 2, x.shape.prod(), T.zeros(x.shape) + x])
    twice, size, z = g(np.full((2, 3), 7.0))
    assert twice.tolist() == [4, 6] and size == 6
    np.testing.assert_array_equal(z, np.full((2, 3), 7.0))
    static = T.tensor("t", shape=(3, None))
    assert kg.function([static], static.shape)(np.ones((3, 8))).tolist() == [3, 8]
