"""kg.grad, kg.jacobian, kg.hessian and kg.jvp: behaviour, values and scale.

Per-op derivative rules are checked in test_grad_ops.py, random expressions
in test_grad_random.py.
"""
import sys

import numpy as np
import pytest

import kgen as kg
import kgen as theano
import kgen.tensor as T

from _gradcheck import check_grad, numeric_grad


# ---- the seed program ---------------------------------------------------------------
def test_seed_program_gradient_matches_hand_derivation():
    rng = np.random.default_rng(0)
    x, y = T.vector("x"), T.vector("y")
    W = theano.shared(rng.standard_normal((10, 10)), name="W")
    b = theano.shared(rng.standard_normal(10), name="b")
    output = T.dot(W, x) + b
    cost = T.mean(T.square(output - y))
    dW, db = T.grad(cost, [W, b])

    xv, yv = rng.standard_normal(10), rng.standard_normal(10)
    r = W.get_value() @ xv + b.get_value() - yv  # cost = mean(r**2)
    values = {x: xv, y: yv}
    np.testing.assert_allclose(dW.eval(values), 2 / 10 * np.outer(r, xv), rtol=1e-12)
    np.testing.assert_allclose(db.eval(values), 2 / 10 * r, rtol=1e-12)
    kg.check_graph([dW, db])


# ---- what grad accepts and returns --------------------------------------------------
def test_single_or_list():
    x = T.dvector("x")
    cost = kg.sum(x * x)
    assert isinstance(kg.grad(cost, x), kg.Variable)
    gs = kg.grad(cost, [x, x])
    assert isinstance(gs, list) and len(gs) == 2 and gs[0] is gs[1]
    np.testing.assert_allclose(gs[0].eval({x: np.array([1.0, -2.0])}), [2.0, -4.0])


@pytest.mark.parametrize("bad", ["vector", "int", "bool"])
def test_cost_must_be_0d_float(bad):
    x = T.dvector("x")
    cost = {"vector": x * 2, "int": kg.sum(kg.cast(x, "int64")), "bool": kg.sum(x) > 0}[bad]
    with pytest.raises(TypeError, match="0-d float"):
        kg.grad(cost, x)
    with pytest.raises(TypeError):
        kg.grad(kg.sum(x), "x")


def test_disconnected_inputs():
    x, z = T.dvector("x"), T.dmatrix("z")
    cost = kg.sum(x)
    with pytest.raises(kg.DisconnectedInputError, match="'z'"):
        kg.grad(cost, [x, z])
    gx, gz = kg.grad(cost, [x, z], disconnected_inputs="ignore")
    np.testing.assert_array_equal(gz.eval({z: np.ones((2, 3))}), np.zeros((2, 3)))
    assert gz.dtype == "float64"
    with pytest.raises(ValueError):  # ('warn' is Theano's third choice: test_theano_extras)
        kg.grad(cost, x, disconnected_inputs="loud")


def test_integer_inputs_are_disconnected():
    x, k = T.dvector("x"), T.lvector("k")
    cost = kg.sum(x * k)
    with pytest.raises(kg.DisconnectedInputError, match="not float"):
        kg.grad(cost, k)
    gk = kg.grad(cost, k, disconnected_inputs="ignore")
    assert gk.dtype == kg.config.floatX
    np.testing.assert_array_equal(gk.eval({k: np.array([1, 2])}), [0.0, 0.0])
    values = {x: np.zeros(2), k: np.array([3, 4])}
    np.testing.assert_allclose(kg.grad(cost, x).eval(values), [3.0, 4.0])


def test_piecewise_constant_paths_give_zero_not_an_error():
    x = T.dvector("x")
    for y in (kg.floor(x), kg.cast(x > 0, "float64"), kg.cast(kg.cast(x, "int32"), "float64"),
              kg.stop_gradient(x), kg.sign(x) * 3.0):
        g = kg.grad(kg.sum(y), x)
        np.testing.assert_array_equal(g.eval({x: np.array([0.5, -1.5])}), [0.0, 0.0])


def test_consider_constant():
    x = T.dscalar("x")
    h = x * x
    cost = h * x
    g = kg.grad(cost, x, consider_constant=[h])
    assert float(g.eval({x: 3.0})) == 9.0  # h held constant: d(h * x)/dx = h
    with pytest.raises(kg.DisconnectedInputError):
        kg.grad(h * 2.0, x, consider_constant=[h])


def test_gradient_with_respect_to_an_intermediate():
    x = T.dvector("x")
    h = kg.exp(x)
    cost = kg.sum(h * h)
    gh, gx = kg.grad(cost, [h, x])
    v = np.array([0.1, 0.2])
    np.testing.assert_allclose(gh.eval({x: v}), 2 * np.exp(v))
    np.testing.assert_allclose(gx.eval({x: v}), 2 * np.exp(2 * v))


