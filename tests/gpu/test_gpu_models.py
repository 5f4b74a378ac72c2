"""Models and the runtime's contract on a real GPU: the seed training loop and an
MLP step against the C backend, GPUArray inputs, shared variables resident on
the device, index errors, large and deterministic reductions, and GEMM sizes
that cross many tiles.
"""
import numpy as np
import pytest

import kgen as kg
import kgen.runtime.cuda as rt


def both(inputs, outputs, updates=None):
    return (kg.function(inputs, outputs, updates=updates),
            kg.function(inputs, outputs, updates=updates, target="cuda"))


def test_device_reported(gpu):
    print(f"GPU: {gpu.name}, compute capability {gpu.capability}")
    assert tuple(gpu.capability) >= (8, 0), "older than kgen's compute_80 baseline"


def test_seed_training_loop(gpu):
    """examples/seed_linear_model.py's model: 1000 SGD steps on each backend."""
    rng = np.random.default_rng(0)
    x, y = kg.vector("x"), kg.vector("y")
    W = kg.shared(rng.standard_normal((10, 10)), name="W")
    b = kg.shared(rng.standard_normal(10), name="b")
    cost = kg.mean(kg.square(kg.dot(W, x) + b - y))
    dW, db = kg.grad(cost, [W, b])
    updates = [(W, W - 0.1 * dW), (b, b - 0.1 * db)]
    X_train, y_train = rng.standard_normal((100, 10)), rng.standard_normal((100, 10))
    W0, b0 = W.get_value(), b.get_value()
    train_c, train_g = both([x, y], cost, updates)
    costs_c = [float(train_c(X_train[e % 100], y_train[e % 100])) for e in range(1000)]
    Wc, bc = W.get_value(), b.get_value()
    W.set_value(W0)
    b.set_value(b0)
    costs_g = [float(train_g(X_train[e % 100], y_train[e % 100])) for e in range(1000)]
    assert isinstance(W._device, rt.DeviceValue)  # W lived on the GPU throughout
    np.testing.assert_allclose(costs_g, costs_c, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(W.get_value(), Wc, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.get_value(), bc, rtol=1e-9, atol=1e-12)
    assert np.mean(costs_g[-100:]) < np.mean(costs_g[:100])


def mlp(rng, n_in=784, n_hidden=512, n_out=10):
    X, y = kg.fmatrix("X"), kg.ivector("y")
    params = [kg.shared((rng.standard_normal(s) * 0.05).astype("float32"), name=n)
              for n, s in [("W1", (n_in, n_hidden)), ("b1", (n_hidden,)),
                           ("W2", (n_hidden, n_out)), ("b2", (n_out,))]]
    W1, b1, W2, b2 = params
    p = kg.softmax(kg.tanh(X @ W1 + b1) @ W2 + b2)
    cost = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    grads = kg.grad(cost, params)
    updates = [(q, q - np.float32(0.1) * g) for q, g in zip(params, grads)]
    return [X, y], [cost, p.argmax(axis=1)], updates, params


def test_mlp_step(gpu):
    """256 x 784 -> tanh 512 -> softmax 10, five SGD steps on each backend."""
    rng = np.random.default_rng(1)
    inputs, outputs, updates, params = mlp(rng)
    init = [q.get_value() for q in params]
    f_c, f_g = both(inputs, outputs, updates)
    X = rng.standard_normal((256, 784)).astype("float32")
    y = rng.integers(0, 10, 256).astype("int32")
    want = [f_c(X, y) for _ in range(5)]
    after_c = [q.get_value() for q in params]
    for q, v in zip(params, init):
        q.set_value(v)
    got = [f_g(X, y) for _ in range(5)]
    for (cw, aw), (cg, ag) in zip(want, got):
        np.testing.assert_allclose(cg, cw, rtol=1e-4)
        assert np.mean(ag == aw) > 0.98  # argmax may flip on near-ties only
    for q, v in zip(params, after_c):
        np.testing.assert_allclose(q.get_value(), v, rtol=1e-3, atol=1e-5)
    assert float(got[-1][0]) < float(got[0][0])


def test_gpuarray_inputs_and_outputs(gpu):
    import pycuda.gpuarray as gpuarray
    x, y = kg.fvector("x"), kg.fvector("y")
    f = kg.function([x, y], [x * y + 1, (x - y).sum()], target="cuda")
    a = np.random.default_rng(2).standard_normal(1000).astype("float32")
    b = np.ones(1000, "float32")
    ga, gb = gpuarray.to_gpu(a), gpuarray.to_gpu(b)
    out = f(ga, gb)
    np.testing.assert_allclose(out[0], a * b + 1, rtol=1e-6)
    np.testing.assert_allclose(out[1], (a - b).sum(dtype="float64"), rtol=1e-5)
    out = f(ga, b)  # mixed
    np.testing.assert_allclose(out[0], a * b + 1, rtol=1e-6)
    f.device_outputs = True
    out = f(ga, gb)
    assert isinstance(out[0], gpuarray.GPUArray)
    np.testing.assert_allclose(out[0].get(), a * b + 1, rtol=1e-6)
    with pytest.raises(TypeError, match="expected dtype float32"):
        f(gpuarray.to_gpu(a.astype("float64")), gb)
    with pytest.raises(ValueError, match="do not fit"):
        f(ga, gpuarray.to_gpu(b[:10]))
    # a safe cast of a device array (float32 -> float64)
    d = kg.dvector("d")
    h = kg.function([d], d * 2, target="cuda")
    np.testing.assert_array_equal(h(ga), a.astype("float64") * 2)


def test_shared_variables_live_on_the_device(gpu):
    s = kg.shared(np.zeros(4, "float32"), name="s")
    x = kg.fvector("x")
    step = kg.function([x], s.sum(), updates=[(s, s + x)], target="cuda")
    for _ in range(10):
        step(np.ones(4, "float32"))
    dv = s._device
    assert isinstance(dv, rt.DeviceValue) and dv.device_newer
    np.testing.assert_array_equal(s.get_value(), np.full(4, 10.0, "float32"))
    s.set_value(np.arange(4, dtype="float32"))
    assert step(np.zeros(4, "float32")) == 6.0
    # the C backend reads the device value, and CUDA then reads the C update
    c_step = kg.function([x], s.sum(), updates=[(s, s * 2)])
    assert c_step(np.zeros(4, "float32")) == 6.0
    assert step(np.zeros(4, "float32")) == 12.0


def test_index_errors_leave_state_unchanged(gpu):
    p, y = kg.matrix("p"), kg.lvector("y")
    W = kg.shared(np.ones(3), name="W")
    f = kg.function([p, y], p[kg.arange(y.shape[0]), y].sum(), updates=[(W, W + 1)],
                    target="cuda")
    pv = np.arange(12.0).reshape(4, 3)
    assert f(pv, np.array([0, 1, 2, -1])) == 0 + 4 + 8 + 11
    with pytest.raises(IndexError, match="out of bounds for axis 1 with size 3"):
        f(pv, np.array([0, 3, 0, 0]))
    np.testing.assert_array_equal(W.get_value(), np.full(3, 2.0))


def test_large_reductions_are_accurate_and_deterministic(gpu):
    import pycuda.gpuarray as gpuarray
    x, y = kg.fvector("x"), kg.fvector("y")
    f = kg.function([x, y], [((x - y) ** 2).sum(), x.max(), x.argmax(), x.mean()],
                    target="cuda")
    rng = np.random.default_rng(3)
    a = rng.standard_normal(10**7).astype("float32")
    b = rng.standard_normal(10**7).astype("float32")
    ga, gb = gpuarray.to_gpu(a), gpuarray.to_gpu(b)
    first = f(ga, gb)
    d = (a.astype("float64") - b) ** 2
    np.testing.assert_allclose(first[0], d.sum(), rtol=1e-6)
    assert first[1] == a.max() and first[2] == a.argmax()
    np.testing.assert_allclose(first[3], a.astype("float64").mean(), rtol=1e-6)
    for _ in range(3):
        again = f(ga, gb)
        assert all(np.array_equal(u, v) for u, v in zip(first, again))  # bit for bit


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (63, 65, 129), (256, 784, 512), (1000, 3, 1000)])
def test_gemm_sizes(gpu, m, k, n):
    A, B = kg.fmatrix("A"), kg.fmatrix("B")
    f = kg.function([A, B], [A @ B, A.T.T @ B[:, ::-1]], target="cuda")
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k)).astype("float32")
    b = rng.standard_normal((k, n)).astype("float32")
    want = a.astype("float64") @ b
    got = f(a, b)
    np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-4 * np.sqrt(k))
    np.testing.assert_allclose(got[1], want[:, ::-1], rtol=1e-4, atol=1e-4 * np.sqrt(k))


