"""scan compiled into the kernel vs NumPy loops (and JAX's lax.scan and
PyTensor's scan where installed).

    python benchmarks/bench_scan.py
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/bench_scan.py   (one core for all)
    python benchmarks/bench_scan.py lstm                             (one of them)

1. a 1,000-step scalar recurrence h = tanh(w * h + x_t): one call;
2. an LSTM training step (sequence 100, batch 32, input 128, hidden 256,
   float32): forward and backward (BPTT), vs a hand-written NumPy LSTM;
3. an RBM Gibbs chain (784 visible, 500 hidden, 15 steps, batch 20) vs NumPy.
Medians of repeated calls; ratios are kgen / other, from the same run.
"""
import numpy as np

import kgen as kg
import kgen.tensor as T
from _timing import median_time, median_times, optional

jax = optional("jax")
pytensor = optional("pytensor")


def report(name, ours, others):
    line = f"{name:34s} kgen {ours * 1e6:10.1f} us"
    for label, t in others:
        line += f" | {label} {t * 1e6:10.1f} us (ratio {ours / t:5.2f})"
    print(line)


def scalar_recurrence(steps=1000):
    x, w, h0 = T.vector("x"), T.scalar("w"), T.scalar("h0")
    h, _ = kg.scan(lambda x_t, h_tm1, w: T.tanh(w * h_tm1 + x_t), sequences=x,
                   outputs_info=h0, non_sequences=w, name="recurrence")
    f = kg.function([x, w, h0], h[-1])
    xv = np.random.default_rng(0).standard_normal(steps)

    def numpy_loop():
        h = 0.0
        for x_t in xv:
            h = np.tanh(0.9 * h + x_t)
        return h

    others = [("numpy loop", median_time(numpy_loop))]
    if jax is not None:
        import jax.numpy as jnp
        run = jax.jit(lambda xs: jax.lax.scan(lambda h, x_t: (jnp.tanh(0.9 * h + x_t), None),
                                              0.0, xs)[0])
        xj = jnp.asarray(xv)
        others.append(("jax lax.scan", median_time(lambda: run(xj).block_until_ready())))
    assert np.isclose(f(xv, 0.9, 0.0), numpy_loop())
    report(f"recurrence, {steps} steps", median_time(lambda: f(xv, 0.9, 0.0), repeat=21), others)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_numpy(X, W, U, b, nh):
    """Forward and backward of sum(h_T) for an LSTM, by hand."""
    steps, batch, _ = X.shape
    h, c = np.zeros((batch, nh), X.dtype), np.zeros((batch, nh), X.dtype)
    cache = []
    for t in range(steps):
        z = X[t] @ W + h @ U + b
        i, f, o = _sigmoid(z[:, :nh]), _sigmoid(z[:, nh:2 * nh]), _sigmoid(z[:, 2 * nh:3 * nh])
        g = np.tanh(z[:, 3 * nh:])
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        cache.append((h, c, i, f, o, g, tc))
        h, c = o * tc, c_new
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    dh, dc = np.ones_like(h), np.zeros_like(c)
    for t in reversed(range(steps)):
        h_prev, c_prev, i, f, o, g, tc = cache[t]
        do = dh * tc
        dc = dc + dh * o * (1 - tc ** 2)
        di, df, dg = dc * g, dc * c_prev, dc * i
        dz = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o),
                             dg * (1 - g ** 2)], axis=1)
        dW += X[t].T @ dz
        dU += h_prev.T @ dz
        db += dz.sum(0)
        dh = dz @ U.T
        dc = dc * f
    return dW, dU, db


def lstm(steps=100, batch=32, nin=128, nh=256):
    rng = np.random.default_rng(1)
    Xv = rng.standard_normal((steps, batch, nin)).astype("float32")
    Wv = (rng.standard_normal((nin, 4 * nh)) * 0.05).astype("float32")
    Uv = (rng.standard_normal((nh, 4 * nh)) * 0.05).astype("float32")
    bv = np.zeros(4 * nh, "float32")
    X, W, U, b = T.tensor3("X", "float32"), T.fmatrix("W"), T.fmatrix("U"), T.fvector("b")
    h0 = T.zeros((X.shape[1], nh), "float32")

    def step(x_t, h_tm1, c_tm1, W, U, b):
        z = T.dot(x_t, W) + T.dot(h_tm1, U) + b
        i, f = T.nnet.sigmoid(z[:, :nh]), T.nnet.sigmoid(z[:, nh:2 * nh])
        o, g = T.nnet.sigmoid(z[:, 2 * nh:3 * nh]), T.tanh(z[:, 3 * nh:])
        c = f * c_tm1 + i * g
        return o * T.tanh(c), c

    (hs, _), _ = kg.scan(step, sequences=X, outputs_info=[h0, h0], non_sequences=[W, U, b],
                         name="lstm")
    grads = kg.grad(hs[-1].sum(), [W, U, b])
    f = kg.function([X, W, U, b], grads)
    got, want = f(Xv, Wv, Uv, bv), lstm_numpy(Xv, Wv, Uv, bv, nh)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-3, atol=2e-4)
    runs = [("numpy", lambda: lstm_numpy(Xv, Wv, Uv, bv, nh))]
    for label, make in (("jax lax.scan", lstm_jax), ("pytensor scan", lstm_pytensor)):
        run = make(Xv, Wv, Uv, bv, nh)
        if run is not None:
            for g, w in zip(run(), want):
                np.testing.assert_allclose(np.asarray(g), w, rtol=2e-3, atol=2e-4)
            runs.append((label, run))
    ours, *times = median_times([lambda: f(Xv, Wv, Uv, bv)] + [r for _, r in runs], repeat=9)
    report("LSTM step (fwd+bwd, 100x32x128x256)", ours,
           [(label, t) for (label, _), t in zip(runs, times)])


