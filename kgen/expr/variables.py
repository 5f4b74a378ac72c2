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


def _broadcastable_maker(pattern, dtype=None):
    """row (1, n) and col (n, 1): Theano's types with one broadcastable axis."""
    def make(name=None, dtype=dtype):
        return tensor(name, dtype, tuple(1 if b else None for b in pattern))
    return make


def _plural(make):
    """Theano's plural constructors: `dmatrices('a', 'b')` is one variable per
    name, `dmatrices(3)` three unnamed ones; one name (or 1) gives the variable
    itself, not a list, as in Theano."""
    def many(*names, dtype=None):
        kw = {} if dtype is None else {"dtype": dtype}
        if len(names) == 1 and isinstance(names[0], int) and not isinstance(names[0], bool):
            n = names[0]
            return make(**kw) if n == 1 else [make(**kw) for _ in range(n)]
        if len(names) == 1 and isinstance(names[0], (list, tuple)):
            names = tuple(names[0])
        if not names:
            raise KgenTypeError(f"{many.__name__}: give names or a count")
        return make(names[0], **kw) if len(names) == 1 else [make(n, **kw) for n in names]
    return many


scalar, vector, matrix = _maker(0), _maker(1), _maker(2)
tensor3, tensor4 = _maker(3), _maker(4)
row, col = _broadcastable_maker((True, False)), _broadcastable_maker((False, True))

_PREFIX = {"d": "float64", "f": "float32", "i": "int32", "l": "int64", "b": "bool"}
_KINDS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}
_PLURALS = {"scalar": "scalars", "vector": "vectors", "matrix": "matrices", "row": "rows",
            "col": "cols", "tensor3": "tensor3s", "tensor4": "tensor4s"}
theano_names = {"row": row, "col": col}
for _p, _dt in _PREFIX.items():
    for _k, _nd in _KINDS.items():
        theano_names[_p + _k] = _maker(_nd, _dt)
    theano_names[_p + "row"] = _broadcastable_maker((True, False), _dt)
    theano_names[_p + "col"] = _broadcastable_maker((False, True), _dt)
for _p in ("",) + tuple(_PREFIX):
    for _k, _many in _PLURALS.items():
        one = theano_names.get(_p + _k) or globals()[_k]
        theano_names[_p + _many] = _plural(one)
for _name, _fn in theano_names.items():
    _fn.__name__ = _fn.__qualname__ = _name


def shared(value, name=None, borrow=False, **_ignored):
    """A variable whose value persists between calls; `get_value`/`set_value`.
    borrow=True keeps `value` itself, without a copy, when it is already an
    aligned, C-contiguous, native-endian ndarray of a kgen dtype (otherwise a
    copy is kept, as without borrow): changing that array later changes the
    shared value, as in Theano. kgen itself never writes a shared value in
    place (updates replace it)."""
    if isinstance(value, Shared):
        raise KgenTypeError("shared: value is already a shared variable")
    return Shared(value, name, borrow=borrow)
