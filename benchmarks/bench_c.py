"""kgen's C backend against NumPy (and numexpr, PyTensor, JAX when installed).

    python benchmarks/bench_c.py [--quick]

Prints one table: median times from the same run and each tool's time as a
ratio to NumPy's (lower is better). W4 and W6 time cold and warm compiles in
fresh processes with a private, empty cache.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

import kgen as kg
from _timing import median_time as _median_time, optional  # benchmarks/_timing.py

# Each tool is timed after 0.25 s of untimed calls: NumPy's OpenBLAS workers
# spin for ~0.1 s after its products, and the scheduler takes up to ~0.1 s to
# spread a pool's threads over the cores again after they slept (kgen's MLP
# step, 2 cores: 3.8-4.0 ms in the first calls after 0.5 s idle, 1.9 ms from
# the 60th). Without it a row measures the tool before it as much as itself.
SETTLE = 0.25


def median_time(fn, **kw):
    return _median_time(fn, settle=SETTLE, **kw)

# JAX's CPU threads stay busy after its calls and take cores from kgen's and
# NumPy's (measured on 2 cores: kgen's MLP step 1.0x -> 1.8x NumPy's, max(x)
# 0.6x -> 2.0x, with JAX run beside them), so the JAX column is timed in a
# process of its own, against NumPy's times in that process.
JAX_CHILD = os.environ.get("KGEN_BENCH_JAX_CHILD") == "1"
ne, pytensor = (None, None) if JAX_CHILD else (optional("numexpr"), optional("pytensor"))
jax = optional("jax") if JAX_CHILD else None
if jax:
    # JAX computes in float32 unless told otherwise, even on float64 arrays: an
    # honest float64 row needs x64 (float32 workloads stay float32 either way)
    jax.config.update("jax_enable_x64", True)


# ---- workloads: each returns {tool: seconds} ------------------------------------
def w1(n, dtype):
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    x, y, z = (kg.vector(v, dtype) for v in "xyz")
    f = kg.function([x, y, z], kg.exp(-x * x) * kg.sin(y) + kg.log1p(z * z))
    ref = np.exp(-a * a) * np.sin(b) + np.log1p(c * c)
    assert np.allclose(f(a, b, c), ref, rtol=1e-5 if dtype == "float32" else 1e-12,
                       atol=1e-6 if dtype == "float32" else 1e-14)
    number = max(1, 10000 // n)
    out = {"numpy": median_time(lambda: np.exp(-a * a) * np.sin(b) + np.log1p(c * c), number=number),
           "kgen": median_time(lambda: f(a, b, c), number=number)}
    if ne:
        out["numexpr"] = median_time(lambda: ne.evaluate("exp(-a*a)*sin(b)+log1p(c*c)",
                                                         local_dict={"a": a, "b": b, "c": c}), number=number)
    if pytensor:
        import pytensor.tensor as pt
        px, py, pz = (pt.vector(v, dtype=dtype) for v in "xyz")
        expr = pt.exp(-px * px) * pt.sin(py) + pt.log1p(pz * pz)
        for mode in ("CVM", None):
            pf = pytensor.function([px, py, pz], expr, mode=mode)
            out[f"pytensor{'' if mode is None else '-' + mode}"] = median_time(lambda: pf(a, b, c), number=number)
    if jax:
        import jax.numpy as jnp
        jf = jax.jit(lambda p, q, r: jnp.exp(-p * p) * jnp.sin(q) + jnp.log1p(r * r))
        ja, jb, jc = (jax.device_put(v) for v in (a, b, c))
        out["jax"] = median_time(lambda: jf(ja, jb, jc).block_until_ready(), number=number)
    return out


def w2(n):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    x, y = kg.vector("x"), kg.vector("y")
    f = kg.function([x, y], ((x - y) ** 2).sum())
    assert np.isclose(f(a, b), ((a - b) ** 2).sum(), rtol=1e-10)
    out = {"numpy": median_time(lambda: ((a - b) ** 2).sum()), "kgen": median_time(lambda: f(a, b))}
    if ne:
        out["numexpr"] = median_time(lambda: ne.evaluate("sum((a-b)**2)",
                                                         local_dict={"a": a, "b": b}))
    if jax:
        import jax.numpy as jnp
        jf = jax.jit(lambda p, q: ((p - q) ** 2).sum())
        ja, jb = jax.device_put(a), jax.device_put(b)
        out["jax"] = median_time(lambda: jf(ja, jb).block_until_ready())
    return out


def w7(n):
    """max of a float32 vector and the row maxima of a matrix (softmax's
    first pass): NaN-propagating, as NumPy's."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal(n).astype(np.float32)
    m = a.reshape(-1, 1000)
    x, X = kg.fvector("x"), kg.fmatrix("X")
    f, g = kg.function([x], x.max()), kg.function([X], X.max(axis=1))
    assert f(a) == a.max() and np.array_equal(g(m), m.max(axis=1))
    return ({"numpy": median_time(lambda: a.max()), "kgen": median_time(lambda: f(a))},
            {"numpy": median_time(lambda: m.max(axis=1)), "kgen": median_time(lambda: g(m))})


