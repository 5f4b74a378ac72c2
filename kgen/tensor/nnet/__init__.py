"""Theano's `tensor.nnet`: `T.nnet.sigmoid`, `T.nnet.softmax`, `T.nnet.conv2d`..."""
from ...expr.ops import (binary_crossentropy, categorical_crossentropy, log_softmax,  # noqa: F401
                         relu, sigmoid, softmax, softplus)
from . import abstract_conv, conv  # noqa: F401
from .abstract_conv import conv2d  # noqa: F401
