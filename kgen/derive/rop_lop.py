"""Theano's `Rop` and `Lop`: Jacobian products with given vectors.

Rop(f, wrt, eval_points) is J v (forward mode, kg.jvp); Lop(f, wrt,
eval_points) is v^T J, the gradient of sum(f * v) (reverse mode). As in
Theano, `f` and `wrt` are each a variable or a list, `eval_points` is
structured like `wrt` for Rop and like `f` for Lop, and the result is
structured like `f` for Rop and like `wrt` for Lop.
"""
from ..errors import KgenTypeError
from ..expr.node import as_variable
from .forward import jvp
from .reverse import require_variable, vjp


def Rop(f, wrt, eval_points):  # noqa: N802 (Theano's name)
    """J(f wrt `wrt`) applied to `eval_points` (one per wrt, shaped like it)."""
    wrts, points = _pair(wrt, eval_points, "Rop", "wrt")
    return jvp(f, wrts if isinstance(wrt, (list, tuple)) else wrts[0],
               points if isinstance(wrt, (list, tuple)) else points[0])


def Lop(f, wrt, eval_points, consider_constant=None, disconnected_inputs="raise"):  # noqa: N802
    """`eval_points` (one per f, shaped like it) times J(f wrt `wrt`)."""
    outs, points = _pair(f, eval_points, "Lop", "f")
    seeds = []
    for out, v in zip(outs, points):
        out = require_variable(out, "Lop: f")
        if v.ndim != out.ndim:
            raise KgenTypeError(f"Lop: eval point of {v.ndim} dimension(s) for an output of "
                                f"{out.ndim}")
        seeds.append((out, v))
    return vjp(seeds, wrt, consider_constant, disconnected_inputs, who="Lop")


def _pair(items, points, who, what):
    many = isinstance(items, (list, tuple))
    items = list(items) if many else [items]
    points = list(points) if isinstance(points, (list, tuple)) else [points]
    if len(items) != len(points):
        raise KgenTypeError(f"{who}: {len(items)} {what} but {len(points)} eval point(s)")
    return items, [as_variable(p) for p in points]
