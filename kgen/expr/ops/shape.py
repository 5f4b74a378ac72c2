"""Shape primitives: reshape, dimshuffle, basic indexing, concatenation,
arange, shape access, and the runtime-shaped helpers gradients need.

Most of these are views in the generated C (strides only, no copy).
"""
import numpy as np

from ...errors import KgenIndexError, KgenTypeError, ShapeError
from ..op import Op
from ..types import TensorType, broadcast_shapes, format_shape


def _static_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


class Reshape(Op):
    """reshape(x, *dim_scalars, shape=...): `shape` holds ints (-1 at most once)
    and None where the size comes from the next symbolic int input."""

    def infer(self, inputs, attrs):
        x, dims = inputs[0], inputs[1:]
        shape = attrs["shape"]
        if sum(d == -1 for d in shape if d is not None) > 1:
            raise ShapeError(f"reshape: only one -1 allowed, got {shape}")
        if sum(d is None for d in shape) != len(dims):
            raise KgenTypeError("reshape: symbolic dims and inputs disagree")
        for d in dims:
            if d.ndim != 0 or d.dtype not in ("int32", "int64"):
                raise KgenTypeError(f"reshape: symbolic dims must be int scalars, got {d.type}")
        known = [d for d in x.type.shape]
        total = None if None in known else int(np.prod(known, dtype=np.int64))
        out = [None if d is None else d for d in shape]
        if -1 in out:
            rest = [d for d in out if d not in (-1, None)]
            if total is not None and None not in out:
                prod = int(np.prod(rest, dtype=np.int64))
                if prod == 0 or total % prod:
                    raise ShapeError(f"reshape: cannot reshape {format_shape(x.type.shape)} "
                                     f"into {format_shape(shape)}")
                out[out.index(-1)] = total // prod
            else:
                out[out.index(-1)] = None
        elif total is not None and None not in out and int(np.prod(out, dtype=np.int64)) != total:
            raise ShapeError(f"reshape: cannot reshape {format_shape(x.type.shape)} "
                             f"(size {total}) into {format_shape(shape)}")
        return TensorType(x.dtype, tuple(out))

    def impl(self, arrays, attrs):
        x, dims = np.asarray(arrays[0]), iter(arrays[1:])
        shape = tuple(int(next(dims)) if d is None else d for d in attrs["shape"])
        try:
            return np.reshape(x, shape).copy()
        except ValueError as exc:
            raise ShapeError(f"reshape: cannot reshape {x.shape} into {shape}") from exc


def _reshape_grad(n, g):
    from .api import reshape
    x = n.inputs[0]
    return [reshape(g, x.shape)] + [None] * (len(n.inputs) - 1)


reshape = Reshape("reshape", vjp_rule=_reshape_grad,
                  reads=(0,))  # the symbolic sizes are shape-phase ints


class DimShuffle(Op):
    """Theano's dimshuffle: `pattern` lists input axes in their new order and
    'x' for new broadcastable axes; input axes left out must have length 1."""

    def prepare(self, inputs, attrs):
        (x,) = inputs
        pattern = tuple(p if p == "x" else int(p) for p in attrs["pattern"])
        axes = [p for p in pattern if p != "x"]
        if len(set(axes)) != len(axes) or any(not 0 <= a < x.ndim for a in axes):
            raise ShapeError(f"dimshuffle: bad pattern {pattern} for a {x.ndim}-d input")
        for a in range(x.ndim):
            if a not in axes and x.type.shape[a] not in (1, None):
                raise ShapeError(f"dimshuffle: cannot drop axis {a} of length "
                                 f"{x.type.shape[a]} in shape {format_shape(x.type.shape)}")
        return inputs, {"pattern": pattern}

    def infer(self, inputs, attrs):
        x = inputs[0]
        shape = tuple(1 if p == "x" else x.type.shape[p] for p in attrs["pattern"])
        return TensorType(x.dtype, shape)

    def impl(self, arrays, attrs):
        x = np.asarray(arrays[0])
        pattern = attrs["pattern"]
        axes = [p for p in pattern if p != "x"]
        dropped = tuple(a for a in range(x.ndim) if a not in axes)
        for a in dropped:
            if x.shape[a] != 1:
                raise ShapeError(f"dimshuffle: cannot drop axis {a} of length {x.shape[a]} "
                                 f"in shape {x.shape}")
        y = np.squeeze(x, axis=dropped) if dropped else x
        kept = [a for a in range(x.ndim) if a not in dropped]
        y = np.transpose(y, [kept.index(a) for a in axes])
        return np.reshape(y, tuple(1 if p == "x" else x.shape[p] for p in pattern))


