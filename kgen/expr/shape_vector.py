"""x.shape: a tuple-like of int64 scalars (constants where the size is static)."""
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

    def __bool__(self):  # Theano's x.shape is a variable, so truthy even for a scalar
        return True

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f"shape({self.var!r})"
