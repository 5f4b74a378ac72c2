"""Theano's scan tutorial and the recurrent deep-learning tutorials, written in
their own idioms with only the imports changed (`import kgen as theano`,
`import kgen.tensor as T`), checked against NumPy loops written here, the
answers Theano's documentation prints, or central finite differences.

The programs follow Theano's "Loop" documentation (power, polynomial, tanh of
rows, recurrences, norms, trace, the Jacobian by scan, Gibbs sampling with
shared variables, `until`) and the structure of deeplearning.net's elman.py
(RNN for slot filling) and lstm.py. They are not copies.
"""
import numpy
import numpy as np
import pytest

import kgen as theano
import kgen.tensor as T
from kgen.tensor.shared_randomstreams import RandomStreams

floatX = "float64"


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))


# ---- Theano's "Loop" documentation ------------------------------------------------

def test_doc_power_by_scan_and_last_step():
    k = T.iscalar("k")
    A = T.vector("A")
    result, updates = theano.scan(fn=lambda prior_result, A: prior_result * A,
                                  outputs_info=T.ones_like(A), non_sequences=A, n_steps=k)
    final_result = result[-1]
    power = theano.function(inputs=[A, k], outputs=final_result, updates=updates)
    a = np.arange(10, dtype=floatX)
    np.testing.assert_allclose(power(a, 2), a ** 2)
    np.testing.assert_allclose(power(a, 5), a ** 5)
    every = theano.function([A, k], result)
    out = every(a, 3)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out, np.stack([a, a ** 2, a ** 3]))


def test_doc_polynomial_sequences_truncated_to_the_shortest():
    coefficients = T.vector("coefficients")
    x = T.scalar("x")
    max_coefficients_supported = 10000
    components, updates = theano.scan(
        fn=lambda coefficient, power, free_variable: coefficient * (free_variable ** power),
        outputs_info=None,
        sequences=[coefficients, T.arange(max_coefficients_supported)],
        non_sequences=x)
    polynomial = components.sum()
    calculate_polynomial = theano.function(inputs=[coefficients, x], outputs=polynomial)
    test_coefficients = numpy.asarray([1, 0, 2], dtype=numpy.float64)
    test_value = 3
    assert calculate_polynomial(test_coefficients, test_value) == pytest.approx(19.0)
    c = np.random.default_rng(0).normal(size=7)
    assert calculate_polynomial(c, 0.7) == pytest.approx(np.polyval(c[::-1], 0.7))


def test_doc_tanh_of_rows_captures_free_variables():
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym), sequences=X)
    compute_elementwise = theano.function(inputs=[X, W, b_sym], outputs=results)
    x = np.eye(2, dtype=floatX)
    w = np.ones((2, 2), dtype=floatX)
    b = np.ones((2), dtype=floatX)
    b[1] = 2
    np.testing.assert_allclose(compute_elementwise(x, w, b), np.tanh(x.dot(w) + b))


def test_doc_recurrence_with_reversed_sequence():
    X = T.vector("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    U = T.matrix("U")
    Y = T.matrix("Y")
    V = T.matrix("V")
    P = T.matrix("P")
    results, updates = theano.scan(
        lambda y, p, x_tm1: T.tanh(T.dot(x_tm1, W) + T.dot(y, U) + T.dot(p, V)),
        sequences=[Y, P[::-1]], outputs_info=[X])
    compute_seq = theano.function(inputs=[X, W, Y, U, P, V], outputs=results)
    x = np.zeros((2), dtype=floatX)
    x[1] = 1
    w = np.ones((2, 2), dtype=floatX)
    y = np.ones((5, 2), dtype=floatX)
    y[0, :] = -3
    u = np.ones((2, 2), dtype=floatX)
    p = np.ones((5, 2), dtype=floatX)
    p[0, :] = 3
    v = np.ones((2, 2), dtype=floatX)
    x_res = np.zeros((5, 2), dtype=floatX)
    x_res[0] = np.tanh(x.dot(w) + y[0].dot(u) + p[4].dot(v))
    for i in range(1, 5):
        x_res[i] = np.tanh(x_res[i - 1].dot(w) + y[i].dot(u) + p[4 - i].dot(v))
    np.testing.assert_allclose(compute_seq(x, w, y, u, p, v), x_res)


def test_doc_norms_and_trace_with_integer_sequences():
    X = T.matrix("X")
    results, updates = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X.T])
    compute_norm_cols = theano.function(inputs=[X], outputs=results)
    x = np.diag(np.arange(1, 6, dtype=floatX), 1)
    np.testing.assert_allclose(compute_norm_cols(x), np.sqrt((x ** 2).sum(0)))

    floatX_zero = numpy.asarray(0., dtype=floatX)
    results, updates = theano.scan(lambda i, j, t_f: T.cast(X[i, j] + t_f, floatX),
                                   sequences=[T.arange(X.shape[0]), T.arange(X.shape[1])],
                                   outputs_info=floatX_zero)
    result = results[-1]
    compute_trace = theano.function(inputs=[X], outputs=result)
    x = np.eye(5, dtype=floatX)
    x[0] = np.arange(5, dtype=floatX)
    assert compute_trace(x) == pytest.approx(np.trace(x))