def _dimshuffle_grad(n, g):
    pattern = n.attrs[0][1]
    x = n.inputs[0]
    # drop the new 'x' axes from g, then put x's axes back where they were
    kept = [i for i, p in enumerate(pattern) if p != "x"]
    g = dimshuffle(g, pattern=tuple(kept)) if len(kept) != len(pattern) else g
    order = [p for p in pattern if p != "x"]
    inverse = tuple(order.index(a) if a in order else "x" for a in range(x.ndim))
    return [dimshuffle(g, pattern=inverse) if inverse != tuple(range(len(order))) else g]


dimshuffle = DimShuffle("dimshuffle", vjp_rule=_dimshuffle_grad)


SYM = "$"  # an index entry's bound that is the value of the next symbolic input


# the ops of the int expressions a shape phase evaluates (kgen/lower/shape_rules.py)
SIZE_OPS = ("shape_i", "add", "sub", "mul", "floor_div", "mod", "maximum", "minimum", "neg",
            "cast", "pow")


def shape_computable(v):
    """Whether the 0-d int `v` is known before any array is read: built from
    constants, 0-d int inputs (their values), shapes and SIZE_OPS (an integer
    exponent of pow must be a constant)."""
    from ..node import Constant
    stack, seen = [v], set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.op is None:
            if not isinstance(n, Constant) and not (
                    n.ndim == 0 and n.dtype in ("int32", "int64")):
                return False
            continue
        if n.ndim != 0 or n.op.name not in SIZE_OPS:
            return False
        if n.op.name == "shape_i":
            continue  # a shape, whatever its array holds
        if n.op.name == "pow" and not isinstance(n.inputs[1], Constant):
            return False
        stack.extend(n.inputs)
    return True


def _is_int_scalar(v):
    return v.ndim == 0 and (v.dtype.startswith("int") or v.dtype.startswith("uint"))


class Subtensor(Op):
    """Basic indexing with ints, slices and newaxis.

    `index` entries: ('i', k) an integer, ('s', start, stop, step) a slice,
    ('n',) a new axis. Missing trailing axes are full slices. A bound or an
    integer k may be SYM ("$"): the value of the next symbolic input (a 0-d
    int expression, e.g. i * bs with i an iscalar), read in the shape phase.
    """

    def infer(self, inputs, attrs):
        x, syms = inputs[0], inputs[1:]
        wanted = sum(p == SYM for e in attrs["index"] for p in e[1:])
        if wanted != len(syms):
            raise KgenTypeError("subtensor: symbolic bounds and inputs disagree")
        for v in syms:
            if not _is_int_scalar(v):
                raise KgenTypeError(f"subtensor: symbolic indices and slice bounds must be int "
                                    f"scalars, got {v.type}")
        shape, axis = [], 0
        for entry in attrs["index"]:
            if entry[0] == "n":
                shape.append(1)
                continue
            if axis >= x.ndim:
                raise KgenIndexError(f"subtensor: too many indices for a {x.ndim}-d input")
            d = x.type.shape[axis]
            if entry[0] == "i":
                if entry[1] != SYM and d is not None and not -d <= entry[1] < d:
                    raise KgenIndexError(f"subtensor: index {entry[1]} is out of bounds for axis "
                                     f"{axis} with size {d} (shape {format_shape(x.type.shape)})")
            else:
                if entry[3] == 0:
                    raise ShapeError("subtensor: slice step cannot be zero")
                if d is None or SYM in entry[1:]:
                    shape.append(None)
                else:
                    shape.append(len(range(*slice(*entry[1:]).indices(d))))
            axis += 1
        shape.extend(x.type.shape[axis:])
        return TensorType(x.dtype, tuple(shape))

    def impl(self, arrays, attrs):
        x = np.asarray(arrays[0])
        index = to_numpy_index(attrs["index"], arrays[1:])
        try:
            return np.asarray(x[index]).copy()
        except IndexError as exc:  # an integer index out of range, as NumPy says
            raise KgenIndexError(f"subtensor: {exc} (shape {x.shape})") from None


def to_numpy_index(index, values=()):
    """The NumPy index of `index` entries, SYM bounds taken from `values`."""
    vals = iter(values)

    def get(p):
        return int(np.asarray(next(vals))) if p == SYM else p

    out = []
    for e in index:
        if e[0] == "i":
            out.append(get(e[1]))
        elif e[0] == "s":
            start, stop, step = (get(p) for p in e[1:])
            if step == 0:
                raise ShapeError("subtensor: slice step cannot be zero")
            out.append(slice(start, stop, step))
        else:
            out.append(None)
    return tuple(out)


