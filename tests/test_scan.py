"""kgen.scan (Theano's loops): every argument form against NumPy loops written
here, compiled and in the NumPy reference; errors; gradients (BPTT) against
central finite differences."""

import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.errors import KgenTypeError, ShapeError

from _gradcheck import check_grad, check_second_order

RNG = np.random.default_rng(7)


def tanh_rnn(xv, wv, hv):
    out, h = [], hv
    for x_t in xv:
        h = np.tanh(wv * h + x_t)
        out.append(h)
    return np.array(out)


@pytest.fixture(scope="module")
def rnn():
    x, w, h0 = T.vector("x"), T.scalar("w"), T.scalar("h0")
    h, updates = kg.scan(lambda x_t, h_tm1, w: T.tanh(w * h_tm1 + x_t), sequences=x,
                         outputs_info=h0, non_sequences=w, name="rnn")
    return x, w, h0, h, updates, kg.function([x, w, h0], [h, h[-1]])


def test_scalar_recurrence_compiled_and_reference(rnn):
    x, w, h0, h, updates, f = rnn
    xv = RNG.standard_normal(9)
    want = tanh_rnn(xv, 0.6, 0.3)
    full, last = f(xv, 0.6, 0.3)
    np.testing.assert_allclose(full, want, rtol=1e-12)
    np.testing.assert_allclose(last, want[-1], rtol=1e-12)
    np.testing.assert_allclose(h.eval({x: xv, w: 0.6, h0: 0.3}), want, rtol=1e-12)
    assert updates == {}
    src = f.source()
    assert "scan rnn" in src and "v_x_t" in src and "v_h_tm1" in src  # the user's names


def test_sequence_taps_state_taps_none_output_and_shared():
    W = kg.shared(RNG.standard_normal((4, 4)) * 0.3, name="W")
    X, H0 = T.matrix("X"), T.matrix("H0")

    def step(x_tm1, x_t, x_tp1, h_tm2, h_tm1):
        h = T.tanh(T.dot(W, h_tm1) + 0.5 * h_tm2 + x_t + x_tm1 - x_tp1)
        return h, (h ** 2).sum()

    (hs, ss), _ = kg.scan(step, sequences=dict(input=X, taps=[-1, 0, 1]),
                          outputs_info=[dict(initial=H0, taps=[-2, -1]), None])
    Xv, H0v = RNG.standard_normal((7, 4)), RNG.standard_normal((3, 4))
    Wv = W.get_value()
    hist, want_h, want_s = [H0v[1], H0v[2]], [], []
    for t in range(5):  # 7 rows, taps -1..1: 5 steps; h starts from H0's last two rows
        h = np.tanh(Wv @ hist[-1] + 0.5 * hist[-2] + Xv[t + 1] + Xv[t] - Xv[t + 2])
        hist.append(h)
        want_h.append(h)
        want_s.append((h ** 2).sum())
    got_h, got_s = kg.function([X, H0], [hs, ss])(Xv, H0v)
    np.testing.assert_allclose(got_h, want_h, rtol=1e-12)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-12)
    np.testing.assert_allclose(hs.eval({X: Xv, H0: H0v}), want_h, rtol=1e-12)


