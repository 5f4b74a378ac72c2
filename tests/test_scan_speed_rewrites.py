"""The rewrites that make scan loops fast, checked for what they compute:
  - x_t @ W hoisted out of the loop as one product (kgen/scan_hoist.py), and
    not hoisted where the matrix depends on the step;
  - BPTT's sums over the steps of P_t^T @ Q_t as one product after the
    reverse loop, and the forward step's costly values kept by a widened
    forward scan that runs in place of the scan (kgen/lower/scan_merge.py).
Results against NumPy loops written here, gradients against central finite
differences (tests/_gradcheck.py)."""
import numpy as np

import kgen as kg
import kgen.tensor as T
from kgen.expr.graph import toposort
from kgen.expr.ops.scan import scan as scan_op

from _gradcheck import check_grad

RNG = np.random.default_rng(12)


def scan_node(out):
    return next(n for n in toposort([out]) if n.op is scan_op)


def products_in_body(node):
    """The body's matmuls, as (left operand, right operand) names."""
    return [(n.inputs[0].name, n.inputs[1].name)
            for n in toposort(list(node.attr("inner_out"))) if n.op is not None
            and n.op.name == "matmul"]


def rnn_numpy(Xv, Wv, Uv, bv, hv):
    out, h = [], hv
    for x_t in Xv:
        h = np.tanh(x_t @ Wv + h @ Uv + bv)
        out.append(h)
    return np.array(out)


def rnn(X, W, U, b, h0):
    hs, _ = kg.scan(lambda x_t, h_tm1, W, U, b: T.tanh(T.dot(x_t, W) + T.dot(h_tm1, U) + b),
                    sequences=X, outputs_info=h0, non_sequences=[W, U, b], name="rnn")
    return hs


def test_input_projection_runs_once_before_the_loop():
    X, W, U, b, h0 = T.tensor3("X"), T.matrix("W"), T.matrix("U"), T.vector("b"), T.matrix("h0")
    hs = rnn(X, W, U, b, h0)
    # only h_tm1 @ U is left in the body; x_t @ W is a sequence of the loop
    assert products_in_body(scan_node(hs)) == [("h_tm1", "U")]
    vals = [RNG.uniform(-1, 1, (6, 3, 4)), RNG.uniform(-.5, .5, (4, 5)),
            RNG.uniform(-.5, .5, (5, 5)), RNG.uniform(-.5, .5, 5), RNG.uniform(-1, 1, (3, 5))]
    f = kg.function([X, W, U, b, h0], hs)
    np.testing.assert_allclose(f(*vals), rnn_numpy(*vals), rtol=1e-12, atol=1e-14)
    values = dict(zip([X, W, U, b, h0], vals))
    check_grad(hs[-1].sum() + (hs ** 2).mean(), values, [X, W, U, b, h0], compiled=True)


def test_matrix_times_a_row_vector_and_taps_are_hoisted():
    X, W, h0 = T.matrix("X"), T.matrix("W"), T.vector("h0")

    def step(x_tm1, x_t, h_tm1, W):   # W @ x_t: a product on the left, of 1-d rows
        return T.tanh(T.dot(W, x_t) - 0.5 * T.dot(x_tm1, W.T) + h_tm1)

    hs, _ = kg.scan(step, sequences=dict(input=X, taps=[-1, 0]), outputs_info=h0,
                    non_sequences=W)
    assert products_in_body(scan_node(hs)) == []
    Xv, Wv, hv = RNG.uniform(-1, 1, (7, 3)), RNG.uniform(-1, 1, (3, 3)), RNG.uniform(-1, 1, 3)
    want, h = [], hv
    for t in range(6):
        h = np.tanh(Wv @ Xv[t + 1] - 0.5 * Xv[t] @ Wv.T + h)
        want.append(h)
    f = kg.function([X, W, h0], hs)
    np.testing.assert_allclose(f(Xv, Wv, hv), np.array(want), rtol=1e-12, atol=1e-14)
    check_grad(hs.sum(), {X: Xv, W: Wv, h0: hv}, [X, W, h0], compiled=True)


