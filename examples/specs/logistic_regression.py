"""Theano's logistic-regression tutorial model as a kgen spec.

From the Theano tutorial ("A Real Example: Logistic Regression"), with its
imports changed and theano.function replaced by kg.kernel: 784 features,
L2-regularised cross-entropy, one gradient step per call. The tutorial's
training data (400 random examples) is not part of the model, so it is not
here; the caller passes it in.

    python -m kgen build examples/specs/logistic_regression.py
"""
import numpy

import kgen as theano
import kgen.tensor as T

rng = numpy.random.default_rng(1234)

feats = 784                                  # number of input variables

# Declare Theano symbolic variables
x = T.dmatrix("x")
y = T.dvector("y")

# initialize the weight vector w randomly
#
# this and the following bias variable b
# are shared so they keep their values
# between training iterations (updates)
w = theano.shared(rng.standard_normal(feats), name="w")

# initialize the bias term
b = theano.shared(0., name="b")

# Construct Theano expression graph
p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))      # Probability that target = 1
prediction = p_1 > 0.5                       # The prediction thresholded
xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)  # Cross-entropy loss function
cost = xent.mean() + 0.01 * (w ** 2).sum()   # The cost to minimize
gw, gb = T.grad(cost, [w, b])                # Compute the gradient of the cost
                                             # w.r.t weight vector w and
                                             # bias term b

# Compile
train = theano.kernel("train", [x, y], [prediction, xent],
                      updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)))
predict = theano.kernel("predict", [x], prediction)