def test_errors_come_before_any_launch(gpu):
    x, y = kg.vector("x"), kg.vector("y")
    s = kg.shared(np.zeros(2), name="s")
    f = kg.function([x, y], x + y, updates=[(s, s + 1)], target="cuda")
    with pytest.raises(ValueError, match="do not fit"):
        f(np.ones(3), np.ones(4))
    np.testing.assert_array_equal(s.get_value(), np.zeros(2))


def test_lenet_step(gpu):
    """A LeNet-5 training step (conv, tanh, max-pool twice, dense, softmax) on
    both backends: the same cost and parameters after three steps."""
    import kgen.tensor as T
    from kgen.tensor.signal import pool
    rng = np.random.default_rng(3)
    shapes = [(20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,), (800, 500), (500,), (500, 10), (10,)]
    start = [(rng.standard_normal(s) * 0.1).astype(np.float32) for s in shapes]
    params = [kg.shared(v.copy(), name=f"p{i}") for i, v in enumerate(start)]
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    x, y = T.ftensor4("x"), T.ivector("y")
    a1 = T.tanh(T.nnet.conv2d(x, w1, input_shape=(None, 1, 28, 28), filter_shape=shapes[0])
                + b1.dimshuffle("x", 0, "x", "x"))
    a2 = T.tanh(T.nnet.conv2d(pool.pool_2d(a1, (2, 2)), w2, filter_shape=shapes[2])
                + b2.dimshuffle("x", 0, "x", "x"))
    h = T.tanh(T.dot(pool.pool_2d(a2, (2, 2)).flatten(2), w3) + b3)
    prob = T.nnet.softmax(T.dot(h, w4) + b4)
    cost = -T.mean(T.log(prob)[T.arange(y.shape[0]), y])
    updates = [(p, p - 0.01 * g) for p, g in zip(params, T.grad(cost, params))]
    xv = rng.standard_normal((128, 1, 28, 28)).astype(np.float32)
    yv = rng.integers(0, 10, size=128).astype(np.int32)
    results = []
    for target in ("c", "cuda"):
        for p, v in zip(params, start):
            p.set_value(v.copy())
        step = kg.function([x, y], cost, updates=updates, target=target)
        costs = [float(step(xv, yv)) for _ in range(3)]
        results.append((costs, [np.asarray(p.get_value()) for p in params]))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-4)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
