"""The public functions over the primitives: argument handling, NumPy-style
signatures, and the compositions (mean, var, softmax, dot, clip...) that need
no primitive of their own."""
import builtins

import numpy as np

from ...errors import KgenTypeError, ShapeError
from ..node import Constant, Variable, as_variable, constant
from ..types import check_dtype, format_shape, normalize_axis
from . import elementwise as ew
from . import linalg as la
from . import reduce as rd
from . import shape as sh

# ---- elementwise ----------------------------------------------------------
abs = ew.abs_  # noqa: A001  (NumPy's name)
exp, exp2, log, log2, log10 = ew.exp, ew.exp2, ew.log, ew.log2, ew.log10
log1p, expm1, sqrt, reciprocal = ew.log1p, ew.expm1, ew.sqrt, ew.reciprocal
sin, cos, tan, arcsin, arccos, arctan, arctan2 = ew.sin, ew.cos, ew.tan, ew.arcsin, ew.arccos, \
    ew.arctan, ew.arctan2
sinh, cosh, tanh, erf = ew.sinh, ew.cosh, ew.tanh, ew.erf
sigmoid, softplus, relu, sign = ew.sigmoid, ew.softplus, ew.relu, ew.sign
floor, ceil, round = ew.floor, ew.ceil, ew.round_  # noqa: A001
maximum, minimum, where, eq, neq = ew.maximum, ew.minimum, ew.where, ew.eq, ew.neq
isnan, isinf, stop_gradient, second = ew.isnan, ew.isinf, ew.stop_gradient, ew.second
switch = where
lt, le, gt, ge = ew.lt, ew.le, ew.gt, ew.ge
matmul, arange_op = la.matmul, sh.arange


def square(x):
    x = as_variable(x)
    return x * x


def cast(x, dtype):
    x = as_variable(x)
    dtype = check_dtype(dtype, "cast")
    return x if x.dtype == dtype else ew.cast(x, dtype=dtype)


def clip(x, a_min, a_max):
    """NumPy's clip: minimum(maximum(x, a_min), a_max); NaN propagates; a None
    bound is no bound on that side."""
    x = as_variable(x)
    if a_min is None and a_max is None:
        raise KgenTypeError("clip: a_min and a_max cannot both be None")
    lo = x if a_min is None else ew.maximum(x, a_min)
    return lo if a_max is None else ew.minimum(lo, a_max)


def zeros_like(x, dtype=None):
    x = as_variable(x)
    return ew.second(x, constant(np.zeros((), check_dtype(dtype or x.dtype))))


def ones_like(x, dtype=None):
    x = as_variable(x)
    return ew.second(x, constant(np.ones((), check_dtype(dtype or x.dtype))))


# ---- reductions -------------------------------------------------------------
def _accumulated(reduce, x, axis, dtype, keepdims, acc_dtype):
    """Theano's dtype arguments: the input is reduced in `acc_dtype` (default:
    the usual widening), and the result cast to `dtype` (default: the dtype
    the reduction gives without acc_dtype)."""
    x = as_variable(x)
    if acc_dtype is None and dtype is not None and check_dtype(dtype) != x.dtype:
        acc_dtype = dtype  # NumPy's sum(dtype=) accumulates in that dtype
    out = reduce(cast(x, acc_dtype) if acc_dtype else x, axis=axis, keepdims=keepdims)
    return cast(out, dtype or reduce.out_dtype(x.dtype))


def sum(x, axis=None, dtype=None, keepdims=False, acc_dtype=None):  # noqa: A001
    """Theano's signature (dtype third): sum(x, 0, 'float64')."""
    return _accumulated(rd.sum_, x, axis, dtype, keepdims, acc_dtype)


