"""Launch geometry and argument marshalling for the CUDA runtime, in plain Python.

Given a plan's kernels (kgen/codegen/cuda.py) and the integers its shape phase
computed, `Schedule.resolve` says which device buffers a call needs (outputs,
temporaries, reduction partials, the index-error record) and, for each kernel
in order, its grid and block and its argument list. It imports no CUDA
binding, so all of this is tested without a GPU; kgen/runtime/cuda.py only
allocates what it is told and launches.

Geometry is a function of the sizes alone - never of the device - so a
reduction's grouping, and with it its floating-point result, is the same on
every GPU and every run.
"""
from dataclasses import dataclass

import numpy as np

from ..codegen.cuda import BLOCK, ERR_WORDS, GEMM_BM, GEMM_BN, cuda_kernels, reduce_sizes

MAX_BLOCKS = 65535       # grid-stride kernels: more blocks than this only add scheduling
MAX_GRID_YZ = 65535      # the hardware limit of grid.y and grid.z (the GEMM loops beyond)
SPLIT_TARGET = 1024      # a reduction with fewer tasks than this splits its rows...
CHUNK_MIN = BLOCK * 16   # ...into chunks of at least this many elements...
MAX_SPLITS = 1024        # ...and at most this many chunks per row


def cdiv(a, b):
    return -(-a // b)


def grid_1d(n):
    """(grid, block) of a grid-stride kernel over n elements; None when there is nothing to do."""
    if n <= 0:
        return None
    return (min(cdiv(n, BLOCK), MAX_BLOCKS), 1, 1), (BLOCK, 1, 1)


def lanes_for(length):
    """Threads that share one reduced row: 1 for short rows, a warp, or the whole block."""
    if length <= 8:
        return 1
    if length <= 2048:
        return 32
    return BLOCK


@dataclass(frozen=True)
class ReduceLaunch:
    lanes: int          # threads per task in pass 1
    splits: int         # chunks per output row (1: no second pass)
    blocks: int         # pass 1 grid
    final_lanes: int    # pass 2 (splits > 1 only)
    final_blocks: int


def reduce_launch(nout, nred):
    """How `nout` outputs, each reducing `nred` elements, are spread over the GPU."""
    if nout <= 0:
        return None
    lanes = lanes_for(nred)
    splits = 1
    if lanes == BLOCK and nout < SPLIT_TARGET:
        # few long rows: cut each into chunks, combined in order by a second pass
        splits = max(1, min(cdiv(nred, CHUNK_MIN), cdiv(SPLIT_TARGET, nout), MAX_SPLITS))
    blocks = cdiv(nout * splits, BLOCK // lanes)
    if splits == 1:
        return ReduceLaunch(lanes, 1, blocks, 0, 0)
    final_lanes = lanes_for(splits)
    return ReduceLaunch(lanes, splits, blocks, final_lanes, cdiv(nout, BLOCK // final_lanes))


def gemm_grid(m, n, batch):
    """(grid, block) of the tiled GEMM: x over column tiles, y over row tiles, z over batches."""
    if m <= 0 or n <= 0 or batch <= 0:
        return None
    return ((cdiv(n, GEMM_BN), min(cdiv(m, GEMM_BM), MAX_GRID_YZ), min(batch, MAX_GRID_YZ)),
            (BLOCK, 1, 1))


@dataclass
class Launch:
    kernel: object      # CudaKernel
    grid: tuple
    block: tuple
    args: list          # ("buffer", name) or ("int", value), one per kernel.args


@dataclass
class Call:
    """What one call needs: buffers to allocate, then launches in order."""
    outputs: list       # (param name, shape, dtype), in plan order
    temps: list         # (buffer name, shape, dtype): temporaries and reduction partials
    err: bool           # whether the index-error record is read after the launches
    launches: list


class Schedule:
    """The static part (kernels, where each Int is found) of every call of one plan."""

    def __init__(self, plan):
        self.plan = plan
        self.kernels = cuda_kernels(plan)
        self.index = {v: k for k, v in enumerate(plan.int_vars)}
        self.outputs = [p for p in plan.params if p.role in ("output", "update")]
        self.temps = [b for b in plan.buffers if b.kind == "temp"]
        self.has_err = any(a.ref == "err" for k in self.kernels for a in k.args)

    def value(self, v, ints):
        """An Int (a Python int, or a shape-phase variable's name) at this call."""
        return v if isinstance(v, (int, np.integer)) else int(ints[self.index[v]])

    def product(self, dims, ints):
        out = 1
        for d in dims:
            out *= self.value(d, ints)
        return out

    def resolve(self, ints):
        """The Call for these shape-phase integers (a list in plan.int_vars order)."""
        value = lambda v: self.value(v, ints)  # noqa: E731
        outputs = [(p.name, tuple(value(d) for d in p.dims), p.dtype) for p in self.outputs]
        temps = [(b.name, (value(b.size),), b.dtype) for b in self.temps]
        launches, reductions = [], {}
        for k in self.kernels:
            geometry, extras = self._geometry(k, ints, reductions, temps)
            if geometry is None:
                continue
            args = []
            for a in k.args:
                if a.kind == "buffer":
                    args.append(("buffer", a.ref))
                elif a.kind == "int":
                    args.append(("int", value(a.ref)))
                else:
                    args.append(extras[a.ref])
            launches.append(Launch(k, geometry[0], geometry[1], args))
        return Call(outputs, temps, self.has_err, launches)

    def _geometry(self, k, ints, reductions, temps):
        """((grid, block) or None, the extras of its arguments)."""
        st, p = k.step, lambda dims: self.product(dims, ints)  # noqa: E731
        err = {"err": ("buffer", "kg_err")}
        if k.role == "map":
            return grid_1d(self.value(st.size, ints)), {}
        if k.role in ("reduce", "reduce_final"):
            nout, nred = (p(dims) for dims in reduce_sizes(st))
        if k.role == "reduce":
            r = reductions[k.index] = reduce_launch(nout, nred)
            if r is None:
                return None, {}
            extras = {"splits": ("int", r.splits), "lanes": ("int", r.lanes),
                      "part": ("int", 0), "part_at": ("int", 0)}  # null unless split
            if r.splits > 1:
                name = f"kg_part{k.index}"
                temps.append((name, (nout * r.splits,), k.acc_dtype))
                extras["part"] = ("buffer", name)
                if st.kind == "argreduce":
                    temps.append((name + "_at", (nout * r.splits,), "int64"))
                    extras["part_at"] = ("buffer", name + "_at")
            return ((r.blocks, 1, 1), (BLOCK, 1, 1)), extras
        if k.role == "reduce_final":
            r = reductions.get(k.index)
            if r is None or r.splits == 1:
                return None, {}
            name = f"kg_part{k.index}"
            extras = {"part": ("buffer", name), "part_at": ("buffer", name + "_at"),
                      "outputs": ("int", nout),
                      "splits": ("int", r.splits), "lanes": ("int", r.final_lanes)}
            return ((r.final_blocks, 1, 1), (BLOCK, 1, 1)), extras
        a = st.args
        if k.role == "gemm":
            return gemm_grid(self.value(a["M"], ints), self.value(a["N"], ints),
                             p(a["batch"])), {}
        if k.role == "conv":  # an implicit GEMM per group (kgen/templates/cuda/conv.cu.jinja)
            m, n, _ = (self.value(v, ints) for v in a["gemm"])
            return gemm_grid(m, n, a["groups"]), {}
        if k.role == "pool":  # one thread per output (kgen/templates/cuda/pool.cu.jinja)
            return grid_1d(self.value(a["size"], ints)), {}
        if k.role == "gather":
            return grid_1d(p(a["lead"]) * self.value(a["inner"], ints)), err
        if k.role == "scatter_init":
            return grid_1d(self.value(a["size"], ints)), {}
        if k.role == "scatter_add":
            return (grid_1d(p(a["rest"])) if p(a["lead"]) else None), err
        if k.role == "fill":
            return grid_1d(self.value(a["size"], ints)), {}
        if k.role == "accumulate":
            return grid_1d(p(a["out"].dims)), {}
        if k.role == "arange":
            return grid_1d(self.value(a["n"], ints)), {}
        if k.role in ("cumulate", "sort"):  # one thread per line
            return grid_1d(self.value(a["lines"], ints)), {}
        raise AssertionError(f"no launch geometry for kernel role {k.role!r}")


def index_error_message(plan, record):
    """The message of an index error the kernels recorded (kg_cuda.h's kg_wrap_index)."""
    _flag, step, axis, index, size = (int(v) for v in record[:ERR_WORDS])
    label = plan.steps[step].args.get("label", plan.steps[step].kind)
    return f"{label}: index {index} is out of bounds for axis {axis} with size {size}"
