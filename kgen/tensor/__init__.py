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
from . import nnet, xlogx  # noqa: F401

globals().update(_theano_names)


def __getattr__(name):
    # grad and friends live in kgen.derive, imported lazily to avoid a cycle
    import kgen
    if name in ("grad", "jacobian", "hessian", "jvp", "function", "simplify", "pprint",
                "graph_size", "config", "shared", "Rop", "Lop"):
        return getattr(kgen, name)
    raise AttributeError(f"module 'kgen.tensor' has no attribute {name!r}")
