"""The seed's linear model as a kgen spec: `python -m kgen build examples/specs/linear_model.py`.

The same model and training step as examples/seed_linear_model.py, declared
with kg.kernel instead of built with kg.function, so that it can be built
ahead of time into a package (see examples/train_linear_model.py for a run of
it) and read as C. Initial weights come from a seeded generator, so every
build ships the same starting point.
"""
import numpy as np

import kgen as theano
import kgen.tensor as T

rng = np.random.default_rng(2024)

# Define symbol variables
x = T.dvector('x')
y = T.dvector('y')
X = T.dmatrix('X')
# Define neural network model
W = theano.shared(rng.standard_normal((10, 10)), name='W')
b = theano.shared(rng.standard_normal(10), name='b')
output = T.dot(W, x) + b
# Definition cost function
cost = T.mean(T.square(output - y))
# Seeking the gradient
dW, db = T.grad(cost, [W, b])
learning_rate = 0.1

# One SGD step on one (x, y) pair: returns the cost before the step.
train = theano.kernel('train', [x, y], cost,
                      updates=[(W, W - learning_rate * dW), (b, b - learning_rate * db)])
# Predictions for a batch, one example per row of X.
predict = theano.kernel('predict', [X], T.dot(X, W.T) + b)
