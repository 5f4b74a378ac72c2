"""Full derivative matrices: `jacobian` and `hessian`.

When a size is static, the Jacobian is unrolled: one reverse-mode gradient
per element of `expr` when its size is static, else one forward-mode column
per element of `wrt`. All rows (columns) share the forward graph and, by
hash-consing, whatever parts of the gradient they have in common. When
neither is static, a scan computes one row per step (as Theano does).
"""
import numpy as np

from ..errors import KgenTypeError
from ..expr.graph import toposort
from ..expr.node import constant
from ..expr.ops import api
from ..expr.types import is_float
from .forward import pushforward
from .reverse import check_connected, grad, require_variable


def jacobian(expr, wrt, consider_constant=None, disconnected_inputs="raise"):
    """d expr / d wrt, of shape expr.shape + wrt.shape (Theano's layout).

    `wrt` is a variable or a list (then a list is returned). A 0-d `expr`
    gives its gradient.
    """
    expr = require_variable(expr, "jacobian: expr")
    if not is_float(expr.dtype):
        raise KgenTypeError(f"jacobian: expr must be float, got {expr.type}")
    many = isinstance(wrt, (list, tuple))
    targets = [require_variable(w, "jacobian: wrt") for w in (wrt if many else [wrt])]
    if expr.ndim == 0:
        return grad(expr, wrt, consider_constant, disconnected_inputs)
    cut = set(consider_constant or ())
    connected = check_connected(toposort([expr]), [expr], targets, cut,
                                disconnected_inputs, "jacobian")
    out = []
    for w, ok in zip(targets, connected):
        m, n = _static_size(expr), _static_size(w)
        if not ok or m == 0 or n == 0:
            out.append(_zeros(expr, w))
        elif m is not None:
            out.append(_by_rows(expr, w, m, consider_constant))
        elif n is not None:
            out.append(_by_columns(expr, w, n, consider_constant))
        else:
            out.append(_by_scan(expr, w, consider_constant))
    return out if many else out[0]


def hessian(cost, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The matrix of second derivatives of a 0-d cost: shape wrt.shape * 2."""
    cost = require_variable(cost, "hessian: cost")
    if cost.ndim != 0 or not is_float(cost.dtype):
        raise KgenTypeError(f"hessian: cost must be a 0-d float expression, got {cost.type}")
    many = isinstance(wrt, (list, tuple))
    targets = wrt if many else [wrt]
    grads = grad(cost, list(targets), consider_constant, disconnected_inputs)
    out = [jacobian(g, w, consider_constant, "ignore") for g, w in zip(grads, targets)]
    return out if many else out[0]


def _by_rows(expr, w, m, consider_constant):
    """Reverse mode: one gradient per element of expr, stacked on a new first axis."""
    flat = api.reshape(expr, (m,))
    rows = [grad(flat[i], w, consider_constant, "ignore") for i in range(m)]
    jac = api.stack(rows, axis=0)
    if expr.ndim == 1:
        return jac
    return api.reshape(jac, tuple(expr.type.shape) + tuple(w.shape))


def _by_scan(expr, w, consider_constant):
    """Sizes known only at run time: a scan over the rows, row i the gradient
    of expr's element i (picked by a one-hot weight, so the body's sizes do
    not depend on the step)."""
    from ..scan_module import scan
    flat = api.reshape(expr, (-1,))
    positions = api.arange_op(constant(0), flat.shape[0], constant(1))

    def row(i):
        pick = api.cast(api.eq(positions, i), flat.dtype)
        return grad(api.sum(flat * pick), w, consider_constant, "ignore")

    rows, _ = scan(row, sequences=positions, name="jacobian")
    if expr.ndim == 1:
        return rows
    return api.reshape(rows, tuple(expr.shape) + tuple(w.shape))


def _by_columns(expr, w, n, consider_constant):
    """Forward mode: one Jacobian-vector product per element of wrt."""
    basis = np.eye(n, dtype=w.dtype)
    tangents = [[constant(basis[j].reshape(w.type.shape))] for j in range(n)]
    cols = pushforward(expr, [w], tangents, consider_constant)
    jac = api.stack(cols, axis=-1)
    if w.ndim == 1:
        return jac
    return api.reshape(jac, tuple(expr.shape) + tuple(w.type.shape))


def _zeros(expr, w):
    """Zeros of shape expr.shape + w.shape (disconnected or empty)."""
    dtype = w.dtype if is_float(w.dtype) else expr.dtype
    left = api.dimshuffle(api.zeros_like(expr, dtype),
                          tuple(range(expr.ndim)) + ("x",) * w.ndim)
    right = api.dimshuffle(api.zeros_like(w, dtype), ("x",) * expr.ndim + tuple(range(w.ndim)))
    return api.second(left, right)


def _static_size(v):
    return None if None in v.type.shape else int(np.prod(v.type.shape, dtype=np.int64))
