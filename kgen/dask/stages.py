"""The kernels one split graph needs, and the split as data.

Stage s's chunk kernel runs on every chunk: it reads the chunk of each
row-chunked input and whole values (NumPy arguments, shared variables, the
combined values of earlier stages, the data set's length), and writes the
partials of the stage's combine points and the chunk's part of row-aligned
outputs. The tail computes, from whole values only, the outputs and updates
that have no chunked axis.

`Stages` makes the kernels (kg.Kernel, not yet lowered) and the description
that kgen/runtime/dask_exec.py runs (its format is documented there); the
kernels are then built either one by one for a kg.function (`function_plan`,
each compiled here and shipped to the workers) or into a package's extension
(kgen/package/model.py, `package_stages`).
"""
from itertools import combinations

from ..errors import KgenError
from ..expr.clone import substitute
from ..expr.node import Input, Shared
from ..expr.ops.api import arange
from ..expr.types import TensorType
from ..function import Kernel
from ..runtime.c import value_positions
from .split import Split, Unsplittable, leaves

ROW_SET_TRIES = 32  # row sets tried for a package kernel before giving up


class Stages:
    """The split of a kernel's graph (`outs`, `ups`: its simplified outputs and
    updates) for row-chunked inputs at `row_positions`; raises Unsplittable.

    kernels: (suffix, kg.Kernel) per kernel to build: "chunk0", ..., "tail"
    shared:  the shared variables read, in the order of ("shared", j) sources
    desc:    the description, with each "kernel" still its suffix (see `described`)
    """

    def __init__(self, kernel, outs, ups, row_positions):
        exprs = outs + ups
        self.shared = [s for s in leaves(exprs) if isinstance(s, Shared)]
        rows = [kernel.inputs[p] for p in row_positions]
        split = Split(exprs, rows)
        combines = split.combines
        by_leaf = {id(v): (("row" if p in row_positions else "arg"), p)
                   for p, v in enumerate(kernel.inputs)}
        pairs, sources = [], list(kernel.inputs)
        for j, s in enumerate(self.shared):
            pairs.append((s, Input(s.type, s.name)))
            sources.append(pairs[-1][1])
            by_leaf[id(sources[-1])] = ("shared", j)
        n_rows = Input(TensorType("int64", ()), "n_rows")
        sources.append(n_rows)
        by_leaf[id(n_rows)] = ("n_rows",)
        pairs += [(n, n_rows) for n in split.lengths]
        counter = arange(0, rows[0].shape[0])
        pairs += [(n, counter) for n in split.local.values()]
        combined = []
        for j, c in enumerate(combines):
            combined.append((c, Input(TensorType(c.dtype, (None,) * c.ndim),
                                      f"{c.op.name}_total")))
            by_leaf[id(combined[-1][1])] = ("combine", j)
        sources += [v for _, v in combined]
        aligned = [e for e in exprs if split.rows(e) is not None]
        # a row-aligned value computed from a combined one waits one stage more
        n_stages = max([split.stages()] + [split.level[id(e)] + 1 for e in aligned])
        self.kernels, where, stages = [], {}, []
        desc_combines = [None] * len(combines)
        for s in range(n_stages):
            targets = [c for c in combines if split.stage[id(c)] == s]
            targets += [e for e in aligned if split.level[id(e)] == s and e not in targets]
            earlier = [(c, v) for c, v in combined if split.stage[id(c)] < s]
            step = self._step(f"chunk{s}", kernel, s, targets,
                              substitute(targets, pairs + earlier), sources, by_leaf, where)
            step["axes"] = [split.rows(e) for e in targets if where[id(e)][0] == "out"]
            stages.append(step)
            for j, c in enumerate(combines):
                if split.stage[id(c)] == s:
                    desc_combines[j] = {"stage": s, "output": where[id(c)][2],
                                        "how": split.kind[id(c)]}
        targets = [e for e in exprs if split.rows(e) is None]
        tail = self._step("tail", kernel, n_stages, targets,
                          substitute(targets, pairs + combined), sources, by_leaf, where)
        self.desc = {"rows": list(row_positions), "shared": [s.name for s in self.shared],
                     "stages": stages, "combines": desc_combines, "tail": tail,
                     "results": [list(where[id(e)]) for e in exprs]}

    def _step(self, suffix, kernel, s, targets, exprs, sources, by_leaf, where):
        """One kernel computing `exprs` (the targets, substituted); records in
        `where` the source of each target's value: its output, or the leaf it is."""
        results = []
        for target, e in zip(targets, exprs):
            if id(e) in by_leaf:
                where[id(target)] = by_leaf[id(e)]
            else:
                where[id(target)] = ("out", s, len(results))
                results.append(e)
        if not results:
            return {"kernel": None, "sources": []}
        used = {id(v) for v in leaves(results)}
        inputs = [v for v in sources if id(v) in used]
        self.kernels.append((suffix, Kernel(f"{kernel.label}_{suffix}", inputs, results)))
        return {"kernel": suffix, "sources": [list(by_leaf[id(v)]) for v in inputs]}

    def described(self, plans):
        """The description with each kernel's entry, from `plans` (suffix -> its
        lowered plan)."""
        kernels = dict(self.kernels)
        steps = self.desc["stages"] + [self.desc["tail"]]
        entries = {s["kernel"]: kernel_entry(kernels[s["kernel"]], plans[s["kernel"]])
                   for s in steps if s["kernel"]}
        desc = dict(self.desc)
        desc["stages"] = [dict(s, kernel=entries.get(s["kernel"])) for s in self.desc["stages"]]
        desc["tail"] = dict(self.desc["tail"], kernel=entries.get(self.desc["tail"]["kernel"]))
        return desc


