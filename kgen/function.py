"""kg.kernel and kg.function: declare a computation, build it, call it.

A Kernel is the declaration (inputs, outputs, updates) and can render its
source for any target without a compiler. A Function is a built Kernel bound
to a target's runtime: it checks arguments, calls the compiled code, and
writes shared-variable updates only after everything succeeded.
"""
import numpy as np

from . import __version__
from .errors import KgenTypeError
from .expr.node import Constant, Input, Shared, Variable, as_variable

TARGETS = ("c", "cuda")


class Kernel:
    """A named computation: `kg.kernel(name, inputs, outputs, updates)`."""

    def __init__(self, name, inputs, outputs=None, updates=None, no_default_updates=False):
        if not isinstance(name, str) or not name:
            raise KgenTypeError("kernel: name must be a non-empty string")
        # the user's text, for messages and comments; the C symbols derived
        # from it come from kgen.lower.names (plan().name)
        self.name = self.label = name
        self.inputs = _check_inputs(inputs)
        self.single = outputs is not None and not isinstance(outputs, (list, tuple))
        outs = [] if outputs is None else [outputs] if self.single else list(outputs)
        self.outputs = [as_variable(o) for o in outs]
        self.updates = _check_updates(updates)
        self.updates += _default_updates(self.outputs, self.updates, no_default_updates)
        self._plans = {}

    def __repr__(self):
        return f"<kgen.Kernel {self.label!r}: {len(self.inputs)} inputs, " \
               f"{len(self.outputs)} outputs, {len(self.updates)} updates>"

    @property
    def shared(self):
        """Shared variables the kernel reads or updates, in the order it passes them."""
        return [p.var for p in self.plan().params if p.role == "shared"]

    def graphs(self, optimize=True):
        """The output and update expressions, simplified unless optimize=False."""
        exprs = self.outputs + [e for _, e in self.updates]
        if optimize and exprs:
            exprs = _simplify(exprs)
        return exprs[:len(self.outputs)], exprs[len(self.outputs):]

    def plan(self, optimize=True, symbol=None):
        """The lowered kernel. Its C functions are `symbol` and `symbol_shapes`:
        by default `kgen_<name>` (kg.function); a package passes `<package>_<name>`."""
        from .lower.names import function_symbol
        symbol = symbol or function_symbol(self.label)
        key = (optimize, symbol)
        if key not in self._plans:
            from .lower.lower import lower
            outs, upd = self.graphs(optimize)
            originals = self.outputs + [e for _, e in self.updates]
            self._plans[key] = lower(symbol, self.inputs, outs,
                                     [(s, e) for (s, _), e in zip(self.updates, upd)],
                                     doc_exprs=originals, label=self.label)
        return self._plans[key]

    def source(self, target="c", optimize=True):
        """The generated source text; needs no compiler, GPU or PyCUDA."""
        from .codegen.render import render_module
        if target not in TARGETS:
            raise KgenTypeError(f"unknown target {target!r}; use one of {TARGETS}")
        return render_module([self.plan(optimize)], target, __version__)


def _simplify(exprs):
    try:
        from .simplify import simplify
    except ImportError:  # the simplifier is optional during bootstrap
        return exprs
    return simplify(list(exprs))


def _check_inputs(inputs):
    if isinstance(inputs, Variable):
        inputs = [inputs]
    inputs = list(inputs or [])
    seen = set()
    for v in inputs:
        if isinstance(v, Shared):
            raise KgenTypeError(f"inputs: {v.name or v!r} is a shared variable; shared variables "
                                f"are implicit - use them in expressions or updates")
        if isinstance(v, Constant) or not isinstance(v, Input):
            raise KgenTypeError(f"inputs: expected symbolic input variables, got {v!r}")
        if id(v) in seen:
            raise KgenTypeError(f"inputs: {v.name or v!r} is listed twice")
        seen.add(id(v))
    return inputs


def _check_updates(updates):
    if updates is None:
        return []
    pairs = list(updates.items()) if isinstance(updates, dict) else list(updates)
    out, seen = [], set()
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise KgenTypeError(f"updates: expected (shared, expression) pairs, got {pair!r}")
        s, e = pair
        if not isinstance(s, Shared):
            raise KgenTypeError(f"updates: {s!r} is not a shared variable")
        e = as_variable(e)
        label = s.name or "shared variable"
        if e.dtype != s.dtype or e.ndim != s.ndim:
            raise KgenTypeError(
                f"updates: the update of {label} is {e.ndim}-d {e.dtype}, but {label} is "
                f"{s.ndim}-d {s.dtype}; cast it (e.g. .astype('{s.dtype}'))")
        if id(s) in seen:
            raise KgenTypeError(f"updates: {label} is updated twice")
        seen.add(id(s))
        out.append((s, e))
    return out


def _default_updates(outputs, updates, no_default_updates):
    """Theano's default updates: each shared variable the graph reads that has
    a `default_update` (random stream states) gets it, unless the user updates
    it, `no_default_updates` is True, or it lists that variable."""
    if no_default_updates is True:
        return []
    skip = {id(s) for s in (no_default_updates or ())} | {id(s) for s, _ in updates}
    from .expr.graph import toposort
    found = [n for n in toposort(list(outputs) + [e for _, e in updates])
             if isinstance(n, Shared) and n.default_update is not None and id(n) not in skip]
    return _check_updates([(s, s.default_update) for s in found])


def kernel(name, inputs, outputs=None, updates=None, no_default_updates=False):
    """Declare a kernel without building anything."""
    return Kernel(name, inputs, outputs, updates, no_default_updates)


def function(inputs, outputs=None, updates=None, name=None, target="c", optimize=True,
             no_default_updates=False):
    """Build (or load from the disk cache) a callable computing `outputs`."""
    k = Kernel(name or "kgen_fn", inputs, outputs, updates, no_default_updates)
    if target == "c":
        from .runtime.c import CFunction
        return CFunction(k, optimize)
    if target == "cuda":
        from .runtime.cuda import CudaFunction
        return CudaFunction(k, optimize)
    raise KgenTypeError(f"unknown target {target!r}; use one of {TARGETS}")
