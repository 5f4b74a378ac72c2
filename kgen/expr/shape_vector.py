"""x.shape: a tuple-like of int64 scalars (constants where the size is static).

Where a value is expected (a function output, an operand), it becomes the
int64 vector of those scalars, as Theano's x.shape is."""
import numpy as np

from .node import constant


class ShapeVector:
    __slots__ = ("var",)

    def __init__(self, var):
        self.var = var

    def __len__(self):
        return self.var.ndim

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self[k] for k in range(*i.indices(len(self))))
        nd = self.var.ndim
        if not -nd <= i < nd:
            raise IndexError(f"shape index {i} out of range for a {nd}-d variable")
        i %= nd
        d = self.var.type.shape[i]
        if d is not None:
            return constant(np.int64(d))
        from .ops import shape
        return shape.shape_i(self.var, axis=i)

    def as_vector(self):
        """The shape as a 1-d int64 expression (a constant when fully static)."""
        from .ops import api
        if self.var.ndim == 0:
            return constant(np.zeros(0, np.int64))
        return api.stack(list(self))

    def __bool__(self):  # Theano's x.shape is a variable, so truthy even for a scalar
        return True

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f"shape({self.var!r})"


def _as_vector_then(name):
    def method(self, *args):
        return getattr(self.as_vector(), name)(*args)
    method.__name__ = name
    return method


# arithmetic and comparisons on x.shape act on the int64 vector, as in Theano
for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__floordiv__", "__rfloordiv__", "__truediv__", "__rtruediv__", "__mod__",
              "__neg__", "__lt__", "__le__", "__gt__", "__ge__", "prod", "sum", "eval"):
    setattr(ShapeVector, _name, _as_vector_then(_name))
ShapeVector.dtype = "int64"
