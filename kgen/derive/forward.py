"""Forward mode (`jvp`) by transposing reverse mode twice.

The vector-Jacobian product v(u) = J^T u is linear in the cotangent u, so its
own reverse-mode derivative, contracted with a tangent t, is J t: the
Jacobian-vector product. Building it this way needs no second set of rules:
every op's `vjp_rule` serves both modes, and the result is an ordinary
expression. u is a placeholder input; the final expression can still mention
it for its shape only (e.g. `sum_to`'s rule reads its operand's shape), so it
is replaced by zeros shaped like the output (any value gives the same result,
the map being linear).
"""
from ..errors import KgenTypeError
from ..expr.clone import substitute
from ..expr.node import Input, as_variable
from ..expr.ops import api
from ..expr.types import is_float
from .reverse import vjp


def jvp(outputs, inputs, tangents):
    """J(outputs wrt inputs) applied to `tangents` (one per input, shaped like it).

    Each argument is a variable or a list; returns a variable when `outputs`
    is one, else a list. Inputs the outputs do not depend on (and integer
    inputs) contribute nothing.
    """
    many = isinstance(outputs, (list, tuple))
    outs = list(outputs) if many else [outputs]
    ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    tans = list(tangents) if isinstance(tangents, (list, tuple)) else [tangents]
    if len(ins) != len(tans):
        raise KgenTypeError(f"jvp: {len(ins)} input(s) but {len(tans)} tangent(s)")
    tans = [_tangent(x, t) for x, t in zip(ins, tans)]
    results = [pushforward(f, ins, [tans])[0] for f in outs]
    return results if many else results[0]


def pushforward(f, inputs, tangent_sets, consider_constant=None):
    """[J t for t in tangent_sets]: J (of f wrt inputs) applied to each list of
    tangents, sharing one vector-Jacobian product among them (jacobian's
    forward-mode columns)."""
    if not is_float(f.dtype):
        raise KgenTypeError(f"jvp: output must be float, got {f.type}")
    u = Input(f.type, name="jvp_cotangent")
    pulled = vjp([(f, u)], list(inputs), consider_constant, "ignore", who="jvp")
    zeros = api.zeros_like(f)
    out = []
    for tangents in tangent_sets:
        seeds = [(p, t) for x, p, t in zip(inputs, pulled, tangents) if is_float(x.dtype)]
        jv = vjp(seeds, u, disconnected_inputs="ignore", who="jvp")
        out.append(substitute([jv], [(u, zeros)])[0])
    return out


def _tangent(x, t):
    """t as a variable of x's shape (broadcast if its static shape differs)."""
    t = as_variable(t)
    if t.ndim > x.ndim:
        raise KgenTypeError(f"jvp: tangent of shape {t.type.shape} for an input "
                            f"of shape {x.type.shape}")
    if t.type.shape != x.type.shape:
        t = api.second(x, t)
    return t
