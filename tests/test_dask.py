"""kgen functions called with Dask arrays, on a real two-process LocalCluster
whose workers have no C compiler and an empty kgen cache (so every kernel they
run is the module the client shipped), checked against NumPy."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="kgen[dask] (dask[array]) is not installed")
distributed = pytest.importorskip("distributed", reason="kgen[dask] (distributed) is not installed")

import kgen as kg  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory, dask_package):
    """(The package's folder is on sys.path before the workers start, so they
    import it as they would an installed package.)"""
    empty_cache = str(tmp_path_factory.mktemp("worker-cache"))
    no_tools = str(tmp_path_factory.mktemp("no-compiler-bin"))
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
        env={"PATH": no_tools, "CC": "", "KGEN_CACHE_DIR": empty_cache})
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_workers_have_no_compiler(client):
    def probe():
        import kgen as kg
        from kgen.errors import CompileError
        found = [shutil.which(cc) for cc in ("cc", "gcc", "clang")]
        try:
            x = kg.dvector("x")
            kg.function([x], x * 3.5 + 0.25)
        except CompileError:
            return found, "no compiler"
        return found, "compiled"
    for found, verdict in client.run(probe).values():
        assert found == [None, None, None] and verdict == "no compiler"


def test_w2_sum_of_squares_and_w1_elementwise(client):
    x, y, z = kg.dvector("x"), kg.dvector("y"), kg.dvector("z")
    w2 = kg.function([x, y], kg.sum((x - y) ** 2))
    w1 = kg.function([x, y, z], kg.exp(-x * x) * kg.sin(y) + kg.log1p(z * z))
    rng = np.random.default_rng(0)
    xv, yv, zv = (rng.standard_normal(10_000) for _ in range(3))
    # unequal chunks: kgen aligns y and z to x's rows
    xd, yd, zd = (da.from_array(xv, chunks=1250), da.from_array(yv, chunks=3000),
                  da.from_array(zv, chunks=10_000))
    s = w2(xd, yd)
    assert isinstance(s, da.Array) and s.shape == ()
    np.testing.assert_allclose(s.compute(), np.sum((xv - yv) ** 2), rtol=1e-12)
    e = w1(xd, yd, zd)
    assert isinstance(e, da.Array) and e.chunks == xd.chunks
    np.testing.assert_allclose(e.compute(), np.exp(-xv * xv) * np.sin(yv) + np.log1p(zv * zv),
                               rtol=1e-13, atol=1e-15)


def test_reductions_over_the_chunked_axis(client):
    X = kg.dmatrix("X")
    v = kg.dvector("v")  # in memory: a whole value, read by every chunk
    f = kg.function([X, v], [kg.mean(X, axis=0), kg.var(X, axis=0), kg.std(X),
                             kg.max(X), kg.min(X, axis=0), kg.prod(X[:, :2] * 0.5 + 1, axis=0),
                             kg.logsumexp(X, axis=0), kg.sum(X, axis=1) * 2, kg.dot(X.T, X),
                             X @ v, kg.mean(X)])
    rng = np.random.default_rng(1)
    Xv, vv = rng.standard_normal((600, 3)), rng.standard_normal(3)
    outs = f(da.from_array(Xv, chunks=(75, 3)), vv)
    assert all(isinstance(o, da.Array) for o in outs)
    got = [o.compute() for o in outs]
    m = Xv.max(axis=0)
    want = [Xv.mean(0), Xv.var(0), Xv.std(), Xv.max(), Xv.min(0), np.prod(Xv[:, :2] * 0.5 + 1, 0),
            m + np.log(np.exp(Xv - m).sum(0)), Xv.sum(1) * 2, Xv.T @ Xv, Xv @ vv, Xv.mean()]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


MLP_SIZES = (12, 16, 5)


def _mlp(rng):
    """The README's MLP step as a kg.function, and its shared variables."""
    inputs, cost, updates, params = _mlp_graph(rng)
    return kg.function(inputs, cost, updates=updates), params


def _mlp_graph(rng):
    """The README's MLP step (tanh hidden layer, softmax, mean cross-entropy, SGD)."""
    n_in, n_hid, n_out = MLP_SIZES
    X, y = kg.dmatrix("X"), kg.ivector("y")
    W1 = kg.shared(rng.standard_normal((n_in, n_hid)) * 0.3, "W1")
    b1 = kg.shared(rng.standard_normal(n_hid) * 0.1, "b1")
    W2 = kg.shared(rng.standard_normal((n_hid, n_out)) * 0.3, "W2")
    b2 = kg.shared(rng.standard_normal(n_out) * 0.1, "b2")
    h = kg.tanh(kg.dot(X, W1) + b1)
    p = kg.softmax(kg.dot(h, W2) + b2)
    cost = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    params = [W1, b1, W2, b2]
    grads = kg.grad(cost, params)
    return [X, y], cost, [(q, q - 0.1 * g) for q, g in zip(params, grads)], params


