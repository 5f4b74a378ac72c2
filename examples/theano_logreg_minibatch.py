"""Minibatch logistic regression, written as the Theano tutorial writes it
(deeplearning.net's logistic_sgd.py), with kgen in Theano's place.

The data sets live in shared variables; one compiled function per role takes
a minibatch *index*, and `givens` swaps the symbolic x and y for a slice of
the shared data: `train_set_x[index * batch_size:(index + 1) * batch_size]`.
The slice bounds are values of the lscalar `index`, read by the kernel's
shape phase, so no minibatch is ever copied in NumPy. The MNIST data is
replaced by synthetic data of the same kind (see make_data).

    python examples/theano_logreg_minibatch.py
"""
import numpy as np

import kgen as theano
import kgen.tensor as T


class LogisticRegression:
    """Multi-class logistic regression: softmax(x W + b)."""

    def __init__(self, input, n_in, n_out):
        floatX = theano.config.floatX
        self.W = theano.shared(value=np.zeros((n_in, n_out), dtype=floatX), name="W",
                               borrow=True)
        self.b = theano.shared(value=np.zeros((n_out,), dtype=floatX), name="b", borrow=True)
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]
        self.input = input

    def negative_log_likelihood(self, y):
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        if y.ndim != self.y_pred.ndim:
            raise TypeError("y should have the same shape as self.y_pred")
        return T.mean(T.neq(self.y_pred, y))


def shared_dataset(data_xy, borrow=True):
    """The tutorial's helper: the data in shared variables (floatX), the labels
    used as int32."""
    data_x, data_y = data_xy
    shared_x = theano.shared(np.asarray(data_x, dtype=theano.config.floatX), borrow=borrow)
    shared_y = theano.shared(np.asarray(data_y, dtype=theano.config.floatX), borrow=borrow)
    return shared_x, T.cast(shared_y, "int32")


def make_data(n_train, n_valid, n_in, n_out, seed):
    """Synthetic, learnable data shaped like MNIST's: pixels in [0, 1), mostly
    zero, labels from one random linear model plus noise (train and valid)."""
    rng = np.random.default_rng(seed)
    w_true = rng.standard_normal((n_in, n_out))
    sets = []
    for n in (n_train, n_valid):
        x = rng.random((n, n_in)) * (rng.random((n, n_in)) < 0.2)
        y = np.argmax(x @ w_true + 0.5 * rng.standard_normal((n, n_out)), axis=1)
        sets.append((x, y))
    return sets


def sgd_optimization(n_train=3000, n_valid=600, n_in=28 * 28, n_out=10, batch_size=60,
                     n_epochs=10, learning_rate=0.13, seed=1234, verbose=True):
    """Train; returns (W, b, per-minibatch training costs, validation error per epoch)."""
    train_set, valid_set = make_data(n_train, n_valid, n_in, n_out, seed)
    train_set_x, train_set_y = shared_dataset(train_set)
    valid_set_x, valid_set_y = shared_dataset(valid_set)
    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size

    index = T.lscalar()  # index to a [mini]batch
    x = T.matrix("x")    # the data, one rasterized image per row
    y = T.ivector("y")   # the labels, a 1-d vector of int
    classifier = LogisticRegression(input=x, n_in=n_in, n_out=n_out)
    cost = classifier.negative_log_likelihood(y)

    validate_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: valid_set_x[index * batch_size:(index + 1) * batch_size],
                y: valid_set_y[index * batch_size:(index + 1) * batch_size]})
    g_W = T.grad(cost=cost, wrt=classifier.W)
    g_b = T.grad(cost=cost, wrt=classifier.b)
    updates = [(classifier.W, classifier.W - learning_rate * g_W),
               (classifier.b, classifier.b - learning_rate * g_b)]
    train_model = theano.function(
        inputs=[index], outputs=cost, updates=updates,
        givens={x: train_set_x[index * batch_size:(index + 1) * batch_size],
                y: train_set_y[index * batch_size:(index + 1) * batch_size]})

    costs, valid_errors = [], []
    for epoch in range(n_epochs):
        for minibatch_index in range(n_train_batches):
            costs.append(float(train_model(minibatch_index)))
        error = np.mean([validate_model(i) for i in range(n_valid_batches)])
        valid_errors.append(float(error))
        if verbose:
            print(f"epoch {epoch + 1}, last minibatch cost {costs[-1]:.6f}, "
                  f"validation error {error * 100:.2f} %")
    return classifier.W.get_value(), classifier.b.get_value(), costs, valid_errors


if __name__ == "__main__":
    sgd_optimization()
