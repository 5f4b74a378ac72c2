"""Convolutional nets: the LeNet-5 training step and one large conv2d forward.

    python benchmarks/bench_conv.py [--quick] [--layers]

LeNet-5 (Theano's convolutional_mlp): batch 128, 1x28x28 float32 input, conv 20@5x5,
max-pool 2, conv 50@5x5, max-pool 2, dense 500 tanh, softmax 10; forward,
backward and the SGD update, as one kg.function with updates, against NumPy (the
same step written by hand with sliding windows and einsum/GEMM) and PyTorch, JAX
and PyTensor where installed. Then conv2d 64x64x56x56 with 3x3 filters ('half')
forward, as GFLOP/s beside the machine's float32 GEMM GFLOP/s through kgen.
Medians from the same run (a peer slower than a second per step: one timed call).
Peers are benchmark-only installs: `pip install torch --index-url
https://download.pytorch.org/whl/cpu`, `pip install jax pytensor`; a missing one
is reported as not installed.
"""
import argparse
import time

import numpy as np

import kgen as kg
import kgen.tensor as T
from kgen.tensor.signal import pool
from _timing import median_time, optional  # benchmarks/_timing.py


SHAPES = [(20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,), (800, 500), (500,), (500, 10), (10,)]


def init(rng):
    return [(rng.standard_normal(s) * (0.1 if len(s) > 1 else 0.0)).astype(np.float32)
            for s in SHAPES]


def kgen_step(start, lr):
    params = [kg.shared(v.copy(), name=f"p{i}") for i, v in enumerate(start)]
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    x, y = T.ftensor4("x"), T.ivector("y")
    a1 = T.tanh(T.nnet.conv2d(x, w1, input_shape=(None, 1, 28, 28), filter_shape=SHAPES[0])
                + b1.dimshuffle("x", 0, "x", "x"))
    p1 = pool.pool_2d(a1, (2, 2), ignore_border=True)
    a2 = T.tanh(T.nnet.conv2d(p1, w2, filter_shape=SHAPES[2]) + b2.dimshuffle("x", 0, "x", "x"))
    p2 = pool.pool_2d(a2, (2, 2), ignore_border=True)
    h = T.tanh(T.dot(p2.flatten(2), w3) + b3)
    prob = T.nnet.softmax(T.dot(h, w4) + b4)
    cost = -T.mean(T.log(prob)[T.arange(y.shape[0]), y])
    grads = T.grad(cost, params)
    return kg.function([x, y], cost, updates=[(p, p - lr * g) for p, g in zip(params, grads)])


def np_conv(x, w):
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))
    b, c, oh, ow, kh, kw = win.shape
    cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(b * oh * ow, -1)
    wf = w[:, :, ::-1, ::-1].reshape(w.shape[0], -1)
    return (cols @ wf.T).reshape(b, oh, ow, -1).transpose(0, 3, 1, 2), cols


def np_conv_back(x, w, cols, g):
    b, o, oh, ow = g.shape
    gm = g.transpose(0, 2, 3, 1).reshape(-1, o)
    wf = w[:, :, ::-1, ::-1]
    dw = (gm.T @ cols).reshape(wf.shape)[:, :, ::-1, ::-1]
    dcols = (gm @ wf.reshape(o, -1)).reshape(b, oh, ow, w.shape[1], *w.shape[2:])
    dx = np.zeros_like(x)
    for p in range(w.shape[2]):
        for q in range(w.shape[3]):
            dx[:, :, p:p + oh, q:q + ow] += dcols[..., p, q].transpose(0, 3, 1, 2)
    return dx, dw