class SubtensorGrad(Op):
    """zeros shaped like x, with g written at x[index] (the gradient of indexing);
    inputs x, g, then the symbolic bounds of `index` (as subtensor's)."""

    def infer(self, inputs, attrs):
        x, g = inputs[:2]
        return TensorType(g.dtype, x.type.shape)

    def impl(self, arrays, attrs):
        x, g = np.asarray(arrays[0]), np.asarray(arrays[1])
        out = np.zeros(x.shape, g.dtype)
        out[to_numpy_index(attrs["index"], arrays[2:])] = g
        return out


subtensor_grad = SubtensorGrad("subtensor_grad", vjp_rule=lambda n, g: [
    None, subtensor(g, *n.inputs[2:], index=n.attr("index"))] + [None] * (len(n.inputs) - 2),
    reads=(1,))  # x lends its shape only (zeros, then g); the bounds are shape-phase ints
subtensor = Subtensor("subtensor", vjp_rule=lambda n, g: [
    subtensor_grad(n.inputs[0], g, *n.inputs[1:], index=n.attr("index"))]
    + [None] * (len(n.inputs) - 1),
    reads=(0,),  # the bounds are shape-phase ints
    pretty=lambda n: index_format(n), precedence=50)  # binds like Python's x[...]


class SpecifyShape(Op):
    """x, with its static shape refined to `shape` (ints, None = unknown); the
    compiled code checks the run-time shape before computing anything."""

    def infer(self, inputs, attrs):
        (x,) = inputs
        shape = attrs["shape"]
        label = attrs.get("label", "specify_shape")  # the operation the user wrote (conv2d)
        if len(shape) != x.ndim or any(
                d is not None and k is not None and d != k for d, k in zip(shape, x.type.shape)):
            raise ShapeError(f"{label}: shape {format_shape(shape)} does not fit an input "
                             f"of shape {format_shape(x.type.shape)}")
        return TensorType(x.dtype, tuple(k if d is None else d
                                         for d, k in zip(shape, x.type.shape)))

    def impl(self, arrays, attrs):
        x = np.asarray(arrays[0])
        shape = attrs["shape"]
        if x.ndim != len(shape) or any(d is not None and d != k for d, k in zip(shape, x.shape)):
            raise ShapeError(f"{attrs.get('label', 'specify_shape')}: input of shape {x.shape} does not have "
                             f"shape {format_shape(shape)}")
        return x.copy()


specify_shape = SpecifyShape("specify_shape", vjp_rule=lambda n, g: [g])


class Concatenate(Op):
    def infer(self, inputs, attrs):
        axis = attrs["axis"]
        if not inputs:
            raise KgenTypeError("concatenate: needs at least one array")
        nd = inputs[0].ndim
        shapes = [x.type.shape for x in inputs]
        if any(x.ndim != nd for x in inputs) or not 0 <= axis < max(nd, 1) or nd == 0:
            raise ShapeError(f"concatenate: inputs of shapes {', '.join(map(format_shape, shapes))} "
                             f"cannot be joined on axis {axis}")
        out = []
        for a in range(nd):
            dims = [s[a] for s in shapes]
            if a == axis:
                out.append(None if None in dims else sum(dims))
            else:
                known = {d for d in dims if d is not None}
                if len(known) > 1:
                    raise ShapeError(
                        f"concatenate: shapes {', '.join(map(format_shape, shapes))} differ "
                        f"on axis {a}")
                out.append(known.pop() if known else None)
        from .elementwise import add
        dtype = inputs[0].dtype
        for x in inputs[1:]:
            dtype = add.loop_dtypes([_Probe(dtype), x])[1] if dtype != x.dtype else dtype
        return TensorType(dtype, tuple(out))

    def impl(self, arrays, attrs):
        return np.concatenate([np.asarray(a) for a in arrays], axis=attrs["axis"]) \
            .astype(self._dtype_of(arrays), copy=False)

    @staticmethod
    def _dtype_of(arrays):
        return np.result_type(*arrays)


class _Probe:
    """Stands in for a variable of a dtype during dtype resolution."""

    def __init__(self, dtype):
        self.dtype = dtype