def test_doc_taps_minus_two_fibonacci_like():
    X = T.matrix("X")  # the two initial rows: taps -2 and -1
    U = T.matrix("U")
    W1, W2 = T.matrix("W1"), T.matrix("W2")
    results, _ = theano.scan(lambda u_t, x_tm2, x_tm1: T.dot(u_t, W1) + T.tanh(T.dot(x_tm2, W2))
                             + 0.5 * x_tm1,
                             sequences=U, outputs_info=[dict(initial=X, taps=[-2, -1])])
    f = theano.function([X, U, W1, W2], results)
    rng = np.random.default_rng(1)
    x0, u = rng.normal(size=(2, 3)), rng.normal(size=(6, 3))
    w1, w2 = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    seq = [x0[0], x0[1]]
    for t in range(6):
        seq.append(u[t] @ w1 + np.tanh(seq[-2] @ w2) + 0.5 * seq[-1])
    np.testing.assert_allclose(f(x0, u, w1, w2), np.stack(seq[2:]))


def test_doc_until_stops_early():
    def power_of_2(previous_power, max_value):
        return previous_power * 2, theano.scan_module.until(previous_power * 2 > max_value)

    max_value = T.scalar()
    values, _ = theano.scan(power_of_2, outputs_info=T.constant(1.), non_sequences=max_value,
                            n_steps=1024)
    f = theano.function([max_value], values)
    np.testing.assert_allclose(f(45), [2, 4, 8, 16, 32, 64])
    np.testing.assert_allclose(f(3), [2, 4])


def test_doc_jacobian_by_scan_over_grad():
    x = T.dvector("x")
    y = x ** 2
    J, updates = theano.scan(lambda i, y, x: T.grad(y[i], x),
                             sequences=T.arange(y.shape[0]), non_sequences=[y, x])
    f = theano.function([x], J, updates=updates)
    np.testing.assert_allclose(f([4, 4]), [[8, 0], [0, 8]])
    v = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(f(v), np.diag(2 * v))


def test_doc_gibbs_sampling_advances_the_stream_through_updates():
    rng = np.random.default_rng(3)
    W_values = rng.normal(scale=0.5, size=(6, 4))
    W = theano.shared(W_values)
    bvis = theano.shared(np.zeros(6))
    bhid = theano.shared(np.zeros(4))
    trng = RandomStreams(1234)

    def OneStep(vsample):
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = T.nnet.sigmoid(theano.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=floatX)

    sample = T.vector()
    values, updates = theano.scan(OneStep, outputs_info=sample, n_steps=10)
    gibbs10 = theano.function([sample], values, updates=updates)
    v0 = np.ones(6)
    first = gibbs10(v0)
    assert first.shape == (10, 6) and set(np.unique(first)) <= {0.0, 1.0}
    second = gibbs10(v0)
    assert not np.array_equal(first, second)  # the stream advanced between calls
    trng.seed(1234)
    np.testing.assert_array_equal(gibbs10(v0), first)  # reseeding replays the chain
    # steps differ from one another (each step draws new numbers)
    assert len({tuple(r) for r in np.concatenate([first, second])}) > 2


# ---- elman.py: an RNN for slot filling ------------------------------------------------

