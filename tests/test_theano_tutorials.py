"""Theano tutorial programs, written here in the tutorials' own idioms, with
only the imports changed (`import kgen as theano`, `import kgen.tensor as T`,
`from kgen.tensor.shared_randomstreams import RandomStreams`), run at small
sizes on synthetic data and checked against NumPy reimplementations (float64:
1e-9; float32: ~1e-5) or against the answers Theano's documentation prints.

The programs follow the structure of deeplearning.net's logistic_sgd.py,
mlp.py, dA.py, SdA.py and cA.py (classes holding shared parameters,
`theano.function(inputs=[index], outputs=cost, updates=updates, givens={...})`,
the early-stopping loop, pickling the best model) and of Theano's tutorial
documentation (baby steps, more examples, derivatives). They are not copies.
"""
import pickle

import numpy
import numpy as np
import pytest

import kgen as theano
import kgen.tensor as T
from kgen import In, function, pp, shared
from kgen.tensor.shared_randomstreams import RandomStreams


# =====================================================================================
# the tutorial programs' building blocks, in their idioms
# =====================================================================================

class LogisticRegression(object):
    def __init__(self, input, n_in, n_out):
        self.W = theano.shared(value=numpy.zeros((n_in, n_out), dtype=theano.config.floatX),
                               name='W', borrow=True)
        self.b = theano.shared(value=numpy.zeros((n_out,), dtype=theano.config.floatX),
                               name='b', borrow=True)
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]
        self.input = input

    def negative_log_likelihood(self, y):
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        if y.ndim != self.y_pred.ndim:
            raise TypeError('y should have the same shape as self.y_pred',
                            ('y', y.type, 'y_pred', self.y_pred.type))
        if y.dtype.startswith('int'):
            return T.mean(T.neq(self.y_pred, y))
        else:
            raise NotImplementedError()


class HiddenLayer(object):
    def __init__(self, rng, input, n_in, n_out, W=None, b=None, activation=T.tanh):
        self.input = input
        if W is None:
            W_values = numpy.asarray(
                rng.uniform(low=-numpy.sqrt(6. / (n_in + n_out)),
                            high=numpy.sqrt(6. / (n_in + n_out)),
                            size=(n_in, n_out)),
                dtype=theano.config.floatX)
            if activation == theano.tensor.nnet.sigmoid:
                W_values *= 4
            W = theano.shared(value=W_values, name='W', borrow=True)
        if b is None:
            b_values = numpy.zeros((n_out,), dtype=theano.config.floatX)
            b = theano.shared(value=b_values, name='b', borrow=True)
        self.W = W
        self.b = b
        lin_output = T.dot(input, self.W) + self.b
        self.output = (lin_output if activation is None else activation(lin_output))
        self.params = [self.W, self.b]


class MLP(object):
    def __init__(self, rng, input, n_in, n_hidden, n_out):
        self.hiddenLayer = HiddenLayer(rng=rng, input=input, n_in=n_in, n_out=n_hidden,
                                       activation=T.tanh)
        self.logRegressionLayer = LogisticRegression(input=self.hiddenLayer.output,
                                                     n_in=n_hidden, n_out=n_out)
        self.L1 = (abs(self.hiddenLayer.W).sum() + abs(self.logRegressionLayer.W).sum())
        self.L2_sqr = ((self.hiddenLayer.W ** 2).sum() + (self.logRegressionLayer.W ** 2).sum())
        self.negative_log_likelihood = self.logRegressionLayer.negative_log_likelihood
        self.errors = self.logRegressionLayer.errors
        self.params = self.hiddenLayer.params + self.logRegressionLayer.params
        self.input = input


class dA(object):
    def __init__(self, numpy_rng, theano_rng=None, input=None, n_visible=784, n_hidden=500,
                 W=None, bhid=None, bvis=None):
        self.n_visible = n_visible
        self.n_hidden = n_hidden
        if not theano_rng:
            theano_rng = RandomStreams(numpy_rng.randint(2 ** 30))
        if not W:
            initial_W = numpy.asarray(
                numpy_rng.uniform(low=-4 * numpy.sqrt(6. / (n_hidden + n_visible)),
                                  high=4 * numpy.sqrt(6. / (n_hidden + n_visible)),
                                  size=(n_visible, n_hidden)),
                dtype=theano.config.floatX)
            W = theano.shared(value=initial_W, name='W', borrow=True)
        if not bvis:
            bvis = theano.shared(value=numpy.zeros(n_visible, dtype=theano.config.floatX),
                                 borrow=True)
        if not bhid:
            bhid = theano.shared(value=numpy.zeros(n_hidden, dtype=theano.config.floatX),
                                 name='b', borrow=True)
        self.W = W
        self.b = bhid
        self.b_prime = bvis
        self.W_prime = self.W.T
        self.theano_rng = theano_rng
        if input is None:
            self.x = T.dmatrix(name='input')
        else:
            self.x = input
        self.params = [self.W, self.b, self.b_prime]

    def get_corrupted_input(self, input, corruption_level):
        return self.theano_rng.binomial(size=input.shape, n=1, p=1 - corruption_level,
                                        dtype=theano.config.floatX) * input

    def get_hidden_values(self, input):
        return T.nnet.sigmoid(T.dot(input, self.W) + self.b)

    def get_reconstructed_input(self, hidden):
        return T.nnet.sigmoid(T.dot(hidden, self.W_prime) + self.b_prime)

    def get_cost_updates(self, corruption_level, learning_rate):
        tilde_x = self.get_corrupted_input(self.x, corruption_level)
        y = self.get_hidden_values(tilde_x)
        z = self.get_reconstructed_input(y)
        L = - T.sum(self.x * T.log(z) + (1 - self.x) * T.log(1 - z), axis=1)
        cost = T.mean(L)
        gparams = T.grad(cost, self.params)
        updates = [(param, param - learning_rate * gparam)
                   for param, gparam in zip(self.params, gparams)]
        return (cost, updates)


class SdA(object):
    def __init__(self, numpy_rng, theano_rng=None, n_ins=784, hidden_layers_sizes=[500, 500],
                 n_outs=10, corruption_levels=[0.1, 0.1]):
        self.sigmoid_layers = []
        self.dA_layers = []
        self.params = []
        self.n_layers = len(hidden_layers_sizes)
        assert self.n_layers > 0
        if not theano_rng:
            theano_rng = RandomStreams(numpy_rng.randint(2 ** 30))
        self.x = T.matrix('x')
        self.y = T.ivector('y')
        for i in range(self.n_layers):
            input_size = n_ins if i == 0 else hidden_layers_sizes[i - 1]
            layer_input = self.x if i == 0 else self.sigmoid_layers[-1].output
            sigmoid_layer = HiddenLayer(rng=numpy_rng, input=layer_input, n_in=input_size,
                                        n_out=hidden_layers_sizes[i],
                                        activation=T.nnet.sigmoid)
            self.sigmoid_layers.append(sigmoid_layer)
            self.params.extend(sigmoid_layer.params)
            dA_layer = dA(numpy_rng=numpy_rng, theano_rng=theano_rng, input=layer_input,
                          n_visible=input_size, n_hidden=hidden_layers_sizes[i],
                          W=sigmoid_layer.W, bhid=sigmoid_layer.b)
            self.dA_layers.append(dA_layer)
        self.logLayer = LogisticRegression(input=self.sigmoid_layers[-1].output,
                                           n_in=hidden_layers_sizes[-1], n_out=n_outs)
        self.params.extend(self.logLayer.params)
        self.finetune_cost = self.logLayer.negative_log_likelihood(self.y)
        self.errors = self.logLayer.errors(self.y)

    def pretraining_functions(self, train_set_x, batch_size):
        index = T.lscalar('index')
        corruption_level = T.scalar('corruption')
        learning_rate = T.scalar('lr')
        batch_begin = index * batch_size
        batch_end = batch_begin + batch_size
        pretrain_fns = []
        for dA_layer in self.dA_layers:
            cost, updates = dA_layer.get_cost_updates(corruption_level, learning_rate)
            fn = theano.function(
                inputs=[index, theano.In(corruption_level, value=0.2),
                        theano.In(learning_rate, value=0.1)],
                outputs=cost, updates=updates,
                givens={self.x: train_set_x[batch_begin: batch_end]})
            pretrain_fns.append(fn)
        return pretrain_fns

    def build_finetune_functions(self, datasets, batch_size, learning_rate):
        (train_set_x, train_set_y) = datasets[0]
        (valid_set_x, valid_set_y) = datasets[1]
        n_valid_batches = valid_set_x.get_value(borrow=True).shape[0]
        n_valid_batches //= batch_size
        index = T.lscalar('index')
        gparams = T.grad(self.finetune_cost, self.params)
        updates = [(param, param - gparam * learning_rate)
                   for param, gparam in zip(self.params, gparams)]
        train_fn = theano.function(
            inputs=[index], outputs=self.finetune_cost, updates=updates,
            givens={self.x: train_set_x[index * batch_size: (index + 1) * batch_size],
                    self.y: train_set_y[index * batch_size: (index + 1) * batch_size]},
            name='train')
        valid_score_i = theano.function(
            [index], self.errors,
            givens={self.x: valid_set_x[index * batch_size: (index + 1) * batch_size],
                    self.y: valid_set_y[index * batch_size: (index + 1) * batch_size]},
            name='valid')

        def valid_score():
            return [valid_score_i(i) for i in range(n_valid_batches)]
        return train_fn, valid_score


