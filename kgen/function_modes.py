"""Theano's `mode=` for kg.function: FAST_RUN, FAST_COMPILE and DebugMode.

  FAST_RUN       simplify, then compile (kgen's default)
  FAST_COMPILE   compile the graph as written (optimize=False)
  DebugMode      FAST_RUN, and every call also runs the NumPy reference
                 evaluator (kgen/expr/evaluate.py) and a probe kernel that
                 returns every node of the compiled graph; the first node, in
                 topological order, whose compiled value differs from the
                 reference is named in a DebugModeError. A call that fails the
                 check leaves the shared variables as they were.
"""
import numpy as np

from .errors import KgenError, KgenTypeError

MODES = {"FAST_RUN": "FAST_RUN", "FAST_COMPILE": "FAST_COMPILE", "DebugMode": "DebugMode",
         "DEBUG_MODE": "DebugMode", "Mode": "FAST_RUN", "ProfileMode": "FAST_RUN"}
# Theano's tolerances for comparing float results (theano.tensor.basic._allclose),
# float32's rtol widened for sums accumulated in another order
TOLERANCES = {"float64": (1e-5, 1e-8), "float32": (1e-4, 1e-5)}


class DebugModeError(KgenError, AssertionError):
    """A compiled value that differs from the NumPy reference (mode='DebugMode')."""


class Mode:
    """Theano's Mode object, minimally: `Mode(optimizer=None)` builds without
    simplifying; `Mode(optimizer='fast_run')` (the default) simplifies. The
    linker is accepted and ignored (kgen always generates C)."""

    def __init__(self, linker=None, optimizer="fast_run"):
        if optimizer not in (None, "None", "fast_run", "fast_compile", "o4", "merge"):
            raise KgenTypeError(f"Mode: unknown optimizer {optimizer!r}")
        self.linker, self.optimizer = linker, optimizer

    @property
    def name(self):
        return "FAST_RUN" if self.optimizer in ("fast_run", "o4") else "FAST_COMPILE"

    def __repr__(self):
        return f"Mode(linker={self.linker!r}, optimizer={self.optimizer!r})"


def resolve_mode(mode):
    """Theano's mode (a name, a Mode, or None for config.mode) as one of MODES' values."""
    if mode is None:
        from .config import config
        mode = config.mode
    if isinstance(mode, Mode):
        return mode.name
    if isinstance(mode, str) and mode in MODES:
        return MODES[mode]
    raise KgenTypeError(f"mode={mode!r} is not known; use 'FAST_RUN', 'FAST_COMPILE', "
                        f"'DebugMode' or a kg.Mode")


# ---- DebugMode ----------------------------------------------------------------------
class DebugChecker:
    """What a DebugMode function checks on each call: `probe` (a kernel returning
    every node of `nodes`, the compiled graph's op nodes in topological order) and
    the graphs before simplification, `originals`."""

    def __init__(self, kernel, optimize):
        from .expr.graph import toposort
        from .function import Kernel
        from .runtime.c import CFunction
        outs, upds = kernel.graphs(optimize)
        self.compiled = outs + upds
        self.originals = kernel.outputs + [e for _, e in kernel.updates]
        # (a scan's own value is a token: its outputs, scan_out nodes, are probed)
        self.nodes = [n for n in toposort(self.compiled)
                      if n.op is not None and not getattr(n.op, "multi", False)]
        # the probe only reads: it must not advance random streams (default updates)
        probe = Kernel(kernel.name + "_debug", kernel.inputs, list(self.nodes),
                       no_default_updates=True)
        probe.call_options = getattr(kernel, "call_options", None)
        self.probe = CFunction(probe, optimize=False)  # already simplified

    def check_nodes(self, arrays, values):
        """Run the probe and the reference on the same arguments (before the call
        writes any update); returns the reference values of the compiled graph's
        outputs and updates, and of the graph as written."""
        from .expr.evaluate import evaluate
        got = self.probe(*arrays) if self.nodes else []
        want = evaluate(self.nodes + self.compiled + self.originals, values)
        for k, (node, g, w) in enumerate(zip(self.nodes, got, want)):
            problem = difference(g, w, node.dtype)
            if problem:
                raise DebugModeError(
                    f"DebugMode: node {k + 1} of {len(self.nodes)} in topological order, "
                    f"{describe(node)}, differs from the NumPy reference: {problem}")
        n, m = len(self.nodes), len(self.compiled)
        return want[n:n + m], want[n + m:]

    def check_results(self, results, reference, labels):
        """The real kernel's outputs and updates against the reference of the compiled
        graph, then against the reference of the graph as written (where that one
        is finite: simplification may make an overflowing expression finite)."""
        compiled, written = reference
        for label, got, want, expr in zip(labels, results, compiled, self.compiled):
            problem = difference(got, want, expr.dtype)
            if problem:
                raise DebugModeError(f"DebugMode: {label} ({describe(expr)}) differs from "
                                     f"the NumPy reference of the compiled graph: {problem}")
        for label, got, want, expr in zip(labels, results, written, self.originals):
            problem = difference(got, want, expr.dtype, finite_only=True)
            if problem:
                raise DebugModeError(
                    f"DebugMode: {label} differs from the NumPy reference of the graph as "
                    f"written, {describe(expr)} (so simplification changed it): {problem}")


