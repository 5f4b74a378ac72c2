"""Reductions over axes: sum, prod, max, min, argmax, argmin.

mean, var, std and logsumexp are compositions of these (kgen/expr/ops/nnet.py
and api.py); they need no record of their own.
"""
import numpy as np

from ...errors import KgenTypeError, ShapeError
from ..op import Op
from ..types import TensorType, format_shape, normalize_axis


class Reduce(Op):
    """Reduce `axis` (a sorted tuple) of one input, optionally keeping dims."""

    numpy = None
    identity = None      # value of an empty reduction, or None if it is an error
    accumulates = True   # sum/prod widen small ints to int64, as NumPy does
    # How C and CUDA loops accumulate it (kgen/codegen/render.py reads these):
    c_combine = None     # accumulator {acc} combined with value {x}; {s}: its type tag
    start = None         # the accumulator's first value (+-inf: the type's extreme)
    omp_reduction = None  # the OpenMP `reduction` operator, where there is one
    # float32 accumulates in double: NumPy sums pairwise, and a straight
    # float32 loop would drift far from it on long rows
    widens_float32 = False
    # a float accumulator combines with a plain select and keeps a NaN flag
    # beside it: the NaN-propagating select in one expression (`a > b || a != a`)
    # is control flow to gcc, which then neither vectorizes nor if-converts the
    # loop (19x slower than NumPy's max on 4e6 floats)
    nan_flag = False

    def prepare(self, inputs, attrs):
        (x,) = inputs
        axis = normalize_axis(self.name, attrs.get("axis"), x.ndim)
        return inputs, {"axis": axis, "keepdims": bool(attrs.get("keepdims", False))}

    def out_dtype(self, dtype):
        if self.accumulates and dtype in ("bool", "int32"):
            return "int64"
        return dtype

    def infer(self, inputs, attrs):
        (x,) = inputs
        axis, keep = attrs["axis"], attrs["keepdims"]
        if self.identity is None:
            for a in axis:
                if x.type.shape[a] == 0:
                    raise ShapeError(f"{self.name}: zero-size axis {a} of shape "
                                     f"{format_shape(x.type.shape)} has no identity")
        shape = tuple((1 if keep else None) if a in axis else d
                      for a, d in enumerate(x.type.shape))
        shape = tuple(d for a, d in enumerate(shape) if keep or a not in axis)
        return TensorType(self.out_dtype(x.dtype), shape)

    def impl(self, arrays, attrs):
        x = np.asarray(arrays[0])
        out = self.numpy(x, axis=attrs["axis"], keepdims=attrs["keepdims"])
        return np.asarray(out, dtype=self.out_dtype(x.dtype.name))


def _sum_grad(n, g):
    from .api import broadcast_like, expand_reduced
    return [broadcast_like(expand_reduced(g, n), n.inputs[0])]


def _prod_grad(n, g):
    # d(prod)/dx_i is the product of the others. prod/x_i would be 0/0 at a
    # zero, so: with no zero in the slice it is p/x_i, p the product of the
    # non-zero entries; with one zero, p at the zero and 0 elsewhere; with
    # more, 0. Every division is by a non-zero value, so second derivatives
    # stay finite too.
    from .api import expand_reduced, where
    from .elementwise import eq
    x, axis = n.inputs[0], n.attr("axis")
    is_zero = eq(x, 0)
    nonzero = where(is_zero, 1, x)
    p = prod(nonzero, axis=axis, keepdims=True)
    zeros = sum_(is_zero, axis=axis, keepdims=True)
    others = where(is_zero, where(eq(zeros, 1), p, 0), where(eq(zeros, 0), p / nonzero, 0))
    return [expand_reduced(g, n) * others]


def _extremum_grad(n, g):
    # ties split the gradient evenly among the positions equal to the extremum
    # (as TensorFlow and JAX; Theano gave each the whole of it), so it sums to
    # g and is a true subgradient. A NaN in the slice makes its gradient NaN.
    from .api import cast, expand_reduced, where
    from .elementwise import eq
    x, axis = n.inputs[0], n.attr("axis")
    hit = eq(x, expand_reduced(n, n))
    hits = sum_(cast(hit, x.dtype), axis=axis, keepdims=True)
    return [where(hit, expand_reduced(g, n) / hits, 0)]


sum_ = Reduce("sum", numpy=np.sum, identity=0, vjp_rule=_sum_grad,
              c_combine="{acc} + {x}", start=0, omp_reduction="+", widens_float32=True)
prod = Reduce("prod", numpy=np.prod, identity=1, vjp_rule=_prod_grad,
              c_combine="{acc} * {x}", start=1, omp_reduction="*", widens_float32=True)
max_ = Reduce("max", numpy=np.max, accumulates=False, vjp_rule=_extremum_grad,
              c_combine="kg_max_{s}({acc}, {x})", start=float("-inf"), omp_reduction="max",
              nan_flag=True)
min_ = Reduce("min", numpy=np.min, accumulates=False, vjp_rule=_extremum_grad,
              c_combine="kg_min_{s}({acc}, {x})", start=float("inf"), omp_reduction="min",
              nan_flag=True)


class ArgReduce(Reduce):
    """argmax/argmin: one axis or all (flattened index), int64 result."""

    accumulates = False

    def prepare(self, inputs, attrs):
        (x,) = inputs
        axis = attrs.get("axis")
        if isinstance(axis, (tuple, list)):
            raise KgenTypeError(f"{self.name}: axis must be None or one int, got {axis!r}")
        axis = normalize_axis(self.name, axis, x.ndim)
        return inputs, {"axis": axis, "keepdims": bool(attrs.get("keepdims", False))}

    def out_dtype(self, dtype):
        return "int64"

    def impl(self, arrays, attrs):
        x = np.asarray(arrays[0])
        axis = attrs["axis"]
        if len(axis) == x.ndim and x.ndim != 1:
            out = self.numpy(x.reshape(-1))
            if attrs["keepdims"]:
                out = np.reshape(out, (1,) * x.ndim)
        else:
            out = self.numpy(x, axis=axis[0] if axis else None, keepdims=attrs["keepdims"])
        return np.asarray(out, dtype="int64")


argmax = ArgReduce("argmax", numpy=np.argmax, vjp_rule="zero")
argmin = ArgReduce("argmin", numpy=np.argmin, vjp_rule="zero")