def _numpy_step(Xv, yv, W1, b1, W2, b2):
    rows = np.arange(len(yv))
    h = np.tanh(Xv @ W1 + b1)
    z = h @ W2 + b2
    e = np.exp(z - z.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    cost = -np.log(p[rows, yv]).mean()
    d = p.copy()
    d[rows, yv] -= 1
    d /= len(yv)
    dh = (d @ W2.T) * (1 - h * h)
    return cost, [W1 - 0.1 * (Xv.T @ dh), b1 - 0.1 * dh.sum(0), W2 - 0.1 * (h.T @ d),
                  b2 - 0.1 * d.sum(0)]


@pytest.fixture(scope="module")
def mlp():
    rng = np.random.default_rng(2)
    step, params = _mlp(rng)
    Xv = rng.standard_normal((800, MLP_SIZES[0]))
    yv = rng.integers(0, MLP_SIZES[2], 800).astype("int32")
    return step, params, Xv, yv


def test_mlp_step_over_8_chunks_equals_the_in_memory_step(client, mlp):
    step, params, Xv, yv = mlp
    for _ in range(2):  # the second step starts from the first one's updates
        before = [q.get_value() for q in params]
        want_cost, want = _numpy_step(Xv, yv, *before)
        cost = step(da.from_array(Xv, chunks=(100, MLP_SIZES[0])), da.from_array(yv, chunks=100))
        assert isinstance(cost, np.ndarray)  # a function with updates computes at once
        np.testing.assert_allclose(cost, want_cost, rtol=1e-12)
        for q, w in zip(params, want):
            np.testing.assert_allclose(q.get_value(), w, rtol=1e-12, atol=1e-12)


def test_unsplittable_ops_name_the_op_and_the_axis(client):
    x = kg.dvector("x")
    xd = da.from_array(np.arange(8.0), chunks=4)
    for expr, op in [(kg.sort(x), "sort"), (kg.cumsum(x), "cumsum"),
                     (x * kg.arange(x.shape[0]), "arange"), (kg.argmax(x), "argmax")]:
        with pytest.raises(TypeError, match=rf"{op}.*axis 0.*chunked axis"):
            kg.function([x], expr)(xd)
    X = kg.dmatrix("X")
    with pytest.raises(TypeError, match=r"reshape.*axis 0"):
        kg.function([X], kg.sum(X.reshape((-1,))))(da.ones((4, 2), chunks=2))


def test_a_failed_chunk_changes_no_shared_variable(client, mlp):
    step, params, Xv, yv = mlp
    before = [q.get_value() for q in params]

    def broken(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 5:
            raise RuntimeError("disk error in chunk 5")
        return block

    X = da.from_array(Xv, chunks=(100, MLP_SIZES[0])).map_blocks(broken, dtype=Xv.dtype)
    with pytest.raises(RuntimeError, match="chunk 5"):
        step(X, da.from_array(yv, chunks=100))
    for q, b in zip(params, before):
        assert np.array_equal(q.get_value(), b)


def test_a_worker_killed_mid_step_is_retried_to_the_same_result(client, mlp, tmp_path):
    step, params, Xv, yv = mlp
    before = [q.get_value() for q in params]
    want_cost, want = _numpy_step(Xv, yv, *before)
    flag = str(tmp_path / "killed")

    def dies_once(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 3 and not os.path.exists(flag):
            open(flag, "w").close()
            os._exit(1)  # the worker process dies; its nanny restarts it
        return block

    X = da.from_array(Xv, chunks=(100, MLP_SIZES[0])).map_blocks(dies_once, dtype=Xv.dtype)
    cost = step(X, da.from_array(yv, chunks=100))
    assert os.path.exists(flag)
    np.testing.assert_allclose(cost, want_cost, rtol=1e-12)
    for q, w in zip(params, want):
        np.testing.assert_allclose(q.get_value(), w, rtol=1e-12, atol=1e-12)


# ---- a shipped package's kernels over Dask arrays -------------------------------------------
@pytest.fixture(scope="module")
def dask_package(tmp_path_factory):
    """A package (built once) with W2, an elementwise kernel, the MLP step and a
    sort; its folder on sys.path (here, and in the worker processes started after)."""
    from kgen.package import build_package
    x, y, z = kg.dvector("x"), kg.dvector("y"), kg.dvector("z")
    inputs, cost, updates, _ = _mlp_graph(np.random.default_rng(3))
    kernels = [kg.kernel("w2", [x, y], kg.sum((x - y) ** 2)),
               kg.kernel("w1", [x, y, z], kg.exp(-x * x) * kg.sin(y) + kg.log1p(z * z)),
               kg.kernel("step", inputs, cost, updates=updates),
               kg.kernel("ranked", [x], kg.sort(x))]
    out = tmp_path_factory.mktemp("dkpkg")
    build_package(kernels, out, "dkpkg", Path(__file__))
    sys.path.insert(0, str(out))
    yield out
    sys.path.remove(str(out))


def test_package_kernels_over_dask_arrays_on_the_cluster(client, dask_package):
    import dkpkg
    rng = np.random.default_rng(4)
    xv, yv, zv = (rng.standard_normal(3000) for _ in range(3))
    s = dkpkg.w2(da.from_array(xv, chunks=700), da.from_array(yv, chunks=1000))
    assert isinstance(s, da.Array) and s.shape == ()
    np.testing.assert_allclose(s.compute(), np.sum((xv - yv) ** 2), rtol=1e-12)
    e = dkpkg.w1(da.from_array(xv, chunks=500), yv, da.from_array(zv, chunks=3000))  # y: NumPy
    assert isinstance(e, da.Array) and e.chunks == ((500,) * 6,)
    np.testing.assert_allclose(e.compute(), np.exp(-xv * xv) * np.sin(yv) + np.log1p(zv * zv),
                               rtol=1e-13, atol=1e-15)
    params = [dkpkg.W1, dkpkg.b1, dkpkg.W2, dkpkg.b2]
    Xv = rng.standard_normal((800, MLP_SIZES[0]))
    tv = rng.integers(0, MLP_SIZES[2], 800).astype("int32")
    for _ in range(2):
        want_cost, want = _numpy_step(Xv, tv, *[q.get_value() for q in params])
        cost = dkpkg.step(da.from_array(Xv, chunks=(100, MLP_SIZES[0])),
                          da.from_array(tv, chunks=100))
        assert isinstance(cost, np.ndarray)
        np.testing.assert_allclose(cost, want_cost, rtol=1e-12)
        for q, w in zip(params, want):
            np.testing.assert_allclose(q.get_value(), w, rtol=1e-12, atol=1e-12)
    # the workers ran the package's own extension (they import the package);
    # under load the scheduler may give one worker every task, so not all
    assert any(client.run(lambda: "dkpkg" in sys.modules).values())
    with pytest.raises(TypeError, match=r"ranked\(\).*sort.*axis 0.*chunked axis"):
        dkpkg.ranked(da.from_array(xv, chunks=700))


NO_KGEN_RUN = textwrap.dedent("""
    import importlib.abc, sys
    class BlockKgen(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "kgen" or name.startswith("kgen."):
                raise ImportError("kgen is not installed here")
    sys.meta_path.insert(0, BlockKgen())
    import dask, dask.array as da, numpy as np
    import dkpkg
    x, y, X, t = (np.load(f"{n}.npy") for n in ("x", "y", "X", "t"))
    with dask.config.set(scheduler="processes", num_workers=2):  # fresh processes, no kgen
        np.save("w2.npy", dkpkg.w2(da.from_array(x, chunks=250), y).compute())
        np.save("cost.npy", dkpkg.step(da.from_array(X, chunks=(50, X.shape[1])),
                                       da.from_array(t, chunks=50)))
    np.save("W1.npy", dkpkg.W1.get_value())
    assert "kgen" not in sys.modules
    print("ok")
""")


def test_package_runs_over_dask_where_kgen_is_not_installed(dask_package, tmp_path):
    rng = np.random.default_rng(5)
    data = {"x": rng.standard_normal(1000), "y": rng.standard_normal(1000),
            "X": rng.standard_normal((400, MLP_SIZES[0])),
            "t": rng.integers(0, MLP_SIZES[2], 400).astype("int32")}
    for name, value in data.items():
        np.save(tmp_path / f"{name}.npy", value)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {"PATH": str(empty_bin), "HOME": str(tmp_path), "PYTHONNOUSERSITE": "1",
           "PYTHONPATH": str(dask_package)}
    proc = subprocess.run([sys.executable, "-c", NO_KGEN_RUN], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
    np.testing.assert_allclose(np.load(tmp_path / "w2.npy"),
                               np.sum((data["x"] - data["y"]) ** 2), rtol=1e-12)
    # the step started from the package's initial values (shared/*.npy)
    initial = [np.load(dask_package / "dkpkg" / "shared" / f"{n}.npy")
               for n in ("W1", "b1", "W2", "b2")]
    want_cost, want = _numpy_step(data["X"], data["t"], *initial)
    np.testing.assert_allclose(np.load(tmp_path / "cost.npy"), want_cost, rtol=1e-12)
    np.testing.assert_allclose(np.load(tmp_path / "W1.npy"), want[0], rtol=1e-12, atol=1e-12)
