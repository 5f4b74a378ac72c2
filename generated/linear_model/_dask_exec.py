"""Running a kernel split into chunks over Dask arrays: one implementation for
kg.function and for shipped packages.

kgen/dask/ splits a kernel's graph at its reductions over the chunked axis
(axis 0, the rows) into chunk kernels and a tail kernel, and describes the
split as data (`desc`, plain JSON). This module runs such a description; a
package built by `python -m kgen build` carries this very file as
_dask_exec.py beside _runtime.py, and its manifest.json holds each kernel's
description. So it imports NumPy and the standard library only (and dask
when a Dask array is passed), never kgen. Workers need no compiler: a
kg.function's built modules travel with the tasks as their bytes
(ShippedModule); a package's workers import the package and run its own
extension (PackageModule).

desc = {
  "rows":     positions of the inputs chunked along axis 0 (all with the same rows)
  "shared":   names of the shared variables read, in the order of ("shared", j)
  "stages":   per stage: {"kernel": K, "sources": [...], "axes": [...]}: its chunk
              kernel runs on every chunk; "axes" gives, per output, its chunked axis
              (a row-aligned value, concatenated) or null (a partial, combined)
  "combines": per combined value: {"stage": s, "output": i, "how": a ufunc name}
  "tail":     {"kernel": K or null, "sources": [...]}: runs once, on whole values
  "results":  one source per output of the kernel, then per update
}
K = {"c_name", "name", "inputs": [[name, dtype, shape]], "outputs": [[name, dtype,
ndim]], "values": [...]}, an entry point of a built extension. A source is
["row", k] (a chunk of input k), ["arg", k] (input k, whole), ["shared", j],
["n_rows"] (the data set's length), ["combine", j], or ["out", s, i] (output i
of stage s; s = len(stages) is the tail).
"""
import functools
import hashlib
import importlib
import json
import operator
import os
import sys
import tempfile
import threading

import numpy as np

try:
    from . import _runtime as core   # in a package built by kgen, beside _runtime.py
except ImportError:
    from . import core               # in kgen itself (kgen/runtime/)

COMBINE_BYTES = 32 << 20   # the partials one combine task reads, at most (at least 2)
COMBINE = ("add", "multiply", "maximum", "minimum")


def is_dask(value):
    return hasattr(value, "__dask_graph__")


# ---- the extensions the workers run (they need no compiler) -----------------------------
_modules = {}   # sha256 -> loaded extension, in this process
_kernels = {}   # (sha256, c_name) -> core.Kernel
_lock = threading.Lock()
_folder = None


class _Module:
    """A built extension named by its sha256, loaded once per process (`_load`)."""

    def kernel(self, spec):
        """The runtime's Kernel for the entry point `spec` names."""
        key = (self.sha256, spec.c_name)
        k = _kernels.get(key)
        if k is None:
            k = core.Kernel(self._module(), spec.c_name, spec.name, spec.inputs, (),
                            spec.outputs, (), single=False, values=spec.values)
            with _lock:
                k = _kernels.setdefault(key, k)
        return k

    def _module(self):
        with _lock:
            module = _modules.get(self.sha256)
            if module is None:
                module = _modules[self.sha256] = self._load()
            return module

    def _known(self, module):
        """`module` is already loaded here (on the client)."""
        with _lock:
            _modules.setdefault(self.sha256, module)


class ShippedModule(_Module):
    """A kg.function's extension: it pickles as its bytes and sha256, and a worker
    writes the bytes into a private temporary folder, checks and loads them, then
    calls `after(module)` if given (pickled by reference: the loader's own step,
    such as binding the GEMM entry points of kgen/build/blas.py)."""

    def __init__(self, blob, sha256, modname, after=None):
        self.blob, self.sha256, self.modname, self.after = blob, sha256, modname, after

    @classmethod
    def of(cls, module, after=None):
        with open(module.__file__, "rb") as f:
            blob = f.read()
        shipped = cls(blob, hashlib.sha256(blob).hexdigest(), module.__name__, after)
        shipped._known(module)
        return shipped

    def __reduce__(self):
        return ShippedModule, (self.blob, self.sha256, self.modname, self.after)

    def _load(self):
        global _folder
        if hashlib.sha256(self.blob).hexdigest() != self.sha256:
            raise ImportError(f"kgen over Dask: the module {self.modname} arrived damaged")
        if _folder is None:  # 0700, one per process: a shared, predictable folder could
            _folder = tempfile.mkdtemp(prefix="kgen-dask-")  # hold someone else's library
        path = os.path.join(_folder, f"{self.sha256[:24]}-{self.modname}.so")
        with open(path, "wb") as f:
            f.write(self.blob)
        module = core.import_extension(path, self.modname)
        if self.after is not None:
            self.after(module)
        return module