def shared_dataset(data_xy, borrow=True):
    data_x, data_y = data_xy
    shared_x = theano.shared(numpy.asarray(data_x, dtype=theano.config.floatX), borrow=borrow)
    shared_y = theano.shared(numpy.asarray(data_y, dtype=theano.config.floatX), borrow=borrow)
    return shared_x, T.cast(shared_y, 'int32')


def make_sets(sizes, n_in, n_out, seed):
    """MNIST-like synthetic sets: pixels in [0, 1), mostly 0; labels from a
    random linear model plus noise."""
    rng = np.random.default_rng(seed)
    w_true = rng.standard_normal((n_in, n_out))
    sets = []
    for n in sizes:
        x = rng.random((n, n_in)) * (rng.random((n, n_in)) < 0.3)
        y = np.argmax(x @ w_true + 0.3 * rng.standard_normal((n, n_out)), axis=1)
        sets.append((x, y))
    return sets


def early_stopping(train_model, validate_model, n_train_batches, n_valid_batches, n_epochs,
                   on_best=None):
    """logistic_sgd.py's training loop: patience, validation_frequency,
    improvement_threshold; returns (costs, validation losses, best loss)."""
    patience = 5000
    patience_increase = 2
    improvement_threshold = 0.995
    validation_frequency = min(n_train_batches, patience // 2)
    best_validation_loss = numpy.inf
    costs, losses = [], []
    done_looping = False
    epoch = 0
    while (epoch < n_epochs) and (not done_looping):
        epoch = epoch + 1
        for minibatch_index in range(n_train_batches):
            minibatch_avg_cost = train_model(minibatch_index)
            costs.append(float(minibatch_avg_cost))
            iter = (epoch - 1) * n_train_batches + minibatch_index
            if (iter + 1) % validation_frequency == 0:
                validation_losses = [validate_model(i) for i in range(n_valid_batches)]
                this_validation_loss = numpy.mean(validation_losses)
                losses.append(this_validation_loss)
                if this_validation_loss < best_validation_loss:
                    if this_validation_loss < best_validation_loss * improvement_threshold:
                        patience = max(patience, iter * patience_increase)
                    best_validation_loss = this_validation_loss
                    if on_best is not None:
                        on_best()
            if patience <= iter:
                done_looping = True
                break
    return costs, losses, best_validation_loss


# ---- NumPy references -----------------------------------------------------------------

def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_sigmoid(a):
    return 1 / (1 + np.exp(-a))


def np_nll_grad(p, y):
    """-mean(log p[range, y]) and its gradient with respect to the logits."""
    n = len(y)
    d = p.copy()
    d[np.arange(n), y] -= 1
    return -np.mean(np.log(p[np.arange(n), y])), d / n


def np_da_step(x, mask, W, b, bp, lr):
    """dA.get_cost_updates in NumPy: tied weights, cross-entropy; returns cost, new params."""
    tx = mask * x
    h = np_sigmoid(tx @ W + b)
    z = np_sigmoid(h @ W.T + bp)
    cost = np.mean(-np.sum(x * np.log(z) + (1 - x) * np.log(1 - z), axis=1))
    dz = (z - x) / len(x)                 # d cost / d (pre-sigmoid of z)
    dh = (dz @ W) * h * (1 - h)
    gW = tx.T @ dh + dz.T @ h
    return cost, W - lr * gW, b - lr * dh.sum(0), bp - lr * dz.sum(0)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / (np.abs(b) + 1e-6))) if a.size else 0.0


@pytest.fixture
def floatX(request, monkeypatch):
    monkeypatch.setattr(theano.config, 'floatX', request.param)
    return request.param


TOL = {'float64': 1e-9, 'float32': 2e-5}


# =====================================================================================
# logistic_sgd.py
# =====================================================================================

@pytest.mark.parametrize('floatX', ['float64', 'float32'], indirect=True)
def test_logistic_sgd_givens_early_stopping_pickle(floatX, tmp_path):
    n_in, n_out, batch_size, learning_rate, n_epochs = 20, 4, 10, 0.13, 4
    train, valid, test = make_sets((80, 30, 30), n_in, n_out, seed=3)
    train_set_x, train_set_y = shared_dataset(train)
    valid_set_x, valid_set_y = shared_dataset(valid)
    test_set_x, test_set_y = shared_dataset(test)
    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size

    index = T.lscalar()
    x = T.matrix('x')
    y = T.ivector('y')
    classifier = LogisticRegression(input=x, n_in=n_in, n_out=n_out)
    cost = classifier.negative_log_likelihood(y)
    test_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: test_set_x[index * batch_size: (index + 1) * batch_size],
                y: test_set_y[index * batch_size: (index + 1) * batch_size]})
    validate_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: valid_set_x[index * batch_size: (index + 1) * batch_size],
                y: valid_set_y[index * batch_size: (index + 1) * batch_size]})
    g_W = T.grad(cost=cost, wrt=classifier.W)
    g_b = T.grad(cost=cost, wrt=classifier.b)
    updates = [(classifier.W, classifier.W - learning_rate * g_W),
               (classifier.b, classifier.b - learning_rate * g_b)]
    train_model = theano.function(
        inputs=[index], outputs=cost, updates=updates,
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size],
                y: train_set_y[index * batch_size: (index + 1) * batch_size]})

    path = tmp_path / 'best_model.pkl'
    saved = {}

    def save_best():
        with open(path, 'wb') as f:
            pickle.dump(classifier, f)
        saved['W'] = classifier.W.get_value()

    costs, losses, best = early_stopping(train_model, validate_model, n_train_batches,
                                         n_valid_batches, n_epochs, on_best=save_best)
    test_losses = [test_model(i) for i in range(n_valid_batches)]

    # the same program in NumPy, through the same loop
    X = {k: np.asarray(s[0], floatX) for k, s in zip('tv', (train, valid))}
    Y = {k: s[1] for k, s in zip('tv', (train, valid))}
    P = {'W': np.zeros((n_in, n_out), floatX), 'b': np.zeros(n_out, floatX)}

    def np_train(i):
        r = slice(i * batch_size, (i + 1) * batch_size)
        c, d = np_nll_grad(np_softmax(X['t'][r] @ P['W'] + P['b']), Y['t'][r])
        P['W'] = P['W'] - learning_rate * (X['t'][r].T @ d)
        P['b'] = P['b'] - learning_rate * d.sum(0)
        return c

    def np_valid(i):
        r = slice(i * batch_size, (i + 1) * batch_size)
        return np.mean(np.argmax(X['v'][r] @ P['W'] + P['b'], axis=1) != Y['v'][r])

    costs0, losses0, best0 = early_stopping(np_train, np_valid, n_train_batches,
                                            n_valid_batches, n_epochs)
    assert len(costs) == len(costs0) == n_epochs * n_train_batches
    assert rel(costs, costs0) < TOL[floatX]
    assert rel(classifier.W.get_value(), P['W']) < 10 * TOL[floatX]
    np.testing.assert_array_equal(losses, losses0)
    assert best == best0 and costs[-1] < costs[0]
    assert all(np.asarray(t).dtype == np.float64 for t in test_losses)  # mean of bools

    # predict(): load the pickled classifier and compile on its own input
    with open(path, 'rb') as f:
        classifier = pickle.load(f)
    predict_model = theano.function(inputs=[classifier.input], outputs=classifier.y_pred)
    test_x = test_set_x.get_value()
    predicted_values = predict_model(test_x[:10])
    np.testing.assert_array_equal(classifier.W.get_value(), saved['W'])
    want = np.argmax(test_x[:10] @ saved['W'] + classifier.b.get_value(), axis=1)
    np.testing.assert_array_equal(predicted_values, want)


