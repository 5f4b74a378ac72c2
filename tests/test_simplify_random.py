"""The simplifier on seeded random expressions: same values as the original
(where the original is finite), same type, a valid graph, never larger, and a
fixed point. 4 dtypes x 150 seeds = 600 expressions."""
import numpy as np
import pytest

import kgen as kg
from _random_exprs import Gen
from kgen.expr.evaluate import evaluate
from kgen.simplify import pipeline

SEEDS = range(150)
TOL = {"float64": (1e-9, 1e-10), "float32": (2e-4, 1e-5)}


def _expressions(dtype):
    for seed in SEEDS:
        gen = Gen(seed, dtype)
        try:
            yield seed, gen, gen.expr(5)
        except (kg.ShapeError, kg.KgenTypeError):  # e.g. shapes that do not broadcast
            continue


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int32"])
def test_random_expressions_keep_their_values(dtype):
    checked = 0
    for seed, gen, expr in _expressions(dtype):
        simple = kg.simplify(expr)
        assert simple.type == expr.type, seed
        kg.check_graph(simple)
        assert kg.graph_size(simple) <= kg.graph_size(expr), seed
        assert kg.simplify(simple) is simple, seed
        again, settled = pipeline([simple])  # a true fixed point, not only remembered
        assert settled and again[0] is simple, seed
        values = gen.values()
        try:
            want, = evaluate([expr], values)
        except kg.ShapeError:
            continue
        got, = evaluate([simple], values)
        assert got.dtype == want.dtype and got.shape == want.shape, seed
        if dtype.startswith("int"):
            assert np.array_equal(got, want), seed
        else:
            finite = np.isfinite(want)
            rtol, atol = TOL[dtype]
            assert np.allclose(got[finite], want[finite], rtol=rtol, atol=atol), \
                f"seed {seed}:\n{kg.pprint(expr)}\n->\n{kg.pprint(simple)}"
        checked += 1
    assert checked >= 125


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_random_gradients_shrink_and_keep_their_values(dtype):
    before = after = 0
    for seed, gen, expr in _expressions(dtype):
        if seed % 2:
            continue
        cost = expr.sum() if expr.ndim else expr
        graph = kg.toposort([cost])
        wrt = [x for x in gen.inputs if x in graph]
        if not wrt:
            continue
        grads = kg.grad(cost, wrt)
        simple = kg.simplify(grads)
        assert kg.graph_size(simple) <= kg.graph_size(grads), seed
        before += kg.graph_size(grads)
        after += kg.graph_size(simple)
        values = gen.values()
        try:
            want = evaluate(grads, values)
        except kg.ShapeError:
            continue
        rtol, atol = TOL[dtype]
        for g, s in zip(want, evaluate(simple, values)):
            finite = np.isfinite(g)
            assert np.allclose(s[finite], g[finite], rtol=rtol * 10, atol=atol * 10), seed
    assert after < 0.85 * before
