"""A contractive autoencoder: cross-entropy reconstruction plus the Frobenius
norm of the encoder's Jacobian, written out as the tutorials' cA.py does."""
import numpy

import theano
import theano.tensor as T


class cA(object):
    def __init__(self, numpy_rng, input, n_visible, n_hidden, n_batchsize):
        self.n_visible, self.n_hidden, self.n_batchsize = n_visible, n_hidden, n_batchsize
        bound = 4 * numpy.sqrt(6. / (n_hidden + n_visible))
        initial_W = numpy.asarray(numpy_rng.uniform(low=-bound, high=bound,
                                                    size=(n_visible, n_hidden)),
                                  dtype=theano.config.floatX)
        self.W = theano.shared(value=initial_W, name='W', borrow=True)
        self.b = theano.shared(numpy.zeros(n_hidden, dtype=theano.config.floatX),
                               name='b', borrow=True)
        self.b_prime = theano.shared(numpy.zeros(n_visible, dtype=theano.config.floatX),
                                     name='b_prime', borrow=True)
        self.W_prime = self.W.T
        self.x = input
        self.params = [self.W, self.b, self.b_prime]

    def get_hidden_values(self, input):
        return T.nnet.sigmoid(T.dot(input, self.W) + self.b)

    def get_jacobian(self, hidden, W):
        return T.reshape(hidden * (1 - hidden), (self.n_batchsize, 1, self.n_hidden)) * \
            T.reshape(W, (1, self.n_visible, self.n_hidden))

    def get_reconstructed_input(self, hidden):
        return T.nnet.sigmoid(T.dot(hidden, self.W_prime) + self.b_prime)

    def get_cost_updates(self, contraction_level, learning_rate):
        y = self.get_hidden_values(self.x)
        z = self.get_reconstructed_input(y)
        J = self.get_jacobian(y, self.W)
        self.L_rec = - T.sum(self.x * T.log(z) + (1 - self.x) * T.log(1 - z), axis=1)
        self.L_jacob = T.sum(J ** 2) // self.n_batchsize
        cost = T.mean(self.L_rec) + contraction_level * T.mean(self.L_jacob)
        gparams = T.grad(cost, self.params)
        updates = [(p, p - learning_rate * g) for p, g in zip(self.params, gparams)]
        return cost, updates


def main(n_epochs=4, batch_size=10, learning_rate=0.05, contraction_level=0.1):
    rng = numpy.random.RandomState(123)
    data = rng.rand(60, 25)
    train_x = theano.shared(numpy.asarray(data, dtype=theano.config.floatX), borrow=True)
    n_batches = data.shape[0] // batch_size

    index = T.lscalar()
    x = T.matrix('x')
    ca = cA(numpy_rng=rng, input=x, n_visible=25, n_hidden=12, n_batchsize=batch_size)
    cost, updates = ca.get_cost_updates(contraction_level=contraction_level,
                                        learning_rate=learning_rate)
    train_ca = theano.function(
        [index], [T.mean(ca.L_rec), ca.L_jacob], updates=updates,
        givens={x: train_x[index * batch_size: (index + 1) * batch_size]})

    curve = []
    for epoch in range(n_epochs):
        c = numpy.array([train_ca(i) for i in range(n_batches)])
        print('epoch %i, reconstruction cost %.12f, jacobian norm %.12f'
              % (epoch, c[:, 0].mean(), numpy.sqrt(c[:, 1].mean())))
        curve += [float(c[:, 0].mean()), float(c[:, 1].mean())]
    return curve


if __name__ == '__main__':
    main()
