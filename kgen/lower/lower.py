"""Lowering: a kernel's graph -> a Plan (backend-neutral).

The recipe, in order:
  1. collect the graph of the outputs and update values;
  2. shape phase: every node's run-time dims, with every check, before any
     memory is touched;
  3. fusion: which nodes become loops, which are fused into their consumer;
  4. storage: views for view ops, output buffers, temporaries reused by liveness;
  5. steps: one fused loop per group, GEMM/gather/scatter/copy steps for the rest.
Each op's shape rule lives in shape_rules.py and its non-loop step in steps.py
(the convolution and max-pooling ops': conv.py and pool.py).
"""
from ..errors import KgenTypeError
from ..expr.graph import toposort
from ..expr.node import Constant, Input, Shared
from .branches import BranchRules, Branches
from .comments import SmallGraphs, _one_line
from .conv import ConvRules
from .fusion import Schedule, is_reduction, recomputed, value_reads
from .ints import IntBuilder
from .names import Names
from .plan import Buffer, Leaf, Local, Loop, Param, Plan, View
from .pool import PoolRules
from .scan import ScanRules
from .shape_rules import ShapeRules
from .steps import StepRules

def lower(name, inputs, outputs, updates, doc_exprs=None, label=None):
    """inputs: Input variables; outputs: expressions; updates: [(Shared, expr)].
    `name` is the kernel's C symbol (kgen.lower.names), `label` what the user
    called it (messages, comments). `doc_exprs` (the user's expressions before
    simplification, outputs then updates) are what the generated header comment
    shows."""
    from .scan_merge import merge_scans
    given = list(outputs) + [e for _, e in updates]
    order = toposort(given)
    exprs = merge_scans(given, order)
    if any(a is not b for a, b in zip(exprs, given)):
        order = None  # scans merged: a new graph
    outputs, updates = exprs[:len(outputs)], [(s, e) for (s, _), e in
                                              zip(updates, exprs[len(outputs):])]
    return _Lowering(name, inputs, outputs, updates, doc_exprs, label).run(order)


