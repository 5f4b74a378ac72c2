"""Every differentiable op's gradient against central finite differences.

Elementwise primitives come straight from the op registry (with each record's
input domain); the rest are one line each in the tables below. A last test
checks that registry and tables together reach every op whose record has a
derivative rule, so a new op cannot arrive untested.
"""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.expr.op import REGISTRY
from kgen.expr.ops.elementwise import Elementwise

from _gradcheck import check_grad, check_second_order, sample

def _inputs(rng, shapes, domain="any", static=True):
    """Float64 inputs of the given run-time shapes, declared either with those
    static shapes or with every axis unknown (so length-1 axes broadcast only
    at run time)."""
    xs, values = [], {}
    for k, shape in enumerate(shapes):
        x = T.tensor(f"x{k}", "float64", shape if static else (None,) * len(shape))
        xs.append(x)
        values[x] = sample(rng, domain, shape)
    return xs, values


def _check(fn, shapes, domain="any", static=True, second=False, seed=0):
    rng = np.random.default_rng(seed)
    xs, values = _inputs(rng, shapes, domain, static)
    expr = fn(*xs)
    check_grad(expr, values, xs, rng=rng)
    if second:
        check_second_order(expr, values, xs, rng=rng)


# ---- elementwise, from the registry ---------------------------------------------
def _elementwise(arity):
    return sorted(name for name, op in REGISTRY.items()
                  if isinstance(op, Elementwise) and op.arity == arity and callable(op.vjp_rule)
                  and name not in ("cast", "second"))


# derivatives that are not smooth at some points of the sampled domain
NOT_SMOOTH = {"abs", "relu", "maximum", "minimum", "mod"}


@pytest.mark.parametrize("name", _elementwise(1))
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_unary(name, shape):
    op = REGISTRY[name]
    _check(op, [shape], op.domain, second=name not in NOT_SMOOTH and shape == (2, 3))


BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
                   ((3, 4), ())]


@pytest.mark.parametrize("name", _elementwise(2))
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
def test_binary(name, shapes, static):
    op = REGISTRY[name]
    second = name not in NOT_SMOOTH and shapes == ((3, 1), (1, 4))
    _check(op, shapes, op.domain, static, second)


def test_mod_gradient_of_divisor():
    # d(a % b)/db = -floor(a / b), away from the jumps at a/b integer
    a, b = T.dvector("a"), T.dvector("b")
    values = {a: np.array([2.3, -3.7, 5.2]), b: np.array([1.1, 1.6, -2.1])}
    check_grad(a % b, values, [a, b])


def test_cast_gradient_keeps_input_dtype():
    x = T.fvector("x")
    cost = kg.sum(kg.cast(x, "float64") ** 2)
    g = kg.grad(cost, x)
    assert g.dtype == "float32"
    np.testing.assert_allclose(g.eval({x: np.float32([1, 2])}), [2, 4])


@pytest.mark.parametrize("name", sorted(n for n, op in REGISTRY.items()
                                        if isinstance(op, Elementwise) and op.vjp_rule == "zero"))
def test_piecewise_constant_ops_pass_zero(name):
    op = REGISTRY[name]
    x = T.dvector("x")
    value = np.array([0.3, -1.7, 2.5])
    if getattr(op, "indexed", False):  # a random draw: x lends its shape
        params = {"random_binomial": (np.int64(3), 0.5),
                  "random_integers": (np.int64(0), np.int64(5))}.get(name, ())
        y = op(x, np.int64(1), np.int64(2), *params, dtype="float64")
    elif op.arity == 1:
        y = op(x > 0) if name == "invert" else op(x)
    else:
        y = op(x > 0, x < 1) if name in ("and", "or") else op(x, 0.7)
    g = kg.grad(kg.sum(kg.cast(y, "float64") * x), x)
    np.testing.assert_allclose(g.eval({x: value}), kg.cast(y, "float64").eval({x: value}))


# ---- reductions ---------------------------------------------------------------------
REDUCTIONS = ["sum", "mean", "prod", "max", "min", "var", "std", "logsumexp"]
AXES = [None, 0, 1, (0, 2), -1]


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction(name, axis, keepdims):
    fn = getattr(kg, name)
    smooth = name not in ("max", "min")
    _check(lambda x: fn(x, axis=axis, keepdims=keepdims), [(2, 3, 4)],
           static=axis != 1, second=smooth and axis == 1)


