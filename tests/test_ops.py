"""The core IR against NumPy: every op of the table in tests/op_table.py through
`.eval()`, dtype promotion (NEP 50), NumPy's corner semantics, variables,
shared variables, constants, hash-consing, printing, errors and deep graphs.

Every graph a test builds goes through the IR checker (`kg.check_graph`), by
way of the autouse fixture `checked_graphs`.
"""
import gc
import itertools
import os
import subprocess
import sys
import warnings
import weakref
from pathlib import Path

import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.expr import node as node_module
from kgen.expr import op as op_module
from kgen.expr.graph import toposort
from kgen.expr.op import REGISTRY
from kgen.expr.ops import api, everyday

import op_table
from op_table import ALL_DTYPES, HELPERS, SPECS

REPO = Path(kg.__file__).resolve().parents[1]


# ---- the IR checker over every graph built ------------------------------------------
@pytest.fixture(autouse=True)
def checked_graphs(request, monkeypatch):
    """Record every Apply node made during the test; check them all at the end."""
    if request.node.get_closest_marker("no_graph_record"):
        yield None
        return
    built = []
    make_apply = op_module.make_apply

    def recording(op, inputs, attrs, type_):
        node = make_apply(op, inputs, attrs, type_)
        built.append(node)
        return node

    monkeypatch.setattr(op_module, "make_apply", recording)
    yield built
    if built:
        kg.check_graph(built)


def rtol_for(dtype, spec=None):
    if dtype == "float32":
        return spec.tol32 if spec else 1e-5
    return 1e-11


def assert_same(got, want, spec=None, what=""):
    """Values, dtype and shape equal NumPy's (floats to a tolerance, NaN == NaN)."""
    want = np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, NumPy gives {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, NumPy gives {want.shape}"
    if want.dtype.kind == "f":
        tol = rtol_for(want.dtype.name, spec)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def numpy(fn, *args):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(fn(*args))


def ev(expr, values=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return expr.eval(values)


# ---- the table covers the registry and the public API -------------------------------------
def test_every_registered_op_has_an_entry():
    covered = set()
    for spec in SPECS:
        shapes = spec.shapes[0]
        expr = spec.build(*spec.inputs(spec.dtypes[0], shapes, static=spec.static_only))
        covered |= {n.op.name for n in toposort([expr]) if n.op is not None}
    missing = sorted(set(REGISTRY) - covered)
    assert not missing, f"ops without an entry in tests/op_table.py: {missing}"


def test_every_public_function_has_an_entry():
    functions = {name for module in (api, everyday) for name, obj in vars(module).items()
                 if not name.startswith("_") and callable(obj)
                 and getattr(obj, "__module__", None) == module.__name__}
    ops = {name for module in (api, everyday) for name, obj in vars(module).items()
           if isinstance(obj, op_module.Op)}
    tested = {s.api for s in SPECS} | set(HELPERS)
    missing = sorted((functions - tested) | {n for n in ops - tested
                                             if getattr(kg, n).name not in tested})
    assert not missing, f"public functions without an entry in tests/op_table.py: {missing}"
    from kgen.tensor.nnet import abstract_conv
    from kgen.tensor.signal import pool
    layers = {"conv2d", "pool_2d"}  # compositions outside kgen.expr.ops (nnet, signal)
    assert callable(abstract_conv.conv2d) and callable(pool.pool_2d)
    assert {s.api for s in SPECS} <= functions | ops | set(REGISTRY) | layers, "unknown api names"


def test_table_is_well_formed():
    for spec in SPECS:
        assert not set(spec.dtypes) & set(spec.rejects), spec.name
        for shapes in spec.shapes:
            assert len(shapes) == spec.arity, spec.name
    assert kg.switch is kg.where and T.switch is kg.where


# ---- every op against NumPy ------------------------------------------------------------------
@pytest.mark.parametrize("spec,dtype", [(s, d) for s in SPECS for d in s.dtypes],
                         ids=lambda v: v.name if isinstance(v, op_table.OpSpec) else v)
def test_op_matches_numpy(spec, dtype):
    rng = np.random.default_rng(abs(hash((spec.name, dtype))) % 2**32)
    for shapes in spec.shapes:
        arrays = spec.sample(rng, dtype, shapes)
        want = numpy(spec.ref, *arrays)
        for static in ([True] if spec.static_only else [False, True]):
            xs = spec.inputs(dtype, shapes, static=static)
            expr = spec.build(*xs)
            what = f"{spec.name} {dtype} {shapes} static={static}"
            assert expr.dtype == want.dtype.name, f"{what}: type rule says {expr.dtype}"
            assert expr.ndim == want.ndim, what
            for d, n in zip(expr.type.shape, want.shape):
                assert d is None or d == n, f"{what}: static shape {expr.type.shape}"
            assert_same(ev(expr, dict(zip(xs, arrays))), want, spec, what)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.rejects], ids=lambda s: s.name)
def test_unsupported_dtypes_raise_type_error(spec):
    for dtype in spec.rejects:
        for shapes in spec.shapes:
            with pytest.raises(TypeError) as info:
                spec.build(*spec.inputs(dtype, shapes))
            message = str(info.value)
            assert dtype in message, message
            assert any(name in message for name in REGISTRY), message  # names the op


BINARY = [s for s in SPECS if s.kind == "elementwise" and s.arity == 2]


