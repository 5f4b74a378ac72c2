"""examples/theano_dropout_dae.py: the tutorial's denoising autoencoder trains
(its cost falls), and one step matches a NumPy reimplementation fed the same
corruption mask (the mask alone compiled with no_default_updates=True, before
the step, reads the same stream state the step then uses)."""
import importlib.util
from pathlib import Path

import numpy as np

import kgen as kg

PATH = Path(__file__).resolve().parent.parent / "examples" / "theano_dropout_dae.py"


def _example():
    spec = importlib.util.spec_from_file_location("theano_dropout_dae", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def test_one_step_matches_numpy_with_the_same_mask_and_the_cost_falls():
    ex = _example()
    lr, level = 0.1, 0.3
    da, cost, train = ex.build(seed=5, n_visible=30, n_hidden=12, corruption_level=level,
                               learning_rate=lr)
    draw = next(n for n in kg.toposort([cost]) if n.op is not None
                and n.op.name == "random_binomial")
    mask_of = kg.function([da.x], draw, no_default_updates=True)
    data = ex.synthetic_data(np.random.RandomState(1), 40, 30)
    x = data[:10]
    W, b, bp = (p.get_value() for p in da.params)
    mask = mask_of(x)
    assert set(np.unique(mask)) <= {0.0, 1.0} and 0.5 < mask.mean() < 0.9
    np.testing.assert_array_equal(mask_of(x), mask)       # no_default_updates: same state
    # the step, in NumPy, with that mask
    tx = mask * x
    y = _sigmoid(tx @ W + b)
    z = _sigmoid(y @ W.T + bp)
    want_cost = np.mean(-np.sum(x * np.log(z) + (1 - x) * np.log(1 - z), axis=1))
    dz = (z - x) / x.shape[0]                 # d cost / d (pre-sigmoid of z)
    dy = (dz @ W) * y * (1 - y)
    gW = tx.T @ dy + (y.T @ dz).T
    got_cost = train(x)
    np.testing.assert_allclose(got_cost, want_cost, rtol=1e-10)
    np.testing.assert_allclose(da.W.get_value(), W - lr * gW, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(da.b.get_value(), b - lr * dy.sum(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(da.b_prime.get_value(), bp - lr * dz.sum(0), rtol=1e-9,
                               atol=1e-12)
    # the step advanced the stream: the next mask is another one
    assert not np.array_equal(mask_of(x), mask)
    # training lowers the cost
    costs = [np.mean([train(data[i:i + 10]) for i in range(0, 40, 10)]) for _ in range(30)]
    assert costs[-1] < 0.9 * costs[0]
