"""The non-loop steps of the lowering (GEMM, gather, scatter-add, concatenate,
fills, scans and sorts along an axis...): each op's Step record, one method per op."""
from ..errors import KgenTypeError
from .comments import _one_line
from .plan import Buffer, Step, View


def _zero(offset):
    return isinstance(offset, int) and offset == 0


class StepRules:
    """Mixed into the lowering: `_step_<op>(node, out)` appends Steps."""

    def _materialized(self, node):
        """A View of `node`'s value (steps other than loops need memory)."""
        val = self._value_of(node)
        if isinstance(val, View):
            return val
        if isinstance(val, tuple) and val[0] == "literal":
            # one constant element, read at every position (stride 0 on each axis)
            cname = self.names.fresh(f"{self.name}_const")
            self.buffers.append(Buffer(cname, node.dtype, 1, "const", (val[1],)))
            dims = self.dims.get(id(node), [])
            return View(cname, node.dtype, 0, list(dims), [0] * len(dims), not dims)
        raise KgenTypeError(f"C backend: {node.op.name if node.op else 'value'} needs an array input")

    def _stores_transposed(self, node):
        """Whether a 2-d product is kept transposed (column-major): when every
        reader takes it through a transpose, as a gradient's (A @ B).T does,
        the GEMM writes C.T = B.T @ A.T (the operands swapped, read through
        their strides) and the readers stream dense rows instead of striding
        down columns. Never an output's storage, which is row-major."""
        if node.op.name != "matmul" or any(i.ndim != 2 for i in node.inputs) \
                or any(node is e for e in self.exprs):
            return False
        users = self.sched.users.get(id(node), [])
        return bool(users) and all(
            u.op.name == "dimshuffle" and u.attr("pattern") == (1, 0) and id(u) in self.sched.views
            for u in users)

    def _step_matmul(self, node, out):
        a, b = (self._materialized(i) for i in node.inputs)
        self.features.add("gemm")
        if node.dtype not in ("float32", "float64"):
            self.features.add("int_gemm")
        else:  # only the products of the dtypes used are compiled (module.c.jinja)
            self.features.add("gemm_" + node.dtype)
        if id(node) in self._transposed:
            # C stored column-major: compute C.T (N x M) = B.T @ A.T into rows of length M
            M, N, K = a.dims[0], b.dims[1], a.dims[1]
            self.steps.append(Step("gemm", f"{_one_line(node, 160)}", dict(
                dtype=node.dtype, M=N, N=M, K=K, a=b, b=a, out=out,
                a_rs=b.strides[1], a_cs=b.strides[0], b_rs=a.strides[1], b_cs=a.strides[0],
                ldc=M, batch=[], a_bs=[], b_bs=[], o_bs=[])))
            return
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
        g = node.inputs[1]
        dst = self._index_view(node, out, self.dims[id(g)])
        self._copy_view(g, dst, _one_line(node, 160))

    def _step_sum_to(self, node, out):
        g = self._materialized(node.inputs[0])
        gd = self.dims[id(node.inputs[0])]
        xd = self.dims[id(node)]
        lead = len(gd) - len(xd)
        ostr = [0] * lead + [self.ints.bstride(d, s, "sts") for d, s in zip(xd, out.strides)]
        size = self.ints.product(xd, "n")
        # where no axis turns out broadcast at run time (the sizes pairs all
        # equal), the sum is a copy: the C steps test `same` and copy, in one
        # parallel pass, instead of filling with zeros and accumulating
        same = None
        if lead == 0 and g.contiguous and out.contiguous and _zero(g.offset) and _zero(out.offset):
            same = [(a, b) for a, b in zip(gd, xd) if a is not b]
        self.steps.append(Step("fill", "zeros", dict(out=out, size=size, value=0, unless=same)))
        self.steps.append(Step("accumulate", _one_line(node, 160), dict(
            g=g, dims=gd, out=out, out_strides=ostr, same=same, size=size)))

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

    def _lines(self, node, out):
        """The args of a step that walks each line of `node`'s input along its
        axis: the other axes' dims and strides, and the axis' length and steps."""
        x = self._materialized(node.inputs[0])
        axis, dims = node.attr("axis"), self.dims[id(node)]
        others = [a for a in range(len(dims)) if a != axis]
        return dict(x=x, out=out, n=dims[axis], x_step=x.strides[axis],
                    out_step=out.strides[axis], dims=[dims[a] for a in others],
                    x_strides=[x.strides[a] for a in others],
                    out_strides=[out.strides[a] for a in others],
                    lines=self.ints.product([dims[a] for a in others], "lines"))

    def _step_cumsum(self, node, out):
        args = self._lines(node, out)
        args.update(init=node.op.c_init, combine=node.op.c_combine.format(acc="kg_acc", x="kg_v"))
        self.steps.append(Step("cumulate", _one_line(node, 160), args))

    _step_cumprod = _step_cumsum

    def _step_sort(self, node, out):
        # a stable merge sort of each line's positions, in two int64 scratch rows
        # per line (one thread per line on CUDA)
        args = self._lines(node, out)
        size = self.ints.mul(self.ints.product(self.dims[id(node)], "n"), 2, "sort_n")
        scratch = Buffer(self.names.fresh("sort_scratch"), "int64", size, "temp")
        self.buffers.append(scratch)
        args.update(scratch=View(scratch.name, "int64", 0, [size], [1], True),
                    positions=node.op.name == "argsort",
                    floating=node.inputs[0].dtype in ("float32", "float64"))
        self.steps.append(Step("sort", _one_line(node, 160), args))

    _step_argsort = _step_sort
