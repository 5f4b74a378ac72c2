"""A lazy ifelse against the strict switch, when the branch not taken is a big GEMM.

    python benchmarks/bench_ifelse.py [--quick]

I1  ifelse(c, sum(A @ B), sum(x)) with c false: kgen's ifelse (only sum(x)
    runs) vs switch(c, ...) (both branches run, then one is selected), and the
    taken case for reference. A, B are n x n float64 (n = 512; 256 quick).
Prints median times from the same run and the ratios to the strict switch
(lower is better; the skipped GEMM should make the untaken case tiny).
"""
import argparse

import numpy as np

import kgen as kg
import kgen.tensor as T
from kgen.ifelse import ifelse
from _timing import median_time  # benchmarks/_timing.py


def i1(n):
    c, A, B, x = T.dscalar("c"), T.dmatrix("A"), T.dmatrix("B"), T.dvector("x")
    big, small = T.dot(A, B).sum(), x.sum()
    lazy = kg.function([c, A, B, x], ifelse(c, big, small))
    strict = kg.function([c, A, B, x], T.switch(c, big, small))
    rng = np.random.default_rng(0)
    a, b, v = rng.normal(size=(n, n)), rng.normal(size=(n, n)), rng.normal(size=n)
    assert lazy(0.0, a, b, v) == strict(0.0, a, b, v)
    np.testing.assert_allclose(lazy(1.0, a, b, v), strict(1.0, a, b, v), rtol=1e-12)
    return {"ifelse, not taken": median_time(lambda: lazy(0.0, a, b, v)),
            "ifelse, taken": median_time(lambda: lazy(1.0, a, b, v)),
            "switch (strict)": median_time(lambda: strict(0.0, a, b, v)),
            "numpy sum(A @ B)": median_time(lambda: (a @ b).sum())}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 256 if parser.parse_args().quick else 512
    times = i1(n)
    ref = times["switch (strict)"]
    print(f"I1  n = {n}")
    for name, t in times.items():
        print(f"    {name:20s} {t * 1e6:10.1f} us   {t / ref:7.4f}x switch")


if __name__ == "__main__":
    main()