class PackageModule(_Module):
    """A package's extension: a worker imports the package (importable there, as
    any code a task runs: installed, or its folder on the workers' sys.path) and
    uses its extension, once its checksum is the client's."""

    def __init__(self, package, sha256):
        self.package, self.sha256 = package, sha256

    @classmethod
    def of(cls, package, ext):
        module = cls(package, _recorded_sha256(ext))
        module._known(ext)
        return module

    def __reduce__(self):
        return PackageModule, (self.package, self.sha256)

    def _load(self):
        ext = importlib.import_module(self.package)._ext
        if _recorded_sha256(ext) != self.sha256:
            raise ImportError(f"{self.package}: this worker's copy of the package is not the "
                              f"client's (its extension {ext.__file__} differs); give every "
                              f"worker the same build")
        return ext


def _recorded_sha256(ext):
    """The checksum written beside a package's extension (checked when it was imported)."""
    with open(ext.__file__ + ".sha256", encoding="ascii") as f:
        return f.read().strip()


class KernelSpec:
    """One entry point of a shipped module, as the description's K names it."""

    def __init__(self, entry):
        self.c_name, self.name = entry["c_name"], entry.get("name", entry["c_name"])
        self.inputs = [(n, d, tuple(shape)) for n, d, shape in entry["inputs"]]
        self.outputs = [(n, d, ndim) for n, d, ndim in entry["outputs"]]
        self.values = tuple(entry["values"])


# ---- the tasks ---------------------------------------------------------------------------
def _run(module, spec, *arrays):
    """One kernel on one chunk: its one output, or the tuple of them."""
    outs = module.kernel(spec)(*arrays)
    return outs[0] if len(outs) == 1 else tuple(outs)


def _combine(how, index, *parts):
    """Partials combined by the ufunc `how` (`index`: take that output of each first)."""
    values = parts if index is None else [p[index] for p in parts]
    return np.asarray(functools.reduce(getattr(np, how), values))


# ---- a plan and a call -------------------------------------------------------------------------
class ChunkPlan:
    """A description with its modules (c_name -> ShippedModule) and the shared
    variables its ("shared", j) sources name."""

    def __init__(self, desc, modules, shared):
        self.desc, self.shared = desc, list(shared)
        self.rows = tuple(desc["rows"])
        self.stages = [_Step(d, modules) for d in desc["stages"]]
        self.tail = _Step(desc["tail"], modules)
        for c in desc["combines"]:
            if c["how"] not in COMBINE:
                raise core.KgenTypeError(f"kgen over Dask: unknown combine {c['how']!r}")
        text = json.dumps(desc, sort_keys=True) + "".join(
            s.module.sha256 for s in self.stages + [self.tail] if s.module)
        self.token = hashlib.sha256(text.encode()).hexdigest()[:16]


class _Step:
    def __init__(self, d, modules):
        entry = d["kernel"]
        self.spec = KernelSpec(entry) if entry else None
        self.module = modules[entry["c_name"]] if entry else None
        self.sources = [tuple(s) for s in d["sources"]]
        self.axes = d.get("axes", [])