def test_map_reduce_folds_go_backwards_and_symbolic_n_steps():
    X, n = T.matrix("X"), T.iscalar("n")
    Xv = RNG.standard_normal((6, 3))
    doubled, _ = kg.map(lambda v: v * 2, sequences=X)
    total, _ = kg.reduce(lambda v, acc: acc + v, sequences=X, outputs_info=T.zeros_like(X[0]))
    left, _ = kg.foldl(lambda v, acc: acc * 0.5 + v, sequences=X, outputs_info=T.zeros_like(X[0]))
    right, _ = kg.foldr(lambda v, acc: acc * 0.5 + v, sequences=X,
                        outputs_info=T.zeros_like(X[0]))
    back, _ = kg.scan(lambda v, acc: acc + v, sequences=X, outputs_info=T.zeros_like(X[0]),
                      n_steps=n, go_backwards=True)
    f = kg.function([X, n], [doubled, total, left, right, back])
    got = f(Xv, 4)

    def fold(rows):
        acc = np.zeros(3)
        for r in rows:
            acc = acc * 0.5 + r
        return acc
    np.testing.assert_allclose(got[0], Xv * 2)
    np.testing.assert_allclose(got[1], Xv.sum(0), rtol=1e-12)
    np.testing.assert_allclose(got[2], fold(Xv), rtol=1e-12)
    np.testing.assert_allclose(got[3], fold(Xv[::-1]), rtol=1e-12)
    np.testing.assert_allclose(got[4], np.cumsum(Xv[::-1], 0)[:4], rtol=1e-12)
    assert kg.scan_module.scan is kg.scan and kg.scan_module.until is not None
    # a reduce keeps a rolling buffer of its last rows, not every step
    assert "% 2" in f.source()
    with pytest.raises(ShapeError, match="too short"):
        f(Xv, 7)   # n_steps larger than the sequences: an error, as in Theano
    with pytest.raises(ShapeError, match="positive"):
        f(Xv, 0)


def test_errors_name_the_scan_and_the_output():
    x, h0 = T.vector("x"), T.scalar("h0")
    with pytest.raises(KgenTypeError, match=r"scan 'acc'.*2 outputs.*1 entries"):
        kg.scan(lambda v, h: [h + v, h], sequences=x, outputs_info=h0, name="acc")
    with pytest.raises(KgenTypeError, match=r"scan 'acc': output 0 .*int64.*float64"):
        kg.scan(lambda v, h: T.cast(h + v, "int64"), sequences=x, outputs_info=h0, name="acc")
    with pytest.raises(KgenTypeError, match=r"scan 'acc': output 0 .*state"):
        kg.scan(lambda v, h: h + x, sequences=x, outputs_info=h0, name="acc")
    with pytest.raises(KgenTypeError, match="strict"):
        kg.scan(lambda v, h: h + x[0], sequences=x, outputs_info=h0, strict=True)


def test_random_draws_differ_per_step_and_are_reproducible():
    srng = kg.RandomStreams(seed=3)
    u = srng.uniform((2,))
    draws, updates = kg.scan(lambda: u * 1.0, n_steps=4)
    assert len(updates) == 1
    f = kg.function([], draws, updates=updates)
    first, second = f(), f()
    assert first.shape == (4, 2)
    assert len({tuple(r) for r in first}) == 4          # a new draw at each step
    assert not np.allclose(first, second)               # updates advanced the stream
    srng.seed(3)
    np.testing.assert_array_equal(draws.eval(), first)  # the reference draws the same numbers
    np.testing.assert_array_equal(f(), first)           # the same seed, the same draws


def test_until_stops_early():
    x = T.vector("x")
    out, _ = kg.scan(lambda v, acc: (acc + v, kg.scan_module.until(acc + v > 2.5)),
                     sequences=x, outputs_info=T.zeros_like(x[0]), name="upto")
    np.testing.assert_allclose(out.eval({x: np.ones(6)}), [1.0, 2.0, 3.0])
    f = kg.function([x], out[-1])       # compiled: the loop breaks after step 3
    xv = RNG.uniform(0.2, 1.0, 9)
    want = np.cumsum(xv)[np.argmax(np.cumsum(xv) > 2.5)]
    assert float(f(xv)) == pytest.approx(want)
    assert float(f(np.full(3, 0.1))) == pytest.approx(0.3)   # never true: every step runs
    whole = kg.function([x], out)    # allocated at its longest, cut to the steps taken
    np.testing.assert_allclose(whole(xv), np.cumsum(xv)[:np.argmax(np.cumsum(xv) > 2.5) + 1])
    np.testing.assert_allclose(whole(np.full(3, 0.1)), [0.1, 0.2, 0.3])
    with pytest.raises(KgenTypeError, match="until"):
        kg.function([x], out * 2)   # a reader of every row would see rows never computed
    with pytest.raises(KgenTypeError, match="until"):
        kg.grad(out[-1], x)


