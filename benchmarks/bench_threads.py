"""Calls without updates run in parallel: throughput of one compiled function
(elementwise tanh on 4M float64 values) called from 1 and from 2 Python threads.

The kernel itself is single-threaded (OMP_NUM_THREADS=1, set before anything
imports OpenMP), so any speed-up comes from the runtime releasing the GIL while
the C code runs and from calls not sharing buffers. Prints the median time per
round (each thread making `--calls` calls), the calls per second and the ratio
of 2-thread to 1-thread throughput (2.0 is perfect scaling); how fast Python
code runs on one thread while another calls the kernel (near 0 would mean the
kernel holds the GIL); and one call on 10 floats, the per-call overhead. Run it on an idle machine
with at least two cores:

    python benchmarks/bench_threads.py [--n 4000000] [--calls 20] [--repeat 7]
"""
import os

os.environ["OMP_NUM_THREADS"] = "1"  # before kgen or NumPy load an OpenMP runtime

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import kgen as kg  # noqa: E402


def round_time(f, arrays, calls):
    """Seconds for len(arrays) threads to make `calls` calls each, all at once."""
    start = threading.Barrier(len(arrays) + 1)

    def work(a):
        start.wait()
        for _ in range(calls):
            f(a)

    threads = [threading.Thread(target=work, args=(a,)) for a in arrays]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def spin_rate(seconds=None, busy=None):
    """Python loop iterations per second on this thread, for `seconds` or until the
    thread `busy` ends."""
    n, t0 = 0, time.perf_counter()
    while (busy.is_alive() if busy else time.perf_counter() - t0 < seconds):
        for _ in range(1000):
            n += 1
    return n / (time.perf_counter() - t0)


def gil_check(f, a, calls):
    """How fast Python runs on this thread while another thread makes kernel calls,
    relative to its speed alone: near 0 if the kernel held the GIL, near 1 if not
    (given a free core)."""
    alone = spin_rate(seconds=0.5)
    worker = threading.Thread(target=lambda: [f(a) for _ in range(calls)])
    worker.start()
    during = spin_rate(busy=worker)
    worker.join()
    return during / alone


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4_000_000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    x = kg.vector("x")
    f = kg.function([x], kg.tanh(x), name="bench_tanh")
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(args.n) for _ in range(2)]
    np.testing.assert_allclose(f(data[0]), np.tanh(data[0]), rtol=1e-12, atol=1e-15)
    print(f"tanh on {args.n:,} float64, OMP_NUM_THREADS=1, {args.calls} calls per thread, "
          f"median of {args.repeat} rounds ({os.cpu_count()} CPUs)")
    rates = {}
    for n_threads in (1, 2):
        round_time(f, data[:n_threads], 2)   # warm up
        times = [round_time(f, data[:n_threads], args.calls) for _ in range(args.repeat)]
        med = statistics.median(times)
        rates[n_threads] = n_threads * args.calls / med
        print(f"  {n_threads} thread{'s' if n_threads > 1 else ' '}: {med * 1e3:8.1f} ms per round, "
              f"{rates[n_threads]:7.1f} calls/s")
    print(f"  throughput ratio 2 threads / 1 thread: {rates[2] / rates[1]:.2f}")
    print(f"  Python on the main thread while another calls the kernel: "
          f"{gil_check(f, data[0], args.calls):.2f} of its speed alone (0 = GIL held)")
    small = np.ones(10)
    per_call = min(timeit.repeat(lambda: f(small), number=20000, repeat=7)) / 20000
    print(f"per-call overhead, f(x) for 10 floats: {per_call * 1e6:.2f} us (best of 7)")


if __name__ == "__main__":
    main()
