"""kg.kernel and kg.function: declare a computation, build it, call it.

A Kernel is the declaration (inputs, outputs, updates) and can render its
source for any target without a compiler. A Function is a built Kernel bound
to a target's runtime: it checks arguments, calls the compiled code, and
writes shared-variable updates only after everything succeeded.
"""

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
    from .expr.clone import replacement_pairs
    return replacement_pairs(updates, "updates", Shared, "update", "updated")


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


def kernel(name, inputs, outputs=None, updates=None, givens=None, no_default_updates=False):
    """Declare a kernel without building anything (givens, no_default_updates:
    as kg.function's)."""
    if givens is not None:
        outputs, updates = _apply_givens(inputs, outputs, updates, givens)
    return Kernel(name, inputs, outputs, updates, no_default_updates)


def function(inputs, outputs=None, updates=None, name=None, target="c", optimize=True,
             mode=None, allow_input_downcast=None, on_unused_input=None, profile=None,
             no_default_updates=False, givens=None):
    """Build (or load from the disk cache) a callable computing `outputs`.

    Theano's keywords: `inputs` may hold `kg.In(x, value=..., name=...)`, and
    `outputs` `kg.Out(expr, borrow=...)` (borrow changes nothing);
    `allow_input_downcast=True` casts arguments even when precision is lost;
    `on_unused_input` ('raise', 'warn', 'ignore'; default: config.on_unused_input,
    else accept); `mode` ('FAST_RUN', 'FAST_COMPILE' = optimize=False,
    'DebugMode', a kg.Mode; default config.mode); `profile=True` times each
    call's phases into `f.profile`; `no_default_updates=True` (or a list of
    random states) turns off the default updates that advance random
    streams. `givens`:
    (variable, expression) pairs or a dict, substituted in the outputs and the
    update expressions before anything else (Theano's givens).
    """
    from .config import config
    from .function_io import MISSING, check_unused, unpack_inputs, unwrap_outputs
    from .function_modes import DebugFunction, resolve_mode
    outputs = unwrap_outputs(outputs)
    spec = dict(inputs=_copied(inputs), outputs=_copied(outputs), updates=_copied(updates),
                name=name, target=target,
                optimize=optimize, mode=mode, allow_input_downcast=allow_input_downcast,
                on_unused_input=on_unused_input, profile=profile,
                no_default_updates=no_default_updates, givens=_copied(givens))
    mode = resolve_mode(mode)
    if mode == "DebugMode" and target != "c":
        raise KgenTypeError(f"mode='DebugMode' runs on target 'c' only, not {target!r}")
    optimize = optimize and mode != "FAST_COMPILE"
    variables, options = unpack_inputs(inputs, allow_input_downcast)
    if givens is not None:
        outputs, updates = _apply_givens(variables, outputs, updates, givens)
    k = Kernel(name or "kgen_fn", variables, outputs, updates, no_default_updates)
    k.no_default_updates = no_default_updates
    if any(options.casts[i] != "safe" or options.names[i] != v.name for i, v in
           enumerate(k.inputs)) or any(d is not MISSING for d in options.defaults):
        k.call_options = options
    if on_unused_input is None:
        on_unused_input = config.on_unused_input
    if on_unused_input is not None:
        check_unused(k.inputs, k.outputs, k.updates, on_unused_input)
    profile = config.profile if profile is None else bool(profile)
    f = _build(k, target, optimize, profile)
    f.no_default_updates, f._spec = no_default_updates, spec  # (wrappers forward them)
    if mode == "DebugMode":
        f = DebugFunction(f)
    if profile:
        from .profiling import ProfiledFunction
        f = ProfiledFunction(f)
    return f


def _copied(arg):
    """A list or dict argument as it is now (the caller may change theirs later)."""
    return type(arg)(arg) if isinstance(arg, (list, tuple, dict)) else arg


def _build(k, target, optimize, profile=False):
    from .expr.graph import collector_paused
    with collector_paused():  # simplify, lower, render, compile
        return _build_for(k, target, optimize, profile)