def prod(x, axis=None, dtype=None, keepdims=False, acc_dtype=None):
    return _accumulated(rd.prod, x, axis, dtype, keepdims, acc_dtype)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return rd.max_(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    return rd.min_(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    return rd.argmax(x, axis=axis, keepdims=keepdims)


def argmin(x, axis=None, keepdims=False):
    return rd.argmin(x, axis=axis, keepdims=keepdims)


def count(x, axis):
    """The number of elements reduced over `axis`, as an int64 scalar expression."""
    x = as_variable(x)
    n = constant(np.int64(1))
    for a in normalize_axis("count", axis, x.ndim):
        n = n * x.shape[a]
    return n


def mean(x, axis=None, dtype=None, keepdims=False, acc_dtype=None):
    """sum / count; ints and bools average in float64, as NumPy. `dtype`
    (Theano's, third) is the result's, `acc_dtype` the one summed in."""
    x = as_variable(x)
    ftype = x.dtype if x.dtype in ("float32", "float64") else "float64"
    acc = check_dtype(acc_dtype or dtype or ftype)
    if acc not in ("float32", "float64"):
        raise KgenTypeError(f"mean: cannot average in {acc}; use a float dtype")
    total = sum(cast(x, acc), axis=axis, keepdims=keepdims)
    return cast(total / cast(count(x, axis), acc), dtype or ftype)


def var(x, axis=None, keepdims=False, ddof=0):
    x = as_variable(x)
    dtype = x.dtype if x.dtype in ("float32", "float64") else "float64"
    x = cast(x, dtype)
    centered = x - mean(x, axis=axis, keepdims=True)
    total = sum(centered * centered, axis=axis, keepdims=keepdims)
    return total / cast(count(x, axis) - ddof, dtype)


def std(x, axis=None, keepdims=False, ddof=0):
    return sqrt(var(x, axis=axis, keepdims=keepdims, ddof=ddof))


def drop_axes(x, axis):
    """Remove the (length-1) axes in `axis`."""
    keep = [a for a in range(x.ndim) if a not in axis]
    return sh.dimshuffle(x, pattern=tuple(keep)) if len(keep) != x.ndim else x


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))) with m = max(x),
    finite for any finite x; m is held constant for the gradient, which the
    result does not depend on."""
    x = as_variable(x)
    axes = normalize_axis("logsumexp", axis, x.ndim)
    m = max(x, axis=axes, keepdims=True)
    m = stop_gradient(where(isinf(m), 0, m))  # all -inf (or +inf) rows stay exact
    out = log(sum(exp(x - m), axis=axes, keepdims=True)) + m
    return out if keepdims else drop_axes(out, axes)


def softmax(x, axis=-1):
    x = as_variable(x)
    if x.dtype not in ("float32", "float64"):
        x = cast(x, "float64")  # as mean: ints and bools (bool - bool is undefined) give float64
    axes = normalize_axis("softmax", axis, x.ndim)
    e = exp(x - stop_gradient(max(x, axis=axes, keepdims=True)))
    return e / sum(e, axis=axes, keepdims=True)


def log_softmax(x, axis=-1):
    """(x - m) - log(sum(exp(x - m))): subtracting the max first keeps the
    result accurate (x - logsumexp(x) rounds at the size of x, ~1e-4 in float32
    at |x| = 1000)."""
    x = as_variable(x)
    axes = normalize_axis("log_softmax", axis, x.ndim)
    m = max(x, axis=axes, keepdims=True)
    shifted = x - stop_gradient(where(isinf(m), 0, m))
    return shifted - log(sum(exp(shifted), axis=axes, keepdims=True))


# ---- linear algebra -----------------------------------------------------------
def dot(a, b):
    """NumPy's (and Theano's) dot: 0-d operands multiply, 1-d and 2-d ones are
    matrix products, N-d ones contract a's last axis with b's second-to-last."""
    a, b = as_variable(a), as_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    ka, kb = a.type.shape[-1], b.type.shape[-2 if b.ndim >= 2 else 0]
    if ka is not None and kb is not None and ka != kb:
        raise ShapeError(f"dot: shapes {format_shape(a.type.shape)} and {format_shape(b.type.shape)} "
                         f"are not aligned: {ka} (dim {a.ndim - 1}) != {kb} "
                         f"(dim {b.ndim - 2 if b.ndim >= 2 else 0})")
    if a.ndim > 2 or b.ndim > 2:  # a's last axis with b's second-to-last, as one GEMM
        from .everyday import tensordot
        return tensordot(a, b, [[a.ndim - 1], [b.ndim - 2 if b.ndim >= 2 else 0]])
    return la.matmul(a, b, label="dot")


def outer(a, b):
    a, b = flatten(a), flatten(b)
    return sh.dimshuffle(a, pattern=(0, "x")) * sh.dimshuffle(b, pattern=("x", 0))


def swap_last(x):
    order = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return sh.dimshuffle(x, pattern=order)


# ---- shape ------------------------------------------------------------------------
def reshape(x, shape, ndim=None):
    """reshape with ints, -1, or symbolic int scalars (e.g. x.shape[0])."""
    x = as_variable(x)
    if isinstance(shape, (int, np.integer, Variable)):
        shape = (shape,)
    static, dims = [], []
    for d in shape:
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
            static.append(int(d))
        elif isinstance(d, Variable):
            from ..node import Constant
            if isinstance(d, Constant):
                static.append(int(d.value))
            else:
                static.append(None)
                dims.append(d)
        else:
            raise KgenTypeError(f"reshape: bad dimension {d!r}")
    if any(d is not None and d < -1 for d in static):
        raise ShapeError(f"reshape: negative dimension in {tuple(static)}")
    if tuple(static) == x.type.shape and not dims:
        return x
    return sh.reshape(x, *dims, shape=tuple(static))


def dimshuffle(x, *pattern):
    if len(pattern) == 1 and isinstance(pattern[0], (tuple, list)):
        pattern = tuple(pattern[0])
    x = as_variable(x)
    if tuple(pattern) == tuple(range(x.ndim)):
        return x
    return sh.dimshuffle(x, pattern=tuple(pattern))


def transpose(x, axes=None):
    x = as_variable(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(int(a) % x.ndim for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of {x.ndim} axes")
    return dimshuffle(x, axes)


def flatten(x, ndim=1):
    """Keep the first ndim-1 axes and merge the rest (Theano's flatten(outdim))."""
    x = as_variable(x)
    if x.ndim == ndim:
        return x
    if ndim == 1:
        return reshape(x, (-1,))
    return reshape(x, tuple(x.shape[a] for a in range(ndim - 1)) + (-1,))


def expand_dims(x, axis):
    x = as_variable(x)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out_nd = x.ndim + len(axes)
    axes = normalize_axis("expand_dims", axes, out_nd)
    it = iter(range(x.ndim))
    return sh.dimshuffle(x, pattern=tuple("x" if a in axes else next(it) for a in range(out_nd)))


def squeeze(x, axis=None):
    x = as_variable(x)
    if axis is None:
        axes = tuple(a for a, d in enumerate(x.type.shape) if d == 1)
    else:
        axes = normalize_axis("squeeze", axis, x.ndim)
        for a in axes:
            if x.type.shape[a] not in (1, None):
                raise ShapeError(f"squeeze: axis {a} of shape {format_shape(x.type.shape)} "
                                 f"has length {x.type.shape[a]}, not 1")
    return drop_axes(x, axes)


def concatenate(xs, axis=0):
    xs = [as_variable(x) for x in xs]
    if not xs:
        raise KgenTypeError("concatenate: needs at least one array")
    if xs[0].ndim == 0:
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated")
    axis = normalize_axis("concatenate", axis, xs[0].ndim)[0]
    return sh.concatenate(*xs, axis=axis)


def stack(xs, axis=0):
    xs = [as_variable(x) for x in xs]
    if xs and any(x.ndim != xs[0].ndim for x in xs):
        raise ShapeError("stack: inputs of shapes "
                         f"{', '.join(format_shape(x.type.shape) for x in xs)} differ in ndim")
    try:
        return concatenate([expand_dims(x, axis) for x in xs], axis=axis)
    except ShapeError:
        raise ShapeError("stack: inputs of shapes "
                         f"{', '.join(format_shape(x.type.shape) for x in xs)} "
                         f"cannot be stacked on axis {axis}") from None


def arange(start, stop=None, step=1, dtype=None):
    if stop is None:
        start, stop = 0, start
    out = sh.arange(start, stop, step)
    return cast(out, dtype) if dtype else out


def size(x):
    x = as_variable(x)
    return count(x, None)


def expand_reduced(g, node):
    """g, the output of a reduction `node`, with its reduced axes back as length 1."""
    axis, keep = node.attr("axis"), node.attr("keepdims")
    if keep:
        return g
    it = iter(range(g.ndim))
    pattern = tuple("x" if a in axis else next(it) for a in range(node.inputs[0].ndim))
    return sh.dimshuffle(g, pattern=pattern) if pattern != tuple(range(g.ndim)) else g


def broadcast_like(g, x):
    """g broadcast to x's (run-time) shape."""
    if g.type.shape == x.type.shape and None not in x.type.shape:
        return g
    return ew.second(x, g)


# ---- indexing -------------------------------------------------------------------
def getitem(x, key):
    x = as_variable(x)
    key = key if isinstance(key, tuple) else (key,)
    if builtins.sum(k is Ellipsis for k in key) > 1:
        raise KgenTypeError("an index can only have a single ellipsis")
    if Ellipsis in [k for k in key if not isinstance(k, (Variable, np.ndarray))]:
        pos = [i for i, k in enumerate(key) if k is Ellipsis][0]
        used = builtins.sum(1 for k in key if k is not None and k is not Ellipsis)
        key = key[:pos] + (slice(None),) * (x.ndim - used) + key[pos + 1:]
    key = tuple(_basic_int(k) for k in key)
    advanced = []
    for k in key:
        if isinstance(k, (Variable, np.ndarray, list)) and not _int_scalar_var(k):
            advanced.append(k)
        else:
            break
    if advanced:
        idx = [as_variable(np.asarray(k)) if not isinstance(k, Variable) else k for k in advanced]
        for k in idx:
            if k.dtype not in ("int32", "int64"):
                raise KgenTypeError(f"index arrays must be integers, got {k.dtype}")
        x = la.gather(x, *idx)
        rest = key[len(advanced):]
        if any(isinstance(k, (Variable, np.ndarray, list)) and not _int_scalar_var(k)
               for k in rest):
            raise KgenTypeError("integer-array indices must come first (leading axes only)")
        lead = builtins.max(i.ndim for i in idx)
        key = (slice(None),) * lead + tuple(rest)
        if all(k == slice(None) for k in key):
            return x
    entries, syms = [], []

    def bound(p):  # an int, None, or "$" for a symbolic int scalar (in syms)
        p = _basic_int(p)
        if p is None or isinstance(p, (int, np.integer)) and not isinstance(p, bool):
            return None if p is None else int(p)
        if _int_scalar_var(p):
            syms.append(p)
            return sh.SYM
        raise KgenTypeError(f"slice bounds must be ints, or int scalars computed from 0-d int "
                            f"inputs and shapes (+, -, *, //, %, maximum, minimum), got {p!r}")

    for k in key:
        if k is None:
            entries.append(("n",))
        elif isinstance(k, slice):
            parts = (k.start, k.stop, 1 if k.step is None else k.step)
            entries.append(("s",) + tuple(bound(p) for p in parts))
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool) or _int_scalar_var(k):
            entries.append(("i", bound(k)))
        else:
            raise KgenTypeError(f"unsupported index {k!r}: use ints, slices, None, "
                                f"or integer arrays on the leading axes")
    while entries and entries[-1] == ("s", None, None, 1):
        entries.pop()
    if not entries:
        return x
    return sh.subtensor(x, *syms, index=tuple(entries))