# =====================================================================================
# mlp.py
# =====================================================================================

@pytest.mark.parametrize('floatX', ['float64', 'float32'], indirect=True)
def test_mlp_tanh_l1_l2(floatX):
    n_in, n_hidden, n_out, batch_size = 12, 8, 3, 10
    learning_rate, L1_reg, L2_reg, n_epochs = 0.05, 0.001, 0.0001, 3
    train, valid = make_sets((60, 20), n_in, n_out, seed=7)
    train_set_x, train_set_y = shared_dataset(train)
    valid_set_x, valid_set_y = shared_dataset(valid)
    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size

    index = T.lscalar()
    x = T.matrix('x')
    y = T.ivector('y')
    rng = numpy.random.RandomState(1234)
    classifier = MLP(rng=rng, input=x, n_in=n_in, n_hidden=n_hidden, n_out=n_out)
    cost = (classifier.negative_log_likelihood(y) + L1_reg * classifier.L1
            + L2_reg * classifier.L2_sqr)
    validate_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: valid_set_x[index * batch_size:(index + 1) * batch_size],
                y: valid_set_y[index * batch_size:(index + 1) * batch_size]})
    gparams = [T.grad(cost, param) for param in classifier.params]
    updates = [(param, param - learning_rate * gparam)
               for param, gparam in zip(classifier.params, gparams)]
    train_model = theano.function(
        inputs=[index], outputs=cost, updates=updates,
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size],
                y: train_set_y[index * batch_size: (index + 1) * batch_size]})
    W1_0 = classifier.hiddenLayer.W.get_value()
    costs, losses, _ = early_stopping(train_model, validate_model, n_train_batches,
                                      n_valid_batches, n_epochs)

    X, Y = np.asarray(train[0], floatX), train[1]
    VX, VY = np.asarray(valid[0], floatX), valid[1]
    P = [W1_0, np.zeros(n_hidden, floatX), np.zeros((n_hidden, n_out), floatX),
         np.zeros(n_out, floatX)]

    def np_train(i):
        W1, b1, W2, b2 = P
        r = slice(i * batch_size, (i + 1) * batch_size)
        h = np.tanh(X[r] @ W1 + b1)
        nll, d = np_nll_grad(np_softmax(h @ W2 + b2), Y[r])
        c = (nll + L1_reg * (np.abs(W1).sum() + np.abs(W2).sum())
             + L2_reg * ((W1 ** 2).sum() + (W2 ** 2).sum()))
        dh = (d @ W2.T) * (1 - h ** 2)
        g = [X[r].T @ dh + L1_reg * np.sign(W1) + 2 * L2_reg * W1, dh.sum(0),
             h.T @ d + L1_reg * np.sign(W2) + 2 * L2_reg * W2, d.sum(0)]
        P[:] = [p - learning_rate * gp for p, gp in zip(P, g)]
        return c

    def np_valid(i):
        W1, b1, W2, b2 = P
        r = slice(i * batch_size, (i + 1) * batch_size)
        return np.mean(np.argmax(np.tanh(VX[r] @ W1 + b1) @ W2 + b2, axis=1) != VY[r])

    costs0, losses0, _ = early_stopping(np_train, np_valid, n_train_batches,
                                        n_valid_batches, n_epochs)
    assert rel(costs, costs0) < 10 * TOL[floatX]
    for p, p0 in zip(classifier.params, P):
        assert p.get_value().dtype == floatX
        assert rel(p.get_value(), p0) < 10 * TOL[floatX]
    np.testing.assert_array_equal(losses, losses0)
    assert costs[-1] < costs[0]


# =====================================================================================
# dA.py
# =====================================================================================

def _da_program(corruption_level, n_visible=16, n_hidden=6, batch_size=10, n_rows=40,
                training_epochs=3, learning_rate=0.1):
    (train,) = make_sets((n_rows,), n_visible, 2, seed=11)
    train_set_x, _ = shared_dataset(train)
    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    index = T.lscalar()
    x = T.matrix('x')
    rng = numpy.random.RandomState(123)
    theano_rng = RandomStreams(rng.randint(2 ** 30))
    da = dA(numpy_rng=rng, theano_rng=theano_rng, input=x, n_visible=n_visible,
            n_hidden=n_hidden)
    W0 = da.W.get_value()
    cost, updates = da.get_cost_updates(corruption_level=corruption_level,
                                        learning_rate=learning_rate)
    train_da = theano.function(
        [index], cost, updates=updates,
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size]})
    # the same draw from a twin stream (same seed, same draw number): the masks
    # the training function uses, for the NumPy reference
    twin = RandomStreams(theano_rng.default_instance_seed)
    mask_fn = theano.function(
        [index], twin.binomial(size=x.shape, n=1, p=1 - corruption_level,
                               dtype=theano.config.floatX),
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size]})
    curve, masks = [], []
    for epoch in range(training_epochs):
        c = []
        for batch_index in range(n_train_batches):
            masks.append(mask_fn(batch_index))
            c.append(train_da(batch_index))
        curve.append(numpy.mean(c, dtype='float64'))
    X = train_set_x.get_value()
    W, b, bp = W0, np.zeros(n_hidden, X.dtype), np.zeros(n_visible, X.dtype)
    curve0, k = [], 0
    for epoch in range(training_epochs):
        c = []
        for i in range(n_train_batches):
            ci, W, b, bp = np_da_step(X[i * batch_size:(i + 1) * batch_size], masks[k], W, b,
                                      bp, learning_rate)
            c.append(ci)
            k += 1
        curve0.append(np.mean(c))
    return da, curve, curve0, masks, (W, b, bp)


@pytest.mark.parametrize('floatX', ['float64', 'float32'], indirect=True)
@pytest.mark.parametrize('corruption_level', [0., 0.3])
def test_dA_tied_weights_binomial_corruption(floatX, corruption_level):
    da, curve, curve0, masks, params0 = _da_program(corruption_level)
    assert da.W_prime.ndim == 2 and [p.name for p in da.params] == ['W', 'b', None]
    for m in masks:
        assert m.dtype == floatX and set(np.unique(m)) <= {0, 1}
    zeros = np.mean([1 - m.mean() for m in masks])
    if corruption_level == 0:
        assert zeros == 0
    else:
        assert abs(zeros - corruption_level) < 0.08
        assert not all((m == masks[0]).all() for m in masks[1:])   # the stream advances
    assert rel(curve, curve0) < 10 * TOL[floatX]
    for p, p0 in zip(da.params, params0):
        assert rel(p.get_value(), p0) < 100 * TOL[floatX]
    assert curve[-1] < curve[0]


# =====================================================================================
# SdA.py: greedy layer-wise pretraining, then finetuning
# =====================================================================================