concatenate = Concatenate("concatenate", vjp_rule=lambda n, g: [
    split_part(g, *n.inputs, axis=n.attr("axis"), part=k) for k in range(len(n.inputs))])


class SplitPart(Op):
    """split_part(g, *parts, axis, part): the slice of g that came from parts[part]
    in a concatenate (the sizes are read at run time)."""

    def infer(self, inputs, attrs):
        g, parts = inputs[0], inputs[1:]
        return TensorType(g.dtype, tuple(
            d if a != attrs["axis"] else parts[attrs["part"]].type.shape[a]
            for a, d in enumerate(g.type.shape)))

    def impl(self, arrays, attrs):
        g, parts, axis = np.asarray(arrays[0]), arrays[1:], attrs["axis"]
        start = sum(np.shape(p)[axis] for p in parts[:attrs["part"]])
        stop = start + np.shape(parts[attrs["part"]])[axis]
        return np.take(g, np.arange(start, stop), axis=axis)


def _split_part_grad(n, g):
    # g in its part's place, zeros in the others': a concatenate again
    parts, part, axis = n.inputs[1:], n.attr("part"), n.attr("axis")
    pieces = [g if k == part else second(p, np.zeros((), g.dtype)) for k, p in enumerate(parts)]
    return [concatenate(*pieces, axis=axis)] + [None] * len(parts)


split_part = SplitPart("split_part", vjp_rule=_split_part_grad,
                       reads=(0,))  # the parts lend their sizes only


class ARange(Op):
    """arange(start, stop, step) over int or float scalars, NumPy's dtype. With
    size="alloc" (zeros, ones, alloc: a model of the size `stop`), a negative
    stop is NumPy's "negative dimensions" error rather than an empty range."""

    def infer(self, inputs, attrs):
        for v in inputs:
            if v.ndim != 0:
                raise KgenTypeError(f"arange: start, stop and step must be scalars, got {v.type}")
        if any(v.dtype == "bool" for v in inputs):
            raise KgenTypeError("arange: bool bounds are not supported")
        # NumPy reads the bounds as Python numbers, whatever their dtype:
        # float64 if any is a float, else int64 (np.arange(np.int32(3)) is int64)
        dtype = "float64" if any(v.dtype in ("float32", "float64") for v in inputs) else "int64"
        from ..node import Constant
        if isinstance(inputs[2], Constant) and inputs[2].value.item() == 0:
            raise ShapeError("arange: step must not be zero")
        if all(isinstance(v, Constant) for v in inputs):
            n = len(np.arange(*(v.value.item() for v in inputs)))
        else:
            n = None
        return TensorType(dtype, (n,))

    def impl(self, arrays, attrs):
        start, stop, step = (np.asarray(a).item() for a in arrays)
        if attrs.get("size") and stop < 0:  # alloc's model of a size: NumPy's error
            raise ShapeError(f"{attrs['size']}: negative dimensions are not allowed "
                             f"(got {stop})")
        if step == 0:
            raise ShapeError("arange: step must not be zero")
        return np.arange(start, stop, step)


arange = ARange("arange", vjp_rule="zero",
                reads=())  # start, stop and step are shape-phase ints


class ShapeI(Op):
    """x.shape[axis] as an int64 scalar."""

    def infer(self, inputs, attrs):
        return TensorType("int64", ())

    def impl(self, arrays, attrs):
        return np.asarray(np.shape(arrays[0])[attrs["axis"]], dtype="int64")


shape_i = ShapeI("shape_i", vjp_rule="zero", reads=(),  # x's shape, not its values
                 pretty=lambda n: "{0}.shape[%d]" % n.attr("axis"), precedence=50)


class SumTo(Op):
    """sum_to(g, x): g summed down to x's run-time shape. Gradients of
    broadcasting use it where a static shape cannot say which axes broadcast."""

    def infer(self, inputs, attrs):
        g, x = inputs
        broadcast_shapes("sum_to", g.type.shape, x.type.shape)
        return TensorType(g.dtype, x.type.shape)

    def impl(self, arrays, attrs):
        g, x = np.asarray(arrays[0]), np.asarray(arrays[1])
        return sum_to_shape(g, x.shape)


def sum_to_shape(g, shape):
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(a for a, d in enumerate(shape) if d == 1 and g.shape[a] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


sum_to = SumTo("sum_to", vjp_rule=lambda n, g: [second(n.inputs[0], g), None],
               reads=(0,))  # x lends its shape only

from .elementwise import second  # noqa: E402  (used by the rule above)
from ..printing import index_format  # noqa: E402
