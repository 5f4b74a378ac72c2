"""Integers as NumPy has them: signed arithmetic wraps (two's complement) in
the compiled code too, and size arithmetic never wraps: a size outside int64
is a ShapeError naming the op, not a wrapped (small, wrong) size."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.build import flags
from kgen.build.compiler import compile_flags
from kgen.expr.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]
I32, I64 = np.iinfo(np.int32), np.iinfo(np.int64)


def _wrapping_exprs(x):
    return [(x + 1) > x, x + 1, (x - 1) < x, x * 2, (x * 2) // 2, -x, abs(x), abs(x) >= 0,
            (x + x) > x, x * x]


def _numpy(values):
    with np.errstate(all="ignore"):
        return [(values + 1) > values, values + 1, (values - 1) < values, values * 2,
                (values * 2) // 2, -values, np.abs(values), np.abs(values) >= 0,
                (values + values) > values, values * values]


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_signed_overflow_wraps_as_numpy(dtype):
    info = np.iinfo(dtype)
    values = np.array([info.max, info.min, info.max - 1, info.min + 1, 0, -1, 1,
                       info.max // 2 + 1], dtype=dtype)
    x = T.tensor("x", dtype, (None,))
    want = _numpy(values)
    f = kg.function([x], _wrapping_exprs(x))
    for k, (got, w) in enumerate(zip(f(values), want)):
        assert got.dtype == w.dtype, k
        np.testing.assert_array_equal(got, w, err_msg=str(k))
    # the simplifier folds none of them to a value that only holds without overflow
    simple = kg.simplify(_wrapping_exprs(x))
    with np.errstate(all="ignore"):
        for k, (got, w) in enumerate(zip(evaluate(simple, {x: values}), want)):
            np.testing.assert_array_equal(got, w, err_msg=str(k))


def test_the_repro_scalar_at_int32_max():
    x = kg.iscalar("x")
    f = kg.function([x], (x + 1) > x)
    with np.errstate(all="ignore"):
        want = (np.int32(I32.max) + np.int32(1)) > np.int32(I32.max)
    assert not want
    assert f(np.int32(I32.max)) == want
    assert f(np.int32(5))


def test_every_build_wraps():
    """-fwrapv in what kg.function, packages and the CUDA host half build with."""
    assert "-fwrapv" in flags.C_FLAGS and "-fwrapv" in flags.compile_args()
    for native in (True, False):
        assert compile_flags(native=native, limited_api=True).count("-fwrapv") == 1
        assert compile_flags(native=native, limited_api=False,
                             extra_compile_args=flags.compile_args()).count("-fwrapv") == 1


def test_a_package_wraps(tmp_path):
    spec = tmp_path / "wrapspec.py"
    spec.write_text(textwrap.dedent("""
        import kgen as kg
        x = kg.ivector('x')
        wraps = kg.kernel('wraps', [x], [(x + 1) > x, x * 2])
    """))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "kgen", "build", str(spec), "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "wrapspec" / "manifest.json").read_text())
    assert "-fwrapv" in json.dumps(manifest)
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(out)!r})
        import wrapspec
        gt, twice = wrapspec.wraps(np.array([{I32.max}, 3], dtype=np.int32))
        print(gt.tolist(), twice.tolist())
    """)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with np.errstate(all="ignore"):
        v = np.array([I32.max, 3], dtype=np.int32)
        assert run.stdout.split() == f"{((v + 1) > v).tolist()} {(v * 2).tolist()}".split()


def _empty(cols, dtype="float64"):
    """A zero-size array of shape (0, cols) that costs no memory."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), (0, cols),
                                           (np.dtype(dtype).itemsize,) * 2)


def test_size_product_overflow_is_a_shape_error():
    """The repro: arange(x.shape[1] * y.shape[1]) wrapped to arange(6)."""
    x, y = kg.matrix("x"), kg.matrix("y")
    f = kg.function([x, y], kg.arange(x.shape[1] * y.shape[1]))
    big = 68069166323651482
    assert 271 * big > I64.max  # so NumPy has no such array either
    with pytest.raises((ValueError, MemoryError)):
        np.arange(271 * big)
    with pytest.raises(kg.ShapeError, match=r"arange.*271 \* 68069166323651482.*int64"):
        f(_empty(271), _empty(big))
    np.testing.assert_array_equal(f(_empty(3), _empty(4)), np.arange(12))


def test_size_sum_and_difference_overflow_is_a_shape_error():
    x, y = T.tensor("x", "bool", (None, None)), T.tensor("y", "bool", (None, None))
    f = kg.function([x, y], [kg.arange(x.shape[1] + y.shape[1]),
                             kg.arange(0, y.shape[0] - x.shape[1], -1)])
    with pytest.raises(kg.ShapeError, match=r"arange.*\+.*does not fit in int64"):
        f(_empty(2 ** 62, "bool"), _empty(2 ** 62, "bool"))
    a, b = f(_empty(2, "bool"), _empty(3, "bool"))
    np.testing.assert_array_equal(a, np.arange(5))
    np.testing.assert_array_equal(b, np.arange(0, -2, -1))


def test_node_size_overflow_is_a_shape_error_before_any_allocation():
    """outer(arange(n), arange(n)) with n = 2**32: 2**64 elements."""
    x = kg.matrix("x")
    n = x.shape[1]
    f = kg.function([x], kg.outer(kg.arange(n), kg.arange(n)))
    with pytest.raises(kg.ShapeError, match=r"does not fit in int64"):
        f(_empty(2 ** 32))
    np.testing.assert_array_equal(f(_empty(3)), np.outer(np.arange(3), np.arange(3)))


def test_static_size_overflow_is_refused_when_lowering():
    v = T.tensor("v", "float64", (2 ** 40,))
    k = kg.kernel("k", [v], kg.outer(v, v))
    with pytest.raises(kg.ShapeError, match=r"^mul: .*does not fit in int64"):
        k.source("c")


def test_temporaries_check_their_size_in_bytes():
    """A temporary's element count times its itemsize must fit: the guard is
    in the source of every kernel with a run-time-sized temporary."""
    x = kg.vector("x")
    t = kg.exp(x)
    src = kg.kernel("k", [x], [t.sum() + t.max()]).source("c")
    assert "PTRDIFF_MAX / sizeof(double)" in src
