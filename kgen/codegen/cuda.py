"""The CUDA kernels of a Plan: which __global__ functions it becomes, and their arguments.

PyCUDA loads a compiled image with `module_from_buffer`, which holds device
code only, so every plan step becomes one `__global__` kernel (a split
reduction and a scatter_add become two) and the host runs the shape phase and
launches them in plan order. A `CudaKernel` record lists a kernel's arguments
in order - the buffers it reads or writes, the shape-phase integers its code
names, and a few extras (reduction partials, the index-error record) - so the
template that writes the signature and the runtime that packs the arguments
read one list and cannot disagree.

A scan runs as a host-side loop of launches: its body's steps become ordinary
kernels (marked with `scan`), launched once per step t with t as their last
argument. Each such kernel declares the body's per-step pointers itself (x[t],
h[t-1], the initial value when t + k < 0, slot t % rows of a rolling buffer)
from the outer buffers and t, with the C backend's own expressions
(templates/c/scan.c.jinja), so there is one statement of those rules; the host
only counts t and, under until(), reads the stop flag after each step. A loop
inside one kernel would need a grid-wide barrier between the body's steps
(a GEMM, then the map that reads it), which plain launches give for free.

The launch constants live here too: the templates render them as #defines and
the runtime's launch geometry (kgen/runtime/cuda_launch.py) computes grids
from the same numbers.
"""
from dataclasses import dataclass, is_dataclass

from ..errors import BackendUnavailableError
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
    guards: tuple = ()     # ((ifelse Step, side), ...): the branches it runs in, outermost first
    scan: object = None    # the scan Step whose body it is: launched once per step t
    pointers: tuple = ()   # the scan's per-step pointer specs (fixed, per_step, outs) it declares

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


def flat_steps(plan):
    """Every step of `plan`, an ifelse's branch steps and a scan's body steps
    after it, depth first: (step, guards, scan) with guards the ((ifelse step,
    side), ...) it runs under and scan the scan step whose body it is (None
    outside any). A kernel's index (its name, its index-error record) is its
    place here."""
    out, stack = [], [(plan.steps, (), None)]
    while stack:
        steps, guards, scan = stack.pop()
        for k, st in enumerate(steps):
            out.append((st, guards, scan))
            if st.kind in ("ifelse", "scan") and scan is not None:
                # the host loop would have to re-read a condition (or run a
                # loop) per step; until it does, say so
                raise BackendUnavailableError(
                    f"kernel {plan.label!r}: the CUDA backend does not run {st.kind} "
                    f"inside a scan's body yet ({scan.comment}); build it for the C target")
            if st.kind == "ifelse":  # its branches, then the rest of this list
                stack.append((steps[k + 1:], guards, scan))
                stack.append((st.args["else_steps"], guards + ((st, 1),), scan))
                stack.append((st.args["then_steps"], guards + ((st, 0),), scan))
                break
            if st.kind == "scan":  # its body, then the rest of this list
                stack.append((steps[k + 1:], guards, scan))
                stack.append((st.args["steps"], guards, st))
                break
    return out


def branch_checks(plan):
    """(host function name, ifelse step, side, checks) for each branch whose shape
    checks the host repeats when it is taken (kgen/lower/branches.py)."""
    out = []
    for index, (st, _, _) in enumerate(flat_steps(plan)):
        if st.kind == "ifelse":
            for side, name in ((0, "then"), (1, "else")):
                if st.args[f"{name}_checks"]:
                    out.append((f"{plan.name}_s{index}_{name}_checks", st, side,
                                st.args[f"{name}_checks"]))
    return out


def scan_pointers(scan):
    """var -> spec of each per-step pointer of a scan step (kgen/lower/scan.py)."""
    a = scan.args
    return {p["var"]: p for p in a["fixed"] + a["per_step"] + a["outs"]}