def w8(n):
    """sin(tanh(x)) with its gradient, one fused loop: the sin and the cos of
    one value must not become one scalar sincos call (kg_math.h)."""
    a = np.linspace(-3, 3, n)
    x = kg.vector("x")
    y = kg.sin(kg.tanh(x))
    f = kg.function([x], [y, kg.grad(y.sum(), x)])

    def numpy_step():
        t = np.tanh(a)
        return np.sin(t), np.cos(t) * (1 - t * t)
    for got, want in zip(f(a), numpy_step()):
        assert np.allclose(got, want, rtol=1e-13, atol=1e-15)
    out = {"numpy": median_time(numpy_step), "kgen": median_time(lambda: f(a))}
    if jax:
        import jax.numpy as jnp
        jf = jax.jit(lambda v: (jnp.sin(jnp.tanh(v)),
                                jax.grad(lambda w: jnp.sin(jnp.tanh(w)).sum())(v)))
        ja = jax.device_put(a)
        out["jax"] = median_time(lambda: [r.block_until_ready() for r in jf(ja)])
    return out


MLP_SPEC = """
import numpy as np
import kgen as kg
rng = np.random.default_rng(0)
X, y = kg.fmatrix('X'), kg.ivector('y')
W1 = kg.shared((rng.standard_normal((784, 512)) * 0.05).astype('float32'), 'W1')
b1 = kg.shared(np.zeros(512, 'float32'), 'b1')
W2 = kg.shared((rng.standard_normal((512, 10)) * 0.05).astype('float32'), 'W2')
b2 = kg.shared(np.zeros(10, 'float32'), 'b2')
h = kg.tanh(kg.dot(X, W1) + b1)
p = kg.softmax(kg.dot(h, W2) + b2)
cost = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
params = [W1, b1, W2, b2]
grads = kg.grad(cost, params)
step = kg.function([X, y], cost, updates=[(q, q - 0.1 * g) for q, g in zip(params, grads)])
"""


