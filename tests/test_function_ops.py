"""Every op of the registry table (tests/op_table.py) through kg.function on
the C backend, against the NumPy references written in that table.

Cases are compiled in batches, many independent cases per kernel, so the
suite pays for a handful of compiler runs instead of thousands. Each case
keeps its own inputs and output, so a failure names the case.
"""
import itertools

import numpy as np
import pytest

import kgen as kg
from op_table import SPECS

BATCH = 120
# sizes read from input *values*: compiled kernels size arrays from shapes only
VALUE_SHAPED = {"arange(n)", "arange(a, b, s)", "arange(b, a, -s)"}


def _cases():
    """Every spec x dtype, with the spec's shapes spread over its dtypes (and
    at least two shapes each), half of them with static input shapes."""
    out = []
    for spec in SPECS:
        if spec.name in VALUE_SHAPED:
            continue
        shapes = list(spec.shapes)
        for k, dtype in enumerate(spec.dtypes):
            picks = {shapes[(2 * k) % len(shapes)], shapes[(2 * k + 1) % len(shapes)]}
            for j, sh in enumerate(sorted(picks, key=repr)):
                static = spec.static_only or (j + k) % 2 == 1
                out.append((spec, dtype, sh, static))
    return out


CASES = _cases()
BATCHES = [CASES[i:i + BATCH] for i in range(0, len(CASES), BATCH)]


def _label(case):
    spec, dtype, shapes, static = case
    return f"{spec.name}[{dtype}]{list(shapes)}{' static' if static else ''}"


def _close(got, want, spec, dtype):
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"shape/dtype {got.shape} {got.dtype} != {want.shape} {want.dtype}"
    if got.dtype.kind == "f":
        # float32 math anywhere (libm vs NumPy's SIMD, within a few ULP) sets the bar
        single = got.dtype == np.float32 or "float32" in spec.input_dtypes(dtype)
        rtol = spec.tol32 if single else 1e-11
        atol = rtol * 1e-2 if single else 1e-13
        if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
            err = np.nanmax(np.abs(got.astype(float) - want.astype(float)))
            return f"values differ (max abs err {err:.3g})"
    elif not np.array_equal(got, want):
        return "values differ"
    return None


@pytest.mark.parametrize("batch", range(len(BATCHES)), ids=lambda b: f"batch{b}")
def test_ops_compiled_match_numpy(batch):
    rng = np.random.default_rng(batch)
    inputs, outputs, arrays, wants = [], [], [], []
    for spec, dtype, shapes, static in BATCHES[batch]:
        xs = spec.inputs(dtype, shapes, static=static)
        vals = spec.sample(rng, dtype, shapes)
        with np.errstate(all="ignore"):
            want = np.asarray(spec.ref(*vals))
        inputs += xs
        arrays += vals
        outputs.append(spec.build(*xs))
        wants.append(want)
    f = kg.function(inputs, outputs, name=f"ops_batch{batch}")
    got = f(*arrays)
    failures = []
    for case, g, w in zip(BATCHES[batch], got, wants):
        problem = _close(np.asarray(g), w, case[0], case[1])
        if problem:
            failures.append(f"{_label(case)}: {problem}")
    assert not failures, "\n".join(failures)


def test_every_spec_is_compiled():
    assert {c[0].name for c in CASES} == {s.name for s in SPECS} - VALUE_SHAPED
    for spec in SPECS:
        if spec.name in VALUE_SHAPED:
            continue
        covered = {c[2] for c in CASES if c[0] is spec}
        assert covered == set(spec.shapes) or len(covered) >= 2


@pytest.mark.parametrize("name", sorted(VALUE_SHAPED))
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_sizes_from_int_input_values_match_numpy(name, dtype):
    """The values of 0-d int inputs decide sizes: the shape phase reads them."""
    spec = next(s for s in SPECS if s.name == name)
    xs = spec.inputs(dtype, spec.shapes[0])
    f = kg.function(xs, spec.build(*xs))
    rng = np.random.default_rng(7)
    for _ in range(20):
        vals = spec.sample(rng, dtype, spec.shapes[0])
        np.testing.assert_array_equal(f(*vals), spec.ref(*vals))


@pytest.mark.parametrize("name", sorted(VALUE_SHAPED))
def test_sizes_from_float_input_values_are_refused_clearly(name):
    spec = next(s for s in SPECS if s.name == name)
    xs = spec.inputs("float64", spec.shapes[0])
    with pytest.raises(TypeError, match="depends on the value of input"):
        kg.function(xs, spec.build(*xs))