@pytest.mark.parametrize('floatX', ['float64', 'float32'], indirect=True)
def test_SdA_pretraining_and_finetuning(floatX):
    n_ins, sizes, n_outs, batch_size = 12, [8, 6], 3, 10
    pretraining_epochs, pretrain_lr, finetune_lr, training_epochs = 2, 0.1, 0.5, 10
    train, valid = make_sets((40, 20), n_ins, n_outs, seed=5)
    datasets = [shared_dataset(train), shared_dataset(valid)]
    train_set_x = datasets[0][0]
    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    numpy_rng = numpy.random.RandomState(89677)
    sda = SdA(numpy_rng=numpy_rng, n_ins=n_ins, hidden_layers_sizes=sizes, n_outs=n_outs)
    init = [p.get_value() for p in sda.params]
    assert sda.dA_layers[1].W is sda.sigmoid_layers[1].W      # shared weights
    pretraining_fns = sda.pretraining_functions(train_set_x=train_set_x,
                                                batch_size=batch_size)

    # deterministic run (corruption 0: p = 1 - 0 is symbolic) against NumPy
    curves = []
    for i in range(sda.n_layers):
        for epoch in range(pretraining_epochs):
            c = [pretraining_fns[i](index=batch_index, corruption=0., lr=pretrain_lr)
                 for batch_index in range(n_train_batches)]
            curves.append(numpy.mean(c, dtype='float64'))
    X = np.asarray(train[0], floatX)
    P = [np.array(v) for v in init]
    P.insert(2, np.zeros(n_ins, floatX))                  # the dA layers' b_prime
    P.insert(5, np.zeros(sizes[0], floatX))
    curves0 = []
    for i in range(2):
        W, b, bp = P[3 * i: 3 * i + 3]
        for epoch in range(pretraining_epochs):
            c = []
            for j in range(n_train_batches):
                xb = X[j * batch_size:(j + 1) * batch_size]
                for k in range(i):
                    xb = np_sigmoid(xb @ P[3 * k] + P[3 * k + 1])
                cj, W, b, bp = np_da_step(xb, np.ones_like(xb), W, b, bp, pretrain_lr)
                c.append(cj)
            curves0.append(np.mean(c))
        P[3 * i: 3 * i + 3] = [W, b, bp]
    assert rel(curves, curves0) < 10 * TOL[floatX]
    assert rel(sda.params[0].get_value(), P[0]) < 100 * TOL[floatX]
    assert rel(sda.dA_layers[1].b_prime.get_value(), P[5]) < 100 * TOL[floatX]

    # older copies of SdA.py write theano.Param(corruption_level, default=0.2)
    index = T.lscalar('index')
    level, rate = T.scalar('corruption'), T.scalar('lr')
    cost, updates = sda.dA_layers[0].get_cost_updates(level, rate)
    with pytest.warns(DeprecationWarning):
        args = [index, theano.Param(level, default=0.2), theano.Param(rate, default=0.1)]
    old_fn = theano.function(inputs=args, outputs=cost, updates=updates,
                             givens={sda.x: train_set_x[index * batch_size:
                                                        (index + 1) * batch_size]})
    every = sda.params + [d.b_prime for d in sda.dA_layers]
    before = [p.get_value() for p in every]
    c_old = old_fn(index=0, corruption=0., lr=0.1)
    for p, v in zip(every, before):
        p.set_value(v)
    assert c_old == pretraining_fns[0](index=0, corruption=0., lr=0.1)
    for p, v in zip(every, before):
        p.set_value(v)

    # the defaults (In(value=0.2), In(value=0.1)) corrupt: the cost differs
    c_default = pretraining_fns[0](0)
    for p, v in zip(every, before):
        p.set_value(v)
    assert c_default != pretraining_fns[0](index=0, corruption=0., lr=0.1)

    # finetuning: train_fn / valid_score through the early-stopping loop
    train_fn, validate_model = sda.build_finetune_functions(datasets=datasets,
                                                            batch_size=batch_size,
                                                            learning_rate=finetune_lr)
    assert train_fn.name == 'train'
    costs = []
    for epoch in range(training_epochs):
        for minibatch_index in range(n_train_batches):
            costs.append(float(train_fn(minibatch_index)))
        this_validation_loss = numpy.mean(validate_model())
        assert 0 <= this_validation_loss <= 1
    assert costs[-1] < costs[0]


# =====================================================================================
# cA.py: the contractive penalty in closed form, J = h * (1 - h) times W
# =====================================================================================

class cA(object):
    def __init__(self, numpy_rng, input=None, n_visible=784, n_hidden=100, n_batchsize=1,
                 W=None, bhid=None, bvis=None):
        self.n_visible = n_visible
        self.n_hidden = n_hidden
        self.n_batchsize = n_batchsize
        if not W:
            initial_W = numpy.asarray(
                numpy_rng.uniform(low=-4 * numpy.sqrt(6. / (n_hidden + n_visible)),
                                  high=4 * numpy.sqrt(6. / (n_hidden + n_visible)),
                                  size=(n_visible, n_hidden)),
                dtype=theano.config.floatX)
            W = theano.shared(value=initial_W, name='W', borrow=True)
        if not bvis:
            bvis = theano.shared(value=numpy.zeros(n_visible, dtype=theano.config.floatX),
                                 borrow=True)
        if not bhid:
            bhid = theano.shared(value=numpy.zeros(n_hidden, dtype=theano.config.floatX),
                                 name='b', borrow=True)
        self.W = W
        self.b = bhid
        self.b_prime = bvis
        self.W_prime = self.W.T
        if input is None:
            self.x = T.dmatrix(name='input')
        else:
            self.x = input
        self.params = [self.W, self.b, self.b_prime]

    def get_hidden_values(self, input):
        return T.nnet.sigmoid(T.dot(input, self.W) + self.b)

    def get_jacobian(self, hidden, W):
        return T.reshape(hidden * (1 - hidden), (self.n_batchsize, 1, self.n_hidden)) * \
            T.reshape(W, (1, self.n_visible, self.n_hidden))

    def get_reconstructed_input(self, hidden):
        return T.nnet.sigmoid(T.dot(hidden, self.W_prime) + self.b_prime)

    def get_cost_updates(self, contraction_level, learning_rate, floor_div=True):
        y = self.get_hidden_values(self.x)
        z = self.get_reconstructed_input(y)
        J = self.get_jacobian(y, self.W)
        self.L_rec = - T.sum(self.x * T.log(z) + (1 - self.x) * T.log(1 - z), axis=1)
        if floor_div:       # the tutorial's own line: a floor, whose gradient is 0
            self.L_jacob = T.sum(J ** 2) // self.n_batchsize
        else:
            self.L_jacob = T.sum(J ** 2) / self.n_batchsize
        cost = T.mean(self.L_rec) + contraction_level * T.mean(self.L_jacob)
        gparams = T.grad(cost, self.params)
        updates = [(param, param - learning_rate * gparam)
                   for param, gparam in zip(self.params, gparams)]
        return (cost, updates)


def np_ca_step(x, W, b, bp, lr, lam, floor_div):
    n = len(x)
    h = np_sigmoid(x @ W + b)
    z = np_sigmoid(h @ W.T + bp)
    L_rec = -np.sum(x * np.log(z) + (1 - x) * np.log(1 - z), axis=1)
    s = h * (1 - h)
    sumJ2 = np.sum((s[:, None, :] * W[None, :, :]) ** 2)
    L_jacob = np.floor(sumJ2 / n) if floor_div else sumJ2 / n
    dz = (z - x) / n
    dh = (dz @ W) * h * (1 - h)
    gW, gb, gbp = x.T @ dh + dz.T @ h, dh.sum(0), dz.sum(0)
    if not floor_div:   # d/dW of lam/n * sum_nj s_nj^2 * sum_i W_ij^2
        colsq = (W ** 2).sum(0)
        ds = (lam / n) * 2 * s * colsq                       # d pen / d s
        da = ds * (1 - 2 * h) * s                            # d pen / d pre-activation
        gW = gW + (lam / n) * 2 * W * (s ** 2).sum(0) + x.T @ da
        gb = gb + da.sum(0)
    return L_rec, L_jacob, W - lr * gW, b - lr * gb, bp - lr * gbp


