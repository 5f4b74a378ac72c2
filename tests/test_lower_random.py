"""The lowering on seeded random expressions (tests/_random_exprs.py):
kg.function's results equal the NumPy reference evaluator's on the original
expressions. The generator's constant-first ops and where(c, x, x) shape
lenders (a bool map group that nothing stores once simplified) reach the
lowering here; the simplifier's random tests never compile."""
import numpy as np
import pytest

import kgen as kg
from _random_exprs import Gen
from kgen.expr.evaluate import evaluate

TOL = {"float64": (1e-9, 1e-10), "float32": (2e-4, 1e-5)}
BATCH = 10  # expressions per compiled function: one build each


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int32"])
def test_random_expressions_compile_and_match_the_reference(dtype):
    first = Gen(0, dtype)
    values = first.values()
    exprs = []
    for seed in range(80):
        try:
            expr = Gen(seed, dtype, inputs=first.inputs).expr(4)
            want, = evaluate([expr], values)
        except (kg.ShapeError, kg.KgenTypeError):  # shapes that do not broadcast
            continue
        exprs.append((seed, expr, want))
    assert len(exprs) >= 60
    for k in range(0, len(exprs), BATCH):
        batch = exprs[k:k + BATCH]
        f = kg.function(first.inputs, [e for _, e, _ in batch])
        outs = f(*[values[x] for x in first.inputs])
        for (seed, expr, want), got in zip(batch, outs):
            assert got.dtype == want.dtype and got.shape == want.shape, seed
            if dtype.startswith("int"):
                np.testing.assert_array_equal(got, want, err_msg=f"seed {seed}")
            else:
                finite = np.isfinite(want)
                rtol, atol = TOL[dtype]
                np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=atol,
                                           err_msg=f"seed {seed}: {kg.pprint(expr)}")
