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

from ..codegen.cuda import BLOCK, ERR_WORDS, GEMM_BM, GEMM_BN, cuda_kernels, flat_steps, \
    reduce_sizes
from ..lower.plan import Step

MAX_BLOCKS = 65535       # grid-stride kernels: more blocks than this only add scheduling
MAX_GRID_YZ = 65535      # the hardware limit of grid.y and grid.z (the GEMM loops beyond)
SPLIT_TARGET = 1024      # a reduction with fewer tasks than this splits its rows...
CHUNK_MIN = BLOCK * 16   # ...into chunks of at least this many elements...
MAX_SPLITS = 1024        # ...and at most this many chunks per row
ONE_LANE_MAX = 8         # rows this short get one thread each...
WARP_LANES_MAX = 2048    # ...rows up to this long a warp, longer ones the whole block
WARP = 32


def launch_constants():
    """The numbers above, for the C host launcher's copy of these rules (its
    tests check that both give the same launches)."""
    return dict(KG_BLOCK=BLOCK, KG_MAX_BLOCKS=MAX_BLOCKS, KG_MAX_GRID_YZ=MAX_GRID_YZ,
                KG_SPLIT_TARGET=SPLIT_TARGET, KG_CHUNK_MIN=CHUNK_MIN, KG_MAX_SPLITS=MAX_SPLITS,
                KG_ONE_LANE_MAX=ONE_LANE_MAX, KG_WARP_LANES_MAX=WARP_LANES_MAX, KG_WARP=WARP,
                KG_GEMM_BM=GEMM_BM, KG_GEMM_BN=GEMM_BN, KG_ERR_WORDS=ERR_WORDS)