def test_prod_with_zeros():
    x = T.dmatrix("x")
    value = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.5, 2.0, -1.0]])
    g = kg.grad(kg.sum(kg.prod(x, axis=1) * np.array([1.0, 2.0, 3.0])), x)
    want = [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-6.0, -4.5, 9.0]]
    np.testing.assert_allclose(g.eval({x: value}), want)
    # one zero: d/dx_i of prod is the product of the others (finite differences agree)
    check_grad(kg.prod(x, axis=0), {x: value}, [x])
    # the gradient stays finite where the naive prod/x would divide by zero
    h = kg.grad(kg.sum(g * g), x)
    assert np.all(np.isfinite(h.eval({x: value})))


def test_cumprod_with_zeros():
    # exact where a line has one or more zeros (Theano's out / x is NaN there);
    # the gradient stays finite, as prod's (its second derivative there is not checked)
    x = T.dmatrix("x")
    value = np.array([[1.5, 0.0, 2.0, -1.0, 0.0, 3.0], [0.0, 2.0, 0.5, 1.0, 1.0, 2.0],
                      [1.0, 2.0, 3.0, 0.5, -2.0, 0.0], [1.0, 2.0, 3.0, 0.5, -2.0, 1.2]])
    check_grad(T.cumprod(x, axis=1), {x: value}, [x])
    check_grad(T.cumprod(x.T, axis=0), {x: value}, [x])
    g = kg.grad(kg.sum(T.cumprod(x, axis=1)), x)
    h = kg.grad(kg.sum(g * g), x)
    assert np.all(np.isfinite(kg.function([x], h)(value)))
    np.testing.assert_allclose(kg.function([x], g)(value), g.eval({x: value}))


def test_max_ties_split_the_gradient_evenly():
    x = T.dmatrix("x")
    value = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    for fn in (kg.max, kg.min):
        g = kg.grad(kg.sum(fn(x, axis=1) * np.array([1.0, 6.0])), x).eval({x: value})
        row0 = [0.0, 0.5, 0.5] if fn is kg.max else [1.0, 0.0, 0.0]
        np.testing.assert_allclose(g, [row0, [2.0, 2.0, 2.0]])


def test_maximum_ties_and_clip_bounds():
    x, y = T.dvector("x"), T.dvector("y")
    gx, gy = kg.grad(kg.sum(kg.maximum(x, y)), [x, y])
    values = {x: np.array([1.0, 2.0]), y: np.array([1.0, 3.0])}
    np.testing.assert_allclose(gx.eval(values), [1.0, 0.0])  # a tie goes to the first argument
    np.testing.assert_allclose(gy.eval(values), [0.0, 1.0])
    g = kg.grad(kg.sum(kg.clip(x, 0.0, 1.0)), x)
    np.testing.assert_allclose(g.eval({x: np.array([-1.0, 0.0, 0.5, 1.0, 2.0])}),
                               [0.0, 1.0, 1.0, 1.0, 0.0])  # bounds pass the gradient, as Theano


