"""`theano.compile.io`: In."""
from ..function_io import In  # noqa: F401
