"""Run the packages that `python -m kgen build examples/specs/*.py` wrote, as a user
who has only NumPy and cffi would: kgen cannot be imported and no compiler is
on PATH (tests/test_package.py starts this script that way).

    python tests/_package_check.py OUTDIR

Checks every example package's kernels against NumPy, its training kernel's
updates of the shared variables, argument checking, and that a copy of a
package in another folder still works. Prints one line per check; any
failure raises.
"""
import importlib
import importlib.abc
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np


class _BlockKgen(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "kgen" or name.startswith("kgen."):
            raise ImportError(f"kgen is not installed here (import {name} blocked)")


def expect(exc_type, fn, *args, match="", **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        assert match in str(exc), f"{exc_type.__name__} {str(exc)!r} does not mention {match!r}"
        return exc
    raise AssertionError(f"{fn.__name__}{args} did not raise {exc_type.__name__}")


def close(a, b, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def check_linear_model(lm):
    rng = np.random.default_rng(0)
    W0, b0 = lm.W.get_value(), lm.b.get_value()
    assert W0.shape == (10, 10) and W0.dtype == np.float64
    for _ in range(5):
        W, b = lm.W.get_value(), lm.b.get_value()
        x, y = rng.standard_normal(10), rng.standard_normal(10)
        r = W @ x + b - y
        cost = lm.train(x, y)
        assert isinstance(cost, np.ndarray) and cost.shape == ()
        close(cost, np.mean(r ** 2))
        close(lm.W.get_value(), W - 0.1 * (2 / 10) * np.outer(r, x))
        close(lm.b.get_value(), b - 0.1 * (2 / 10) * r)
    assert not np.allclose(lm.W.get_value(), W0)
    X = rng.standard_normal((7, 10))
    close(lm.predict(X), X @ lm.W.get_value().T + lm.b.get_value())
    close(lm.train(y=np.zeros(10), x=np.ones(10).tolist()).shape, ())  # names, array-likes

    # argument checking, as kg.function does it
    before = lm.W.get_value()
    expect(TypeError, lm.train, np.ones(10), match="takes 2 argument")
    expect(TypeError, lm.train, np.ones((2, 10)), np.ones(10), match="input 'x'")
    expect(TypeError, lm.train, np.ones(10, complex), np.ones(10), match="input 'x'")
    expect(TypeError, lm.train, np.ones(10), np.ones(10), z=1, match="unexpected argument 'z'")
    err = expect(ValueError, lm.train, np.ones(3), np.ones(10), match="(3,)")
    assert isinstance(err, lm.ShapeError)
    np.testing.assert_array_equal(lm.W.get_value(), before)  # a failed call changes nothing
    lm.train(np.ones(10, np.int32), np.ones(10, np.float32))  # safe casts are fine

    # shared variables: copies out, checked in, shape may change
    v = lm.W.get_value()
    v[:] = 0
    assert not np.all(lm.W.get_value() == 0)
    expect(TypeError, lm.W.set_value, np.ones(10), match="2-d")
    expect(TypeError, lm.b.set_value, np.ones(10, np.complex128), match="cast")
    lm.b.set_value(np.arange(10, dtype=np.int32))
    assert lm.b.get_value().dtype == np.float64
    lm.W.set_value(np.eye(10))
    lm.b.set_value(np.zeros(10))
    close(lm.predict(X), X)
    print("linear_model: ok")


def check_logistic_regression(lr):
    # the tutorial's data set: N=400 random examples of 784 features
    rng = np.random.default_rng(1)
    N, feats = 400, 784
    x, y = rng.standard_normal((N, feats)), rng.integers(0, 2, N).astype(np.float64)
    assert lr.b.get_value().shape == () and lr.w.get_value().shape == (feats,)
    # Start from small weights: with the tutorial's N(0, 1) ones, x @ w saturates the
    # sigmoid, and 1 / (1 + exp(-z)) is not (yet) rewritten to a stable form.
    lr.w.set_value(0.01 * rng.standard_normal(feats))
    costs = []
    for _ in range(20):
        w, b = lr.w.get_value(), float(lr.b.get_value())
        p = 1 / (1 + np.exp(-(x @ w) - b))
        xent_ref = -y * np.log(p) - (1 - y) * np.log(1 - p)
        pred, xent = lr.train(x, y)
        assert pred.dtype == np.bool_ and pred.shape == (N,)
        np.testing.assert_array_equal(pred, p > 0.5)
        close(xent, xent_ref, rtol=1e-9, atol=1e-9)
        costs.append(xent_ref.mean() + 0.01 * (w ** 2).sum())
        close(lr.w.get_value(), w - 0.1 * (x.T @ (p - y) / N + 0.02 * w), rtol=1e-9, atol=1e-12)
        close(lr.b.get_value(), b - 0.1 * np.mean(p - y), rtol=1e-9, atol=1e-12)
    assert costs[-1] < costs[0]
    p = 1 / (1 + np.exp(-(x @ lr.w.get_value()) - lr.b.get_value()))
    np.testing.assert_array_equal(lr.predict(x), p > 0.5)
    expect(ValueError, lr.train, x, y[:10])
    lr.b.set_value(0.5)   # a Python scalar into a 0-d shared variable
    assert lr.b.get_value() == 0.5
    print("logistic_regression: ok")


def mlp_reference(params, x, y, l2=1e-4):
    W1, b1, W2, b2 = params
    h = np.tanh(x @ W1 + b1)
    z = h @ W2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    cost = -np.mean(np.log(p[np.arange(n), y])) + l2 * ((W1 ** 2).sum() + (W2 ** 2).sum())
    dz = p.copy()
    dz[np.arange(n), y] -= 1
    dz /= n
    dh = dz @ W2.T * (1 - h ** 2)
    grads = [x.T @ dh + 2 * l2 * W1, dh.sum(0), h.T @ dz + 2 * l2 * W2, dz.sum(0)]
    return p, cost, grads


def check_mlp(mlp):
    rng = np.random.default_rng(2)
    shared = [mlp.W1, mlp.b1, mlp.W2, mlp.b2]
    assert all(s.get_value().dtype == np.float32 for s in shared)
    # three separable blobs
    centers = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], np.float32)
    y = rng.integers(0, 3, 60).astype(np.int32)
    x = (centers[y] + 0.3 * rng.standard_normal((60, 4))).astype(np.float32)
    costs = []
    for _ in range(100):
        params = [s.get_value().astype(np.float64) for s in shared]
        p, cost_ref, grads = mlp_reference(params, x.astype(np.float64), y)
        close(mlp.probabilities(x), p, rtol=1e-4, atol=1e-5)
        cost = mlp.train(x, y)
        assert cost.dtype == np.float32
        close(cost, cost_ref, rtol=1e-4, atol=1e-5)
        for s, old, g in zip(shared, params, grads):
            close(s.get_value(), old - 0.1 * g, rtol=1e-4, atol=1e-5)
        costs.append(float(cost))
    assert costs[-1] < 0.5 * costs[0], costs[::10]
    pred = mlp.predict(x)
    assert pred.dtype == np.int64
    # nested Python floats are weak: they go into a float32 input as kg.function takes them
    np.testing.assert_array_equal(mlp.probabilities(x.tolist()), mlp.probabilities(x))
    expect(TypeError, mlp.probabilities, [[1e300] * 4], match="input 'x'")  # does not fit
    assert np.mean(pred == y) > 0.9
    before = [s.get_value() for s in shared]
    expect(IndexError, mlp.train, x, np.full(60, 5, np.int32))   # a label out of range
    expect(TypeError, mlp.train, x.astype(np.float64), y, match="input 'x'")
    expect(TypeError, mlp.train, x, y.astype(np.int64), match="input 'y'")
    for s, old in zip(shared, before):
        np.testing.assert_array_equal(s.get_value(), old)   # failed calls changed nothing
    print("mlp: ok")


def check_particles(pt):
    rng = np.random.default_rng(3)
    x, y, vx, vy = rng.standard_normal((4, 50))
    dt, g, k = 0.01, 9.81, 0.05
    speed = np.sqrt(vx ** 2 + vy ** 2)
    vx1 = vx - dt * k * speed * vx
    vy1 = vy - dt * (g + k * speed * vy)
    out = pt.step(x, y, vx, vy, dt)
    assert isinstance(out, list) and len(out) == 4
    for got, want in zip(out, [x + dt * vx1, y + dt * vy1, vx1, vy1]):
        close(got, want, rtol=1e-13, atol=1e-14)
    close(pt.energy(y, vx, vy), 0.5 * (vx ** 2 + vy ** 2) + g * y, rtol=1e-13, atol=1e-14)
    close(pt.step(x, y, vx, vy, dt=1)[0], x + vx - k * speed * vx)  # a weak int into float64
    close(pt.step(x[::2], y[::2], vx[::2], vy[::2], dt)[2], vx1[::2])   # strided inputs
    assert pt.step(x[:0], y[:0], vx[:0], vy[:0], dt)[0].shape == (0,)  # zero-size
    expect(ValueError, pt.step, x[:3], y, vx, vy, dt)
    expect(TypeError, pt.step, x, y, vx, vy, np.ones(2), match="input 'dt'")
    print("particles: ok")


def main(outdir):
    sys.meta_path.insert(0, _BlockKgen())
    assert shutil.which("cc") is None and shutil.which("gcc") is None, "a compiler is on PATH"
    sys.path.insert(0, outdir)
    checks = {"linear_model": check_linear_model, "logistic_regression": check_logistic_regression,
              "mlp": check_mlp, "particles": check_particles}
    for name, check in checks.items():
        check(importlib.import_module(name))
    # a package copied to another folder (under another name) still works
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(Path(outdir, "linear_model"), Path(tmp, "copied_model"))
        sys.path.insert(0, tmp)
        copied = importlib.import_module("copied_model")
        x = np.ones((2, 10))
        close(copied.predict(x), x @ copied.W.get_value().T + copied.b.get_value())
        print("copied package: ok")
    assert not any(m == "kgen" or m.startswith("kgen.") for m in sys.modules)
    print("kgen never imported: ok")


if __name__ == "__main__":
    main(sys.argv[1])
