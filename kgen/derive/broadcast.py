"""Summing a gradient back to the shape of an operand that was broadcast.

An elementwise rule returns each operand's gradient at the broadcast output
shape; the operand saw only its own shape, so the gradient is summed over the
axes it was stretched along. Static shapes say most of it: leading axes the
operand lacks, and axes it declares as length 1, are summed with a plain
`sum`. An axis of unknown length (None) may still be 1 at run time and
broadcast (API.md: gradients are right either way), so there the sum goes
through `sum_to`, which reads the run-time shape, unless the operand provably
spans the whole output axis.

"Provably" is a cheap extent analysis: an axis is followed down the graph
through elementwise ops whose other operands cannot widen it (scalars,
static-1 axes), through the kept axes of reductions and through dimshuffles,
to a root; two values with the same root have the same run-time length on
that axis. It keeps `x * 2 + x`, `sin(x) * x` and softmax's
`e / sum(e, keepdims=True)` free of run-time reductions.
"""
from ..expr.ops import api
from ..expr.ops.elementwise import Elementwise
from ..expr.ops.reduce import Reduce
from ..expr.ops.shape import dimshuffle, sum_to


def unbroadcast(g, x, peers=None, memo=None):
    """g, shaped like x broadcast against `peers`, summed back to x's shape.

    `peers` are the other operands of the broadcast; None means unknown, so
    every axis of unknown length is summed at run time.
    """
    lead = g.ndim - x.ndim
    if lead > 0:
        g = api.sum(g, axis=tuple(range(lead)))
    static_axes, runtime = [], False
    for axis, (dx, dg) in enumerate(zip(x.type.shape, g.type.shape)):
        if dg == 1 or (dx is not None and dx != 1):
            continue  # g is already 1 there, or x is as long as the output
        if dx == 1:
            static_axes.append(axis)
        elif peers is None or not spans_output(x, x.ndim - axis, peers, memo):
            runtime = True
    if static_axes:
        g = api.sum(g, axis=tuple(static_axes), keepdims=True)
    if runtime:
        g = sum_to(g, x)
    return g


def spans_output(x, r, peers, memo=None):
    """True when x's axis `r` (counted from the right, 1 = last) cannot have
    been broadcast against `peers`: each peer lacks the axis, is static 1
    there, or has the same extent root as x."""
    memo = {} if memo is None else memo
    root = extent_root(x, r, memo)
    for p in peers:
        if p.ndim < r or p.type.shape[p.ndim - r] == 1:
            continue
        if extent_root(p, r, memo) != root:
            return False
    return True


def extent_root(v, r, memo):
    """(variable, axis from the right) whose run-time length v's axis `r`
    provably equals, found by following `same_extent_input` down the graph."""
    path = []
    while (v, r) not in memo:
        path.append((v, r))
        step = same_extent_input(v, r)
        if step is None:
            break
        v, r = step
    root = memo.get((v, r), (v, r))
    for key in path:
        memo[key] = root
    return root


def same_extent_input(v, r):
    """(input, axis from the right) that gives v's axis `r` its length, or None."""
    axis = v.ndim - r
    if isinstance(v.op, Elementwise):
        wide = {i for i in v.inputs if i.ndim >= r and i.type.shape[i.ndim - r] != 1}
        return (wide.pop(), r) if len(wide) == 1 else None
    if isinstance(v.op, Reduce):  # a kept axis keeps its length
        x, reduced = v.inputs[0], v.attr("axis")
        kept = [a for a in range(x.ndim) if v.attr("keepdims") or a not in reduced]
        return None if kept[axis] in reduced else (x, x.ndim - kept[axis])
    if v.op is dimshuffle:
        source = v.attr("pattern")[axis]
        return None if source == "x" else (v.inputs[0], v.inputs[0].ndim - source)
    return None