def test_ten_thousand_steps_build_like_ten():
    x, w, h0 = T.vector("x"), T.scalar("w"), T.scalar("h0")
    h, _ = kg.scan(lambda x_t, h_tm1, w: T.tanh(w * h_tm1 + x_t), sequences=x,
                   outputs_info=h0, non_sequences=w, name="long")
    f = kg.function([x, w, h0], h[-1])
    xv = RNG.standard_normal(10_000)
    np.testing.assert_allclose(f(xv, 0.9, 0.0), tanh_rnn(xv, 0.9, 0.0)[-1], rtol=1e-10)
    # the kernel does not depend on the step count: one build serves 10 and 10,000
    np.testing.assert_allclose(f(xv[:10], 0.9, 0.0), tanh_rnn(xv[:10], 0.9, 0.0)[-1])


# ---- gradients -----------------------------------------------------------------
def test_rnn_gradient_compiled():
    x, w, h0 = T.vector("x"), T.scalar("w"), T.scalar("h0")
    h, _ = kg.scan(lambda x_t, h_tm1, w: T.tanh(w * h_tm1 + x_t), sequences=x,
                   outputs_info=h0, non_sequences=w)
    values = {x: RNG.uniform(-1, 1, 5), w: np.array(0.7), h0: np.array(0.2)}
    check_grad(h, values, [x, w, h0], compiled=True)
    # DebugMode checks every node of the loop and of its reverse against the reference
    debug = kg.function([x, w, h0], [h, kg.grad(h.sum(), w)], mode="DebugMode")
    got = debug(values[x], 0.7, 0.2)
    np.testing.assert_allclose(got[0], tanh_rnn(values[x], 0.7, 0.2), rtol=1e-12)


def test_matrix_rnn_with_taps_gradient():
    X, H0, W = T.matrix("X"), T.matrix("H0"), T.matrix("W")
    hs, _ = kg.scan(lambda x_t, h_tm2, h_tm1, W: T.tanh(T.dot(h_tm1, W) + 0.3 * h_tm2 + x_t),
                    sequences=X, outputs_info=dict(initial=H0, taps=[-2, -1]),
                    non_sequences=W)
    values = {X: RNG.uniform(-1, 1, (4, 3)), H0: RNG.uniform(-1, 1, (2, 3)),
              W: RNG.uniform(-0.5, 0.5, (3, 3))}
    check_grad(hs, values, [X, H0, W], compiled=True)


def test_lstm_cell_gradient():
    X = T.tensor3("X")            # (time, batch, input)
    Wx, Wh = T.matrix("Wx"), T.matrix("Wh")
    h0, c0 = T.matrix("h0"), T.matrix("c0")
    nh = 2

    def step(x_t, h_tm1, c_tm1, Wx, Wh):
        z = T.dot(x_t, Wx) + T.dot(h_tm1, Wh)
        i, f = T.nnet.sigmoid(z[:, :nh]), T.nnet.sigmoid(z[:, nh:2 * nh])
        o, g = T.nnet.sigmoid(z[:, 2 * nh:3 * nh]), T.tanh(z[:, 3 * nh:])
        c = f * c_tm1 + i * g
        return o * T.tanh(c), c

    (hs, cs), _ = kg.scan(step, sequences=X, outputs_info=[h0, c0], non_sequences=[Wx, Wh])
    values = {X: RNG.uniform(-1, 1, (3, 2, 3)), Wx: RNG.uniform(-0.5, 0.5, (3, 4 * nh)),
              Wh: RNG.uniform(-0.5, 0.5, (nh, 4 * nh)), h0: RNG.uniform(-1, 1, (2, nh)),
              c0: RNG.uniform(-1, 1, (2, nh))}
    check_grad(hs[-1].sum() + cs.mean(), values, [X, Wx, Wh, h0, c0], compiled=True)


def test_second_derivative_through_scan():
    x, w, h0 = T.vector("x"), T.scalar("w"), T.scalar("h0")
    h, _ = kg.scan(lambda x_t, h_tm1, w: T.tanh(w * h_tm1 + x_t), sequences=x,
                   outputs_info=h0, non_sequences=w)
    values = {x: RNG.uniform(-1, 1, 4), w: np.array(0.8), h0: np.array(-0.3)}
    check_second_order(h, values, [x, w])


