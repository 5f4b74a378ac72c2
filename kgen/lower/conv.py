"""The lowering of the dedicated conv ops (kgen/expr/ops/conv.py): shape rules,
the `conv` step (kgen/templates/c/conv.c.jinja in C, cuda/conv.cu.jinja: an
implicit GEMM in CUDA) and the fusion of its elementwise consumer into it.

C route, for every form (border, stride, dilation, groups). The columns of the
convolution are the (image, output position) pairs. The images are cut into at
most MAX_CHUNKS chunks, one OpenMP task each (the split depends on the batch
size only, so results do not depend on the thread count). A chunk walks its
columns in panels of P, across image boundaries; per panel and group, an im2col
block (K = in channels/groups * kh * kw rows of P columns, zeros where a tap
falls in the padding) is built in the task's own scratch and multiplied with
the packed filters by kg_gemm.h (serial inside the parallel region; see
module.c.jinja for why not the BLAS), into an Og x P tile that a second pass
stores into NCHW, through the fused epilogue when there is one. P is sized so
the block and the tile fit in a quarter of L2 (PANEL_BYTES), rounded down to a
multiple of PANEL_ALIGN so that the GEMM runs on its widest tiles: no im2col buffer
is bigger than one panel. The gradients walk the same panels: w.r.t. the input,
dcols = W^T @ g, then col2im (adding the panel back into the chunk's images, so
chunks never write the same element); w.r.t. the filters, dW += g @ cols^T into
a partial sum per chunk, summed in chunk order.

The filters' gradient is a product with a tiny output (Og x K: 20 x 25 on
LeNet's first layer) and a huge reduction (every column). With the K x P panel
the GEMM had to pack cols^T by strided gathers, per column as much work as the
product itself at K = 25; so this role builds the panel transposed (P x Kp: a
column's K taps contiguous, K rounded up to 64 bytes with zeros, so the GEMM's
B packs by whole-vector copies and no sliver is partial), and where an image
has at least G_INPLACE_HW output positions the GEMM reads g in place (one
product per image the panel touches, rows HW apart) instead of copying it into
a tile: the copy, in runs of one output row, cost as much as the product's
packing at small K. Below that g is copied: each in-place product sums only
one image's HW terms and re-reads its Og x Kp block of dW, which on LeNet's
second layer (HW = 64, Kp = 512) cost more than the copy (57-59 against 62-63
GFLOP/s); on its first (HW = 576, Kp = 32) reading in place won (30-33 against
20-21).
Measured single-threaded against the K x P route (bench_conv.py --layers, two
alternating runs on a loaded machine): LeNet's first layer's dW 17-22 -> 26-28
GFLOP/s (PyTorch 28-38), the second's 41-46 -> 49-60 (PyTorch 31-37).

Only this route is generated, for every shape. A direct loop for tiny filters
or channels was not written: on LeNet's first layer (one input channel, 5x5
filters: K = 25, the thinnest GEMM it has) the panel route ran at 44 GFLOP/s
against PyTorch's oneDNN 46 GFLOP/s in the same run (benchmarks/bench_conv.py
prints both), so a second route had little to gain there.
"""
from ..errors import ShapeError
from .comments import _one_line
from .plan import Buffer, Loop, Step, View

PANEL_BYTES = 512 * 1024    # one panel (im2col block and tile): a quarter of a 2 MiB L2
MAX_CHUNKS = 16             # images are split into at most this many OpenMP tasks
PANEL_MIN = 16              # columns: below this the GEMM calls cost more than they do
PANEL_ALIGN = 32            # P a multiple of the GEMM's widest sliver (2 AVX-512 float
                            # vectors): 238 columns ran on its 1-vector tiles, 224 on 2
G_INPLACE_HW = 128          # output positions per image from which dW's GEMM reads g in place


