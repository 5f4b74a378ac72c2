"""Theano's everyday tensor names: named arithmetic (add, mul, sqr...),
xlogx/xlogy0, zeros/ones/alloc/fill, any/all, tile/repeat/join, tensordot,
batched_dot (N-d dot is api.dot), set_subtensor/inc_subtensor, and the
argument handling of specify_shape, cumsum/cumprod and sort/argsort, whose
primitives live in shape.py and sequence.py. The rest are compositions of
existing primitives, so they compile, differentiate and render for CUDA like
everything else.
"""
import builtins
import functools

import numpy as np

from ...config import config
from ...errors import KgenTypeError, ShapeError
from ..node import Constant, Variable, as_variable, constant
from ..types import check_dtype, format_shape, normalize_axis
from . import api
from . import elementwise as ew
from . import linalg as la
from . import reduce as rd
from . import sequence as sq
from . import shape as sh

# xlogx and xlogy0 are reached as Theano has them, kgen.tensor.xlogx.xlogy0
__all__ = ["add", "mul", "sub", "true_div", "int_div", "neg", "pow", "sqr", "alloc", "zeros",
           "ones", "fill", "any", "all", "tile", "repeat", "join", "tensordot", "batched_dot",
           "inc_subtensor", "set_subtensor", "cumsum", "cumprod", "sort", "argsort",
           "specify_shape"]


# ---- named arithmetic (Theano's scalar-op names) -------------------------------------
def add(*xs):
    """add(a, b, ...): the sum of any number of tensors, as Theano's add."""
    return _fold(ew.add, xs, "add")


def mul(*xs):
    """mul(a, b, ...): the product of any number of tensors, as Theano's mul."""
    return _fold(ew.mul, xs, "mul")


def _fold(op, xs, name):
    if not xs:
        raise KgenTypeError(f"{name}: needs at least one argument")
    return functools.reduce(op, [as_variable(x) for x in xs])


sub, true_div, int_div, neg, pow = ew.sub, ew.true_div, ew.floor_div, ew.neg, ew.power  # noqa: A001


def sqr(x):
    """x * x (Theano's name for square)."""
    return api.square(x)


def xlogx(x):
    """x * log(x) with 0 * log(0) = 0 (theano.tensor.xlogx.xlogx)."""
    x = as_variable(x)
    return ew.where(ew.eq(x, 0), 0, x * ew.log(ew.where(ew.eq(x, 0), 1, x)))


def xlogy0(x, y):
    """x * log(y) with 0 * log(0) = 0 (theano.tensor.xlogx.xlogy0). The inner
    where keeps the unused branch finite, so the gradient is 0 there, not NaN."""
    x, y = as_variable(x), as_variable(y)
    zero = ew.eq(x, 0)
    return ew.where(zero, 0, x * ew.log(ew.where(zero, 1, y)))


# ---- filled arrays ----------------------------------------------------------------
def _sizes(shape, what):
    """Sizes as Python ints or int scalar expressions (x.shape[0]...)."""
    if isinstance(shape, (int, np.integer, Variable)):
        shape = (shape,)
    out = []
    for d in shape:
        if isinstance(d, Constant):
            d = int(d.value)
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
            if d < 0:
                raise ShapeError(f"{what}: negative dimension {d} in shape {tuple(shape)}")
            out.append(int(d))
        elif isinstance(d, Variable) and d.ndim == 0 and d.dtype in ("int32", "int64"):
            out.append(d)
        else:
            raise KgenTypeError(f"{what}: sizes must be ints or int scalars, got {d!r}")
    return out


def _model(sizes):
    """A tensor of the given sizes whose values are never read: the sum of one
    arange per axis, each along its own axis. second() only borrows its shape,
    so nothing bigger than the aranges is computed."""
    model = None
    for a, d in enumerate(sizes):
        pattern = tuple(0 if k == a else "x" for k in range(len(sizes)))
        rng = sh.arange(0, d, 1, size="alloc") if isinstance(d, Variable) else api.arange(d)
        axis = sh.dimshuffle(rng, pattern=pattern)
        model = axis if model is None else model + axis
    return model


