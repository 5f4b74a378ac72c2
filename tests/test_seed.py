"""The seed program (Theano's tutorial model) on kgen, imports changed only.

As printed, the seed feeds the (100, 10) matrix X_train to the vector input x;
kgen, like Theano, refuses that with a TypeError naming the input and both
shapes. examples/seed_linear_model.py feeds matching (x, y) pairs and trains;
here the same training is checked step by step against NumPy.
"""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import kgen as theano
import kgen.tensor as T

REPO = Path(__file__).resolve().parents[1]

SEED = textwrap.dedent("""
    import kgen as theano
    import kgen.tensor as T
    import numpy as np
    x = T.vector('x')
    y = T.vector('y')
    W = theano.shared(np.random.randn(10, 10), name='W')
    b = theano.shared(np.random.randn(10), name='b')
    output = T.dot(W, x) + b
    cost = T.mean(T.square(output - y))
    dW, db = T.grad(cost, [W, b])
    learning_rate = 0.1
    train = theano.function(inputs=[x, y], outputs=cost,
    updates=[(W, W - learning_rate * dW),
    (b, b - learning_rate * db)])
    X_train = np.random.randn(100, 10)
    y_train = np.random.randn(100)
    for epoch in range(1000):
        cost_value = train(X_train, y_train)
""")


def test_verbatim_seed_reports_the_shape_mistake():
    r = subprocess.run([sys.executable, "-c", SEED], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "TypeError" in r.stderr
    assert "input 'x'" in r.stderr and "(100, 10)" in r.stderr, r.stderr[-2000:]


def test_seed_model_trains_like_numpy():
    rng = np.random.default_rng(0)
    W0, b0 = rng.standard_normal((10, 10)), rng.standard_normal(10)
    x, y = T.vector('x'), T.vector('y')
    W = theano.shared(W0.copy(), name='W')
    b = theano.shared(b0.copy(), name='b')
    cost = T.mean(T.square(T.dot(W, x) + b - y))
    dW, db = T.grad(cost, [W, b])
    train = theano.function([x, y], cost, updates=[(W, W - 0.1 * dW), (b, b - 0.1 * db)])
    Wn, bn = W0.copy(), b0.copy()
    X, Y = rng.standard_normal((100, 10)), rng.standard_normal((100, 10))
    for step in range(200):
        xi, yi = X[step % 100], Y[step % 100]
        r = Wn @ xi + bn - yi
        want = np.mean(r ** 2)
        got = train(xi, yi)
        assert got == pytest.approx(want, rel=1e-12)
        Wn, bn = Wn - 0.1 * (2 / 10) * np.outer(r, xi), bn - 0.1 * (2 / 10) * r
    np.testing.assert_allclose(W.get_value(), Wn, rtol=1e-10)
    np.testing.assert_allclose(b.get_value(), bn, rtol=1e-10)


def test_seed_example_runs():
    r = subprocess.run([sys.executable, str(REPO / "examples" / "seed_linear_model.py")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    costs = [float(line.split("Cost:")[1]) for line in r.stdout.splitlines() if "Cost:" in line]
    assert len(costs) == 10 and all(np.isfinite(costs))
