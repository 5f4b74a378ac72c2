"""Minibatch logistic regression: the data lives in shared variables and each
minibatch is a symbolic slice substituted through `givens`."""
import numpy

import theano
import theano.tensor as T


def load_data(rng, n, n_in, n_out):
    W = rng.randn(n_in, n_out)
    X = rng.randn(n, n_in)
    y = numpy.argmax(X.dot(W) + 0.5 * rng.randn(n, n_out), axis=1)

    def shared_dataset(a, b):
        shared_x = theano.shared(numpy.asarray(a, dtype=theano.config.floatX), borrow=True)
        shared_y = theano.shared(numpy.asarray(b, dtype=theano.config.floatX), borrow=True)
        return shared_x, T.cast(shared_y, 'int32')

    cut = n * 3 // 4
    return shared_dataset(X[:cut], y[:cut]), shared_dataset(X[cut:], y[cut:])


class LogisticRegression(object):
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
        return T.mean(T.neq(self.y_pred, y))


def main(n_epochs=4, batch_size=20, learning_rate=0.13):
    rng = numpy.random.RandomState(1234)
    (train_x, train_y), (valid_x, valid_y) = load_data(rng, 400, 30, 4)
    n_train = train_x.get_value(borrow=True).shape[0] // batch_size
    n_valid = valid_x.get_value(borrow=True).shape[0] // batch_size

    index = T.lscalar()
    x = T.matrix('x')
    y = T.ivector('y')
    classifier = LogisticRegression(input=x, n_in=30, n_out=4)
    cost = classifier.negative_log_likelihood(y)

    validate_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: valid_x[index * batch_size:(index + 1) * batch_size],
                y: valid_y[index * batch_size:(index + 1) * batch_size]})
    g_W = T.grad(cost=cost, wrt=classifier.W)
    g_b = T.grad(cost=cost, wrt=classifier.b)
    updates = [(classifier.W, classifier.W - learning_rate * g_W),
               (classifier.b, classifier.b - learning_rate * g_b)]
    train_model = theano.function(
        inputs=[index], outputs=cost, updates=updates,
        givens={x: train_x[index * batch_size:(index + 1) * batch_size],
                y: train_y[index * batch_size:(index + 1) * batch_size]})

    curve = []
    for epoch in range(n_epochs):
        costs = [train_model(i) for i in range(n_train)]
        error = numpy.mean([validate_model(i) for i in range(n_valid)])
        print('epoch %i, train cost %.12f, validation error %f %%'
              % (epoch, numpy.mean(costs), error * 100.))
        curve += [float(numpy.mean(costs)), float(error)]
    return curve


if __name__ == '__main__':
    main()
