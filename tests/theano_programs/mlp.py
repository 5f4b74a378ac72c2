"""A one-hidden-layer perceptron with L1 and L2 penalties, trained by minibatch
SGD through `givens` (the structure of the tutorials' mlp.py)."""
import numpy

import theano
import theano.tensor as T

from .logistic_sgd import LogisticRegression, load_data


class HiddenLayer(object):
    def __init__(self, rng, input, n_in, n_out, activation=T.tanh):
        bound = numpy.sqrt(6. / (n_in + n_out))
        W_values = numpy.asarray(rng.uniform(low=-bound, high=bound, size=(n_in, n_out)),
                                 dtype=theano.config.floatX)
        self.W = theano.shared(value=W_values, name='W', borrow=True)
        self.b = theano.shared(value=numpy.zeros((n_out,), dtype=theano.config.floatX),
                               name='b', borrow=True)
        self.output = activation(T.dot(input, self.W) + self.b)
        self.params = [self.W, self.b]


class MLP(object):
    def __init__(self, rng, input, n_in, n_hidden, n_out):
        self.hiddenLayer = HiddenLayer(rng, input, n_in, n_hidden)
        self.logRegressionLayer = LogisticRegression(self.hiddenLayer.output, n_hidden, n_out)
        self.L1 = abs(self.hiddenLayer.W).sum() + abs(self.logRegressionLayer.W).sum()
        self.L2_sqr = (self.hiddenLayer.W ** 2).sum() + (self.logRegressionLayer.W ** 2).sum()
        self.negative_log_likelihood = self.logRegressionLayer.negative_log_likelihood
        self.errors = self.logRegressionLayer.errors
        self.params = self.hiddenLayer.params + self.logRegressionLayer.params


def main(n_epochs=4, batch_size=20, learning_rate=0.05, L1_reg=0.001, L2_reg=0.0001):
    rng = numpy.random.RandomState(4321)
    (train_x, train_y), (valid_x, valid_y) = load_data(rng, 400, 30, 4)
    n_train = train_x.get_value(borrow=True).shape[0] // batch_size
    n_valid = valid_x.get_value(borrow=True).shape[0] // batch_size

    index = T.lscalar()
    x = T.matrix('x')
    y = T.ivector('y')
    classifier = MLP(rng=rng, input=x, n_in=30, n_hidden=16, n_out=4)
    cost = (classifier.negative_log_likelihood(y) + L1_reg * classifier.L1
            + L2_reg * classifier.L2_sqr)
    validate_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: valid_x[index * batch_size:(index + 1) * batch_size],
                y: valid_y[index * batch_size:(index + 1) * batch_size]})
    gparams = [T.grad(cost, param) for param in classifier.params]
    updates = [(param, param - learning_rate * gparam)
               for param, gparam in zip(classifier.params, gparams)]
    train_model = theano.function(
        inputs=[index], outputs=cost, updates=updates,
        givens={x: train_x[index * batch_size: (index + 1) * batch_size],
                y: train_y[index * batch_size: (index + 1) * batch_size]})

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