def kernel_entry(kernel, plan):
    """A built kernel's entry point as the description names it (runtime's K)."""
    return {"c_name": plan.name, "name": kernel.label,
            "inputs": [[v.name, v.dtype, list(v.type.shape)] for v in kernel.inputs],
            "outputs": [[p.name, p.dtype, p.ndim] for p in plan.params if p.role == "output"],
            "values": value_positions(plan)}


def function_plan(fn, row_positions):
    """The runtime's ChunkPlan for a kg.function called with Dask arrays at
    `row_positions`: every kernel compiled here (or loaded from the disk cache)."""
    from ..runtime.c import CFunction
    from ..build import blas
    from ..runtime.dask_exec import ChunkPlan, ShippedModule
    outs, ups = fn.kernel.graphs(fn._optimize)
    stages = Stages(fn.kernel, outs, ups, row_positions)
    built = {suffix: CFunction(k, optimize=False) for suffix, k in stages.kernels}
    desc = stages.described({suffix: f.kernel.plan(False) for suffix, f in built.items()})
    modules = {f.kernel.plan(False).name: ShippedModule.of(f._module, after=blas.binder(f._module))
               for f in built.values()}
    return ChunkPlan(desc, modules, stages.shared)


def package_stages(kernel, symbol, optimize=True):
    """(description, extra plans) of a package kernel with C symbol `symbol`: its
    stage kernels' plans, named `<symbol>_chunk0`..., `<symbol>_tail`, to build
    into the package's extension. Chunked are the inputs with an unknown length on
    axis 0, all of them if the graph splits so, else the largest set that splits.
    A kernel that cannot split gets ({"unsplittable": why}, [])."""
    eligible = [p for p, v in enumerate(kernel.inputs) if v.ndim >= 1 and v.type.shape[0] is None]
    if not eligible:
        return {"unsplittable": "no input has an unknown length on axis 0, the chunked axis"}, []
    outs, ups = kernel.graphs(optimize)
    tries = (rows for size in range(len(eligible), 0, -1) for rows in combinations(eligible, size))
    first = None
    for _, rows in zip(range(ROW_SET_TRIES), tries):
        try:
            stages = Stages(kernel, outs, ups, rows)
        except Unsplittable as exc:
            first = first or exc
            continue
        try:
            plans = {suffix: k.plan(False, symbol=f"{symbol}_{suffix}")
                     for suffix, k in stages.kernels}
        except KgenError as exc:  # a build of the kernel itself never fails for this
            return {"unsplittable": f"its chunk kernels cannot be built ({exc})"}, []
        return stages.described(plans), [plans[suffix] for suffix, _ in stages.kernels]
    return {"unsplittable": str(first)}, []
