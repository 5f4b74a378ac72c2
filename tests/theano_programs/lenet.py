"""A small LeNet: two convolution + max-pooling layers, a tanh layer and a
softmax, trained by minibatch SGD (the structure of convolutional_mlp.py)."""
import numpy

import theano
import theano.tensor as T
from theano.tensor.nnet import conv2d
from theano.tensor.signal import pool

from .logistic_sgd import LogisticRegression
from .mlp import HiddenLayer


class LeNetConvPoolLayer(object):
    def __init__(self, rng, input, filter_shape, image_shape, poolsize=(2, 2)):
        assert image_shape[1] == filter_shape[1]
        fan_in = numpy.prod(filter_shape[1:])
        fan_out = filter_shape[0] * numpy.prod(filter_shape[2:]) // numpy.prod(poolsize)
        W_bound = numpy.sqrt(6. / (fan_in + fan_out))
        self.W = theano.shared(numpy.asarray(rng.uniform(low=-W_bound, high=W_bound,
                                                         size=filter_shape),
                                             dtype=theano.config.floatX), borrow=True)
        self.b = theano.shared(numpy.zeros((filter_shape[0],), dtype=theano.config.floatX),
                               borrow=True)
        conv_out = conv2d(input=input, filters=self.W, filter_shape=filter_shape,
                          input_shape=image_shape)
        pooled_out = pool.pool_2d(input=conv_out, ws=poolsize, ignore_border=True)
        self.output = T.tanh(pooled_out + self.b.dimshuffle('x', 0, 'x', 'x'))
        self.params = [self.W, self.b]


def main(n_epochs=3, batch_size=8, learning_rate=0.1, nkerns=(4, 6)):
    rng = numpy.random.RandomState(23455)
    n, n_out = 64, 3
    images = rng.rand(n, 1, 12, 12)
    templates = rng.rand(n_out, 1, 12, 12)
    labels = numpy.argmax(numpy.tensordot(images, templates, axes=([1, 2, 3], [1, 2, 3]))
                          + 0.3 * rng.randn(n, n_out), axis=1)
    train_x = theano.shared(numpy.asarray(images.reshape(n, 144), dtype=theano.config.floatX),
                            borrow=True)
    train_y = T.cast(theano.shared(numpy.asarray(labels, dtype=theano.config.floatX)), 'int32')
    n_batches = n // batch_size

    index = T.lscalar()
    x = T.matrix('x')
    y = T.ivector('y')
    layer0_input = x.reshape((batch_size, 1, 12, 12))
    layer0 = LeNetConvPoolLayer(rng, input=layer0_input, image_shape=(batch_size, 1, 12, 12),
                                filter_shape=(nkerns[0], 1, 3, 3), poolsize=(2, 2))
    layer1 = LeNetConvPoolLayer(rng, input=layer0.output, image_shape=(batch_size, nkerns[0], 5, 5),
                                filter_shape=(nkerns[1], nkerns[0], 2, 2), poolsize=(2, 2))
    layer2 = HiddenLayer(rng, input=layer1.output.flatten(2), n_in=nkerns[1] * 2 * 2, n_out=20)
    layer3 = LogisticRegression(input=layer2.output, n_in=20, n_out=n_out)
    cost = layer3.negative_log_likelihood(y)

    params = layer3.params + layer2.params + layer1.params + layer0.params
    grads = T.grad(cost, params)
    updates = [(param_i, param_i - learning_rate * grad_i)
               for param_i, grad_i in zip(params, grads)]
    train_model = theano.function(
        [index], cost, updates=updates,
        givens={x: train_x[index * batch_size: (index + 1) * batch_size],
                y: train_y[index * batch_size: (index + 1) * batch_size]})
    test_model = theano.function(
        [index], layer3.errors(y),
        givens={x: train_x[index * batch_size: (index + 1) * batch_size],
                y: train_y[index * batch_size: (index + 1) * batch_size]})

    curve = []
    for epoch in range(n_epochs):
        costs = [train_model(i) for i in range(n_batches)]
        error = numpy.mean([test_model(i) for i in range(n_batches)])
        print('epoch %i, train cost %.12f, training error %f %%'
              % (epoch, numpy.mean(costs), error * 100.))
        curve += [float(c) for c in costs] + [float(error)]
    return curve


if __name__ == '__main__':
    main()