def cdiv(a, b):
    return -(-a // b)


def grid_1d(n):
    """(grid, block) of a grid-stride kernel over n elements; None when there is nothing to do."""
    if n <= 0:
        return None
    return (min(cdiv(n, BLOCK), MAX_BLOCKS), 1, 1), (BLOCK, 1, 1)


def lanes_for(length):
    """Threads that share one reduced row: 1 for short rows, a warp, or the whole block."""
    if length <= ONE_LANE_MAX:
        return 1
    if length <= WARP_LANES_MAX:
        return WARP
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
            # a scan body's step t, the steps an until() loop ran: set at each launch
            extras.update(t=("t", 0), steps=("steps", 0))
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
        rule, p = launch_rule(k), lambda dims: self.product(dims, ints)  # noqa: E731
        if rule.shape == "1d":
            if rule.guard is not None and not p(rule.guard):
                return None, {}
            return grid_1d(p(rule.sizes[0])), {"err": ("buffer", "kg_err")}
        if rule.shape == "gemm":
            return gemm_grid(*(p(dims) for dims in rule.sizes)), {}
        nout, nred = (p(dims) for dims in rule.sizes)
        st = k.step
        if rule.shape == "reduce":
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
        r = reductions.get(k.index)  # reduce_final: only after a split first pass
        if r is None or r.splits == 1:
            return None, {}
        name = f"kg_part{k.index}"
        extras = {"part": ("buffer", name), "part_at": ("buffer", name + "_at"),
                  "outputs": ("int", nout),
                  "splits": ("int", r.splits), "lanes": ("int", r.final_lanes)}
        return ((r.final_blocks, 1, 1), (BLOCK, 1, 1)), extras


@dataclass(frozen=True)
class LaunchRule:
    """Which sizes decide a kernel's geometry: the one statement of it, which this
    module evaluates and the packages' C host launcher (cuda/launcher.c.jinja) renders.

    shape "1d":     grid_1d(product(sizes[0])), skipped when product(guard) is 0
    shape "gemm":   gemm_grid(M, N, batch) with sizes [[M], [N], batch dims]
    shape "reduce" / "final": reduce_launch(nout, nred), sizes [nout dims, nred dims]
    """
    shape: str
    sizes: tuple
    guard: tuple = None


def launch_rule(k):
    """The LaunchRule of a CudaKernel (each a list of Ints to multiply)."""
    st = k.step
    if k.role in ("reduce", "reduce_final"):
        return LaunchRule("reduce" if k.role == "reduce" else "final",
                          tuple(tuple(dims) for dims in reduce_sizes(st)))
    if k.role == "map":
        return LaunchRule("1d", ((st.size,),))
    if k.role == "scan_last":  # one thread per element of the copied row
        return LaunchRule("1d", ((k.pointers[0]["stride"],),))
    a = st.args
    if k.role == "gemm":
        return LaunchRule("gemm", ((a["M"],), (a["N"],), tuple(a["batch"])))
    if k.role == "conv":  # an implicit GEMM per group (kgen/templates/cuda/conv.cu.jinja)
        return LaunchRule("gemm", ((a["gemm"][0],), (a["gemm"][1],), (a["groups"],)))
    one_d = {"gather": lambda: (*a["lead"], a["inner"]),
             "scatter_init": lambda: (a["size"],),
             "scatter_add": lambda: tuple(a["rest"]),
             "fill": lambda: (a["size"],),
             "accumulate": lambda: tuple(a["out"].dims),
             "arange": lambda: (a["n"],),
             "cumulate": lambda: (a["lines"],),  # one thread per line
             "sort": lambda: (a["lines"],),
             "pool": lambda: (a["size"],)}  # one thread per output (cuda/pool.cu.jinja)
    if k.role not in one_d:
        raise AssertionError(f"no launch geometry for kernel role {k.role!r}")
    guard = tuple(a["lead"]) if k.role == "scatter_add" else None
    return LaunchRule("1d", (one_d[k.role](),), guard)


@dataclass(frozen=True)
class HostStep:
    """One thing a host launcher does, in order (kgen/templates/cuda/launcher.c.jinja).

    kind "decide":   read ifelse `step`'s condition (one scalar copied back) and run
                     the taken branch's shape checks; `index` is its place in flat_steps
    kind "loop":     open scan `step`'s host loop over t ("end_loop" closes it)
    kind "launch":   launch `kernel`
    guards: ((ifelse index, side), ...): done only when every one of those branches
    is taken (a loop's launches carry none: the loop itself is guarded).
    """
    kind: str
    guards: tuple
    index: int = -1
    step: object = None
    kernel: object = None


def host_program(plan):
    """The HostSteps of a call of `plan`: its kernels in cuda_kernels order (the
    launcher's function table), each ifelse decided before the first kernel
    after it (a branch taken costs one scalar copy, one not taken no launch),
    each scan body's kernels inside their loop. An ifelse whose branches have
    no kernel and no check is not decided at all."""
    flat = flat_steps(plan)
    place = {id(st): i for i, (st, _, _) in enumerate(flat)}

    def guards(gs):
        return tuple((place[id(st)], side) for st, side in gs)

    kernels = cuda_kernels(plan)
    guarded = {i for k in kernels for i, _ in guards(k.guards)}
    pending = [HostStep("decide", guards(g), i, st) for i, (st, g, _) in enumerate(flat)
               if st.kind == "ifelse" and (i in guarded or st.args["then_checks"]
                                           or st.args["else_checks"])]
    out, scan = [], None
    for k in kernels:
        if scan is not None and k.scan is not scan:
            out.append(HostStep("end_loop", (), place[id(scan)], scan))
            scan = None
        if scan is None:  # decisions come between launches, never inside a loop
            while pending and pending[0].index < k.index:
                out.append(pending.pop(0))
        if k.scan is not None and scan is None:
            scan = k.scan
            out.append(HostStep("loop", guards(k.guards), place[id(scan)], scan))
        out.append(HostStep("launch", () if scan is not None else guards(k.guards),
                            k.index, k.step, k))
    if scan is not None:
        out.append(HostStep("end_loop", (), place[id(scan)], scan))
    return out + pending


def step_labels(plan):
    """What an index error names for each step (an ifelse's branch steps and a
    scan's body steps after it: codegen.cuda.flat_steps): its label, else its kind."""
    return [st.args.get("label", st.kind) if isinstance(st, Step) else st.kind
            for st, _, _ in flat_steps(plan)]


def index_error_message(plan, record):
    """The message of an index error the kernels recorded (kg_cuda.h's kg_wrap_index)."""
    _flag, step, axis, index, size = (int(v) for v in record[:ERR_WORDS])
    label = step_labels(plan)[step]
    return f"{label}: index {index} is out of bounds for axis {axis} with size {size}"
