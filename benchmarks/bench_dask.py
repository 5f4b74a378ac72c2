"""kgen over Dask: one run, medians, ratios from the same run.

D1  sum((x - y)**2) over N float64 elements in 64 chunks (default N = 4e8,
    6.4 GB of input), each chunk made on its worker (random blocks, so the data
    never sits in one process; --persist: held in the workers' memory first):
    kgen's kernel per chunk against the same expression in dask.array with
    NumPy chunks. Peak memory: the largest resident set of a worker during the run.
    (Without --persist, drawing the random chunks costs more than the arithmetic
    on either side, so the ratio mostly measures the generator.)
D2  one full-batch epoch of the MLP (tanh hidden layer, softmax, SGD) over
    the data set in chunks, on a 2-worker cluster against the same kg.function
    in one process on the whole data.

    python benchmarks/bench_dask.py [--n 4e8] [--mlp-rows 200000] [--workers 2] [--persist]
"""
import argparse
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_time  # noqa: E402

import dask.array as da  # noqa: E402
import distributed  # noqa: E402

import kgen as kg  # noqa: E402


def _random_pair(n, chunks):
    """x and y, each chunk of both made by one task (as the columns of one stored
    chunk would be read), so a chunk's x and y sit on the same worker: made apart,
    about half the pairs would first cross between the workers, for kgen and
    dask.array alike, and the run would time that transfer."""
    pair = da.random.default_rng(0).standard_normal((2, n), chunks=(2, chunks))
    return pair[0], pair[1]


class PeakMemory:
    """Samples the workers' resident set sizes while a block runs."""

    def __init__(self, client):
        self.client, self.peak, self._stop = client, 0, threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            info = self.client.scheduler_info()["workers"].values()
            self.peak = max([self.peak] + [w["metrics"]["memory"] for w in info])
            time.sleep(0.05)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def d1(client, n, repeat, persist):
    chunks = n // 64
    xs, ys = kg.dvector("x"), kg.dvector("y")
    f = kg.function([xs, ys], kg.sum((xs - ys) ** 2))
    x, y = _random_pair(n, chunks)
    if persist:  # timed on data already in the workers' memory
        x, y = client.persist([x, y])
        distributed.wait([x, y])
    with PeakMemory(client) as mem_kgen:
        t_kgen = median_time(lambda: f(x, y).compute(), repeat=repeat)
    with PeakMemory(client) as mem_np:
        t_dask = median_time(lambda: ((x - y) ** 2).sum().compute(), repeat=repeat)
    got, want = f(x, y).compute(), ((x - y) ** 2).sum().compute()
    assert abs(got - want) <= 1e-9 * want, (got, want)
    print(f"D1 sum((x-y)**2), n={n:.1e} float64 in 64 chunks of {chunks * 8 / 2**20:.0f} MiB")
    print(f"   kgen {t_kgen:.3f} s (peak worker RSS {mem_kgen.peak / 2**20:.0f} MiB)   "
          f"dask.array+NumPy {t_dask:.3f} s (peak {mem_np.peak / 2**20:.0f} MiB)   "
          f"dask / kgen = {t_dask / t_kgen:.2f}x "
          f"({'persisted data' if persist else 'chunks generated on the workers in each run'})")


def _mlp(rng, n_in=784, n_hid=256, n_out=10):
    X, y = kg.dmatrix("X"), kg.ivector("y")
    params = [kg.shared(rng.standard_normal((n_in, n_hid)) * 0.05, "W1"),
              kg.shared(np.zeros(n_hid), "b1"),
              kg.shared(rng.standard_normal((n_hid, n_out)) * 0.05, "W2"),
              kg.shared(np.zeros(n_out), "b2")]
    W1, b1, W2, b2 = params
    h = kg.tanh(kg.dot(X, W1) + b1)
    p = kg.softmax(kg.dot(h, W2) + b2)
    cost = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    grads = kg.grad(cost, params)
    return kg.function([X, y], cost, updates=[(q, q - 0.1 * g) for q, g in zip(params, grads)])


def d2(rows, workers, repeat):
    rng = np.random.default_rng(0)
    step = _mlp(rng)
    Xv = rng.standard_normal((rows, 784))
    yv = rng.integers(0, 10, rows).astype("int32")
    t_one = median_time(lambda: step(Xv, yv), repeat=repeat)
    Xd = da.from_array(Xv, chunks=(rows // (4 * workers), 784)).persist()
    yd = da.from_array(yv, chunks=rows // (4 * workers)).persist()
    t_dask = median_time(lambda: step(Xd, yd), repeat=repeat)
    print(f"D2 MLP epoch (full batch, {rows} x 784 -> tanh 256 -> softmax 10, float64)")
    print(f"   one process {t_one:.3f} s   {workers} workers {t_dask:.3f} s   "
          f"speed-up {t_one / t_dask:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, default=4e8)
    ap.add_argument("--mlp-rows", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--persist", action="store_true",
                    help="D1 on data held in the workers' memory (else generated per run)")
    args = ap.parse_args()
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        d1(client, int(args.n), args.repeat, args.persist)
        d2(args.mlp_rows, args.workers, args.repeat)


if __name__ == "__main__":
    main()