class _Lowering(ShapeRules, StepRules, BranchRules, ScanRules, ConvRules, PoolRules):
    def __init__(self, name, inputs, outputs, updates, doc_exprs=None, label=None):
        self.name, self.doc_exprs = name, doc_exprs
        self.label = name if label is None else label
        self.inputs, self.outputs, self.updates = list(inputs), list(outputs), list(updates)
        self.names = Names()  # every C identifier of this kernel
        self.small_graph = SmallGraphs(12)  # which locals' comments show their expression
        self.ints = IntBuilder(self.names)
        self.dims = {}      # id(node) -> [Int]
        self.value = {}     # id(node) -> View | ("literal", scalar) | ("int", Int)
        self.params, self.buffers, self.steps = [], [], []
        self._slices, self._steps = {}, {}  # per basic index: slice starts and steps (Ints)
        self.features = set()

    # ---- 1-2: graph and shape phase --------------------------------------------
    def run(self, order=None):
        """The Plan (`order`: toposort of the outputs and updates, if known)."""
        exprs = self.outputs + [e for _, e in self.updates]
        self.order = toposort(exprs) if order is None else order
        shared = [n for n in self.order if isinstance(n, Shared)]
        for s, _ in self.updates:
            if s not in shared:
                shared.append(s)
        for n in self.order:
            if isinstance(n, Input) and n not in self.inputs:
                raise KgenTypeError(f"kernel {self.label!r}: the outputs depend on input "
                                    f"{n.name or n!r}, which is not in the inputs list")
        for v in self.inputs:
            self._param(v, "input")
        for s in shared:
            self._param(s, "shared")
        self._shape_pass(exprs)
        out_params = []
        originals = self.doc_exprs or exprs  # simplification may drop names
        for k, e in enumerate(self.outputs):
            name = originals[k].name or e.name
            label = name or (f"out{k}" if len(self.outputs) > 1 else "out")
            cname = self.names.user("output", name, k if len(self.outputs) > 1 else "")
            out_params.append(self._out_param(e, label, cname, "output"))
        for k, (s, e) in enumerate(self.updates):
            cname = self.names.user("update", s.name, k)
            out_params.append(self._out_param(e, s.name or f"shared {k}", cname, "update"))
        self._step_pass(exprs, out_params)
        # lengths known only after the run (until()), after the updates (plan.trims)
        out_params += [p for p, _ in getattr(self, "length_params", [])]
        # what the kernel computes, by C argument name, in the user's expressions
        doc = [f"{p.name} = {_one_line(e)}" for p, e in zip(out_params, self.doc_exprs or exprs)]
        return Plan(self.name, doc, self.params + out_params, self.ints.stmts,
                    self.buffers, self.steps, self.ints.vars, self.features, label=self.label)

    def _shape_pass(self, exprs):
        """Step 2: every node's run-time dims, in topological order (`exprs`:
        what is computed, which decides the nodes of ifelse branches)."""
        self.branches = Branches(self.order, exprs)
        for node in self.order:
            if node.op is not None:
                # a branch's checks are its own (guarded: kgen/lower/branches.py)
                self.ints.guard = self.branches.owner.get(id(node))
                self.dims[id(node)] = self._node_dims(node)
            elif isinstance(node, Constant):
                self.dims[id(node)] = list(node.type.shape)
        self.ints.guard = None
        # dims that checks proved equal are one name from here on (IntBuilder.canon)
        canon = self.ints.canon
        for key, dims in self.dims.items():
            self.dims[key] = [canon(d) for d in dims]
        for key, v in self.value.items():
            if isinstance(v, View):
                v.dims = [canon(d) for d in v.dims]
                v.strides = [canon(s) for s in v.strides]

    def _step_pass(self, exprs, out_params):
        """Steps 3-5: fusion, storage and the steps computing `exprs` into
        `out_params` (a scan's body runs this too: kgen/lower/scan.py)."""
        # ---- 3: fusion and the order of the passes
        self.exprs = exprs
        # (the nodes of ifelse branches are scheduled inside their branch)
        self.sched = Schedule([n for n in self.order if id(n) not in self.branches.owner],
                              {id(e) for e in exprs}, self._dims_key, reads=self.branches.reads)
        self.sched.recomputed = recomputed(self.sched, self.order, {id(e) for e in exprs},
                                           self._dims_key, outside=set(self.branches.owner))
        # ---- 4-5: storage and steps, stage by stage
        self._free, self._temps, self._last, self._transposed = {}, {}, {}, set()
        claimed = {}
        for p, e in zip(out_params, exprs):
            claimed.setdefault(id(e), p)
        for node in self.order:
            if node.op is None:
                self._leaf_value(node)
            elif node.op.name == "shape_i":
                self.value[id(node)] = ("int", self.dims[id(node.inputs[0])][node.attr("axis")])
        self._lower_stages(claimed)
        for p, e in zip(out_params, exprs):
            if p.var is None:  # the output is a leaf, a view or already written elsewhere
                self._copy_into(e, p)

    def _dims_key(self, node):
        """What a map group's members share: their dims' broadcast classes."""
        return tuple(self.ints.cls(d) for d in self.dims[id(node)])

    def _lower_stages(self, claimed, release=True):
        """Storage and steps for each stage of self.sched (`claimed`: the
        outputs' storage, by node); temporaries return to the pool after
        their last reader unless `release` is False (a branch's: see
        kgen/lower/branches.py)."""
        self._claimed = claimed
        for idx, stage in enumerate(self.sched.stages):
            if stage.kind == "map":
                self._map_stage(idx, stage, claimed)
                self._fuse_conv_epilogue(idx)
            elif getattr(stage.nodes[0].op, "multi", False):
                self._emit_multi(stage.nodes[0], claimed)  # a scan: one step, many outputs
            elif id(stage.nodes[0]) not in self.value:  # (an ifelse writes all its parts at once)
                node = stage.nodes[0]
                target = claimed.pop(id(node), None)
                out = self._storage(node, target, target is None and self._stores_transposed(node))
                self._emit(node, out)
            if release:
                self._release(idx)

    def _param(self, var, role):
        count = sum(p.role == role for p in self.params)
        label = var.name or f"{role} {count}"
        cname = self.names.user(role, var.name, count)
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

    def _out_param(self, expr, label, cname, role):
        return Param(cname, label, expr.dtype, expr.ndim, expr.type.shape,
                     self.dims[id(expr)], role, None)

    # ---- storage -------------------------------------------------------------------
    def _leaf_value(self, node):
        if id(node) in self.value:
            return
        if isinstance(node, Constant):
            if node.value.size == 1 and node.ndim == 0:
                self.value[id(node)] = ("literal", node.value.item() if node.weak else node.value[()])
            else:
                cname = self.names.fresh(f"{self.name}_const")
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
                elif id(c) in self.sched.recomputed:  # its readers read `node`
                    last = max(last, self.last_read(c), self.sched.stage_index(c))
                else:
                    last = max(last, self.sched.stage_index(c))
            self._last[key] = last
        return self._last[key]

    def _storage(self, node, target, transposed=False):
        """A dense buffer for a materialized node: its output param or a temp,
        row-major, or column-major where `transposed` (a 2-d temp that is only
        read transposed: kgen/lower/steps.py, _stores_transposed)."""
        dims = self.dims[id(node)]
        strides = self.ints.contiguous_strides(dims, "t")
        if transposed:
            self._transposed.add(id(node))
            strides = [1, dims[0]]
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
                buf = Buffer(self.names.fresh(f"tmp{len(self.buffers)}"), node.dtype, size, "temp")
                self.buffers.append(buf)
            self._temps[id(node)] = (node, buf)
            view = View(buf.name, node.dtype, 0, dims, strides, not transposed)
        self.value[id(node)] = view
        return view

    def _release(self, idx):
        """Return temporaries whose last reader has run to the pool."""
        for node_id, (node, buf) in list(self._temps.items()):
            if self.last_read(node) <= idx:
                self._free.setdefault(buf.dtype, []).append(buf)
                del self._temps[node_id]

    # ---- views -------------------------------------------------------------------
    def _index_view(self, node, base, dims):
        """The view of `base` that `node`'s basic index (subtensor or its
        gradient) selects: offsets from the slice starts, scaled strides."""
        starts, steps = self._slices[id(node)], iter(self._steps.get(id(node), []))
        offset, strides, axis, si = base.offset, [], 0, 0
        for entry in node.attr("index"):
            if entry[0] == "n":
                strides.append(0)
                continue
            offset = self.ints.add(offset, self.ints.mul(starts[si], base.strides[axis], "off"),
                                   "off")
            if entry[0] == "s":
                strides.append(self.ints.mul(base.strides[axis], next(steps), "st"))
            si += 1
            axis += 1
        strides += base.strides[axis:]
        return View(base.buf, base.dtype, offset, dims, strides, False)

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
            # the transpose of a column-major 2-d buffer is dense row-major
            col_major = len(src.dims) == 2 and isinstance(src.offset, int) and src.offset == 0 \
                and src.strides[0] == 1 and src.strides[1] == src.dims[0]
            return View(src.buf, src.dtype, src.offset, dims, strides,
                        (src.contiguous and kept == sorted(kept)) or (col_major and pattern == (1, 0)))
        if op == "subtensor":
            return self._index_view(node, src, dims)
        if op == "reshape":
            assert src.contiguous, "the schedule only views contiguous reshapes"
            return View(src.buf, src.dtype, src.offset, dims,
                        self.ints.contiguous_strides(dims, "rs"), True)
        if op == "specify_shape":  # the same memory; the shape phase checked the dims
            return View(src.buf, src.dtype, src.offset, dims, list(src.strides), src.contiguous)
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
        var = (self.names.user("leaf", node.name) if node.op is None and node.name
               else self.names.fresh("v"))
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
            var = self.names.fresh(f"t{len(locals_) + 1}")
            # comment each local with its expression while that stays short
            # (bounded work: deep chains would make this quadratic)
            comment = _one_line(n, 100) if self.small_graph(n) else n.op.name
            locals_.append(Local(var, n, operands, comment, self._flat_index(n, loop_dims)))
            index[id(n)] = var
        return leaves, locals_, index

    def _flat_index(self, node, loop_dims):
        """An indexed op (a random draw) reads its element's flat index in its
        own row-major shape: the flat loop's `i` where the node has the loop's
        size, else these strides over the loop indices (None: not indexed)."""
        if not getattr(node.op, "indexed", False):
            return None
        self.features.add("random")
        dims = self.dims[id(node)]
        strides = self.ints.contiguous_strides(dims, "k")
        pad = len(loop_dims) - len(dims)
        return [0] * pad + [self.ints.bstride(d, s, f"k_b{j}")
                            for j, (d, s) in enumerate(zip(dims, strides))]

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
        for local in loop.locals:
            if local.index is not None and list(self.dims[id(local.node)]) != list(loop.dims):
                # a draw that may be broadcast at run time: the flat `i` is its
                # index only when it has the loop's size
                checks.append((None, self.ints.product(self.dims[id(local.node)], "n")))
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
                  or id(n) not in self.sched.recomputed
                  and any(self.sched.stage_index(c) != idx or id(c) in self.sched.views
                          for c in self.sched.users.get(id(n), []))]
        if not stored:  # values nobody reads (alloc's shape model): no loop at all
            return
        # only what a store needs is computed
        needed, stack = set(), list(stored)
        while stack:
            n = stack.pop()
            if id(n) in needed:
                continue
            needed.add(id(n))
            stack.extend(i for i in value_reads(n) if id(i) in group)
        members = self._with_recomputed([n for n in stage.nodes if id(n) in needed])
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

    def _with_recomputed(self, members, root=None):
        """`members`, each preceded by the cheap nodes it reads that the loop
        computes again instead of loading (Schedule.recomputed); `root`: a
        reduction's input, added where it is such a node itself."""
        again = self.sched.recomputed
        if not again:
            return members
        have, out = {id(n) for n in members}, []
        for n in members:
            for i in value_reads(n):
                if id(i) in again and id(i) not in have:
                    have.add(id(i))
                    out.append(i)
            out.append(n)
        if root is not None and id(root) in again and id(root) not in have:
            out.append(root)
        return out

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
        members = self._with_recomputed(members, body_root)
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
