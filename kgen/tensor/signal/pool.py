"""Theano's `theano.tensor.signal.pool.pool_2d`.

Max pooling over non-overlapping windows (stride = ws, no padding,
ignore_border: LeNet's) is the dedicated op max_pool_2d (kgen/expr/ops/pool.py,
with its gradient ops; one pass in C and CUDA). Every other form is a
composition: every window tap (a, b) of a ws[0] x ws[1] window is one strided view of the
(padded) input; the taps, stacked on a new last axis, are reduced:

- 'max': the maximum; its gradient goes, as in Theano's MaxPoolGrad, in full to
  every position of the window equal to the maximum (ties included; kgen's
  plain `max` would split it among them), written as
  stop_gradient(m) + sum(where(tap == m, tap - stop_gradient(m), 0));
  padding is -inf, so it is never the maximum;
- 'sum': the sum; 'average_inc_pad': the sum over ws[0]*ws[1] (padding
  counts), 'average_exc_pad': the sum over the number of input elements in
  the window. With ignore_border=False a partial window at the bottom/right
  edge is averaged over the elements it has (Theano's Pool.perform).

Output rows (cols likewise), r = rows + 2*pad:
  ignore_border=True:  (r - ws) // stride + 1
  ignore_border=False: (rows - 1) // stride + 1 if stride >= ws,
                       else max(0, (rows - 1 - ws + stride) // stride) + 1.
"""
import numpy as np

from ...errors import KgenTypeError
from ...expr.node import as_variable, constant
from ...expr.ops import api
from ...expr.ops import elementwise as ew
from ...expr.ops.pool import max_pool_2d
from ..nnet.abstract_conv import zero_pad

MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def _pair(what, value, minimum):
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum
        for v in value)
    if not ok:
        raise KgenTypeError(f"pool_2d: {what} must be a pair of ints >= {minimum}, got {value!r}")
    return int(value[0]), int(value[1])


def _out_len(n, ws, st, pad, ignore_border):
    """Output length along one axis; n is an int or a symbolic int scalar."""
    if ignore_border:
        return (n + 2 * pad - ws) // st + 1
    if st >= ws:
        return (n - 1) // st + 1
    m = (n - 1 - ws + st) // st
    return (max(0, m) if isinstance(m, int) else ew.maximum(m, 0)) + 1


def _taps(xp, ws, st, out_rows, out_cols):
    """The ws[0]*ws[1] strided views of xp (..., rows, cols), each (..., out_rows, out_cols)."""
    lead = (slice(None),) * (xp.ndim - 2)
    taps = []
    for a in range(ws[0]):
        for b in range(ws[1]):
            taps.append(api.getitem(xp, lead + (slice(a, a + (out_rows - 1) * st[0] + 1, st[0]),
                                                slice(b, b + (out_cols - 1) * st[1] + 1, st[1]))))
    return taps


def _stacked(taps):
    return api.expand_dims(taps[0], -1) if len(taps) == 1 else api.stack(taps, axis=-1)


def _padded(x, pad, extra, value):
    x = zero_pad(x, pad[0], pad[0] + extra[0], x.ndim - 2, value)
    return zero_pad(x, pad[1], pad[1] + extra[1], x.ndim - 1, value)


def _tiled(x, ws, out_r, out_c, mode):
    """Non-overlapping windows (stride = ws, no padding, ignore_border): max is the
    dedicated op; sums and averages are the input cut to whole windows, reshaped
    to (..., out_r, ws0, out_c, ws1) and reduced over two axes."""
    if mode == "max":   # the dedicated op (kgen/expr/ops/pool.py) cuts to whole windows itself
        return max_pool_2d(x, ws=ws)
    lead = x.ndim - 2
    whole = isinstance(out_r, int) and isinstance(out_c, int) \
        and x.type.shape[-2:] == (out_r * ws[0], out_c * ws[1])
    if not whole:
        x = api.getitem(x, (slice(None),) * lead + (slice(0, out_r * ws[0]),
                                                    slice(0, out_c * ws[1])))
    r = api.reshape(x, tuple(x.shape[a] for a in range(lead)) + (out_r, ws[0], out_c, ws[1]))
    axis = (lead + 1, lead + 3)
    out = api.sum(r, axis=axis, keepdims=True, dtype=x.dtype)
    if mode != "sum":
        if not x.dtype.startswith("float"):
            raise KgenTypeError(f"pool_2d: mode {mode!r} needs float input, got {x.dtype}")
        out = out / constant(np.asarray(ws[0] * ws[1], x.dtype))
    return api.drop_axes(out, axis)