@pytest.mark.parametrize('floatX', ['float64', 'float32'], indirect=True)
@pytest.mark.parametrize('floor_div', [True, False])
def test_cA_contractive_penalty(floatX, floor_div):
    n_visible, n_hidden, batch_size, learning_rate, contraction_level = 10, 5, 8, 0.05, 0.1
    (train,) = make_sets((32,), n_visible, 2, seed=2)
    train_set_x, _ = shared_dataset(train)
    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    index = T.lscalar()
    x = T.matrix('x')
    rng = numpy.random.RandomState(123)
    ca = cA(numpy_rng=rng, input=x, n_visible=n_visible, n_hidden=n_hidden,
            n_batchsize=batch_size)
    W0 = ca.W.get_value()
    cost, updates = ca.get_cost_updates(contraction_level=contraction_level,
                                        learning_rate=learning_rate, floor_div=floor_div)
    train_ca = theano.function(
        [index], [T.mean(ca.L_rec), ca.L_jacob], updates=updates,
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size]})
    c = []
    for epoch in range(2):
        for batch_index in range(n_train_batches):
            c.append(train_ca(batch_index))
    c_array = numpy.vstack(c)
    assert c_array.shape == (2 * n_train_batches, 2)
    X = train_set_x.get_value()
    W, b, bp = W0, np.zeros(n_hidden, floatX), np.zeros(n_visible, floatX)
    c0 = []
    for epoch in range(2):
        for i in range(n_train_batches):
            L_rec, L_jacob, W, b, bp = np_ca_step(X[i * batch_size:(i + 1) * batch_size], W,
                                                  b, bp, learning_rate, contraction_level,
                                                  floor_div)
            c0.append([np.mean(L_rec), L_jacob])
    c0 = np.array(c0)
    assert rel(c_array[:, 0], c0[:, 0]) < 10 * TOL[floatX]
    if floor_div:
        assert (c_array[:, 1] == np.floor(c_array[:, 1])).all()
        np.testing.assert_allclose(c_array[:, 1], c0[:, 1], atol=1.0)   # a floor may tip
    else:
        assert rel(c_array[:, 1], c0[:, 1]) < 10 * TOL[floatX]
    assert rel(ca.W.get_value(), W) < 100 * TOL[floatX]
    assert rel(ca.b.get_value(), b) < 100 * TOL[floatX]


# =====================================================================================
# Theano's tutorial documentation: the answers it prints
# =====================================================================================

def test_doc_baby_steps_algebra():
    x = T.dscalar('x')
    y = T.dscalar('y')
    z = x + y
    f = function([x, y], z)
    assert f(2, 3) == 5.0 and isinstance(f(2, 3), numpy.ndarray) and f(2, 3).dtype == 'float64'
    assert numpy.allclose(f(16.3, 12.1), 28.4)
    assert numpy.allclose(z.eval({x: 16.3, y: 12.1}), 28.4)
    assert x.type == T.dscalar('other').type and x.type.dtype == 'float64' and x.ndim == 0
    assert pp(z) == 'x + y'                       # Theano: '(x + y)'
    x = T.dmatrix('x')
    y = T.dmatrix('y')
    z = x + y
    f = function([x, y], z)
    np.testing.assert_array_equal(f([[1, 2], [3, 4]], [[10, 20], [30, 40]]),
                                  [[11., 22.], [33., 44.]])
    np.testing.assert_array_equal(f(numpy.array([[1, 2], [3, 4]]),
                                    numpy.array([[10, 20], [30, 40]])), [[11., 22.], [33., 44.]])
    a = theano.tensor.vector()
    out = a + a ** 10
    f = theano.function([a], out)
    np.testing.assert_array_equal(f([0, 1, 2]), [0., 2., 1026.])


def test_doc_more_examples_logistic_and_multiple_outputs():
    x = T.dmatrix('x')
    s = 1 / (1 + T.exp(-x))
    logistic = theano.function([x], s)
    want = [[0.5, 0.73105858], [0.26894142, 0.11920292]]
    np.testing.assert_allclose(logistic([[0, 1], [-1, -2]]), want, atol=5e-9)  # printed digits
    s2 = (1 + T.tanh(x / 2)) / 2
    logistic2 = theano.function([x], s2)
    np.testing.assert_allclose(logistic2([[0, 1], [-1, -2]]), want, atol=5e-9)
    a, b = T.dmatrices('a', 'b')
    diff = a - b
    abs_diff = abs(diff)
    diff_squared = diff ** 2
    f = theano.function([a, b], [diff, abs_diff, diff_squared])
    got = f([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    assert isinstance(got, list) and len(got) == 3
    for g, w in zip(got, ([[1., 0.], [-1., -2.]], [[1., 0.], [1., 2.]], [[1., 0.], [1., 4.]])):
        np.testing.assert_array_equal(g, w)


def test_doc_default_values_and_names():
    x, y = T.dscalars('x', 'y')
    z = x + y
    f = function([x, In(y, value=1)], z)
    assert f(33) == 34.0 and f(33, 2) == 35.0
    x, y, w = T.dscalars('x', 'y', 'w')
    z = (x + y) * w
    f = function([x, In(y, value=1), In(w, value=2, name='w_by_name')], z)
    assert (f(33), f(33, 2), f(33, 0, 1)) == (68.0, 70.0, 33.0)
    assert f(33, w_by_name=1) == 34.0 and f(33, w_by_name=1, y=0) == 33.0


def test_doc_shared_accumulator_givens_copy():
    state = shared(0)
    inc = T.iscalar('inc')
    accumulator = function([inc], state, updates=[(state, state + inc)])
    assert state.get_value() == 0
    assert accumulator(1) == 0 and state.get_value() == 1
    assert accumulator(300) == 1 and state.get_value() == 301
    state.set_value(-1)
    assert accumulator(3) == -1 and state.get_value() == 2
    decrementor = function([inc], state, updates=[(state, state - inc)])
    assert decrementor(2) == 2 and state.get_value() == 0
    fn_of_state = state * 2 + inc
    foo = T.scalar(dtype=state.dtype)
    skip_shared = function([inc, foo], fn_of_state, givens=[(state, foo)])
    assert skip_shared(1, 3) == 7 and state.get_value() == 0
    accumulator(10)
    assert state.get_value() == 10
    new_state = theano.shared(0)
    new_accumulator = accumulator.copy(swap={state: new_state})
    assert new_accumulator(100) == 0                          # Theano: [array(0)]
    assert new_state.get_value() == 100 and state.get_value() == 10
    null_accumulator = accumulator.copy(delete_updates=True)
    assert null_accumulator(9000) == 10 and state.get_value() == 10


def test_doc_random_numbers():
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = function([], rv_u)
    g = function([], rv_n, no_default_updates=True)
    nearly_zeros = function([], rv_u + rv_u - 2 * rv_u)
    f_val0, f_val1 = f(), f()
    assert f_val0.shape == (2, 2) and (f_val0 != f_val1).all()
    assert ((0 <= f_val0) & (f_val0 < 1)).all()
    g_val0, g_val1 = g(), g()
    np.testing.assert_array_equal(g_val0, g_val1)              # no_default_updates
    np.testing.assert_allclose(nearly_zeros(), np.zeros((2, 2)), atol=1e-15)
    # seeding streams: srng.seed reseeds every draw; the same seed replays
    srng.seed(902340)
    v1 = f()
    srng.seed(902340)
    np.testing.assert_array_equal(f(), v1)
    # copying random state: a state's value, saved and put back, replays the draw
    # (Theano's rv_u.rng holds a RandomState; kgen's the int64 state [key, ctr])
    assert rv_u.rng is srng.state_updates[0][0] and rv_n.rng is srng.state_updates[1][0]
    saved = rv_u.rng.get_value(borrow=True).copy()
    v2 = f()
    rv_u.rng.set_value(saved, borrow=True)
    np.testing.assert_array_equal(f(), v2)
    assert not hasattr(rv_u + 1, 'rng')
    # the logistic-regression example's binomial/tensor-p idiom
    from kgen.sandbox.rng_mrg import MRG_RandomStreams
    mrg = MRG_RandomStreams(seed=234)
    p = T.dvector('p')
    draw = function([p], mrg.binomial(size=p.shape, n=1, p=p, dtype=theano.config.floatX))
    d = draw(np.array([0., 1., 0., 1.]))
    np.testing.assert_array_equal(d, [0., 1., 0., 1.])


@pytest.mark.parametrize('floatX', ['float64'], indirect=True)
def test_doc_real_example_logistic_regression(floatX):
    rng = numpy.random.RandomState(0)
    N, feats, training_steps = 40, 7, 200
    D = (rng.randn(N, feats), rng.randint(size=N, low=0, high=2))
    x = T.dmatrix("x")
    y = T.dvector("y")
    w = theano.shared(rng.randn(feats), name="w")
    b = theano.shared(0., name="b")
    w0 = w.get_value()
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = theano.function(inputs=[x, y], outputs=[prediction, xent],
                            updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)))
    predict = theano.function(inputs=[x], outputs=prediction)
    for i in range(training_steps):
        pred, err = train(D[0], D[1])            # int64 labels into a dvector: accepted
    W, B, yv = w0, 0.0, D[1].astype(float)
    for i in range(training_steps):
        p = np_sigmoid(D[0] @ W + B)
        W, B = W - 0.1 * (D[0].T @ (p - yv) / N + 0.02 * W), B - 0.1 * np.mean(p - yv)
    assert rel(w.get_value(), W) < 1e-9 and abs(float(b.get_value()) - B) < 1e-9
    np.testing.assert_array_equal(predict(D[0]), np_sigmoid(D[0] @ W + B) > 0.5)
    assert np.mean(predict(D[0]) == D[1]) > 0.6      # random labels, 200 steps


