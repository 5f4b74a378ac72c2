"""Errors that say what happened: an integer index out of range is an
IndexError (as NumPy, and kgen's own gather), a dot whose shapes do not fit
names `dot` (the operation written, not the matmul it lowers to), and a size
the simplifier wrote as a power (x.shape[0] * x.shape[0] -> x.shape[0] ** 2)
is still a size the shape phase computes."""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T


def _numpy_raises(exc_type, fn):
    with pytest.raises(exc_type):
        fn()


V, M = np.arange(3.0), np.arange(6.0).reshape(2, 3)
INDEX_CASES = [  # (name, build, value): NumPy raises IndexError for each
    ("v[5]", lambda v, m: v[5], V),
    ("v[3]", lambda v, m: v[3], V),
    ("v[-4]", lambda v, m: v[-4], V),
    ("m[2]", lambda v, m: m[2], M),
    ("m[-3]", lambda v, m: m[-3], M),
    ("m[1, 3]", lambda v, m: m[1, 3], M),
    ("m[:, -4]", lambda v, m: m[:, -4], M),
    ("m[0, ::2][5]", lambda v, m: m[0, ::2][5], M),
    ("empty[0]", lambda v, m: v[0], np.zeros(0)),
]


@pytest.mark.parametrize("case", INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_integer_index_out_of_range_is_an_index_error(case):
    _, build, value = case
    v, m = kg.vector("v"), kg.matrix("m")
    expr = build(v, m)
    x = v if value.ndim == 1 else m
    _numpy_raises(IndexError, lambda: build(value, value))
    f = kg.function([x], expr)
    with pytest.raises(kg.KgenIndexError, match="out of bounds for axis") as info:
        f(value)
    assert isinstance(info.value, IndexError) and not isinstance(info.value, ValueError)
    with pytest.raises(IndexError):  # the reference evaluator agrees
        expr.eval({x: value})


def test_index_errors_name_the_axis_and_size():
    m = kg.matrix("m")
    f = kg.function([m], m[1, -4])
    with pytest.raises(IndexError, match=r"index -4 is out of bounds for axis 1 with size 3"):
        f(M)


def test_in_range_indices_match_numpy():
    v, m = kg.vector("v"), kg.matrix("m")
    f = kg.function([v, m], [v[-3], v[2], m[-2], m[1, -1], m[:, -3]])
    for got, want in zip(f(V, M), [V[-3], V[2], M[-2], M[1, -1], M[:, -3]]):
        np.testing.assert_array_equal(got, want)


def test_static_index_out_of_range_is_an_index_error_when_built():
    s = T.tensor("s", "float64", (3,))
    for build in (lambda: s[5], lambda: s[-4], lambda: s[0, 0]):
        with pytest.raises(kg.KgenIndexError):
            build()


def test_gather_out_of_range_is_an_index_error_everywhere():
    v, i = kg.vector("v"), kg.lvector("i")
    f = kg.function([v, i], v[i])
    _numpy_raises(IndexError, lambda: V[np.array([0, 3])])
    with pytest.raises(kg.KgenIndexError):
        f(V, np.array([0, 3]))
    with pytest.raises(kg.KgenIndexError):
        v[i].eval({v: V, i: np.array([0, 3])})


@pytest.mark.parametrize("name, build", [
    ("dot", lambda a, b: kg.dot(a, b)),
    ("dot", lambda a, b: a.dot(b)),
    ("dot", lambda a, b: T.dot(a, b)),
    ("matmul", lambda a, b: a @ b),
    ("matmul", lambda a, b: kg.matmul(a, b)),
])
def test_shape_errors_name_the_operation_written(name, build):
    A, B = np.ones((3, 4)), np.ones(5)
    _numpy_raises(ValueError, lambda: np.dot(A, B))
    # static shapes: at build time
    sa, sb = T.tensor("sa", "float64", (3, 4)), T.tensor("sb", "float64", (5,))
    with pytest.raises(kg.ShapeError, match=rf"^{name}: shapes \(3, 4\) and \(5,\)"):
        build(sa, sb)
    # unknown shapes: at run time (the C message), and in the reference evaluator
    a, b = kg.matrix("a"), kg.vector("b")
    expr = build(a, b)
    f = kg.function([a, b], expr)
    with pytest.raises(kg.ShapeError, match=rf"^{name}: shapes \(3, 4\) and \(5,\) do not fit"):
        f(A, B)
    with pytest.raises(kg.ShapeError, match=rf"^{name}: "):
        expr.eval({a: A, b: B})
    np.testing.assert_allclose(f(np.ones((3, 5)), B), np.ones((3, 5)) @ B)
    # the CUDA target's host shape phase is the same C
    from kgen import __version__
    from kgen.codegen.cuda import render_host
    host = render_host([kg.kernel("k", [a, b], expr).plan(True)], __version__)
    # the op's name is an argument of the message's fixed format (never part of it)
    assert '"%s: shapes' in host and f'"{name}"' in host


def test_dot_of_two_matrices_names_dot():
    a, b = kg.matrix("a"), kg.matrix("b")
    f = kg.function([a, b], kg.dot(a, b))
    with pytest.raises(kg.ShapeError, match=r"^dot: shapes \(2, 3\) and \(2, 3\)"):
        f(np.ones((2, 3)), np.ones((2, 3)))


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("shape", [(3, 2), (0, 5), (1, 1), (4, 0)])
def test_sizes_written_as_powers(optimize, shape):
    """x.shape[0] * x.shape[0] is x.shape[0] ** 2 once simplified."""
    x = kg.matrix("x")
    n0, n1 = x.shape[0], x.shape[1]
    outs = [kg.arange(n0 * n0), kg.arange(n0 * n0 * n0 * n1), kg.arange(n0 ** 2 + n1),
            kg.arange(n1 * n1 - n0 * n0, 0, -1), kg.arange(-n0, n1 ** 0)]
    if optimize:
        simple = kg.simplify(outs[0])
        assert any(n.op is not None and n.op.name == "pow" for n in kg.toposort([simple]))
    f = kg.function([x], outs, optimize=optimize)
    a, b = shape
    want = [np.arange(a * a), np.arange(a ** 3 * b), np.arange(a ** 2 + b),
            np.arange(b * b - a * a, 0, -1), np.arange(-a, 1)]
    for got, w in zip(f(np.ones(shape)), want):
        np.testing.assert_array_equal(got, w)


def test_reshape_to_a_power_of_a_shape():
    m = kg.matrix("m")
    f = kg.function([m], kg.reshape(m, (m.shape[0] * m.shape[0],)))
    X = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(f(X), X.reshape(9))
    with pytest.raises(kg.ShapeError, match="reshape"):
        f(np.ones((2, 3)))


def test_a_power_overflowing_int64_is_a_shape_error():
    x = kg.matrix("x")
    f = kg.function([x], kg.arange(x.shape[1] ** 3))
    big = np.lib.stride_tricks.as_strided(np.zeros(1), (0, 2 ** 22), (8, 8))
    assert (2 ** 22) ** 3 > np.iinfo(np.int64).max
    with pytest.raises(kg.ShapeError, match="arange.*does not fit in int64"):
        f(big)


def test_sizes_from_values_are_still_refused_clearly():
    x, k = kg.matrix("x"), kg.lscalar("k")
    for expr in (kg.arange(x.shape[0] ** k), kg.arange(2 ** x.shape[0])):
        with pytest.raises(kg.KgenTypeError, match="depends on the value of"):
            kg.function([x, k], expr)