def cuda_kernels(plan):
    """The kernels of `plan`, in launch order. An ifelse has none of its own:
    its branches' kernels carry `guards`, and the runtime launches them only
    when their branch is taken (the condition is copied to the host, one
    scalar per ifelse and call: a branch not taken costs no launch at all, and
    its shape checks run on the host before its first launch, as the C
    backend's run before its steps). A scan has none of its own either, but
    for a copy of its rolling buffers' last rows after an until() loop: its
    body's kernels carry `scan` (see the module's docstring)."""
    dtypes = {p.name: p.dtype for p in plan.params}
    dtypes.update({b.name: b.dtype for b in plan.buffers if b.kind != "const"})
    order = {v: k for k, v in enumerate(plan.int_vars)}
    kernels, pointers = [], {}
    for index, (step, guards, scan) in enumerate(flat_steps(plan)):
        if step.kind == "scan":
            pointers = scan_pointers(step)
            dtypes.update((var, p["dtype"]) for var, p in pointers.items())
            kernels += [_last_row_kernel(f"{plan.name}_s{index}_last{k}", step, index, o, order,
                                         guards)
                        for k, o in enumerate(step.args["outs"]) if o["last"]]
            continue  # its last-row kernels run after the loop: they are placed below
        if step.kind == "ifelse":
            continue
        first = len(kernels)
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
        for k in kernels[first:]:
            k.guards = guards
            if scan is not None:
                _in_scan(k, scan, pointers, dtypes, order)
    return _after_loops(kernels)


def _in_scan(k, scan, pointers, dtypes, order):
    """Make a body kernel take the outer buffers its per-step pointers point
    into, the integers they need and t, in place of the pointers themselves."""
    used = [pointers[a.ref] for a in k.args if a.kind == "buffer" and a.ref in pointers]
    written = {pointers[a.ref]["base"] for a in k.args
               if a.kind == "buffer" and a.ref in pointers and "const" not in a.ctype}
    args = [a for a in k.args if not (a.kind == "buffer" and a.ref in pointers)]
    have = {a.ref for a in args if a.kind == "buffer"}
    ints = {a.ref for a in args if a.kind == "int"}
    for p in used:
        for b in (p["base"], p.get("init")):
            if b is not None and b in dtypes and b not in have:
                have.add(b)
                const = "" if b in written else "const "
                args.append(KArg(b, f"{const}{C_TYPES[dtypes[b]]} *__restrict__", "buffer", b,
                                 dtypes[b]))
        _walk(p, lambda s: ints.add(s) if s in order else None, lambda v: None)
    for a in args:  # a base buffer the step also names itself: written if either writes
        if a.kind == "buffer" and a.ref in written and "const " in a.ctype:
            a.ctype = a.ctype.replace("const ", "", 1)
    lead = [a for a in args if a.kind == "buffer"]  # read ones first, as everywhere
    lead = sorted(lead, key=lambda a: "const " not in a.ctype) + \
        [a for a in args if a.kind == "extra"]
    k.args = lead + [KArg(v, "const int64_t", "int", v) for v in sorted(ints, key=order.get)] \
        + [KArg("t", "const int64_t", "extra", "t")]
    k.scan, k.pointers = scan, tuple(used)


def _last_row_kernel(name, scan, index, out, order, guards):
    """After a loop stopped by until(): copy a rolling buffer's last step into
    the extra row where x[-1] reads it (templates/c/scan.c.jinja does it inline)."""
    dtype = out["dtype"]
    ints = set()
    _walk(out, lambda s: ints.add(s) if s in order else None, lambda v: None)
    args = [KArg(out["base"], f"{C_TYPES[dtype]} *__restrict__", "buffer", out["base"], dtype)]
    args += [KArg(v, "const int64_t", "int", v) for v in sorted(ints, key=order.get)]
    args.append(KArg("kg_steps", "const int64_t", "extra", "steps"))
    k = CudaKernel(name, "scan_last", scan, index, args, guards=guards)
    k.pointers = (out,)
    return k


def _after_loops(kernels):
    """Launch order: each scan's last-row kernels after its body's kernels."""
    out, pending = [], []
    for k in kernels:
        if k.role == "scan_last":
            pending.append(k)
            continue
        while pending and k.scan is not pending[0].step:
            out.append(pending.pop(0))
        out.append(k)
    return out + pending


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
    return environment("c").get_template("cuda/host.c.jinja").render(
        plans=plans, version=version, branch_checks=branch_checks)


def render_host_cdef(plans):
    """cffi's declarations of the host functions."""
    from .render import environment
    return environment("c").get_template("cuda/host_cdef.h.jinja").render(
        plans=plans, branch_checks=branch_checks)