def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class RNNSLU(object):
    """elman.py's model: sigmoid recurrence, softmax per step, NLL of a sentence."""

    def __init__(self, nh, nc, de, rng):
        def init(*shape):
            return theano.shared(0.2 * rng.uniform(-1.0, 1.0, shape).astype(floatX))
        self.wx, self.wh, self.w = init(de, nh), init(nh, nh), init(nh, nc)
        self.bh = theano.shared(numpy.zeros(nh, dtype=floatX))
        self.b = theano.shared(numpy.zeros(nc, dtype=floatX))
        self.h0 = theano.shared(numpy.zeros(nh, dtype=floatX))
        self.params = [self.wx, self.wh, self.w, self.bh, self.b, self.h0]
        x = T.matrix()
        y_sentence = T.ivector('y_sentence')

        def recurrence(x_t, h_tm1):
            h_t = T.nnet.sigmoid(T.dot(x_t, self.wx) + T.dot(h_tm1, self.wh) + self.bh)
            s_t = T.nnet.softmax(T.dot(h_t, self.w) + self.b)
            return [h_t, s_t]

        [h, s], _ = theano.scan(fn=recurrence, sequences=x, outputs_info=[self.h0, None],
                                n_steps=x.shape[0])
        p_y_given_x_sentence = s[:, 0, :]
        self.y_pred = T.argmax(p_y_given_x_sentence, axis=1)
        lr = T.scalar('lr')
        sentence_nll = -T.mean(T.log(p_y_given_x_sentence)[T.arange(x.shape[0]), y_sentence])
        sentence_gradients = T.grad(sentence_nll, self.params)
        sentence_updates = [(p, p - lr * g) for p, g in zip(self.params, sentence_gradients)]
        self.classify = theano.function(inputs=[x], outputs=self.y_pred)
        self.nll = theano.function([x, y_sentence], sentence_nll)
        self.sentence_train = theano.function(inputs=[x, y_sentence, lr], outputs=sentence_nll,
                                              updates=sentence_updates)


def np_elman_step(params, x, y, lr):
    """The same model, forward and back-propagation through time, by hand."""
    wx, wh, w, bh, b, h0 = params
    n = len(x)
    hs, ss = [], []
    h = h0
    for t in range(n):
        h = np_sigmoid(x[t] @ wx + h @ wh + bh)
        hs.append(h)
        ss.append(np_softmax(h @ w + b))
    s = np.stack(ss)
    nll = -np.mean(np.log(s[np.arange(n), y]))
    ds = s.copy()
    ds[np.arange(n), y] -= 1
    ds /= n
    g = [np.zeros_like(p) for p in params]
    dh_next = np.zeros_like(h0)
    for t in reversed(range(n)):
        g[2] += np.outer(hs[t], ds[t])
        g[4] += ds[t]
        dh = ds[t] @ w.T + dh_next
        dz = dh * hs[t] * (1 - hs[t])
        h_prev = hs[t - 1] if t else h0
        g[0] += np.outer(x[t], dz)
        g[1] += np.outer(h_prev, dz)
        g[3] += dz
        dh_next = dz @ wh.T
    g[5] = dh_next
    return nll, [p - lr * gp for p, gp in zip(params, g)]


def test_elman_rnn_slot_filling_trains_like_numpy_bptt():
    rng = numpy.random.RandomState(7)
    nh, nc, de = 6, 4, 5
    rnn = RNNSLU(nh, nc, de, rng)
    params = [p.get_value() for p in rnn.params]
    data = np.random.default_rng(0)
    for sentence_len in (5, 9, 1):  # value-dependent lengths, one compiled step
        x = data.normal(size=(sentence_len, de))
        y = data.integers(0, nc, sentence_len).astype(np.int32)
        nll = rnn.sentence_train(x, y, 0.1)
        nll0, params = np_elman_step(params, x, y, 0.1)
        assert nll == pytest.approx(nll0, rel=1e-9)
        for p, p0 in zip(rnn.params, params):
            assert rel(p.get_value(), p0) < 1e-9
    x = data.normal(size=(4, de))
    wx, wh, w, bh, b, h0 = params
    h, pred = h0, []
    for t in range(4):
        h = np_sigmoid(x[t] @ wx + h @ wh + bh)
        pred.append(np.argmax(h @ w + b))
    np.testing.assert_array_equal(rnn.classify(x), pred)


