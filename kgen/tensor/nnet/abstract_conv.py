"""`T.nnet.conv2d`: Theano's 2-D convolution over NCHW batches, as a composition.

The convolution is written in primitives that already have C and CUDA
lowerings, NumPy references and derivatives, so gradients (and gradients of
gradients) come from the rules of those primitives:

- zero padding is a concatenation with zero blocks (`alloc`);
- `filter_flip=True` (a true convolution) reverses the filters' last two axes
  with a negative-step view; `False` is a correlation;
- each of the kh*kw filter taps reads one strided, dilated view of the padded
  input; the taps, stacked, are the im2col matrix of the convolution, and one
  GEMM (`matmul`, labelled conv2d; a batched one per group when num_groups > 1)
  multiplies it with the filters.

The filter rows and columns must be known when the graph is built: from
`filter_shape`, the filters' static shape, or a shared variable's current value
(then checked at run time, like the hints).
"""
import numpy as np

from ...errors import KgenTypeError, ShapeError
from ...expr.node import Shared, as_variable, constant
from ...expr.ops import api
from ...expr.ops import everyday as ev
from ...expr.ops import linalg as la
from ...expr.ops import shape as sh


def _pair(what, value, minimum):
    """An int or a pair of ints >= minimum, as a pair; a TypeError otherwise."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    ok = isinstance(pair, (tuple, list)) and len(pair) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum
        for v in pair)
    if not ok:
        raise KgenTypeError(f"conv2d: {what} must be an int >= {minimum} or a pair of them, "
                            f"got {value!r}")
    return int(pair[0]), int(pair[1])


def _hint(what, shape):
    if shape is None:
        return None
    shape = tuple(shape)
    if len(shape) != 4 or any(
            d is not None and (not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0)
            for d in shape):
        raise KgenTypeError(f"conv2d: {what} must be 4 ints (or None), got {shape!r}")
    return tuple(None if d is None else int(d) for d in shape)


def _checked(x, shape, label):
    """x with `shape` (ints, None = any) checked at run time, the error naming label."""
    if shape is None or all(d is None for d in shape):
        return x
    return sh.specify_shape(x, shape=tuple(shape), label=label)


def _padding(border_mode, kh, kw, dh, dw):
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if isinstance(border_mode, str):
        if border_mode == "valid":
            return 0, 0
        if border_mode == "full":
            return eff_h - 1, eff_w - 1
        if border_mode == "half":
            return eff_h // 2, eff_w // 2
        raise KgenTypeError(f"conv2d: border_mode must be 'valid', 'full', 'half', an int or "
                            f"a pair of ints, got {border_mode!r}")
    try:
        return _pair("border_mode", border_mode, 0)
    except KgenTypeError:
        raise KgenTypeError(f"conv2d: border_mode must be 'valid', 'full', 'half', an int >= 0 "
                            f"or a pair of them, got {border_mode!r}") from None


def zero_pad(x, before, after, axis, value=0):
    """x with `before`/`after` (ints) constant blocks around it along `axis`."""
    if not before and not after:
        return x
    dims = [x.shape[a] for a in range(x.ndim)]
    fill = np.asarray(value, dtype=x.dtype)
    parts = []
    if before:
        dims[axis] = before
        parts.append(ev.alloc(fill, *dims))
    parts.append(x)
    if after:
        dims[axis] = after
        parts.append(ev.alloc(fill, *dims))
    return api.concatenate(parts, axis=axis)


def _im2col_views(xp, kernel, dil, stride):
    """(B, OH, OW, C, K): each of the K = kh*kw taps a strided, dilated view of xp."""
    (kh, kw), (dh, dw), (sh_, sw) = kernel, dil, stride
    taps = []
    for p in range(kh):
        for q in range(kw):
            stop_r, stop_c = -(kh - 1 - p) * dh or None, -(kw - 1 - q) * dw or None
            taps.append(api.getitem(xp, (slice(None), slice(None),
                                         slice(p * dh, stop_r, sh_), slice(q * dw, stop_c, sw))))
    cols = api.expand_dims(taps[0], 4) if len(taps) == 1 else api.stack(taps, axis=4)
    return api.dimshuffle(cols, 0, 2, 3, 1, 4)


def _im2col_gather(xp, padded, kernel, dil, stride):
    """(B, OH, OW, K, C) as one gather of rows of xp in NHWC order, for static
    spatial sizes: the rows of the GEMM's left operand come out contiguous (no
    transpose of the im2col matrix), and the gradient is one scatter-add, not
    K strided writes. The indices are b*Hp*Wp + a constant (OH, OW, K) table."""
    (hp, wp), (kh, kw), (dh, dw), (sh_, sw) = padded, kernel, dil, stride
    oh, ow = (hp - (kh - 1) * dh - 1) // sh_ + 1, (wp - (kw - 1) * dw - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise ShapeError(f"conv2d: filters of {kh}x{kw} (dilation {dil}) do not fit a padded "
                         f"input of {hp}x{wp}")
    i = (np.arange(oh) * sh_)[:, None, None, None] + (np.arange(kh) * dh)[None, None, :, None]
    j = (np.arange(ow) * sw)[None, :, None, None] + (np.arange(kw) * dw)[None, None, None, :]
    table = (i * wp + j).reshape(oh, ow, kh * kw).astype(np.int64)
    b, c = xp.shape[0], xp.shape[1]
    base = api.cast(api.arange(b), "int64") * constant(np.int64(hp * wp))
    idx = api.dimshuffle(base, 0, "x", "x", "x") + constant(table)    # (B, OH, OW, K)
    flat = api.reshape(api.dimshuffle(xp, 0, 2, 3, 1), (-1, c))       # (B*Hp*Wp, C)
    return la.gather(flat, idx)                                      # (B, OH, OW, K, C)


def _pointwise(x, w, stride, out_c):
    """A 1x1 convolution without padding or groups: no im2col, one GEMM batched
    over the images, (O, C) @ (B, C, OH*OW), straight into NCHW."""
    if stride != (1, 1):
        x = api.getitem(x, (slice(None), slice(None), slice(None, None, stride[0]),
                            slice(None, None, stride[1])))
    b, c, oh, ow = (x.type.shape[a] or x.shape[a] for a in range(4))
    wm = api.reshape(w, (out_c if out_c is not None else w.shape[0], c))
    out = la.matmul(wm, api.reshape(x, (b, c, -1)), label="conv2d")   # (B, O, OH*OW)
    return api.reshape(out, (b, out.shape[1], oh, ow))


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid",
           subsample=(1, 1), filter_flip=True, filter_dilation=(1, 1), num_groups=1):
    """Theano's `T.nnet.conv2d` (input NCHW, filters (out, in/groups, rows, cols))."""
    x, w = as_variable(input), as_variable(filters)
    if x.ndim != 4 or w.ndim != 4:
        raise KgenTypeError(f"conv2d: input and filters must be 4-d, got {x.ndim}-d input and "
                            f"{w.ndim}-d filters")
    if x.dtype != w.dtype:
        raise KgenTypeError(f"conv2d: input ({x.dtype}) and filters ({w.dtype}) differ in dtype")
    if not x.dtype.startswith("float"):
        raise KgenTypeError(f"conv2d: needs float input and filters, got {x.dtype}")
    sh_, sw = _pair("subsample", subsample, 1)
    dh, dw = _pair("filter_dilation", filter_dilation, 1)
    if not isinstance(num_groups, (int, np.integer)) or isinstance(num_groups, bool) \
            or num_groups < 1:
        raise KgenTypeError(f"conv2d: num_groups must be an int >= 1, got {num_groups!r}")
    groups = int(num_groups)
    input_shape, filter_shape = _hint("input_shape", input_shape), _hint("filter_shape",
                                                                        filter_shape)
    known = list(filter_shape or (None,) * 4)
    for a in range(4):  # the hint, else the static shape, else a shared variable's value
        if known[a] is None:
            known[a] = w.type.shape[a]
        if known[a] is None and isinstance(w, Shared):
            known[a] = int(np.shape(w.get_value(borrow=True))[a])
    out_c, in_cg, kh, kw = known
    if kh is None or kw is None:
        raise KgenTypeError("conv2d: the filters' rows and columns must be known when the graph "
                            "is built: pass filter_shape (or filters of static shape)")
    if groups > 1 and (in_cg is None or out_c is None):
        raise KgenTypeError("conv2d: num_groups > 1 needs the filters' first two dims known: "
                            "pass filter_shape")
    if groups > 1 and out_c % groups:
        raise KgenTypeError(f"conv2d: {out_c} output channels do not split into {groups} groups")
    ph, pw = _padding(border_mode, kh, kw, dh, dw)
    if input_shape is not None:
        x = _checked(x, input_shape, f"conv2d: the input does not have the input_shape hint "
                                         f"{input_shape}: input and hint")
    w = _checked(w, tuple(known), f"conv2d: the filters do not have the filter_shape "
                                          f"{tuple(known)}: filters and expected")
    if in_cg is not None:
        x = _checked(x, (None, in_cg * groups, None, None),
                     f"conv2d: the input's channels do not fit filters of shape "
                     f"{tuple(known)} with num_groups={groups}: input and expected")
    if filter_flip:
        w = api.getitem(w, (slice(None), slice(None), slice(None, None, -1),
                            slice(None, None, -1)))
    if (kh, kw, ph, pw, groups) == (1, 1, 0, 0, 1):
        return _pointwise(x, w, (sh_, sw), out_c)
    xp = zero_pad(zero_pad(x, ph, ph, 2), pw, pw, 3)
    k = kh * kw
    rows, cols_ = x.type.shape[2], x.type.shape[3]
    if input_shape is not None:
        rows, cols_ = input_shape[2] or rows, input_shape[3] or cols_
    if rows is not None and cols_ is not None:   # (B, OH, OW, K, C)
        cols = _im2col_gather(xp, (rows + 2 * ph, cols_ + 2 * pw), (kh, kw), (dh, dw), (sh_, sw))
        w = api.dimshuffle(w, 0, 2, 3, 1)                         # filters (O, kh, kw, Cg)
    else:                                        # (B, OH, OW, C, K)
        cols = _im2col_views(xp, (kh, kw), (dh, dw), (sh_, sw))
    kc = rows is not None and cols_ is not None
    b = xp.shape[0]
    oh, ow = (cols.type.shape[1] or cols.shape[1]), (cols.type.shape[2] or cols.shape[2])
    if groups == 1:
        ck = in_cg * k if in_cg is not None else x.shape[1] * k
        a = api.reshape(cols, (-1, ck))                          # (N, C*K)
        wm = api.reshape(w, (out_c if out_c is not None else w.shape[0], ck))
        out = la.matmul(a, api.swap_last(wm), label="conv2d")   # (N, O)
        o = out_c if out_c is not None else w.shape[0]
    else:
        if kc:   # (N, K, G, Cg) -> (G, N, K*Cg)
            a = api.reshape(cols, (-1, k, groups, in_cg))
            a = api.reshape(api.dimshuffle(a, 2, 0, 1, 3), (groups, -1, k * in_cg))
        else:    # (N, G, Cg*K) -> (G, N, Cg*K)
            a = api.dimshuffle(api.reshape(cols, (-1, groups, in_cg * k)), 1, 0, 2)
        wm = api.reshape(w, (groups, out_c // groups, in_cg * k))  # (G, Og, Cg*K or K*Cg)
        out = la.matmul(a, api.swap_last(wm), label="conv2d")   # (G, N, Og)
        out = api.reshape(api.dimshuffle(out, 1, 0, 2), (-1, out_c))
        o = out_c
    out = api.reshape(out, (b, oh, ow, o))
    return api.dimshuffle(out, 0, 3, 1, 2)


def output_shape(image_shape, kernel_shape, border_mode="valid", subsample=(1, 1),
                 filter_dilation=(1, 1)):
    """Theano's get_conv_output_shape: the output's (batch, channels, rows, cols)."""
    kh, kw = kernel_shape[2], kernel_shape[3]
    dh, dw = _pair("filter_dilation", filter_dilation, 1)
    sh_, sw = _pair("subsample", subsample, 1)
    ph, pw = _padding(border_mode, kh, kw, dh, dw)

    def one(n, kk, p, d, s):
        return None if n is None else (n + 2 * p - (kk - 1) * d - 1) // s + 1
    return (image_shape[0], kernel_shape[0], one(image_shape[2], kh, ph, dh, sh_),
            one(image_shape[3], kw, pw, dw, sw))


get_conv_output_shape = output_shape
__all__ = ["conv2d", "get_conv_output_shape"]