@pytest.mark.parametrize("spec", BINARY, ids=lambda s: s.name)
def test_mixed_dtypes_promote_like_numpy(spec):
    rng = np.random.default_rng(1)
    for d1, d2 in itertools.product(ALL_DTYPES, repeat=2):
        a = op_table.sample(spec.domain[0], rng, (2, 3), d1)
        b = op_table.sample(spec.domain[1], rng, (3,), d2)
        x, y = kg.tensor.tensor("a", d1, shape=(None, None)), kg.vector("b", d2)
        try:
            want = numpy(spec.ref, a, b)
        except TypeError:
            want = None
        if want is None or want.dtype.name not in ALL_DTYPES:
            with pytest.raises(TypeError):
                spec.build(x, y)
            continue
        assert_same(ev(spec.build(x, y), {x: a, y: b}), want, what=f"{spec.name} {d1} {d2}")


@pytest.mark.parametrize("spec", BINARY, ids=lambda s: s.name)
def test_weak_python_scalars_follow_nep50(spec):
    rng = np.random.default_rng(2)
    scalars = {"any": (2, 0.5, True, -3), "nonzero": (2, 0.5, True, -3),
               "base": (2, 0.5, True), "exponent": (2, 0.5, True, 0)}
    for dtype in ALL_DTYPES:
        for pos in (0, 1):
            other = spec.domain[1 - pos]
            arr = op_table.sample(other, rng, (4,), dtype)
            x = kg.vector("x", dtype)
            for s in scalars[spec.domain[pos]]:
                args = (s, arr) if pos == 0 else (arr, s)
                sym = (s, x) if pos == 0 else (x, s)
                try:
                    want = numpy(spec.ref, *args)
                except (TypeError, OverflowError, ValueError):
                    want = None
                if want is None or want.dtype.name not in ALL_DTYPES:
                    with pytest.raises(TypeError):
                        spec.build(*sym)
                    continue
                expr = spec.build(*sym)
                assert_same(ev(expr, {x: arr}), want, what=f"{spec.name} {sym} {dtype}")


def test_nep50_examples():
    f32, i32, b = kg.fvector("f"), kg.ivector("i"), kg.bvector("b")
    assert (f32 * 0.1).dtype == "float32"
    assert (0.1 * f32).dtype == "float32"
    assert (i32 + 1).dtype == "int32"
    assert (i32 * 0.5).dtype == "float64"
    assert (i32 / 2).dtype == "float64"
    assert (f32 / 2).dtype == "float32"
    assert (b + 1).dtype == "int64"
    assert (i32 + True).dtype == "int32"
    # NumPy scalars and arrays are strong
    assert (f32 + np.float64(0.1)).dtype == "float64"
    assert (f32 + np.float32(0.1)).dtype == "float32"
    assert (i32 + np.int64(1)).dtype == "int64"
    assert (f32 + np.array(0.1)).dtype == "float64"
    assert (f32 * kg.constant(0.1, dtype="float64")).dtype == "float64"
    out = ev(f32 * 0.1, {f32: np.ones(3, "float32")})
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.float32(0.1))


def test_python_int_that_does_not_fit_is_a_type_error():
    i32 = kg.ivector("i")
    with pytest.raises(TypeError, match="add.*2147483648.*int32"):
        i32 + 2**31
    assert (i32 + (2**31 - 1)).dtype == "int32"
    assert (i32 + 2.0**40).dtype == "float64"
    with pytest.raises(TypeError, match="int64"):
        kg.lvector() + 2**70
    assert (kg.lvector() * -(2**63)).dtype == "int64"


