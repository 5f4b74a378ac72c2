"""Theano's `tensor.nnet`: `T.nnet.sigmoid`, `T.nnet.softmax`..."""
from ..expr.ops import (binary_crossentropy, categorical_crossentropy, log_softmax,  # noqa: F401
                       relu, sigmoid, softmax, softplus)
