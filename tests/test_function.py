"""kg.function on the C backend: API.md's "Kernels and functions" semantics.

Oracles are NumPy written here, or the reference evaluator where the test is
about calling conventions rather than values.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kgen as kg


def test_outputs_single_list_and_none():
    x = kg.vector("x")
    a = np.arange(4.0)
    f1 = kg.function([x], x * 2)
    assert isinstance(f1(a), np.ndarray) and np.array_equal(f1(a), a * 2)
    f2 = kg.function([x], [x + 1, x.sum()])
    out = f2(a)
    assert isinstance(out, list) and np.array_equal(out[0], a + 1) and out[1] == a.sum()
    assert kg.function([x], None)(a) == []
    assert kg.function([x], [])(a) == []


def test_updates_use_old_values_then_write_all():
    acc = kg.shared(np.zeros(3), name="acc")
    count = kg.shared(np.int64(0), name="count")
    x = kg.vector("x")
    # both updates read the values from before the call
    f = kg.function([x], acc.sum(), updates=[(acc, acc + x), (count, count + 1)])
    assert f(np.ones(3)) == 0.0
    assert f(np.ones(3)) == 3.0
    np.testing.assert_array_equal(acc.get_value(), [2.0, 2.0, 2.0])
    assert count.get_value() == 2
    swap_a, swap_b = kg.shared(np.array([1.0]), "a"), kg.shared(np.array([2.0]), "b")
    kg.function([], None, updates={swap_a: swap_b, swap_b: swap_a})()
    assert swap_a.get_value()[0] == 2.0 and swap_b.get_value()[0] == 1.0


def test_update_type_must_match():
    w = kg.shared(np.zeros(3, "float32"), name="w")
    x = kg.dvector("x")
    with pytest.raises(TypeError, match="w"):
        kg.function([x], None, updates=[(w, w + x)])      # float64 into float32
    with pytest.raises(TypeError, match="w"):
        kg.function([x], None, updates=[(w, (w + 1).sum())])  # 0-d into 1-d
    kg.function([], None, updates=[(w, w * 0.5)])  # weak scalar keeps float32


def test_inputs_must_be_symbolic():
    w = kg.shared(np.zeros(2), name="w")
    with pytest.raises(TypeError, match="shared"):
        kg.function([w], w * 2)
    with pytest.raises(TypeError):
        kg.function([kg.constant(np.ones(2))], kg.vector() * 2)


def test_unused_input_is_accepted_and_checked():
    x, unused = kg.vector("x"), kg.imatrix("unused")
    f = kg.function([x, unused], x + 1)
    np.testing.assert_array_equal(f(np.ones(2), np.zeros((1, 1), "int32")), [2.0, 2.0])
    with pytest.raises(TypeError, match="unused"):
        f(np.ones(2), np.zeros(3, "int32"))


def test_positional_and_keyword_calls():
    x, y = kg.vector("x"), kg.vector("y")
    f = kg.function([x, y], x - y)
    a, b = np.array([5.0, 6.0]), np.array([1.0, 2.0])
    np.testing.assert_array_equal(f(a, b), a - b)
    np.testing.assert_array_equal(f(y=b, x=a), a - b)
    np.testing.assert_array_equal(f(a, y=b), a - b)
    with pytest.raises(TypeError, match="2 argument"):
        f(a)
    with pytest.raises(TypeError, match="unexpected"):
        f(a, z=b)


def test_argument_dtype_rules():
    i = kg.ivector("i")
    f32 = kg.fscalar("s")
    fi = kg.function([i], i * 2)
    np.testing.assert_array_equal(fi([1, 2]), [2, 4])            # list of Python ints
    assert fi([1, 2]).dtype == np.int32
    with pytest.raises(TypeError, match="int32.*int64|int64.*int32"):
        fi(np.array([1, 2], dtype="int64"))                      # unsafe cast
    with pytest.raises(TypeError):
        fi(np.array([0.5]))
    fs = kg.function([f32], f32 + 1)
    assert fs(0.5) == np.float32(1.5) and fs(0.5).dtype == np.float32  # weak Python float
    with pytest.raises(TypeError):
        fs(np.float64(0.5))                                      # a strong float64 does not fit
    fsi = kg.function([kg.iscalar("k")], kg.iscalar("k2") * 0 + 1, ) if False else None
    k = kg.iscalar("k")
    fk = kg.function([k], k + 1)
    assert fk(1) == 2
    with pytest.raises(TypeError, match="fit"):
        fk(2**40)


def test_wrong_ndim_is_type_error_naming_input():
    x = kg.matrix("weights")
    f = kg.function([x], x.sum())
    with pytest.raises(TypeError, match=r"weights.*2-d.*\(3,\)"):
        f(np.ones(3))


def test_shape_mismatch_is_value_error_with_shapes():
    x, y = kg.vector("x"), kg.vector("y")
    f = kg.function([x, y], x + y)
    with pytest.raises(ValueError, match=r"add.*\(3,\).*\(4,\)"):
        f(np.ones(3), np.ones(4))
    a, v = kg.matrix("a"), kg.vector("v")
    g = kg.function([a, v], kg.dot(a, v))
    with pytest.raises(ValueError, match=r"^dot: .*\(3, 4\).*\(5,\)"):  # the op written
        g(np.ones((3, 4)), np.ones(5))
    s = kg.tensor.tensor("s", shape=(2, None))
    h = kg.function([s], s * 2)
    with pytest.raises(ValueError, match=r"\(2, \?\)"):
        h(np.ones((3, 3)))


def test_runtime_broadcasting_of_unknown_length_one_axes():
    x, y = kg.matrix("x"), kg.matrix("y")
    f = kg.function([x, y], x * y + x)
    a, b = np.arange(3.0).reshape(3, 1), np.arange(4.0).reshape(1, 4)
    np.testing.assert_allclose(f(a, b), a * b + a)


def test_failed_call_changes_no_shared_state():
    w = kg.shared(np.ones(3), name="w")
    x = kg.vector("x")
    f = kg.function([x], (w * x).sum(), updates=[(w, w - x)])
    before = w.get_value()
    with pytest.raises(ValueError):
        f(np.ones(4))
    np.testing.assert_array_equal(w.get_value(), before)
    p = kg.matrix("p")
    idx = kg.lvector("idx")
    g = kg.function([p, idx], p[kg.arange(idx.shape[0]), idx].sum(), updates=[(w, w * 2)])
    with pytest.raises(IndexError):
        g(np.ones((2, 3)), np.array([0, 7]))
    np.testing.assert_array_equal(w.get_value(), before)


def test_noncontiguous_misaligned_and_empty_inputs():
    x, y = kg.matrix("x"), kg.matrix("y")
    f = kg.function([x, y], kg.exp(x) * y + 1)
    base = np.random.default_rng(0).random((6, 8))
    a, b = base[::2, ::3], base.T[:3, :3]          # strided views
    np.testing.assert_allclose(f(a, b), np.exp(a) * b + 1)
    raw = np.zeros(8 * 12 + 1, dtype=np.uint8)[1:].view(np.float64).reshape(3, 4)  # misaligned
    raw[...] = np.arange(12.0).reshape(3, 4)
    assert not raw.flags.aligned
    np.testing.assert_allclose(f(raw, raw), np.exp(raw) * raw + 1)
    empty = np.zeros((0, 5))
    assert f(empty, empty).shape == (0, 5)
    g = kg.function([x], [x.sum(axis=0), x.sum()])
    s0, s = g(np.zeros((0, 3)))
    np.testing.assert_array_equal(s0, np.zeros(3))
    assert s == 0.0


def test_source_and_from_cache():
    x = kg.vector("speed")
    f = kg.function([x], kg.sqrt(x) * 2, name="kinetic")
    src = f.source()
    assert "int kgen_kinetic(" in src and "in_speed" in src and "sqrt(" in src
    assert "Python.h" not in src
    g = kg.function([x], kg.sqrt(x) * 2, name="kinetic")
    assert g.from_cache and g.source() == src


def test_cache_is_used_by_a_new_process(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, kgen as kg
        x = kg.vector('x')
        f = kg.function([x], kg.tanh(x) * 3, name='cached_tanh')
        assert np.allclose(f(np.arange(3.0)), np.tanh(np.arange(3.0)) * 3)
        print(f.from_cache)
    """)
    env = {"KGEN_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, timeout=120) for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["False", "True"], [r.stderr for r in runs]


DANGEROUS = {
    "dot mismatch": ("a, v = kg.matrix('a'), kg.vector('v')\n"
                     "f = kg.function([a, v], kg.dot(a, v))\n"
                     "f(np.ones((3, 4)), np.ones(5))", "ValueError"),
    "index out of range": ("p, y = kg.matrix('p'), kg.lvector('y')\n"
                           "f = kg.function([p, y], p[kg.arange(y.shape[0]), y])\n"
                           "f(np.ones((2, 3)), np.array([1, 1000000]))", "IndexError"),
    "negative index out of range": ("p, y = kg.matrix('p'), kg.lvector('y')\n"
                                    "f = kg.function([p, y], p[y])\n"
                                    "f(np.ones((2, 3)), np.array([-3]))", "IndexError"),
    "reshape mismatch": ("x = kg.vector('x')\n"
                         "f = kg.function([x], x.reshape((3, -1)))\n"
                         "f(np.ones(10))", "ValueError"),
}


@pytest.mark.parametrize("name", sorted(DANGEROUS))
def test_dangerous_errors_leave_the_process_alive(name):
    body, kind = DANGEROUS[name]
    script = ("import numpy as np, kgen as kg\n" + body.replace("\nf(", "\ntry:\n    f(") +
              f"\nexcept {kind} as e:\n    print('caught', e)\nprint('alive')\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "caught" in r.stdout and r.stdout.strip().endswith("alive"), r.stdout + r.stderr


def test_logistic_regression_trains():
    rng = np.random.default_rng(1)
    n, d = 200, 5
    data = rng.standard_normal((n, d))
    true_w = rng.standard_normal(d)
    labels = (data @ true_w > 0).astype(np.float64)
    x, y = kg.matrix("x"), kg.vector("y")
    w, b = kg.shared(np.zeros(d), name="w"), kg.shared(0.0, name="b")
    p = kg.sigmoid(kg.dot(x, w) + b)
    xent = -y * kg.log(p) - (1 - y) * kg.log(1 - p)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = kg.grad(cost, [w, b])
    train = kg.function([x, y], [cost, p > 0.5], updates=[(w, w - 0.5 * gw), (b, b - 0.5 * gb)])
    # the same steps in NumPy, from the same start
    wn, bn = np.zeros(d), 0.0
    for step in range(50):
        c, pred = train(data, labels)
        pn = 1 / (1 + np.exp(-(data @ wn + bn)))
        cn = np.mean(-labels * np.log(pn) - (1 - labels) * np.log(1 - pn)) + 0.01 * (wn ** 2).sum()
        assert np.isclose(c, cn, rtol=1e-9)
        gwn = data.T @ (pn - labels) / n + 0.02 * wn
        gbn = np.mean(pn - labels)
        wn, bn = wn - 0.5 * gwn, bn - 0.5 * gbn
    np.testing.assert_allclose(w.get_value(), wn, rtol=1e-9)
    assert (pred == labels).mean() > 0.9


def test_shared_accumulator():
    state = kg.shared(0, name="state")
    inc = kg.iscalar("inc")
    accumulator = kg.function([inc], state, updates=[(state, state + inc)])
    assert state.dtype == "int64"
    assert accumulator(1) == 0
    assert accumulator(300) == 1
    assert state.get_value() == 301
    state.set_value(-1)
    assert accumulator(3) == -1 and state.get_value() == 2


@pytest.mark.parametrize("blas", ["numpy", "builtin"])
def test_matrix_products_with_either_gemm(blas, monkeypatch):
    """Local builds call NumPy's OpenBLAS through kg_blas.h; KGEN_BLAS=builtin
    compiles kgen's own kg_gemm.h. Both agree with NumPy, strided operands included."""
    monkeypatch.setenv("KGEN_BLAS", blas)
    rng = np.random.default_rng(3)
    a, b = kg.fmatrix("a"), kg.fmatrix("b")
    f = kg.function([a, b], [kg.dot(a, b), kg.dot(a.T, a), kg.dot(b[:, ::2].T, a.T)],
                    name=f"gemm_{blas}")
    av = rng.standard_normal((37, 29)).astype("float32")
    bv = rng.standard_normal((29, 41)).astype("float32")
    got = f(av, bv)
    for g, want in zip(got, [av @ bv, av.T @ av, bv[:, ::2].T @ av.T]):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-4)
    src = f.source()
    assert "#ifdef KG_BLAS" in src  # one source, either route