class ConvRules:
    """Mixed into the lowering: `_dims_conv2d*` shape rules and `_step_conv2d*`."""

    def _conv_geometry(self, node):
        """(x dims, w dims, output dims) of a conv node, with its checks."""
        role = node.op.role
        if role == "forward":
            xd, wd = self.dims[id(node.inputs[0])], self.dims[id(node.inputs[1])]
        elif role == "input":
            xd, wd = self.dims[id(node.inputs[2])], self.dims[id(node.inputs[1])]
        else:
            xd, wd = self.dims[id(node.inputs[0])], self.dims[id(node.inputs[2])]
        groups = node.attr("groups")
        (ph, pw), stride, dil = node.attr("pad"), node.attr("stride"), node.attr("dil")
        msg = self._shape_msg("conv2d (input and filters)", [xd, wd])
        self.ints.require_eq(xd[1], self.ints.mul(wd[1], groups, "conv_c"), msg)
        if groups > 1:
            self.ints.require_eq(self.ints.mul(self.ints.floordiv(wd[0], groups, "conv_og"),
                                               groups, "conv_o"), wd[0], msg)
        out = [xd[0], wd[0]]
        for axis, pad in ((2, ph), (3, pw)):
            k = axis - 2
            eff = self.ints.add(self.ints.mul(self.ints.sub(wd[axis], 1, "conv_k"), dil[k],
                                              "conv_k"), 1, "conv_eff")
            room = self.ints.sub(self.ints.add(xd[axis], 2 * pad, "conv_pad"), eff, "conv_room")
            if isinstance(room, int):
                if room < 0:
                    raise ShapeError(f"conv2d: filters of shape {wd} do not fit an input of "
                                     f"shape {xd} padded by {(ph, pw)}")
            else:   # room >= 0, failing with both shapes in the message
                self.ints.require_eq(room, self.ints.maximum(room, 0, "conv_fits"),
                                     self._shape_msg(f"conv2d (input and filters, padded by "
                                                     f"{(ph, pw)})", [xd, wd]))
            out.append(self.ints.add(self.ints.floordiv(room, stride[k], "conv_o"), 1, "conv_o"))
        return xd, wd, out

    def _dims_conv(self, node, dims):
        xd, wd, out = self._conv_geometry(node)
        # the step reads the geometry back without emitting its checks again
        self.__dict__.setdefault("_conv_geo", {})[id(node)] = (xd, wd, out)
        if node.op.role == "forward":
            return out
        g = dims[0] if node.op.role == "input" else dims[1]   # the output gradient
        label = node.op.name
        for a, b in zip(g, out):
            self.ints.require_eq(a, b, self._shape_msg(label, [g, out]))
        return list(xd if node.op.role == "input" else wd)

    _dims_conv2d = _dims_conv2d_grad_input = _dims_conv2d_grad_filters = _dims_conv

    # ---- the step -------------------------------------------------------------------
    def _conv_dense(self, node):
        """A contiguous View of `node`'s value (a copy when it is a strided view),
        so the GEMM reads the output gradient's panels as rows."""
        val = self._materialized(node)
        if val.contiguous:
            return val
        dims = self.dims[id(node)]
        size = self.ints.product(dims, "n")
        buf = Buffer(self.names.fresh("conv_dense"), node.dtype, size, "temp")
        self.buffers.append(buf)
        view = View(buf.name, node.dtype, 0, dims, self.ints.contiguous_strides(dims, "cd"), True)
        self._copy_view(node, view, f"{_one_line(node, 120)} (dense copy)")
        return view

    def _scratch(self, hint, dtype, size):
        buf = Buffer(self.names.fresh(hint), dtype, size, "temp")
        self.buffers.append(buf)
        return View(buf.name, dtype, 0, [size], [1], True)

    def _step_conv(self, node, out):
        role = node.op.role
        xd, wd, od = self._conv_geo[id(node)]
        ins = node.inputs
        x = self._materialized(ins[0]) if role != "input" else None
        w = self._materialized(ins[1]) if role != "filters" else None
        g = self._conv_dense(ins[0] if role == "input" else ins[1]) if role != "forward" else None
        groups = node.attr("groups")
        k = self.ints.product([self.ints.floordiv(xd[1], groups, "conv_cg"), wd[2], wd[3]],
                              "conv_kk")
        hw = self.ints.mul(od[2], od[3], "conv_hw")
        og = self.ints.floordiv(wd[0], groups, "conv_og")
        itemsize = 4 if node.dtype == "float32" else 8
        kp = k
        if role == "filters":   # the transposed panel's rows: K rounded up to 64 bytes
            lanes = 64 // itemsize
            kp = self.ints.mul(self.ints.floordiv(self.ints.add(k, lanes - 1, "conv_kp"), lanes,
                                                  "conv_kp"), lanes, "conv_kp")
        # a panel: P columns of im2col (K or Kp rows) and of the output or g (Og rows)
        per_column = self.ints.add(kp, og, "conv_rows")
        fits = self.ints.floordiv(PANEL_BYTES // itemsize,
                                  self.ints.maximum(per_column, 1, "conv_r1"), "conv_p")
        aligned = self.ints.mul(self.ints.floordiv(fits, PANEL_ALIGN, "conv_p"), PANEL_ALIGN, "conv_p")
        panel = self.ints.minimum(self.ints.mul(xd[0], hw, "conv_n"), self.ints.maximum(
            aligned, PANEL_MIN, "conv_p"), "conv_panel")
        chunks = self.ints.minimum(xd[0], MAX_CHUNKS, "conv_chunks")
        part = None
        if role == "filters":   # one partial sum of dW per chunk
            part = self._scratch("conv_part", node.dtype, self.ints.product(
                [chunks, wd[0], kp], "conv_partsize"))
        wpack = None
        if role != "filters":
            wpack = self._scratch("conv_wpack", node.dtype, self.ints.product(wd, "conv_wsize"))
        self.features.update(("gemm", "conv", "gemm_" + node.dtype))
        # the implicit GEMM of the CUDA kernel, per group: M x N outputs, sums of K terms
        cg = wd[1]
        taps = self.ints.mul(wd[2], wd[3], "conv_taps")
        gemm = {"forward": (og, self.ints.mul(xd[0], hw, "conv_n"), k),
                "input": (cg, self.ints.product([xd[0], xd[2], xd[3]], "conv_n"),
                          self.ints.mul(og, taps, "conv_k")),
                "filters": (og, k, self.ints.mul(xd[0], hw, "conv_n"))}[role]
        (ph, pw), (sh, sw), (dh, dw) = node.attr("pad"), node.attr("stride"), node.attr("dil")
        self.steps.append(Step("conv", _one_line(node, 160), dict(
            role=role, dtype=node.dtype, x=x, w=w, g=g, out=out, wpack=wpack, part=part,
            chunks=chunks, max_chunks=MAX_CHUNKS, g_inplace_hw=G_INPLACE_HW,
            xdims=xd, wdims=wd, odims=od, groups=groups, K=k, Kp=kp, HW=hw, P=panel,
            pad=(ph, pw), stride=(sh, sw), dil=(dh, dw), gemm=gemm, node=node,
            epilogue=None, ep_leaf=None)))

    _step_conv2d = _step_conv2d_grad_input = _step_conv2d_grad_filters = _step_conv

    # ---- the fused epilogue -------------------------------------------------------
    def _fuse_conv_epilogue(self, idx):
        """Fold the elementwise loop just emitted for stage `idx` into the store
        of the forward conv step before it, when that loop is the convolution's
        only reader and reads it element for element (tanh(conv + b) is the
        canonical case): each output tile then goes through the loop's body
        while it is in cache, and the convolution itself is never stored."""
        if len(self.steps) < 2 or not isinstance(self.steps[-1], Loop):
            return
        loop, conv = self.steps[-1], self.steps[-2]
        if loop.kind != "map" or not isinstance(conv, Step) or conv.kind != "conv" \
                or conv.args["role"] != "forward" or conv.args["epilogue"] is not None:
            return
        node = conv.args["node"]
        if any(node is e for e in self.exprs) or len(loop.dims) != 4 or not all(
                ld == cd or (isinstance(cd, int) and cd > 1 and self.ints.covers(ld, cd))
                for ld, cd in zip(loop.dims, self.dims[id(node)])):
            return   # the loop must run over the convolution's elements, once each
        users = self.sched.users.get(id(node), [])
        if not users or any(self.sched.stage_of.get(id(c)) != idx or id(c) in self.sched.views
                            for c in users):
            return
        out = conv.args["out"]
        reads = [lf for lf in loop.leaves if lf.kind == "buffer" and lf.view.buf == out.buf]
        if len(reads) != 1 or not reads[0].streamed or reads[0].view is not out:
            return
        if any(view.buf == out.buf for _, view in loop.stores):
            return
        conv.args.update(epilogue=loop, ep_leaf=reads[0])
        conv.comment = f"{conv.comment}; then {loop.comment}"
        self.steps.pop()