def call(kernel, args, kwargs, plan_for):
    """`kernel(*args, **kwargs)` where some arguments are Dask arrays.

    `plan_for(chunked)` gives the ChunkPlan for the positions of the Dask
    arguments of one or more dimensions (or raises the TypeError saying why the
    kernel cannot run in chunks). Outputs are Dask arrays, lazy; a kernel with
    updates computes at once, writes them after every chunk succeeded, and
    returns NumPy values."""
    sig = kernel.signature
    values = sig._order(args, kwargs)
    chunked = tuple(k for k, v in enumerate(values) if is_dask(v) and getattr(v, "ndim", 0) >= 1)
    plan = plan_for(chunked) if chunked else None
    arrays = _arguments(sig, values, plan.rows) if plan else None
    if arrays is None:  # nothing to chunk: one call on whole values
        return kernel(*[_whole(v) for v in values])
    locks = core.lock_order(plan.shared)
    core.acquire(locks)
    try:
        shared_values = [core.host_value(s) for s in plan.shared]
    finally:
        core.release(locks)
    outputs, updates = _Graph(plan, arrays, shared_values).results(kernel._n_outputs)
    if kernel._updated:
        import dask
        computed = dask.compute(*outputs, *updates)
        outputs = list(computed[:len(outputs)])
        _write(kernel._updated, computed[len(outputs):])
    return outputs[0] if kernel._single else list(outputs)


def _whole(value):
    return np.asarray(value.compute()) if is_dask(value) else value


def _arguments(sig, values, rows):
    """Each argument checked as the kernel checks it. Inputs at `rows` become Dask
    arrays with the first Dask one's row chunks and one chunk across their other
    axes (a Dask one cast lazily, a NumPy one wrapped); the others whole values.
    None when no input at `rows` is a Dask array."""
    import dask.array as da
    first = next((k for k in rows if is_dask(values[k])), None)
    if first is None:
        return None
    out, n = [], None
    for k in [first] + [k for k in range(len(values)) if k != first]:
        v = values[k]
        if k not in rows:
            out.append((k, sig.coerce(k, _whole(v))))
            continue
        v = _dask_argument(sig, k, v) if is_dask(v) else da.from_array(
            sig.coerce(k, v), chunks=-1, name=False)
        if n is None:
            n, chunks = v.shape[0], v.chunks[0]
        elif v.shape[0] != n:
            raise core.ShapeError(f"{sig.labels[k]}: {v.shape[0]} rows, but {sig.labels[first]} "
                                  f"has {n}: chunked inputs must have the same rows")
        out.append((k, v.rechunk((chunks,) + tuple(-1 for _ in v.shape[1:]))))
    return [v for _, v in sorted(out, key=operator.itemgetter(0))]


def _dask_argument(sig, k, v):
    label, dtype, shape = sig.labels[k], sig.dtypes[k], sig.shapes[k]
    if v.ndim != len(shape):
        raise core.KgenTypeError(f"{label}: expected a {len(shape)}-d array of {dtype.name}, "
                                 f"got a {v.ndim}-d Dask array with shape {v.shape}")
    if v.dtype != dtype:
        if not np.can_cast(v.dtype, dtype, "safe"):
            raise core.KgenTypeError(f"{label}: expected dtype {dtype.name}, got {v.dtype} "
                                     f"(which does not cast safely; use .astype)")
        v = v.astype(dtype)
    if shape[0] is not None:
        raise core.KgenTypeError(f"{label}: its input has a static length {shape[0]} on axis 0, "
                                 f"the chunked axis; declare it with an unknown length")
    for axis, (want, got) in enumerate(zip(shape[1:], v.shape[1:]), 1):
        if want is not None and want != got:
            raise core.ShapeError(f"{label}: expected shape {core.format_shape(shape)}, got "
                                  f"{v.shape} (axis {axis})")
    return v


