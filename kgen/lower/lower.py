"""Lowering: a kernel's graph -> a Plan (backend-neutral).

The recipe, in order:
  1. collect the graph of the outputs and update values;
  2. shape phase: every node's run-time dims, with every check, before any
     memory is touched;
  3. fusion: which nodes become loops, which are fused into their consumer;
  4. storage: views for view ops, output buffers, temporaries reused by liveness;
  5. steps: one fused loop per root, GEMM/gather/scatter/copy steps for the rest.
"""
import re

import numpy as np

from ..errors import KgenTypeError
from ..expr.graph import toposort
from ..expr.node import Constant, Input, Shared
from ..expr.printing import pprint
from ..expr.types import format_shape
from .fusion import Schedule, is_elementwise, is_reduction, value_reads
from .ints import IntBuilder
from .plan import Buffer, Leaf, Local, Loop, Param, Plan, Step, View

C_RESERVED = set("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static struct
switch typedef union unsigned void volatile while err errlen n i j k d size main
acc best best_at at part nt lo hi a src dst o q r c t rc bool true false
exp exp2 expm1 log log2 log10 log1p sqrt sin cos tan asin acos atan atan2 sinh cosh tanh erf
pow floor ceil rint fabs fmod copysign abs malloc free memcpy memset printf snprintf""".split())
# loop counters and locals the templates declare
_TEMPLATE_NAMES = re.compile(r"^[ircq]\d+$|^KG_|^kg_")


def c_identifier(text, fallback):
    name = re.sub(r"\W", "_", text or "") or fallback
    if name[0].isdigit():
        name = "v_" + name
    return name + "_" if name in C_RESERVED or _TEMPLATE_NAMES.match(name) else name


def _one_line(expr, limit=300):
    """pprint of an expression on one line, shortened for comments. Large
    graphs show their top two levels only: comments must stay cheap."""
    if not _graph_at_most(expr, 80):
        return _outline(expr)
    text = pprint(expr)
    if "\n" in text:  # shared subexpressions print as `t1 = ...` lines: too long here
        return _outline(expr)
    text = text.replace("*/", "* /")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _outline(expr):
    """`op(op(...), name)`: the top of a large expression."""
    def name(n):
        if n.op is None:
            return pprint(n)
        return f"{n.op.name}(...)"
    if expr.op is None:
        return pprint(expr)
    return f"{expr.op.name}({', '.join(name(i) for i in expr.inputs)})"


def _graph_at_most(expr, limit):
    """Whether `expr` has at most `limit` op nodes (stops counting early)."""
    seen, stack = set(), [expr]
    while stack:
        n = stack.pop()
        if n.op is None or id(n) in seen:
            continue
        seen.add(id(n))
        if len(seen) > limit:
            return False
        stack.extend(n.inputs)
    return True


class _Names:
    def __init__(self):
        self.used = set()

    def __call__(self, hint):
        base, k = hint, 1
        while hint in self.used:
            k += 1
            hint = f"{base}{k}"
        self.used.add(hint)
        return hint


def lower(name, inputs, outputs, updates, doc_exprs=None):
    """inputs: Input variables; outputs: expressions; updates: [(Shared, expr)].
    `doc_exprs` (the user's expressions before simplification, outputs then
    updates) are what the generated header comment shows."""
    return _Lowering(name, inputs, outputs, updates, doc_exprs).run()


class _Lowering:
    def __init__(self, name, inputs, outputs, updates, doc_exprs=None):
        self.name, self.doc_exprs = name, doc_exprs
        self.inputs, self.outputs, self.updates = list(inputs), list(outputs), list(updates)
        self.ints = IntBuilder()
        self.names = _Names()
        self.dims = {}      # id(node) -> [Int]
        self.value = {}     # id(node) -> View | ("literal", scalar) | ("int", Int)
        self.params, self.buffers, self.steps = [], [], []
        self.features = set()

    # ---- 1-2: graph and shape phase --------------------------------------------
    def run(self):
        exprs = self.outputs + [e for _, e in self.updates]
        self.order = toposort(exprs)
        shared = [n for n in self.order if isinstance(n, Shared)]
        for s, _ in self.updates:
            if s not in shared:
                shared.append(s)
        for n in self.order:
            if isinstance(n, Input) and n not in self.inputs:
                raise KgenTypeError(f"kernel {self.name}: the outputs depend on input "
                                    f"{n.name or n!r}, which is not in the inputs list")
        for v in self.inputs:
            self._param(v, "input")
        for s in shared:
            self._param(s, "shared")
        for node in self.order:
            if node.op is not None:
                self.dims[id(node)] = self._node_dims(node)
            elif isinstance(node, Constant):
                self.dims[id(node)] = list(node.type.shape)
        out_params = []
        originals = self.doc_exprs or exprs  # simplification may drop names
        for k, e in enumerate(self.outputs):
            name = originals[k].name or e.name
            label = name or (f"out{k}" if len(self.outputs) > 1 else "out")
            out_params.append(self._out_param(e, label, "output"))
        for s, e in self.updates:
            out_params.append(self._out_param(e, f"{s.name or 'shared'}_new", "update"))
        # ---- 3: fusion and the order of the passes
        self.exprs = exprs
        self.sched = Schedule(self.order, {id(e) for e in exprs},
                              lambda n: tuple(self.ints.cls(d) for d in self.dims[id(n)]))
        # ---- 4-5: storage and steps, stage by stage
        self._free, self._temps, self._last = {}, {}, {}
        claimed = {}
        for p, e in zip(out_params, exprs):
            claimed.setdefault(id(e), p)
        for node in self.order:
            if node.op is None:
                self._leaf_value(node)
            elif node.op.name == "shape_i":
                self.value[id(node)] = ("int", self.dims[id(node.inputs[0])][node.attr("axis")])
        for idx, stage in enumerate(self.sched.stages):
            if stage.kind == "map":
                self._map_stage(idx, stage, claimed)
            else:
                node = stage.nodes[0]
                out = self._storage(node, claimed.pop(id(node), None))
                self._emit(node, out)
            self._release(idx)
        for p, e in zip(out_params, exprs):
            if p.var is None:  # the output is a leaf, a view or already written elsewhere
                self._copy_into(e, p)
        doc = [f"{p.label} = {_one_line(e)}"
               for p, e in zip(out_params, self.doc_exprs or exprs)]
        return Plan(self.name, doc, self.params + out_params, self.ints.stmts,
                    self.buffers, self.steps, self.ints.vars, self.features)

    def _param(self, var, role):
        label = var.name or f"arg{len(self.params)}"
        cname = self.names(c_identifier(var.name, f"arg{len(self.params)}"))
        dims, dim_args = [], []
        for k, d in enumerate(var.type.shape):
            loaded = self.ints.load(label, k, f"{cname}_d{k}")
            dim_args.append(loaded)
            if d is not None:
                self.ints.require_eq(loaded, d, f"{label}: expected axis {k} of length {d}")
                loaded = d
            dims.append(loaded)
        p = Param(cname, label, var.dtype, var.ndim, var.type.shape, dims, role, var, dim_args)
        self.params.append(p)
        self.dims[id(var)] = dims
        strides = self.ints.contiguous_strides(dims, cname)
        self.value[id(var)] = View(cname, var.dtype, 0, dims, strides, True)
        return p

    def _out_param(self, expr, label, role):
        cname = self.names(c_identifier(label, "out"))
        return Param(cname, label, expr.dtype, expr.ndim, expr.type.shape,
                     self.dims[id(expr)], role, None)

    # ---- shape rules, one per op family -------------------------------------------
    def _node_dims(self, node):
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
        nd = node.ndim
        out = []
        for axis in range(nd):
            acc = 1
            for d in dims_list:
                k = axis - nd + len(d)
                if k >= 0:
                    acc = self.ints.bcast(acc, d[k], f"{node.op.name}_d{axis}",
                                          self._shape_msg(node.op.name, dims_list))
            out.append(acc)
        return out

    def _dims_matmul(self, node, dims):
        a, b = dims
        ka = a[-1]
        kb = b[0] if len(b) == 1 else b[-2]
        self.ints.require_eq(ka, kb, self._shape_msg("matmul", dims))
        batch = self._broadcast_dims("matmul", [a[:-2], b[:-2]], max(len(a), len(b)) - 2)
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
        (d,) = dims
        out, axis = [], 0
        self._slices = getattr(self, "_slices", {})
        starts = []
        for entry in node.attr("index"):
            if entry[0] == "n":
                out.append(1)
                continue
            if entry[0] == "i":
                k = entry[1]
                if isinstance(d[axis], int):
                    starts.append(k % d[axis] if d[axis] else 0)
                else:
                    starts.append(self.ints.emit("index", f"idx{axis}", d[axis], k,
                                                 msg=self._shape_msg("subtensor", [d])))
            else:
                _, start, stop, step = entry
                if isinstance(d[axis], int):
                    rng = range(*slice(start, stop, step).indices(d[axis]))
                    out.append(len(rng))
                    starts.append(rng.start if len(rng) else 0)
                else:
                    length = self.ints.emit("slice_len", f"len{axis}", d[axis], start, stop, step)
                    out.append(length)
                    starts.append(self.ints.emit("slice_start", f"start{axis}", d[axis],
                                                 start, stop, step))
            axis += 1
        self._slices[id(node)] = starts
        return out + d[axis:]

    def _int_value(self, node):
        """The run-time value of an int scalar expression built from shapes."""
        if isinstance(node, Constant):
            return int(node.value)
        if node.op is not None and node.op.name == "shape_i":
            return self.dims[id(node.inputs[0])][node.attr("axis")]
        if node.op is not None and node.op.name in ("mul", "add", "sub", "cast"):
            vals = [self._int_value(i) for i in node.inputs]
            if node.op.name == "cast":
                return vals[0]
            return getattr(self.ints, node.op.name)(*vals)
        what = f"input {node.name!r}" if isinstance(node, Input) else \
            (node.op.name if node.op else repr(node))
        raise KgenTypeError(
            f"kernel {self.name}: a size here depends on the value of {what}; compiled kernels "
            f"size their arrays from shapes alone (use Python ints, or x.shape[i] and "
            f"products of them, e.g. arange(x.shape[0]))")

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
        self._dims_subtensor(node, dims[:1])  # records the slice starts
        return list(dims[0])

    def _dims_sum_to(self, node, dims):
        g, x = dims
        for a in range(len(x)):
            self.ints.bcast(g[len(g) - len(x) + a], x[a], "st",
                            self._shape_msg("sum_to", [g, x]))
        return list(x)

    def _dims_arange(self, node, dims):
        vals = [self._arange_arg(i) for i in node.inputs]
        if all(isinstance(v, (int, float)) for v in vals):
            return [len(np.arange(*vals))]
        return [self.ints.emit("arange_len", "n_range", *vals, msg=self._shape_msg("arange", []))]

    def _arange_arg(self, node):
        if isinstance(node, Constant):
            return node.value.item()
        return self._int_value(node)

    def _dims_shape_i(self, node, dims):
        return []

    # ---- storage -------------------------------------------------------------------
    def _leaf_value(self, node):
        if id(node) in self.value:
            return
        if isinstance(node, Constant):
            if node.value.size == 1 and node.ndim == 0:
                self.value[id(node)] = ("literal", node.value.item() if node.weak else node.value[()])
            else:
                cname = self.names(f"{self.name}_const")
                vals = tuple(node.value.reshape(-1).tolist())
                self.buffers.append(Buffer(cname, node.dtype, len(vals), "const", vals))
                dims = list(node.type.shape)
                self.value[id(node)] = View(cname, node.dtype, 0, dims,
                                            self.ints.contiguous_strides(dims, cname), True)
        # Inputs and shared variables got their views in _param

    def last_read(self, node):
        """The last stage that reads `node` (directly or through views);
        outputs are read by the caller, after every stage."""
        key = id(node)
        if key not in self._last:
            last = len(self.sched.stages) if any(node is e for e in self.exprs) else -1
            for c in self.sched.users.get(key, []):
                if id(c) in self.sched.views:
                    last = max(last, self.last_read(c))
                else:
                    last = max(last, self.sched.stage_index(c))
            self._last[key] = last
        return self._last[key]

    def _storage(self, node, target):
        """A contiguous buffer for a materialized node: its output param or a temp."""
        dims = self.dims[id(node)]
        strides = self.ints.contiguous_strides(dims, "t")
        if target is not None:
            target.var = node
            view = View(target.name, node.dtype, 0, dims, strides, True)
        else:
            size = self.ints.product(dims, "size")
            pool = self._free.setdefault(node.dtype, [])
            if pool:
                buf = pool.pop()
                buf.size = self.ints.maximum(buf.size, size, f"{buf.name}_size")
            else:
                buf = Buffer(self.names(f"tmp{len(self.buffers)}"), node.dtype, size, "temp")
                self.buffers.append(buf)
            self._temps[id(node)] = (node, buf)
            view = View(buf.name, node.dtype, 0, dims, strides, True)
        self.value[id(node)] = view
        return view

    def _release(self, idx):
        """Return temporaries whose last reader has run to the pool."""
        for node_id, (node, buf) in list(self._temps.items()):
            if self.last_read(node) <= idx:
                self._free.setdefault(buf.dtype, []).append(buf)
                del self._temps[node_id]

    # ---- views -------------------------------------------------------------------
    def _value_of(self, node):
        """The storage of a node's value: views are strides over their source's."""
        if id(node) not in self.value:
            if id(node) not in self.sched.views:
                raise AssertionError(f"{node!r} has no value yet")
            self.value[id(node)] = self._view_of(node, self._value_of(node.inputs[0]))
        return self.value[id(node)]

    def _view_of(self, node, src):
        """A view op over `src`: a View of the same buffer (no data movement)."""
        op = node.op.name
        if not isinstance(src, View):  # a literal stays a literal whatever its shape
            return src
        dims = self.dims[id(node)]
        if op == "dimshuffle":
            pattern = node.attr("pattern")
            kept = [p for p in pattern if p != "x"]
            strides = [0 if p == "x" else src.strides[p] for p in pattern]
            return View(src.buf, src.dtype, src.offset, dims, strides,
                        src.contiguous and kept == sorted(kept))
        if op == "subtensor":
            starts = self._slices[id(node)]
            offset, strides, axis, si = src.offset, [], 0, 0
            for entry in node.attr("index"):
                if entry[0] == "n":
                    strides.append(0)
                    continue
                offset = self.ints.add(offset, self.ints.mul(starts[si], src.strides[axis], "off"),
                                       "off")
                if entry[0] == "s":
                    strides.append(self.ints.mul(src.strides[axis], entry[3], "st"))
                si += 1
                axis += 1
            strides += src.strides[axis:]
            return View(src.buf, src.dtype, offset, dims, strides, False)
        if op == "reshape":
            assert src.contiguous, "the schedule only views contiguous reshapes"
            return View(src.buf, src.dtype, src.offset, dims,
                        self.ints.contiguous_strides(dims, "rs"), True)
        if op == "split_part":
            axis, part = node.attr("axis"), node.attr("part")
            start = 0
            for p in node.inputs[1:1 + part]:
                start = self.ints.add(start, self.dims[id(p)][axis], "split")
            offset = self.ints.add(src.offset, self.ints.mul(start, src.strides[axis], "off"), "off")
            return View(src.buf, src.dtype, offset, dims, list(src.strides), False)
        raise AssertionError(op)

    # ---- steps --------------------------------------------------------------------
    def _emit(self, node, out):
        if is_reduction(node):
            self.steps.append(self._loop(node, out))
        else:
            getattr(self, f"_step_{node.op.name}")(node, out)

    def _leaf(self, node, loop_dims, leaves, index):
        """A Leaf reading `node` inside a loop over `loop_dims`."""
        if id(node) in index:
            return index[id(node)]
        val = self._value_of(node)
        var = self.names("v_" + c_identifier(node.name, "") if node.op is None and node.name
                         else "v")
        if isinstance(val, tuple) and val[0] == "literal":
            leaf = Leaf(var, node.dtype, "literal", value=val[1])
        elif isinstance(val, tuple) and val[0] == "int":
            leaf = Leaf(var, node.dtype, "int", value=val[1])
        else:
            nd, ln = len(loop_dims), len(val.dims)
            strides = [0] * (nd - ln) + [self.ints.bstride(d, s, f"{val.buf}_b{k}")
                                         for k, (d, s) in enumerate(zip(val.dims, val.strides))]
            scalar = all(d == 1 for d in val.dims)
            leaf = Leaf(var, node.dtype, "buffer", view=val, strides=strides,
                        scalar=scalar, streamed=not scalar)
        leaves.append(leaf)
        index[id(node)] = leaf
        return leaf

    def _body(self, members, loop_dims):
        """Leaves and locals computing `members` (fused nodes, producers first)
        inside a loop over `loop_dims`; returns (leaves, locals, index)."""
        leaves, index, locals_ = [], {}, []
        member_ids = {id(n) for n in members}
        for n in members:
            operands = []
            reads = getattr(n.op, "reads", None)
            for pos, i in enumerate(n.inputs):
                if reads is not None and pos not in reads:
                    operands.append("0")  # not read by the expression: lends a shape only
                elif id(i) in member_ids:
                    operands.append(index[id(i)])
                else:
                    leaf = self._leaf(i, loop_dims, leaves, index)
                    operands.append(leaf if leaf.kind == "literal" else leaf.var)
            var = self.names(f"t{len(locals_) + 1}")
            # comment each local with its expression while that stays short
            # (bounded work: deep chains would make this quadratic)
            comment = _one_line(n, 100) if _graph_at_most(n, 12) else n.op.name
            locals_.append(Local(var, n, operands, comment))
            index[id(n)] = var
        return leaves, locals_, index

    def _value_in(self, node, loop_dims, leaves, index):
        """What a loop stores for `node`: a local, a leaf's var, or a literal Leaf."""
        if id(node) in index and isinstance(index[id(node)], str):
            return index[id(node)]
        leaf = self._leaf(node, loop_dims, leaves, index)
        return leaf if leaf.kind == "literal" else leaf.var

    def _finish_map(self, loop):
        """Decide the flat path (dense operands of the loop's size) and whether
        the strided N-d path is needed at all."""
        checks, flat, nd = [], True, False
        for leaf in loop.leaves:
            if leaf.kind != "buffer" or not leaf.streamed:
                continue
            if not leaf.view.contiguous:
                flat, nd = False, True
            elif list(leaf.view.dims) != list(loop.dims):
                checks.append((leaf, self.ints.product(leaf.view.dims, "n")))
                nd = True
        loop.serial_nd = False
        for k, (value, view) in enumerate(loop.stores):
            if not (view.contiguous and view.offset == 0):
                flat, nd = False, True
            elif list(view.dims) != list(loop.dims):
                # a member that may be broadcast at run time: the flat path needs
                # it full size; the N-d path writes it repeatedly, so one thread
                checks.append((None, self.ints.product(view.dims, "n")))
                nd = loop.serial_nd = True
                if len(view.dims) < len(loop.dims):
                    pad = len(loop.dims) - len(view.dims)
                    view = View(view.buf, view.dtype, view.offset, [1] * pad + list(view.dims),
                                [0] * pad + list(view.strides), view.contiguous)
                strides = [self.ints.bstride(d, st, f"{view.buf}_b{j}")
                           for j, (d, st) in enumerate(zip(view.dims, view.strides))]
                loop.stores[k] = (value, View(view.buf, view.dtype, view.offset, list(loop.dims),
                                              strides, False))
        loop.flat, loop.nd, loop.flat_ok = flat, nd or not flat, checks
        return loop

    def _group_dims(self, members):
        """The iteration dims of a map group: per axis, the member dim that
        covers all the others (else the broadcast of them all)."""
        out = []
        for k in range(len(self.dims[id(members[0])])):
            column = list(dict.fromkeys(self.dims[id(n)][k] for n in members))
            best = next((c for c in column if all(self.ints.covers(c, d) for d in column)), None)
            if best is None:
                best = column[0]
                for d in column[1:]:
                    best = self.ints.bcast(best, d, f"loop_d{k}",
                                           {"op": "fused loop", "shapes": [[best], [d]]})
            out.append(best)
        return out

    def _map_stage(self, idx, stage, claimed):
        """One loop computing a whole map group; stores what others read."""
        loop_dims = self._group_dims(stage.nodes)
        group = {id(n) for n in stage.nodes}
        stored = [n for n in stage.nodes
                  if any(n is e for e in self.exprs)
                  or any(self.sched.stage_index(c) != idx or id(c) in self.sched.views
                         for c in self.sched.users.get(id(n), []))]
        # only what a store needs is computed
        needed, stack = set(), list(stored)
        while stack:
            n = stack.pop()
            if id(n) in needed:
                continue
            needed.add(id(n))
            stack.extend(i for i in value_reads(n) if id(i) in group)
        members = [n for n in stage.nodes if id(n) in needed]
        leaves, locals_, index = self._body(members, loop_dims)
        stores = []
        for n in stored:
            view = self._storage(n, claimed.pop(id(n), None))
            stores.append((index[id(n)], view))
        names = [self._store_label(n) for n in stored]
        comment = "; ".join(names) if len(stored) > 1 else _one_line(stored[0], 160)
        loop = Loop("map", comment, loop_dims, leaves, locals_, None, None,
                    stored[0].dtype, self.ints.product(loop_dims, "n"))
        loop.stores = stores
        self.steps.append(self._finish_map(loop))

    def _store_label(self, node):
        return _one_line(node, 60)

    def _loop(self, root, out):
        """A reduction's loop, with the producers only it reads fused in."""
        body_root, loop_dims = root.inputs[0], self.dims[id(root.inputs[0])]
        members, seen, stack = [], set(), [(body_root, False)]
        while stack:  # its private producers, producers first
            node, done = stack.pop()
            if done:
                members.append(node)
            elif id(node) not in seen and self.sched.private.get(id(node)) is root:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((i, False) for i in reversed(value_reads(node)))
        leaves, locals_, index = self._body(members, loop_dims)
        result = self._value_in(body_root, loop_dims, leaves, index)
        loop = Loop("reduce", _one_line(root, 160), loop_dims, leaves, locals_, result, out,
                    root.dtype, self.ints.product(loop_dims, "n"))
        loop.flat_ok = [(lf, self.ints.product(lf.view.dims, "n")) for lf in leaves
                        if lf.kind == "buffer"]
        if any(not lf.view.contiguous for lf in leaves if lf.kind == "buffer"):
            loop.flat_ok = None
        axis = root.attr("axis")
        loop.kind = "argreduce" if root.op.name in ("argmax", "argmin") else "reduce"
        loop.reduced = axis
        loop.red_op = root.op
        loop.in_dtype = body_root.dtype
        kept = [a for a in range(len(loop_dims)) if a not in axis]
        loop.outer, loop.inner = kept, list(axis)
        # output strides over the input's dims: 0 on reduced axes
        ks = self.ints.contiguous_strides([loop_dims[a] for a in kept], "o")
        ostr = [0] * len(loop_dims)
        for a, st in zip(kept, ks):
            ostr[a] = st
        loop.out_strides = ostr
        red_size = self.ints.product([loop_dims[a] for a in axis], "n")
        if root.op.name in ("max", "min", "argmax", "argmin") and red_size != 1:
            self.ints.check("positive", red_size,
                            msg=f"{root.op.name}: zero-size array to reduction operation "
                                f"{root.op.name}, which has no identity")
        return loop

    def _copy_loop(self, src_node, dst, comment):
        """A loop writing `src_node`'s value into the view `dst`."""
        leaves, index = [], {}
        value = self._value_in(src_node, dst.dims, leaves, index)
        loop = Loop("map", comment, list(dst.dims), leaves, [], None, None, dst.dtype,
                    self.ints.product(dst.dims, "n"))
        loop.stores = [(value, dst)]
        return self._finish_map(loop)

    def _copy_into(self, expr, param):
        """Write a value that has no loop of its own (a leaf, a view) to an output."""
        dims = self.dims[id(expr)]
        out = View(param.name, expr.dtype, 0, dims, self.ints.contiguous_strides(dims, "t"), True)
        param.var = expr
        self.steps.append(self._copy_loop(expr, out, f"{param.label} = {_one_line(expr, 160)}"))

    def _materialized(self, node):
        """A View of `node`'s value (steps other than loops need memory)."""
        val = self._value_of(node)
        if isinstance(val, View):
            return val
        raise KgenTypeError(f"C backend: {node.op.name if node.op else 'value'} needs an array input")

    def _step_matmul(self, node, out):
        a, b = (self._materialized(i) for i in node.inputs)
        self.features.add("gemm")
        if node.dtype not in ("float32", "float64"):
            self.features.add("int_gemm")
        dims = self.dims[id(node)]
        # treat 1-d operands as a row (left) or a column (right)
        a_rows, a_rs = (a.dims[-2], a.strides[-2]) if len(a.dims) >= 2 else (1, 0)
        b_cols, b_cs = (b.dims[-1], b.strides[-1]) if len(b.dims) >= 2 else (1, 0)
        k = a.dims[-1]
        a_ks = a.strides[-1]
        b_ks = b.strides[-2] if len(b.dims) >= 2 else b.strides[0]
        nbatch = len(dims) - (len(a.dims) >= 2) - (len(b.dims) >= 2)
        batch_dims = dims[:nbatch]
        a_bs = [self.ints.bstride(d, s, "ab") for d, s in
                zip(([1] * (nbatch - (len(a.dims) - 2)) + a.dims[:-2]) if nbatch else [],
                    ([0] * (nbatch - (len(a.dims) - 2)) + a.strides[:-2]) if nbatch else [])]
        b_bs = [self.ints.bstride(d, s, "bb") for d, s in
                zip(([1] * (nbatch - (len(b.dims) - 2)) + b.dims[:-2]) if nbatch else [],
                    ([0] * (nbatch - (len(b.dims) - 2)) + b.strides[:-2]) if nbatch else [])]
        c_rows = a_rows
        c_cols = b_cols
        o_bs = self.ints.contiguous_strides(batch_dims + [self.ints.mul(c_rows, c_cols, "mn")], "ob")[:-1] \
            if nbatch else []
        self.steps.append(Step("gemm", f"{_one_line(node, 160)}", dict(
            dtype=node.dtype, M=c_rows, N=c_cols, K=k, a=a, b=b, out=out,
            a_rs=a_rs, a_cs=a_ks, b_rs=b_ks, b_cs=b_cs, ldc=c_cols,
            batch=batch_dims, a_bs=a_bs, b_bs=b_bs, o_bs=o_bs)))

    def _step_gather(self, node, out):
        x = self._materialized(node.inputs[0])
        idx = [self._materialized(i) for i in node.inputs[1:]]
        dims = self.dims[id(node)]
        nlead = len(dims) - (len(x.dims) - len(idx))
        lead = dims[:nlead]
        idx_strides = [[0] * (nlead - len(v.dims)) + [self.ints.bstride(d, s, "gs")
                                                       for d, s in zip(v.dims, v.strides)]
                       for v in idx]
        self.steps.append(Step("gather", _one_line(node, 160), dict(
            x=x, idx=idx, idx_strides=idx_strides, lead=lead, rest=dims[nlead:],
            rest_strides=x.strides[len(idx):], out=out,
            inner=self.ints.product(dims[nlead:], "inner"), label="gather")))

    def _step_scatter_add(self, node, out):
        x, g = self._materialized(node.inputs[0]), self._materialized(node.inputs[1])
        idx = [self._materialized(i) for i in node.inputs[2:]]
        nidx = len(idx)
        lead = self._broadcast_dims("scatter_add", [v.dims for v in idx], max(len(v.dims) for v in idx))
        rest = self.dims[id(node)][nidx:]
        full = lead + rest
        g_strides = [0] * (len(full) - len(g.dims)) + [self.ints.bstride(d, s, "gs")
                                                       for d, s in zip(g.dims, g.strides)]
        idx_strides = [[0] * (len(lead) - len(v.dims)) + [self.ints.bstride(d, s, "is")
                                                           for d, s in zip(v.dims, v.strides)]
                       for v in idx]
        out_strides = out.strides
        self.steps.append(Step("scatter_add", _one_line(node, 160), dict(
            x=x, g=g, idx=idx, idx_strides=idx_strides, lead=lead, rest=rest,
            g_strides=g_strides, out=out, out_strides=out_strides, xdims=self.dims[id(node)],
            size=self.ints.product(self.dims[id(node)], "n"), label="scatter_add")))

    def _step_concatenate(self, node, out):
        axis = node.attr("axis")
        start = 0
        for part in node.inputs:
            pd = self.dims[id(part)]
            offset = self.ints.mul(start, out.strides[axis], "off")
            dst = View(out.buf, out.dtype, offset, pd, out.strides, False)
            self._copy_view(part, dst, f"{_one_line(node, 120)} (part)")
            start = self.ints.add(start, pd[axis], "cat")

    def _copy_view(self, src_node, dst, comment):
        self.steps.append(self._copy_loop(src_node, dst, comment))

    def _step_subtensor_grad(self, node, out):
        # zeros, then g written through the same view indexing would take
        self.steps.append(Step("fill", "zeros", dict(out=out, size=self.ints.product(out.dims, "n"),
                                                     value=0)))
        starts = self._slices[id(node)]
        offset, strides, axis, si = 0, [], 0, 0
        for entry in node.attr("index"):
            if entry[0] == "n":
                strides.append(0)
                continue
            offset = self.ints.add(offset, self.ints.mul(starts[si], out.strides[axis], "off"), "off")
            if entry[0] == "s":
                strides.append(self.ints.mul(out.strides[axis], entry[3], "st"))
            si += 1
            axis += 1
        strides += out.strides[axis:]
        g = node.inputs[1]
        dst = View(out.buf, out.dtype, offset, self.dims[id(g)], strides, False)
        self._copy_view(g, dst, _one_line(node, 160))

    def _step_sum_to(self, node, out):
        g = self._materialized(node.inputs[0])
        gd = self.dims[id(node.inputs[0])]
        xd = self.dims[id(node)]
        lead = len(gd) - len(xd)
        ostr = [0] * lead + [self.ints.bstride(d, s, "sts") for d, s in zip(xd, out.strides)]
        self.steps.append(Step("fill", "zeros", dict(out=out, size=self.ints.product(xd, "n"),
                                                     value=0)))
        self.steps.append(Step("accumulate", _one_line(node, 160), dict(
            g=g, dims=gd, out=out, out_strides=ostr)))

    def _step_arange(self, node, out):
        vals = [self._arange_arg(i) for i in node.inputs]
        self.steps.append(Step("arange", _one_line(node, 160), dict(
            out=out, start=vals[0], step=vals[2], n=self.dims[id(node)][0])))

    def _step_reshape(self, node, out):
        # the source is not contiguous: copy it in row-major order
        src = self.dims[id(node.inputs[0])]
        tmp_view = View(out.buf, out.dtype, 0, src, self.ints.contiguous_strides(src, "rc"), True)
        self._copy_view(node.inputs[0], tmp_view, f"{_one_line(node, 160)} (copy)")
        self.value[id(node)] = out