def test_a_matrix_that_depends_on_the_step_stays_in_the_loop():
    X, W, h0 = T.tensor3("X"), T.matrix("W"), T.matrix("h0")

    def step(x_t, h_tm1, W):   # the matrix changes with the state: nothing to hoist
        return T.tanh(T.dot(x_t, W * (1 + h_tm1.mean())))

    hs, _ = kg.scan(step, sequences=X, outputs_info=h0, non_sequences=W)
    assert len(products_in_body(scan_node(hs))) == 1
    Xv, Wv = RNG.uniform(-1, 1, (5, 2, 3)), RNG.uniform(-1, 1, (3, 3))
    hv = RNG.uniform(-1, 1, (2, 3))
    want, h = [], hv
    for x_t in Xv:
        h = np.tanh(x_t @ (Wv * (1 + h.mean())))
        want.append(h)
    f = kg.function([X, W, h0], hs)
    np.testing.assert_allclose(f(Xv, Wv, hv), np.array(want), rtol=1e-12, atol=1e-14)
    check_grad(hs[-1].sum(), {X: Xv, W: Wv, h0: hv}, [X, W, h0], compiled=True)


def lstm(X, W, U, b, h0, c0, nh):
    def step(x_t, h_tm1, c_tm1, W, U, b):
        z = T.dot(x_t, W) + T.dot(h_tm1, U) + b
        i, f = T.nnet.sigmoid(z[:, :nh]), T.nnet.sigmoid(z[:, nh:2 * nh])
        o, g = T.nnet.sigmoid(z[:, 2 * nh:3 * nh]), T.tanh(z[:, 3 * nh:])
        c = f * c_tm1 + i * g
        return o * T.tanh(c), c

    (hs, cs), _ = kg.scan(step, sequences=X, outputs_info=[h0, c0], non_sequences=[W, U, b],
                          name="lstm")
    return hs, cs


def test_lstm_loss_and_gradient_run_two_loops():
    """The forward scan of the loss and the widened one of its gradient (which
    keeps the gates) are one loop; the reverse loop is the other. Gradients
    still match finite differences, and the loss its NumPy loop."""
    nh = 3
    X, W, U, b = T.tensor3("X"), T.matrix("W"), T.matrix("U"), T.vector("b")
    h0, c0 = T.matrix("h0"), T.matrix("c0")
    hs, cs = lstm(X, W, U, b, h0, c0, nh)
    loss = hs[-1].sum() + 0.5 * (cs ** 2).mean()
    vals = {X: RNG.uniform(-1, 1, (4, 2, 3)), W: RNG.uniform(-.5, .5, (3, 4 * nh)),
            U: RNG.uniform(-.5, .5, (nh, 4 * nh)), b: RNG.uniform(-.5, .5, 4 * nh),
            h0: RNG.uniform(-1, 1, (2, nh)), c0: RNG.uniform(-1, 1, (2, nh))}
    wrt = [X, W, U, b, h0, c0]
    f = kg.function(wrt, [loss] + kg.grad(loss, wrt))
    assert f.source().count("for (int64_t t = 0;") == 2
    h, c, sq = vals[h0], vals[c0], 0.0
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for x_t in vals[X]:
        z = x_t @ vals[W] + h @ vals[U] + vals[b]
        c = sig(z[:, nh:2 * nh]) * c + sig(z[:, :nh]) * np.tanh(z[:, 3 * nh:])
        h = sig(z[:, 2 * nh:3 * nh]) * np.tanh(c)
        sq += (c ** 2).sum()
    got = f(*[vals[v] for v in wrt])
    np.testing.assert_allclose(got[0], h.sum() + 0.5 * sq / (vals[X].size // 3 * nh),
                               rtol=1e-12)
    check_grad(loss, vals, wrt, compiled=True)


def test_the_forward_scan_alone_is_not_widened():
    nh = 2
    X, W, U, b = T.tensor3("X"), T.matrix("W"), T.matrix("U"), T.vector("b")
    h0 = T.matrix("h0")
    hs, cs = lstm(X, W, U, b, h0, h0, nh)
    kg.grad(hs[-1].sum(), [W, U, b])     # builds the widened copy, which this kernel lacks
    src = kg.function([X, W, U, b, h0], hs[-1]).source()
    assert src.count("for (int64_t t = 0;") == 1
    assert "lstm_out2" not in src         # no kept gate among its outputs