@pytest.mark.parametrize('floatX', ['float32'], indirect=True)
def test_doc_configuration_example_float32_test_values(floatX):
    """The configuration tutorial's program: floatX data, x.tag.test_value, name=."""
    rng = numpy.random.RandomState(22)
    N, feats, training_steps = 40, 6, 100
    D = (rng.randn(N, feats).astype(theano.config.floatX),
         rng.randint(size=N, low=0, high=2).astype(theano.config.floatX))
    x = T.matrix("x")
    y = T.vector("y")
    w = theano.shared(rng.randn(feats).astype(theano.config.floatX), name="w")
    b = theano.shared(numpy.asarray(0., dtype=theano.config.floatX), name="b")
    x.tag.test_value = D[0]
    y.tag.test_value = D[1]
    w0 = w.get_value()
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = theano.function(inputs=[x, y], outputs=[prediction, xent],
                            updates=[(w, w - 0.01 * gw), (b, b - 0.01 * gb)], name="train")
    predict = theano.function(inputs=[x], outputs=prediction, name="predict")
    assert train.name == "train" and x.tag.test_value is D[0]
    for i in range(training_steps):
        pred, err = train(D[0], D[1])
    assert err.dtype == np.float32 and w.get_value().dtype == np.float32
    W, B, X, Y = w0.astype(np.float64), 0.0, D[0].astype(np.float64), D[1].astype(np.float64)
    for i in range(training_steps):
        p = np_sigmoid(X @ W + B)
        W, B = W - 0.01 * (X.T @ (p - Y) / N + 0.02 * W), B - 0.01 * np.mean(p - Y)
    assert rel(w.get_value(), W) < 1e-4 and abs(float(b.get_value()) - B) < 1e-5
    assert np.mean(predict(D[0]) == (np_sigmoid(X @ W + B) > 0.5)) >= 0.95


def test_doc_conditions_switch_and_lazy_ifelse():
    """The conditions tutorial: T.switch and ifelse agree (ifelse computes only
    the branch taken: tests/test_ifelse.py); the values and gradients are Theano's."""
    from kgen.ifelse import ifelse
    a, b = T.scalars('a', 'b')
    x, y = T.matrices('x', 'y')
    z_switch = T.switch(T.lt(a, b), T.mean(x), T.mean(y))
    z_lazy = ifelse(T.lt(a, b), T.mean(x), T.mean(y))
    f_switch = theano.function([a, b, x, y], z_switch, mode=theano.Mode(linker='vm'))
    f_lazyifelse = theano.function([a, b, x, y], z_lazy, mode=theano.Mode(linker='vm'))
    val1, val2 = 0., 1.
    big_mat1, big_mat2 = numpy.ones((10, 10)), numpy.zeros((10, 10))
    assert f_switch(val1, val2, big_mat1, big_mat2) == 1.0
    assert f_lazyifelse(val1, val2, big_mat1, big_mat2) == 1.0
    assert f_lazyifelse(val2, val1, big_mat1, big_mat2) == 0.0
    g = T.grad(ifelse(T.lt(a, b), (x ** 2).sum(), (y * 3).sum()), [x, y])
    gx, gy = theano.function([a, b, x, y], g)(0., 1., np.ones((1, 2)), np.ones((1, 2)))
    np.testing.assert_array_equal(gx, [[2., 2.]])
    np.testing.assert_array_equal(gy, [[0., 0.]])
    p, q = ifelse(T.gt(a, 0), [x, a], [y, b])
    out = theano.function([a, b, x, y], [p, q])(-1., 5., np.ones((2, 2)), np.zeros((2, 2)))
    np.testing.assert_array_equal(out[0], np.zeros((2, 2)))
    assert out[1] == 5.
    with pytest.raises(TypeError):
        ifelse(T.lt(a, b), x, T.vector('v'))                        # two types
    with pytest.raises(TypeError):
        ifelse(x, a, b)                                             # not a scalar condition
    with pytest.raises(TypeError):
        ifelse(T.lt(a, b), T.tensor(dtype='float64', shape=(2,)),
               T.tensor(dtype='float64', shape=(3,)))               # two static shapes


def test_doc_loading_and_saving(tmp_path):
    """Pickling objects that hold shared variables, and compiled functions: one
    pickle keeps the function and its shared variable together."""
    x = T.dvector('x')
    W = theano.shared(numpy.zeros(2), name='W')
    f = theano.function([x], (W * x).sum(), updates=[(W, W + x)])
    with open(tmp_path / 'obj.save', 'wb') as fh:
        pickle.dump((f, W), fh, protocol=pickle.HIGHEST_PROTOCOL)
    with open(tmp_path / 'obj.save', 'rb') as fh:
        f2, W2 = pickle.load(fh)
    assert f2([1., 2.]) == 0.0 and W2.get_value().tolist() == [1., 2.]
    assert f2([1., 2.]) == 5.0 and W2.get_value().tolist() == [2., 4.]
    assert W.get_value().tolist() == [0., 0.]                 # the original is apart


def test_doc_derivatives():
    x = T.dscalar('x')
    y = x ** 2
    gy = T.grad(y, x)
    f = theano.function([x], gy)
    assert f(4) == 8.0 and numpy.allclose(f(94.2), 188.4)
    # Theano's optimized graph prints (TensorConstant{2.0} * x)
    assert pp(theano.simplify(gy)) == '2.0 * x'
    x = T.dmatrix('x')
    s = T.sum(1 / (1 + T.exp(-x)))
    gs = T.grad(s, x)
    dlogistic = theano.function([x], gs)
    np.testing.assert_allclose(dlogistic([[0, 1], [-1, -2]]),
                               [[0.25, 0.19661193], [0.19661193, 0.10499359]], atol=5e-9)
    # Jacobian and Hessian (Theano builds them with scan; kgen unrolls a static size)
    x = T.tensor(dtype='float64', shape=(2,))
    J = theano.gradient.jacobian(x ** 2, x)
    np.testing.assert_array_equal(theano.function([x], J)([4, 4]), [[8., 0.], [0., 8.]])
    H = theano.gradient.hessian(T.sum(x ** 2), x)
    np.testing.assert_array_equal(theano.function([x], H)([4, 4]), [[2., 0.], [0., 2.]])
    # R-operator, L-operator, Hessian times a vector
    W = T.dmatrix('W')
    V = T.dmatrix('V')
    x = T.dvector('x')
    y = T.dot(x, W)
    JV = T.Rop(y, W, V)
    f = theano.function([W, V, x], JV)
    np.testing.assert_array_equal(f([[1, 1], [1, 1]], [[2, 2], [2, 2]], [0, 1]), [2., 2.])
    v = T.dvector('v')
    VJ = T.Lop(y, W, v)
    f = theano.function([v, x], VJ)
    np.testing.assert_array_equal(f([2, 2], [0, 1]), [[0., 0.], [2., 2.]])
    x = T.dvector('x')
    y = T.sum(x ** 2)
    gy = T.grad(y, x)
    vH = T.grad(T.sum(gy * v), x)
    np.testing.assert_array_equal(theano.function([x, v], vH)([4, 4], [2, 2]), [4., 4.])
    Hv = T.Rop(gy, x, v)
    np.testing.assert_array_equal(theano.function([x, v], Hv)([4, 4], [2, 2]), [4., 4.])


# =====================================================================================
# logistic_cg.py: parameters as views of one flat shared vector, scipy's fmin_cg
# =====================================================================================

class LogisticRegressionTheta(object):
    def __init__(self, input, n_in, n_out):
        self.theta = theano.shared(value=numpy.zeros(n_in * n_out + n_out,
                                                     dtype=theano.config.floatX),
                                   name='theta', borrow=True)
        self.W = self.theta[0:n_in * n_out].reshape((n_in, n_out))
        self.b = self.theta[n_in * n_out:n_in * n_out + n_out]
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)

    def negative_log_likelihood(self, y):
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        return T.mean(T.neq(self.y_pred, y))


