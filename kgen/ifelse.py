"""`theano.ifelse.ifelse(condition, then_branch, else_branch)`, strict.

Theano's IfElse is lazy: only the branch taken is computed. kgen has no
control flow in its kernels yet, so here both branches are computed and the
scalar condition selects one (`switch`): the values and the gradients are
Theano's, the work is both branches'. The branches must have the same dtype,
ndim and shape (Theano allows different shapes; kgen's kernels size every
result before running, so a shape that depends on the condition is refused
with a ShapeError when the call's shapes differ).
"""
from .errors import KgenTypeError
from .expr.node import as_variable
from .expr.ops.api import switch

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
    out = []
    for i, (t, e) in enumerate(zip(thens, elses)):
        t, e = as_variable(t), as_variable(e)
        if t.dtype != e.dtype or t.ndim != e.ndim:
            raise KgenTypeError(f"ifelse: branch {i} has two types: {t.type} and {e.type} "
                                "(cast one to the other)")
        for a, b in zip(t.type.shape, e.type.shape):
            if a != b and (a == 1 or b == 1 or (a is not None and b is not None)):
                raise KgenTypeError(f"ifelse: branch {i} has two shapes: {t.type} and "
                                    f"{e.type} (kgen computes both; they must agree)")
        out.append(switch(cond, t, e))
    return out[0] if single else out
