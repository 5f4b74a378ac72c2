"""`theano.compile.io`: In, Out, Param."""
from ..function_io import In, Out, Param  # noqa: F401