def _lstm_cell(sigmoid, tanh, dot, nh):
    """The LSTM step of the benchmark, for a library's ops."""
    def cell(x_t, h, c, W, U, b):
        z = dot(x_t, W) + dot(h, U) + b
        i, f = sigmoid(z[:, :nh]), sigmoid(z[:, nh:2 * nh])
        o, g = sigmoid(z[:, 2 * nh:3 * nh]), tanh(z[:, 3 * nh:])
        c = f * c + i * g
        return o * tanh(c), c
    return cell


def lstm_jax(Xv, Wv, Uv, bv, nh):
    """The gradients of sum(h_T) with jax.lax.scan, jitted (None without JAX)."""
    if jax is None:
        return None
    import jax.numpy as jnp
    cell = _lstm_cell(jax.nn.sigmoid, jnp.tanh, jnp.dot, nh)

    def loss(W, U, b, X):
        h0 = jnp.zeros((X.shape[1], nh), X.dtype)
        (h, _), _ = jax.lax.scan(lambda hc, x_t: (cell(x_t, *hc, W, U, b), None), (h0, h0), X)
        return h.sum()

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    args = [jnp.asarray(a) for a in (Wv, Uv, bv, Xv)]
    return lambda: [g.block_until_ready() for g in grad(*args)]


def lstm_pytensor(Xv, Wv, Uv, bv, nh):
    """The gradients of sum(h_T) with pytensor.scan (None without PyTensor)."""
    if pytensor is None:
        return None
    import pytensor.tensor as pt
    X, W, U, b = pt.tensor3("X", dtype="float32"), pt.fmatrix("W"), pt.fmatrix("U"), pt.fvector("b")
    h0 = pt.zeros((X.shape[1], nh), "float32")
    cell = _lstm_cell(pt.sigmoid, pt.tanh, pt.dot, nh)
    hs, _ = pytensor.scan(cell, sequences=X, outputs_info=[h0, h0], non_sequences=[W, U, b],
                          return_updates=False)
    f = pytensor.function([X, W, U, b], pytensor.grad(hs[-1].sum(), [W, U, b]))
    return lambda: f(Xv, Wv, Uv, bv)


def gibbs(nv=784, nh=500, steps=15, batch=20):
    rng = np.random.default_rng(2)
    Wv = (rng.standard_normal((nv, nh)) * 0.01).astype("float32")
    bh, bv_ = np.zeros(nh, "float32"), np.zeros(nv, "float32")
    V0 = (rng.uniform(size=(batch, nv)) < 0.5).astype("float32")
    W, hb, vb, V = T.fmatrix("W"), T.fvector("hb"), T.fvector("vb"), T.fmatrix("V")
    srng = kg.RandomStreams(seed=5)

    def step(v, W, hb, vb):
        ph = T.nnet.sigmoid(T.dot(v, W) + hb)
        h = T.cast(srng.uniform(ph.shape) < ph, "float32")
        pv = T.nnet.sigmoid(T.dot(h, W.T) + vb)
        return T.cast(srng.uniform(pv.shape) < pv, "float32")

    chain, updates = kg.scan(step, outputs_info=V, non_sequences=[W, hb, vb], n_steps=steps,
                             name="gibbs")
    f = kg.function([V, W, hb, vb], chain[-1], updates=updates)

    def numpy_chain():
        v = V0
        for _ in range(steps):
            ph = _sigmoid(v @ Wv + bh)
            h = (rng.uniform(size=ph.shape) < ph).astype("float32")
            pv = _sigmoid(h @ Wv.T + bv_)
            v = (rng.uniform(size=pv.shape) < pv).astype("float32")
        return v

    assert f(V0, Wv, bh, bv_).shape == (batch, nv)
    ours, theirs = median_times([lambda: f(V0, Wv, bh, bv_), numpy_chain], repeat=21)
    report("RBM Gibbs chain (784/500, 15, 20)", ours, [("numpy", theirs)])


if __name__ == "__main__":
    import sys
    chosen = sys.argv[1:] or ["recurrence", "lstm", "gibbs"]   # e.g. `bench_scan.py lstm`
    for name, run in (("recurrence", scalar_recurrence), ("lstm", lstm), ("gibbs", gibbs)):
        if name in chosen:
            run()