# ---- lstm.py: an LSTM layer over a minibatch, mean-pooled, with a softmax ------------

def test_lstm_layer_forward_matches_numpy_and_gradients_match_finite_differences():
    n_in, n_h, n_y, steps, batch = 3, 4, 2, 5, 2
    rng = np.random.default_rng(5)
    W = theano.shared(rng.normal(scale=0.4, size=(n_in, 4 * n_h)), name="lstm_W")
    U = theano.shared(rng.normal(scale=0.4, size=(n_h, 4 * n_h)), name="lstm_U")
    b = theano.shared(rng.normal(scale=0.1, size=4 * n_h), name="lstm_b")
    U_out = theano.shared(rng.normal(scale=0.4, size=(n_h, n_y)), name="U_out")
    x = T.tensor3("x")       # steps x batch x n_in
    mask = T.matrix("mask")  # steps x batch
    y = T.ivector("y")

    def _slice(_x, n, dim):
        return _x[:, n * dim:(n + 1) * dim]

    def _step(m_, x_, h_, c_):
        preact = T.dot(h_, U) + x_
        i = T.nnet.sigmoid(_slice(preact, 0, n_h))
        f = T.nnet.sigmoid(_slice(preact, 1, n_h))
        o = T.nnet.sigmoid(_slice(preact, 2, n_h))
        c = T.tanh(_slice(preact, 3, n_h))
        c = f * c_ + i * c
        c = m_[:, None] * c + (1. - m_)[:, None] * c_
        h = o * T.tanh(c)
        h = m_[:, None] * h + (1. - m_)[:, None] * h_
        return h, c

    state_below = T.dot(x, W) + b
    rval, updates = theano.scan(_step, sequences=[mask, state_below],
                                outputs_info=[T.alloc(numpy.asarray(0., dtype=floatX), x.shape[1], n_h),
                                              T.alloc(numpy.asarray(0., dtype=floatX), x.shape[1], n_h)],
                                name="lstm_layers", n_steps=x.shape[0])
    proj = (rval[0] * mask[:, :, None]).sum(axis=0) / mask.sum(axis=0)[:, None]
    pred = T.nnet.softmax(T.dot(proj, U_out))
    cost = -T.log(pred[T.arange(batch), y] + 1e-8).mean()
    params = [W, U, b, U_out]
    f_cost = theano.function([x, mask, y], cost)
    f_grad = theano.function([x, mask, y], T.grad(cost, wrt=params))

    xv = rng.normal(size=(steps, batch, n_in))
    mv = np.ones((steps, batch))
    mv[3:, 1] = 0.0  # the second sequence is 3 long
    yv = np.array([0, 1], np.int32)

    def np_cost(Wv, Uv, bv, Uo):
        sig = np_sigmoid
        h = np.zeros((batch, n_h))
        c = np.zeros((batch, n_h))
        hs = []
        for t in range(steps):
            pre = h @ Uv + xv[t] @ Wv + bv
            i, f, o = (sig(pre[:, k * n_h:(k + 1) * n_h]) for k in range(3))
            cc = f * c + i * np.tanh(pre[:, 3 * n_h:])
            m = mv[t][:, None]
            c = m * cc + (1 - m) * c
            h = m * (o * np.tanh(c)) + (1 - m) * h
            hs.append(h)
        proj = (np.stack(hs) * mv[:, :, None]).sum(0) / mv.sum(0)[:, None]
        p = np_softmax(proj @ Uo)
        return -np.log(p[np.arange(batch), yv] + 1e-8).mean()

    values = [p.get_value() for p in params]
    assert f_cost(xv, mv, yv) == pytest.approx(np_cost(*values), rel=1e-10)
    grads = f_grad(xv, mv, yv)
    eps = 1e-6
    for k, (v, g) in enumerate(zip(values, grads)):
        numeric = np.zeros_like(v)
        for idx in np.ndindex(*v.shape):
            plus = [u.copy() for u in values]
            minus = [u.copy() for u in values]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric[idx] = (np_cost(*plus) - np_cost(*minus)) / (2 * eps)
        assert rel(g, numeric) < 1e-6, params[k].name
