"""One call of a split function as a Dask graph.

Per stage, one task per chunk runs the stage's kernel; the partials of each
combine point are stacked and reduced by dask.array's own tree reduction
(`da.sum`, `da.prod`, `da.max`, `da.min` over the chunks, `split_every` as
configured); row-aligned outputs are the chunks' parts, concatenated; the
tail runs once, on whole values. Output shapes come from each kernel's C
shape phase on the client, so a shape error is raised before anything runs.
"""
import dask
import dask.array as da
import numpy as np

from ..errors import KgenTypeError
from ..runtime import core

_REDUCE = {"add": da.sum, "multiply": da.prod, "maximum": da.max, "minimum": da.min}


def _run(kernel, *arrays):
    return tuple(kernel(*arrays))


class Call:
    """The dask arrays of one call: `outputs`, `updates` (values, in order)."""

    def __init__(self, plan, args, shared_values):
        self.plan, self.args = plan, args      # args: dask (row) or NumPy, per input
        first = next(a for a in args if isinstance(a, da.Array))
        self.chunks = first.chunks[0]
        # (optimize_graph=False: each collection optimized on its own would get its
        # own copy of shared upstream tasks, which would then run once per copy)
        self.blocks = {k: a.to_delayed(optimize_graph=False).ravel() for k, a in enumerate(args)
                       if isinstance(a, da.Array)}
        self.whole = {("arg", k): a for k, a in enumerate(args) if not isinstance(a, da.Array)}
        self.whole.update({("shared", j): v for j, v in enumerate(shared_values)})
        self.whole[("n_rows",)] = np.int64(sum(self.chunks))
        self.delayed = {key: dask.delayed(v, pure=True) for key, v in self.whole.items()}
        self.combined, self.done = {}, {}
        for step in plan.stages:
            self._stage(step)
        self._tail(plan.tail)
        values = [self.done[id(e)] for e in plan.exprs]
        self.outputs, self.updates = values[:plan.n_outputs], values[plan.n_outputs:]

    def _shape(self, source, chunk):
        if source[0] == "row":
            return (self.chunks[chunk],) + self.args[source[1]].shape[1:]
        if source[0] == "combine":
            return self.combined[source[1]].shape
        return np.shape(self.whole[source])

    def _value(self, source, chunk):
        if source[0] == "row":
            return self.blocks[source[1]][chunk]
        if source[0] == "combine":
            return self.combined[source[1]].to_delayed(optimize_graph=False).ravel()[0]
        return self.delayed[source]

    def _out_shapes(self, step, chunk):
        """The kernel's output shapes for this chunk, from its C shape phase."""
        kernel = step.kernel.kernel()
        dims = [d for s in step.sources for d in self._shape(s, chunk)]
        for p in kernel._values:
            source = step.sources[p]
            if source not in self.whole:
                raise KgenTypeError(f"{kernel.name}: a size depends on a value reduced over the "
                                    f"chunked axis, which kgen.dask cannot know in advance")
            dims.append(int(self.whole[source]))
        return kernel._out_shapes(dims)

    def _task(self, step, chunk):
        args = [self._value(s, chunk) for s in step.sources]
        n = len(step.kernel.outputs)
        return dask.delayed(_run, nout=n, pure=True)(self._kernel(step), *args)

    def _kernel(self, step):
        return dask.delayed(step.kernel, pure=True, name=f"kgen-kernel-{step.kernel.sha256}")

    def _as_array(self, source):
        if source[0] == "row":
            return self.args[source[1]]
        if source[0] == "combine":
            return self.combined[source[1]]
        return da.from_array(np.asarray(self.whole[source]))

    def _stage(self, step):
        plan = self.plan
        tasks = ([self._task(step, i) for i in range(len(self.chunks))]
                 if step.kernel else [])
        shapes = [self._out_shapes(step, i) for i in range(len(tasks))]
        dtypes = [np.dtype(d) for _, d, _ in (step.kernel.outputs if step.kernel else ())]
        for target, (kind, index) in zip(step.targets, step.results):
            split = plan.split
            if kind == "source":
                value = self._as_array(index)
            elif id(target) in split.kind:
                parts = da.stack([da.from_delayed(t[index], shapes[i][index], dtypes[index])
                                  for i, t in enumerate(tasks)])
                value = _REDUCE[split.kind[id(target)]](parts, axis=0).astype(dtypes[index])
            else:
                value = da.concatenate([da.from_delayed(t[index], shapes[i][index],
                                                        dtypes[index])
                                        for i, t in enumerate(tasks)], axis=split.rows(target))
            if id(target) in split.kind:
                self.combined[plan.combines.index(target)] = value
            self.done.setdefault(id(target), value)

    def _tail(self, step):
        if step.kernel:
            task = self._task(step, 0)
            shapes = self._out_shapes(step, 0)
        for target, (kind, index) in zip(step.targets, step.results):
            if kind == "source":
                value = self._as_array(index)
            else:
                dtype = np.dtype(step.kernel.outputs[index][1])
                value = da.from_delayed(task[index], shapes[index], dtype)
            self.done[id(target)] = value
