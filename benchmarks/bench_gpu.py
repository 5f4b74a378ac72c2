"""kgen's CUDA backend on the GPU: achieved GB/s and GFLOP/s against the device.

    python benchmarks/bench_gpu.py [--n 10000000] [--reps 20] [--dtype float32]

Workloads:
  W1   exp(-x*x) * sin(y) + log1p(z*z), n elements   (memory bound: 3 reads, 1 write)
  W2   sum((x - y) ** 2), n elements                 (memory bound: a reduction)
  MLP  one SGD step of 256x784 -> tanh 512 -> softmax 10, the weights on the GPU

Inputs are GPUArrays and outputs stay on the device (f.device_outputs = True),
so the times are the kernels' plus kgen's per-call host work (argument checks,
the shape phase, launches); the end-to-end time with NumPy inputs is printed
too. Times come from CUDA events around each call, the median over --reps.

The references:
  copy bandwidth  a device-to-device cudaMemcpy of the same size (read + write)
  matrix rate     CuPy's float32 matmul (cuBLAS) if CuPy is installed, else the
                  nominal FMA peak: SMs x 128 lanes x 2 flops x clock
"""
import argparse
import statistics
import sys
import time

import numpy as np

import kgen as kg


def timer(drv):
    def run(fn, reps):
        start, stop = drv.Event(), drv.Event()
        fn()  # warm up (and build caches)
        drv.Context.synchronize()
        times = []
        for _ in range(reps):
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(stop.time_since(start) / 1e3)
        return statistics.median(times)
    return run


