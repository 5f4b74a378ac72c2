"""Large graphs build in seconds, and what the C looks like (issue 14).

A 10,000-op chain with its gradient is built and checked against NumPy (its
fused loop is outlined into part functions: kgen/codegen/outline.py); the
generated source folds dead checks and shows the user's expressions in infix.
"""
import re

import numpy as np
import pytest

import kgen as kg
from kgen.codegen import outline


def _chain(x, n):
    e = x
    for i in range(n):
        e = kg.sin(e) * 0.9 + 0.1 if i % 2 else kg.tanh(e) + x * 0.01
    return e


def _chain_numpy(xv, n, start=None):
    """The chain's value and its gradient, by a hand-written reverse pass
    (with `start`, the chain begins there instead of at x: the gradient is
    then d/d start, and the x terms' own part is left out)."""
    values, e = [], xv if start is None else start
    for i in range(n):
        values.append(e)
        e = np.sin(e) * 0.9 + 0.1 if i % 2 else np.tanh(e) + xv * 0.01
    back, grad = np.ones_like(xv), np.zeros_like(xv)
    for i in reversed(range(n)):
        if i % 2:
            back = back * 0.9 * np.cos(values[i])
        else:
            grad += 0.01 * back
            back = back * (1 - np.tanh(values[i]) ** 2)
    return (e, grad + back) if start is None else (e, back)


@pytest.mark.slow
def test_10000_op_chain_with_gradient_matches_numpy():
    n = 10000
    x = kg.vector("x")
    e = _chain(x, n)
    f = kg.function([x], [e, kg.grad(e.sum(), x)])
    # large enough for the OpenMP team, with a ragged end
    xv = np.linspace(-2.0, 2.0, 40001)
    value, grad = f(xv)
    want_value, want_grad = _chain_numpy(xv, n)
    np.testing.assert_allclose(value, want_value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-12)
    # outlined: many part functions, none of them longer than a part
    source = f.source()
    parts = re.findall(r"^KG_PART void (\w+_part\d+)\(.*\)$", source, re.M)  # definitions
    assert len(parts) > 100
    assert len(set(parts)) == len(parts)


