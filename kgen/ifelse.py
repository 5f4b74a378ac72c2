"""`theano.ifelse.ifelse(condition, then_branch, else_branch)`, lazy as Theano's.

Only the branch taken is computed: in compiled kernels, the nodes that only
one branch uses run inside that branch (kgen/lower/branches.py), so an index
out of range or a big product in the other branch costs nothing. The
condition is a 0-d value of any numeric dtype (true when nonzero). The
branches must have the same dtype and ndim, and in compiled kernels the same
shape at run time (Theano allows different shapes; kgen sizes every result
before running, so differing shapes are a ShapeError there).
"""
from .errors import KgenTypeError
from .expr.node import as_variable
from .expr.ops.conditional import ifelse as _ifelse_part

__all__ = ["ifelse"]


def ifelse(condition, then_branch, else_branch, name=None):
    """`then_branch` where the scalar `condition` is true, else `else_branch`;
    each may be a list (then a list of the same length is returned)."""
    cond = as_variable(condition)
    if cond.ndim != 0:
        raise KgenTypeError(f"ifelse: the condition must be a scalar, got {cond.ndim}-d")
    single = not isinstance(then_branch, (list, tuple))
    thens = [then_branch] if single else list(then_branch)
    elses = [else_branch] if not isinstance(else_branch, (list, tuple)) else list(else_branch)
    if len(thens) != len(elses):
        raise KgenTypeError(f"ifelse: {len(thens)} then-branches but {len(elses)} "
                            "else-branches")
    values = [as_variable(v) for v in thens + elses]
    n = len(thens)
    out = [_ifelse_part(cond, *values, n=n, part=k) for k in range(n)]
    if name is not None:
        for k, o in enumerate(out):
            o.name = o.name or (name if single else f"{name}_{k}")
    return out[0] if single else out