def test_truncate_gradient_walks_the_last_steps_only():
    x, w, h0 = T.vector("x"), T.scalar("w"), T.scalar("h0")
    h, _ = kg.scan(lambda x_t, h_tm1, w: T.tanh(w * h_tm1 + x_t), sequences=x,
                   outputs_info=h0, non_sequences=w, truncate_gradient=2)
    gx, gh0 = kg.grad(h[-1], [x, h0])
    xv, wv, hv = RNG.uniform(-1, 1, 5), 0.7, 0.2
    hs = tanh_rnn(xv, wv, hv)
    d = 1 - hs ** 2                 # dh_t/dx_t; each step back multiplies by w * d
    want = np.zeros(5)
    want[4], want[3] = d[4], d[4] * wv * d[3]
    np.testing.assert_allclose(gx.eval({x: xv, w: wv, h0: hv}), want, rtol=1e-12)
    assert float(gh0.eval({x: xv, w: wv, h0: hv})) == 0.0


# ---- packages and CUDA -------------------------------------------------------------
SPEC = '''
import kgen as kg
import kgen.tensor as T
x, w, h0 = T.vector("x"), T.scalar("w"), T.scalar("h0")
h, _ = kg.scan(lambda x_t, h_tm1, w: T.tanh(w * h_tm1 + x_t), sequences=x,
               outputs_info=h0, non_sequences=w, name="rnn")
rnn = kg.kernel("rnn", [x, w, h0], [h, kg.grad(h.sum(), w)])
upto, _ = kg.scan(lambda v, acc: (acc + v, kg.scan_module.until(acc + v > 2.5)),
                  sequences=x, outputs_info=T.zeros_like(x[0]), name="upto")
running = kg.kernel("running", [x], upto)
'''


def test_package_carries_a_scan(spec_package):
    pkg = spec_package(SPEC, "rnn_pkg")
    xv = RNG.standard_normal(6)
    h, gw = pkg.rnn(xv, 0.5, 0.1)
    want = tanh_rnn(xv, 0.5, 0.1)
    np.testing.assert_allclose(h, want, rtol=1e-12)
    eps = 1e-6
    num = (tanh_rnn(xv, 0.5 + eps, 0.1).sum() - tanh_rnn(xv, 0.5 - eps, 0.1).sum()) / (2 * eps)
    np.testing.assert_allclose(gw, num, rtol=1e-6)
    # an until() output comes back cut to the steps taken, in the package too
    xu = RNG.uniform(0.2, 1.0, 9)
    np.testing.assert_allclose(pkg.running(xu),
                               np.cumsum(xu)[:np.argmax(np.cumsum(xu) > 2.5) + 1])


def test_cuda_runs_a_scan_as_a_loop_of_launches(rnn):
    # the body's kernels take t and the outer buffers (tests/test_cuda_scan.py runs them)
    from kgen.codegen.cuda import cuda_kernels
    x, w, h0, h, _, _ = rnn
    from kgen.lower.lower import lower
    plan = lower("kgen_rnn", [x, w, h0], [h], [])
    body = [k for k in cuda_kernels(plan) if k.scan is not None]
    assert body and all(k.args[-1].name == "t" for k in body)
    assert not any(a.ref == "v_h_tm1" for k in body for a in k.args)  # declared inside


def test_jacobian_and_hessian_of_unknown_sizes():
    x, M = T.vector("x"), T.matrix("M")   # no static sizes: rows come from a scan
    J = kg.jacobian(T.tanh(T.dot(M, x)), x)
    H = kg.hessian((T.tanh(x) ** 3).sum(), x)
    xv, Mv = RNG.standard_normal(3), RNG.standard_normal((4, 3))
    j, h = kg.function([x, M], [J, H])(xv, Mv)
    np.testing.assert_allclose(j, (1 - np.tanh(Mv @ xv) ** 2)[:, None] * Mv, rtol=1e-12)
    t = np.tanh(xv)
    d = 1 - t ** 2   # d2/dx2 tanh^3 = 6 t d^2 - 6 t^3 d
    np.testing.assert_allclose(h, np.diag(6 * t * d * d - 6 * t ** 3 * d), rtol=1e-10, atol=1e-14)
