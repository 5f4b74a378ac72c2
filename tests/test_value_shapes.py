"""Sizes decided by the values of 0-d int inputs: symbolic slice bounds
(clamped as NumPy clamps them), integer indices, arange, reshape and alloc,
and gradients through them; in kg.function, in a package and in the CUDA
source (through the CPU emulator). Every expected value is NumPy's."""
import numpy as np
import pytest

import kgen as kg
from kgen.errors import KgenIndexError, ShapeError

T = kg.tensor


def test_slice_with_symbolic_bounds_matches_numpy():
    X, i = T.dmatrix("X"), T.iscalar("i")
    x = np.arange(24.0).reshape(8, 3)
    f = kg.function([X, i], X[i * 3:(i + 1) * 3])
    for v in [0, 1, 2, 3, 100, -1, -3, -100]:
        np.testing.assert_array_equal(f(x, v), x[v * 3:(v + 1) * 3])
    assert f(x, 2).shape == (2, 3)  # clamped: rows 6 and 7 only


def test_negative_and_symbolic_steps_clamp_as_numpy():
    X, a, b = T.dmatrix("X"), T.lscalar("a"), T.lscalar("b")
    x = np.arange(24.0).reshape(8, 3)
    f = kg.function([X, a, b], [X[a:b:-1], X[a:b:b], X[:a:2, b:]])
    for u in range(-10, 11):
        for v in [-9, -3, -2, -1, 1, 2, 3, 9]:
            got = f(x, u, v)
            np.testing.assert_array_equal(got[0], x[u:v:-1])
            np.testing.assert_array_equal(got[1], x[u:v:v])
            np.testing.assert_array_equal(got[2], x[:u:2, v:])


def test_zero_step_is_a_shape_error_before_anything_runs():
    X, s = T.dmatrix("X"), T.iscalar("s")
    f = kg.function([X, s], X[::s])
    np.testing.assert_array_equal(f(np.eye(3), 2), np.eye(3)[::2])
    with pytest.raises(ShapeError, match="step cannot be zero"):
        f(np.eye(3), 0)


def test_symbolic_integer_index_and_its_index_error():
    X, i = T.dmatrix("X"), T.iscalar("i")
    x = np.arange(12.0).reshape(4, 3)
    f = kg.function([X, i], [X[i], X[:, i] * 2])
    for v in [0, 2, -1, -3]:
        got = f(x, v)
        np.testing.assert_array_equal(got[0], x[v])
        np.testing.assert_array_equal(got[1], x[:, v] * 2)
    with pytest.raises(KgenIndexError, match=r"axis 0 with size 4 \(the index is 4\)"):
        f(x, 4)
    with pytest.raises(IndexError):
        f(x, -5)


