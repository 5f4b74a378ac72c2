"""Theano's `tensor.nnet`: `T.nnet.sigmoid`, `T.nnet.softmax`..."""
from ..expr.ops import (binary_crossentropy, categorical_crossentropy, log_softmax,  # noqa: F401
                       relu, sigmoid, softmax, softplus)


def hard_sigmoid(x):
    """Theano's piecewise-linear sigmoid: clip(0.2 x + 0.5, 0, 1); its gradient
    is clip's (0.2 inside, 0 outside; at the bounds clip passes it)."""
    from ..expr.ops import clip
    return clip(x * 0.2 + 0.5, 0, 1)
