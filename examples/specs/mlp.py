"""A 2-layer MLP classifier (tanh hidden layer, softmax output) as a kgen spec.

float32 throughout, integer class labels, mean negative log-likelihood plus
an L2 penalty, and one SGD step per `train` call. Sized for small tabular
problems: 4 features, 16 hidden units, 3 classes (the shape of Iris).

    python -m kgen build examples/specs/mlp.py
"""
import numpy as np

import kgen as kg
import kgen.tensor as T

n_in, n_hidden, n_out = 4, 16, 3
learning_rate, l2 = 0.1, 1e-4

rng = np.random.default_rng(7)


def init(fan_in, fan_out):
    """Glorot-uniform weights."""
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)


x = T.fmatrix("x")      # (batch, n_in)
y = T.ivector("y")      # (batch,) class labels in [0, n_out)

W1 = kg.shared(init(n_in, n_hidden), name="W1")
b1 = kg.shared(np.zeros(n_hidden, np.float32), name="b1")
W2 = kg.shared(init(n_hidden, n_out), name="W2")
b2 = kg.shared(np.zeros(n_out, np.float32), name="b2")
params = [W1, b1, W2, b2]

hidden = T.tanh(T.dot(x, W1) + b1)
p_y = T.nnet.softmax(T.dot(hidden, W2) + b2)
nll = -T.mean(T.log(p_y)[T.arange(y.shape[0]), y])
cost = nll + l2 * ((W1 ** 2).sum() + (W2 ** 2).sum())
grads = T.grad(cost, params)

train = kg.kernel("train", [x, y], cost,
                  updates=[(p, p - learning_rate * g) for p, g in zip(params, grads)])
predict = kg.kernel("predict", [x], T.argmax(p_y, axis=1))
probabilities = kg.kernel("probabilities", [x], p_y)
