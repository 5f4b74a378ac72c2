"""Operators and methods on Variable, installed once at import.

Kept apart from node.py so the node stays a small data structure and the ops
it dispatches to can import it.
"""
import types
import weakref

from . import ops
from .node import Variable


def _binary(op, reflected=False):
    if reflected:
        return lambda self, other: op(other, self)
    return lambda self, other: op(self, other)


def _unary(op):
    return lambda self: op(self)


_OPERATORS = {
    "add": ops.elementwise.add, "sub": ops.elementwise.sub, "mul": ops.elementwise.mul,
    "truediv": ops.elementwise.true_div, "floordiv": ops.elementwise.floor_div,
    "mod": ops.elementwise.mod, "pow": ops.elementwise.power,
    "and": ops.elementwise.and_, "or": ops.elementwise.or_, "matmul": ops.dot,
}
for _name, _op in _OPERATORS.items():
    setattr(Variable, f"__{_name}__", _binary(_op))
    setattr(Variable, f"__r{_name}__", _binary(_op, reflected=True))
Variable.__matmul__ = _binary(ops.matmul)
Variable.__rmatmul__ = _binary(ops.matmul, reflected=True)
Variable.__lt__ = _binary(ops.lt)
Variable.__le__ = _binary(ops.le)
Variable.__gt__ = _binary(ops.gt)
Variable.__ge__ = _binary(ops.ge)
Variable.__neg__ = _unary(ops.elementwise.neg)
Variable.__pos__ = lambda self: self
Variable.__abs__ = _unary(ops.abs)
Variable.__invert__ = _unary(ops.elementwise.invert)
Variable.__getitem__ = ops.getitem

Variable.sum = ops.sum
Variable.mean = ops.mean
Variable.max = ops.max
Variable.min = ops.min
Variable.prod = ops.prod
Variable.argmax = ops.argmax
Variable.argmin = ops.argmin
Variable.var = ops.var
Variable.std = ops.std
Variable.reshape = lambda self, *shape, ndim=None: ops.reshape(
    self, shape[0] if len(shape) == 1 else shape)
Variable.dimshuffle = ops.dimshuffle
Variable.transpose = lambda self, *axes: ops.transpose(
    self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))
Variable.T = property(lambda self: ops.transpose(self))
Variable.astype = ops.cast
Variable.flatten = ops.flatten
Variable.dot = ops.dot
Variable.squeeze = ops.squeeze
Variable.clip = ops.clip


def _rng(self):
    """Theano's `rv.rng` on a random draw: the shared state `[key, ctr]` the
    draw reads (kgen's state is an int64 vector, not a RandomState; saving its
    value and setting it back replays the draw)."""
    from .node import Shared
    from .ops.random import RandomOp
    if isinstance(self.op, RandomOp):
        state = self.inputs[1].inputs[0] if self.inputs[1].inputs else None
        if isinstance(state, Shared):
            return state
    raise AttributeError(f"{type(self).__name__!r} object has no attribute 'rng' "
                         "(only a random draw has one)")


Variable.rng = property(_rng)


_TAGS = weakref.WeakKeyDictionary()


def _tag(self):
    """Theano's `var.tag`: a scratch namespace per variable (`x.tag.test_value
    = ...`). kgen reads nothing from it (config.compute_test_value has no effect)."""
    tag = _TAGS.get(self)
    if tag is None:
        tag = _TAGS[self] = types.SimpleNamespace()
    return tag


Variable.tag = property(_tag)


def _norm(self, L, axis=None):
    """Theano's `x.norm(L, axis=None)`: L=1 the sum of |x|, L=2 the root of
    the sum of squares, else (sum |x|**L)**(1/L)."""
    if L == 0:
        raise NotImplementedError("norm: L=0 is not supported (as in Theano)")
    if L == 1:
        return ops.sum(ops.abs(self), axis=axis)
    if L == 2:
        return ops.sqrt(ops.sum(ops.square(self), axis=axis))
    return ops.sum(ops.abs(self) ** L, axis=axis) ** (1.0 / L)


Variable.norm = _norm
