"""Every op of tests/op_table.py on the GPU, against the C backend and NumPy.

As tests/test_function_ops.py does for C, cases are compiled in batches - many
independent cases, each with its own inputs and output, per kernel - and the
batches' builds (nvcc for the GPU, cc for the host and the C reference) run in
parallel once, up front, so a run pays for a few compiler minutes at most.
"""
import concurrent.futures
import os

import numpy as np
import pytest

import kgen as kg
from op_table import SPECS

BATCH = 150
# sizes read from input *values*: compiled kernels size arrays from shapes only
# (tests/test_function_ops.py checks that both backends refuse them clearly)
VALUE_SHAPED = {"arange(n)", "arange(a, b, s)", "arange(b, a, -s)"}


def _cases():
    """Every spec x dtype, with its shapes spread over its dtypes (two each), half
    of them with static input shapes."""
    out = []
    for spec in SPECS:
        if spec.name in VALUE_SHAPED:
            continue
        shapes = list(spec.shapes)
        for k, dtype in enumerate(spec.dtypes):
            picks = {shapes[(2 * k) % len(shapes)], shapes[(2 * k + 1) % len(shapes)]}
            for j, sh in enumerate(sorted(picks, key=repr)):
                out.append((spec, dtype, sh, spec.static_only or (j + k) % 2 == 1))
    return out


CASES = _cases()
BATCHES = [CASES[i:i + BATCH] for i in range(0, len(CASES), BATCH)]


def _kernel(b):
    inputs, outputs = [], []
    for spec, dtype, shapes, static in BATCHES[b]:
        xs = spec.inputs(dtype, shapes, static=static)
        inputs += xs
        outputs.append(spec.build(*xs))
    return kg.kernel(f"gpu_ops{b}", inputs, outputs)


@pytest.fixture(scope="session")
def kernels(gpu):
    """Every batch's kernel, with the GPU builds done in parallel (the disk cache
    keeps them for the tests' own kg.function calls)."""
    from kgen.runtime.cuda import compile_plan
    ks = [_kernel(b) for b in range(len(BATCHES))]
    plans = [k.plan() for k in ks]  # simplification: Python, one at a time
    workers = min(len(plans), os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(compile_plan, plans))
    return ks


def _label(case):
    spec, dtype, shapes, static = case
    return f"{spec.name}[{dtype}]{list(shapes)}{' static' if static else ''}"


def _differs(got, want, spec, dtype, scale=1.0):
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"shape/dtype {got.shape} {got.dtype} != {want.shape} {want.dtype}"
    if got.dtype.kind == "f":
        single = got.dtype == np.float32 or "float32" in spec.input_dtypes(dtype)
        rtol = (spec.tol32 if single else 1e-11) * scale
        atol = rtol * 1e-2 if single else 1e-13 * scale
        if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
            err = np.nanmax(np.abs(got.astype(float) - want.astype(float)))
            return f"values differ (max abs err {err:.3g})"
    elif not np.array_equal(got, want):
        return "values differ"
    return None


@pytest.mark.parametrize("batch", range(len(BATCHES)), ids=lambda b: f"batch{b}")
def test_ops_on_gpu_match_c_and_numpy(kernels, batch):
    k = kernels[batch]
    rng = np.random.default_rng(batch)
    arrays, wants = [], []
    for spec, dtype, shapes, static in BATCHES[batch]:
        vals = spec.sample(rng, dtype, shapes)
        with np.errstate(all="ignore"):
            wants.append(np.asarray(spec.ref(*vals)))
        arrays += vals
    outs = k.outputs
    f_c = kg.function(k.inputs, outs, name=k.name)
    f_g = kg.function(k.inputs, outs, name=k.name, target="cuda")
    got_c, got_g = f_c(*arrays), f_g(*arrays)
    failures = []
    for case, g, c, w in zip(BATCHES[batch], got_g, got_c, wants):
        g = np.asarray(g)
        # GPU libm is within 2 ULP where glibc is within 1: allow twice C's tolerance
        problem = _differs(g, np.asarray(c), case[0], case[1], scale=2.0) or \
            _differs(g, w, case[0], case[1], scale=2.0)
        if problem:
            failures.append(f"{_label(case)}: {problem}")
    assert not failures, "\n".join(failures)
