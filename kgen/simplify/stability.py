"""Numerical-stability rules: unstable compositions become stable primitives.

Each rewrite gives the same value in exact arithmetic and a finite, accurate
one where the original overflows, underflows or cancels (arguments of ±1000,
probabilities that round to 0 or 1):

    log(1 + x)            -> log1p(x)           accurate for tiny x
    log(1 - x)            -> log1p(-x)
    exp(x) - 1            -> expm1(x)           accurate for tiny x
    log1p(exp(x))         -> softplus(x)        no overflow of exp(x)
    1 / (1 + exp(-x))     -> sigmoid(x)
    log(sigmoid(x))       -> -softplus(-x)      finite for x -> -inf
    log(1 - sigmoid(x))   -> -softplus(x)       finite for x -> +inf
    log(softmax(x))       -> log_softmax(x)     finite where softmax underflows:
                             x - m - log(sum(exp(x - m))), m = stop_gradient(max(x)),
                             reusing the softmax's own shift and sum
    log(exp(u) / s)       -> u - log(s)         (the rule that does the above)
    log(sum(exp(x)))      -> logsumexp(x)       no overflow of exp(x)
    log(softmax(x)[i, y]) -> log_softmax(x)[i, y]   (cross-entropy with labels)

Binary and categorical cross-entropy on sigmoid and softmax outputs need no
rule of their own: they are sums of the logs above. Patterns are written
against the canonical form (constants last in sums, first in products).
"""
from ..expr.ops import api
from ..expr.ops import elementwise as ew
from ..expr.ops import linalg as la
from ..expr.ops import shape as sh
from .pattern import C, Hole, P, X


def _float(node):
    return node.dtype in ("float32", "float64")


def log_one_plus(node, x, **_):
    return ew.log1p(x) if _float(node) and x.type == node.type else None


def log_one_minus(node, x, **_):
    return ew.log1p(ew.neg(x)) if _float(node) and x.type == node.type else None


def exp_minus_one(node, x, **_):
    return ew.expm1(x) if _float(node) and x.type == node.type else None


def log1p_exp(node, x, **_):
    return ew.softplus(x)


def sigmoid_of_exp(node, x, **_):
    """1 / (1 + exp(-x)), the textbook sigmoid, is the primitive."""
    return ew.sigmoid(x) if x.type == node.type else None


def log_sigmoid(node, x, **_):
    return ew.neg(ew.softplus(ew.neg(x)))


def log1p_neg_sigmoid(node, x, **_):
    return ew.neg(ew.softplus(x))


def log_exp_ratio(node, u, s, **_):
    """log(exp(u) / s) -> u - log(s): no exp(u) overflow, no log(0) underflow.
    On a softmax (s = sum(exp(u)), u = x - max) this is log_softmax."""
    return ew.sub(u, ew.log(s)) if u.type == node.type else None


# softmax(x) as api.softmax builds it, in canonical form
SOFTMAX = P("true_div", P("exp", Hole("u"), name="e"), P("sum", P("exp", name="e"), name="s"))


def log_sum_exp(node, x, total, **_):
    """log(sum(exp(x))) -> logsumexp(x), unless x is already shifted by a
    stop_gradient'ed maximum (it is logsumexp's own inside)."""
    if _shifted(x):
        return None
    return api.logsumexp(x, axis=total.attr("axis"), keepdims=total.attr("keepdims"))


def _shifted(x):
    """True if x is a sum with a `- stop_gradient(...)` term."""
    stack = [x]
    while stack:
        n = stack.pop()
        if n.op is ew.sub:
            if n.inputs[1].op is ew.stop_gradient:
                return True
            stack.extend(n.inputs)
        elif n.op is ew.add:
            stack.extend(n.inputs)
    return False


def log_of_picked_softmax(node, picked, **_):
    """log(softmax(x)[i, y]) -> log_softmax(x)[i, y]: negative log-likelihood
    that stays finite when the picked probability underflows."""
    p, caps = picked.inputs[0], {}
    if not SOFTMAX.match(p, caps) or not caps["s"].attr("keepdims"):
        return None
    log_p = ew.sub(caps["u"], ew.log(caps["s"]))
    if log_p.type != p.type:
        return None
    if picked.op is la.gather:
        return la.gather(log_p, *picked.inputs[1:])
    return sh.subtensor(log_p, *picked.inputs[1:], index=picked.attr("index"))


STABILITY = [
    (P("log", P("sigmoid", X)), log_sigmoid),
    (P("log", P(("gather", "subtensor"), name="picked")), log_of_picked_softmax),
    (P("log", P("true_div", P("exp", Hole("u")), Hole("s"))), log_exp_ratio),
    (P("log", P("sum", P("exp", X), name="total")), log_sum_exp),
    (P("log", P("add", X, C(1))), log_one_plus),
    (P("log", P("add", C(1), X)), log_one_plus),
    (P("log", P("sub", C(1), P("sigmoid", X))), log1p_neg_sigmoid),
    (P("log", P("sub", C(1), X)), log_one_minus),
    (P("log1p", P("neg", P("sigmoid", X))), log1p_neg_sigmoid),
    (P("log1p", P("exp", X)), log1p_exp),
    (P("sub", P("exp", X), C(1)), exp_minus_one),
    (P("add", P("exp", X), C(-1)), exp_minus_one),
    (P("true_div", C(1), P("add", P("exp", P("neg", X)), C(1))), sigmoid_of_exp),
]
