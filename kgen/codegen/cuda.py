"""The CUDA kernels of a Plan: which __global__ functions it becomes, and their arguments.

PyCUDA loads a compiled image with `module_from_buffer`, which holds device
code only, so every plan step becomes one `__global__` kernel (a split
reduction and a scatter_add become two) and the host runs the shape phase and
launches them in plan order. A `CudaKernel` record lists a kernel's arguments
in order - the buffers it reads or writes, the shape-phase integers its code
names, and a few extras (reduction partials, the index-error record) - so the
template that writes the signature and the runtime that packs the arguments
read one list and cannot disagree.

The launch constants live here too: the templates render them as #defines and
the runtime's launch geometry (kgen/runtime/cuda_launch.py) computes grids
from the same numbers.
"""
from dataclasses import dataclass, is_dataclass

from ..lower.plan import Loop, View
from .printer import C_TYPES

BLOCK = 256                        # threads per block, every kernel
GEMM_BM, GEMM_BN, GEMM_BK = 64, 64, 16  # GEMM tile: BMxBN outputs per block, K in steps of BK
ERR_WORDS = 5                      # index-error record (kg_cuda.h): flag, step, axis, index, size

# fields that hold text or IR objects, never shape-phase names
_SKIP = {"comment", "node", "red_op", "label", "doc"}


@dataclass
class KArg:
    """One kernel parameter."""
    name: str      # the C parameter name
    ctype: str     # its C type, as written in the signature
    kind: str      # buffer | int | extra
    ref: str       # buffer: the plan's buffer name; int: the shape-phase variable;
                   # extra: part, part_at, splits, lanes, outputs, err
    dtype: str = "int64"  # element dtype (buffers, partials) or the scalar's dtype

    @property
    def fmt(self):
        """The argument's code for PyCUDA's Function.prepare (struct-module style)."""
        return "P" if "*" in self.ctype else "q"


@dataclass
class CudaKernel:
    """One __global__ function: what it computes (`step`) and how it is called."""
    name: str
    role: str      # map | reduce | reduce_final | gemm | gather | scatter_init | scatter_add
                   # | fill | accumulate | arange | cumulate | sort | conv | pool
    step: object   # the plan's Loop or Step
    index: int     # the step's position in plan.steps
    args: list
    acc_dtype: str = None  # reduce/reduce_final: dtype of the partial results

    @property
    def fmt(self):
        return "".join(a.fmt for a in self.args)

    @property
    def comment(self):
        return self.step.comment


def _walk(obj, visit_str, visit_view):
    """Visit every string and View reachable from a plan step (its Ints and buffers)."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            visit_str(x)
        elif isinstance(x, (list, tuple)):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(v for k, v in reversed(list(x.items())) if k not in _SKIP)
        elif is_dataclass(x) and not isinstance(x, type):
            if isinstance(x, View):
                visit_view(x)
            # vars(): lowering sets a few attributes (red_size, out_size...) outside the fields
            stack.extend(v for k, v in reversed(list(vars(x).items())) if k not in _SKIP)


def _uses(step, int_names):
    """(buffer names in order of appearance, shape-phase ints in plan order) read by a step."""
    ints, bufs = set(), []

    def on_str(s):
        if s in int_names:
            ints.add(s)

    def on_view(v):
        if v.buf not in bufs:
            bufs.append(v.buf)

    _walk(step, on_str, on_view)
    return bufs, ints


def _written(step):
    """The buffers a step writes: a map's stores, a reduction's or a step's output."""
    if isinstance(step, Loop):
        return {view.buf for _, view in step.stores} if step.kind == "map" else {step.out.buf}
    if step.args.get("epilogue") is not None:  # a conv step with a fused loop: its stores
        return _written(step.args["epilogue"])
    scratch = step.args.get("scratch")  # a sort's work rows
    return {step.args["out"].buf} | ({scratch.buf} if scratch is not None else set())


def reduce_sizes(loop):
    """(outputs, elements per output) of a reduction loop, as lists of Ints to multiply."""
    return [loop.dims[a] for a in loop.outer], [loop.dims[a] for a in loop.inner]


