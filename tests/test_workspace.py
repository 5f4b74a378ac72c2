"""A kernel's temporaries live in one block per call that the kernel keeps,
for its next call (kg_ws_take/kg_ws_give, templates/c/prelude.h): calls of
growing, shrinking and again growing shapes, and calls from several threads at
once, must each give NumPy's answer."""
import threading

import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T


@pytest.fixture(scope="module")
def two_layer():
    # exp(a) and tanh(exp(a) @ b) are temporaries: a GEMM reads the first, the
    # second GEMM the other
    a, b, c = kg.matrix("a"), kg.matrix("b"), kg.matrix("c")
    h = T.tanh(T.dot(T.exp(a), b))
    return kg.function([a, b, c], T.dot(h, c) + 1.0)


def _reference(a, b, c):
    return np.tanh(np.exp(a) @ b) @ c + 1.0


def _args(rng, m, k, n):
    return (rng.standard_normal((m, k)) * 0.3, rng.standard_normal((k, n)) * 0.3,
            rng.standard_normal((n, 3)))


def test_temporaries_follow_the_shapes_call_after_call(two_layer):
    rng = np.random.default_rng(0)
    for m, k, n in [(5, 4, 3), (300, 200, 100), (2, 1, 1), (7, 9, 5), (300, 200, 100), (1, 1, 1)]:
        args = _args(rng, m, k, n)
        np.testing.assert_allclose(two_layer(*args), _reference(*args), rtol=1e-12, atol=1e-12)


def test_threads_calling_at_once_get_their_own_answers(two_layer):
    shapes = [(40 + 17 * t, 30 + 5 * t, 20 + 3 * t) for t in range(4)]
    results, errors = {}, []

    def work(t):
        rng = np.random.default_rng(t)
        try:
            for _ in range(20):
                args = _args(rng, *shapes[t])
                got = two_layer(*args)
                np.testing.assert_allclose(got, _reference(*args), rtol=1e-12, atol=1e-12)
            results[t] = True
        except Exception as exc:  # reported below, with the thread that raised it
            errors.append((t, exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert sorted(results) == [0, 1, 2, 3]


def test_a_refused_call_leaves_the_next_one_right(two_layer):
    rng = np.random.default_rng(3)
    good = _args(rng, 6, 5, 4)
    np.testing.assert_allclose(two_layer(*good), _reference(*good), rtol=1e-12)
    with pytest.raises(Exception, match="shape|fit"):
        two_layer(good[0], good[1][:3], good[2])   # inner sizes differ: refused
    np.testing.assert_allclose(two_layer(*good), _reference(*good), rtol=1e-12)


def test_the_temporaries_share_one_block(two_layer):
    src = two_layer.source()
    start = src.index("KG_EXPORT int kgen_fn(")
    body = src[start:src.index("\n}\n", start)]   # the run function alone
    assert "kg_ws_take(" in body and "kg_ws_give(" in body
    assert "malloc(" not in body
