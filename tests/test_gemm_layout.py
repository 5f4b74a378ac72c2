"""A 2-d product that is only read transposed is stored transposed: the GEMM
writes C.T = B.T @ A.T and the readers stream it row by row (kgen/lower/steps.py,
_stores_transposed). Results against NumPy where the layout applies (a
gradient's (A @ B).T, a transposed product in an expression) and where it must
not (the product also read as it is, an output, a batched product, a product
transposed back)."""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T

SHAPES = [(5, 4, 3), (1, 7, 2), (6, 1, 4), (3, 5, 1), (1, 1, 1), (64, 33, 17)]


def _operands(m, k, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)), rng.standard_normal((k, n)), rng.standard_normal((n, m))


def _gemm_calls(f):
    """The GEMM calls of f's kernel, as their C text."""
    return [line.strip() for line in f.source().splitlines() if line.strip().startswith("kg_gemm_f")]


@pytest.mark.parametrize("shape", SHAPES)
def test_product_read_only_transposed(shape):
    a, b, c = kg.matrix("a"), kg.matrix("b"), kg.matrix("c")
    f = kg.function([a, b, c], T.exp(T.dot(a, b).T) * c + 1.0)
    A, B, C = _operands(*shape)
    np.testing.assert_allclose(f(A, B, C), np.exp((A @ B).T) * C + 1.0, rtol=1e-13)
    # swapped operands: the call reads b first (C.T = B.T @ A.T)
    (call,) = _gemm_calls(f)
    assert call.index("in_b") < call.index("in_a")


@pytest.mark.parametrize("shape", SHAPES)
def test_product_also_read_as_it_is_keeps_its_layout(shape):
    a, b, c = kg.matrix("a"), kg.matrix("b"), kg.matrix("c")
    p = T.dot(a, b)
    f = kg.function([a, b, c], [T.sum(p.T * c), T.tanh(p)])
    A, B, C = _operands(*shape)
    s, t = f(A, B, C)
    np.testing.assert_allclose(s, np.sum((A @ B).T * C), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t, np.tanh(A @ B), rtol=1e-13)
    (call,) = _gemm_calls(f)
    assert call.index("in_a") < call.index("in_b")


def test_product_that_is_an_output_stays_row_major():
    a, b = kg.matrix("a"), kg.matrix("b")
    p = T.dot(a, b)
    f = kg.function([a, b], [p, p.T + 1.0])
    A, B, _ = _operands(4, 3, 5)
    got, got_t = f(A, B)
    np.testing.assert_allclose(got, A @ B, rtol=1e-13)
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got_t, (A @ B).T + 1.0, rtol=1e-13)
    # the transpose itself an output: copied out of the transposed storage
    g = kg.function([a, b], p.T)
    got = g(A, B)
    np.testing.assert_allclose(got, (A @ B).T, rtol=1e-13)
    assert got.flags.c_contiguous


def test_transposed_back_and_batched_products():
    a, b, c = kg.matrix("a"), kg.matrix("b"), kg.matrix("c")
    twice = T.dot(a, b).T.T      # simplifies to the product itself
    f = kg.function([a, b, c], T.sin(twice) + c.T)
    A, B, C = _operands(3, 4, 5)
    np.testing.assert_allclose(f(A, B, C), np.sin(A @ B) + C.T, rtol=1e-13)
    x, y = kg.tensor3("x"), kg.tensor3("y")
    g = kg.function([x, y], T.exp(T.batched_dot(x, y).dimshuffle(0, 2, 1)))
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    np.testing.assert_allclose(g(X, Y), np.exp(np.transpose(X @ Y, (0, 2, 1))), rtol=1e-13)


def test_integer_product_read_only_transposed():
    a, b = kg.imatrix("a"), kg.imatrix("b")
    f = kg.function([a, b], T.dot(a, b).T * 3 + 1)
    rng = np.random.default_rng(4)
    A, B = rng.integers(-9, 9, (4, 6), dtype=np.int32), rng.integers(-9, 9, (6, 3), dtype=np.int32)
    np.testing.assert_array_equal(f(A, B), (A @ B).T * 3 + 1)


def test_tied_weight_gradient_matches_finite_differences():
    # sum(tanh(x W) W.T): the gradient for W has a term (h.T @ g).T, a product
    # read only transposed
    x = kg.matrix("x")
    rng = np.random.default_rng(2)
    W0 = rng.standard_normal((6, 4)) * 0.5
    W = kg.shared(W0.copy(), name="W")
    X = rng.standard_normal((5, 6))
    cost = T.sum(T.sin(T.dot(T.tanh(T.dot(x, W)), W.T)))
    f = kg.function([x], T.grad(cost, W))

    def c(w):
        return np.sum(np.sin(np.tanh(X @ w) @ w.T))
    eps, num = 1e-6, np.zeros_like(W0)
    for idx in np.ndindex(*W0.shape):
        d = np.zeros_like(W0)
        d[idx] = eps
        num[idx] = (c(W0 + d) - c(W0 - d)) / (2 * eps)
    np.testing.assert_allclose(f(X), num, rtol=1e-6, atol=1e-8)


def test_cuda_source_stores_it_the_same_way(monkeypatch):
    import _cuda_emu
    _cuda_emu.emulate(monkeypatch)
    a, b, c = kg.matrix("a"), kg.matrix("b"), kg.matrix("c")
    expr = T.exp(T.dot(a, b).T) * c + 1.0
    A, B, C = _operands(19, 7, 5)
    got = np.asarray(kg.function([a, b, c], expr, target="cuda")(A, B, C))
    np.testing.assert_allclose(got, np.exp((A @ B).T) * C + 1.0, rtol=1e-12)
