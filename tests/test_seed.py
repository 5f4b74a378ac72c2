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


def test_main_job_learns_the_signal(tmp_path):
    """README's main job: build the spec into a package, train with the package
    alone. The data has a signal, so the printed costs fall to the noise floor
    and the weights approach the true ones."""
    import os
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    b = subprocess.run([sys.executable, "-m", "kgen", "build", "examples/specs/linear_model.py",
                        "-o", str(tmp_path), "-q"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert b.returncode == 0, b.stderr
    r = subprocess.run([sys.executable, str(REPO / "examples" / "train_linear_model.py"),
                        str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    costs = [float(line.split("Cost:")[1]) for line in lines if "Cost:" in line]
    assert len(costs) == 10
    # falls, epoch after epoch, from O(10) to the noise floor (noise 0.01: 1e-4)
    assert all(later < earlier for earlier, later in zip(costs, costs[1:])), costs
    assert costs[0] > 1 and costs[-1] < 1e-3, costs
    w_err, b_err = (float(part.split(":")[1]) for part in
                    next(line for line in lines if line.startswith("max |W - W_true|")).split(","))
    assert w_err < 0.02 and b_err < 0.02, lines[-1]
    pred_err = float(next(line for line in lines if line.startswith("Prediction error")).split(":")[1])
    assert pred_err < 0.1