def test_abs_and_relu_at_zero():
    x = T.dvector("x")
    value = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(kg.grad(kg.sum(abs(x)), x).eval({x: value}), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(kg.grad(kg.sum(kg.relu(x)), x).eval({x: value}), [0.0, 0.0, 1.0])


def test_argmax_passes_zero():
    x = T.dmatrix("x")
    y = kg.cast(kg.argmax(x, axis=1), "float64") + kg.cast(kg.argmin(x), "float64")
    g = kg.grad(kg.sum(y) + kg.sum(x), x)
    np.testing.assert_allclose(g.eval({x: np.ones((2, 3))}), np.ones((2, 3)))


# ---- linear algebra and neural-net functions: (function, input shapes) -------------
TABLE = {
    "dot_1_1": (kg.dot, [(4,), (4,)]),
    "dot_1_2": (kg.dot, [(4,), (4, 3)]),
    "dot_2_1": (kg.dot, [(2, 4), (4,)]),
    "dot_2_2": (kg.dot, [(2, 4), (4, 3)]),
    "dot_0_1": (kg.dot, [(), (3,)]),
    "dot_2_0": (kg.dot, [(2, 3), ()]),
    "matmul_operator": (lambda a, b: a @ b, [(2, 3), (3, 2)]),
    "matmul_3_3": (kg.matmul, [(2, 3, 4), (2, 4, 5)]),
    "matmul_3_2": (kg.matmul, [(2, 3, 4), (4, 5)]),
    "matmul_batch_broadcast": (kg.matmul, [(1, 3, 4), (2, 4, 5)]),
    "matmul_2_3": (kg.matmul, [(3, 4), (2, 4, 5)]),
    "outer": (kg.outer, [(3,), (4,)]),
    "softmax_last": (lambda x: T.nnet.softmax(x), [(3, 4)]),
    "softmax_0": (lambda x: T.nnet.softmax(x, axis=0), [(3, 4)]),
    "log_softmax_last": (lambda x: kg.log_softmax(x), [(3, 4)]),
    "log_softmax_0": (lambda x: kg.log_softmax(x, axis=0), [(3, 4)]),
    "sigmoid_softplus": (lambda x: T.nnet.sigmoid(x) * T.nnet.softplus(-x), [(5,)]),
    "where_mask": (lambda a, b: kg.where(np.array([True, False, True, False]), a, b),
                   [(3, 4), (4,)]),
    "where_cond": (lambda a, b: kg.where(a > 0, a * b, -b), [(3, 1), (1, 4)]),
    "second": (lambda x, v: kg.second(x, v) * x, [(3, 4), (1, 4)]),
    "clip": (lambda x: kg.clip(x, -1.0, 1.0), [(6,)]),
    # Theano's everyday names (compositions in kgen/expr/ops/everyday.py)
    "add_mul_n": (lambda a, b: T.add(a, b, a * b) * T.mul(a, b, 2.0), [(3, 4), (4,)]),
    "sqr_pow_true_div": (lambda a, b: T.sqr(a) + T.pow(abs(a), b) + T.true_div(a, b),
                         [(3,), (3,)]),
    "xlogx": (lambda x: T.xlogx.xlogx(abs(x)), [(5,)]),
    "xlogy0": (lambda x, y: T.xlogx.xlogy0(x, abs(y)), [(3, 4), (4,)]),
    "alloc": (lambda v, x: T.alloc(v, x.shape[0], 4) * x, [(4,), (3, 4)]),
    "fill": (lambda x, v: T.fill(x, v) * x, [(3, 4), ()]),
    "tile": (lambda x: T.tile(x, (2, 3)), [(2, 3)]),
    "repeat": (lambda x: T.repeat(x, 2, axis=0), [(2, 3)]),
    "repeat_flat": (lambda x: T.repeat(x, 3), [(2, 2)]),
    "join": (lambda a, b: T.join(1, a, b, a), [(2, 3), (2, 1)]),
    "dot_3_2": (T.dot, [(2, 3, 4), (4, 5)]),
    "dot_2_3": (T.dot, [(3, 4), (2, 4, 5)]),
    "dot_3_1": (T.dot, [(2, 3, 4), (4,)]),
    "tensordot_pairs": (lambda a, b: T.tensordot(a, b, [[0, 2], [2, 0]]), [(2, 3, 4), (4, 5, 2)]),
    "tensordot_2": (T.tensordot, [(2, 3, 4), (3, 4, 2)]),
    "batched_dot_3_3": (T.batched_dot, [(2, 3, 4), (2, 4, 5)]),
    "batched_dot_2_2": (T.batched_dot, [(3, 4), (3, 4)]),
    "batched_dot_3_2": (T.batched_dot, [(2, 3, 4), (2, 4)]),
    "sum_acc_dtype": (lambda x: T.sum(x, axis=0, acc_dtype="float64", dtype="float64"), [(3, 4)]),
    "mean_dtype": (lambda x: T.mean(x, axis=1, dtype="float64"), [(3, 4)]),
    "set_subtensor_slice": (lambda x, y: T.set_subtensor(x[1:3, ::2], y), [(4, 3), (2,)]),
    "inc_subtensor_int": (lambda x, y: T.inc_subtensor(x[:, -1], y), [(4, 3), (4,)]),
    "inc_subtensor_idx": (lambda x, y: T.inc_subtensor(x[np.array([0, 2, 0])], y), [(3, 4), (4,)]),
    "set_subtensor_idx": (lambda x, y: T.set_subtensor(x[np.array([2, 0])], y),
                          [(3, 4), (2, 4)]),
    "inc_subtensor_idx_slice": (lambda x, y: T.inc_subtensor(x[np.array([0, 2, 0]), 1:], y),
                                [(3, 4), (3,)]),
    "set_subtensor_idx_slice": (lambda x, y: T.set_subtensor(x[np.array([2, 0]), ::2], y),
                                [(3, 4), (2, 2)]),
    "set_subtensor_idx_repeated": (lambda x, y: T.set_subtensor(x[np.array([1, 1])], y),
                                   [(3, 2), (2,)]),
    "specify_shape": (lambda x: T.specify_shape(x, (2, None)) * x, [(2, 3)]),
    "cumsum_axis1": (lambda x: T.cumsum(x, axis=1), [(2, 3, 4)]),
    "cumsum_flat": (T.cumsum, [(3, 4)]),
    "cumprod_axis0": (lambda x: T.cumprod(x, axis=0), [(4, 3)]),
    "cumprod_flat": (T.cumprod, [(2, 3)]),
    "sort_last": (T.sort, [(3, 5)]),
    "sort_axis0": (lambda x: T.sort(x, axis=0) * x, [(4, 2)]),
    "sort_flat": (lambda x: T.sort(x, axis=None), [(2, 3)]),
}
NOT_SMOOTH_TABLE = {"clip", "xlogx", "xlogy0", "sqr_pow_true_div"}


@pytest.mark.parametrize("case", sorted(TABLE))
@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
def test_table(case, static):
    fn, shapes = TABLE[case]
    _check(fn, shapes, static=static, second=static and case not in NOT_SMOOTH_TABLE)


def test_softmax_is_stable_and_exact_at_large_arguments():
    x = T.dvector("x")
    g = kg.grad(kg.sum(kg.log_softmax(x) * np.array([1.0, 0.0, 0.0])), x)
    np.testing.assert_allclose(g.eval({x: np.array([1000.0, 0.0, -1000.0])}), [0.0, -0.0, -0.0],
                               atol=1e-300)


def test_crossentropies():
    rng = np.random.default_rng(3)
    p, t = T.dmatrix("p"), T.dmatrix("t")
    values = {p: rng.uniform(0.1, 0.9, (3, 4)), t: rng.uniform(0, 1, (3, 4))}
    check_grad(T.nnet.categorical_crossentropy(p, t), values, [p, t])
    check_grad(T.nnet.binary_crossentropy(p, t), values, [p, t])
    labels = T.lvector("y")
    nll = T.nnet.categorical_crossentropy(p, labels)
    check_grad(nll, {p: values[p], labels: np.array([1, 3, 3])}, [p])


# ---- shape ops and indexing ----------------------------------------------------------
SHAPE_CASES = {
    "scan": (lambda x: kg.scan(lambda v, acc: acc * 0.5 + v * v, sequences=x,
                               outputs_info=kg.zeros_like(x[0]))[0], [(3, 2)]),
    "reshape": (lambda x: kg.reshape(x, (4, 6)), [(2, 3, 4)]),
    "reshape_symbolic": (lambda x: kg.reshape(x, (x.shape[0] * x.shape[1], -1)), [(2, 3, 4)]),
    "transpose": (lambda x: kg.transpose(x, (2, 0, 1)), [(2, 3, 4)]),
    "T": (lambda x: x.T, [(2, 3)]),
    "dimshuffle": (lambda x: x.dimshuffle(1, "x", 0), [(2, 3)]),
    "dimshuffle_drop": (lambda x: x.dimshuffle(1), [(1, 3)]),
    "flatten": (lambda x: kg.flatten(x), [(2, 3, 4)]),
    "flatten2": (lambda x: kg.flatten(x, 2), [(2, 3, 4)]),
    "expand_dims": (lambda x: kg.expand_dims(x, (0, 2)), [(2, 3)]),
    "squeeze": (lambda x: kg.squeeze(x), [(2, 1, 3)]),
    "concatenate0": (lambda a, b: kg.concatenate([a, b, a]), [(2, 3), (4, 3)]),
    "concatenate1": (lambda a, b: kg.concatenate([a, b], axis=1), [(2, 3), (2, 1)]),
    "stack": (lambda a, b: kg.stack([a, b, a * b], axis=1), [(2, 3), (2, 3)]),
    "index_int": (lambda x: x[1], [(3, 4)]),
    "index_slices": (lambda x: x[1:, ::-2], [(3, 5)]),
    "index_newaxis": (lambda x: x[None, -1, 1:3], [(3, 5)]),
    "index_ellipsis": (lambda x: x[..., 0], [(2, 3, 4)]),
    "gather_repeated": (lambda x: x[np.array([2, 0, 2, 2])], [(3, 4)]),
    "gather_2d": (lambda x: x[np.array([0, 2, 2]), np.array([1, 1, 3])], [(3, 4)]),
    "gather_then_slice": (lambda x: x[np.array([[1, 1], [0, 1]]), 1:], [(2, 3)]),
    # the dedicated conv and max-pool ops; second order runs their gradient ops' rules
    "conv2d": (lambda x, w: T.nnet.conv2d(x, w, filter_shape=(2, 1, 2, 2), border_mode="half",
                                          subsample=(2, 1)), [(1, 1, 4, 3), (2, 1, 2, 2)]),
    "max_pool_2d": (lambda x: T.signal.pool.pool_2d(x, (2, 2)), [(1, 2, 4, 5)]),
}


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
def test_shape_ops(case, static):
    fn, shapes = SHAPE_CASES[case]
    _check(lambda *xs: kg.sin(fn(*xs)), shapes, static=static, second=True)


def test_integer_array_indexing_scatter_adds_repeated_indices():
    x, y = T.dmatrix("x"), T.lvector("y")
    value = np.arange(12.0).reshape(4, 3)
    nll = -kg.sum(kg.log(x[kg.arange(4), y]))
    g = kg.grad(nll, x).eval({x: value + 1, y: np.array([0, 2, 2, 1])})
    want = np.zeros((4, 3))
    want[[0, 1, 2, 3], [0, 2, 2, 1]] = -1 / (value + 1)[[0, 1, 2, 3], [0, 2, 2, 1]]
    np.testing.assert_allclose(g, want)
    # the same row picked three times: its gradient is three times as large
    rows = T.lvector("rows")
    g = kg.grad(kg.sum(x[rows] * 2.0), x).eval({x: value, rows: np.array([1, 1, 3, 1])})
    np.testing.assert_allclose(g, [[0] * 3, [6] * 3, [0] * 3, [2] * 3])


def test_gather_second_order():
    rows = np.array([0, 2, 2])
    _check(lambda x: kg.exp(x[rows]) * x[rows[::-1]], [(3, 2)], second=True)


def _forward_graphs():
    """One forward expression per table entry (built, not evaluated)."""
    def build(fn, shapes):
        return fn(*(T.tensor(f"x{k}", "float64", s) for k, s in enumerate(shapes)))
    for fn, shapes in list(TABLE.values()) + list(SHAPE_CASES.values()):
        yield build(fn, shapes)
    yield from (build(getattr(kg, name), [(2, 3, 4)]) for name in REDUCTIONS)
    yield build(lambda x: x[np.array([0, 1])], [(3, 2)])


def test_every_differentiable_op_is_covered():
    """The registry-generated elementwise tests and the tables reach every op
    record with a derivative rule."""
    covered = set(_elementwise(1)) | set(_elementwise(2)) | {"cast"}
    for expr in _forward_graphs():
        covered.update(n.op.name for n in kg.toposort([expr]) if n.op is not None)
    rules = {name for name, op in REGISTRY.items() if callable(op.vjp_rule)}
    # helper ops that only gradients build: their rules run in the second-order checks
    rules -= {"subtensor_grad", "scatter_add", "split_part", "sum_to", "conv2d_grad_input",
              "conv2d_grad_filters", "max_pool_2d_grad", "max_pool_2d_gradgrad"}
    missing = rules - covered
    assert not missing, f"ops with a vjp_rule but no gradient test: {sorted(missing)}"
