"""Theano's `theano.compile` names, for programs that import them from there:
`theano.compile.io.In`, `theano.compile.mode.Mode`, `theano.compile.function`.
The objects are kgen's own (kgen/function*.py)."""
from ..function import function  # noqa: F401
from ..function_io import In, Out, Param, UnusedInputError  # noqa: F401
from ..function_modes import DebugModeError, Mode  # noqa: F401
from . import io, mode  # noqa: F401
