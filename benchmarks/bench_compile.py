"""How long kgen takes to build, and what a small call costs (issue 14's table).

    python benchmarks/bench_compile.py [--quick] [--chain10k] [--repeat N]

Each build runs in a fresh Python process with a private cache (cold: empty;
"cold, kgen cached": no kernel, only kgen's compiled templates and compiler
probe answers from the cold run, as after a machine's first build; warm: the
cold run's). Inside it, the build is split into phases by timing
kgen's own pipeline functions: graph building (the spec's code before
kg.function), simplify, lower, render (the C text and cffi's cdef), compile
(the C compiler) and load (cache key, cache lookup, importing the
extension); cc_cpu is the CPU time of all compiler runs, above compile
when translation units compile in parallel on free cores (on a loaded one, compile
reaches or passes it). Every figure is the median of --repeat runs (default 3)
from this one run;
call overheads are medians of many calls, with NumPy's time from the same run.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

from _timing import median_time  # benchmarks/_timing.py
from bench_c import CHAIN_SPEC, MLP_SPEC

# Runs in the child: times kgen's phases by wrapping its pipeline functions.
CHILD = textwrap.dedent('''
    import json, sys, time
    t0 = time.perf_counter()
    import numpy
    t_numpy = time.perf_counter()
    import kgen
    t_import = time.perf_counter()
    from importlib import import_module
    # (by import_module: kgen.function is also the name of a function)
    build, compiler, render, function, lower = map(import_module, [
        "kgen.build", "kgen.build.compiler", "kgen.codegen.render", "kgen.function",
        "kgen.lower.lower"])
    phases = dict.fromkeys(["simplify", "lower", "render", "compile", "build_module"], 0.0)

    def timed(module, name, phase):
        inner = getattr(module, name)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                phases[phase] += time.perf_counter() - start
        setattr(module, name, wrapper)

    timed(function, "_simplify", "simplify")
    timed(lower, "lower", "lower")
    timed(render, "render_module", "render")
    timed(render, "render_cdef", "render")
    timed(compiler, "compile_extension", "compile")
    timed(build, "build_module", "build_module")
    spec = sys.stdin.read()
    graph, _, build = spec.partition("step = kg.function")
    t_graph0 = time.perf_counter()
    namespace = {}
    exec(graph, namespace)
    t_graph = time.perf_counter()
    exec("step = kg.function" + build, namespace)
    t_end = time.perf_counter()
    phases["load"] = phases.pop("build_module") - phases["compile"]
    phases["other"] = t_end - t_graph - sum(phases.values())  # kg.function's own work (grad...)
    import resource
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the compiler processes' CPU time
    print(json.dumps(dict(phases, import_kgen=t_import - t_numpy, graph=t_graph - t_graph0,
                          beyond_numpy=t_end - t_numpy, process=t_end - t0,
                          cc_cpu=children.ru_utime + children.ru_stime)))
''')
PHASES = ["import_kgen", "graph", "simplify", "lower", "render", "compile", "load", "other",
          "cc_cpu"]  # cc_cpu: CPU seconds of all compiler runs (units in parallel: > compile)


def build_once(spec, cache):
    env = dict(os.environ, KGEN_CACHE_DIR=cache)
    r = subprocess.run([sys.executable, "-c", CHILD], input=spec, env=env,
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def builds(spec, repeat, warm=True):
    """Median phase times of `repeat` cold builds (each with its own empty
    cache), of as many "kgen cached" ones (a new cache holding only what the
    cold build left of kgen's own: compiled templates and compiler probe
    answers, no kernel; every build after a machine's first), and of warm
    ones (each reusing the cache of a cold one)."""
    cold, own, hot = [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as cache2:
            os.chmod(cache, 0o700)
            os.chmod(cache2, 0o700)
            cold.append(build_once(spec, cache))
            for name in OWN:
                src = os.path.join(cache, name)
                if os.path.isdir(src):
                    shutil.copytree(src, os.path.join(cache2, name))
                elif os.path.exists(src):
                    shutil.copy(src, cache2)
            own.append(build_once(spec, cache2))
            if warm:
                hot.append(build_once(spec, cache))
    median = lambda runs: {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in runs[0]}
    return median(cold), median(own), (median(hot) if hot else None)


# what of a cache is kgen's own rather than a kernel's (kgen/build/cache.py _OWN_NAMES)
OWN = ("jinja", "probes.json")


def call_overheads():
    import kgen as kg
    x = kg.vector("x")
    f = kg.function([x], x + 1)
    a = np.zeros(10)
    u, v, w = kg.vector("u"), kg.vector("v"), kg.vector("w")
    g = kg.function([u, v, w], u * v + w)
    A, B, C = (np.ones(16) for _ in range(3))
    n = 20000
    return {"x + 1, 10 floats": (median_time(lambda: a + 1, number=n),
                                 median_time(lambda: f(a), number=n)),
            "a*b + c, 16 floats": (median_time(lambda: A * B + C, number=n),
                                   median_time(lambda: g(A, B, C), number=n)),
            "a*b + c, 16 floats, new arrays each call": (
                median_time(lambda: A.copy() * B.copy() + C.copy(), number=n),
                median_time(lambda: g(A.copy(), B.copy(), C.copy()), number=n))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 1000-op chain")
    ap.add_argument("--chain10k", action="store_true", help="also the 10,000-op chain (minutes)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = [("MLP training step", MLP_SPEC, True)]
    if not args.quick:
        rows.append(("1000-op chain + gradient", CHAIN_SPEC.format(n=1000), False))
    if args.chain10k:
        rows.append(("10,000-op chain + gradient", CHAIN_SPEC.format(n=10000), False))
    print(f"cores: {os.cpu_count()}; medians of {args.repeat} fresh processes per build")
    # without kgen's .pyc files (PYTHONDONTWRITEBYTECODE and no install step)
    # every fresh process compiles kgen's Python first: ~55 ms of import_kgen
    import importlib.util
    import kgen
    pyc = os.path.exists(importlib.util.cache_from_source(kgen.__file__))
    print("kgen's bytecode: " + ("cached" if pyc else "NOT cached: import_kgen includes "
                                 "compiling kgen's sources (python -m compileall kgen)") + "\n")
    print(f"{'build':46s} {'beyond numpy':>12s} " + " ".join(f"{p:>11s}" for p in PHASES))
    for name, spec, warm in rows:
        cold, own, hot = builds(spec, args.repeat if warm else 1, warm)
        for kind, times in (("cold", cold), ("cold, kgen cached", own), ("warm", hot)):
            if times:
                print(f"{name + ', ' + kind:46s} {times['beyond_numpy']:11.3f}s " +
                      " ".join(f"{times[p]:10.3f}s" for p in PHASES))
    print(f"\n{'call':44s} {'numpy':>10s} {'kgen':>10s} {'/ numpy':>8s}")
    for name, (numpy_t, kgen_t) in call_overheads().items():
        print(f"{name:44s} {numpy_t * 1e6:8.2f}us {kgen_t * 1e6:8.2f}us {kgen_t / numpy_t:8.2f}")


if __name__ == "__main__":
    main()
