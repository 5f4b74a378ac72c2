"""`T.nnet.conv2d`: Theano's 2-D convolution over NCHW batches.

The arguments are checked and normalised here; the convolution itself is the
dedicated op `conv2d` (kgen/expr/ops/conv.py: geometry, NumPy reference and
gradients, which are the dedicated ops conv2d_grad_input/_filters, so
gradients of any order stay convolutions), lowered to tiled im2col + GEMM in C
and to a direct kernel in CUDA (kgen/lower/conv.py). `filter_flip=True` (a true
convolution) reverses the filters' last two axes with a negative-step view, which
the lowering reads through its strides; `False` is a correlation. Padding is
implicit (the im2col panel reads zeros outside the image).

The filter rows and columns must be known when the graph is built: from
`filter_shape`, the filters' static shape, or a shared variable's current value
(then checked at run time, like the hints).
"""
import numpy as np

from ...errors import KgenTypeError
from ...expr.node import Shared, as_variable
from ...expr.ops import api
from ...expr.ops import conv as conv_op
from ...expr.ops import everyday as ev
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
    return conv_op.conv2d(x, w, pad=(ph, pw), stride=(sh_, sw), dil=(dh, dw), groups=groups)


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
