"""Tensor types: a dtype and a static shape, plus the NumPy rules over them.

Static shapes hold an int per known axis and None per unknown one. The
broadcasting and promotion rules here are NumPy's (NEP 50 for weak Python
scalars), applied at graph-construction time so errors surface early.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import KgenTypeError, ShapeError

SUPPORTED_DTYPES = ("bool", "int32", "int64", "float32", "float64")
FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")


def check_dtype(dtype, what="dtype"):
    """Normalise a dtype-like to its name, rejecting what kgen cannot compile."""
    try:
        name = np.dtype(dtype).name
    except TypeError as exc:
        raise KgenTypeError(f"{what}: {dtype!r} is not a dtype") from exc
    if name not in SUPPORTED_DTYPES:
        raise KgenTypeError(
            f"{what}: dtype {name} is not supported; kgen supports {', '.join(SUPPORTED_DTYPES)}")
    return name


def is_float(dtype):
    return dtype in FLOAT_DTYPES


def is_int(dtype):
    return dtype in INT_DTYPES


@dataclass(frozen=True, init=False)
class TensorType:
    """A dtype and a static shape. Theano's spelling works too:
    `TensorType('float64', (False, True))` takes a broadcastable pattern
    (True = length 1, False = unknown), and calling a type makes an input of
    it: `TensorType('float64', (False, True))('x')`."""
    dtype: str
    shape: tuple

    def __init__(self, dtype, shape=None, broadcastable=None):
        if broadcastable is not None:
            if shape is not None:
                raise KgenTypeError("TensorType: give shape or broadcastable, not both")
            shape = broadcastable
        shape = tuple(shape or ())
        if shape and isinstance(shape[0], (bool, np.bool_)) and \
                all(isinstance(d, (bool, np.bool_)) for d in shape):
            shape = tuple(1 if d else None for d in shape)  # a broadcastable pattern
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "shape", shape)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def broadcastable(self):
        return tuple(d == 1 for d in self.shape)

    def __call__(self, name=None):
        from .variables import tensor
        return tensor(name, self.dtype, self.shape)

    def __str__(self):
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


def format_shape(shape):
    """A shape as NumPy prints it, with `?` for unknown axes."""
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def broadcast_shapes(opname, *shapes):
    """NumPy broadcasting over static shapes; None means unknown until run time."""
    first = None  # the common case first: every shape that is not () the same
    for s in shapes:
        if s:
            if first is None:
                first = s
            elif s != first:
                break
    else:
        return () if first is None else tuple(first)
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dims = [s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ShapeError(
                f"{opname}: shapes {' and '.join(format_shape(s) for s in shapes)} "
                f"cannot be broadcast together (axis {axis - ndim})")
        if known:
            out.append(known.pop())
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def normalize_axis(opname, axis, ndim):
    """axis (None, int or tuple) -> sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise KgenTypeError(f"{opname}: axis must be an int or a tuple of ints, got {a!r}")
        if not -ndim <= a < ndim:
            raise ShapeError(f"{opname}: axis {a} is out of range for a {ndim}-d input")
        a = int(a) % ndim if ndim else 0
        if a in out:
            raise ShapeError(f"{opname}: repeated axis {a}")
        out.append(a)
    return tuple(sorted(out))