def pool_2d(input, ws=(2, 2), ignore_border=True, stride=None, pad=(0, 0), mode="max",
            ds=None, st=None, padding=None):
    """Theano's pool_2d over the last two axes of `input` (any leading axes);
    ds/st/padding are Theano's older names for ws/stride/pad."""
    ws = ws if ds is None else ds
    stride = stride if st is None else st
    pad = pad if padding is None else padding
    x = as_variable(input)
    if x.ndim < 2:
        raise KgenTypeError(f"pool_2d: input must be at least 2-d, got {x.ndim}-d")
    ws = _pair("ws", ws, 1)
    st = ws if stride is None else _pair("stride", stride, 1)
    pad = _pair("pad", (0, 0) if pad is None else pad, 0)
    if mode not in MODES:
        raise KgenTypeError(f"pool_2d: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if ignore_border not in (True, False):
        raise KgenTypeError(f"pool_2d: ignore_border must be True or False, got {ignore_border!r}")
    if pad[0] >= ws[0] or pad[1] >= ws[1]:
        raise KgenTypeError(f"pool_2d: pad {pad} must be smaller than ws {ws}")
    if pad != (0, 0) and not ignore_border:
        raise KgenTypeError("pool_2d: padding works only with ignore_border=True")
    rows, cols = x.shape[x.ndim - 2], x.shape[x.ndim - 1]
    rows = x.type.shape[-2] if x.type.shape[-2] is not None else rows
    cols = x.type.shape[-1] if x.type.shape[-1] is not None else cols
    out_r = _out_len(rows, ws[0], st[0], pad[0], ignore_border)
    out_c = _out_len(cols, ws[1], st[1], pad[1], ignore_border)
    # ignore_border=False: windows may run past the edge, by less than ws
    extra = (0, 0) if ignore_border else (ws[0] - 1, ws[1] - 1)
    if ignore_border and st == ws and pad == (0, 0):
        return _tiled(x, ws, out_r, out_c, mode)
    if mode == "max":
        low = -np.inf if x.dtype.startswith("float") else np.iinfo(x.dtype).min
        t = _stacked(_taps(_padded(x, pad, extra, low), ws, st, out_r, out_c))
        m = ew.stop_gradient(api.max(t, axis=-1))
        mk = api.expand_dims(m, -1)
        zero = constant(np.zeros((), x.dtype))
        return m + api.sum(ew.where(ew.eq(t, mk), t - mk, zero), axis=-1, dtype=x.dtype)
    total = api.sum(_stacked(_taps(_padded(x, pad, extra, 0), ws, st, out_r, out_c)), axis=-1,
                    dtype=x.dtype)  # Theano's pooling keeps the input's dtype
    if mode == "sum":
        return total
    if not x.dtype.startswith("float"):
        raise KgenTypeError(f"pool_2d: mode {mode!r} needs float input, got {x.dtype}")
    if mode == "average_inc_pad" and ignore_border:
        return total / constant(np.asarray(ws[0] * ws[1], x.dtype))
    # the number of input elements in each window: the same pooling of ones
    ones = api.ones_like(x[(0,) * (x.ndim - 2)])
    count = api.sum(_stacked(_taps(_padded(ones, pad, extra, 0), ws, st, out_r, out_c)), axis=-1)
    return total / ew.stop_gradient(count)


__all__ = ["pool_2d"]
