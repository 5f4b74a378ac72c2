"""A constant as the first operand of any op: the simplifier reads algebraic
facts (commutative, identity, absorbing...) off every node's op, so every op
has them, and each of these compiles and matches NumPy.

Before the facts lived on the base Op, `kg.dot(np.ones((3, 3)), x)` raised
`AttributeError: 'MatMul' object has no attribute 'commutative'`, and so did
concatenate, stack, a constant table indexed by an int vector, and the
`sum_to(constant, x)` in every gradient of `(out * R).sum()`."""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.expr.op import REGISTRY, Op
from kgen.expr.evaluate import evaluate

from _gradcheck import numeric_grad

FACTS = ("commutative", "associative", "identity", "absorbing", "involution", "idempotent",
         "inverse", "parity", "vjp_rule")


def test_every_op_has_every_fact():
    for name, op in REGISTRY.items():
        for fact in FACTS:
            assert hasattr(op, fact), (name, fact)
    # the defaults claim nothing
    bare = Op.__new__(Op)
    assert not bare.commutative and not bare.associative and not bare.involution
    assert bare.identity is bare.absorbing is bare.inverse is bare.parity is None


RNG = np.random.default_rng(0)
K33 = RNG.uniform(-1, 1, (3, 3))
K3 = RNG.uniform(-1, 1, 3)
TABLE = RNG.uniform(-1, 1, (5, 3))


