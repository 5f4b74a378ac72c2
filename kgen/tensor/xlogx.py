"""Theano's `tensor.xlogx`: x * log(x) and x * log(y), with 0 * log(0) = 0."""
from ..expr.ops.everyday import xlogx, xlogy0  # noqa: F401
