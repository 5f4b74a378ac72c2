"""Turning call arguments into arrays of an input's dtype: NumPy's 'safe'
casting, with Python scalars weak as in NEP 50. Shared by `.eval()`,
`kg.function` and built packages' loaders (which carry their own copy)."""
import numpy as np

from ..errors import KgenTypeError
from .types import format_shape


def coerce_argument(var, value, label):
    """`value` as an array of `var`'s dtype and ndim, or a TypeError naming `label`."""
    dtype = np.dtype(var.dtype)
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        arr = _weak_scalar(value, dtype, label)
    else:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise KgenTypeError(f"{label}: expected {var.dtype} data, got {arr.dtype}")
        if arr.dtype != dtype and isinstance(value, (list, tuple)) and arr.size:
            arr = _weak_sequence(arr, dtype, label)
        if arr.dtype != dtype:
            if not np.can_cast(arr.dtype, dtype, "safe"):
                raise KgenTypeError(
                    f"{label}: expected dtype {var.dtype}, got {arr.dtype} "
                    f"(which does not cast safely; use .astype)")
            arr = arr.astype(dtype)
    if arr.ndim != var.ndim:
        raise KgenTypeError(
            f"{label}: expected a {var.ndim}-d array of {var.dtype} with shape "
            f"{format_shape(var.type.shape)}, got {arr.ndim}-d with shape {arr.shape}")
    for axis, (want, got) in enumerate(zip(var.type.shape, arr.shape)):
        if want is not None and want != got:
            from ..errors import ShapeError
            raise ShapeError(f"{label}: expected shape {format_shape(var.type.shape)}, "
                             f"got {arr.shape} (axis {axis})")
    return arr


def _weak_scalar(value, dtype, label):
    """A Python scalar adapts to the input's dtype when it fits (NEP 50)."""
    kind = "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"
    if kind == "f" and dtype.kind in "biu" or kind == "i" and dtype.kind == "b":
        raise KgenTypeError(f"{label}: expected {dtype.name}, got Python "
                            f"{type(value).__name__} {value!r}")
    if kind == "i" and dtype.kind == "i":
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            raise KgenTypeError(f"{label}: {value} does not fit in {dtype.name}")
    return np.array(value, dtype=dtype)


def _weak_sequence(arr, dtype, label):
    """Nested Python numbers are weak like a Python scalar: they take the
    input's dtype when of a compatible kind and in range."""
    if arr.dtype.kind == "i" and dtype.kind == "i":
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise KgenTypeError(f"{label}: values do not fit in {dtype.name}")
        return arr.astype(dtype)
    if arr.dtype.kind == "f" and dtype.kind == "f":
        return arr.astype(dtype)
    return arr