def test_arange_reshape_alloc_zeros_from_values():
    a, b, s = T.lscalar("a"), T.lscalar("b"), T.iscalar("s")
    X = T.dvector("X")
    f = kg.function([a, b, s], [T.arange(a, b, s), T.arange(b)])
    for args in [(3, 10, 2), (10, 3, -3), (0, 0, 1), (-4, 5, 4)]:
        got = f(*args)
        np.testing.assert_array_equal(got[0], np.arange(*args))
        np.testing.assert_array_equal(got[1], np.arange(args[1]))
    r = kg.function([X, a], X.reshape((a, -1)) * 1.0)
    np.testing.assert_array_equal(r(np.arange(12.0), 4), np.arange(12.0).reshape(4, -1))
    with pytest.raises(ShapeError, match="reshape"):
        r(np.arange(12.0), 5)
    z = kg.function([a, b], [T.zeros((a, b)) + 1, T.alloc(2.5, a // 2, b % 4 + T.maximum(a, b)),
                             T.ones((a * b - 1,), dtype="int64")])
    got = z(5, 7)
    np.testing.assert_array_equal(got[0], np.zeros((5, 7)) + 1)
    np.testing.assert_array_equal(got[1], np.full((5 // 2, 7 % 4 + max(5, 7)), 2.5))
    np.testing.assert_array_equal(got[2], np.ones(34, "int64"))
    with pytest.raises(ShapeError, match="negative"):
        z(-1, 2)


def test_value_keyed_shape_memo():
    """The same input shapes with other values give other output shapes."""
    X, i = T.dvector("X"), T.lscalar("i")
    f = kg.function([X, i], X[:i])
    x = np.arange(10.0)
    for v in [3, 7, 3, 0, 10, 7]:
        np.testing.assert_array_equal(f(x, v), x[:v])


def test_shared_int_scalar_decides_sizes():
    X, n = T.dvector("X"), kg.shared(np.int64(2), name="n")
    f = kg.function([X], X[:n], updates=[(n, n + 1)])
    x = np.arange(10.0)
    for v in [2, 3, 4]:
        np.testing.assert_array_equal(f(x), x[:v])


def test_grad_through_a_symbolic_minibatch_slice():
    X, W, i = T.dmatrix("X"), T.dmatrix("W"), T.lscalar("i")
    bs = 3
    cost = (T.dot(X[i * bs:(i + 1) * bs], W) ** 2).sum()
    gW, gX = kg.grad(cost, [W, X])
    f = kg.function([X, W, i], [cost, gW, gX])
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(10, 4)), rng.normal(size=(4, 2))
    for v in [0, 1, 3, -1]:
        c, dw, dx = f(x, w, v)
        xb = x[v * bs:(v + 1) * bs]
        np.testing.assert_allclose(c, ((xb @ w) ** 2).sum(), rtol=1e-12)
        np.testing.assert_allclose(dw, 2 * xb.T @ (xb @ w), rtol=1e-12)
        # d cost / d X by central finite differences
        fd, eps = np.zeros_like(x), 1e-6
        for k in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[k] += eps
            xm[k] -= eps
            fd[k] = (((xp[v * bs:(v + 1) * bs] @ w) ** 2).sum()
                     - ((xm[v * bs:(v + 1) * bs] @ w) ** 2).sum()) / (2 * eps)
        np.testing.assert_allclose(dx, fd, rtol=1e-6, atol=1e-6)


def test_set_and_inc_subtensor_on_a_symbolic_slice():
    X, i = T.dvector("X"), T.lscalar("i")
    f = kg.function([X, i], [T.set_subtensor(X[i:i + 2], 0.0), T.inc_subtensor(X[i], 5.0)])
    x = np.arange(6.0)
    for v in [0, 3, 5, -2]:
        want0, want1 = x.copy(), x.copy()
        want0[v:v + 2] = 0.0
        want1[v] += 5.0
        got = f(x, v)
        np.testing.assert_array_equal(got[0], want0)
        np.testing.assert_array_equal(got[1], want1)


def test_eval_and_the_c_signature():
    X, i = T.dmatrix("X"), T.iscalar("i")
    y = X[i * 2:(i + 1) * 2]
    x = np.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(y.eval({X: x, i: 1}), x[2:4])
    src = kg.function([X, i], y).source()
    assert "int64_t in_X_d1, int64_t in_i_value, int64_t *out_shape" in src


def test_sizes_from_float_values_are_refused_with_a_message():
    X, t = T.dvector("X"), T.dscalar("t")
    with pytest.raises(TypeError, match="slice bounds"):
        X[:t]
    with pytest.raises(TypeError, match="depends on the value of"):
        kg.function([t], T.arange(T.floor(t).astype("int64")))


SPEC = '''
import numpy as np
import kgen as theano
import kgen.tensor as T

x = T.dmatrix("x")
index = T.lscalar("index")
bs = 4
data = theano.shared(np.arange(40.0).reshape(10, 4), name="data")
w = theano.shared(np.full(4, 0.1), name="w")
cost = (T.dot(x, w) ** 2).mean()
train = theano.kernel("train", [index], cost, updates=[(w, w - 0.001 * T.grad(cost, w))],
                      givens={x: data[index * bs:(index + 1) * bs]})
rows = theano.kernel("rows", [index], data[index:] * 1.0)
'''


def test_package_passes_input_values_to_its_shape_phase(tmp_path, spec_package):
    import json

    pkg = spec_package(SPEC, "minibatch_pkg")
    out = tmp_path / "out"
    header = (out / "minibatch_pkg" / "minibatch_pkg.h").read_text()
    assert "int64_t in_index_value: the value of in_index" in header
    assert "K_shapes(lengths..., values..., out_shape, err, errlen)" in header
    manifest = json.loads((out / "minibatch_pkg" / "manifest.json").read_text())
    assert manifest["kernels"][0]["inputs"][0]["c_value"] == "in_index_value"
    data, w = np.arange(40.0).reshape(10, 4), np.full(4, 0.1)
    for i in [0, 1, 2, 0]:
        xb = data[i * 4:(i + 1) * 4]  # the last batch has 2 rows
        r = xb @ w
        assert pkg.train(i) == pytest.approx((r ** 2).mean(), rel=1e-12)
        w = w - 0.001 * 2 * xb.T @ r / len(xb)
        np.testing.assert_allclose(pkg.w.get_value(), w, rtol=1e-12)
    for i in [0, 7, 10, -3, 20]:
        np.testing.assert_array_equal(pkg.rows(i), data[i:])


def test_cuda_source_takes_values_and_runs_on_the_emulator(monkeypatch):
    """The CUDA module's NAME_ints() takes the same value arguments; run through
    the CPU emulator, the results are NumPy's (and the C backend's)."""
    import _cuda_emu
    if not _cuda_emu.have_compiler():
        pytest.skip("the CUDA emulator needs g++ (no GPU needed)")
    _cuda_emu.emulate(monkeypatch)
    X, W, i, n = T.dmatrix("X"), T.dmatrix("W"), T.lscalar("i"), T.iscalar("n")
    bs = 3
    xb = X[i * bs:(i + 1) * bs]
    cost = (T.dot(xb, W) ** 2).sum()
    outs = [xb, X[n], X[::n, 1:], T.arange(i, n) * 2, cost, kg.grad(cost, W),
            kg.grad(cost, X), T.zeros((n, i + 1)) + 1.5]
    from kgen.codegen.cuda import render_host
    host = render_host([kg.kernel("k", [X, W, i, n], outs).plan()])
    assert "int64_t in_i_value, int64_t in_n_value, int64_t *ints" in host
    f = kg.function([X, W, i, n], outs, target="cuda")
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(10, 4)), rng.normal(size=(4, 2))
    for iv, nv in [(0, 2), (1, 3), (3, 1), (2, 5)]:
        got = f(x, w, iv, nv)
        b = x[iv * bs:(iv + 1) * bs]
        gx = np.zeros_like(x)
        gx[iv * bs:(iv + 1) * bs] = 2 * (b @ w) @ w.T
        want = [b, x[nv], x[::nv, 1:], np.arange(iv, nv) * 2, ((b @ w) ** 2).sum(),
                2 * b.T @ (b @ w), gx, np.zeros((max(nv, 0), iv + 1)) + 1.5]
        for g, wv in zip(got, want):
            np.testing.assert_allclose(g, wv, rtol=1e-12, atol=1e-12)
    with pytest.raises(ShapeError, match="negative dimensions"):
        f(x, w, 3, -1)
    with pytest.raises(IndexError, match="the index is 10"):
        f(x, w, 0, 10)


def test_value_shaped_cuda_source_compiles_with_nvcc(tmp_path):
    """Slices, indices, arange and alloc sized by input values, and the gradient of
    a symbolic minibatch slice: nvcc compiles the CUDA module (no GPU needed) and
    the host shape phase is warning-free C."""
    import subprocess

    from kgen.build import nvcc
    from kgen.codegen.cuda import render_host
    from kgen.codegen.render import render_module
    try:
        nvcc.find_nvcc()
    except Exception:
        pytest.skip("nvcc (the CUDA toolkit) not found")
    X, W, a, b = T.dmatrix("X"), T.dmatrix("W"), T.lscalar("a"), T.iscalar("b")
    cost = (T.dot(X[a * 3:(a + 1) * 3], W) ** 2).sum()
    outs = [X[a // 2:b % 3:b], X[T.minimum(a, b)], T.zeros((T.maximum(a, 1), b)) + 1,
            T.arange(a, b, 2), kg.grad(cost, W), kg.grad(cost, X)]
    plan = kg.kernel("vs", [X, W, a, b], outs).plan()
    cubin = nvcc.compile_cuda(render_module([plan], "cuda", "0"), "vs", tmp_path / "vs",
                              output="cubin", names=("sm_90",))
    assert open(cubin, "rb").read(4) == b"\x7fELF"
    host = tmp_path / "host.c"
    host.write_text(render_host([plan]))
    proc = subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-c", str(host), "-o",
                           str(tmp_path / "host.o")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_value_shaped_c_compiles_warning_free(tmp_path):
    import subprocess
    X, a, b = T.dmatrix("X"), T.lscalar("a"), T.iscalar("b")
    outs = [X[a // 2:b % 3:b], X[T.minimum(a, b)], T.zeros((T.maximum(a, 1), b)) + 1,
            X.reshape((a, -1)), T.arange(a, b, 2)]
    src = tmp_path / "vs.c"
    src.write_text(kg.kernel("vs", [X, a, b], outs).source())
    for extra in ([], ["-fopenmp"]):
        proc = subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-O2", *extra, "-c",
                               str(src), "-o", str(tmp_path / "vs.o")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_a_failed_value_check_changes_no_state():
    X, i = T.dmatrix("X"), T.lscalar("i")
    w = kg.shared(np.ones(3), name="w")
    f = kg.function([X, i], X[i].sum(), updates=[(w, w + X[i])])
    x = np.arange(6.0).reshape(2, 3)
    assert f(x, 1) == 12.0
    np.testing.assert_array_equal(w.get_value(), 1 + x[1])
    with pytest.raises(IndexError):
        f(x, 2)
    np.testing.assert_array_equal(w.get_value(), 1 + x[1])
