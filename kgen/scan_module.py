"""Theano's loops: `scan`, `until`, `map`, `reduce`, `foldl`, `foldr`.

`scan` calls the user's `fn` once, on placeholders of the per-step types, and
closes the graph it returns into one scan node (kgen/expr/ops/scan.py):
  - outer values the body uses (shared variables, inputs, expressions that do
    not depend on the step) become implicit non-sequences, computed once
    outside the loop;
  - shared variables with a `default_update` (random streams' states) and
    those fn updates become carried states, so each step draws with its own
    counter, and `updates` gives their values after the last step.
"""
import inspect
from collections import OrderedDict

import numpy as np

from .errors import KgenTypeError
from .expr.clone import substitute
from .expr.graph import graph_inputs, toposort
from .expr.node import Constant, Input, Shared, as_variable, constant
from .expr.ops import api
from .expr.ops.elementwise import second
from .expr.ops.linalg import gather, scatter_add
from .expr.ops.shape import SYM
from .expr.ops.scan import init_has_axis, scan as scan_op, scan_out
from .expr.types import TensorType
from .scan_hoist import hoist_products

__all__ = ["scan", "until", "map", "reduce", "foldl", "foldr"]


class until:
    """`return outputs, until(condition)`: stop after the step where the scalar
    condition is true (that step's outputs are kept)."""

    def __init__(self, condition):
        self.condition = as_variable(condition)
        if self.condition.ndim != 0:
            raise KgenTypeError(f"until: the condition must be a scalar, got "
                                f"{self.condition.ndim}-d")


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None,
         truncate_gradient=-1, go_backwards=False, mode=None, name=None, profile=False,
         allow_gc=None, strict=False, return_list=False):
    """theano.scan: returns (outputs, updates); see the module docstring."""
    label = name or getattr(fn, "__name__", None) or "scan"
    if label == "<lambda>":
        label = "scan"
    seqs = [_sequence(s, label) for s in _as_list(sequences)]
    infos = [_output_info(o, label) for o in _as_list(outputs_info)]
    nonseqs = [as_variable(v) for v in _as_list(non_sequences)]
    if go_backwards:
        seqs = [(x[::-1], taps) for x, taps in seqs]
    arg_names = _arg_names(fn)
    placeholders, k = [], 0

    def placeholder(type_, default):
        nonlocal k
        name = arg_names[k] if k < len(arg_names) else default
        k += 1
        v = Input(type_, name)
        placeholders.append(v)
        return v

    for x, taps in seqs:
        for t in taps:
            placeholder(TensorType(x.dtype, x.type.shape[1:]), f"{x.name or 'x'}{_tap(t)}")
    for init, taps in infos:
        if taps:
            shape = init.type.shape[1:] if init_has_axis(taps) else init.type.shape
            for t in taps:
                placeholder(TensorType(init.dtype, shape), f"{init.name or 'h'}{_tap(t)}")
    # the non-sequences reach fn as themselves, as in Theano (so fn may take
    # T.grad(y[i], x) of outer expressions); what the body reads of them is
    # captured below like any outer value
    result = fn(*placeholders, *nonseqs)
    outs, updates, cond = _split_result(result, label)
    if outputs_info is None:
        infos = [(None, ()) for _ in outs]
    if len(outs) != len(infos):
        raise KgenTypeError(f"scan {label!r}: fn returned {len(outs)} outputs but "
                            f"outputs_info has {len(infos)} entries")
    for k, (out, (init, taps)) in enumerate(zip(outs, infos)):
        _check_output(label, k, out, init, taps)
    # seq placeholders, state placeholders, then the non-sequences
    inner_in = list(placeholders)
    inits = [init for init, taps in infos if taps]
    out_taps = [tuple(taps) for _, taps in infos]
    inner_out = list(outs)
    # shared variables updated in the loop (fn's updates, random states'
    # default updates) are carried states; substituted for the shared variable
    carried = _carried(inner_out + ([cond] if cond is not None else []), updates)
    if carried:
        holders = [Input(s.type, s.name) for s, _ in carried]
        pairs = list(zip([s for s, _ in carried], holders))
        exprs = substitute(inner_out + [u for _, u in carried] +
                           ([cond] if cond is not None else []), pairs)
        inner_out = exprs[:len(inner_out)]
        carried_out = [api.cast(e, s.dtype) for (s, _), e in
                       zip(carried, exprs[len(inner_out):len(inner_out) + len(carried)])]
        if cond is not None:
            cond = exprs[-1]
        nstate = sum(len(t) for t in out_taps)
        pos = sum(len(t) for _, t in seqs) + nstate
        inner_in[pos:pos] = holders
        inner_out += carried_out
        out_taps += [(-1,)] * len(carried)
        inits += [s for s, _ in carried]
    if cond is not None:
        inner_out.append(cond)
    # a per-step integer index (x[i] with i from a sequence) cannot be a view
    # offset fixed before the loop: it becomes a gather (and its gradient a scatter-add)
    inner_out = _per_step_indices(inner_out, inner_in)
    # whatever the body reads from outside (the non-sequences among it) becomes
    # a non-sequence input, computed once before the loop
    captured = _captured(inner_out, inner_in)
    if strict:
        given = {id(v) for v in nonseqs}
        stray = [v for v in graph_inputs(captured)
                 if isinstance(v, (Input, Shared)) and id(v) not in given]
        if stray:
            raise KgenTypeError(f"scan {label!r}: strict=True, but fn reads "
                                f"{', '.join(v.name or repr(v) for v in stray)} without it "
                                f"being in non_sequences")
    holders = [Input(v.type, v.name) for v in captured]
    inner_out = substitute(inner_out, list(zip(captured, holders)))
    steps = _n_steps(n_steps, seqs, label)
    if cond is None:  # x_t @ W as one GEMM before the loop (kgen/scan_hoist.py)
        seqs, inner_in, inner_out = hoist_products(seqs, inner_in, inner_out,
                                                   {id(h): v for h, v in zip(holders, captured)})
    # the non-sequences the body still reads (a hoisted product's W may be no more)
    read = {id(n) for n in toposort(inner_out)}
    kept = [(v, h) for v, h in zip(captured, holders) if id(h) in read]
    nonseqs = [v for v, _ in kept]
    inner_in += [h for _, h in kept]
    node = scan_op(steps, *[x for x, _ in seqs], *inits, *nonseqs,
                   inner_in=tuple(inner_in), inner_out=tuple(inner_out),
                   seq_taps=tuple(tuple(t) for _, t in seqs), out_taps=tuple(out_taps),
                   has_until=cond is not None, label=label, truncate=int(truncate_gradient))
    parts = [scan_out(node, part=k) for k in range(len(out_taps))]
    results = parts[:len(outs)]
    for r, (init, _) in zip(results, infos):
        if init is not None and init.name and r.name is None:
            r.name = f"{label}_{init.name}"
    new_updates = OrderedDict((s, parts[len(outs) + j][-1]) for j, (s, _) in enumerate(carried))
    if return_list or len(results) != 1:
        return results, new_updates
    return results[0], new_updates


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _tap(t):
    return "_t" if t == 0 else f"_tm{-t}" if t < 0 else f"_tp{t}"


