"""Gradient checking for the tests: central finite differences in NumPy.

The forward values come from kgen's NumPy reference evaluator (`.eval`), the
derivatives from nothing but perturbing one input element at a time, so a
wrong derivative rule cannot hide behind itself.
"""
import numpy as np

import kgen as kg
from kgen.expr.evaluate import evaluate

SAMPLERS = {
    # away from 0 so abs, relu, sign-like kinks and 1/x stay smooth within eps
    "any": lambda rng, shape: rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape),
    "positive": lambda rng, shape: rng.uniform(0.5, 2.0, shape),
    "unit": lambda rng, shape: rng.uniform(-0.8, 0.8, shape),
    "nonzero": lambda rng, shape: rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape),
    "pow": lambda rng, shape: rng.uniform(0.5, 2.0, shape),
}


def sample(rng, domain, shape, dtype="float64"):
    return np.asarray(SAMPLERS[domain](rng, shape), dtype=dtype)


def numeric_grad(f, values, wrt, eps=1e-6):
    """Central differences of the scalar function f(values) in values[wrt]."""
    x = np.array(values[wrt], dtype=np.float64)
    out = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        saved = x[i]
        x[i] = saved + eps
        plus = f({**values, wrt: x.copy()})
        x[i] = saved - eps
        minus = f({**values, wrt: x.copy()})
        x[i] = saved
        out[i] = (plus - minus) / (2 * eps)
    return out


def scalarize(expr, values, rng):
    """A 0-d cost sum(expr * w) with fixed random weights w, so the whole
    vector-Jacobian product is checked, not just its sum."""
    if expr.ndim == 0:
        return expr
    shape = np.shape(expr.eval(values))
    return kg.sum(expr * kg.constant(rng.uniform(-1.0, 1.0, shape)))


def check_grad(expr, values, wrt, rtol=1e-5, atol=1e-6, rng=None, simplified=False,
               compiled=False):
    """Assert grad(sum(expr * w), wrt) matches finite differences; returns the cost.
    With `simplified`, the simplified gradient must match them too; with
    `compiled`, so must kg.function's (built from every input in `values`).
    The cost's weights w are a constant array, so these see sum_to(w, x)."""
    rng = rng or np.random.default_rng(0)
    cost = scalarize(expr, values, rng)
    grads = kg.grad(cost, list(wrt), disconnected_inputs="ignore")
    kg.check_graph(grads)
    versions = [("reference", evaluate(grads, values))]
    if simplified:
        simple = kg.simplify(grads)
        kg.check_graph(simple)
        versions.append(("simplified", evaluate(simple, values)))
    if compiled:
        inputs = list(values)
        f = kg.function(inputs, list(grads))
        versions.append(("compiled", f(*[values[x] for x in inputs])))
    for i, w in enumerate(wrt):
        want = numeric_grad(lambda v: float(cost.eval(v)), values, w)
        for how, got in versions:
            gv = np.asarray(got[i])
            assert gv.shape == np.shape(values[w]), (how, w, gv.shape)
            assert gv.dtype == np.dtype(w.dtype), (how, w, gv.dtype)
            np.testing.assert_allclose(gv, want, rtol=rtol, atol=atol,
                                       err_msg=f"{how} d/d{w.name} of {kg.pprint(cost)}")
    return cost


def check_second_order(expr, values, wrt, rtol=1e-4, atol=1e-5, rng=None):
    """Differentiate the gradient again (a Hessian-vector product against a
    random direction) and compare with finite differences of the gradient."""
    rng = rng or np.random.default_rng(1)
    cost = scalarize(expr, values, rng)
    for w in wrt:
        g = kg.grad(cost, w, disconnected_inputs="ignore")
        direction = kg.constant(rng.uniform(-1.0, 1.0, np.shape(values[w])))
        gv = kg.sum(g * direction)
        hvp = kg.grad(gv, wrt, disconnected_inputs="ignore")
        got = evaluate(hvp, values)
        for w2, h in zip(wrt, got):
            want = numeric_grad(lambda v: float(gv.eval(v)), values, w2, eps=1e-5)
            np.testing.assert_allclose(h, want, rtol=rtol, atol=atol,
                                       err_msg=f"second derivative d/d{w2.name} d/d{w.name}")
