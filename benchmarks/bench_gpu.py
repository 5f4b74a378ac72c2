"""kgen's CUDA kernels on the GPU: GB/s against the device's copy bandwidth, the
MLP step against CuPy, nvcc and load times.

    python benchmarks/bench_gpu.py [--n 100000000] [--reps 20] [--json FILE]

The kernels run from a package built with --target c,cuda, launched by its C
host launcher (only the CUDA driver: no PyCUDA needed). Inputs are CuPy
arrays, passed by __cuda_array_interface__ without a copy, and outputs stay on
the device (kernel.device_outputs = True), so the times are the kernels' plus
the package's per-call host work (argument checks, the shape phase, launches,
the final synchronisation). Times come from CUDA events (CuPy's) around each
call, the median over --reps, all in one run:

  copy   a device-to-device copy of 4n bytes (read + write): the bandwidth reference
  W1     exp(-x*x) * sin(y) + log1p(z*z), float32      (3 reads, 1 write)
  W2     sum((x - y) ** 2), float32                      (2 reads)
  MLP    one SGD step, 256x784 -> tanh 512 -> softmax 10, float32, the weights
         on the device; beside it the same step written with CuPy (cuBLAS GEMMs)
  scan   1,000 steps of h = tanh(w * h + x_t): the host loop's cost per step,
         plain and under an until() that never stops (one flag copied back a step)

--json FILE also writes the numbers (seconds, GB/s, ratios) there, for the record
tools/gpu_check.sh keeps. Without a GPU, its driver or CuPy it prints why and
exits with status 2.
"""
import argparse
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEC = '''
import numpy as np
import kgen as kg
import kgen.tensor as T

x, y, z = (T.fvector(n) for n in "xyz")
w1 = kg.kernel("w1", [x, y, z], T.exp(-x * x) * T.sin(y) + T.log1p(z * z))
w2 = kg.kernel("w2", [x, y], T.sum((x - y) ** 2))

rng = np.random.default_rng(0)
X, lab = T.fmatrix("X"), T.ivector("lab")
params = [kg.shared((rng.standard_normal(s) * 0.05).astype("float32"), name=n)
          for n, s in [("W1", (784, 512)), ("b1", (512,)), ("W2", (512, 10)), ("b2", (10,))]]
W1, b1, W2, b2 = params
p = T.nnet.softmax(T.dot(T.tanh(T.dot(X, W1) + b1), W2) + b2)
cost = -T.mean(T.log(p[T.arange(lab.shape[0]), lab]))
grads = T.grad(cost, params)
lr = np.float32(0.01)
mlp_step = kg.kernel("mlp_step", [X, lab], cost,
                     updates=[(q, q - lr * g) for q, g in zip(params, grads)])

# the host loop of a scan: h = tanh(w * h + x_t), and the same loop under an
# until() that never stops (its stop flag is copied back after every step)
s, w = T.fvector("s"), T.fscalar("w")
h, _ = kg.scan(lambda x_t, h: T.tanh(w * h + x_t), sequences=s, outputs_info=T.zeros_like(w))
recurrence = kg.kernel("recurrence", [s, w], h[-1])
hu, _ = kg.scan(lambda x_t, h: (T.tanh(w * h + x_t), kg.scan_module.until(T.gt(h, 2))),
                sequences=s, outputs_info=T.zeros_like(w))
recurrence_until = kg.kernel("recurrence_until", [s, w], hu[-1])
'''


def timer(cupy):
    def run(fn, reps):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        fn()  # warm up
        cupy.cuda.Device().synchronize()
        times = []
        for _ in range(reps):
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
        return statistics.median(times)
    return run


def build(outdir):
    """The benchmark's package, built with --target c,cuda; (package, nvcc s, total s)."""
    from kgen.package import build_package, load_spec
    spec_file = Path(outdir) / "gpubench.py"
    spec_file.write_text(SPEC)
    spec = load_spec(spec_file)
    lines = []
    t0 = time.perf_counter()
    build_package(spec.kernels, outdir, "gpubench", spec.path, targets=("c", "cuda"),
                  progress=lines.append)
    total = time.perf_counter() - t0
    nvcc = [float(line.rsplit(" in ", 1)[1].split()[0]) for line in lines
            if line.startswith("compiled gpubench.cu")]
    sys.path.insert(0, str(outdir))
    try:
        return importlib.import_module("gpubench"), (nvcc[0] if nvcc else float("nan")), total
    finally:
        sys.path.remove(str(outdir))