def test_float32_gradients_stay_float32():
    x, w = T.fmatrix("x"), T.dvector("w")
    cost = kg.sum(kg.tanh(x) * 0.5) + kg.sum(kg.cast(x, "float64") @ w)
    gx, gw = kg.grad(cost, [x, w])
    assert gx.dtype == "float32" and gw.dtype == "float64"
    xv = np.float32([[0.5, -0.5]])
    want = 0.5 * (1 - np.tanh(xv) ** 2) + np.array([1.0, 2.0])
    np.testing.assert_allclose(gx.eval({x: xv, w: np.array([1.0, 2.0])}), want, rtol=1e-6)
    f32_cost = kg.sum(kg.tanh(x))
    assert kg.grad(f32_cost, x).dtype == "float32"


def test_runtime_broadcasting_of_unknown_length_axes():
    # the static shapes say nothing; at run time a length-1 axis broadcasts
    x, y = T.dvector("x"), T.dvector("y")
    gx, gy = kg.grad(kg.sum(x * y), [x, y])
    values = {x: np.array([2.0]), y: np.array([1.0, 2.0, 3.0])}
    np.testing.assert_allclose(gx.eval(values), [6.0])
    np.testing.assert_allclose(gy.eval(values), [2.0, 2.0, 2.0])
    a, b = T.dmatrix("a"), T.dmatrix("b")
    rng = np.random.default_rng(0)
    check_grad(kg.exp(a) / (1 + b * b), {a: rng.random((3, 1)), b: rng.random((1, 4))}, [a, b])


def test_gradients_are_expressions_that_differentiate_again():
    x = T.dscalar("x")
    d1 = kg.grad(kg.sin(x) * x, x)
    d2 = kg.grad(d1, x)
    d3 = kg.grad(d2, x)
    v = 0.7
    np.testing.assert_allclose(float(d2.eval({x: v})), 2 * np.cos(v) - v * np.sin(v))
    np.testing.assert_allclose(float(d3.eval({x: v})), -3 * np.sin(v) - v * np.cos(v))
    assert "sin" in kg.pprint(d3)


def test_only_the_path_to_wrt_is_differentiated():
    x, z = T.dvector("x"), T.dvector("z")
    big = z
    for _ in range(200):
        big = kg.tanh(big) * 1.5
    g = kg.grad(kg.sum(x) + kg.sum(big), x)
    assert kg.graph_size(g) <= 3  # ones broadcast to x; nothing of z's branch


# ---- scale -------------------------------------------------------------------------
def test_ten_thousand_op_chain_at_the_default_recursion_limit():
    assert sys.getrecursionlimit() <= 1000 + 100  # pytest may add a little
    x = T.dscalar("x")
    y = x
    for i in range(10_000):
        y = kg.sin(y) if i % 2 else y * 1.0001
    g = kg.grad(y, x)
    v = {x: 0.3}
    want = numeric_grad(lambda vals: float(y.eval(vals)), v, x)
    np.testing.assert_allclose(float(g.eval(v)), want, rtol=1e-5)
    assert kg.graph_size(g) < 5 * kg.graph_size(y)


def test_gradient_of_a_reuse_heavy_dag_is_linear():
    # y_{k+1} = y_k * y_k + sin(y_k): 2**60 paths, 180 nodes
    x = T.dvector("x")
    y = x
    for _ in range(60):
        y = y * y * 0.1 + kg.sin(y)
    cost = kg.sum(y)
    g = kg.grad(cost, x)
    assert kg.graph_size(g) < 6 * kg.graph_size(cost)
    check_grad(cost, {x: np.array([0.01, -0.02])}, [x], rtol=1e-4)


# ---- jacobian, hessian, jvp --------------------------------------------------------------
def test_jacobian_of_a_vector_function():
    x = T.tensor("x", "float64", (3,))
    y = kg.exp(x) * x[0]
    J = kg.jacobian(y, x)
    v = np.array([0.1, 0.2, 0.3])
    want = np.diag(np.exp(v) * v[0])
    want[:, 0] += np.exp(v)
    np.testing.assert_allclose(J.eval({x: v}), want)


def test_jacobian_shape_is_expr_shape_plus_wrt_shape():
    rng = np.random.default_rng(0)
    W = T.tensor("W", "float64", (2, 3))
    x = T.dvector("x")  # size unknown: the rows come from the static expr size
    y = kg.tanh(kg.dot(W, kg.reshape(x, (3, 2))))  # (2, 2)
    J = kg.jacobian(y, [W, x])
    Wv, xv = rng.standard_normal((2, 3)), rng.standard_normal(6)
    JW, Jx = (j.eval({W: Wv, x: xv}) for j in J)
    assert JW.shape == (2, 2, 2, 3) and Jx.shape == (2, 2, 6)
    f = lambda vals: y.eval(vals)  # noqa: E731
    for i in np.ndindex(2, 2):
        want = numeric_grad(lambda vals: float(f(vals)[i]), {W: Wv, x: xv}, W)
        np.testing.assert_allclose(JW[i], want, rtol=1e-6, atol=1e-8)


