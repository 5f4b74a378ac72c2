"""Reductions over the first of two axes (kernel.c.jinja's reduce_cols): rows
outer, a block of columns inner. Against NumPy, with the fused producers, the
ops, sizes around the block of 64 columns, and operands that take the strided
loops instead (transposed, broadcast, sliced)."""
import numpy as np
import pytest

import kgen as kg


@pytest.mark.parametrize("cols", [1, 7, 64, 65, 200])
def test_column_sums_of_a_fused_expression(cols):
    x, y = kg.dmatrix("x"), kg.dmatrix("y")
    f = kg.function([x, y], [kg.sum(x * (1 - y) - kg.exp(y), axis=0),
                             kg.max(x * y, axis=0), kg.min(x - y, axis=0),
                             kg.prod(1 + 0.01 * x, axis=0)])
    rng = np.random.default_rng(cols)
    xv, yv = rng.standard_normal((37, cols)), rng.standard_normal((37, cols))
    want = [np.sum(xv * (1 - yv) - np.exp(yv), axis=0), np.max(xv * yv, axis=0),
            np.min(xv - yv, axis=0), np.prod(1 + 0.01 * xv, axis=0)]
    src = f.source()
    # the sum and the prod (a float max or min keeps its NaN flag in the other loops)
    assert src.count("kg_j0 += KG_COLS_BLOCK") == 2
    for got, w in zip(f(xv, yv), want):
        np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-12)


def test_strided_and_broadcast_operands_take_the_other_loops():
    x, b = kg.dmatrix("x"), kg.dvector("b")
    f = kg.function([x, b], kg.sum(x * b, axis=0))
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((300, 90))
    bv = rng.standard_normal(90)
    for arg in (xv, np.asfortranarray(xv), xv[::2, ::3], xv.T.copy().T):
        np.testing.assert_allclose(f(arg, bv[:arg.shape[1]]), np.sum(arg * bv[:arg.shape[1]], axis=0),
                                   rtol=1e-12, atol=1e-12)
    g = kg.function([x], kg.sum(x.T, axis=0))  # rows of the transpose are columns
    np.testing.assert_allclose(g(xv), xv.sum(axis=1), rtol=1e-12, atol=1e-12)


def test_integer_and_large_column_sums():
    x = kg.lmatrix("x")
    f = kg.function([x], kg.sum(x * 3 - 1, axis=0))
    xv = np.arange(600 * 784, dtype=np.int64).reshape(600, 784) % 1000
    np.testing.assert_array_equal(f(xv), np.sum(xv * 3 - 1, axis=0))
    d = kg.dmatrix("d")  # large enough for the threads: each column's rows in order
    g = kg.function([d], kg.sum(d, axis=0))
    dv = np.random.default_rng(2).standard_normal((600, 784))
    want = np.zeros(784)
    for row in dv:  # the order reduce_cols sums in
        want += row
    np.testing.assert_array_equal(g(dv), want)