def _int_scalar_var(k):
    """A 0-d integer variable that the shape phase can evaluate (from shapes and
    the values of 0-d int inputs): a basic index, a view. Other 0-d int indices
    (read from array values) are gathers."""
    return isinstance(k, Variable) and k.ndim == 0 and k.dtype.startswith(("int", "uint")) \
        and sh.shape_computable(k)


def _basic_int(k):
    """A 0-d integer constant as a Python int; anything else unchanged."""
    if isinstance(k, Constant) and k.ndim == 0 and k.dtype.startswith(("int", "uint")):
        return int(k.value)
    return k


# ---- neural-net helpers (Theano's nnet) -------------------------------------------
def categorical_crossentropy(coding_dist, true_dist):
    """-sum(true * log(coding)) per row; `true_dist` is one-hot rows (same ndim as
    `coding_dist`, any dtype) or an int vector of class indices (one dim fewer:
    then -log(coding[arange(n), true])), as Theano decides it."""
    coding_dist, true_dist = as_variable(coding_dist), as_variable(true_dist)
    if true_dist.ndim == coding_dist.ndim - 1 and true_dist.dtype in ("int32", "int64"):
        rows = arange(coding_dist.shape[0])
        return -log(getitem(coding_dist, (rows, true_dist)))
    return -sum(true_dist * log(coding_dist), axis=-1)


def binary_crossentropy(output, target):
    return -(target * log(output) + (1 - target) * log(1 - output))
