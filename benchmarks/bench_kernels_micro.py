"""Micro-benchmark of the C building blocks under kgen's kernels, against NumPy.

(a) the fused elementwise loop W1 = exp(-x*x)*sin(y) + log1p(z*z), n = 1e7,
    float32 and float64, as kg_math.h compiles it (libmvec SIMD math, OpenMP
    over the default team), and the same loop on scalar libm for contrast;
(b) kg_gemm.h for 256x784 @ 784x512 and 256x512 @ 512x10 (float32, and
    float64 for reference), against np.dot into a preallocated output.

Prints the median (and min) time of each and the ratio kgen / NumPy
(smaller is better). Run from the repository root:

    python -m benchmarks.bench_kernels_micro [--repeat 15] [--n 10000000]

Threads: OpenMP and OpenBLAS both use every core unless OMP_NUM_THREADS /
OPENBLAS_NUM_THREADS say otherwise. On a shared machine, run it when idle:
OpenMP loops suffer when another process holds a core.
"""
import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _load_harness():
    # The builder lives with the tests, which use the same C harness.
    spec = importlib.util.spec_from_file_location("_c_harness", ROOT / "tests" / "_c_harness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timings(fn, repeat, warmup=2):
    """(median, min) wall time of `repeat` calls; the min is what a busy machine distorts least."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def bench_w1(harness, builds, n, repeat):
    rng = np.random.default_rng(0)
    print(f"\n(a) W1 = exp(-x*x)*sin(y) + log1p(z*z), n = {n:.0e}; median (min) of {repeat} runs")
    print(f"    {'dtype':8} {'build':26} {'kgen ms':>15} {'numpy ms':>15} {'ratio':>13} "
          f"{'max err/eps':>11}")
    for dtype in (np.float32, np.float64):
        x = rng.uniform(-3, 3, n).astype(dtype)
        y = rng.uniform(-10, 10, n).astype(dtype)
        z = rng.uniform(-3, 3, n).astype(dtype)
        out = np.empty_like(x)

        def numpy_w1():
            return np.exp(-x * x) * np.sin(y) + np.log1p(z * z)

        t_np, m_np = timings(numpy_w1, repeat)
        xd, yd, zd = (a.astype(np.float64) for a in (x, y, z))
        want = np.exp(-xd * xd) * np.sin(yd) + np.log1p(zd * zd)
        # error relative to the terms' size (the sum itself may cancel to ~0)
        scale = np.abs(np.exp(-xd * xd) * np.sin(yd)) + np.log1p(zd * zd) + 1e-300
        for label, (ffi, lib) in builds.items():
            fn = lib.h_w1f if dtype == np.float32 else lib.h_w1
            args = [harness.ptr(ffi, a) for a in (x, y, z, out)]
            t, m = timings(lambda: fn(n, *args), repeat)
            err = np.max(np.abs(out - want) / scale) / np.finfo(dtype).eps
            print(f"    {np.dtype(dtype).name:8} {label:26} {t * 1e3:7.2f} ({m * 1e3:6.2f}) "
                  f"{t_np * 1e3:7.2f} ({m_np * 1e3:6.2f}) {t / t_np:5.3f} ({m / m_np:5.3f}) "
                  f"{err:11.2f}")


def bench_gemm(harness, builds, repeat):
    rng = np.random.default_rng(1)
    shapes = [(256, 784, 512), (256, 512, 10)]
    print(f"\n(b) GEMM C = A @ B (M x K @ K x N) vs np.dot(A, B, out=C); median (min) of "
          f"{repeat * 4} runs")
    print(f"    {'dtype':8} {'M x K @ K x N':18} {'build':26} {'kgen us':>17} {'numpy us':>17} "
          f"{'ratio':>13} {'GFLOP/s':>8}")
    for dtype in (np.float32, np.float64):
        for M, K, N in shapes:
            a = rng.uniform(-1, 1, (M, K)).astype(dtype)
            b = rng.uniform(-1, 1, (K, N)).astype(dtype)
            c = np.empty((M, N), dtype)
            ref = np.empty((M, N), dtype)
            t_np, m_np = timings(lambda: np.dot(a, b, out=ref), repeat * 4)
            for label, (ffi, lib) in builds.items():
                fn = lib.kg_gemm_f32 if dtype == np.float32 else lib.kg_gemm_f64
                pa, pb, pc = (harness.ptr(ffi, m) for m in (a, b, c))
                t, m = timings(lambda: fn(M, N, K, 1.0, pa, K, 1, pb, N, 1, 0.0, pc, N),
                               repeat * 4)
                tol = 1e-4 if dtype == np.float32 else 1e-12
                np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=tol, atol=tol * K)
                gflops = 2.0 * M * N * K / t / 1e9
                print(f"    {np.dtype(dtype).name:8} {f'{M}x{K} @ {K}x{N}':18} {label:26} "
                      f"{t * 1e6:8.1f} ({m * 1e6:6.1f}) {t_np * 1e6:8.1f} ({m_np * 1e6:6.1f}) "
                      f"{t / t_np:5.3f} ({m / m_np:5.3f}) {gflops:8.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="W1 length")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per case")
    parser.add_argument("--skip-scalar", action="store_true",
                        help="skip the scalar-libm and portable builds")
    args = parser.parse_args(argv)

    harness = _load_harness()
    from kgen.build import flags

    print(f"cores: {os.cpu_count()}  OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}"
          f"  libmvec: {flags.libmvec_available()}  openmp: {flags.openmp_available()}")
    variants = {"native, libmvec, omp": dict(native=True)}
    if not args.skip_scalar:
        # the baseline build; its W1 and GEMM pick AVX2/AVX-512 code at run time
        variants["portable, libmvec, omp"] = dict(native=False)
        variants["native, scalar libm, omp"] = dict(native=True, libmvec=False)
    builds = {}
    with tempfile.TemporaryDirectory(prefix="kgen-bench-") as tmp:
        for i, (label, kwargs) in enumerate(variants.items()):
            ffi, lib, _ = harness.build(Path(tmp, str(i)), **kwargs)
            builds[label] = (ffi, lib)
        bench_w1(harness, builds, args.n, args.repeat)
        gemm_builds = {k: v for k, v in builds.items() if "scalar" not in k}
        bench_gemm(harness, gemm_builds, args.repeat)


if __name__ == "__main__":
    main()