def alloc(value, *shape):
    """value broadcast to `shape` (Theano's alloc): sizes are ints or int
    scalars of shapes, e.g. alloc(0.0, x.shape[0], 3)."""
    value = as_variable(value)
    sizes = _sizes(shape, "alloc")
    if value.ndim > len(sizes):
        raise ShapeError(f"alloc: a value of shape {format_shape(value.type.shape)} cannot be "
                         f"broadcast to {len(sizes)} dimensions")
    if not sizes:
        return value
    return ew.second(_model(sizes), value)


def zeros(shape, dtype=None):
    return alloc(constant(np.zeros((), check_dtype(dtype or config.floatX, "zeros"))), *_sizes(
        shape, "zeros"))


def ones(shape, dtype=None):
    return alloc(constant(np.ones((), check_dtype(dtype or config.floatX, "ones"))), *_sizes(
        shape, "ones"))


def fill(model, value):
    """value broadcast to model's shape (Theano's fill; the same op as second)."""
    return ew.second(model, value)


# ---- logical reductions -----------------------------------------------------------------
def any(x, axis=None, keepdims=False):  # noqa: A001
    """Whether any element is non-zero (bool; Theano gives int8). Empty: False."""
    x = as_variable(x)
    return ew.gt(rd.sum_(ew.neq(x, 0), axis=axis, keepdims=keepdims), 0)


def all(x, axis=None, keepdims=False):  # noqa: A001
    """Whether every element is non-zero (bool; Theano gives int8). Empty: True."""
    x = as_variable(x)
    return ew.eq(rd.sum_(ew.eq(x, 0), axis=axis, keepdims=keepdims), 0)


# ---- tiling and joining ------------------------------------------------------------------
def _dim(x, a):
    """x's length on axis a: a Python int if static, else x.shape[a]."""
    d = x.type.shape[a]
    return d if d is not None else x.shape[a]


def _reps(reps, what):
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    for r in reps:
        if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 0:
            raise KgenTypeError(f"{what}: repetitions must be non-negative Python ints, got {r!r}")
    return tuple(int(r) for r in reps)


def tile(x, reps, ndim=None):
    """NumPy's tile with int repetitions: x broadcast against a new length-r
    axis before each of its axes, then the pairs merged."""
    x = as_variable(x)
    reps = _reps(reps, "tile")
    nd = builtins.max(x.ndim, len(reps), ndim or 0)
    reps = (1,) * (nd - len(reps)) + reps
    x = api.reshape(x, (1,) * (nd - x.ndim) + tuple(_dim(x, a) for a in range(x.ndim))) \
        if nd != x.ndim else x
    if builtins.all(r == 1 for r in reps):
        return x
    pattern = tuple(p for a in range(nd) for p in ("x", a))
    big = alloc(sh.dimshuffle(x, pattern=pattern),
                *[v for a in range(nd) for v in (reps[a], _dim(x, a))])
    return api.reshape(big, tuple(reps[a] * _dim(x, a) for a in range(nd)))


def repeat(x, repeats, axis=None):
    """NumPy's repeat with an int count: each element `repeats` times along
    `axis` (the flattened array if None)."""
    x = as_variable(x)
    (r,) = _reps((repeats,) if isinstance(repeats, (int, np.integer)) else repeats, "repeat")
    if axis is None:
        x, axis = api.flatten(x), 0
    axis = normalize_axis("repeat", axis, x.ndim)[0]
    pattern = tuple(range(axis + 1)) + ("x",) + tuple(range(axis + 1, x.ndim))
    sizes = [_dim(x, a) for a in range(axis + 1)] + [r] + \
        [_dim(x, a) for a in range(axis + 1, x.ndim)]
    big = alloc(sh.dimshuffle(x, pattern=pattern), *sizes)
    return api.reshape(big, tuple(r * _dim(x, a) if a == axis else _dim(x, a)
                                  for a in range(x.ndim)))


