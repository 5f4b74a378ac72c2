"""ifelse: Theano's lazy conditional, as one primitive per result.

`ifelse(cond, *thens, *elses, n=N, part=k)` is result k of a conditional over
N pairs of branch values: thens[k] where the 0-d `cond` is true (NumPy's
truthiness: nonzero, NaN included), else elses[k]. The N parts of one
conditional share their inputs (as split_part's do), so the lowering finds
them together and runs each branch once for all of them.

Laziness lives in three places, each reading `lazy`/`taken` below:
  - the NumPy evaluator computes `cond`, then only the input `taken` names;
  - the lowering computes the nodes that only one branch uses inside that
    branch (kgen/lower/branches.py);
  - the gradient (`vjp_region`) differentiates each branch's private part
    inside an ifelse again, so the gradient of the branch not taken is not
    computed either.
"""
import numpy as np

from ...errors import KgenTypeError
from ..op import Op
from ..types import TensorType


class IfElse(Op):
    lazy = True

    def infer(self, inputs, attrs):
        n, k = attrs["n"], attrs["part"]
        if len(inputs) != 1 + 2 * n or not 0 <= k < n:
            raise KgenTypeError(f"ifelse: {len(inputs)} inputs for {n} branch pairs")
        cond, then, other = inputs[0], inputs[1 + k], inputs[1 + n + k]
        if cond.ndim != 0:
            raise KgenTypeError(f"ifelse: the condition must be a scalar (0-d), got {cond.type}")
        if then.dtype != other.dtype or then.ndim != other.ndim:
            raise KgenTypeError(f"ifelse: output {k} has two types: {then.type} and {other.type} "
                                "(cast one to the other)")
        shape = []
        for a, b in zip(then.type.shape, other.type.shape):
            if a is not None and b is not None and a != b:
                raise KgenTypeError(f"ifelse: output {k} has two shapes: {then.type} and "
                                    f"{other.type} (kgen sizes results before running: the "
                                    "branches must have the same shape)")
            shape.append(a if a is not None else b)
        return TensorType(then.dtype, tuple(shape))

    def reads(self, node):
        """The positions this part reads: the condition and its own pair (the
        other parts' values are inputs only because the parts share them)."""
        n, k = node.attr("n"), node.attr("part")
        return (0, 1 + k, 1 + n + k)

    def taken(self, node, cond_value):
        """The input position whose value this node takes, given the condition's."""
        n, k = node.attr("n"), node.attr("part")
        return 1 + k if bool(np.asarray(cond_value)) else 1 + n + k

    def impl(self, arrays, attrs):  # eager (constant folding): every input is known
        n, k = attrs["n"], attrs["part"]
        return arrays[1 + k] if bool(np.asarray(arrays[0])) else arrays[1 + n + k]

    def vjp_region(self, node, g, region_of):
        """{variable: gradient} for the frontier of each branch of `node`:
        the taken branch's gradient, zeros for the other, each side
        differentiated inside an ifelse of its own (so lazily).

        `region_of(pos, seed)` (kgen.derive.reverse) differentiates, with
        cotangent `seed`, through the nodes below input `pos` that only that
        input of `node` uses, and returns {frontier variable: gradient}."""
        from .api import zeros_like
        n, k = node.attr("n"), node.attr("part")
        cond = node.inputs[0]
        sides = [region_of(1 + k, g), region_of(1 + n + k, g)]
        out = {}
        for var in dict.fromkeys(list(sides[0]) + list(sides[1])):
            t, e = (s.get(var) if s.get(var) is not None else zeros_like(var) for s in sides)
            out[var] = ifelse(cond, t, e, n=1, part=0)
        return out


def _pretty(node):
    """ifelse(cond, then, else): the part's own pair only."""
    n, k = node.attr("n"), node.attr("part")
    return f"ifelse({{0}}, {{{1 + k}}}, {{{1 + n + k}}})"


# the gradient: vjp_region (the walker calls it instead of a per-input rule)
ifelse = IfElse("ifelse", vjp_rule="region", pretty=_pretty)
