"""Variable constructors: kg.scalar/vector/matrix..., Theano's prefixed
names (dmatrix, fvector, ivector...), T.tensor, kg.shared and kg.constant."""
from ..config import config
from ..errors import KgenTypeError
from .node import Input, Shared, constant  # noqa: F401  (re-exported)
from .types import TensorType, check_dtype


def tensor(name=None, dtype=None, shape=None, ndim=None):
    """A symbolic input of the given dtype and static shape (None = unknown)."""
    if isinstance(name, (tuple, list)) and shape is None:  # tensor(shape) convenience
        name, shape = None, name
    if shape is None:
        shape = (None,) * (ndim or 0)
    shape = tuple(None if d is None else int(d) for d in shape)
    if any(d is not None and d < 0 for d in shape):
        raise KgenTypeError(f"tensor {name!r}: negative static dimension in {shape}")
    if ndim is not None and ndim != len(shape):
        raise KgenTypeError(f"tensor {name!r}: ndim={ndim} but shape has {len(shape)} axes")
    dtype = check_dtype(dtype or config.floatX, f"tensor {name!r}")
    return Input(TensorType(dtype, shape), name)


def _maker(ndim, dtype=None):
    def make(name=None, dtype=dtype, shape=None):
        return tensor(name, dtype, shape if shape is not None else (None,) * ndim, ndim=ndim)
    return make


scalar, vector, matrix = _maker(0), _maker(1), _maker(2)
tensor3, tensor4 = _maker(3), _maker(4)

_PREFIX = {"d": "float64", "f": "float32", "i": "int32", "l": "int64", "b": "bool"}
_KINDS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}
theano_names = {}
for _p, _dt in _PREFIX.items():
    for _k, _nd in _KINDS.items():
        theano_names[_p + _k] = _maker(_nd, _dt)
        theano_names[_p + _k].__name__ = _p + _k


def shared(value, name=None, **_ignored):
    """A variable whose value persists between calls; `get_value`/`set_value`."""
    if isinstance(value, Shared):
        raise KgenTypeError("shared: value is already a shared variable")
    return Shared(value, name)