def test_outlined_loop_matches_the_inline_one():
    """A loop just past the outlining threshold, with a scalar input, several
    outputs and an input stored as is: the same values as NumPy's."""
    x, s = kg.vector("x"), kg.scalar("s")
    e = _chain(x, 120) * s
    f = kg.function([x, s], [e, x, kg.grad(e.sum(), x)])
    src = f.source()
    assert "_part1(" in src and "kg_live" in src
    xv = np.linspace(-1.0, 1.0, 257)
    value, same, grad = f(xv, 1.5)
    want_value, want_grad = _chain_numpy(xv, 120)
    np.testing.assert_allclose(value, 1.5 * want_value, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(same, xv)
    np.testing.assert_allclose(grad, 1.5 * want_grad, rtol=1e-10, atol=1e-12)


def test_short_loops_are_not_outlined():
    x = kg.vector("x")
    f = kg.function([x], kg.exp(-x * x) * kg.sin(x))
    assert "KG_NOINLINE void" not in f.source()
    assert outline.OUTLINE_MIN > 50


def test_outline_slots_are_reused():
    """A chain carries few values across each cut, so the scratch holds far
    fewer slots than the loop has locals."""
    from kgen.function import kernel
    x = kg.vector("x")
    plan = kernel("k", [x], [_chain(x, 400)]).plan()
    (loop,) = plan.steps
    assert outline.outlinable(loop)
    layout = outline.outline(loop, "k_s0")
    assert len(layout.parts) == -(-len(loop.locals) // outline.PART_SIZE)
    assert sum(layout.slots.values()) < 10
    # every value a part reads was written by an earlier part, in the same slot
    written = {}
    for part in layout.parts:
        for var, dtype, slot in part.live_in:
            assert written[var] == (dtype, slot)
        for var, dtype, slot in part.live_out:
            written[var] = (dtype, slot)


def _kernel_header(source):
    start = source.index("/* ---- kernel ")
    return source[start:source.index("*/", start)]


def test_dead_checks_are_folded_before_rendering():
    """A size compared with itself, a literal arange step and a sum_to whose
    sizes always agree leave no `&& 1`, `1 == 0` or dead strided variant."""
    X, y = kg.matrix("X"), kg.ivector("y")
    b = kg.vector("b")
    p = kg.softmax(X + b)
    cost = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    f = kg.function([X, y, b], [cost, kg.grad(cost, b)])
    src = f.source()
    body = src[src.index("/* ---- kernel "):]
    for dead in ("&& 1)", "(1 == 0)", "if (1)"):
        assert dead not in body
    assert not re.search(r"(?<!\w)(\w+) == \1(?!\w)", body)  # a size compared with itself
    rng = np.random.default_rng(0)
    Xv, bv = rng.standard_normal((5, 4)), rng.standard_normal(4)
    yv = np.array([0, 3, 1, 1, 2], dtype="int32")
    z = Xv + bv
    pv = np.exp(z - z.max(1, keepdims=True))
    pv /= pv.sum(1, keepdims=True)
    want = -np.log(pv[np.arange(5), yv]).mean()
    d = pv.copy()
    d[np.arange(5), yv] -= 1
    c, gb = f(Xv, yv, bv)
    np.testing.assert_allclose(c, want, rtol=1e-12)
    np.testing.assert_allclose(gb, d.sum(0) / 5, rtol=1e-10, atol=1e-14)


def test_kernel_header_shows_the_expression_in_infix():
    x, y = kg.vector("x"), kg.vector("y")
    f = kg.function([x, y], kg.exp(-x * x) * kg.sin(y) + 1e-4 * kg.sum(y * y))
    header = _kernel_header(f.source())
    line = next(l for l in header.splitlines() if "out = " in l)
    assert "exp(" in line and "sin(y)" in line and " + " in line and " * " in line
    assert "add(" not in line and "mul(" not in line and "..." not in line


def test_a_long_expression_is_folded_in_infix():
    x = kg.vector("x")
    f = kg.function([x], _chain(x, 60))
    header = _kernel_header(f.source())
    line = next(l for l in header.splitlines() if "out = " in l)
    assert "..." in line and ("sin(" in line or "tanh(" in line) and " + " in line
    assert len(line) < 320
    assert "add(" not in line


def test_long_step_sequences_run_in_step_groups():
    """A chain over a matrix product: its gradient has hundreds of steps (the
    broadcasts' sum_to), which run in outlined groups of a few steps each."""
    n = 40
    x, W = kg.vector("x"), kg.matrix("W")
    e = _chain_x(kg.dot(W, x), x, n)
    f = kg.function([x, W], [e, kg.grad(e.sum(), W)])
    src = f.source()
    assert "_steps1(&kg_s, err, errlen)" in src
    rng = np.random.default_rng(0)
    Wv, xv = rng.standard_normal((7, 7)) * 0.3, rng.standard_normal(7)
    value, gW = f(xv, Wv)
    want, back = _chain_numpy(xv, n, start=Wv @ xv)
    np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gW, np.outer(back, xv), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError):  # the groups' shape checks still hold
        f(xv[:3], Wv)


def test_a_heavy_kernel_compiles_as_two_units_and_trains_as_numpy():
    """An MLP training step (the bench's W3, small): its loops weigh enough
    that its steps run in two groups, compiled as two translation units at
    once and linked (kg_gemm_* shared between them); one step matches a
    NumPy forward and backward pass written out here."""
    rng = np.random.default_rng(0)
    X, y = kg.fmatrix("X"), kg.ivector("y")
    W1 = kg.shared((rng.standard_normal((12, 8)) * 0.3).astype("float32"), "W1")
    b1 = kg.shared(np.zeros(8, "float32"), "b1")
    W2 = kg.shared((rng.standard_normal((8, 5)) * 0.3).astype("float32"), "W2")
    b2 = kg.shared(np.zeros(5, "float32"), "b2")
    h = kg.tanh(kg.dot(X, W1) + b1)
    p = kg.softmax(kg.dot(h, W2) + b2)
    cost = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    params = [W1, b1, W2, b2]
    start = [q.get_value().astype(np.float64) for q in params]
    f = kg.function([X, y], cost, updates=[(q, q - 0.1 * g)
                                           for q, g in zip(params, kg.grad(cost, params))])
    plan = f.kernel.plan(True)
    assert outline.kernel_units(plan) == 2 and outline.kernel_units(plan, profile=True) == 1
    src = f.source()
    assert "#if KG_IN_UNIT(1)" in src and "_steps1(&kg_s, err, errlen)" in src
    Xv = rng.standard_normal((6, 12)).astype("float32")
    yv = rng.integers(0, 5, 6).astype("int32")
    w1, c1, w2, c2 = start
    hv = np.tanh(Xv @ w1 + c1)
    z = hv @ w2 + c2
    pv = np.exp(z - z.max(1, keepdims=True))
    pv /= pv.sum(1, keepdims=True)
    d = pv.copy()
    d[np.arange(6), yv] -= 1
    d /= 6
    dh = (d @ w2.T) * (1 - hv * hv)
    np.testing.assert_allclose(f(Xv, yv), -np.log(pv[np.arange(6), yv]).mean(), rtol=1e-5)
    want = [w1 - 0.1 * (Xv.T @ dh), c1 - 0.1 * dh.sum(0), w2 - 0.1 * (hv.T @ d), c2 - 0.1 * d.sum(0)]
    for q, w in zip(params, want):
        np.testing.assert_allclose(q.get_value(), w, rtol=1e-4, atol=1e-6)


def _chain_x(start, x, n):
    e = start
    for i in range(n):
        e = kg.sin(e) * 0.9 + 0.1 if i % 2 else kg.tanh(e) + x * 0.01
    return e