def cupy_mlp(cupy, params):
    """The same SGD step in CuPy: forward, softmax cross-entropy, backward, update."""
    W1, b1, W2, b2 = (cupy.asarray(p.get_value()) for p in params)
    lr = np.float32(0.01)

    def step(X, lab):
        nonlocal W1, b1, W2, b2
        H = cupy.tanh(X @ W1 + b1)
        Z = H @ W2 + b2
        Z = Z - Z.max(axis=1, keepdims=True)
        P = cupy.exp(Z)
        P /= P.sum(axis=1, keepdims=True)
        n = X.shape[0]
        cost = -cupy.log(P[cupy.arange(n), lab]).mean()
        dZ = P
        dZ[cupy.arange(n), lab] -= 1
        dZ /= n
        dW2, db2 = H.T @ dZ, dZ.sum(axis=0)
        dH = (dZ @ W2.T) * (1 - H * H)
        dW1, db1 = X.T @ dH, dH.sum(axis=0)
        W1, b1, W2, b2 = W1 - lr * dW1, b1 - lr * db1, W2 - lr * dW2, b2 - lr * db2
        return cost
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000_000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CuPy absent, or no GPU for it
        print(f"bench_gpu: needs CuPy and a GPU ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    run = timer(cupy)
    with tempfile.TemporaryDirectory(prefix="kgen-bench-gpu-") as tmp:
        pkg, nvcc_s, build_s = build(tmp)
        t0 = time.perf_counter()
        try:
            pkg.device("cuda")
        except pkg.BackendUnavailableError as exc:
            print(f"bench_gpu: {exc}", file=sys.stderr)
            return 2
        load_s = time.perf_counter() - t0
        (major, minor), name = pkg._devices.launcher.device()
        n, reps = args.n, args.reps
        print(f"device: {name}, compute capability {major}.{minor}; n = {n:,} float32, "
              f"median of {reps}")
        print(f"  build: nvcc {nvcc_s:.1f} s (PTX + cubins), whole package {build_s:.1f} s; "
              f"driver start + module load {load_s * 1e3:.1f} ms")
        record = {"device": name, "compute_capability": [major, minor], "n": n, "reps": reps,
                  "nvcc_s": nvcc_s, "build_s": build_s, "load_s": load_s}

        a = cupy.empty(n, cupy.float32)
        b = cupy.empty_like(a)
        t_copy = run(lambda: b.__setitem__(Ellipsis, a), reps)
        copy_bw = 2 * a.nbytes / t_copy / 1e9
        record.update(copy_s=t_copy, copy_gbs=copy_bw)
        print(f"  copy  device-to-device {4 * n / 1e9:.1f} GB: {t_copy * 1e3:8.3f} ms "
              f"{copy_bw:8.1f} GB/s")

        rng = cupy.random.default_rng(0)
        x, y, z = (rng.standard_normal(n, dtype=cupy.float32) for _ in range(3))
        del a, b
        for kernel, inputs, nbytes in [(pkg.w1, (x, y, z), 16 * n), (pkg.w2, (x, y), 8 * n)]:
            kernel.device_outputs = True
            t = run(lambda: kernel(*inputs), reps)
            gbs = nbytes / t / 1e9
            record.update({f"{kernel.name}_s": t, f"{kernel.name}_gbs": gbs,
                           f"{kernel.name}_of_copy": gbs / copy_bw})
            print(f"  {kernel.name:5s} {t * 1e3:8.3f} ms {gbs:8.1f} GB/s = "
                  f"{100 * gbs / copy_bw:5.1f}% of the copy")
        ref = cupy.exp(-x * x) * cupy.sin(y) + cupy.log1p(z * z)
        got = cupy.asarray(pkg.w1(x, y, z))
        err = float(cupy.max(cupy.abs(got - ref)))
        print(f"        W1 agrees with CuPy to {err:.2e} (max abs)")
        record["w1_max_abs_error_vs_cupy"] = err
        del x, y, z, ref, got

        Xh = np.random.default_rng(1).standard_normal((256, 784)).astype(np.float32)
        lab_h = np.random.default_rng(2).integers(0, 10, 256).astype(np.int32)
        X, lab = cupy.asarray(Xh), cupy.asarray(lab_h)
        params = [pkg.W1, pkg.b1, pkg.W2, pkg.b2]
        ours = run(lambda: pkg.mlp_step(X, lab), reps)
        step = cupy_mlp(cupy, params)
        theirs = run(lambda: step(X, lab), reps)
        print(f"  MLP step 256x784->512->10: kgen {ours * 1e3:.3f} ms, CuPy {theirs * 1e3:.3f} ms "
              f"(kgen / CuPy = {ours / theirs:.2f})")
        record.update(mlp_s=ours, cupy_mlp_s=theirs, mlp_kgen_over_cupy=ours / theirs)

        seq = cupy.asarray(np.random.default_rng(3).uniform(-1, 1, 1000).astype(np.float32))
        for kernel in (pkg.recurrence, pkg.recurrence_until):
            t = run(lambda: kernel(seq, np.float32(0.5)), max(3, reps // 4))
            print(f"  scan  {kernel.name:16s} 1,000 steps: {t * 1e3:8.3f} ms = "
                  f"{t * 1e3:6.2f} us a step")
            record[f"{kernel.name}_s"] = t
    print("\n  GB/s counts each input read and output written once; the copy moves 4n bytes "
          "each way.")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