class _Graph:
    """The Dask graph of one call, in layers: the whole values (and modules); per
    stage, one task per chunk running its kernel; per combined value, the tasks
    combining its partials; the tail's one task. A kernel with one output is
    itself that output's layer (an elementwise kernel is one task per chunk, as
    in map_blocks); one with several gets a layer picking each output from the
    results. Output shapes come from each kernel's C shape phase, here, so a
    shape error comes before anything runs."""

    def __init__(self, plan, arrays, shared_values):
        from dask.base import tokenize
        from dask.highlevelgraph import HighLevelGraph
        self.plan = plan
        self.row_args = {k: a for k, a in enumerate(arrays) if k in plan.rows}
        self.chunks = arrays[plan.rows[0]].chunks[0]
        whole = {("arg", k): a for k, a in enumerate(arrays) if k not in plan.rows}
        whole.update({("shared", j): v for j, v in enumerate(shared_values)})
        whole[("n_rows",)] = np.int64(sum(self.chunks))
        self.whole = whole
        self.prefix = prefix = "kgen-" + tokenize(
            plan.token, [a.name for a in self.row_args.values()], sorted(whole.items()))
        graph = HighLevelGraph.merge(*[a.__dask_graph__() for a in self.row_args.values()])
        self.layers, self.deps = dict(graph.layers), dict(graph.dependencies)
        self.whole_layer = f"{prefix}-whole"
        self.keys = {source: (self.whole_layer,) + source for source in whole}
        self.layers[self.whole_layer] = {self.keys[s]: v for s, v in whole.items()}
        self.deps[self.whole_layer] = set()
        self.layer_of, self.shapes = {}, {}
        self.steps = {}  # stage (or tail) -> (layer, keys per chunk, output shapes per chunk)
        for s, step in enumerate(plan.stages):
            self._stage(s, step)
        self._tail(len(plan.stages), plan.tail)

    def _key(self, source, chunk):
        if source[0] == "row":
            a = self.row_args[source[1]]
            return (a.name, chunk) + (0,) * (a.ndim - 1)
        return self.keys[source]

    def _shape(self, source, chunk):
        if source[0] == "row":
            return (self.chunks[chunk],) + self.row_args[source[1]].shape[1:]
        if source in self.whole:
            return np.shape(self.whole[source])
        return self.shapes[source]

    def _out_shapes(self, step, chunk):
        kernel = step.module.kernel(step.spec)
        dims = [d for s in step.sources for d in self._shape(s, chunk)]
        for p in kernel._values:
            source = step.sources[p]
            if source not in self.whole:
                raise core.KgenTypeError(
                    f"{kernel.name}: a size depends on a value reduced over the chunked "
                    f"axis, which cannot be known before the chunks run")
            dims.append(int(self.whole[source]))
        return kernel._out_shapes(dims)

    def _add_step(self, index, name, step, n_chunks, axis):
        """The layer running `step` once per chunk; its keys are the blocks of its one
        output when that is an array: chunked along `axis`, or a tail's whole value."""
        shapes = [self._out_shapes(step, i) for i in range(n_chunks)]
        blocks = len(step.spec.outputs) == 1 and (axis is not None or n_chunks == 1)
        keys = [(name,) + (tuple(i if a == axis else 0 for a in range(len(shapes[i][0])))
                           if blocks else (i,)) for i in range(n_chunks)]
        module = f"kgen-module-{step.module.sha256}"
        self.layers[self.whole_layer][module] = step.module
        self.layers[name] = {key: (_run, module, step.spec) + tuple(
            self._key(s, i) for s in step.sources) for i, key in enumerate(keys)}
        deps = {self.whole_layer}
        for s in step.sources:
            deps |= ({self.row_args[s[1]].name} if s[0] == "row" else
                     {self.layer_of[s]} if s in self.layer_of else set())
        self.deps[name] = deps
        self.steps[index] = (name, keys, shapes)
        self.shapes.update({("out", index, i): shape for i, shape in enumerate(shapes[0])})

    def _stage(self, s, step):
        if step.spec is None:
            return
        self._add_step(s, f"{self.prefix}-stage{s}", step, len(self.chunks), step.axes[0])
        for j, c in enumerate(self.plan.desc["combines"]):
            if c["stage"] == s:
                self._combine(j, s, c["output"], c["how"], step)

    def _combine(self, j, s, output, how, step):
        """Stage s's partials of `output`, combined: in one task when they are
        small, else in a tree of tasks each reading COMBINE_BYTES of them."""
        stage, parts, _ = self.steps[s]
        name = f"{self.prefix}-combined{j}"
        shape = self.shapes[("out", s, output)]
        size = np.dtype(step.spec.outputs[output][1]).itemsize * int(np.prod(shape))
        fan_in = max(2, COMBINE_BYTES // max(1, size))
        index = output if len(step.spec.outputs) > 1 else None
        layer, level = {}, 0
        while len(parts) > fan_in:
            groups = [parts[a:a + fan_in] for a in range(0, len(parts), fan_in)]
            parts = [(f"{name}-tree", level, g) for g in range(len(groups))]
            layer.update({key: (_combine, how, index) + tuple(group)
                          for key, group in zip(parts, groups)})
            index, level = None, level + 1
        self.keys[("combine", j)] = key = (name,) + (0,) * len(shape)
        layer[key] = (_combine, how, index) + tuple(parts)
        self.layers[name], self.deps[name] = layer, {stage}
        self.layer_of[("combine", j)] = name
        self.shapes[("combine", j)] = shape

    def _tail(self, t, step):
        if step.spec is not None:
            self._add_step(t, f"{self.prefix}-tail", step, 1, None)

    # ---- the results as Dask arrays
    def results(self, n_outputs):
        """(outputs, updates): a Dask array per result of the description."""
        import dask.array as da
        from dask.highlevelgraph import HighLevelGraph
        made, arrays = {}, []
        for source in map(tuple, self.plan.desc["results"]):
            if source not in made:
                made[source] = self._result(source)
            arrays.append(made[source])
        graph = HighLevelGraph(self.layers, self.deps)
        arrays = [a if isinstance(a, (da.Array, np.ndarray)) else da.Array(graph, *a)
                  for a in arrays]
        arrays = [da.from_array(a) if isinstance(a, np.ndarray) else a for a in arrays]
        return arrays[:n_outputs], arrays[n_outputs:]

    def _result(self, source):
        """An input itself, a whole value, or (name, chunks, dtype) of an array of
        this call's graph."""
        if source[0] == "row":
            return self.row_args[source[1]]
        if source in self.whole:
            return np.asarray(self.whole[source])
        if source[0] == "combine":
            c = self.plan.desc["combines"][source[1]]
            dtype = self.plan.stages[c["stage"]].spec.outputs[c["output"]][1]
            return self.layer_of[source], tuple((d,) for d in self.shapes[source]), dtype
        _, s, i = source
        step = self.plan.stages[s] if s < len(self.plan.stages) else self.plan.tail
        axis = step.axes[i] if s < len(self.plan.stages) else None
        layer, keys, shapes = self.steps[s]
        shapes = [shape[i] for shape in shapes]
        chunks = tuple(tuple(sh[a] for sh in shapes) if a == axis else (shapes[0][a],)
                       for a in range(len(shapes[0])))
        if len(step.spec.outputs) > 1:  # a layer picking output i of each chunk's results
            name = f"{layer}-out{i}"
            self.layers[name] = {(name,) + tuple(c if a == axis else 0 for a in range(len(sh))):
                                 (operator.getitem, key, i)
                                 for c, (key, sh) in enumerate(zip(keys, shapes))}
            self.deps[name], layer = {layer}, name
        return layer, chunks, step.spec.outputs[i][1]


def _write(updated, new):
    """The updates, written at once under the variables' locks."""
    stored = [core.stored_value(v, np.dtype(s.dtype), s.ndim, s.name or "shared", borrow=True)
              for s, v in zip(updated, new)]
    locks = core.lock_order(updated)
    core.acquire(locks)
    try:
        for s, v in zip(updated, stored):
            if s._device is not None:  # as set_value, without its lock (held)
                s._device.set_value(s, v)
            s._value = v
    finally:
        core.release(locks)


# ---- a package's kernels ------------------------------------------------------------------------
class PackageCall:
    """A package kernel's `lazy_call`: the split recorded in the package's
    manifest.json, run over the package's own extension (on the workers too: see
    PackageModule)."""

    def __init__(self, kernel, package, init_file, python_name, ext):
        self.kernel, self.package, self.init_file = kernel, package, init_file
        self.python_name, self.ext, self._plan = python_name, ext, None

    def __call__(self, args, kwargs):
        return call(self.kernel, args, kwargs, self.plan)

    def plan(self, chunked):
        if self._plan is None:
            with open(core.here(self.init_file, "manifest.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            entry = next(k for k in manifest["kernels"] if k["python_name"] == self.python_name)
            desc = entry.get("dask") or {"unsplittable": "the package records no split"}
            if "unsplittable" in desc:
                raise core.KgenTypeError(f"{self.kernel.name}() was given Dask arrays, but it "
                                         f"cannot run chunk by chunk: {desc['unsplittable']}")
            module = PackageModule.of(self.package, self.ext)
            names = [s["kernel"]["c_name"] for s in desc["stages"] + [desc["tail"]]
                     if s["kernel"]]
            package = sys.modules[self.package]
            self._plan = ChunkPlan(desc, dict.fromkeys(names, module),
                                   [getattr(package, name) for name in desc["shared"]])
        return self._plan