def np_pool(a):
    b, c, h, w = a.shape
    return a.reshape(b, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def np_pool_back(a, m, g):
    up = lambda t: np.repeat(np.repeat(t, 2, axis=2), 2, axis=3)  # noqa: E731
    return (a == up(m)) * up(g)


def numpy_step(params, xv, yv, lr):
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    c1, cols1 = np_conv(xv, w1)
    a1 = np.tanh(c1 + b1[None, :, None, None])
    p1 = np_pool(a1)
    c2, cols2 = np_conv(p1, w2)
    a2 = np.tanh(c2 + b2[None, :, None, None])
    p2 = np_pool(a2)
    f = p2.reshape(p2.shape[0], -1)
    h = np.tanh(f @ w3 + b3)
    z = h @ w4 + b4
    e = np.exp(z - z.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    n = len(yv)
    dz = prob.copy()
    dz[np.arange(n), yv] -= 1
    dz /= n
    dh = dz @ w4.T * (1 - h ** 2)
    dp2 = (dh @ w3.T).reshape(p2.shape)
    dc2 = np_pool_back(a2, p2, dp2) * (1 - a2 ** 2)
    dp1, dw2 = np_conv_back(p1, w2, cols2, dc2)
    dc1 = np_pool_back(a1, p1, dp1) * (1 - a1 ** 2)
    _, dw1 = np_conv_back(xv, w1, cols1, dc1)
    grads = [dw1, dc1.sum(axis=(0, 2, 3)), dw2, dc2.sum(axis=(0, 2, 3)), f.T @ dh, dh.sum(0),
             h.T @ dz, dz.sum(0)]
    params[:] = [p - lr * g for p, g in zip(params, grads)]
    return -np.mean(np.log(prob[np.arange(n), yv]))


def torch_step(torch, start, xv, yv, lr):
    """The same step in PyTorch on the CPU (oneDNN convolutions), autograd."""
    F = torch.nn.functional
    params = [torch.tensor(v, requires_grad=True) for v in start]
    x, y = torch.from_numpy(xv), torch.from_numpy(yv).long()

    def step():
        w1, b1, w2, b2, w3, b3, w4, b4 = params
        a1 = torch.tanh(F.conv2d(x, w1.flip((2, 3))) + b1[None, :, None, None])
        a2 = torch.tanh(F.conv2d(F.max_pool2d(a1, 2), w2.flip((2, 3))) + b2[None, :, None, None])
        h = torch.tanh(F.max_pool2d(a2, 2).flatten(1) @ w3 + b3)
        cost = F.cross_entropy(h @ w4 + b4, y)
        grads = torch.autograd.grad(cost, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
        return cost.item()
    return step


def jax_step(jax, start, xv, yv, lr):
    """The same step in JAX on the CPU, one jitted function."""
    jnp, lax = jax.numpy, jax.lax

    def conv(x, w):
        return lax.conv_general_dilated(x, w[:, :, ::-1, ::-1], (1, 1), "VALID",
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def pool2(a):
        return lax.reduce_window(a, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss(params, x, y):
        w1, b1, w2, b2, w3, b3, w4, b4 = params
        a1 = jnp.tanh(conv(x, w1) + b1[None, :, None, None])
        a2 = jnp.tanh(conv(pool2(a1), w2) + b2[None, :, None, None])
        h = jnp.tanh(pool2(a2).reshape(x.shape[0], -1) @ w3 + b3)
        logp = jax.nn.log_softmax(h @ w4 + b4)
        return -jnp.mean(logp[jnp.arange(y.shape[0]), y])

    @jax.jit
    def update(params, x, y):
        cost, grads = jax.value_and_grad(loss)(params, x, y)
        return [p - lr * g for p, g in zip(params, grads)], cost

    state = {"p": [jnp.asarray(v) for v in start]}
    x, y = jnp.asarray(xv), jnp.asarray(yv)

    def step():
        state["p"], cost = update(state["p"], x, y)
        return float(cost)
    return step


def pytensor_step(pytensor, start, lr):
    """The same step in PyTensor (Theano's successor). PyTensor 2.9+ dropped
    Theano's nnet conv2d and pool_2d, so the convolution is its batched signal
    convolve2d over (image, out channel, in channel) summed over in channels,
    and the pooling a reshape and max."""
    import pytensor.tensor as pt
    from pytensor.tensor.signal import convolve2d
    params = [pytensor.shared(v.copy()) for v in start]
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    x, y = pt.tensor4("x", dtype="float32"), pt.ivector("y")

    def conv(a, w):   # a true convolution, as conv2d's filter_flip=True
        return convolve2d(a[:, None], w[None], mode="valid").sum(axis=2)

    def pool2(a):
        b, c, h, w = a.shape
        return a.reshape((b, c, h // 2, 2, w // 2, 2)).max(axis=(3, 5))

    a1 = pt.tanh(conv(x, w1) + b1.dimshuffle("x", 0, "x", "x"))
    a2 = pt.tanh(conv(pool2(a1), w2) + b2.dimshuffle("x", 0, "x", "x"))
    h = pt.tanh(pt.dot(pool2(a2).flatten(2), w3) + b3)
    prob = pt.special.softmax(pt.dot(h, w4) + b4, axis=-1)
    cost = -pt.mean(pt.log(prob)[pt.arange(y.shape[0]), y])
    grads = pt.grad(cost, params)
    return pytensor.function([x, y], cost, updates=[(p, p - lr * g) for p, g in zip(params, grads)])


def lenet(repeat):
    rng = np.random.default_rng(0)
    start = init(rng)
    xv = rng.standard_normal((128, 1, 28, 28)).astype(np.float32)
    yv = rng.integers(0, 10, size=128).astype(np.int32)
    step = kgen_step(start, np.float32(0.01))
    mine = [v.copy() for v in start]
    c_k, c_n = step(xv, yv), numpy_step(mine, xv, yv, np.float32(0.01))
    assert abs(float(c_k) - float(c_n)) < 1e-4, (c_k, c_n)
    times = {"kgen": median_time(lambda: step(xv, yv), repeat),
             "numpy": median_time(lambda: numpy_step(mine, xv, yv, np.float32(0.01)), repeat)}
    makers = {"torch": lambda m: torch_step(m, start, xv, yv, np.float32(0.01)),
              "jax": lambda m: jax_step(m, start, xv, yv, np.float32(0.01)),
              "pytensor": lambda m: (lambda f: lambda: f(xv, yv))(
                  pytensor_step(m, start, np.float32(0.01)))}
    for other, make in makers.items():
        module = optional(other)
        try:
            step_other = make(module) if module is not None else None
        except Exception as exc:   # e.g. a PyTensor without conv2d: skip that column
            print(f"  ({other}: {type(exc).__name__}: {exc})")
            step_other = None
        if step_other is None:
            times[other] = None
            continue
        c_o = step_other()
        assert abs(float(c_o) - float(c_n)) < 1e-3, (other, c_o, c_n)
        t0 = time.perf_counter()
        step_other()
        once = time.perf_counter() - t0
        # a step of more than a second (PyTensor's convolve2d) is timed once
        times[other] = once if once > 1.0 else median_time(step_other, repeat)
    return times


def big_conv(repeat):
    rng = np.random.default_rng(1)
    b, c, o, hw = 64, 64, 64, 56
    x, w = T.ftensor4("x"), T.ftensor4("w")
    f = kg.function([x, w], T.nnet.conv2d(x, w, filter_shape=(o, c, 3, 3), border_mode="half"))
    xv = rng.standard_normal((b, c, hw, hw)).astype(np.float32)
    wv = rng.standard_normal((o, c, 3, 3)).astype(np.float32)
    t_conv = median_time(lambda: f(xv, wv), repeat)
    flops = 2.0 * b * o * c * hw * hw * 9
    n = 2048
    a_, b_ = T.fmatrix("a"), T.fmatrix("b")
    g = kg.function([a_, b_], T.dot(a_, b_))
    av = rng.standard_normal((n, n)).astype(np.float32)
    t_gemm = median_time(lambda: g(av, av), repeat)
    torch, t_torch = optional("torch"), None
    if torch is not None:
        xt, wt = torch.from_numpy(xv), torch.from_numpy(wv[:, :, ::-1, ::-1].copy())
        with torch.no_grad():
            t_torch = median_time(lambda: torch.nn.functional.conv2d(xt, wt, padding=1), repeat)
    return flops / t_conv / 1e9, 2.0 * n ** 3 / t_gemm / 1e9, t_conv, \
        None if t_torch is None else flops / t_torch / 1e9


def lenet_layers(repeat):
    """LeNet's two convolutions forward alone, kgen against PyTorch: (shape, GFLOP/s each)."""
    rng, torch, out = np.random.default_rng(2), optional("torch"), []
    for b, c, hw, o, k in [(128, 1, 28, 20, 5), (128, 20, 12, 50, 5)]:
        x, w = T.ftensor4("x"), T.ftensor4("w")
        f = kg.function([x, w], T.nnet.conv2d(x, w, filter_shape=(o, c, k, k)))
        xv = rng.standard_normal((b, c, hw, hw)).astype(np.float32)
        wv = rng.standard_normal((o, c, k, k)).astype(np.float32)
        flops = 2.0 * b * o * c * k * k * (hw - k + 1) ** 2
        mine, theirs = flops / median_time(lambda: f(xv, wv), repeat) / 1e9, None
        if torch is not None:
            xt, wt = torch.from_numpy(xv), torch.from_numpy(wv[:, :, ::-1, ::-1].copy())
            with torch.no_grad():
                theirs = flops / median_time(lambda: torch.nn.functional.conv2d(xt, wt),
                                             repeat) / 1e9
        out.append(((b, c, hw, o, k), mine, theirs))
    return out


LAYERS = [(128, 1, 28, 20, 5), (128, 20, 12, 50, 5)]   # LeNet's convs: b, c, hw, o, k


def kgen_conv_roles(b, c, hw, o, k):
    """kg.functions for one layer's forward conv and its two gradient ops alone
    (correlations: the flip is PyTorch's too)."""
    from kgen.expr.ops import conv as conv_op
    xi, wi, gi = T.ftensor4("x"), T.ftensor4("w"), T.ftensor4("g")
    # the shapes known, as conv2d's filter_shape and input_shape hints make them
    x, w = T.specify_shape(xi, (b, c, hw, hw)), T.specify_shape(wi, (o, c, k, k))
    g = T.specify_shape(gi, (b, o, hw - k + 1, hw - k + 1))
    attrs = dict(pad=(0, 0), stride=(1, 1), dil=(1, 1), groups=1)
    return {"forward": kg.function([xi, wi], conv_op.conv2d(x, w, **attrs)),
            "grad_input": kg.function([xi, wi, gi], conv_op.conv2d_grad_input(g, w, x, **attrs)),
            "grad_filters": kg.function([xi, wi, gi],
                                        conv_op.conv2d_grad_filters(x, g, w, **attrs))}


def torch_conv_roles(torch, xv, wv, gv):
    """The same three in PyTorch (oneDNN): conv2d and aten's convolution_backward."""
    xt, wt, gt = (torch.from_numpy(a) for a in (xv, wv, gv))

    def back(mask):
        return lambda: torch.ops.aten.convolution_backward(
            gt, xt, wt, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)
    return {"forward": lambda: torch.nn.functional.conv2d(xt, wt),
            "grad_input": back([True, False, False]), "grad_filters": back([False, True, False])}


def lenet_layer_grads(repeat):
    """Each LeNet conv's forward and both gradients alone: GFLOP/s of kgen and PyTorch."""
    rng, torch, out = np.random.default_rng(3), optional("torch"), []
    for b, c, hw, o, k in LAYERS:
        oh = hw - k + 1
        xv = rng.standard_normal((b, c, hw, hw)).astype(np.float32)
        wv = rng.standard_normal((o, c, k, k)).astype(np.float32)
        gv = rng.standard_normal((b, o, oh, oh)).astype(np.float32)
        flops = 2.0 * b * o * c * k * k * oh * oh
        fs = kgen_conv_roles(b, c, hw, o, k)
        args = {"forward": (xv, wv), "grad_input": (xv, wv, gv), "grad_filters": (xv, wv, gv)}
        peer = torch_conv_roles(torch, xv, wv, gv) if torch is not None else {}
        for role, f in fs.items():
            mine = flops / median_time(lambda: f(*args[role]), repeat) / 1e9
            theirs = flops / median_time(peer[role], repeat) / 1e9 if role in peer else None
            out.append(((b, c, hw, o, k), role, mine, theirs))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--layers", action="store_true",
                    help="only LeNet's convs: forward and both gradients alone, GFLOP/s")
    args = ap.parse_args()
    repeat = 3 if args.quick else 7
    if args.layers:
        print("LeNet's convolutions alone, float32 (GFLOP/s, medians; PyTorch's oneDNN beside)")
        for (b, c, hw, o, k), role, mine, theirs in lenet_layer_grads(repeat):
            print(f"  {b}x{c}x{hw}x{hw}, {o}@{k}x{k} {role:12s}: kgen {mine:6.1f}"
                  + ("" if theirs is None else f", PyTorch {theirs:6.1f}  ({mine / theirs:.2f}x)"))
        return
    times = lenet(repeat)
    print("LeNet-5 training step, batch 128, float32 (median seconds; ratio to kgen)")
    for tool, t in times.items():
        print(f"  {tool:9s} " + ("not installed" if t is None
                                 else f"{t * 1e3:9.1f} ms   {t / times['kgen']:5.2f}x"))
    for (b, c, hw, o, k), mine, theirs in lenet_layers(repeat):
        print(f"  conv2d {b}x{c}x{hw}x{hw}, {o}@{k}x{k} forward: kgen {mine:.1f} GFLOP/s"
              + ("" if theirs is None else f", PyTorch {theirs:.1f} GFLOP/s"))
    conv, gemm, t, torch_conv = big_conv(repeat)
    print(f"conv2d 64x64x56x56, 64@3x3 'half', float32 forward: {t * 1e3:.1f} ms, "
          f"{conv:.1f} GFLOP/s; kgen float32 GEMM 2048^3: {gemm:.1f} GFLOP/s "
          f"({conv / gemm:.0%} of GEMM)"
          + ("" if torch_conv is None else f"; PyTorch's conv2d: {torch_conv:.1f} GFLOP/s"))


if __name__ == "__main__":
    main()
