"""matmul (NumPy semantics, 1-D and 2-D operands and batches) and integer-array
indexing with its scatter-add gradient. dot and outer are compositions (api.py)."""
import numpy as np

from ...errors import KgenIndexError, KgenTypeError, ShapeError
from ..op import Op
from ..types import TensorType, broadcast_shapes, format_shape


class MatMul(Op):
    """a @ b. The attr `label` (absent: "matmul") is the operation the user
    wrote, e.g. "dot": every shape message, at build and at run time, names it."""

    def prepare(self, inputs, attrs):
        """Operands of different dtypes are cast to the result's (NumPy's
        promotion), so every backend multiplies one dtype: the GEMM step reads
        both operands as the output's type."""
        from .elementwise import cast, mul
        if len(inputs) == 2 and inputs[0].dtype != inputs[1].dtype:
            _, dtype = mul.loop_dtypes(inputs)
            inputs = [x if x.dtype == dtype else cast(x, dtype=dtype) for x in inputs]
        if attrs.get("label") == "matmul":
            attrs = {k: v for k, v in attrs.items() if k != "label"}
        return inputs, attrs

    def infer(self, inputs, attrs):
        a, b = inputs
        label = attrs.get("label", "matmul")
        sa, sb = a.type.shape, b.type.shape
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"{label}: operands must be at least 1-d, got shapes "
                             f"{format_shape(sa)} and {format_shape(sb)}")
        if (a.ndim == 1 and b.ndim > 2) or (b.ndim == 1 and a.ndim > 2):
            raise KgenTypeError(f"{label}: a 1-d operand with a batched (>2-d) one is not "
                                "supported; add an axis with dimshuffle")
        from .elementwise import mul
        _, dtype = mul.loop_dtypes(inputs)
        if dtype == "bool":
            raise KgenTypeError(f"{label}: bool operands are not supported; cast them first")
        ka = sa[-1]
        kb = sb[0] if b.ndim == 1 else sb[-2]
        if ka is not None and kb is not None and ka != kb:
            raise ShapeError(f"{label}: shapes {format_shape(sa)} and {format_shape(sb)} are "
                             f"not aligned: {ka} (dim {a.ndim - 1}) != {kb} "
                             f"(dim {0 if b.ndim == 1 else b.ndim - 2})")
        rows = sa[-2:-1] if a.ndim >= 2 else ()
        cols = sb[-1:] if b.ndim >= 2 else ()
        try:
            batch = broadcast_shapes(label, sa[:-2], sb[:-2])
        except ShapeError:
            raise ShapeError(f"{label}: the batch axes of shapes {format_shape(sa)} and "
                             f"{format_shape(sb)} cannot be broadcast together") from None
        return TensorType(dtype, batch + rows + cols)

    def impl(self, arrays, attrs):
        a, b = np.asarray(arrays[0]), np.asarray(arrays[1])
        try:
            return np.matmul(a, b)
        except ValueError as exc:
            raise ShapeError(f"{attrs.get('label', 'matmul')}: shapes {a.shape} and {b.shape} "
                             f"are not aligned") from exc


def _matmul_grad(n, g):
    from .api import outer, swap_last
    a, b = n.inputs
    if a.ndim == 1 and b.ndim == 1:   # (k) @ (k) -> ()
        return [g * b, g * a]
    if a.ndim == 1:                   # (k) @ (k, m) -> (m)
        return [matmul(b, g), outer(a, g)]
    if b.ndim == 1:                   # (n, k) @ (k) -> (n)
        return [outer(g, b), matmul(swap_last(a), g)]
    ga, gb = matmul(g, swap_last(b)), matmul(swap_last(a), g)
    if a.ndim > 2 or b.ndim > 2:  # batch axes may have broadcast: sum them back
        from ...derive.broadcast import unbroadcast
        ga, gb = unbroadcast(ga, a), unbroadcast(gb, b)
    return [ga, gb]


matmul = MatMul("matmul", vjp_rule=_matmul_grad, pretty="{0} @ {1}", precedence=20)


class Gather(Op):
    """x[i0, i1, ...] with integer arrays on the leading axes (NumPy's
    advanced indexing; negative indices wrap, out-of-range is an error)."""

    def infer(self, inputs, attrs):
        x, idx = inputs[0], inputs[1:]
        if len(idx) > x.ndim:
            raise KgenIndexError(f"gather: {len(idx)} index arrays for a {x.ndim}-d input "
                                 f"(too many indices)")
        for i in idx:
            if i.dtype not in ("int32", "int64"):
                raise KgenTypeError(f"gather: index arrays must be int32/int64, got {i.dtype}")
        lead = broadcast_shapes("gather", *(i.type.shape for i in idx))
        return TensorType(x.dtype, lead + x.type.shape[len(idx):])

    def impl(self, arrays, attrs):
        x = np.asarray(arrays[0])
        try:
            return x[tuple(np.asarray(i) for i in arrays[1:])]
        except IndexError as exc:  # as the compiled gather: an IndexError
            raise KgenIndexError(f"gather: {exc} (shape {x.shape})") from None


class ScatterAdd(Op):
    """scatter_add(x, g, *idx): a copy of x with g added at x[idx]; repeated
    indices accumulate (np.add.at). The gradient of gather."""

    def infer(self, inputs, attrs):
        return inputs[0].type

    def impl(self, arrays, attrs):
        out = np.array(arrays[0], copy=True)
        try:
            np.add.at(out, tuple(np.asarray(i) for i in arrays[2:]), arrays[1])
        except IndexError as exc:
            raise ShapeError(f"scatter_add: {exc} (shape {out.shape})") from None
        return out


def _gather_grad(n, g):
    from .elementwise import second
    x, idx = n.inputs[0], n.inputs[1:]
    zeros = second(x, np.zeros((), g.dtype))
    return [scatter_add(zeros, g, *idx)] + [None] * len(idx)


def _gather_format(n):
    from ..printing import index_format
    return index_format(n)


gather = Gather("gather", vjp_rule=_gather_grad, pretty=_gather_format, precedence=50)


def _scatter_add_grad(n, g):
    # the added values may have broadcast against the indexed positions
    from ...derive.broadcast import unbroadcast
    values, idx = n.inputs[1], n.inputs[2:]
    return [g, unbroadcast(gather(g, *idx), values)] + [None] * len(idx)


scatter_add = ScatterAdd("scatter_add", vjp_rule=_scatter_add_grad)