def difference(got, want, dtype, finite_only=False):
    """'' when `got` matches the reference `want`, else what differs."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"the compiled shape is {got.shape}, the reference's {want.shape}"
    if dtype in TOLERANCES:
        rtol, atol = TOLERANCES[dtype]
        with np.errstate(all="ignore"):
            bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        if finite_only:
            bad &= np.isfinite(want)
    else:
        bad = got != want
    if not bad.any():
        return ""
    where = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)) \
        if bad.ndim else ()
    return (f"{int(bad.sum())} of {bad.size} values differ, first at index {where}: "
            f"compiled {got[where].item()!r}, reference {want[where].item()!r}; "
            f"compiled {summary(got)}; "
            f"reference {summary(want)}")


def summary(a):
    """A short description of an array: shape, dtype, range and first values."""
    text = np.array2string(a, threshold=6, edgeitems=2, precision=6)
    text = " ".join(text.split())
    if a.size and a.dtype.kind in "biuf":
        with np.errstate(all="ignore"):
            low, high = (np.nanmin(a), np.nanmax(a)) if a.dtype.kind == "f" else (a.min(), a.max())
            text += f" (min {low.item()!r}, max {high.item()!r})"
    return f"{a.dtype}{list(a.shape)} {text}"


def describe(node):
    from .expr.printing import pprint
    text = pprint(node).splitlines()[-1]
    if len(text) > 160:
        text = text[:157] + "..."
    op = f"op {node.op.name}: " if node.op is not None else ""
    return f"{op}{text} [{node.type}]"


# ---- functions with something added to each call --------------------------------------
class FunctionWrapper:
    """A compiled function with extra work around each call; everything else
    (source, from_cache, signature, ...) is the wrapped function's."""

    def __init__(self, function):
        self._f = function
        self.__name__ = function.__name__

    def __getattr__(self, name):
        if name == "_f":  # not set yet (unpickling, copying)
            raise AttributeError(name)
        return getattr(self._f, name)

    def __repr__(self):
        return repr(self._f)

    def __reduce__(self):
        return self._f.__reduce__()

    def copy(self, *args, **kwargs):
        from .function import copy_function
        return copy_function(self, *args, **kwargs)


class DebugFunction(FunctionWrapper):
    """mode='DebugMode': each call is checked as DebugChecker says."""

    def __init__(self, function):
        if function.target != "c":
            raise KgenTypeError("mode='DebugMode' runs on target 'c' only")
        super().__init__(function)
        self.checker = DebugChecker(function.kernel, function._optimize)

    def __call__(self, *args, **kwargs):
        f = self._f
        arrays = f.signature.bind(args, kwargs)
        values = dict(zip(f.kernel.inputs, arrays))
        updated = [s for s, _ in f.kernel.updates]
        before = [s._value for s in updated]
        reference = self.checker.check_nodes(arrays, values)
        result = f.call(*arrays)  # (through _compute, which tests replace)
        outs = [result] if f._single else list(result)
        labels = [f"output {k}" for k in range(len(outs))]
        labels += [f"the update of {s.name or 'a shared variable'}" for s in updated]
        try:
            self.checker.check_results(outs + [s._value for s in updated], reference, labels)
        except DebugModeError:
            for s, old in zip(updated, before):  # a failed call changes nothing
                s._set_value_unchecked(old)
            raise
        return result