def w3():
    ns = {}
    exec(MLP_SPEC, ns)
    rng = np.random.default_rng(1)
    Xv = rng.standard_normal((256, 784)).astype("float32")
    yv = rng.integers(0, 10, 256).astype("int32")
    W1v, b1v, W2v, b2v = (q.get_value() for q in ns["params"])
    rows = np.arange(256)

    def numpy_step():
        nonlocal W1v, b1v, W2v, b2v
        h = np.tanh(Xv @ W1v + b1v)
        z = h @ W2v + b2v
        e = np.exp(z - z.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        cost = -np.log(p[rows, yv]).mean()
        d = p
        d[rows, yv] -= 1
        d /= 256
        dh = (d @ W2v.T) * (1 - h * h)
        W2v = W2v - 0.1 * (h.T @ d)
        b2v = b2v - 0.1 * d.sum(0)
        W1v = W1v - 0.1 * (Xv.T @ dh)
        b1v = b1v - 0.1 * dh.sum(0)
        return cost

    out = {"numpy": median_time(numpy_step), "kgen": median_time(lambda: ns["step"](Xv, yv))}
    return out


def fresh_process_compile(spec, cache):
    """Seconds for a new Python process to import kgen and build `spec`'s `step`."""
    script = "import time; t0 = time.perf_counter()\n" + spec + \
        "\nprint(time.perf_counter() - t0)"
    env = dict(os.environ, KGEN_CACHE_DIR=cache)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise RuntimeError(r.stderr)
    return float(r.stdout.strip().splitlines()[-1]), wall


def w4():
    with tempfile.TemporaryDirectory() as cache:
        os.chmod(cache, 0o700)
        cold, cold_wall = fresh_process_compile(MLP_SPEC, cache)
        warm, warm_wall = fresh_process_compile(MLP_SPEC, cache)
    return {"cold (in process)": cold, "warm (in process)": warm,
            "cold (whole process)": cold_wall, "warm (whole process)": warm_wall}


CHAIN_SPEC = """
import kgen as kg
x = kg.vector('x')
e = x
for i in range({n}):
    e = kg.sin(e) * 0.9 + 0.1 if i % 2 else kg.tanh(e) + x * 0.01
cost = e.sum()
step = kg.function([x], [e, kg.grad(cost, x)])
"""


def w6(n):
    with tempfile.TemporaryDirectory() as cache:
        os.chmod(cache, 0o700)
        cold, wall = fresh_process_compile(CHAIN_SPEC.format(n=n), cache)
    return {"cold (in process)": cold, "cold (whole process)": wall}


def w5():
    x = kg.vector("x")
    f = kg.function([x], x + 1)
    a = np.zeros(10)
    return {"numpy": median_time(lambda: a + 1, number=20000),
            "kgen": median_time(lambda: f(a), number=20000)}


JAX_TOOL, JAX_BASE = "jax (own process)", "numpy (jax's process)"


def jax_apart(quick):
    """{workload: {"numpy": s, "jax": s}} from a child process that runs JAX;
    {} where JAX is not installed."""
    import importlib.util
    if importlib.util.find_spec("jax") is None:
        return {}
    env = dict(os.environ, KGEN_BENCH_JAX_CHILD="1")
    argv = [sys.executable, os.path.abspath(__file__)] + (["--quick"] if quick else [])
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(rows):
    print(f"{'workload':34s} {'tool':22s} {'median':>12s} {'/ numpy':>9s}")
    for name, times in rows:
        for tool, t in times.items():
            base = times.get(JAX_BASE if tool == JAX_TOOL else "numpy")
            ratio = f"{t / base:9.3f}" if base else ""
            unit = f"{t * 1e6:9.2f} us" if t < 1e-3 else f"{t * 1e3:9.2f} ms"
            print(f"{name:34s} {tool:22s} {unit:>12s} {ratio}")
        print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, no compile workloads")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--chain10k", action="store_true",
                    help="also time the 10,000-op chain compile (minutes)")
    args = ap.parse_args()
    n = 10**6 if args.quick else 10**7
    if JAX_CHILD:  # only the workloads with a JAX column, as one line of JSON
        rows = {f"W1 n={n:.0e} float64": w1(n, "float64"), f"W1 n={n:.0e} float32": w1(n, "float32"),
                "W1 n=1000 float64": w1(1000, "float64"), f"W2 sum((x-y)**2) n={n:.0e}": w2(n),
                f"W8 sin(tanh(x)) and its gradient n={n // 10:.0e}": w8(n // 10)}
        print(json.dumps({k: {"numpy": v["numpy"], "jax": v["jax"]} for k, v in rows.items()}))
        return
    jax_rows = jax_apart(args.quick)
    rows = [(f"W1 n={n:.0e} float64", w1(n, "float64")),
            (f"W1 n={n:.0e} float32", w1(n, "float32")),
            ("W1 n=1000 float64", w1(1000, "float64")),
            (f"W2 sum((x-y)**2) n={n:.0e}", w2(n)),
            ("W3 MLP training step", w3()),
            ("W5 call overhead x+1, n=10", w5())]
    vmax, rowmax = w7(n)
    rows += [(f"W7 max(x) float32 n={n:.0e}", vmax), ("W7 max(X, axis=1), rows of 1000", rowmax)]
    rows += [(f"W8 sin(tanh(x)) and its gradient n={n // 10:.0e}", w8(n // 10))]
    if not args.quick:
        rows += [("W4 MLP compile, fresh process", w4()),
                 ("W6 1000-op chain + grad compile", w6(1000))]
    if args.chain10k:
        rows += [("W6 10000-op chain + grad compile", w6(10000))]
    for name, times in rows:
        if name in jax_rows:
            times[JAX_BASE], times[JAX_TOOL] = jax_rows[name]["numpy"], jax_rows[name]["jax"]
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"cores: {os.cpu_count()}")
    table(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
