"""examples/theano_logreg_minibatch.py (the Theano tutorial's minibatch
logistic regression, driven by givens and a symbolic slice) against the same
SGD written in NumPy here, to 1e-9 in float64."""
import sys
from pathlib import Path

import numpy as np
import pytest

import kgen as kg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import theano_logreg_minibatch as example  # noqa: E402


def numpy_sgd(train, valid, n_in, n_out, batch_size, n_epochs, lr):
    (x, y), (vx, vy) = train, valid
    W, b = np.zeros((n_in, n_out)), np.zeros(n_out)
    costs, errors = [], []
    for _ in range(n_epochs):
        for i in range(len(x) // batch_size):
            rows = slice(i * batch_size, (i + 1) * batch_size)
            xb, yb = x[rows], y[rows]
            z = xb @ W + b
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            n = len(yb)
            costs.append(-np.mean(np.log(p[np.arange(n), yb])))
            d = p.copy()
            d[np.arange(n), yb] -= 1
            d /= n
            W, b = W - lr * (xb.T @ d), b - lr * d.sum(axis=0)
        errs = []
        for i in range(len(vx) // batch_size):
            rows = slice(i * batch_size, (i + 1) * batch_size)
            xb, yb = vx[rows], vy[rows]
            errs.append(np.mean(np.argmax(xb @ W + b, axis=1) != yb))
        errors.append(np.mean(errs))
    return W, b, costs, errors


@pytest.mark.parametrize("n_train,batch_size", [(120, 20), (130, 20)])  # 130: 10 rows unused
def test_example_matches_numpy_sgd(monkeypatch, n_train, batch_size):
    monkeypatch.setattr(kg.config, "floatX", "float64")
    args = dict(n_train=n_train, n_valid=60, n_in=30, n_out=4, batch_size=batch_size,
                n_epochs=3, learning_rate=0.13, seed=5)
    W, b, costs, errors = example.sgd_optimization(verbose=False, **args)
    train, valid = example.make_data(n_train, 60, 30, 4, 5)
    W0, b0, costs0, errors0 = numpy_sgd(train, valid, 30, 4, batch_size, 3, 0.13)
    assert len(costs) == len(costs0) == 3 * (n_train // batch_size)
    np.testing.assert_allclose(costs, costs0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(W, W0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b, b0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(errors, errors0, rtol=0, atol=1e-12)
    assert costs[-1] < costs[0]
