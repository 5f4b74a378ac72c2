"""Theano's `tensor.nnet`: `T.nnet.sigmoid`, `T.nnet.softmax`, `T.nnet.conv2d`..."""
from ...expr.ops import (binary_crossentropy, categorical_crossentropy, log_softmax,  # noqa: F401
                         relu, sigmoid, softplus)
from ...expr.ops import softmax as _softmax
from . import abstract_conv, conv  # noqa: F401
from .abstract_conv import conv2d  # noqa: F401

logsoftmax = log_softmax


def softmax(c, axis=-1):
    """Theano's T.nnet.softmax: over the last axis, and a vector gives a one-row
    matrix (Theano's softmax op is 2-d; elman.py reads s[:, 0, :] for that)."""
    from ...expr.node import as_variable
    c = as_variable(c)
    if c.ndim == 1:
        c = c.dimshuffle("x", 0)
    return _softmax(c, axis=axis)


def hard_sigmoid(x):
    """Theano's piecewise-linear sigmoid: clip(0.2 x + 0.5, 0, 1); its gradient
    is clip's (0.2 inside, 0 outside; at the bounds clip passes it)."""
    from ...expr.ops import clip
    return clip(x * 0.2 + 0.5, 0, 1)


def elu(x, alpha=1):
    """x where x > 0, else alpha * (exp(x) - 1) (Theano's switch with expm1)."""
    from ...expr.ops import expm1, switch
    return switch(x > 0, x, alpha * expm1(x))


def selu(x):
    """scale * elu(x, alpha) with the self-normalising constants."""
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return scale * elu(x, alpha)
