"""Minibatch logistic regression: one epoch of SGD, kgen vs NumPy (and PyTensor).

50,000 x 784 float32 examples and their labels live in shared variables; the
training function takes a minibatch index and reads its rows through
`givens={x: train_x[index * 600:(index + 1) * 600], ...}` - a symbolic slice
whose bounds the kernel's shape phase computes from the index - so a step
copies no data. NumPy runs the same float32 math by hand (the same slice,
softmax, negative log-likelihood and gradient). Prints the median epoch time
of each and the ratio kgen / NumPy (the goal: <= 0.7). The PyTensor column is
skipped where PyTensor is not installed.

    python benchmarks/bench_minibatch.py [--repeats 5] [--n 50000]
"""
import argparse

import numpy as np

import kgen as kg
import kgen.tensor as T
from _timing import median_time  # benchmarks/_timing.py

N_IN, N_OUT, BATCH, LR = 784, 10, 600, np.float32(0.13)


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, N_IN), dtype=np.float32) * (rng.random((n, N_IN)) < 0.2)).astype(np.float32)
    y = rng.integers(0, N_OUT, n).astype(np.int32)
    return x, y


def kgen_epoch_fn(x_data, y_data):
    train_x = kg.shared(x_data, name="train_x", borrow=True)
    train_y = kg.shared(y_data, name="train_y", borrow=True)
    W = kg.shared(np.zeros((N_IN, N_OUT), np.float32), name="W")
    b = kg.shared(np.zeros(N_OUT, np.float32), name="b")
    index, x, y = T.lscalar("index"), T.fmatrix("x"), T.ivector("y")
    p = T.nnet.softmax(T.dot(x, W) + b)
    cost = -T.mean(T.log(p)[T.arange(y.shape[0]), y])
    gW, gb = T.grad(cost, [W, b])
    train = kg.function([index], cost, updates=[(W, W - LR * gW), (b, b - LR * gb)],
                        givens={x: train_x[index * BATCH:(index + 1) * BATCH],
                                y: train_y[index * BATCH:(index + 1) * BATCH]})
    n_batches = len(x_data) // BATCH

    def epoch():
        for i in range(n_batches):
            train(i)
    return epoch, (W, b)


def numpy_epoch_fn(x_data, y_data):
    state = {"W": np.zeros((N_IN, N_OUT), np.float32), "b": np.zeros(N_OUT, np.float32)}
    n_batches = len(x_data) // BATCH
    rows = np.arange(BATCH)

    def epoch():
        W, b = state["W"], state["b"]
        for i in range(n_batches):
            xb, yb = x_data[i * BATCH:(i + 1) * BATCH], y_data[i * BATCH:(i + 1) * BATCH]
            z = xb @ W + b
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            pr = e / e.sum(axis=1, keepdims=True)
            _ = -np.mean(np.log(pr[rows, yb]))  # the cost, as the kgen step returns it
            pr[rows, yb] -= 1
            pr /= np.float32(BATCH)
            W = W - LR * (xb.T @ pr)
            b = b - LR * pr.sum(axis=0)
        state["W"], state["b"] = W, b
    return epoch, state


def pytensor_epoch_fn(x_data, y_data):
    try:
        import pytensor
        import pytensor.tensor as pt
    except ImportError:
        return None
    train_x = pytensor.shared(x_data, borrow=True)
    train_y = pytensor.shared(y_data, borrow=True)
    W = pytensor.shared(np.zeros((N_IN, N_OUT), np.float32))
    b = pytensor.shared(np.zeros(N_OUT, np.float32))
    index, x, y = pt.lscalar(), pt.fmatrix(), pt.ivector()
    p = pt.special.softmax(pt.dot(x, W) + b, axis=-1)
    cost = -pt.mean(pt.log(p)[pt.arange(y.shape[0]), y])
    gW, gb = pytensor.grad(cost, [W, b])
    train = pytensor.function([index], cost, updates=[(W, W - LR * gW), (b, b - LR * gb)],
                              givens={x: train_x[index * BATCH:(index + 1) * BATCH],
                                      y: train_y[index * BATCH:(index + 1) * BATCH]})
    n_batches = len(x_data) // BATCH

    def epoch():
        for i in range(n_batches):
            train(i)
    return epoch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=50000)
    args = ap.parse_args()
    x_data, y_data = data(args.n)
    kg_epoch, (W, b) = kgen_epoch_fn(x_data, y_data)
    np_epoch, state = numpy_epoch_fn(x_data, y_data)
    # the same math: after one epoch each, the weights agree to float32 rounding
    kg_epoch()
    np_epoch()
    np.testing.assert_allclose(W.get_value(), state["W"], rtol=2e-3, atol=2e-5)
    t_kg = median_time(kg_epoch, repeat=args.repeats)
    t_np = median_time(np_epoch, repeat=args.repeats)
    print(f"one epoch, {args.n} x {N_IN} float32, batch {BATCH} "
          f"({args.n // BATCH} steps), median of {args.repeats}:")
    print(f"  kgen     {t_kg * 1e3:9.1f} ms")
    print(f"  numpy    {t_np * 1e3:9.1f} ms")
    pt_epoch = pytensor_epoch_fn(x_data, y_data)
    if pt_epoch is not None:
        t_pt = median_time(pt_epoch, repeat=args.repeats)
        print(f"  pytensor {t_pt * 1e3:9.1f} ms   kgen/pytensor {t_kg / t_pt:.2f}x")
    else:
        print("  pytensor  (not installed: skipped)")
    print(f"  kgen/numpy {t_kg / t_np:.2f}x (goal <= 0.7x)")


if __name__ == "__main__":
    main()