@pytest.mark.parametrize('floatX', ['float64'], indirect=True)
def test_logistic_cg_flat_theta_fmin_cg(floatX):
    import scipy.optimize as scipy_optimize  # in the test extra: logistic_cg.py drives fmin_cg
    n_in, n_out, batch_size, n_epochs = 10, 3, 10, 6
    train, valid = make_sets((40, 20), n_in, n_out, seed=4)
    train_set_x, train_set_y = shared_dataset(train)
    valid_set_x, valid_set_y = shared_dataset(valid)
    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size
    minibatch_offset = T.lscalar()
    x = T.matrix()
    y = T.ivector()
    classifier = LogisticRegressionTheta(input=x, n_in=n_in, n_out=n_out)
    cost = classifier.negative_log_likelihood(y).mean()
    validate_model = theano.function(
        [minibatch_offset], classifier.errors(y),
        givens={x: valid_set_x[minibatch_offset:minibatch_offset + batch_size],
                y: valid_set_y[minibatch_offset:minibatch_offset + batch_size]},
        name="validate")
    batch_cost = theano.function(
        [minibatch_offset], cost,
        givens={x: train_set_x[minibatch_offset:minibatch_offset + batch_size],
                y: train_set_y[minibatch_offset:minibatch_offset + batch_size]},
        name="batch_cost")
    batch_grad = theano.function(
        [minibatch_offset], T.grad(cost, classifier.theta),
        givens={x: train_set_x[minibatch_offset:minibatch_offset + batch_size],
                y: train_set_y[minibatch_offset:minibatch_offset + batch_size]},
        name="batch_grad")

    def train_fn(theta_value):
        classifier.theta.set_value(theta_value, borrow=True)
        train_losses = [batch_cost(i * batch_size) for i in range(n_train_batches)]
        return numpy.mean(train_losses)

    def train_fn_grad(theta_value):
        classifier.theta.set_value(theta_value, borrow=True)
        grad = batch_grad(0)
        for i in range(1, n_train_batches):
            grad += batch_grad(i * batch_size)
        return grad / n_train_batches

    losses = []

    def callback(theta_value):
        classifier.theta.set_value(theta_value, borrow=True)
        losses.append(numpy.mean([validate_model(i * batch_size)
                                  for i in range(n_valid_batches)]))

    best = scipy_optimize.fmin_cg(f=train_fn, x0=numpy.zeros((n_in + 1) * n_out,
                                                             dtype=x.dtype),
                                  fprime=train_fn_grad, callback=callback, disp=0,
                                  maxiter=n_epochs)
    X, Y = train[0], train[1]

    def np_cost_grad(theta):
        W, b = theta[:n_in * n_out].reshape(n_in, n_out), theta[n_in * n_out:]
        cs, gs = [], []
        for i in range(n_train_batches):
            r = slice(i * batch_size, (i + 1) * batch_size)
            c, d = np_nll_grad(np_softmax(X[r] @ W + b), Y[r])
            cs.append(c)
            gs.append(np.concatenate([(X[r].T @ d).ravel(), d.sum(0)]))
        return np.mean(cs), np.mean(gs, axis=0)

    best0 = scipy_optimize.fmin_cg(f=lambda t: np_cost_grad(t)[0], x0=np.zeros((n_in + 1) * n_out),
                                   fprime=lambda t: np_cost_grad(t)[1], disp=0,
                                   maxiter=n_epochs)
    np.testing.assert_allclose(best, best0, rtol=1e-6, atol=1e-9)
    assert len(losses) == n_epochs and train_fn(best) < train_fn(np.zeros_like(best))


# =====================================================================================
# rbm.py's CD-1 step, without scan (one Gibbs step written out): consider_constant,
# binomial draws with tensor p, OrderedDict updates, a 0-d int shared index in
# set_subtensor, the pseudo-likelihood monitoring cost, a persistent chain
# =====================================================================================

from collections import OrderedDict  # noqa: E402


class RBM(object):
    def __init__(self, input, n_visible, n_hidden, numpy_rng, theano_rng):
        initial_W = numpy.asarray(
            numpy_rng.uniform(low=-4 * numpy.sqrt(6. / (n_hidden + n_visible)),
                              high=4 * numpy.sqrt(6. / (n_hidden + n_visible)),
                              size=(n_visible, n_hidden)), dtype=theano.config.floatX)
        self.W = theano.shared(value=initial_W, name='W', borrow=True)
        self.hbias = theano.shared(value=numpy.zeros(n_hidden, dtype=theano.config.floatX),
                                   name='hbias', borrow=True)
        self.vbias = theano.shared(value=numpy.zeros(n_visible, dtype=theano.config.floatX),
                                   name='vbias', borrow=True)
        self.input = input
        self.n_visible = n_visible
        self.theano_rng = theano_rng
        self.params = [self.W, self.hbias, self.vbias]

    def free_energy(self, v_sample):
        wx_b = T.dot(v_sample, self.W) + self.hbias
        vbias_term = T.dot(v_sample, self.vbias)
        hidden_term = T.sum(T.log(1 + T.exp(wx_b)), axis=1)
        return -hidden_term - vbias_term

    def sample_h_given_v(self, v0_sample):
        pre_sigmoid_h1 = T.dot(v0_sample, self.W) + self.hbias
        h1_mean = T.nnet.sigmoid(pre_sigmoid_h1)
        h1_sample = self.theano_rng.binomial(size=h1_mean.shape, n=1, p=h1_mean,
                                             dtype=theano.config.floatX)
        return [pre_sigmoid_h1, h1_mean, h1_sample]

    def sample_v_given_h(self, h0_sample):
        pre_sigmoid_v1 = T.dot(h0_sample, self.W.T) + self.vbias
        v1_mean = T.nnet.sigmoid(pre_sigmoid_v1)
        v1_sample = self.theano_rng.binomial(size=v1_mean.shape, n=1, p=v1_mean,
                                             dtype=theano.config.floatX)
        return [pre_sigmoid_v1, v1_mean, v1_sample]

    def get_cost_updates(self, lr=0.1):
        pre_ph, ph_mean, ph_sample = self.sample_h_given_v(self.input)
        pre_nv, nv_mean, nv_sample = self.sample_v_given_h(ph_sample)
        chain_end = nv_sample
        cost = T.mean(self.free_energy(self.input)) - T.mean(self.free_energy(chain_end))
        gparams = T.grad(cost, self.params, consider_constant=[chain_end])
        updates = OrderedDict()
        for gparam, param in zip(gparams, self.params):
            updates[param] = param - gparam * T.cast(lr, dtype=theano.config.floatX)
        monitoring_cost = self.get_pseudo_likelihood_cost(updates)
        return monitoring_cost, updates, chain_end

    def get_pseudo_likelihood_cost(self, updates):
        bit_i_idx = theano.shared(value=0, name='bit_i_idx')
        xi = T.round(self.input)
        fe_xi = self.free_energy(xi)
        xi_flip = T.set_subtensor(xi[:, bit_i_idx], 1 - xi[:, bit_i_idx])
        fe_xi_flip = self.free_energy(xi_flip)
        cost = T.mean(self.n_visible * T.log(T.nnet.sigmoid(fe_xi_flip - fe_xi)))
        updates[bit_i_idx] = (bit_i_idx + 1) % self.n_visible
        self.bit_i_idx = bit_i_idx
        return cost


def np_free_energy(v, W, hb, vb):
    return -np.sum(np.log(1 + np.exp(v @ W + hb)), axis=1) - v @ vb