def _cases():
    x = kg.matrix("x")
    v = kg.vector("v")
    i = kg.lvector("i")
    X = RNG.uniform(-1, 1, (3, 3))
    V = RNG.uniform(-1, 1, 3)
    I = np.array([4, 0, 0, 2])
    return [
        ("dot_mm", [x], lambda: kg.dot(np.ones((3, 3)), x), [X], lambda X: np.ones((3, 3)) @ X),
        ("dot_mv", [v], lambda: kg.dot(K33, v), [V], lambda V: K33 @ V),
        ("dot_vm", [x], lambda: kg.dot(K3, x), [X], lambda X: K3 @ X),
        ("dot_vv", [v], lambda: kg.dot(K3, v), [V], lambda V: K3 @ V),
        ("matmul_op", [x], lambda: kg.constant(K33) @ x, [X], lambda X: K33 @ X),
        ("outer", [v], lambda: kg.outer(K3, v), [V], lambda V: np.outer(K3, V)),
        ("concat", [x], lambda: kg.concatenate([np.ones((3, 3)), x]), [X],
         lambda X: np.concatenate([np.ones((3, 3)), X])),
        ("concat_axis1", [x], lambda: kg.concatenate([K33, x, K33], axis=1), [X],
         lambda X: np.concatenate([K33, X, K33], axis=1)),
        ("stack", [x], lambda: kg.stack([np.ones((3, 3)), x]), [X],
         lambda X: np.stack([np.ones((3, 3)), X])),
        ("stack_vec", [v], lambda: kg.stack([K3, v, K3], axis=1), [V],
         lambda V: np.stack([K3, V, K3], axis=1)),
        ("table", [i], lambda: kg.constant(TABLE)[i], [I], lambda I: TABLE[I]),
        ("table_2d", [i], lambda: kg.constant(TABLE)[i, i % 3], [I], lambda I: TABLE[I, I % 3]),
        ("arange_table", [i], lambda: kg.arange(5)[i] * 2, [I], lambda I: np.arange(5)[I] * 2),
        ("where_const", [v], lambda: kg.where(K3 > 0, K3, v), [V],
         lambda V: np.where(K3 > 0, K3, V)),
        ("sub_const", [x], lambda: K33 - x, [X], lambda X: K33 - X),
        ("div_const", [x], lambda: K33 / (x * x + 1), [X], lambda X: K33 / (X * X + 1)),
        ("pow_const", [v], lambda: 2.0 ** v, [V], lambda V: 2.0 ** V),
        ("max_const", [x], lambda: kg.maximum(K33, x), [X], lambda X: np.maximum(K33, X)),
        ("reshape_const", [v], lambda: kg.reshape(K33, (9,))[:3] + v, [V],
         lambda V: K33.reshape(9)[:3] + V),
        ("sum_const", [v], lambda: kg.sum(K33, axis=0) * v, [V], lambda V: K33.sum(0) * V),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_constant_first_operand_compiles(case):
    _, inputs, build, args, want = case
    out = build()
    f = kg.function(inputs, out)
    np.testing.assert_allclose(f(*args), want(*args), rtol=1e-12, atol=1e-12)
    simple = kg.simplify(out)
    got, = evaluate([simple], dict(zip(inputs, args)))
    np.testing.assert_allclose(got, want(*args), rtol=1e-12, atol=1e-12)


def test_simplify_of_constant_first_ops_alone():
    # the crash was in the simplifier itself: no build needed to see it
    x = kg.matrix("x")
    for expr in (kg.dot(np.ones((3, 3)), x), kg.concatenate([np.ones((3, 3)), x]),
                 kg.stack([np.ones((3, 3)), x]), kg.constant(TABLE)[kg.lvector("i")]):
        kg.check_graph(kg.simplify(expr))


R = np.arange(6.0).reshape(2, 3) - 2.5


@pytest.mark.parametrize("shape", [(2, 3), (None, None), (2, None)])
def test_gradient_of_cost_weighted_by_constant_array(shape):
    """(out * R).sum() with R a constant array: its gradient has sum_to(R, x)."""
    w = T.tensor("w", "float64", shape)
    out = kg.tanh(w) * 2.0
    cost = (out * R).sum()
    g = kg.grad(cost, w)
    f = kg.function([w], [cost, g])
    W = np.random.default_rng(1).uniform(-1, 1, (2, 3))
    c, gv = f(W)
    np.testing.assert_allclose(c, np.sum(np.tanh(W) * 2.0 * R), rtol=1e-12)
    want = numeric_grad(lambda vals: float(cost.eval(vals)), {w: W}, w)
    np.testing.assert_allclose(gv, want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gv, 2.0 * R * (1 - np.tanh(W) ** 2), rtol=1e-12)


def test_gradient_with_broadcast_constant_weight():
    """R broadcasts against out (a row of weights): sum_to(R * g, x) reduces it."""
    w = kg.matrix("w")
    b = kg.vector("b")
    Rrow = np.array([1.0, -2.0, 0.5])
    cost = ((kg.dot(w, b) [:, None] + w) * Rrow).sum()
    gw, gb = kg.grad(cost, [w, b])
    f = kg.function([w, b], [gw, gb])
    W = np.random.default_rng(2).uniform(-1, 1, (4, 3))
    B = np.random.default_rng(3).uniform(-1, 1, 3)
    got_w, got_b = f(W, B)
    vals = {w: W, b: B}
    np.testing.assert_allclose(got_w, numeric_grad(lambda v: float(cost.eval(v)), vals, w),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(got_b, numeric_grad(lambda v: float(cost.eval(v)), vals, b),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("da, db", [("float32", "float64"), ("float64", "float32"),
                                    ("int32", "int64"), ("int32", "float32"),
                                    ("int64", "float64"), ("float32", "int32")])
@pytest.mark.parametrize("shapes", [((3, 4), (4,)), ((4,), (4, 2)), ((3, 4), (4, 2)), ((4,), (4,))])
def test_matmul_of_mixed_dtypes(da, db, shapes):
    """NumPy promotes; the GEMM once read the narrower operand as the wider
    type (out of bounds). Found with a float32 constant first, as above."""
    sa, sb = shapes
    a = T.tensor("a", da, (None,) * len(sa))
    b = T.tensor("b", db, (None,) * len(sb))
    rng = np.random.default_rng(4)
    A = (rng.uniform(-2, 2, sa) * 3).astype(da)
    B = (rng.uniform(-2, 2, sb) * 3).astype(db)
    want = A @ B
    for expr in (kg.dot(a, b), kg.dot(kg.constant(A), b), kg.dot(a, kg.constant(B))):
        f = kg.function([a, b], expr)
        got = f(A, B)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_gradient_of_a_mixed_dtype_matmul():
    w = T.tensor("w", "float32", (None, None))
    x = T.tensor("x", "float64", (None,))
    cost = kg.sum(kg.dot(w, x) ** 2)
    gw, gx = kg.grad(cost, [w, x])
    f = kg.function([w, x], [gw, gx])
    W = np.random.default_rng(5).uniform(-1, 1, (3, 4)).astype(np.float32)
    X = np.random.default_rng(6).uniform(-1, 1, 4)
    got_w, got_x = f(W, X)
    r = W.astype(np.float64) @ X
    assert got_w.dtype == np.float32 and got_x.dtype == np.float64
    np.testing.assert_allclose(got_w, 2 * np.outer(r, X), rtol=1e-5)
    np.testing.assert_allclose(got_x, 2 * W.astype(np.float64).T @ r, rtol=1e-6)