def test_jacobian_by_columns_when_only_wrt_size_is_static():
    x = T.tensor("x", "float64", (2, 2))
    s = T.dvector("s")
    y = kg.sum(kg.sin(x), axis=1)[:, None] * s  # (2, ?): unknown size
    J = kg.jacobian(y, x)
    xv, sv = np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([1.0, 2.0, 3.0])
    got = J.eval({x: xv, s: sv})
    assert got.shape == (2, 3, 2, 2)
    want = np.zeros((2, 3, 2, 2))
    for i in range(2):
        for j in range(3):
            want[i, j, i, :] = np.cos(xv[i]) * sv[j]
    np.testing.assert_allclose(got, want)


def test_jacobian_of_unknown_sizes_is_a_scan():
    x = T.dvector("x")   # no static size: one row per step of a scan
    J = kg.jacobian(kg.exp(x), x)
    assert any(n.op is not None and n.op.name == "scan" for n in kg.toposort([J]))
    v = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(J.eval({x: v}), np.diag(np.exp(v)), rtol=1e-12)


def test_jacobian_of_a_scalar_is_the_gradient():
    x = T.dvector("x")
    assert kg.jacobian(kg.sum(x * x), x) is kg.grad(kg.sum(x * x), x)


def test_hessian():
    x = T.tensor("x", "float64", (3,))
    cost = kg.sum(x ** 3) + x[0] * x[1]
    H = kg.hessian(cost, x)
    v = np.array([1.0, 2.0, -1.0])
    want = np.diag(6 * v)
    want[0, 1] = want[1, 0] = 1.0
    np.testing.assert_allclose(H.eval({x: v}), want)
    A = T.tensor("A", "float64", (2, 2))
    HA = kg.hessian(kg.sum(A * A * A[0, 1]), A)
    assert HA.eval({A: np.ones((2, 2))}).shape == (2, 2, 2, 2)
    with pytest.raises(TypeError):
        kg.hessian(x * 2, x)


def test_jvp_matches_jacobian_times_tangent():
    rng = np.random.default_rng(0)
    W, x = T.dmatrix("W"), T.dvector("x")
    y = kg.tanh(kg.dot(W, x))
    z = kg.sum(y * y)
    Wv, xv = rng.standard_normal((3, 4)), rng.standard_normal(4)
    tW, tx = rng.standard_normal((3, 4)), rng.standard_normal(4)
    jy, jz = kg.jvp([y, z], [W, x], [tW, tx])
    values = {W: Wv, x: xv}
    yv = np.tanh(Wv @ xv)
    want_y = (1 - yv ** 2) * (tW @ xv + Wv @ tx)
    np.testing.assert_allclose(jy.eval(values), want_y)
    np.testing.assert_allclose(jz.eval(values), np.sum(2 * yv * want_y))
    # one output gives a variable, and unconnected or integer inputs add nothing
    k = T.lvector("k")
    single = kg.jvp(y, [x, k], [tx, np.array([1, 1])])
    np.testing.assert_allclose(single.eval(values), (1 - yv ** 2) * (Wv @ tx))
    assert "jvp_cotangent" not in kg.pprint(single)


def test_jvp_through_broadcasting_and_reductions_is_differentiable():
    a, b = T.dmatrix("a"), T.dvector("b")
    f = kg.max(kg.exp(a) * b, axis=0) + kg.sum(a * a)
    ta = np.array([[1.0, 0.5], [0.0, 2.0]])
    jv = kg.jvp(f, [a, b], [ta, np.array([1.0, -1.0])])
    av, bv = np.array([[0.1, 0.2], [0.3, -0.4]]), np.array([2.0, 3.0])
    fn = lambda vals: f.eval(vals)  # noqa: E731
    eps = 1e-6
    want = (fn({a: av + eps * ta, b: bv + eps * np.array([1.0, -1.0])})
            - fn({a: av - eps * ta, b: bv - eps * np.array([1.0, -1.0])})) / (2 * eps)
    np.testing.assert_allclose(jv.eval({a: av, b: bv}), want, rtol=1e-6)
    g = kg.grad(kg.sum(jv), a)  # a jvp is an expression like any other
    assert g.eval({a: av, b: bv}).shape == (2, 2)


def test_jvp_argument_errors():
    x = T.dvector("x")
    with pytest.raises(TypeError):
        kg.jvp(kg.exp(x), [x], [])
    with pytest.raises(TypeError):
        kg.jvp(kg.cast(x, "int64"), x, np.ones(2))