# ---- NumPy's corners ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_floor_division_and_modulo_floor(dtype):
    a = np.array([7, -7, 7, -7, 0, 5, -5], dtype)
    b = np.array([2, 2, -2, -2, 3, -3, 3], dtype)
    x, y = kg.vector("x", dtype), kg.vector("y", dtype)
    assert_same(ev(x // y, {x: a, y: b}), a // b)
    assert_same(ev(x % y, {x: a, y: b}), a % b)
    assert_same(ev(x // 2, {x: a}), a // 2)
    assert_same(ev(x % -3, {x: a}), a % -3)
    np.testing.assert_array_equal(ev(x % y, {x: a, y: b}) * np.sign(b) >= 0, True)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_division_by_zero_gives_zero(dtype):
    x, y = kg.vector("x", dtype), kg.vector("y", dtype)
    a, z = np.array([7, -7, 0, 1], dtype), np.zeros(4, dtype)
    for expr in (x // y, x % y):
        out = ev(expr, {x: a, y: z})
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, 0)
    np.testing.assert_array_equal(ev(x // 0, {x: a}), 0)
    np.testing.assert_array_equal(ev(x % 0, {x: a}), 0)


def test_float_division_by_zero_is_numpys():
    x = kg.vector("x")
    a = np.array([1.0, -1.0, 0.0])
    assert_same(ev(x / 0.0, {x: a}), numpy(np.true_divide, a, 0.0))
    assert_same(ev(x // 0.0, {x: a}), numpy(np.floor_divide, a, 0.0))
    assert_same(ev(x % 0.0, {x: a}), numpy(np.remainder, a, 0.0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_propagates_through_max_min_maximum_minimum_clip(dtype):
    a = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], dtype)
    x = kg.matrix("x", dtype)
    for fn in (kg.max, kg.min):
        for axis in (None, 0, 1):
            out = ev(fn(x, axis=axis), {x: a})
            assert_same(out, numpy(getattr(np, fn.__name__), a, axis))
    assert np.isnan(ev(x.max(), {x: a}))
    for fn, ref in ((kg.maximum, np.maximum), (kg.minimum, np.minimum)):
        assert_same(ev(fn(x, 2.0), {x: a}), ref(a, 2.0))
        assert_same(ev(fn(2.0, x), {x: a}), ref(2.0, a))
    assert_same(ev(kg.clip(x, 2, 4), {x: a}), np.clip(a, 2, 4))
    assert_same(ev(kg.argmax(x, axis=1), {x: a}), np.argmax(a, axis=1))
    assert_same(ev(kg.argmin(x), {x: a}), np.argmin(a))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_min_of_large_arrays_vectorized_and_threaded_still_see_one_nan(dtype):
    """Large max/min run as vectorized (and threaded) loops with a NaN flag
    beside the accumulator: a single NaN anywhere, in any thread's part, in
    a strided view or along a kept axis, still makes the result NaN."""
    rng = np.random.default_rng(7)
    x = kg.matrix("x", dtype)
    fs = {(fn.__name__, axis, t): kg.function([x], fn(x.T if t else x, axis=axis))
          for fn in (kg.max, kg.min) for axis in (None, 0, 1) for t in (False, True)}
    for where in [None, (0, 0), (299, 999), (150, 517), (3, 1)]:
        a = rng.standard_normal((300, 1000)).astype(dtype)
        if where is not None:
            a[where] = np.nan
        for (name, axis, t), f in fs.items():
            want = getattr(np, name)(a.T if t else a, axis=axis)
            assert_same(f(a), want)


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_mean_var_std_of_ints_and_bools_are_float64(dtype):
    a = np.array([[1, 0, 3], [4, 5, 1]]).astype(dtype)
    x = kg.matrix("x", dtype)
    for fn, ref in ((kg.mean, np.mean), (kg.var, np.var), (kg.std, np.std)):
        for axis in (None, 0, (1,)):
            expr = fn(x, axis=axis)
            assert expr.dtype == "float64"
            assert_same(ev(expr, {x: a}), ref(a, axis=axis))
    assert_same(ev(x.mean(), {x: a}), a.mean())


def test_sum_and_prod_widen_small_ints_like_numpy():
    for dtype in ("bool", "int32"):
        x = kg.vector("x", dtype)
        a = np.array([1, 1, 0]).astype(dtype)
        assert_same(ev(kg.sum(x), {x: a}), np.sum(a))
        assert_same(ev(kg.prod(x), {x: a}), np.prod(a))
    x = kg.fvector("x")
    assert kg.sum(x).dtype == "float32" and kg.max(kg.bvector()).dtype == "bool"


def test_logsumexp_softmax_are_stable():
    x = kg.vector("x")
    a = np.array([1000.0, 1000.0, -1000.0])
    np.testing.assert_allclose(ev(kg.logsumexp(x), {x: a}), 1000 + np.log(2))
    np.testing.assert_allclose(ev(kg.softmax(x), {x: a}), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(ev(kg.log_softmax(x), {x: a})[:2], -np.log(2))
    assert ev(kg.logsumexp(x), {x: np.full(3, -np.inf)}) == -np.inf
    m = kg.matrix("m")
    out = ev(kg.logsumexp(m, axis=1, keepdims=True), {m: np.array([[-np.inf] * 2, [0, 0]])})
    np.testing.assert_allclose(out, [[-np.inf], [np.log(2)]])


def test_reduction_axis_errors():
    x = kg.tensor3("x")
    with pytest.raises(kg.ShapeError, match="sum.*axis 3.*3-d"):
        kg.sum(x, axis=3)
    with pytest.raises(kg.ShapeError, match="sum.*axis -4"):
        kg.sum(x, axis=-4)
    with pytest.raises(kg.ShapeError, match="repeated axis"):
        kg.sum(x, axis=(0, -3))
    with pytest.raises(TypeError, match="axis"):
        kg.mean(x, axis=1.0)
    with pytest.raises(TypeError, match="argmax.*axis"):
        kg.argmax(x, axis=(0, 1))
    with pytest.raises(kg.ShapeError, match=r"max.*zero-size.*\(0, 3\)"):
        kg.max(kg.matrix(shape=(0, 3)), axis=0)
    assert kg.max(kg.matrix(shape=(0, 3)), axis=1).type.shape == (0,)
    with pytest.raises(ValueError):
        ev(kg.max(x), {x: np.zeros((2, 0, 3))})


def test_reductions_are_hash_consed_across_axis_spellings():
    x = kg.matrix("x")
    assert kg.sum(x, axis=-1) is kg.sum(x, axis=1) is x.sum(axis=(1,))
    assert kg.sum(x) is kg.sum(x, axis=(1, 0))
    assert kg.sum(x, keepdims=True) is not kg.sum(x)


# ---- linear algebra ---------------------------------------------------------------------------
def test_dot_shape_error_names_op_and_shapes():
    a, v = kg.matrix("a", shape=(3, 4)), kg.vector("v", shape=(5,))
    with pytest.raises(kg.ShapeError) as info:
        kg.dot(a, v)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "dot" in message and "(3, 4)" in message and "(5,)" in message
    with pytest.raises(kg.ShapeError, match=r"matmul.*\(3, 4\).*\(5,\)"):
        a @ v
    with pytest.raises(kg.ShapeError, match=r"\(3, 4\).*\(3, 4\)"):
        kg.dot(a, a)
    assert kg.dot(a, a.T).type.shape == (3, 3)
    # unknown sizes are checked at run time, naming the operation written
    m, w = kg.matrix("m"), kg.vector("w")
    with pytest.raises(ValueError, match=r"^dot: .*\(3, 4\).*\(5,\)"):
        ev(kg.dot(m, w), {m: np.ones((3, 4)), w: np.ones(5)})
    with pytest.raises(ValueError, match=r"^matmul: .*\(3, 4\).*\(5,\)"):
        ev(m @ w, {m: np.ones((3, 4)), w: np.ones(5)})


def test_matmul_argument_errors():
    with pytest.raises(kg.ShapeError, match="matmul"):
        kg.matmul(kg.vector(), kg.scalar())
    with pytest.raises(kg.ShapeError, match=r"dot.*\(2, 3, 4\).*\(5, 2\)"):
        kg.dot(kg.tensor3(shape=(2, 3, 4)), kg.matrix(shape=(5, 2)))  # N-d dot: last with -2
    with pytest.raises(TypeError):
        kg.dot(kg.vector(), "abc")
    with pytest.raises(kg.ShapeError, match=r"\(2, 3, 4\).*\(5, 4, 2\)"):
        kg.matmul(kg.tensor3(shape=(2, 3, 4)), kg.tensor3(shape=(5, 4, 2)))


# ---- shapes ---------------------------------------------------------------------------------------
def test_shape_errors_name_op_and_shapes():
    m34 = kg.matrix("m", shape=(3, 4))
    cases = [
        (lambda: kg.vector(shape=(3,)) + kg.vector(shape=(4,)), r"add.*\(3,\).*\(4,\)"),
        (lambda: kg.where(kg.bvector(shape=(3,)), kg.vector(shape=(4,)), 0), r"where.*\(3,\)"),
        (lambda: m34.reshape((5, 2)), r"reshape.*\(3, 4\).*\(5, 2\)"),
        (lambda: m34.reshape((-1, -1)), "reshape.*one -1"),
        (lambda: m34.reshape((5, -1)), r"reshape.*\(3, 4\)"),
        (lambda: kg.concatenate([m34, kg.matrix(shape=(3, 5))]), r"concatenate.*\(3, 4\).*\(3, 5\)"),
        (lambda: kg.concatenate([m34, kg.vector()]), "concatenate"),
        (lambda: kg.concatenate([kg.scalar(), kg.scalar()]), "concatenate.*zero-dim"),
        (lambda: kg.stack([kg.vector(shape=(2,)), kg.vector(shape=(3,))]), r"stack.*\(2,\).*\(3,\)"),
        (lambda: kg.stack([kg.vector(), kg.matrix()]), "stack"),
        (lambda: m34.dimshuffle(0), r"dimshuffle.*axis 1.*\(3, 4\)"),
        (lambda: m34.dimshuffle(0, 0), "dimshuffle"),
        (lambda: kg.squeeze(m34, 0), r"squeeze.*\(3, 4\)"),
        (lambda: kg.transpose(m34, (0, 0)), "transpose"),
        (lambda: m34[:, ::0], "step"),
        (lambda: kg.arange(0, 5, 0), "arange.*step"),
        (lambda: kg.matmul(m34, kg.matrix(shape=(3, 4))), r"matmul.*\(3, 4\)"),
        (lambda: kg.expand_dims(m34, 3), "expand_dims"),
    ]
    for build, pattern in cases:
        with pytest.raises(kg.ShapeError, match=pattern):
            build()
    # an integer index out of range is an IndexError, as in NumPy
    for build, pattern in [(lambda: m34[3], r"subtensor.*index 3.*size 3.*\(3, 4\)"),
                           (lambda: m34[0, -5], r"index -5.*axis 1 with size 4"),
                           (lambda: m34[0, 0, 0], "too many indices")]:
        with pytest.raises(kg.KgenIndexError, match=pattern):
            build()


def test_run_time_shape_errors_name_op_and_shapes():
    x, y, m, i = kg.vector("x"), kg.vector("y"), kg.matrix("m"), kg.lvector("i")
    cases = [
        (x + y, {x: np.ones(3), y: np.ones(4)}, r"add.*\(3,\).*\(4,\)"),
        (m.reshape((5, -1)), {m: np.ones((3, 4))}, r"reshape.*\(3, 4\)"),
        (kg.concatenate([m, m.T]), {m: np.ones((3, 4))}, r"concatenate.*\(3, 4\).*\(4, 3\)"),
        (m.dimshuffle(0), {m: np.ones((3, 2))}, r"dimshuffle.*\(3, 2\)"),
        (kg.dot(m, x), {m: np.ones((3, 4)), x: np.ones(5)}, r"^dot:.*\(3, 4\).*\(5,\)"),
    ]
    for expr, values, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            ev(expr, values)
    # integer indices out of range: IndexError, as NumPy (and the compiled code)
    for expr, values, pattern in [
            (x[5], {x: np.ones(3)}, r"subtensor.*\(3,\)"),
            (x[-4], {x: np.ones(3)}, r"subtensor.*index -4.*\(3,\)"),
            (x[i], {x: np.ones(3), i: np.array([0, 3])}, r"gather.*\(3,\)")]:
        with pytest.raises(kg.KgenIndexError, match=pattern):
            ev(expr, values)


def test_static_shapes_propagate():
    a, b = kg.matrix("a", shape=(3, 1)), kg.matrix("b", shape=(1, 4))
    assert (a + b).type.shape == (3, 4)
    assert (kg.vector(shape=(5,)) * kg.matrix(shape=(2, 5))).type.shape == (2, 5)
    assert (kg.matrix(shape=(None, 5)) + kg.vector(shape=(5,))).type.shape == (None, 5)
    m = kg.matrix("m", shape=(3, 4))
    assert m.reshape((2, -1)).type.shape == (2, 6)
    assert m.T.type.shape == (4, 3)
    assert m[1:, None, ::-2].type.shape == (2, 1, 2)
    assert kg.sum(m, axis=0, keepdims=True).type.shape == (1, 4)
    assert kg.concatenate([m, m], axis=1).type.shape == (3, 8)
    assert kg.arange(5).type.shape == (5,) and kg.arange(0, 1, 0.25).type.shape == (4,)
    assert kg.dot(m, kg.vector(shape=(4,))).type.shape == (3,)
    assert kg.squeeze(kg.tensor3(shape=(1, 3, 1))).type.shape == (3,)
    assert (m.shape[0] * 2).eval() == 6  # static sizes are constants
    assert m.dimshuffle("x", 1, 0).type.shape == (1, 4, 3)


def test_symbolic_shapes_are_int64_scalars():
    x = kg.matrix("x")
    n = x.shape[0]
    assert n.dtype == "int64" and n.ndim == 0
    assert len(x.shape) == 2 and x.shape[-1] is x.shape[1]
    a = np.ones((3, 4))
    assert ev(n * x.shape[1], {x: a}) == 12
    assert ev(kg.cast(n, "float64") / 2, {x: a}) == 1.5
    assert_same(ev(x.reshape((x.shape[1], x.shape[0])), {x: a}), a.reshape(4, 3))
    assert_same(ev(kg.arange(n), {x: a}), np.arange(3))
    with pytest.raises(IndexError):
        x.shape[2]


def test_reshape_and_friends_accept_the_usual_spellings():
    x = kg.tensor3("x")
    a = np.arange(24.0).reshape(2, 3, 4)
    assert_same(ev(x.reshape(6, 4), {x: a}), a.reshape(6, 4))
    assert_same(ev(x.reshape([6, -1]), {x: a}), a.reshape(6, -1))
    assert_same(ev(x.reshape(np.int64(24)), {x: a}), a.reshape(24))
    assert_same(ev(kg.reshape(x, x.shape), {x: a}), a)
    assert_same(ev(x.transpose((2, 0, 1)), {x: a}), a.transpose(2, 0, 1))
    assert_same(ev(x.dimshuffle((2, 0, 1)), {x: a}), a.transpose(2, 0, 1))
    assert x.reshape(x.shape) is not None
    with pytest.raises(TypeError, match="reshape"):
        x.reshape(("a",))
    with pytest.raises(TypeError, match="reshape"):
        x.reshape((2.5, -1))
    with pytest.raises(kg.ShapeError, match="negative"):
        x.reshape((-3,))


def test_indexing_errors():
    x = kg.matrix("x")
    with pytest.raises(TypeError, match="index"):
        x[0.5]
    with pytest.raises(TypeError, match="integers"):
        x[kg.vector()]
    with pytest.raises(TypeError, match="integers"):
        x[[True, False]]
    with pytest.raises(TypeError):
        x[1, kg.lvector()]
    with pytest.raises(TypeError):
        x[..., ...]
    with pytest.raises(TypeError):
        x["a"]


def test_integer_array_indexing_nll_idiom():
    p, y = kg.matrix("p"), kg.ivector("y")
    nll = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    pa = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    ya = np.array([1, 0, 1], "int32")
    assert_same(ev(nll, {p: pa, y: ya}), -np.mean(np.log(pa[np.arange(3), ya])))
    assert_same(ev(p[y], {p: pa, y: ya}), pa[ya])
    assert_same(ev(p[y[0], -1], {p: pa, y: ya}), pa[ya[0], -1])
    assert_same(ev(p[y[1], y[0]], {p: pa, y: ya}), pa[ya[1], ya[0]])


def test_where_switch_and_cast():
    c, x = kg.bvector("c"), kg.fvector("x")
    ca, xa = np.array([True, False, True]), np.array([1, 2, 3], "float32")
    assert_same(ev(kg.switch(c, x, 0), {c: ca, x: xa}), np.where(ca, xa, np.float32(0)))
    assert kg.where(c, x, 0.5).dtype == "float32"
    assert kg.where(c, 1, 2).dtype == "int64"
    assert kg.where(c, x, kg.dscalar()).dtype == "float64"
    assert_same(ev(kg.where(x > 1.5, x, -x), {x: xa}), np.where(xa > 1.5, xa, -xa))
    assert kg.cast(x, "float32") is x and x.astype("float32") is x
    assert x.astype(np.int64).dtype == "int64"
    assert_same(ev(kg.cast(x * 1.5, "int32"), {x: xa}), (xa * np.float32(1.5)).astype("int32"))
    for bad in ("int8", "complex64", "foo", object):
        with pytest.raises(TypeError, match="cast"):
            kg.cast(x, bad)


def test_comparisons_and_logic_give_bools():
    x, y = kg.vector("x"), kg.vector("y")
    for expr in (x < y, x <= y, x > y, x >= y, kg.eq(x, y), kg.neq(x, y), kg.isnan(x),
                 (x < y) & (x > 0), (x < y) | ~(x > 0)):
        assert expr.dtype == "bool"
    assert (x == y) is False and (x != y) is True and (x == x) is True
    assert bool(x < y) is True and bool(x) is True and not (not x)  # truthy, as in Theano
    with pytest.raises(TypeError):
        list(x)
    with pytest.raises(TypeError):
        len(x)
    a, b = np.array([1.0, 2.0, np.nan]), np.array([2.0, 2.0, 1.0])
    assert_same(ev((x < y) | ~(x > 0), {x: a, y: b}), (a < b) | ~(a > 0))


def test_numpy_arrays_on_the_left_defer_to_kgen():
    x = kg.vector("x")
    a = np.array([1.0, 2.0])
    for expr, want in ((a + x, a + a), (a * x, a * a), (a - x, a - a), (a < x, a < a),
                       (np.float64(2) ** x, 2.0 ** a), (np.ones((3, 2)) @ x, np.ones((3, 2)) @ a)):
        assert isinstance(expr, kg.Variable)
        assert_same(ev(expr, {x: a}), want)


# ---- variables ------------------------------------------------------------------------------------
THEANO = {"d": "float64", "f": "float32", "i": "int32", "l": "int64"}
KINDS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}


def test_theano_constructor_names():
    for (p, dtype), (kind, ndim) in itertools.product(THEANO.items(), KINDS.items()):
        for ns in (kg, T):
            v = getattr(ns, p + kind)("v")
            assert (v.dtype, v.ndim, v.name, v.type.shape) == (dtype, ndim, "v", (None,) * ndim)
    for kind, ndim in KINDS.items():
        v = getattr(kg, kind)(dtype="int32")
        assert (v.dtype, v.ndim, v.name) == ("int32", ndim, None)
        assert getattr(T, kind) is getattr(kg, kind)
    x = T.tensor("x", "float32", shape=(None, 3))
    assert (x.dtype, x.type.shape, x.ndim) == ("float32", (None, 3), 2)
    assert kg.matrix(shape=(2, 3)).type.shape == (2, 3)
    for bad in (lambda: kg.matrix(shape=(3,)), lambda: kg.matrix(shape=(3, -1)),
                lambda: kg.vector(dtype="complex64"), lambda: kg.vector(dtype="int8")):
        with pytest.raises(TypeError):
            bad()
    for name in ("sigmoid", "relu", "softplus", "categorical_crossentropy",
                 "binary_crossentropy"):
        assert getattr(T.nnet, name) is getattr(kg, name)
    for name in ("shared", "config", "pprint", "graph_size", "exp", "dot", "dimshuffle"):
        assert getattr(T, name) is getattr(kg, name)


def test_inputs_keep_their_identity():
    assert kg.vector("x") is not kg.vector("x")
    x = kg.vector("x")
    assert x == x and hash(x) == hash(x) and {x: 1}[x] == 1


def test_config_floatx():
    assert kg.config.floatX in ("float64", "float32")
    old = kg.config.floatX
    try:
        kg.config.floatX = "float32"
        assert kg.vector().dtype == kg.scalar().dtype == T.tensor(shape=(2,)).dtype == "float32"
        assert kg.dvector().dtype == "float64"
        kg.config.floatX = "float64"
        assert kg.matrix().dtype == "float64"
        with pytest.raises(ValueError):
            kg.config.floatX = "int32"
    finally:
        kg.config.floatX = old


@pytest.mark.no_graph_record
def test_kgen_floatx_environment_variable():
    code = ("import kgen as kg; print(kg.config.floatX, kg.vector().dtype, "
            "kg.dvector().dtype, (kg.vector() * 0.5).dtype)")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for value, want in (("float32", "float32 float32 float64 float32"),
                        ("float64", "float64 float64 float64 float64")):
        out = subprocess.run([sys.executable, "-c", code], env=dict(env, KGEN_FLOATX=value),
                             capture_output=True, text=True, check=True)
        assert out.stdout.split() == want.split()
    env.pop("KGEN_FLOATX", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[0] == "float64"


def test_eval_arguments():
    x, y = kg.vector("x"), kg.fscalar("y")
    assert_same(ev(x + 1, {x: [1, 2], y: 5.0}), np.array([2.0, 3.0]))  # unused entries ignored
    assert_same(ev(x * 2, {x: np.arange(2)}), np.array([0.0, 2.0]))  # int64 -> float64 is safe
    assert_same(ev(y + 1, {y: 0.5}), np.float32(1.5))  # Python scalars are weak
    assert ev(kg.constant(2) * 3) == 6
    with pytest.raises(TypeError, match="x"):
        ev(x + 1)
    with pytest.raises(TypeError, match=r"x.*1-d.*\(2, 2\)"):
        ev(x + 1, {x: np.ones((2, 2))})
    with pytest.raises(TypeError, match="float32.*float64"):
        ev(y + 1, {y: np.float64(1)})
    with pytest.raises(TypeError):
        ev(x + 1, {x: np.array(["a"])})
    s = kg.vector("s", shape=(3,))
    with pytest.raises(kg.ShapeError, match=r"\(3,\).*\(4,\)"):
        ev(s + 1, {s: np.ones(4)})


# ---- shared variables -------------------------------------------------------------------------------
def test_shared_get_value_returns_a_copy():
    init = np.arange(3.0)
    w = kg.shared(init, name="w")
    init[0] = 99.0  # the shared variable owns its value
    v = w.get_value()
    v[1] = 99.0
    assert_same(w.get_value(), np.arange(3.0))
    assert w.get_value() is not w.get_value()
    assert (w.name, w.dtype, w.ndim, w.type.shape) == ("w", "float64", 1, (None,))


def test_shared_set_value_checks_and_shape_change():
    w = kg.shared(np.zeros(3), name="w")
    new = np.ones(5)
    w.set_value(new)
    new[0] = 7.0
    assert_same(w.get_value(), np.ones(5))
    w.set_value(np.arange(2, dtype="int32"))  # safe cast
    assert_same(w.get_value(), np.arange(2.0))
    w.set_value([1, 2.5])
    assert_same(w.get_value(), np.array([1.0, 2.5]))
    with pytest.raises(TypeError, match=r"w.*1-d.*2-d"):
        w.set_value(np.ones((2, 2)))
    with pytest.raises(TypeError, match="w.*complex128"):
        w.set_value(np.ones(3, "complex128"))
    assert_same(w.get_value(), np.array([1.0, 2.5]))  # unchanged by the failures
    f = kg.shared(np.float32(1.0))
    f.set_value(0.5)  # a Python float is weak
    assert_same(f.get_value(), np.float32(0.5))
    with pytest.raises(TypeError, match="float64.*float32"):
        f.set_value(np.float64(0.5))
    i = kg.shared(np.arange(3, dtype="int32"), name="i")
    with pytest.raises(TypeError, match="i.*float64.*int32"):
        i.set_value(np.ones(3))
    with pytest.raises(TypeError):
        i.set_value(np.ones(3, "int64"))
    s = kg.shared(np.int32(3))
    s.set_value(7)
    with pytest.raises(TypeError):
        s.set_value(2**40)
    with pytest.raises(TypeError):
        s.set_value(0.5)


def test_shared_in_expressions():
    w = kg.shared(np.array([1.0, 2.0]), name="w")
    x = kg.vector("x")
    expr = w * x + 1
    assert (w * x + 1) is expr
    assert_same(ev(expr, {x: np.array([3.0, 4.0])}), np.array([4.0, 9.0]))
    w.set_value(np.array([0.0, 0.0, 1.0]))
    assert_same(ev(expr, {x: np.ones(3)}), np.array([1.0, 1.0, 2.0]))
    assert_same(ev(w.sum()), np.float64(1.0))
    assert kg.shared(np.zeros(2)) is not kg.shared(np.zeros(2))
    assert kg.shared(1.5).dtype == "float64" and kg.shared(np.float32(1)).dtype == "float32"
    assert kg.shared(np.array([True])).dtype == "bool"
    for bad in (np.ones(2, "float16"), np.ones(2, "int8"), "abc", np.ones(2, "complex64")):
        with pytest.raises(TypeError):
            kg.shared(bad)
    assert kg.pprint(w * x) == "w * x"


# ---- constants ----------------------------------------------------------------------------------------
def test_constants():
    c = kg.constant(np.arange(3.0))
    assert isinstance(c, kg.Constant) and c.type.shape == (3,) and c.dtype == "float64"
    assert kg.constant(np.arange(3.0)) is c  # interned by value
    assert kg.constant(np.arange(3.0), dtype="float32").dtype == "float32"
    assert kg.constant(np.arange(3.0), dtype="float32") is not c
    assert kg.constant(2.5, dtype="float32").dtype == "float32"
    assert kg.constant([1, 2]).dtype == "int64" and kg.constant(True).dtype == "bool"
    assert kg.constant(np.int8(3)).dtype == "int64"  # widened to a supported dtype
    assert kg.constant(np.float32(1)).dtype == "float32"
    assert kg.constant(0.0) is not kg.constant(-0.0)
    assert kg.constant(np.nan) is kg.constant(np.nan)
    with pytest.raises(ValueError):
        c.value[0] = 5.0  # read-only, so interning is safe
    x = kg.vector("x")
    assert kg.constant(x) is x
    for bad in ("a", 1j, None, {1: 2}, [1, "a"]):
        with pytest.raises(TypeError):
            kg.constant(bad)
        with pytest.raises(TypeError):
            x + bad
    assert_same(ev(x + np.array([1.0, 2.0]), {x: np.zeros(2)}), np.array([1.0, 2.0]))
    assert_same(ev(kg.constant(np.arange(6).reshape(2, 3)).T), np.arange(6).reshape(2, 3).T)


def test_hash_consing():
    x, y = kg.vector("x"), kg.vector("y")
    assert (x + y) is (x + y)
    assert (x + y) is not (y + x)
    assert kg.exp(x) is kg.exp(x)
    assert (x + 1) is (x + 1) and (x + 1) is not (x + 1.0)
    assert (x * 2.5) is not (x * np.float64(2.5))  # weak and strong constants differ
    assert x[1:3] is x[1:3] and x[1:3] is not x[1:4]
    assert kg.softmax(x) is kg.softmax(x)
    assert kg.dimshuffle(x, "x", 0) is x.dimshuffle(("x", 0))
    assert kg.cast(x, "float32") is x.astype("float32")
    assert kg.sum(kg.exp(x) * y) is kg.sum(kg.exp(x) * y)
    a, b = (x + y) * 2, (x + y) * 2
    assert a is b and a.inputs[0] is b.inputs[0]
    assert kg.graph_size([a, b]) == 2
    assert hash(a) == hash(b)
    w = kg.shared(np.zeros(2))
    assert (w + x) is (w + x)


@pytest.mark.no_graph_record
def test_interned_nodes_are_released():
    table = node_module._interned
    gc.collect()
    before = len(table)
    x = kg.vector("x")
    expr = kg.sum(kg.exp(x) * 3.25 + x[1:])
    assert len(table) > before
    ref = weakref.ref(expr)
    del expr, x
    gc.collect()
    assert ref() is None and len(table) <= before


# ---- printing and graph size ---------------------------------------------------------------------
def test_pprint_is_readable_infix():
    x, y, m = kg.vector("x"), kg.vector("y"), kg.matrix("m")
    cases = {
        x + y * 2: "x + y * 2",
        (x + y) * 2: "(x + y) * 2",
        x - (y - 1): "x - (y - 1)",
        -x ** 2: "-x ** 2",
        (-x) ** 2: "(-x) ** 2",
        (x > 0) & (y < 1): "(x > 0) & (y < 1)",
        kg.exp(x) / kg.sum(kg.exp(x)): "t1 = exp(x)\nt1 / sum(t1, axis=(0,), keepdims=False)",
        m @ x: "m @ x",
        x[1:3]: "x[1:3]",
        m[::-1, None, 0]: "m[::-1, None, 0]",
        (x + 1)[0]: "(x + 1)[0]",
        m.shape[0] * 2: "m.shape[0] * 2",
        kg.cast(x, "float32"): "cast(x, dtype='float32')",
        kg.where(x > 0, x, 0): "where(x > 0, x, 0)",
        kg.eq(x + 1, y): "eq(x + 1, y)",
    }
    for expr, text in cases.items():
        assert kg.pprint(expr) == text
    assert kg.pprint([x + y, x * y]) == "x + y\nx * y"
    assert kg.pprint(x) == "x"
    assert "shared" in kg.pprint(kg.shared(np.zeros(2)) + x)
    text = kg.pprint(m[kg.arange(m.shape[0]), kg.lvector("y")])
    assert text == "m[arange(0, m.shape[0], 1), y]"


def test_pprint_of_infix_expressions_parses_back_as_python():
    """Parentheses are right: the text, run as Python on NumPy arrays, gives the value."""
    x, y, z = kg.vector("x"), kg.vector("y"), kg.vector("z")
    env = {"x": np.array([1.5, -2.0]), "y": np.array([0.5, 3.0]), "z": np.array([2.0, 2.0]),
           "exp": np.exp, "eq": np.equal, "maximum": np.maximum}
    exprs = [x - (y - z), x - y - z, x / (y * z), x / y * z, (x + y) ** 2, x ** (y - 1),
             (x ** 2) ** z, -(x ** 2), (-x) ** 2, x * (y @ z), (x * y) @ z, (x > y) & (y < z),
             ~(x > 0) | (y >= z), x // (y % 2), (x // y) % 2, -(x - y), x - -y,
             kg.exp(x + y) * (x - z), kg.maximum(x, y) - (y + z), (-2) ** z, 2 - (-x),
             (x < y) == (x < y), kg.eq(x < y, y < z)]
    for expr in exprs:
        if not isinstance(expr, kg.Variable):
            continue
        lines = kg.pprint(expr).split("\n")
        scope = dict(env)
        for line in lines[:-1]:
            exec(line, scope)
        got = eval(lines[-1], scope)
        want = ev(expr, {x: env["x"], y: env["y"], z: env["z"]})
        np.testing.assert_allclose(got, want, err_msg=kg.pprint(expr))


def test_graph_size():
    x, y = kg.vector("x"), kg.vector("y")
    assert kg.graph_size(x) == 0
    assert kg.graph_size(x + y) == 1
    assert kg.graph_size((x + y) * (x + y)) == 2  # shared subexpressions count once
    assert kg.graph_size([x + y, (x + y) * 2]) == 2
    assert kg.graph_size((x + y, x - y)) == 2
    assert kg.graph_size(kg.constant(3) + 1) == 1


# ---- errors ---------------------------------------------------------------------------------------
def test_error_classes():
    assert issubclass(kg.ShapeError, kg.KgenError) and issubclass(kg.ShapeError, ValueError)
    assert issubclass(kg.CompileError, kg.KgenError)
    assert issubclass(kg.BackendUnavailableError, kg.KgenError)
    assert issubclass(kg.DisconnectedInputError, kg.KgenError)
    e = kg.CompileError("failed", output="cc: error", source_path="/tmp/x.c")
    assert e.output == "cc: error" and e.source_path == "/tmp/x.c" and "cc: error" in str(e)


def test_argument_type_errors():
    x = kg.vector("x")
    for build in (lambda: x + "a", lambda: kg.exp(None), lambda: kg.exp({}), lambda: kg.exp(x, x),
                  lambda: kg.exp(), lambda: kg.sum(x, axis="a"), lambda: kg.arange(kg.vector()),
                  lambda: kg.shared(x), lambda: kg.concatenate([]),
                  lambda: kg.clip(x, None, None), lambda: kg.arange(True)):
        with pytest.raises(TypeError):
            build()


# ---- deep graphs -------------------------------------------------------------------------------------
@pytest.mark.no_graph_record
def test_100k_deep_chain():
    """Build, evaluate, print, hash, size, check and free a 100,000-op chain at
    Python's default recursion limit."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        table = node_module._interned
        gc.collect()
        before = len(table)
        x = kg.scalar("x")
        expr = x
        for i in range(50_000):
            expr = kg.sin(expr) + 0.5
        assert kg.graph_size(expr) == 100_000
        want = 0.3
        for i in range(50_000):
            want = np.sin(want) + 0.5
        np.testing.assert_allclose(ev(expr, {x: 0.3}), want, rtol=1e-12)
        text = kg.pprint(expr)
        assert text.startswith("sin(sin(") and text.endswith("+ 0.5") and len(text) > 500_000
        assert hash(expr) == hash(expr) and {expr: 1}[expr] == 1
        assert kg.check_graph(expr)
        rebuilt = x
        for i in range(50_000):
            rebuilt = kg.sin(rebuilt) + 0.5
        assert rebuilt is expr  # hash-consing over the whole chain
        ref = weakref.ref(expr)
        del expr, rebuilt, text
        assert ref() is None  # freed by reference counting, without a RecursionError
        gc.collect()
        assert len(table) <= before + 1
    finally:
        sys.setrecursionlimit(old)
