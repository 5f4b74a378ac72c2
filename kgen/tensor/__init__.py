"""Theano's `theano.tensor` namespace: `import kgen.tensor as T`.

The same objects as `kgen`; only the module layout follows Theano, so a
Theano program moves to kgen by changing its imports.
"""
from ..expr.ops import *  # noqa: F401,F403
from ..expr.ops import abs, max, min, round, sum  # noqa: F401
from ..expr.variables import (matrix, scalar, shared, tensor, tensor3, tensor4,  # noqa: F401
                             theano_names as _theano_names, vector)
from ..expr.node import constant  # noqa: F401
# Theano's classes, for `isinstance(x, T.TensorVariable)`: every kgen value is a
# Variable (a constant and a shared variable too); Constant and Shared are its kinds
from ..expr.node import Constant as TensorConstant, Shared as TensorSharedVariable  # noqa: F401
from ..expr.node import Variable as TensorVariable  # noqa: F401
from ..expr.types import TensorType  # noqa: F401
from . import nnet, signal, xlogx  # noqa: F401

globals().update(_theano_names)

# ---- Theano's other everyday names, as kgen's ops --------------------------------------
from ..expr.ops import elementwise as _ew  # noqa: E402
from ..expr.ops import (as_variable as _as_variable, dimshuffle as _dimshuffle,  # noqa: E402
                        reciprocal as inv, sign as sgn, specify_shape as _specify_shape)

mod, and_, or_, invert = _ew.mod, _ew.and_, _ew.or_, _ew.invert
bitwise_and, bitwise_or, bitwise_not = and_, or_, invert


def as_tensor_variable(x, name=None, ndim=None):
    """x (a variable, array or number) as a kgen variable; `ndim` checks its rank."""
    v = _as_variable(x)
    if ndim is not None and v.ndim != ndim:
        from ..errors import KgenTypeError
        raise KgenTypeError(f"as_tensor_variable: expected {ndim}-d, got {v.ndim}-d")
    return v


def shape_padleft(t, n_ones=1):
    """t with n_ones new leading axes of length 1."""
    t = _as_variable(t)
    return _dimshuffle(t, ["x"] * n_ones + list(range(t.ndim)))


def shape_padright(t, n_ones=1):
    """t with n_ones new trailing axes of length 1."""
    t = _as_variable(t)
    return _dimshuffle(t, list(range(t.ndim)) + ["x"] * n_ones)


def addbroadcast(x, *axes):
    """x with `axes` known to have length 1 (checked when the kernel runs)."""
    x = _as_variable(x)
    axes = {a % x.ndim for a in axes}
    return _specify_shape(x, [1 if i in axes else d for i, d in enumerate(x.type.shape)])


def patternbroadcast(x, broadcastable):
    """x with the axes marked True known to have length 1; False leaves an axis as it is."""
    return addbroadcast(x, *[i for i, b in enumerate(broadcastable) if b])


def unbroadcast(x, *axes):
    """x itself: kgen broadcasts by the sizes a kernel meets, so a length-1
    axis needs no unmarking (Theano's unbroadcast only changes the type)."""
    return _as_variable(x)


def __getattr__(name):
    # grad and friends live in kgen.derive, imported lazily to avoid a cycle
    import kgen
    if name in ("grad", "jacobian", "hessian", "jvp", "function", "simplify", "pprint",
                "graph_size", "config", "shared", "Rop", "Lop"):
        return getattr(kgen, name)
    raise AttributeError(f"module 'kgen.tensor' has no attribute {name!r}")
