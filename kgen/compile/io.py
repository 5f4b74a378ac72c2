"""`theano.compile.io`: In, Out."""
from ..function_io import In, Out  # noqa: F401