def join(axis, *tensors):
    """Theano's join(axis, *tensors): concatenate along axis."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    return api.concatenate(list(tensors), axis=axis)


def specify_shape(x, shape):
    """x, known to have `shape` (ints; None leaves an axis unknown): later ops
    see the static shape, and the compiled code checks it at run time."""
    x = as_variable(x)
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    dims = []
    for d in shape:
        if isinstance(d, Constant):
            d = int(d.value)
        if d is not None and (not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0):
            raise KgenTypeError(f"specify_shape: sizes must be non-negative ints or None, "
                                f"got {d!r}")
        dims.append(None if d is None else int(d))
    return sh.specify_shape(x, shape=tuple(dims))


# ---- along one axis ------------------------------------------------------------------
def _along(op, x, axis):
    x = as_variable(x)
    if axis is None:
        x, axis = api.flatten(x), 0
    return op(x, axis=axis)


def cumsum(x, axis=None):
    """Cumulative sum along axis (of the flattened array if None), as NumPy."""
    return _along(sq.cumsum, x, axis)


def cumprod(x, axis=None):
    """Cumulative product along axis (of the flattened array if None), as NumPy."""
    return _along(sq.cumprod, x, axis)


def sort(a, axis=-1, kind=None, order=None):
    """Sorted along axis (flattened if None); stable, NaN last. `kind` is
    accepted for Theano's signature: kgen always sorts stably."""
    if order is not None:
        raise KgenTypeError("sort: order= (structured arrays) is not supported")
    return _along(sq.sort, a, axis)


def argsort(a, axis=-1, kind=None, order=None):
    """The int64 positions that sort `a` along axis. Always stable (equal
    values keep their order, which NumPy's default quicksort does not promise)."""
    if order is not None:
        raise KgenTypeError("argsort: order= (structured arrays) is not supported")
    return _along(sq.argsort, a, axis)


# ---- products ---------------------------------------------------------------------------
def _merge(x, axes):
    """The product of x's lengths over `axes` (an int if all are static)."""
    n = 1
    for a in axes:
        n = n * _dim(x, a)
    return n


