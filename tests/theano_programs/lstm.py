"""An LSTM sentence classifier with masks and mean pooling over time, trained
by the two-function SGD of the tutorials' lstm.py (gradients into shared
variables, then a separate update function), without dropout."""
from collections import OrderedDict

import numpy

import theano
import theano.tensor as tensor


def ortho_weight(rng, ndim):
    """An orthogonal matrix, by Gram-Schmidt on Gaussian columns. (lstm.py
    takes the SVD's U, whose column signs differ between LAPACK builds, so
    two NumPy installations would start from different weights.)"""
    q = rng.randn(ndim, ndim)
    for j in range(ndim):
        for k in range(j):
            q[:, j] -= q[:, k].dot(q[:, j]) * q[:, k]
        q[:, j] /= numpy.sqrt(q[:, j].dot(q[:, j]))
    return q.astype(theano.config.floatX)


def init_tparams(rng, n_words, dim_proj, ydim):
    params = OrderedDict()
    params['Wemb'] = (0.01 * rng.rand(n_words, dim_proj)).astype(theano.config.floatX)
    params['lstm_W'] = numpy.concatenate([ortho_weight(rng, dim_proj) for _ in range(4)], axis=1)
    params['lstm_U'] = numpy.concatenate([ortho_weight(rng, dim_proj) for _ in range(4)], axis=1)
    params['lstm_b'] = numpy.zeros((4 * dim_proj,), dtype=theano.config.floatX)
    params['U'] = 0.01 * rng.randn(dim_proj, ydim).astype(theano.config.floatX)
    params['b'] = numpy.zeros((ydim,)).astype(theano.config.floatX)
    return OrderedDict((k, theano.shared(v, name=k)) for k, v in params.items())


def lstm_layer(tparams, state_below, dim_proj, mask):
    nsteps = state_below.shape[0]
    n_samples = state_below.shape[1]

    def _slice(_x, n, dim):
        return _x[:, n * dim:(n + 1) * dim]

    def _step(m_, x_, h_, c_):
        preact = tensor.dot(h_, tparams['lstm_U'])
        preact += x_
        i = tensor.nnet.sigmoid(_slice(preact, 0, dim_proj))
        f = tensor.nnet.sigmoid(_slice(preact, 1, dim_proj))
        o = tensor.nnet.sigmoid(_slice(preact, 2, dim_proj))
        c = tensor.tanh(_slice(preact, 3, dim_proj))
        c = f * c_ + i * c
        c = m_[:, None] * c + (1. - m_)[:, None] * c_
        h = o * tensor.tanh(c)
        h = m_[:, None] * h + (1. - m_)[:, None] * h_
        return h, c

    state_below = tensor.dot(state_below, tparams['lstm_W']) + tparams['lstm_b']
    rval, updates = theano.scan(_step, sequences=[mask, state_below],
                                outputs_info=[tensor.alloc(numpy.asarray(0., dtype=theano.config.floatX),
                                                           n_samples, dim_proj),
                                              tensor.alloc(numpy.asarray(0., dtype=theano.config.floatX),
                                                           n_samples, dim_proj)],
                                name='lstm_layers', n_steps=nsteps)
    return rval[0]


def build_model(tparams, dim_proj):
    x = tensor.matrix('x', dtype='int64')
    mask = tensor.matrix('mask', dtype=theano.config.floatX)
    y = tensor.vector('y', dtype='int64')
    n_timesteps, n_samples = x.shape[0], x.shape[1]
    emb = tparams['Wemb'][x.flatten()].reshape([n_timesteps, n_samples, dim_proj])
    proj = lstm_layer(tparams, emb, dim_proj, mask=mask)
    proj = (proj * mask[:, :, None]).sum(axis=0)
    proj = proj / mask.sum(axis=0)[:, None]
    pred = tensor.nnet.softmax(tensor.dot(proj, tparams['U']) + tparams['b'])
    f_pred = theano.function([x, mask], pred.argmax(axis=1), name='f_pred')
    cost = -tensor.log(pred[tensor.arange(n_samples), y] + 1e-8).mean()
    return x, mask, y, f_pred, cost


def sgd(lr, tparams, grads, x, mask, y, cost):
    gshared = [theano.shared(p.get_value() * 0., name='%s_grad' % k) for k, p in tparams.items()]
    gsup = [(gs, g) for gs, g in zip(gshared, grads)]
    f_grad_shared = theano.function([x, mask, y], cost, updates=gsup, name='sgd_f_grad_shared')
    pup = [(p, p - lr * g) for p, g in zip(tparams.values(), gshared)]
    f_update = theano.function([lr], [], updates=pup, name='sgd_f_update')
    return f_grad_shared, f_update


def prepare_data(seqs, labels):
    lengths = [len(s) for s in seqs]
    x = numpy.zeros((max(lengths), len(seqs))).astype('int64')
    x_mask = numpy.zeros((max(lengths), len(seqs))).astype(theano.config.floatX)
    for idx, s in enumerate(seqs):
        x[:lengths[idx], idx] = s
        x_mask[:lengths[idx], idx] = 1.
    return x, x_mask, numpy.asarray(labels, dtype='int64')


def main(n_epochs=3, dim_proj=8, n_words=30, ydim=2, batch_size=4, lrate=0.5):
    rng = numpy.random.RandomState(2016)
    seqs = [rng.randint(1, n_words, size=rng.randint(3, 10)) for _ in range(12)]
    labels = [int(s.sum() % 2) for s in seqs]
    tparams = init_tparams(rng, n_words, dim_proj, ydim)
    x, mask, y, f_pred, cost = build_model(tparams, dim_proj)
    grads = tensor.grad(cost, wrt=list(tparams.values()))
    lr = tensor.scalar(name='lr')
    f_grad_shared, f_update = sgd(lr, tparams, grads, x, mask, y, cost)

    curve = []
    for epoch in range(n_epochs):
        costs = []
        for start in range(0, len(seqs), batch_size):
            bx, bmask, by = prepare_data(seqs[start:start + batch_size],
                                         labels[start:start + batch_size])
            costs.append(float(f_grad_shared(bx, bmask, by)))
            f_update(lrate)
        bx, bmask, by = prepare_data(seqs, labels)
        error = float(numpy.mean(f_pred(bx, bmask) != by))
        print('epoch %i, train cost %.12f, training error %f %%'
              % (epoch, numpy.mean(costs), error * 100.))
        curve += costs + [error]
    return curve


if __name__ == '__main__':
    main()