def _build_for(k, target, optimize, profile):
    if target == "c":
        from .runtime.c import CFunction
        return CFunction(k, optimize, profile=profile)
    if target == "cuda":
        from .runtime.cuda import CudaFunction
        return CudaFunction(k, optimize)
    raise KgenTypeError(f"unknown target {target!r}; use one of {TARGETS}")


def from_spec(spec):
    """The function `function(**spec)` builds (unpickling, copy)."""
    return function(**spec)


def copy_function(f, share_memory=False, swap=None, delete_updates=False, name=None,
                  profile=None):
    """Theano's `f.copy()`: a new function built from the same declaration (it loads
    from the disk cache). kgen keeps no storage between calls other than shared
    variables, so `share_memory` changes nothing: shared variables are shared by
    both functions unless `swap` ({old shared: new shared}) replaces some in the
    copy. `delete_updates=True` drops the updates; `name`, `profile` override."""
    spec = dict(getattr(f, "_spec", None) or _spec_of(f))
    if swap:
        spec = _swapped(spec, swap)
    if delete_updates:
        spec["updates"] = None
    if name is not None:
        spec["name"] = name
    if profile is not None:
        spec["profile"] = profile
    return from_spec(spec)


def _spec_of(f):
    k = f.kernel
    return dict(inputs=list(k.inputs), outputs=k.outputs[0] if k.single else list(k.outputs),
                updates=list(k.updates), name=k.name, target=f.target,
                optimize=getattr(f, "_optimize", True))


def _swapped(spec, swap):
    for old, new in dict(swap).items():
        if not isinstance(old, Shared) or not isinstance(new, Shared):
            raise KgenTypeError(f"copy: swap maps shared variables to shared variables, got "
                                f"{old!r}: {new!r}")
        if old.dtype != new.dtype or old.ndim != new.ndim:
            raise KgenTypeError(f"copy: cannot swap {old.name or old!r} ({old.ndim}-d "
                                f"{old.dtype}) for {new.name or new!r} ({new.ndim}-d "
                                f"{new.dtype}): the types differ")
    swap = dict(swap)
    spec["outputs"], updates = _substituted(spec["outputs"], _check_updates(spec["updates"]),
                                            list(swap.items()))
    spec["updates"] = [(swap.get(s, s), e) for s, e in updates]
    return spec


def _apply_givens(inputs, outputs, updates, givens):
    """Theano's givens: the outputs and update values with each given variable
    (an input or a shared variable) replaced, checked as updates are (same
    dtype and ndim). A replaced input need not, and must not, be an input."""
    from .expr.clone import replacement_pairs
    pairs = replacement_pairs(givens, "givens")
    listed = {id(v) for v in (inputs if isinstance(inputs, (list, tuple)) else [inputs])}
    for var, _ in pairs:
        if id(var) in listed:
            raise KgenTypeError(f"givens: {var.name or repr(var)} is replaced by givens but is "
                                f"also in the inputs list; remove it from the inputs")
    if updates is None:
        ups = []
    else:
        ups = list(updates.items()) if isinstance(updates, dict) else list(updates)
        if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in ups):
            return outputs, updates  # _check_updates says what is wrong
    return _substituted(outputs, ups, pairs)


def _substituted(outputs, updates, pairs):
    """`outputs` (None, one expression or a list) and the (shared, expression) pairs
    `updates`, with the variables of `pairs` replaced in every expression at once;
    the update targets stay as they are."""
    from .expr.clone import substitute
    single = outputs is not None and not isinstance(outputs, (list, tuple))
    outs = [] if outputs is None else [outputs] if single else list(outputs)
    exprs = substitute([as_variable(o) for o in outs] + [as_variable(e) for _, e in updates],
                       pairs)
    new_outs = exprs[:len(outs)]
    new_ups = [(s, e) for (s, _), e in zip(updates, exprs[len(outs):])]
    return (new_outs[0] if single else None if outputs is None else new_outs), new_ups
