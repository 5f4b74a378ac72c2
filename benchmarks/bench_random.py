"""Random numbers drawn inside kgen's kernels against NumPy.

    python benchmarks/bench_random.py [--quick]

R1  uniform float32, 1e7 values: kg RandomStreams.uniform vs NumPy's
    Generator.random(dtype=np.float32) (goal: <= 0.5x)
R2  one denoising-autoencoder training step (examples/theano_dropout_dae.py),
    500 x 784, 500 hidden, binomial corruption: vs the same step hand-written
    in NumPy with a NumPy-drawn mask (goal: <= 0.8x)
R2 floor: the step's five matrix products alone, in NumPy (the same OpenBLAS
    calls the kgen step makes): no step that computes them can go below this
    ratio, whatever it does with the elementwise work around them
Prints median times from the same run and the ratio to NumPy (lower is better).
Timings on a shared machine are noisy; OMP_NUM_THREADS=1 compares one core.
"""
import argparse
import os
import sys

import numpy as np

import kgen as kg
from _timing import median_time  # benchmarks/_timing.py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))


def r1(n):
    rng = kg.RandomStreams(1)
    u = rng.uniform((n,), dtype="float32")
    f = kg.function([], u)
    gen = np.random.default_rng(1)
    return {"kgen": median_time(f), "numpy": median_time(lambda: gen.random(n, dtype=np.float32))}


def r2(batch=500, n_visible=784, n_hidden=500, level=0.3, lr=0.1):
    import theano_dropout_dae as ex
    floatx = kg.config.floatX
    da, _, train = ex.build(seed=1, n_visible=n_visible, n_hidden=n_hidden,
                            corruption_level=level, learning_rate=lr)
    x = ex.synthetic_data(np.random.RandomState(0), batch, n_visible)
    W, b, bp = (p.get_value() for p in da.params)
    gen = np.random.default_rng(0)

    def numpy_step():
        nonlocal W, b, bp
        mask = (gen.random(x.shape) < 1 - level).astype(floatx)
        tx = mask * x
        y = 1 / (1 + np.exp(-(tx @ W + b)))
        z = 1 / (1 + np.exp(-(y @ W.T + bp)))
        cost = np.mean(-np.sum(x * np.log(z) + (1 - x) * np.log(1 - z), axis=1))
        dz = (z - x) / x.shape[0]
        dy = (dz @ W) * y * (1 - y)
        gW = tx.T @ dy + dz.T @ y
        W, b, bp = W - lr * gW, b - lr * dy.sum(0), bp - lr * dz.sum(0)
        return cost
    hidden, grad = np.ones((batch, n_hidden), floatx), np.ones((batch, n_visible), floatx)

    def numpy_gemms():  # the products of numpy_step, shapes and layouts alike
        return (x @ W, hidden @ W.T, grad @ W, x.T @ hidden, grad.T @ hidden)
    # a step is ~25 ms: 21 timed calls after 5 untimed ones, each side alike
    # (7 after 1 let the first calls' thread and page start-up into the median)
    t_kg = median_time(lambda: train(x), repeat=21, warmup=5)
    t_np = median_time(numpy_step, repeat=21, warmup=5)
    return ({"kgen": t_kg, "numpy": t_np},
            {"kgen": median_time(numpy_gemms, repeat=21, warmup=5), "numpy": t_np})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    args = ap.parse_args()
    n = 10 ** 6 if args.quick else 10 ** 7
    step, floor = r2()
    rows = [(f"R1 uniform float32 n={n:.0e}", r1(n), "0.5"),
            ("R2 dA step 500x784, 500 hidden", step, "0.8"),
            ("R2 floor: its 5 GEMMs (numpy)", floor, "")]
    print(f"{'workload':36s} {'kgen ms':>9s} {'numpy ms':>9s} {'ratio':>6s} {'goal':>5s}")
    for name, t, goal in rows:
        print(f"{name:36s} {t['kgen'] * 1e3:9.2f} {t['numpy'] * 1e3:9.2f} "
              f"{t['kgen'] / t['numpy']:6.2f} {goal:>5s}")


if __name__ == "__main__":
    main()
