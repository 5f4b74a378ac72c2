"""Sizes proven equal without being known: per-axis shape classes in the
simplifier (kgen/simplify/shapes.py) and checked-equal dims in the lowering
(IntBuilder.canon). A matrix product's inner sizes are checked equal before
any step runs, so the gradient of an autoencoder's cost needs no `sum_to`
where its shapes can only be equal, and the loops after it index one size,
not two. Where broadcasting can really happen the reductions stay, and the
answers are NumPy's either way."""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.expr.graph import toposort
from kgen.simplify.driver import Context


def _ops(outputs):
    return [n.op.name for n in toposort(outputs) if n.op is not None]


def _context(outputs):
    return Context(outputs, lambda parent, node: False)


def test_a_product_joins_its_inner_sizes():
    x, W, h = T.matrix("x"), T.matrix("W"), T.matrix("h")
    hidden = T.dot(x, W)          # x.shape[1] == W.shape[0], checked
    back = T.dot(h, W.T)          # (h rows, W.shape[0])
    ctx = _context([hidden, back, x])
    ctx.shape_class(hidden)
    assert ctx.shape_class(back)[1] == ctx.shape_class(x)[1]
    assert ctx.shape_class(back)[0] != ctx.shape_class(x)[0]  # h's rows are not x's
    # elementwise: the union of the operands' classes, so the order does not matter
    assert ctx.shape_class(x * back) == ctx.shape_class(back + x)
    assert ctx.covers([x * back], x) and ctx.covers([x * back], back)
    assert not ctx.covers([x], back)  # back may have more rows than x


def _dae_cost(corrupt=False):
    x, W, b, bp = T.matrix("x"), T.matrix("W"), T.vector("b"), T.vector("bp")
    y = T.nnet.sigmoid(T.dot(x, W) + b)
    z = T.nnet.sigmoid(T.dot(y, W.T) + bp)
    cost = T.mean(-T.sum(x * T.log(z) + (1 - x) * T.log(1 - z), axis=1))
    return [x, W, b, bp], cost


def _sum_to(g, shape):
    """g summed over the axes broadcasting widened from `shape` (NumPy's rule)."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(k for k, d in enumerate(shape) if d == 1 and g.shape[k] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _numpy_dae(x, W, b, bp):
    """The cost and its gradients, derived by hand."""
    hw = x @ W
    y = 1 / (1 + np.exp(-(hw + b)))
    yw = y @ W.T
    z = 1 / (1 + np.exp(-(yw + bp)))
    cost = np.mean(-np.sum(x * np.log(z) + (1 - x) * np.log(1 - z), axis=1))
    dz = (z - x) / z.shape[0]        # d cost / d (y @ W.T + bp), at z's (broadcast) shape
    dyw = _sum_to(dz, yw.shape)
    dy = (dyw @ W) * y * (1 - y)     # d cost / d (x @ W + b)
    dhw = _sum_to(dy, hw.shape)
    return cost, x.T @ dhw + dyw.T @ y, _sum_to(dy, b.shape), _sum_to(dz, bp.shape)


def test_the_autoencoder_gradient_needs_no_sum_to_where_x_is_concerned():
    """d cost / d z-logits has x's shape (x and y @ W.T share their columns
    through x @ W): no sum_to back to the product; only the biases, which may
    broadcast, keep theirs."""
    inputs, cost = _dae_cost()
    x, W, b, bp = inputs
    grads = T.grad(cost, [W, b, bp])
    outs = kg.simplify([cost] + grads)
    targets = [n.inputs[1] for n in toposort(outs) if n.op is not None and n.op.name == "sum_to"]
    assert all(t.op is not None and t.op.name in ("matmul", "add") or t in (b, bp)
               for t in targets), targets
    assert _ops(outs).count("sum_to") <= 4  # was 10: one per product and bias at most


@pytest.mark.parametrize("xshape, wshape, nb, nbp", [
    ((6, 5), (5, 4), 4, 5),     # the usual shapes
    ((6, 1), (1, 4), 4, 5),     # W has one row: bp (5,) widens z, and x broadcasts
    ((6, 5), (5, 4), 1, 1),     # biases of length 1 broadcast
    ((1, 3), (3, 2), 2, 3),     # one example
    ((6, 5), (4, 4), 4, 5),     # x @ W does not fit: a ShapeError, as NumPy's ValueError
])
def test_the_autoencoder_step_is_numpys_whatever_broadcasts(xshape, wshape, nb, nbp):
    inputs, cost = _dae_cost()
    x, W, b, bp = inputs
    f = kg.function(inputs, [cost] + T.grad(cost, [W, b, bp]))
    rng = np.random.default_rng(sum(xshape) * 10 + nb)
    xv = rng.uniform(0.05, 0.95, xshape)
    Wv, bv, bpv = rng.normal(0, 0.5, wshape), rng.normal(0, 0.5, nb), rng.normal(0, 0.5, nbp)
    try:
        want = _numpy_dae(xv, Wv, bv, bpv)
    except ValueError:
        with pytest.raises(kg.ShapeError):
            f(xv, Wv, bv, bpv)
        return
    got = f(xv, Wv, bv, bpv)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_sizes_a_check_proved_equal_are_one_size_in_the_loops():
    """After x @ W checks x.shape[1] == W.shape[0], x + W.T[0] needs no
    broadcast check of its own: the generated shape phase compares the two
    sizes for the product only."""
    x, W = T.matrix("x"), T.matrix("W")
    out = T.dot(x, W).sum() + (x + W.T[0]).sum()
    f = kg.function([x, W], out)
    src = f.source()
    checks = [line for line in src.splitlines()
              if "KG_FAIL" in line and "in_x_d1" in line and "in_W_d0" in line]
    assert checks and all('"dot"' in line and "!= 1" not in line for line in checks), checks
    rng = np.random.default_rng(3)
    xv, Wv = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))
    np.testing.assert_allclose(f(xv, Wv), (xv @ Wv).sum() + (xv + Wv.T[0]).sum(), rtol=1e-12)
    with pytest.raises(kg.ShapeError, match="dot|matmul|fit"):
        f(xv, rng.normal(size=(4, 2)))


@pytest.mark.parametrize("bshape", [(1, 7), (5, 7), (5, 1), (1, 1)])
def test_row_reductions_of_broadcast_operands(bshape):
    """sum over the last axis reads operands whose last stride is 1 through a
    contiguous copy of the loop, and broadcast ones through the strided one."""
    a, b = T.matrix("a"), T.matrix("b")
    f = kg.function([a, b], [T.sum(T.nnet.softplus(a) * b, axis=1),
                             T.max(a - b, axis=1)])
    rng = np.random.default_rng(4)
    av, bv = rng.normal(size=(5, 7)), rng.normal(size=bshape)
    s, m = f(av, bv)
    np.testing.assert_allclose(s, np.sum(np.logaddexp(0, av) * bv, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(m, np.max(av - bv, axis=1))
    # a transposed view: a last stride that is not 1 at run time
    s2, _ = f(av.T.copy().T, bv)
    np.testing.assert_allclose(s2, s, rtol=1e-12)
