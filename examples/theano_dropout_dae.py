"""A denoising autoencoder in the style of the Theano deep-learning tutorial
(dA.py): binomial corruption drawn by a random stream, tied weights,
cross-entropy cost, SGD updates. Only the imports differ from Theano
(`import kgen as theano`, `kgen.tensor`, `kgen.tensor.shared_randomstreams`);
the data are synthetic MNIST-like pixels in [0, 1].

The corruption mask is drawn inside the compiled training step (no NumPy
draw, no extra argument), and the stream's state advances by itself on every
call (Theano's default updates).

    python examples/theano_dropout_dae.py
"""
import numpy

import kgen as theano
import kgen.tensor as T
from kgen.tensor.shared_randomstreams import RandomStreams


class dA(object):  # noqa: N801  (the tutorial's name)
    """Denoising autoencoder: x -> corrupt -> sigmoid(x~ W + b) -> sigmoid(y W' + b')."""

    def __init__(self, numpy_rng, theano_rng=None, input=None, n_visible=784, n_hidden=500,
                 W=None, bhid=None, bvis=None):
        self.n_visible, self.n_hidden = n_visible, n_hidden
        if not theano_rng:
            theano_rng = RandomStreams(numpy_rng.randint(2 ** 30))
        if not W:
            bound = 4 * numpy.sqrt(6. / (n_hidden + n_visible))
            initial_W = numpy.asarray(numpy_rng.uniform(low=-bound, high=bound,
                                                        size=(n_visible, n_hidden)),
                                      dtype=theano.config.floatX)
            W = theano.shared(value=initial_W, name='W', borrow=True)
        if not bvis:
            bvis = theano.shared(value=numpy.zeros(n_visible, dtype=theano.config.floatX),
                                 name='b_prime', borrow=True)
        if not bhid:
            bhid = theano.shared(value=numpy.zeros(n_hidden, dtype=theano.config.floatX),
                                 name='b', borrow=True)
        self.W, self.b, self.b_prime = W, bhid, bvis
        self.W_prime = self.W.T          # tied weights
        self.theano_rng = theano_rng
        self.x = T.matrix(name='input') if input is None else input
        self.params = [self.W, self.b, self.b_prime]

    def get_corrupted_input(self, input, corruption_level):
        """Zero a fraction `corruption_level` of the pixels, at random."""
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


def synthetic_data(rng, n, n_visible=784):
    """MNIST-like rows: a few bright strokes on a dark background, in [0, 1]."""
    base = rng.uniform(0, 1, (10, n_visible)) ** 8
    rows = base[rng.randint(0, 10, n)] + 0.05 * rng.uniform(0, 1, (n, n_visible))
    return numpy.clip(rows, 0, 1).astype(theano.config.floatX)


def build(seed=123, n_visible=784, n_hidden=500, corruption_level=0.3, learning_rate=0.1):
    """(the dA, the cost expression, the compiled training step x -> cost)."""
    rng = numpy.random.RandomState(seed)
    da = dA(numpy_rng=rng, theano_rng=RandomStreams(rng.randint(2 ** 30)),
            n_visible=n_visible, n_hidden=n_hidden)
    cost, updates = da.get_cost_updates(corruption_level=corruption_level,
                                           learning_rate=learning_rate)
    train_da = theano.function([da.x], cost, updates=updates)
    return da, cost, train_da


def main(epochs=15, batch_size=20, n_train=500):
    da, _, train_da = build()
    data = synthetic_data(numpy.random.RandomState(0), n_train, da.n_visible)
    for epoch in range(epochs):
        c = [train_da(data[i:i + batch_size]) for i in range(0, n_train, batch_size)]
        print('Training epoch %d, cost ' % epoch, numpy.mean(c))


if __name__ == '__main__':
    main()