def _arg_names(fn):
    """fn's positional parameter names (what the generated C calls the
    per-step values); none for *args or builtins."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _taps(taps, what, label):
    taps = [taps] if isinstance(taps, int) else list(taps)
    if not taps or not all(isinstance(t, int) and not isinstance(t, bool) for t in taps):
        raise KgenTypeError(f"scan {label!r}: {what} taps must be a non-empty list of ints")
    if len(set(taps)) != len(taps):
        raise KgenTypeError(f"scan {label!r}: {what} has a repeated tap")
    return sorted(taps)


def _sequence(s, label):
    if isinstance(s, dict):
        x = as_variable(s["input"])
        taps = _taps(s.get("taps", [0]), "a sequence's", label)
    else:
        x, taps = as_variable(s), [0]
    if x.ndim == 0:
        raise KgenTypeError(f"scan {label!r}: a sequence must have at least one axis")
    return x, taps


def _output_info(o, label):
    if o is None:
        return None, ()
    if isinstance(o, dict):
        init = o.get("initial")
        if init is None:
            return None, ()
        init = as_variable(init)
        taps = _taps(o.get("taps", [-1]), "an output's", label)
    else:
        init, taps = as_variable(o), [-1]
    if any(t >= 0 for t in taps):
        raise KgenTypeError(f"scan {label!r}: an output's taps must be negative, got {taps}")
    if init_has_axis(taps) and init.ndim == 0:
        raise KgenTypeError(f"scan {label!r}: taps {taps} read rows of the initial value, "
                            f"which must then have a leading axis")
    return init, tuple(taps)


def _split_result(result, label):
    """fn's return value -> (outputs, updates [(shared, expr)], until condition)."""
    outs, updates, cond = result, [], None
    items = list(result) if isinstance(result, (list, tuple)) else [result]
    rest = []
    for item in items:
        if isinstance(item, until):
            cond = item.condition
        elif isinstance(item, dict) or (isinstance(item, (list, tuple)) and item
                                        and all(_is_update(u) for u in item)):
            updates += list(item.items()) if isinstance(item, dict) else list(item)
        else:
            rest.append(item)
    if len(rest) == 1 and isinstance(rest[0], (list, tuple)):
        rest = list(rest[0])
    outs = []
    for k, o in enumerate(rest):
        if o is None:
            continue
        try:
            outs.append(as_variable(o))
        except KgenTypeError:
            raise KgenTypeError(f"scan {label!r}: output {k} of fn is a {type(o).__name__}, "
                                f"not an expression") from None
    for s, _ in updates:
        if not isinstance(s, Shared):
            raise KgenTypeError(f"scan {label!r}: fn's updates must update shared variables")
    return outs, [(s, as_variable(u)) for s, u in updates], cond


