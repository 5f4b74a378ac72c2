"""An Elman recurrent network over word-embedding windows, trained sentence by
sentence with `scan` and plain SGD (the structure of the slot-filling
tutorial's elman.py, on synthetic sentences)."""
import numpy

import theano
import theano.tensor as T


class RNNSLU(object):
    def __init__(self, rng, nh, nc, ne, de, cs):
        def init(*shape):
            return theano.shared(0.2 * rng.uniform(-1.0, 1.0, shape).astype(theano.config.floatX))
        self.emb = init(ne + 1, de)
        self.wx = init(de * cs, nh)
        self.wh = init(nh, nh)
        self.w = init(nh, nc)
        self.bh = theano.shared(numpy.zeros(nh, dtype=theano.config.floatX))
        self.b = theano.shared(numpy.zeros(nc, dtype=theano.config.floatX))
        self.h0 = theano.shared(numpy.zeros(nh, dtype=theano.config.floatX))
        self.params = [self.emb, self.wx, self.wh, self.w, self.bh, self.b, self.h0]

        idxs = T.imatrix()
        x = self.emb[idxs].reshape((idxs.shape[0], de * cs))
        y_sentence = T.ivector('y_sentence')

        def recurrence(x_t, h_tm1):
            h_t = T.nnet.sigmoid(T.dot(x_t, self.wx) + T.dot(h_tm1, self.wh) + self.bh)
            s_t = T.nnet.softmax(T.dot(h_t, self.w) + self.b)
            return [h_t, s_t]

        [h, s], _ = theano.scan(fn=recurrence, sequences=x, outputs_info=[self.h0, None],
                                n_steps=x.shape[0])
        p_y_given_x_sentence = s[:, 0, :]
        y_pred = T.argmax(p_y_given_x_sentence, axis=1)
        lr = T.scalar('lr')
        sentence_nll = -T.mean(T.log(p_y_given_x_sentence)[T.arange(x.shape[0]), y_sentence])
        sentence_gradients = T.grad(sentence_nll, self.params)
        sentence_updates = [(p, p - lr * g) for p, g in zip(self.params, sentence_gradients)]
        self.classify = theano.function(inputs=[idxs], outputs=y_pred)
        self.sentence_train = theano.function(inputs=[idxs, y_sentence, lr],
                                              outputs=sentence_nll, updates=sentence_updates)


def contextwin(sentence, win):
    """The window of `win` word indices around each word, padded with -1."""
    padded = win // 2 * [-1] + list(sentence) + win // 2 * [-1]
    return [padded[i:i + win] for i in range(len(sentence))]


def main(n_epochs=3, lr=0.1):
    rng = numpy.random.RandomState(345)
    ne, nc, de, cs, nh = 20, 3, 5, 3, 8
    sentences = [rng.randint(0, ne, size=rng.randint(4, 9)) for _ in range(6)]
    labels = [(s % nc).astype('int32') for s in sentences]
    rnn = RNNSLU(rng, nh=nh, nc=nc, ne=ne, de=de, cs=cs)

    curve = []
    for epoch in range(n_epochs):
        nll = [rnn.sentence_train(numpy.asarray(contextwin(s, cs), dtype='int32'), y, lr)
               for s, y in zip(sentences, labels)]
        wrong = numpy.mean([numpy.mean(rnn.classify(numpy.asarray(contextwin(s, cs),
                                                                  dtype='int32')) != y)
                            for s, y in zip(sentences, labels)])
        print('epoch %i, mean sentence nll %.12f, error %f %%'
              % (epoch, numpy.mean(nll), wrong * 100.))
        curve += [float(v) for v in nll] + [float(wrong)]
    return curve


if __name__ == '__main__':
    main()
