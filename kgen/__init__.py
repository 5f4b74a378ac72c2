"""kgen: symbolic tensor expressions, differentiated and simplified, compiled
ahead of time to standalone C and CUDA.

    import kgen as kg
    x = kg.vector('x'); f = kg.function([x], kg.exp(x).sum())
"""
__version__ = "0.1.0"

import os as _os

# Idle OpenMP workers spin a short while before they sleep, unless the user
# chose otherwise: waking a sleeping worker took ~70 us per parallel loop on a
# 2-core VM (the minibatch step: 445 -> 262 us with spinning), and a longer
# spin starves other thread pools in the process (JAX's, NumPy's OpenBLAS).
# Kernels run their products on the same OpenMP team (kg_blas.h), so a
# kernel's loops and products do not take each other's cores. Read once, when
# libgomp is loaded.
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ.setdefault("GOMP_SPINCOUNT", "4000")

from .config import config  # noqa: F401
from .errors import (BackendUnavailableError, CompileError, CompilerNotFoundError,  # noqa: F401
                     DisconnectedInputError, KgenError, KgenIndexError, KgenTypeError,
                     ShapeError)
from .expr import methods as _methods  # noqa: F401  (installs operators on Variable)
from .expr.graph import check_graph, graph_inputs, graph_size, toposort  # noqa: F401
from .expr.clone import clone  # noqa: F401
from .expr.node import Constant, Input, Shared, Variable, constant  # noqa: F401
from .expr.ops import *  # noqa: F401,F403
from .expr.ops import abs, max, min, round, sum  # noqa: F401
from .expr.printing import pprint  # noqa: F401
from .expr.types import TensorType  # noqa: F401
from .expr.variables import (matrix, scalar, shared, tensor3, tensor4,  # noqa: F401
                             theano_names as _theano_names, vector)

globals().update(_theano_names)
from . import tensor  # noqa: E402,F401
from .derive import Lop, Rop, grad, hessian, jacobian, jvp  # noqa: E402,F401
from .function import Kernel, function, kernel  # noqa: E402,F401
from .function_io import In, Out, Param, UnusedInputError  # noqa: E402,F401
from .function_modes import DebugModeError, Mode  # noqa: E402,F401
# theano.compile, theano.gradient, theano.ifelse, theano.printing
from . import compile, gradient, ifelse, printing  # noqa: E402,F401
from . import scan_module  # noqa: E402,F401  (theano.scan_module)
from .scan_module import foldl, foldr, map, reduce, scan  # noqa: E402,F401,A004
from .printing import pp  # noqa: E402,F401
from .simplify import simplify  # noqa: E402,F401
from .tensor.shared_randomstreams import RandomStreams  # noqa: E402,F401
from . import sandbox  # noqa: E402,F401