def _is_update(u):
    return isinstance(u, (tuple, list)) and len(u) == 2 and isinstance(u[0], Shared)


def _check_output(label, k, out, init, taps):
    """An output fed back must have its state's dtype, ndim and (known) shape."""
    if not taps:
        return
    shape = init.type.shape[1:] if init_has_axis(taps) else init.type.shape
    if out.dtype != init.dtype:
        raise KgenTypeError(
            f"scan {label!r}: output {k} of fn is {out.dtype} but its initial value is "
            f"{init.dtype}; cast one of them (the state keeps one dtype across steps)")
    if out.ndim != len(shape) or any(a is not None and b is not None and a != b
                                     for a, b in zip(out.type.shape, shape)):
        raise KgenTypeError(
            f"scan {label!r}: output {k} of fn has type {out.type} but its state is "
            f"{TensorType(init.dtype, shape)} (each step must give the state's shape)")


def _carried(exprs, updates):
    """[(shared, update)]: fn's updates, then the default updates of the
    shared variables the body reads that fn does not update."""
    out = list(updates)
    seen = {id(s) for s, _ in out}
    for n in toposort(exprs + [u for _, u in updates]):
        if isinstance(n, Shared) and n.default_update is not None and id(n) not in seen:
            seen.add(id(n))
            out.append((n, n.default_update))
    return out


def _captured(exprs, inner_in):
    """Outer values the body reads: the largest subexpressions that do not
    depend on a placeholder (so they run once, before the loop)."""
    ours = {id(v) for v in inner_in}
    order = toposort(exprs)
    dep = set(ours)
    for n in order:
        if n.op is not None and any(id(i) in dep for i in n.inputs):
            dep.add(id(n))
    captured, seen = [], set()

    def take(v):
        if id(v) in dep or isinstance(v, Constant) or id(v) in seen:
            return
        seen.add(id(v))
        captured.append(v)

    for n in order:
        if id(n) in dep and n.op is not None:
            for i in n.inputs:
                take(i)
    for e in exprs:
        take(e)
    return captured


