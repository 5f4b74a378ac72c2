"""The graph node: one small immutable, hash-consed object per value.

A node is a leaf (an Input, a Shared variable or a Constant) or an Apply of a
primitive op to input nodes with hashable attributes. Apply nodes are interned:
building the same op on the same inputs with the same attributes returns the
existing object, so `(x + y) is (x + y)` and common subexpressions are shared
for free. Leaves keep their own identity, except constants, which are interned
by value so that `x + 1` is also hash-consed.
"""
import itertools
import weakref

import numpy as np

from ..errors import KgenTypeError
from ..runtime import core
from .types import TensorType, check_dtype

# key -> weak reference to the node interned under it; the entry goes when the
# node does. (What a WeakValueDictionary keeps, without its Python-level get
# and set: building and rewriting graphs look up a key for every node.)
_interned = {}


def _forget(ref, table=_interned):
    """A node died: drop its entry (unless a new node holds the key since)."""
    if table.get(ref.key) is ref:
        del table[ref.key]


def interned(key):
    """The live node interned under `key`, or None."""
    ref = _interned.get(key)
    return None if ref is None else ref()


def _intern(key, node):
    _interned[key] = weakref.KeyedRef(node, _forget, key)
    return node
_leaf_ids = itertools.count()


class Variable:
    """A symbolic tensor: what users build expressions from.

    `op` is None for leaves; for Apply nodes it is the primitive's record and
    `inputs`/`attrs` its arguments. `==` is identity, never elementwise.
    """

    __slots__ = ("type", "op", "inputs", "attrs", "name", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to our reflected operators

    # ---- type ---------------------------------------------------------
    @property
    def dtype(self):
        return self.type.dtype

    @property
    def ndim(self):
        return len(self.type.shape)

    @property
    def broadcastable(self):
        """Theano's pattern: True on the axes whose static length is 1."""
        return self.type.broadcastable

    @property
    def shape(self):
        from .shape_vector import ShapeVector
        return ShapeVector(self)

    @property
    def size(self):
        from . import ops
        return ops.size(self)

    def attr(self, key, default=None):
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    def __repr__(self):
        from .printing import short_repr
        return short_repr(self)

    def __iter__(self):
        raise TypeError("kgen variables are not iterable; index them instead")

    def __len__(self):
        raise TypeError("len() of a kgen variable is not static; use x.shape[0]")

    def __bool__(self):
        # As in Theano, a variable is an object and so truthy (`if not W:` tests
        # whether W was given); its *value* is symbolic: use kg.where / ifelse.
        return True

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    # ---- pickling: see _graph_records ------------------------------------
    def __reduce__(self):
        return (_rebuild_graph, (_graph_records(self),))

    # ---- NumPy reference evaluation -------------------------------------
    def eval(self, values=None):
        """Compute this expression with the NumPy reference evaluator."""
        from .evaluate import evaluate
        return evaluate([self], values or {})[0]


class Input(Variable):
    """A symbolic input: a function argument."""

    __slots__ = ("uid",)

    def __init__(self, type, name=None):
        self.type, self.op, self.inputs, self.attrs = type, None, (), ()
        self.name, self.uid = name, next(_leaf_ids)

    def __reduce__(self):
        return (Input, (self.type, self.name))


class Shared(Variable):
    """A variable whose value persists between calls (model parameters).

    The value is kept native-endian, aligned and C-contiguous (what C reads), and is
    never written in place: set_value and updates replace it under `_lock`, the
    lock every call touching it takes (kgen/runtime/core.py).
    """

    # default_update: an expression kg.function adds to the updates of any
    # function using this variable (Theano's; random streams set it)
    __slots__ = ("uid", "_value", "_device", "_lock", "default_update")

    def __init__(self, value, name=None, borrow=False):
        value = np.asarray(value)
        dtype = check_dtype(value.dtype, f"shared {name or ''}".strip())
        # the shape may change through set_value, so only ndim is static
        self.type = TensorType(dtype, (None,) * value.ndim)
        self.op, self.inputs, self.attrs = None, (), ()
        self.name, self.uid = name, next(_leaf_ids)
        self._value = core.stored_value(value, np.dtype(dtype), value.ndim,
                                        f"shared {name or ''}".strip(), borrow=borrow)
        self._device, self._lock = None, core.new_lock()
        self.default_update = None

    def __reduce__(self):
        # the value as get_value() gives it (copied back from a GPU); a new identity
        return (_unpickle_shared, (self.get_value(), self.name, self.dtype))

    def get_value(self, borrow=False, return_internal_type=False):
        """A copy of the current value (copied back from the GPU if it lives there).
        borrow=True returns the array kgen holds, without a copy (as Theano does):
        kgen never writes it in place, later updates replace it, so it keeps the
        value of this moment unless the caller changes it. (A value living on the
        GPU is copied back either way.) return_internal_type is accepted: the
        internal type is a NumPy array."""
        if self._device is not None:
            return self._device.get_value(self)
        return self._value if borrow else self._value.copy()

    def set_value(self, value, borrow=False):
        """Replace the value: same ndim, a dtype that casts safely to ours (a
        list's Python numbers are weak, as in a call: [1, 2] fits float32).
        borrow=True keeps `value` itself when it is already an aligned,
        C-contiguous, native-endian ndarray of our dtype (else a copy)."""
        label = f"set_value({self.name or 'shared variable'})"
        if isinstance(value, (list, tuple)):  # Python numbers are weak, as in a call
            value = core.coerce_value(np.dtype(self.dtype), (None,) * self.ndim, value, label)
        new = core.stored_value(value, np.dtype(self.dtype), self.ndim, label, borrow=borrow)
        with self._lock:  # never between another call's read and its write
            if self._device is not None:
                self._device.set_value(self, new)
            self._value = new

    def _set_value_unchecked(self, value):
        """Backends write update results here (already the right dtype/ndim)."""
        self._value = value


class Constant(Variable):
    """A literal array. `weak` marks a Python scalar (NEP 50: it adapts to the
    other operand's dtype)."""

    __slots__ = ("value", "weak")

    def __init__(self, value, weak):
        self.value, self.weak = value, weak
        self.type = TensorType(value.dtype.name, value.shape)
        self.op, self.inputs, self.attrs, self.name = None, (), (), None

    def __reduce__(self):  # re-interned by value: `x + 1` still meets its twin
        return (_intern_constant, (self.value, self.weak))

    @property
    def promote_as(self):
        """What NumPy's dtype resolution should see for this operand."""
        if self.weak:
            return {"float64": float, "int64": int}.get(self.dtype, self.value.dtype)
        return self.value.dtype


class Apply(Variable):
    """One op applied to input nodes."""

    __slots__ = ()


def constant(value, dtype=None, *, weak=False):
    """An interned constant: the same value and dtype give the same node."""
    if isinstance(value, Variable):
        if dtype is not None and value.dtype != check_dtype(dtype):
            from . import ops
            return ops.cast(value, dtype)
        return value
    if dtype is None and isinstance(value, (bool, np.bool_)):
        arr = np.array(bool(value))
    elif dtype is None and isinstance(value, (int, float)) \
            and not isinstance(value, (bool, np.generic)):  # NumPy scalars are strong (NEP 50)
        weak = weak or True
        if isinstance(value, int) and not (-2**63 <= value < 2**63):
            raise KgenTypeError(f"integer constant {value} does not fit in int64")
        arr = np.array(value, dtype="int64" if isinstance(value, int) else "float64")
    else:
        weak = False
        arr = np.array(value, dtype=None if dtype is None else check_dtype(dtype))
        if arr.dtype.kind not in "biuf":
            raise KgenTypeError(f"cannot make a constant from {type(value).__name__} {value!r}")
        if arr.dtype.name not in ("bool", "int32", "int64", "float32", "float64"):
            # NumPy picked a dtype kgen does not compile (int8, float16...): widen it
            arr = arr.astype({"b": "bool", "i": "int64", "u": "int64", "f": "float64"}[arr.dtype.kind])
    return _intern_constant(arr, weak)


def _intern_constant(arr, weak):
    """The interned Constant holding (a read-only C-ordered copy of) `arr`."""
    arr = np.array(arr, order="C", copy=True)
    arr.flags.writeable = False
    key = ("const", arr.dtype.name, arr.shape, arr.tobytes(), weak)
    node = interned(key)
    if node is None:
        node = _intern(key, Constant(arr, weak))
    return node


def as_variable(x):
    """Wrap Python numbers and arrays as constants; pass variables through."""
    if isinstance(x, Variable):
        return x
    if isinstance(x, (bool, int, float, np.ndarray, np.generic, list, tuple)):
        return constant(x)
    from .shape_vector import ShapeVector
    if isinstance(x, ShapeVector):  # x.shape used as a value: Theano's int64 vector
        return x.as_vector()
    raise KgenTypeError(f"cannot use a {type(x).__name__} in a kgen expression: {x!r}")


def make_apply(op, inputs, attrs, type_):
    """Return the interned Apply node for (op, inputs, attrs), creating it once."""
    key = (op.name, tuple(map(id, inputs)), attrs)
    ref = _interned.get(key)  # interned(key), inlined: this runs for every node built
    node = None if ref is None else ref()
    if node is None:
        node = Apply.__new__(Apply)
        node.type, node.op, node.inputs, node.attrs, node.name = type_, op, tuple(inputs), attrs, None
        _intern(key, node)
    return node


# ---- pickling -------------------------------------------------------------------
# pickle recurses into the objects it meets, so a graph pickled node by node
# would overflow the stack on a deep chain. An expression pickles instead as one
# flat list, in topological order: each leaf as itself (so the pickler's memo keeps
# one object per leaf across everything in the same pickle) and each op node as
# a record (op, input positions, attrs, type, name). Unpickling rebuilds the op
# nodes through make_apply, so they are interned again: `(x + y) is (x + y)`
# holds between unpickled nodes and new ones built on the unpickled leaves.

def _graph_records(root):
    from .graph import toposort
    position, records = {}, []
    for node in toposort([root]):
        position[id(node)] = len(records)
        if node.op is None:
            records.append(node)
        else:
            records.append((node.op, tuple(position[id(i)] for i in node.inputs), node.attrs,
                            node.type, node.name))
    return records


def _rebuild_graph(records):
    built = []
    for record in records:
        if isinstance(record, Variable):
            built.append(record)
            continue
        op, inputs, attrs, type_, name = record
        node = make_apply(op, [built[i] for i in inputs], attrs, type_)
        if name is not None and node.name is None:
            node.name = name
        built.append(node)
    return built[-1]


def _unpickle_shared(value, name, dtype):
    return Shared(np.asarray(value, dtype=dtype), name)
