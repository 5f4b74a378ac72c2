"""Dedicated max pooling over non-overlapping windows (stride = ws, no padding,
ignore_border): LeNet's pooling. pool_2d (kgen/tensor/signal/pool.py) uses
these ops for that form and its composition of views for every other one.

  max_pool_2d(x)                 y[..., i, j] = max of the window x[..., i*a:(i+1)*a, j*b:(j+1)*b]
  max_pool_2d_grad(x, gy)        Theano's MaxPoolGrad: gy in full to every position of
                                 its window equal to the maximum (ties all get it); 0
                                 in the rows and columns past the last whole window
  max_pool_2d_gradgrad(x, h)     its adjoint in gy: per window, the sum of h over
                                 those positions (Theano's DownsampleFactorMaxGradGrad)

The window's maximum is piecewise constant in x, so the gradients in x are zero,
and each op's gradient in its second operand is another of the three. The
maximum propagates NaN, as `max` does. Lowered by kgen/lower/pool.py.
"""
import numpy as np

from ...errors import KgenTypeError, ShapeError
from ..op import Op
from ..types import TensorType, format_shape


def _windows(x, ws):
    """x cut to whole windows, as (..., R, a, C, b)."""
    a, b = ws
    r, c = x.shape[-2] // a, x.shape[-1] // b
    return x[..., :r * a, :c * b].reshape(x.shape[:-2] + (r, a, c, b))


def _pooled_shape(shape, ws):
    return shape[:-2] + tuple(None if n is None else n // k for n, k in zip(shape[-2:], ws))


class MaxPool(Op):
    role = None   # "forward" | "grad" | "gradgrad"

    def infer(self, inputs, attrs):
        x, ws = inputs[0], attrs["ws"]
        if x.ndim < 2:
            raise KgenTypeError(f"pool_2d: input must be at least 2-d, got {x.ndim}-d")
        pooled = _pooled_shape(x.type.shape, ws)
        if self.role == "forward":
            return TensorType(x.dtype, pooled)
        other = inputs[1]
        if other.dtype != x.dtype or other.ndim != x.ndim:
            raise KgenTypeError(f"{self.name}: operands of one dtype and ndim, got "
                                f"{x.dtype} {x.ndim}-d and {other.dtype} {other.ndim}-d")
        want = pooled if self.role == "grad" else x.type.shape
        if any(p is not None and q is not None and p != q for p, q in zip(want, other.type.shape)):
            raise ShapeError(f"{self.name}: shapes {format_shape(x.type.shape)} and "
                             f"{format_shape(other.type.shape)} do not fit windows {ws}")
        return TensorType(x.dtype, x.type.shape if self.role == "grad" else pooled)

    def impl(self, arrays, attrs):
        x, ws = np.asarray(arrays[0]), attrs["ws"]
        win = _windows(x, ws)
        m = win.max(axis=(-3, -1))
        if self.role == "forward":
            return m
        tied = win == m[..., :, None, :, None]
        if self.role == "grad":
            gy = np.asarray(arrays[1])
            out = np.zeros_like(x)
            r, c = m.shape[-2:]
            out[..., :r * ws[0], :c * ws[1]] = (tied * gy[..., :, None, :, None]).reshape(
                x.shape[:-2] + (r * ws[0], c * ws[1]))
            return out
        h = _windows(np.asarray(arrays[1]), ws)
        return np.where(tied, h, 0).sum(axis=(-3, -1)).astype(x.dtype)


def _forward_grad(n, g):
    return [max_pool_2d_grad(n.inputs[0], g, ws=n.attr("ws"))]


def _grad_grad(n, h):
    return [None, max_pool_2d_gradgrad(n.inputs[0], h, ws=n.attr("ws"))]


def _gradgrad_grad(n, g):
    return [None, max_pool_2d_grad(n.inputs[0], g, ws=n.attr("ws"))]


max_pool_2d = MaxPool("max_pool_2d", role="forward", vjp_rule=_forward_grad)
max_pool_2d_grad = MaxPool("max_pool_2d_grad", role="grad", vjp_rule=_grad_grad)
max_pool_2d_gradgrad = MaxPool("max_pool_2d_gradgrad", role="gradgrad", vjp_rule=_gradgrad_grad)