def copy_bandwidth(drv, gpuarray, nbytes, run, reps):
    """GB/s of a device-to-device copy (bytes read + bytes written)."""
    a = gpuarray.empty(nbytes // 4, np.float32)
    b = gpuarray.empty_like(a)
    t = run(lambda: drv.memcpy_dtod(b.gpudata, a.gpudata, a.nbytes), reps)
    return 2 * a.nbytes / t / 1e9


def matrix_rate(drv, run, reps):
    """(GFLOP/s, how it was found) of float32 matrix products on this device."""
    try:
        import cupy
        a = cupy.random.standard_normal((4096, 4096), dtype=cupy.float32)
        t = run(lambda: a @ a, reps)
        return 2 * 4096 ** 3 / t / 1e9, "cuBLAS sgemm 4096^3 (CuPy)"
    except Exception:  # CuPy absent or unusable: the nominal peak
        dev = drv.Context.get_device()
        sms = dev.get_attribute(drv.device_attribute.MULTIPROCESSOR_COUNT)
        khz = dev.get_attribute(drv.device_attribute.CLOCK_RATE)
        return sms * 128 * 2 * khz * 1e3 / 1e9, f"nominal: {sms} SMs x 128 x 2 x {khz / 1e6:.2f} GHz"


def mlp_step(rng, dtype="float32"):
    X, y = kg.tensor.tensor("X", dtype, shape=(None, 784)), kg.ivector("y")
    params = [kg.shared((rng.standard_normal(s) * 0.05).astype(dtype), name=n)
              for n, s in [("W1", (784, 512)), ("b1", (512,)), ("W2", (512, 10)), ("b2", (10,))]]
    W1, b1, W2, b2 = params
    p = kg.softmax(kg.tanh(X @ W1 + b1) @ W2 + b2)
    cost = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    grads = kg.grad(cost, params)
    lr = np.asarray(0.01, dtype)
    return kg.function([X, y], cost, updates=[(q, q - lr * g) for q, g in zip(params, grads)],
                       name="mlp_step", target="cuda")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args(argv)
    import kgen.runtime.cuda as rt
    try:
        driver = rt.default_driver()
    except kg.BackendUnavailableError as exc:
        print(f"bench_gpu: {exc}", file=sys.stderr)
        return 2
    import pycuda.driver as drv
    import pycuda.gpuarray as gpuarray
    run = timer(drv)
    n, dt = args.n, np.dtype(args.dtype)
    size = dt.itemsize
    rng = np.random.default_rng(0)
    print(f"device: {driver.name}, compute capability {driver.capability[0]}."
          f"{driver.capability[1]}; n = {n:,}, {dt.name}, median of {args.reps}")
    bw = copy_bandwidth(drv, gpuarray, 2 * n * size, run, args.reps)
    peak, how = matrix_rate(drv, run, max(3, args.reps // 4))
    print(f"  copy bandwidth  {bw:8.1f} GB/s (device-to-device copy)")
    print(f"  matrix rate     {peak:8.1f} GFLOP/s ({how})")
    print()

    vec = lambda name: kg.tensor.tensor(name, dt.name, shape=(None,))  # noqa: E731
    x, y, z = vec("x"), vec("y"), vec("z")
    host = [rng.standard_normal(n).astype(dt) for _ in range(3)]
    dev = [gpuarray.to_gpu(a) for a in host]
    rows = []

    t0 = time.perf_counter()
    w1 = kg.function([x, y, z], kg.exp(-x * x) * kg.sin(y) + kg.log1p(z * z), name="w1",
                     target="cuda")
    build = time.perf_counter() - t0
    w1.device_outputs = True
    t = run(lambda: w1(*dev), args.reps)
    w1.device_outputs = False
    t_e2e = run(lambda: w1(*host), max(3, args.reps // 4))
    rows.append(("W1 exp(-x*x)*sin(y)+log1p(z*z)", t, 4 * n * size / t / 1e9, 8 * n / t / 1e9,
                 t_e2e, build))

    t0 = time.perf_counter()
    w2 = kg.function([x, y], ((x - y) ** 2).sum(), name="w2", target="cuda")
    build = time.perf_counter() - t0
    w2.device_outputs = True
    t = run(lambda: w2(dev[0], dev[1]), args.reps)
    w2.device_outputs = False
    t_e2e = run(lambda: w2(host[0], host[1]), max(3, args.reps // 4))
    rows.append(("W2 sum((x-y)**2)", t, 2 * n * size / t / 1e9, 3 * n / t / 1e9, t_e2e, build))

    t0 = time.perf_counter()
    step = mlp_step(rng, dt.name)
    build = time.perf_counter() - t0
    Xh = rng.standard_normal((256, 784)).astype(dt)
    yh = rng.integers(0, 10, 256).astype("int32")
    Xd, yd = gpuarray.to_gpu(Xh), gpuarray.to_gpu(yh)
    step.device_outputs = True
    t = run(lambda: step(Xd, yd), args.reps)
    step.device_outputs = False
    t_e2e = run(lambda: step(Xh, yh), max(3, args.reps // 4))
    # forward X@W1, H@W2; backward dH = dZ@W2.T, dW2 = H.T@dZ, dW1 = X.T@dH (2 flops a MAC)
    flops = 2 * (2 * 256 * 784 * 512 + 3 * 256 * 512 * 10)
    traffic = size * (3 * 784 * 512 + 256 * 784 * 3 + 256 * 512 * 6)  # rough: weights r/w, activations
    rows.append(("MLP step 256x784->512->10", t, traffic / t / 1e9, flops / t / 1e9, t_e2e, build))

    print(f"  {'workload':34s} {'time':>9s} {'GB/s':>8s} {'%copy':>6s} {'GFLOP/s':>9s} "
          f"{'%matrix':>7s} {'end-to-end':>10s} {'build':>7s}")
    for name, t, gbs, gflops, t_e2e, build in rows:
        print(f"  {name:34s} {t * 1e3:7.3f}ms {gbs:8.1f} {100 * gbs / bw:5.1f}% {gflops:9.1f} "
              f"{100 * gflops / peak:6.2f}% {t_e2e * 1e3:8.2f}ms {build:6.1f}s")
    print("\n  GB/s counts each input read and output written once; end-to-end includes the"
          "\n  host<->device copies of NumPy inputs and outputs; build is nvcc (or the cache).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