def acc_dtype(loop):
    """The dtype a reduction accumulates in (as the C backend: float32 sums in double)."""
    from .render import _acc_dtype
    return loop.in_dtype if loop.kind == "argreduce" else _acc_dtype(loop)


def cuda_kernels(plan):
    """The kernels of `plan`, in launch order."""
    dtypes = {p.name: p.dtype for p in plan.params}
    dtypes.update({b.name: b.dtype for b in plan.buffers if b.kind != "const"})
    order = {v: k for k, v in enumerate(plan.int_vars)}
    kernels = []
    for index, step in enumerate(plan.steps):
        bufs, ints = _uses(step, order)
        out = _written(step)
        args = []
        for b in sorted((b for b in bufs if b in dtypes), key=lambda b: b in out):
            const = "" if b in out else "const "
            args.append(KArg(b, f"{const}{C_TYPES[dtypes[b]]} *__restrict__", "buffer", b,
                             dtypes[b]))
        args += [KArg(v, "const int64_t", "int", v) for v in sorted(ints, key=order.get)]
        base = f"{plan.name}_s{index}"
        kind = step.kind
        if kind in ("reduce", "argreduce"):
            kernels += _reduce_kernels(base, step, index, args)
        elif kind == "scatter_add":
            kernels.append(CudaKernel(f"{base}_scatter_init", "scatter_init", step, index, args))
            kernels.append(CudaKernel(f"{base}_scatter_add", "scatter_add", step, index,
                                      args + [_err_arg()]))
        elif kind == "gather":
            kernels.append(CudaKernel(f"{base}_gather", "gather", step, index,
                                      args + [_err_arg()]))
        else:
            kernels.append(CudaKernel(f"{base}_{kind}", kind, step, index, args))
    return kernels


def _err_arg():
    return KArg("kg_err", "int64_t *__restrict__", "extra", "err")


def _reduce_kernels(base, loop, index, args):
    """Pass 1 reduces chunks of each row; with splits > 1, pass 2 combines the chunks."""
    acc = acc_dtype(loop)
    acc_t = C_TYPES[acc]
    arg = loop.kind == "argreduce"
    part = [KArg("kg_part", f"{acc_t} *__restrict__", "extra", "part", acc)]
    if arg:
        part.append(KArg("kg_part_at", "int64_t *__restrict__", "extra", "part_at"))
    geometry = [KArg("kg_splits", "const int64_t", "extra", "splits"),
                KArg("kg_lanes", "const int64_t", "extra", "lanes")]
    first = CudaKernel(f"{base}_reduce", "reduce", loop, index, args + part + geometry, acc)
    out = loop.out.buf
    final_args = [KArg(a.name, "const " + a.ctype, "extra", a.ref, a.dtype) for a in part]
    final_args.append(KArg(out, f"{C_TYPES[loop.dtype]} *__restrict__", "buffer", out, loop.dtype))
    final_args.append(KArg("kg_outputs", "const int64_t", "extra", "outputs"))
    final_args += geometry
    final = CudaKernel(f"{base}_final", "reduce_final", loop, index, final_args, acc)
    return [first, final]


def without_blank_lines(text):
    """A kernel's text without empty lines: its macros leave one wherever an
    optional part (scalar loads, an unravel, fused nodes) is empty."""
    return "\n".join(line for line in str(text).split("\n") if line.strip())


def cuda_globals():
    """What the CUDA templates need besides the shared printer globals."""
    return dict(cuda_kernels=cuda_kernels, reduce_sizes=reduce_sizes,
                without_blank_lines=without_blank_lines,
                KG_BLOCK=BLOCK, GEMM_BM=GEMM_BM, GEMM_BN=GEMM_BN, GEMM_BK=GEMM_BK)


def render_host(plans, version="0"):
    """The C source of the host half: `NAME_ints()` per plan (the shape phase)."""
    from .render import environment
    return environment("c").get_template("cuda/host.c.jinja").render(plans=plans, version=version)


def render_host_cdef(plans):
    """cffi's declarations of the host functions."""
    from .render import environment
    return environment("c").get_template("cuda/host_cdef.h.jinja").render(plans=plans)
