"""Ops along one axis whose every output depends on a whole line of the input:
cumulative sums and products (a scan) and sorting. They are primitives
because no composition of the elementwise, reduction and GEMM steps computes
them in linear (or n log n) time; the lowering runs each line serially.

Their public functions (cumsum(axis=None) flattening, sort, argsort) are
in everyday.py.
"""
import numpy as np

from ...errors import ShapeError
from ..op import Op
from ..types import TensorType


def _axis(name, x, axis):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ShapeError(f"{name}: axis must be an int, got {axis!r}")
    if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"{name}: axis {axis} is out of range for a {x.ndim}-d input")
    return int(axis) % x.ndim


class Cumulative(Op):
    """cumsum/cumprod along `axis`: out[..., k, ...] = x[..., 0, ...] op ... op
    x[..., k, ...], accumulated in the output dtype (bool and int32 widen to
    int64, as NumPy), one element after the other, as NumPy does."""

    numpy = None
    c_combine = None  # C: the accumulator {acc} combined with the next value {x}
    c_init = None

    def prepare(self, inputs, attrs):
        return inputs, {"axis": _axis(self.name, inputs[0], attrs.get("axis", 0))}

    def infer(self, inputs, attrs):
        (x,) = inputs
        dtype = "int64" if x.dtype in ("bool", "int32") else x.dtype
        return TensorType(dtype, x.type.shape)

    def impl(self, arrays, attrs):
        x = np.asarray(arrays[0])
        dtype = "int64" if x.dtype.name in ("bool", "int32") else x.dtype
        return self.numpy(x, axis=attrs["axis"], dtype=dtype)


def _reverse(x, axis):
    from .shape import subtensor
    return subtensor(x, index=(("s", None, None, 1),) * axis + (("s", None, None, -1),))


def _cumsum_grad(n, g):
    # each input element reaches every later output: the reversed cumulative sum of g
    axis = n.attr("axis")
    return [_reverse(cumsum(_reverse(g, axis), axis=axis), axis)]


def _cumprod_grad(n, g):
    # d out_k / d x_i is the product of x_j, j <= k, j != i. Theano divides out_k
    # by x_i, which is 0/0 at zeros; here no division is by a zero. Per line, with
    # z the first zero: before z it is out_k / x_i (x_i != 0, and out_k = 0 for
    # k >= z); at z it is prod(x before z) * prod(x_j, z < j <= k); after z, 0.
    from .elementwise import and_, eq, where
    x, axis = n.inputs[0], n.attr("axis")

    def rcumsum(v):  # sum over k >= i
        return _reverse(cumsum(_reverse(v, axis), axis=axis), axis)

    zeros_so_far = cumsum(eq(x, 0), axis=axis)
    before = eq(zeros_so_far, 0)
    first_zero = and_(eq(x, 0), eq(zeros_so_far, 1))
    part_before = rcumsum(g * n) / where(before, x, 1)
    head = cumprod(where(before, x, 1), axis=axis)  # prod(x before z), from z on
    tail = cumprod(where(before | first_zero, 1, x), axis=axis)  # prod(x_j, z < j <= k)
    part_zero = rcumsum(where(before, 0, g * head * tail))
    return [where(before, part_before, where(first_zero, part_zero, 0))]


cumsum = Cumulative("cumsum", numpy=np.cumsum, vjp_rule=_cumsum_grad,
                    c_init="0", c_combine="{acc} + {x}")
cumprod = Cumulative("cumprod", numpy=np.cumprod, vjp_rule=_cumprod_grad,
                     c_init="1", c_combine="{acc} * {x}")


class Sort(Op):
    """sort/argsort along `axis`, stable (equal values keep their order), NaN
    last, as NumPy's kind='stable'. argsort gives int64 positions."""

    def prepare(self, inputs, attrs):
        return inputs, {"axis": _axis(self.name, inputs[0], attrs.get("axis", -1))}

    def infer(self, inputs, attrs):
        (x,) = inputs
        return TensorType("int64" if self.name == "argsort" else x.dtype, x.type.shape)

    def impl(self, arrays, attrs):
        x = np.asarray(arrays[0])
        if self.name == "argsort":
            return np.argsort(x, axis=attrs["axis"], kind="stable").astype("int64")
        return np.sort(x, axis=attrs["axis"], kind="stable")


def _sort_grad(n, g):
    # each sorted element's gradient goes back to the position it came from:
    # out[..., k, ...] = x[..., perm[k], ...], so dx[..., perm[k], ...] = g[..., k, ...]
    from .api import arange, zeros_like
    from .linalg import scatter_add
    from .shape import dimshuffle
    x, axis = n.inputs[0], n.attr("axis")
    grid = []
    for a in range(x.ndim):
        if a == axis:
            grid.append(argsort(x, axis=axis))
        else:
            pattern = tuple(0 if k == a else "x" for k in range(x.ndim))
            grid.append(dimshuffle(arange(x.shape[a]), pattern=pattern))
    return [scatter_add(zeros_like(g), g, *grid)]


sort = Sort("sort", vjp_rule=_sort_grad)
argsort = Sort("argsort", vjp_rule="zero")
