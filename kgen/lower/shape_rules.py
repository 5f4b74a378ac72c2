"""The shape rules of the lowering: each op's run-time dims as shape-phase
Ints (statements with their checks), one method per op family."""
import numpy as np

from ..errors import KgenTypeError
from ..expr.node import Constant, Input
from ..expr.ops.shape import SYM
from .fusion import is_elementwise, is_reduction


class ShapeRules:
    """Mixed into the lowering: fills self.dims through self.ints."""

    def _node_dims(self, node):
        """The node's run-time dims; size arithmetic that overflows names the op,
        and so does a node whose element count does not fit in int64."""
        self.ints.where = node.op.name
        try:
            out = self._op_dims(node)
            self.ints.product(out, "size")
        finally:
            self.ints.where = None
        return out

    def _op_dims(self, node):
        op, ins = node.op.name, node.inputs
        dims = [self.dims[id(i)] for i in ins]
        if is_elementwise(node):
            return self._broadcast(node, dims)
        if is_reduction(node):
            axis, keep = node.attr("axis"), node.attr("keepdims")
            return [1 if a in axis else d for a, d in enumerate(dims[0])
                    if keep or a not in axis]
        fn = getattr(self, f"_dims_{op}", None)
        if fn is None:
            raise KgenTypeError(f"op {op} is not supported by the C backend yet")
        return fn(node, dims)

    def _shape_msg(self, opname, dims_list):
        return {"op": opname, "shapes": [list(d) for d in dims_list]}

    def _broadcast(self, node, dims_list):
        return self._broadcast_dims(node.op.name, dims_list, node.ndim)

    def _dims_matmul(self, node, dims):
        a, b = dims
        ka = a[-1]
        kb = b[0] if len(b) == 1 else b[-2]
        label = node.attr("label", "matmul")  # the operation the user wrote (dot)
        self.ints.require_eq(ka, kb, self._shape_msg(label, dims))
        batch = self._broadcast_dims(label, [a[:-2], b[:-2]], max(len(a), len(b)) - 2)
        rows = a[-2:-1] if len(a) >= 2 else []
        cols = b[-1:] if len(b) >= 2 else []
        return batch + rows + cols

    def _broadcast_dims(self, opname, dims_list, nd):
        out = []
        for axis in range(max(nd, 0)):
            acc = 1
            for d in dims_list:
                k = axis - nd + len(d)
                if k >= 0:
                    acc = self.ints.bcast(acc, d[k], f"{opname}_d{axis}",
                                          self._shape_msg(opname, dims_list))
            out.append(acc)
        return out

    def _dims_dimshuffle(self, node, dims):
        (d,) = dims
        pattern = node.attr("pattern")
        kept = [p for p in pattern if p != "x"]
        for a in range(len(d)):
            if a not in kept:
                self.ints.require_eq(d[a], 1, self._shape_msg("dimshuffle (dropping an axis)", [d]))
        return [1 if p == "x" else d[p] for p in pattern]

    def _dims_subtensor(self, node, dims):
        d = dims[0]
        out, axis, starts = [], 0, []
        first = 2 if node.op.name == "subtensor_grad" else 1
        syms = iter(node.inputs[first:])

        def bound(p):  # an int, None, or the shape-phase value of the next symbolic input
            return self._int_value(next(syms)) if p == SYM else p

        for entry in node.attr("index"):
            if entry[0] == "n":
                out.append(1)
                continue
            if entry[0] == "i":
                k = bound(entry[1])
                if isinstance(d[axis], int) and isinstance(k, int):
                    starts.append(k % d[axis] if d[axis] else 0)
                else:
                    starts.append(self.ints.emit(
                        "index", f"idx{axis}", d[axis], k,
                        msg=f"subtensor: index {k} is out of bounds for axis {axis} with size"
                        if isinstance(k, int) else
                        f"subtensor: an index is out of bounds for axis {axis} with size"))
            else:
                start, stop, step = (bound(p) for p in entry[1:])
                if all(v is None or isinstance(v, int) for v in (d[axis], start, stop, step)):
                    rng = range(*slice(start, stop, step).indices(d[axis]))
                    out.append(len(rng))
                    starts.append(rng.start if len(rng) else 0)
                else:
                    if not isinstance(step, int):
                        self.ints.check("nonzero", step, msg="subtensor: slice step cannot be zero")
                    length = self.ints.emit("slice_len", f"len{axis}", d[axis], start, stop, step)
                    out.append(length)
                    starts.append(self.ints.emit("slice_start", f"start{axis}", d[axis],
                                                 start, stop, step))
                self._steps.setdefault(id(node), []).append(step)
            axis += 1
        self._slices[id(node)] = starts
        return out + d[axis:]

    def _int_value(self, node):
        """The run-time value of an int scalar expression of shapes and of the
        values of 0-d int inputs (an Int of the shape phase)."""
        if isinstance(node, Constant):
            return int(node.value)
        if node.op is None and node.ndim == 0 and node.dtype.startswith(("int", "uint")):
            return self._value_arg(node)
        name = node.op.name if node.op is not None else None
        if name == "shape_i":
            return self.dims[id(node.inputs[0])][node.attr("axis")]
        if name in ("mul", "add", "sub", "floor_div", "mod", "maximum", "minimum") \
                and node.dtype.startswith(("int", "uint")):
            a, b = (self._int_value(i) for i in node.inputs)
            fn = {"floor_div": "floordiv"}.get(name, name)
            return getattr(self.ints, fn)(a, b)
        if name == "cast":  # of a whole number; sizes are int64: no wrapping
            return self._int_value(node.inputs[0])
        if name == "neg":
            return self.ints.sub(0, self._int_value(node.inputs[0]))
        if name == "pow" and node.dtype.startswith("int"):
            # the simplifier's form of x.shape[0] * x.shape[0]: a constant exponent
            k = node.inputs[1]
            if isinstance(k, Constant) and k.ndim == 0 and k.dtype.startswith("int") \
                    and int(k.value) >= 0:
                return self.ints.pow(self._int_value(node.inputs[0]), int(k.value))
        what = f"input {node.name!r}" if isinstance(node, Input) else \
            (node.op.name if node.op else repr(node))
        raise KgenTypeError(
            f"kernel {self.label!r}: a size here depends on the value of {what}; compiled "
            f"kernels size their arrays from shapes and the values of 0-d int inputs, combined by "
            f"+, -, *, //, %, neg, maximum, minimum and int casts (e.g. X[i * bs:(i + 1) * bs] "
            f"with i an iscalar, or arange(x.shape[0]))")

    def _value_arg(self, var):
        """The shape-phase Int holding the value of the 0-d int input or shared
        variable `var`: an int64_t argument of NAME_shapes and NAME."""
        for p in self.params:
            if p.var is var:
                if p.value_arg is None:
                    p.value_arg = self.ints.fresh(f"{p.name}_value")
                return p.value_arg
        raise AssertionError(f"{var!r} is not a parameter")

    def _dims_reshape(self, node, dims):
        src = dims[0]
        syms = iter(node.inputs[1:])
        shape = [self._int_value(next(syms)) if d is None else d for d in node.attr("shape")]
        total = self.ints.product(src, "size")
        if -1 in shape:
            known = self.ints.product([d for d in shape if d != -1], "size")
            rest = total if known == 1 else self.ints.emit(
                "div_exact", "rest", total, known, msg=self._shape_msg("reshape", [src, shape]))
            shape = [rest if d == -1 else d for d in shape]
        else:
            self.ints.require_eq(total, self.ints.product(shape, "size"),
                                 self._shape_msg("reshape", [src, shape]))
        return shape

    def _dims_split_part(self, node, dims):
        axis = node.attr("axis")
        return [dims[1 + node.attr("part")][a] if a == axis else d for a, d in enumerate(dims[0])]

    def _dims_concatenate(self, node, dims):
        axis = node.attr("axis")
        out = list(dims[0])
        for d in dims[1:]:
            for a in range(len(out)):
                if a == axis:
                    out[a] = self.ints.add(out[a], d[a], f"cat_d{a}")
                else:
                    self.ints.require_eq(out[a], d[a], self._shape_msg("concatenate", dims))
        return out

    def _dims_gather(self, node, dims):
        k = len(node.inputs) - 1
        lead = self._broadcast_dims("gather", dims[1:], max(len(d) for d in dims[1:]))
        for i in node.inputs[1:]:
            self.features.add("gather")
        return lead + dims[0][k:]

    def _dims_scatter_add(self, node, dims):
        k = len(node.inputs) - 2
        lead = self._broadcast_dims("scatter_add", dims[2:], max(len(d) for d in dims[2:]))
        expected = lead + dims[0][k:]
        g = dims[1]
        for a, (e, d) in enumerate(zip(expected[-len(g):] if g else [], g)):
            self.ints.bcast(e, d, "sa", self._shape_msg("scatter_add", [expected, g]))
        return list(dims[0])

    def _dims_subtensor_grad(self, node, dims):
        self._dims_subtensor(node, dims[:1])  # records the slice starts (and checks)
        return list(dims[0])

    def _dims_sum_to(self, node, dims):
        g, x = dims
        for a in range(len(x)):
            self.ints.bcast(g[len(g) - len(x) + a], x[a], "st",
                            self._shape_msg("sum_to", [g, x]))
        return list(x)

    def _dims_arange(self, node, dims):
        vals = [self._arange_arg(i) for i in node.inputs]
        if node.attr("size", None) and not isinstance(vals[1], (int, float)):
            self.ints.check("nonneg", vals[1], msg=f"{node.attr('size')}: negative dimensions "
                                                   f"are not allowed, got")
        if all(isinstance(v, (int, float)) for v in vals):
            return [len(np.arange(*vals))]
        return [self.ints.emit("arange_len", "n_range", *vals, msg=self._shape_msg("arange", []))]

    def _arange_arg(self, node):
        if isinstance(node, Constant):
            return node.value.item()
        return self._int_value(node)

    def _dims_shape_i(self, node, dims):
        return []

    def _dims_specify_shape(self, node, dims):
        (d,) = dims
        want = node.attr("shape")
        msg = self._shape_msg(node.attr("label", "specify_shape"),
                              [d, [k if w is None else w for k, w in zip(d, want)]])
        for k, w in zip(d, want):
            if w is not None:
                self.ints.require_eq(k, w, msg)
        return [k if w is None else w for k, w in zip(d, want)]

    def _dims_ifelse(self, node, dims):
        """Both branches' shape: the output is sized before the condition is known."""
        n, k = node.attr("n"), node.attr("part")
        then, other = dims[1 + k], dims[1 + n + k]
        msg = self._shape_msg("ifelse (the branches must have the same shape)", [then, other])
        for a, b in zip(then, other):
            self.ints.require_eq(a, b, msg)
        return [b if isinstance(b, int) else a for a, b in zip(then, other)]

    def _dims_along_axis(self, node, dims):
        """cumsum, cumprod, sort, argsort: the input's dims."""
        return list(dims[0])

    _dims_cumsum = _dims_cumprod = _dims_sort = _dims_argsort = _dims_along_axis
