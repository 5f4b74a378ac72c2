"""A multilayer perceptron trained the way the Theano tutorial's mlp.py trains
one, with kgen in Theano's place (only the imports differ): a tanh hidden
layer and a softmax layer in classes holding shared parameters, L1 and L2
penalties, minibatches chosen by an index through `givens`, and the
early-stopping loop on a validation set. MNIST is replaced by small synthetic
data of the same kind, so the script runs in seconds and prints a falling cost.

    python examples/theano_tutorial_mlp.py
"""
import numpy

import kgen as theano
import kgen.tensor as T


class HiddenLayer(object):
    def __init__(self, rng, input, n_in, n_out, activation=T.tanh):
        bound = numpy.sqrt(6. / (n_in + n_out))
        W_values = numpy.asarray(rng.uniform(low=-bound, high=bound, size=(n_in, n_out)),
                                 dtype=theano.config.floatX)
        if activation == theano.tensor.nnet.sigmoid:
            W_values *= 4
        self.W = theano.shared(value=W_values, name='W', borrow=True)
        self.b = theano.shared(value=numpy.zeros((n_out,), dtype=theano.config.floatX),
                               name='b', borrow=True)
        self.output = activation(T.dot(input, self.W) + self.b)
        self.params = [self.W, self.b]


class SoftmaxLayer(object):
    def __init__(self, input, n_in, n_out):
        self.W = theano.shared(numpy.zeros((n_in, n_out), dtype=theano.config.floatX),
                               name='W', borrow=True)
        self.b = theano.shared(numpy.zeros((n_out,), dtype=theano.config.floatX),
                               name='b', borrow=True)
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]

    def negative_log_likelihood(self, y):
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        if not y.dtype.startswith('int'):
            raise NotImplementedError()
        return T.mean(T.neq(self.y_pred, y))


class MLP(object):
    def __init__(self, rng, input, n_in, n_hidden, n_out):
        self.hidden = HiddenLayer(rng, input, n_in, n_hidden)
        self.top = SoftmaxLayer(self.hidden.output, n_hidden, n_out)
        self.L1 = abs(self.hidden.W).sum() + abs(self.top.W).sum()
        self.L2_sqr = (self.hidden.W ** 2).sum() + (self.top.W ** 2).sum()
        self.negative_log_likelihood = self.top.negative_log_likelihood
        self.errors = self.top.errors
        self.params = self.hidden.params + self.top.params


def synthetic_sets(n_in, n_out, sizes, seed):
    """Sparse pixels in [0, 1) and labels from a random two-layer teacher."""
    rng = numpy.random.RandomState(seed)
    W1, W2 = rng.randn(n_in, 32), rng.randn(32, n_out)
    sets = []
    for n in sizes:
        x = rng.rand(n, n_in) * (rng.rand(n, n_in) < 0.3)
        y = numpy.argmax(numpy.tanh(x @ W1) @ W2, axis=1)
        sets.append((theano.shared(numpy.asarray(x, dtype=theano.config.floatX), borrow=True),
                     T.cast(theano.shared(numpy.asarray(y, dtype=theano.config.floatX),
                                          borrow=True), 'int32')))
    return sets


def train_mlp(n_in=64, n_hidden=50, n_out=5, n_train=1200, n_valid=300, batch_size=20,
              learning_rate=0.1, L1_reg=0.0, L2_reg=0.0001, n_epochs=8, verbose=True):
    """Returns the mean training cost of each epoch and the validation errors."""
    (train_x, train_y), (valid_x, valid_y) = synthetic_sets(n_in, n_out, (n_train, n_valid), 1)
    n_train_batches = train_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_x.get_value(borrow=True).shape[0] // batch_size

    index = T.lscalar()
    x = T.matrix('x')
    y = T.ivector('y')
    classifier = MLP(numpy.random.RandomState(1234), x, n_in, n_hidden, n_out)
    cost = (classifier.negative_log_likelihood(y) + L1_reg * classifier.L1
            + L2_reg * classifier.L2_sqr)
    batch = slice(index * batch_size, (index + 1) * batch_size)
    validate_model = theano.function([index], classifier.errors(y),
                                     givens={x: valid_x[batch], y: valid_y[batch]})
    gparams = [T.grad(cost, param) for param in classifier.params]
    train_model = theano.function(
        inputs=[index], outputs=cost,
        updates=[(p, p - learning_rate * g) for p, g in zip(classifier.params, gparams)],
        givens={x: train_x[batch], y: train_y[batch]})

    patience, patience_increase, improvement_threshold = 10000, 2, 0.995
    validation_frequency = min(n_train_batches, patience // 2)
    best_validation_loss = numpy.inf
    epoch_costs, validation = [], []
    epoch, done_looping = 0, False
    while epoch < n_epochs and not done_looping:
        epoch += 1
        costs = []
        for minibatch_index in range(n_train_batches):
            costs.append(train_model(minibatch_index))
            it = (epoch - 1) * n_train_batches + minibatch_index
            if (it + 1) % validation_frequency == 0:
                this_validation_loss = numpy.mean([validate_model(i)
                                                   for i in range(n_valid_batches)])
                validation.append(this_validation_loss)
                if this_validation_loss < best_validation_loss:
                    if this_validation_loss < best_validation_loss * improvement_threshold:
                        patience = max(patience, it * patience_increase)
                    best_validation_loss = this_validation_loss
            if patience <= it:
                done_looping = True
                break
        epoch_costs.append(float(numpy.mean(costs)))
        if verbose:
            print('epoch %i, training cost %f, validation error %f %%'
                  % (epoch, epoch_costs[-1], validation[-1] * 100.))
    if verbose:
        print('best validation error %f %%' % (best_validation_loss * 100.))
    return epoch_costs, validation


if __name__ == '__main__':
    train_mlp()
