"""Stability rewrites at the extremes: simplified expressions evaluated at
arguments up to ±1000, in float32 and float64, against oracles computed here
with mpmath at 60 digits from the same (rounded) inputs."""
import mpmath
import numpy as np
import pytest

import kgen as kg

mp = mpmath.mp
mp.dps = 60

XS = [-1000.0, -100.0, -20.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 20.0, 100.0, 1000.0]
ROWS = [[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -999.0],
        [0.5, -0.25, 3.0]]
RTOL = {"float64": 1e-12, "float32": 3e-6}
ATOL = {"float64": 1e-300, "float32": 1e-37}


def mpf(v):
    return mp.mpf(float(v))


def softplus(t):
    return mp.log1p(mp.exp(t))


def check(got, want, dtype):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    assert np.all(np.isfinite(got)), got
    assert np.allclose(got, want, rtol=RTOL[dtype], atol=ATOL[dtype]), (got, want)


def run(expr, inputs, values):
    simple = kg.simplify(expr)
    assert simple.dtype == expr.dtype
    return simple.eval(dict(zip(inputs, values)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_elementwise_stability(dtype):
    x = kg.vector("x", dtype=dtype)
    xs = np.array(XS, dtype=dtype)
    cases = [
        (kg.log(kg.sigmoid(x)), lambda t: -softplus(-t)),
        (kg.log(1 - kg.sigmoid(x)), lambda t: -softplus(t)),
        (kg.log(1 + kg.exp(x)), softplus),
        (kg.softplus(x), softplus),
        (kg.sigmoid(x), lambda t: 1 / (1 + mp.exp(-t))),
        (1 / (1 + kg.exp(-x)), lambda t: 1 / (1 + mp.exp(-t))),
    ]
    for expr, oracle in cases:
        want = [oracle(mpf(t)) for t in xs]
        check(run(expr, [x], [xs]), want, dtype)
    small = xs[xs <= 20]  # expm1 itself overflows above
    check(run(kg.exp(x) - 1, [x], [small]), [mp.expm1(mpf(t)) for t in small], dtype)
    # the unsimplified forms are not finite there: the rewrite is what helps
    with np.errstate(all="ignore"):
        assert np.isinf(kg.log(kg.sigmoid(x)).eval({x: xs})).any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log1p_and_expm1_are_accurate_near_zero(dtype):
    x = kg.vector("x", dtype=dtype)
    xs = np.array([1e-10, -1e-10, 3e-7, -3e-7, 1e-3, 1000.0], dtype=dtype)
    check(run(kg.log(1 + x), [x], [xs]), [mp.log1p(mpf(t)) for t in xs], dtype)
    small = xs[:-1]
    check(run(kg.log(1 - x), [x], [small]), [mp.log1p(-mpf(t)) for t in small], dtype)
    check(run(kg.exp(x) - 1, [x], [small]), [mp.expm1(mpf(t)) for t in small], dtype)


def _rows(dtype):
    return np.array(ROWS, dtype=dtype)


def _log_softmax_oracle(rows):
    out = []
    for row in rows:
        lse = mp.log(mp.fsum(mp.exp(mpf(t)) for t in row))
        out.append([mpf(t) - lse for t in row])
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_family_stability(dtype):
    X = kg.matrix("X", dtype=dtype)
    rows = _rows(dtype)
    lsm = _log_softmax_oracle(rows)
    lse = [mp.log(mp.fsum(mp.exp(mpf(t)) for t in row)) for row in rows]
    sm = [[mp.exp(t) for t in r] for r in lsm]
    check(run(kg.log(kg.softmax(X)), [X], [rows]), lsm, dtype)
    check(run(kg.log_softmax(X), [X], [rows]), lsm, dtype)
    check(run(kg.softmax(X), [X], [rows]), sm, dtype)
    check(run(kg.log(kg.sum(kg.exp(X), axis=1)), [X], [rows]), lse, dtype)
    check(run(kg.logsumexp(X, axis=1), [X], [rows]), lse, dtype)
    flat = rows.reshape(-1)
    total = mp.log(mp.fsum(mp.exp(mpf(t)) for t in flat))
    check(run(kg.log(kg.sum(kg.exp(X))), [X], [rows]), total, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropies_stability(dtype):
    X = kg.matrix("X", dtype=dtype)
    rows = _rows(dtype)
    lsm = _log_softmax_oracle(rows)
    labels = np.array([0, 1, 0, 2], dtype="int32")
    onehot = np.eye(3, dtype=dtype)[labels]
    y, Y = kg.ivector("y"), kg.matrix("Y", dtype=dtype)
    want = [-lsm[i][labels[i]] for i in range(len(rows))]
    check(run(kg.categorical_crossentropy(kg.softmax(X), y), [X, y], [rows, labels]), want, dtype)
    check(run(kg.categorical_crossentropy(kg.softmax(X), Y), [X, Y], [rows, onehot]), want, dtype)
    mean = run(kg.mean(kg.categorical_crossentropy(kg.softmax(X), y)), [X, y], [rows, labels])
    check(mean, mp.fsum(want) / len(want), dtype)

    z, t = kg.vector("z", dtype=dtype), kg.vector("t", dtype=dtype)
    zs = np.array([-1000.0, -1000.0, 1000.0, 1000.0, 30.0, -2.0], dtype=dtype)
    ts = np.array([0.0, 1.0, 0.0, 1.0, 0.25, 0.5], dtype=dtype)
    want = [mpf(b) * softplus(-mpf(a)) + (1 - mpf(b)) * softplus(mpf(a)) for a, b in zip(zs, ts)]
    check(run(kg.binary_crossentropy(kg.sigmoid(z), t), [z, t], [zs, ts]), want, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_of_sigmoid_cross_entropy_is_finite(dtype):
    # the gradient graph holds g / sigmoid(z) * sigmoid(z) * (1 - sigmoid(z));
    # cancelling it is what keeps it finite where sigmoid(z) rounds to 0
    z, t = kg.vector("z", dtype=dtype), kg.vector("t", dtype=dtype)
    cost = kg.sum(kg.binary_crossentropy(kg.sigmoid(z), t))
    g = kg.simplify(kg.grad(cost, z))
    zs = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype)
    ts = np.array([1.0, 1.0, 0.5, 0.0, 0.0], dtype=dtype)
    want = [1 / (1 + mp.exp(-mpf(a))) - mpf(b) for a, b in zip(zs, ts)]
    check(g.eval({z: zs, t: ts}), want, dtype)