def tensordot(a, b, axes=2):
    """NumPy's tensordot: sum over a's `axes[0]` and b's `axes[1]` (or the last
    n of a and first n of b for an int), as one matrix product of reshaped
    operands, so it runs as a GEMM."""
    a, b = as_variable(a), as_variable(b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > a.ndim or n > b.ndim:
            raise ShapeError(f"tensordot: cannot sum {n} axes of shapes "
                             f"{format_shape(a.type.shape)} and {format_shape(b.type.shape)}")
        ax_a, ax_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        ax_a, ax_b = ([x] if isinstance(x, (int, np.integer)) else list(x) for x in axes)
        if len(ax_a) != len(ax_b):
            raise ShapeError(f"tensordot: axes {ax_a} and {ax_b} differ in number")
        ax_a = [int(x) % a.ndim if a.ndim else x for x in ax_a]
        ax_b = [int(x) % b.ndim if b.ndim else x for x in ax_b]
    for i, j in zip(ax_a, ax_b):
        da, db = a.type.shape[i], b.type.shape[j]
        if da is not None and db is not None and da != db:
            raise ShapeError(f"tensordot: shapes {format_shape(a.type.shape)} and "
                             f"{format_shape(b.type.shape)} differ on the summed axes "
                             f"{i} and {j} ({da} != {db})")
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [j for j in range(b.ndim) if j not in ax_b]
    a2 = api.reshape(api.transpose(a, free_a + ax_a) if a.ndim else a,
                     (_merge(a, free_a), _merge(a, ax_a)))
    b2 = api.reshape(api.transpose(b, ax_b + free_b) if b.ndim else b,
                     (_merge(b, ax_b), _merge(b, free_b)))
    out = la.matmul(a2, b2)
    return api.reshape(out, tuple(_dim(a, i) for i in free_a) + tuple(_dim(b, j) for j in free_b))


def batched_dot(a, b):
    """Theano's batched_dot: for each i of axis 0, dot(a[i], b[i]); a batched
    matrix product of the operands reshaped to (B, n, k) and (B, k, m)."""
    a, b = as_variable(a), as_variable(b)
    if a.ndim < 1 or b.ndim < 1:
        raise ShapeError("batched_dot: operands need a batch axis, got shapes "
                         f"{format_shape(a.type.shape)} and {format_shape(b.type.shape)}")
    if a.ndim == 1 or b.ndim == 1:
        return a * b if a.ndim == b.ndim else (
            a * api.expand_dims(b, tuple(range(1, a.ndim))) if b.ndim == 1
            else api.expand_dims(a, tuple(range(1, b.ndim))) * b)
    ba, bb = a.type.shape[0], b.type.shape[0]
    ka, kb = a.type.shape[-1], b.type.shape[1]
    if (ba is not None and bb is not None and ba != bb) or \
            (ka is not None and kb is not None and ka != kb):
        raise ShapeError(f"batched_dot: shapes {format_shape(a.type.shape)} and "
                         f"{format_shape(b.type.shape)} are not aligned")
    batch = _dim(a, 0)
    rows = _merge(a, range(1, a.ndim - 1))
    cols = _merge(b, range(2, b.ndim))
    a3 = api.reshape(a, (batch, rows, _dim(a, a.ndim - 1)))
    b3 = api.reshape(b, (batch, _dim(b, 1), cols))
    out = la.matmul(a3, b3)
    return api.reshape(out, (batch,) + tuple(_dim(a, i) for i in range(1, a.ndim - 1))
                       + tuple(_dim(b, j) for j in range(2, b.ndim)))


# ---- updating part of an array -------------------------------------------------------
def _index_of(target):
    """(x, kind, index arrays, basic index) for target = x[...]: kind "basic"
    (ints and slices), "array" (integer arrays on the leading axes, maybe then
    slices: x[i, 1:] is gather then subtensor), or "all" (x[:] is x itself)."""
    target = as_variable(target)
    op = target.op.name if target.op is not None else None
    if op == "subtensor":
        # the index: its entries and their symbolic bounds (subtensor's inputs after x)
        src, index = target.inputs[0], (target.attr("index"), tuple(target.inputs[1:]))
        lead = src.ndim - (src.inputs[0].ndim - (len(src.inputs) - 1)) \
            if src.op is not None and src.op.name == "gather" else None
        if lead is not None and index[0][:lead] == (("s", None, None, 1),) * lead:
            return src.inputs[0], "array", src.inputs[1:], (src, index)  # x[i, 1:]
        return src, "basic", None, index
    if op == "gather":
        return target.inputs[0], "array", target.inputs[1:], None
    # x[:] and x[...] are x itself once indexed: the update covers all of it
    return target, "all", None, None


def _placed(target, y, then):
    """y written where target (of shape taken by the gather's output, for
    x[i, 1:]) sits inside the gather's output, zeros elsewhere."""
    y = ew.second(target, y)
    if then is None:
        return y
    return sh.subtensor_grad(then[0], y, *then[1][1], index=then[1][0])


def inc_subtensor(target, y, inplace=False, set_instead_of_inc=False,
                  tolerate_inplace_aliasing=False):
    """x with y added at the indexed positions, for target = x[index]. Repeated
    integer indices accumulate, as Theano's default. A new array: x is unchanged
    (`inplace` and `tolerate_inplace_aliasing` are accepted for Theano's signature)."""
    if set_instead_of_inc:
        return set_subtensor(target, y)
    x, kind, arrays, index = _index_of(target)
    y = api.cast(y, x.dtype)
    if kind == "all":
        return x + ew.second(x, y)
    if kind == "array":
        return la.scatter_add(x, _placed(target, y, index), *arrays)
    return x + sh.subtensor_grad(x, ew.second(target, y), *index[1], index=index[0])


def set_subtensor(target, y, inplace=False, tolerate_inplace_aliasing=False):
    """x with y written at the indexed positions, for target = x[index]. Where
    integer indices repeat, kgen writes the mean of the values given for that
    position (NumPy keeps the last; both agree when the values are equal)."""
    x, kind, arrays, index = _index_of(target)
    y = api.cast(y, x.dtype)
    if kind == "all":
        return ew.second(x, y)
    if kind == "basic":
        mask = sh.subtensor_grad(x, ew.second(target, True), *index[1], index=index[0])
        return ew.where(mask, sh.subtensor_grad(x, ew.second(target, y), *index[1],
                                                index=index[0]), x)
    acc = x.dtype if x.dtype in ("float32", "float64") else "int64"
    zeros = api.zeros_like(x, acc)
    sums = la.scatter_add(zeros, _placed(target, api.cast(y, acc), index), *arrays)
    hits = la.scatter_add(zeros, _placed(target, constant(np.ones((), acc)), index), *arrays)
    safe = ew.maximum(hits, 1)  # no 0/0 off the indexed positions, in values or gradients
    mean = sums / safe if acc == x.dtype else ew.floor_div(sums, safe)
    return ew.where(ew.gt(hits, 0), api.cast(mean, x.dtype), x)