def _per_step_indices(exprs, inner_in):
    """`exprs` with each basic index whose integer entries depend on a per-step
    value, and which is ints then whole axes (x[i], x[i, j], and their
    gradients), written as the advanced-indexing ops that read indices at run
    time. Other per-step bounds (x[i:i + 3]) stay, for the lowering to refuse."""
    ours = {id(v) for v in inner_in}
    while True:
        dep = set(ours)
        found = None
        for n in toposort(exprs):
            if n.op is None:
                continue
            if any(id(i) in dep for i in n.inputs):
                dep.add(id(n))
            first = {"subtensor": 1, "subtensor_grad": 2}.get(n.op.name)
            if first is not None and any(id(i) in dep for i in n.inputs[first:]):
                idx = _int_prefix(n.attr("index"), n.inputs[first:])
                if idx is not None:
                    found = (n, idx)
                    break
        if found is None:
            return exprs
        n, idx = found
        if n.op.name == "subtensor":
            new = gather(n.inputs[0], *idx)
        else:
            x, g = n.inputs[:2]
            new = scatter_add(second(x, np.zeros((), g.dtype)), g, *idx)
        exprs = substitute(exprs, [(n, new)])


def _int_prefix(index, syms):
    """The int64 index values of a basic index made of ints then whole axes,
    else None."""
    vals, out, ints_done = iter(syms), [], False
    for e in index:
        if e[0] == "i" and not ints_done:
            out.append(api.cast(next(vals), "int64") if e[1] == SYM
                       else constant(np.int64(e[1])))
        elif e[0] == "s" and all(p is None for p in e[1:3]) and e[3] in (None, 1):
            ints_done = True
        else:
            return None
    return out or None


def _n_steps(n_steps, seqs, label):
    """The step count: n_steps if given, else the shortest sequence's."""
    if n_steps is not None:
        n = as_variable(n_steps)
        if n.ndim != 0 or not n.dtype.startswith("int"):
            raise KgenTypeError(f"scan {label!r}: n_steps must be an int scalar, got {n.type}")
        if isinstance(n, Constant) and int(n.value) <= 0:
            raise KgenTypeError(f"scan {label!r}: n_steps must be positive, got {int(n.value)}")
        return api.cast(n, "int64")
    if not seqs:
        raise KgenTypeError(f"scan {label!r}: give sequences or n_steps")
    n = None
    for x, taps in seqs:
        length = x.shape[0] - (taps[-1] - taps[0]) if taps[-1] != taps[0] else x.shape[0]
        length = api.cast(as_variable(length), "int64")
        n = length if n is None else api.minimum(n, length)
    return n


def map(fn, sequences, non_sequences=None, truncate_gradient=-1, go_backwards=False,
        mode=None, name=None):
    """theano.map: scan with no state."""
    return scan(fn, sequences=sequences, outputs_info=None, non_sequences=non_sequences,
                truncate_gradient=truncate_gradient, go_backwards=go_backwards, name=name)


def reduce(fn, sequences, outputs_info, non_sequences=None, go_backwards=False, mode=None,
           name=None):
    """theano.reduce: scan, keeping only the last value of each output (the
    loop then keeps only the last steps: kgen/lower/scan.py)."""
    outs, updates = scan(fn, sequences=sequences, outputs_info=outputs_info,
                         non_sequences=non_sequences, go_backwards=go_backwards, name=name,
                         return_list=True)
    last = [o[-1] for o in outs]
    return (last[0] if len(last) == 1 else last), updates


def foldl(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """theano.foldl: reduce from the first element."""
    return reduce(fn, sequences, outputs_info, non_sequences, False, mode, name)


def foldr(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """theano.foldr: reduce from the last element."""
    return reduce(fn, sequences, outputs_info, non_sequences, True, mode, name)
