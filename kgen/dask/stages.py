"""The kernels one split graph needs: a chunk kernel per stage, and a tail.

Stage s's chunk kernel runs on every chunk: it reads the chunk of each
row-chunked input and whole values (NumPy arguments, shared variables, the
combined values of earlier stages, the data set's length), and writes the
partials of the stage's combine points and the chunk's part of row-aligned
outputs. The tail computes, from whole values only, the outputs and updates
that have no chunked axis. Every kernel is compiled on the client and shipped
to the workers (kgen/dask/ship.py). Inputs are named by a *source*:
("row", k) / ("arg", k) the function's input k, ("shared", j), ("combine", j),
("n_rows",).
"""
from ..expr.clone import substitute
from ..expr.node import Input, Shared
from ..expr.ops.api import arange
from ..expr.types import TensorType
from ..function import Kernel
from ..runtime.c import CFunction
from .ship import ShippedKernel
from .split import Split, leaves


class Step:
    """One kernel: its sources (one per input) and, per target, its output index,
    or the source that already holds the value (a target that is a leaf)."""

    def __init__(self, name, targets, exprs, sources, by_leaf):
        self.targets, self.sources, self.kernel = targets, [], None
        results, self.results = [], []
        for e in exprs:
            if id(e) in by_leaf:
                self.results.append(("source", by_leaf[id(e)]))
            else:
                self.results.append(("output", len(results)))
                results.append(e)
        if results:
            used = {id(v) for v in leaves(results)}
            inputs = [v for v in sources if id(v) in used]
            self.sources = [by_leaf[id(v)] for v in inputs]
            f = CFunction(Kernel(name, inputs, results), optimize=False)
            self.kernel = ShippedKernel.from_function(f)


class StagePlan:
    """The split of `fn`'s graph for row-chunked inputs at `row_positions`."""

    def __init__(self, fn, row_positions):
        k = fn.kernel
        outs, ups = k.graphs(fn._optimize)
        self.n_outputs = len(outs)
        self.exprs = exprs = outs + ups
        self.shared = [s for s in leaves(exprs) if isinstance(s, Shared)]
        rows = [k.inputs[p] for p in row_positions]
        self.split = split = Split(exprs, rows)
        self.combines = split.combines
        by_leaf = {id(v): (("row" if p in row_positions else "arg"), p)
                   for p, v in enumerate(k.inputs)}
        pairs, sources = [], list(k.inputs)
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
        for j, c in enumerate(self.combines):
            combined.append((c, Input(TensorType(c.dtype, (None,) * c.ndim),
                                      f"{c.op.name}_total")))
            by_leaf[id(combined[-1][1])] = ("combine", j)
        sources += [v for _, v in combined]
        self.stages = []
        for s in range(split.stages()):
            targets = [c for c in self.combines if split.stage[id(c)] == s]
            targets += [e for e in exprs if split.rows(e) is not None
                        and split.level[id(e)] == s and e not in targets]
            earlier = [(c, v) for c, v in combined if split.stage[id(c)] < s]
            chunk_exprs = substitute(targets, pairs + earlier)
            self.stages.append(Step(f"{k.name}_chunk{s}", targets, chunk_exprs, sources,
                                    by_leaf))
        targets = [e for e in exprs if split.rows(e) is None]
        self.tail = Step(f"{k.name}_tail", targets, substitute(targets, pairs + combined),
                         sources, by_leaf)