@pytest.mark.parametrize('floatX', ['float64', 'float32'], indirect=True)
def test_rbm_cd1_without_scan(floatX):
    n_visible, n_hidden, batch_size, lr = 8, 5, 10, 0.1
    rng = numpy.random.RandomState(123)
    seed = rng.randint(2 ** 30)
    data = np.asarray(np.random.default_rng(0).random((40, n_visible)) > 0.6, floatX)
    train_set_x = theano.shared(data, borrow=True)
    n_train_batches = 40 // batch_size
    index = T.lscalar()
    x = T.matrix('x')
    rbm = RBM(input=x, n_visible=n_visible, n_hidden=n_hidden, numpy_rng=rng,
              theano_rng=RandomStreams(seed))
    cost, updates, chain_end = rbm.get_cost_updates(lr=lr)
    train_rbm = theano.function([index], cost, updates=updates,
                                givens={x: train_set_x[index * batch_size:
                                                       (index + 1) * batch_size]},
                                name='train_rbm')
    # the chain's draws, from a twin stream (same seed, same draw numbers, same p)
    twin = RBM(input=x, n_visible=n_visible, n_hidden=n_hidden,
               numpy_rng=numpy.random.RandomState(0), theano_rng=RandomStreams(seed))
    twin.W, twin.hbias, twin.vbias = rbm.W, rbm.hbias, rbm.vbias
    _, _, h_s = twin.sample_h_given_v(x)
    _, _, v_s = twin.sample_v_given_h(h_s)
    chain = theano.function([index], v_s,
                            givens={x: train_set_x[index * batch_size: (index + 1) * batch_size]})
    W, hb, vb = (p.get_value() for p in rbm.params)
    sig = np_sigmoid
    for epoch in range(2):
        for i in range(n_train_batches):
            xb = data[i * batch_size:(i + 1) * batch_size]
            v = chain(i)
            bit = rbm.bit_i_idx.get_value()
            c = train_rbm(i)
            flip = xb.copy()
            flip[:, bit] = 1 - flip[:, bit]
            c0 = np.mean(n_visible * np.log(sig(np_free_energy(flip, W, hb, vb)
                                                - np_free_energy(xb, W, hb, vb))))
            assert rel(c, c0) < 10 * TOL[floatX]
            n = len(xb)
            gW = -(xb.T @ sig(xb @ W + hb)) / n + (v.T @ sig(v @ W + hb)) / n
            ghb = -sig(xb @ W + hb).mean(0) + sig(v @ W + hb).mean(0)
            gvb = -xb.mean(0) + v.mean(0)
            W, hb, vb = W - lr * gW, hb - lr * ghb, vb - lr * gvb
            assert rbm.bit_i_idx.get_value() == (bit + 1) % n_visible
    for p, p0 in zip(rbm.params, (W, hb, vb)):
        assert p.get_value().dtype == floatX and rel(p.get_value(), p0) < 100 * TOL[floatX]
    # a persistent chain (PCD): a shared state updated with the chain's end
    persistent_chain = theano.shared(numpy.zeros((batch_size, n_hidden), dtype=floatX),
                                     borrow=True)
    _, _, nv_sample = rbm.sample_v_given_h(persistent_chain)
    _, _, nh_sample = rbm.sample_h_given_v(nv_sample)
    step = theano.function([], nh_sample.sum(), updates=[(persistent_chain, nh_sample)])
    for _ in range(3):
        total = step()
        assert total == persistent_chain.get_value().sum()


# =====================================================================================
# gaps the programs found, fixed: regression tests
# =====================================================================================

def test_out_wrapper_and_gradient_module():
    """theano.Out(expr, borrow=True) as an output (also theano.compile.io.Out);
    theano.gradient.grad/jacobian/hessian."""
    import kgen.compile.io
    x = T.dvector('x')
    f = theano.function([x], theano.Out(T.exp(x), borrow=True))
    np.testing.assert_allclose(f([0., 1.]), np.exp([0., 1.]), rtol=1e-15)
    g = theano.function([x], [kgen.compile.io.Out(x * 2), x + 1])
    out = g([1., 2.])
    np.testing.assert_array_equal(out[0], [2., 4.])
    np.testing.assert_array_equal(g.copy()([1., 2.])[1], [2., 3.])
    with pytest.raises(TypeError):
        theano.Out(3.0)
    assert theano.gradient.grad is theano.grad and theano.gradient.Rop is T.Rop


def test_tensor_variable_classes():
    x = T.dmatrix('x')
    W = theano.shared(np.zeros((2, 2)))
    assert isinstance(x, T.TensorVariable) and isinstance(x * 2, T.TensorVariable)
    assert isinstance(W, T.TensorSharedVariable) and isinstance(W, T.TensorVariable)
    assert isinstance(T.constant(1.0), T.TensorConstant) and not isinstance(x, T.TensorConstant)


def test_everyday_aliases():
    """as_tensor_variable, shape_padleft/right, addbroadcast, patternbroadcast,
    unbroadcast, mod, and_, or_, invert, sgn, inv; nnet.elu, selu, logsoftmax."""
    x = T.dmatrix('x')
    v = T.dvector('v')
    i = T.lvector('i')
    a, b, k = np.array([[-1., 2.], [3., -4.]]), np.array([1., 2.]), np.array([-7, 5])
    outs = [T.mod(i, 3), T.and_(i, 6), T.or_(i, 1), T.invert(i), T.sgn(x), T.inv(x),
            T.shape_padleft(v), T.shape_padright(v, 2), T.addbroadcast(T.shape_padleft(v), 0) + x,
            T.patternbroadcast(x, (False, False)), T.unbroadcast(x, 0), T.nnet.elu(x),
            T.nnet.selu(x), T.nnet.logsoftmax(x), T.as_tensor_variable(np.ones(2), ndim=1) + v]
    got = theano.function([x, v, i], outs)(a, b, k)
    want = [k % 3, k & 6, k | 1, ~k, np.sign(a), 1 / a, b[None], b[:, None, None], b[None] + a,
            a, a, np.where(a > 0, a, np.expm1(a)),
            1.0507009873554805 * np.where(a > 0, a, 1.6732632423543772 * np.expm1(a)),
            a - a.max(1, keepdims=True) - np.log(np.exp(a - a.max(1, keepdims=True)).sum(1,
                                                                                 keepdims=True)),
            b + 1]
    for g, w in zip(got, want):
        assert g.shape == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-14, atol=1e-15)
    assert T.shape_padleft(v).broadcastable == (True, False)
    assert T.addbroadcast(T.dmatrix(), 0).broadcastable == (True, False)
    with pytest.raises(TypeError):
        T.as_tensor_variable(np.ones(2), ndim=2)


def test_tag_norm_hard_sigmoid_set_value_list():
    """x.tag.test_value; x.norm(L, axis); T.nnet.hard_sigmoid; set_value of a
    list of Python numbers into a float32 shared variable (weak, as in a call)."""
    x = T.dmatrix('x')
    x.tag.test_value = np.ones((2, 2))
    assert x.tag.test_value.shape == (2, 2) and not hasattr(T.dmatrix('y').tag, 'test_value')
    a = np.array([[3., -4.], [1., 2.]])
    f = theano.function([x], [x.norm(1), x.norm(2, axis=1), x.norm(3, axis=0),
                              T.nnet.hard_sigmoid(x),
                              T.grad(T.nnet.hard_sigmoid(x).sum(), x)])
    n1, n2, n3, hs, ghs = f(a)
    assert n1 == 10.0
    np.testing.assert_allclose(n2, np.sqrt((a ** 2).sum(1)), rtol=1e-15)
    np.testing.assert_allclose(n3, (np.abs(a) ** 3).sum(0) ** (1 / 3), rtol=1e-14)
    np.testing.assert_allclose(hs, np.clip(0.2 * a + 0.5, 0, 1), rtol=1e-15)
    np.testing.assert_array_equal(ghs, [[0., 0.], [0.2, 0.2]])
    s = theano.shared(np.zeros(3, 'float32'))
    s.set_value([1, 2, 3])
    assert s.get_value().dtype == np.float32 and s.get_value().tolist() == [1, 2, 3]
    with pytest.raises(TypeError):
        s.set_value(np.ones(3))            # float64 data: not a safe cast, as in Theano
    with pytest.raises(TypeError):
        s.set_value([[1, 2, 3]])           # wrong ndim
    i = theano.shared(np.zeros(2, 'int32'))
    with pytest.raises(TypeError):
        i.set_value([0.5, 1])


def test_example_theano_tutorial_mlp_cost_falls():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'examples'))
    import theano_tutorial_mlp
    costs, validation = theano_tutorial_mlp.train_mlp(n_train=200, n_valid=60, n_epochs=4,
                                                      verbose=False)
    assert len(costs) == 4 and all(b < a for a, b in zip(costs, costs[1:]))
    assert len(validation) == 4 and all(0 <= v <= 1 for v in validation)
