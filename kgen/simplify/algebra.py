"""Algebraic rules: constant folding, identities read off the op records'
facts, canonical sums and products, and structural rules for shape ops, casts
and reductions.

Each rule is a (pattern, function) pair; the function gets the matched node as
`node`, the pass context as `ctx` and the pattern's captures, and returns the
replacement or None. The replacement must have the node's dtype and static
shape (the driver refuses it otherwise).

IEEE choices (as Theano's): `x * 0 -> 0` and `x - x -> 0` even where x may be
inf or NaN; `x / x` and `x ** 0` give 1 (NumPy's 0 ** 0 and nan ** 0 are 1
too); `exp(log(x)) -> x` although log(x) is NaN for x < 0; `log(exp(x)) -> x`,
which is also right where exp(x) overflows. Sums and products are
reassociated (rounding may differ in the last bits). Otherwise no rule turns a
finite result into another value.
"""
import numpy as np

from ..expr.node import Constant, constant
from ..expr.ops import api
from ..expr.ops import elementwise as ew
from ..expr.ops import reduce as rd
from ..expr.ops import shape as sh
from ..expr.ops.elementwise import Elementwise
from . import canonical
from .pattern import C, P, X, Y, Z, is_constant_value, only_for, reads_uses

# a fold may not build a constant bigger than this many elements, unless an
# input constant is already that big (folding never inflates the graph much)
FOLD_LIMIT = 256


# ---- constant folding ----------------------------------------------------------
def fold_constants(node, **_):
    """An op applied to constants is the constant it computes (the op's own
    NumPy reference, so the result is exact to NumPy's semantics and dtype)."""
    if not node.inputs:
        return None
    for i in node.inputs:
        if not isinstance(i, Constant):
            return None
    biggest = max(i.value.size for i in node.inputs)
    args = [c.value.item() if c.weak else c.value for c in node.inputs]
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(node.op.impl(args, dict(node.attrs)), dtype=node.dtype)
    except Exception:  # noqa: BLE001  (an error is left for run time to report)
        return None
    if out.shape != node.type.shape or out.size > max(FOLD_LIMIT, biggest):
        return None
    return constant(out)


# ---- identities from the op records' facts ----------------------------------------
def _facts(test):
    """only_for an elementwise op whose record passes `test`."""
    return only_for(lambda op: isinstance(op, Elementwise) and test(op))


@_facts(lambda op: op.identity is not None)
def neutral_element(node, x, e, **_):
    """x + 0, x * 1, x - 0, x / 1, x ** 1 -> x (the op's `identity`, on the right)."""
    op = node.op
    if isinstance(op, Elementwise) and op.identity is not None and x.type == node.type \
            and is_constant_value(e, op.identity):
        return x
    return None


@_facts(lambda op: op.commutative and op.identity is not None)
def neutral_element_left(node, e, x, **_):
    """0 + x, 1 * x -> x (commutative ops)."""
    if node.op.commutative:
        return neutral_element(node, x, e)
    return None


@_facts(lambda op: op.absorbing is not None)
def absorbing_element(node, x, a, ctx, **_):
    """x * 0 -> 0 shaped like the product (the op's `absorbing` element)."""
    op = node.op
    if isinstance(op, Elementwise) and op.absorbing is not None \
            and is_constant_value(a, op.absorbing):
        return canonical.shaped(np.asarray(op.absorbing), node, [x, a], ctx)
    return None


@_facts(lambda op: op.commutative and op.absorbing is not None)
def absorbing_element_left(node, a, x, ctx, **_):
    if node.op.commutative:
        return absorbing_element(node, x, a, ctx)
    return None


@_facts(lambda op: op.arity == 1 and (op.involution or op.idempotent or op.inverse is not None
                                    or op.parity in ("even", "odd")))
def unary_of_unary(node, inner, x, **_):
    """f(f(x)) for involutions and idempotent f, f(g(x)) for inverse pairs,
    f(-x) for even and odd f."""
    f, g = node.op, inner.op
    if not (isinstance(f, Elementwise) and isinstance(g, Elementwise)) or f.arity != 1 \
            or g.arity != 1:
        return None
    if f is g and f.involution and x.type == node.type:
        return x
    if f is g and f.idempotent:
        return inner
    if f.inverse == g.name and x.type == node.type:
        return x
    if g is ew.neg and f.parity == "even":
        return f(x)
    if g is ew.neg and f.parity == "odd":
        return ew.neg(f(x))
    return None


@_facts(lambda op: op.idempotent and op.arity == 2)
def same_operands(node, x, **_):
    """max(x, x), min(x, x), x & x, x | x -> x."""
    if isinstance(node.op, Elementwise) and node.op.idempotent and node.op.arity == 2 \
            and x.type == node.type:
        return x
    return None


# ---- canonical sums and products -----------------------------------------------------
@reads_uses
def canonical_sum(node, ctx, **_):
    """Flatten, collect like terms, fold constants, order (canonical.py)."""
    return canonical.collect_sum(node, ctx)


@reads_uses
def canonical_product(node, ctx, **_):
    """Flatten, collect like bases, fold constants, order (canonical.py)."""
    return canonical.collect_product(node, ctx)


@reads_uses
def distribute_to_cancel(node, ctx, **_):
    """a * b * (x / a - y / b) -> b * x - a * y: multiply a sum out when every
    term then cancels a factor. Gradients of log(sigmoid) and friends have this
    shape; cancelling makes them smaller and finite where the factor is 0."""
    if node.dtype[0] != "f" or not _has_sum_factor(node) or not _may_divide(node) \
            or ctx.is_deferred(node):
        return None
    try:
        coeff, arrays, bases, sources = canonical.product_parts(node, ctx)
    except canonical.NotCanonical:
        return None
    sums = [b for b in bases.values() if b[0].op in (ew.add, ew.sub) and b[1] == 1
            and not b[2] and ctx.single_use(b[0])]
    if len(sums) != 1:
        return None
    rest = [b for b in bases.values() if b is not sums[0]]
    if not rest or len(rest) > MAX_DISTRIBUTE or any(b[2] for b in rest) or arrays:
        return None
    total = sums[0][0]
    try:
        const, terms, term_sources = canonical.sum_parts(total, ctx)
    except canonical.NotCanonical:
        return None
    if const is not None or len(terms) > MAX_DISTRIBUTE:
        return None
    signs = {id(b): e for b, e, _ in rest}
    for term, _c in terms.values():
        if not ctx.single_use(term):  # a shared term is not taken apart: nothing cancels
            return None
        try:
            _, _, tbases, _ = canonical.product_parts(term, ctx)
        except canonical.NotCanonical:
            return None
        if not any(id(b) in signs and e * signs[id(b)] < 0 for b, e, sym in tbases.values()
                   if not sym):
            return None
    out = None
    for term, c in sorted(terms.values(), key=lambda e: ctx.key(e[0])):
        # term first, so each piece is its own chain and cancels in its own product
        piece = _power_product(rest, term * canonical.scalar(c * coeff, node.dtype))
        out = piece if out is None else out + piece
    atoms = [b for b, _, _ in rest] + [t for t, _ in terms.values()]
    out = canonical.with_sources(out, atoms, sources + term_sources, ctx)
    return out if out.type == node.type else None


def _has_sum_factor(node):
    """A cheap look along the product's chain for an add or sub factor."""
    stack = [node]
    while stack:
        x = stack.pop()
        for i in x.inputs:
            if i.op is ew.add or i.op is ew.sub:
                return True
            if i.op is ew.mul or i.op is ew.true_div or i.op is ew.neg:
                stack.append(i)
    return False


# what the product and sum collectors read through (product_parts, sum_parts,
# split_coefficient), and what gives a factor a negative exponent
_THROUGH = frozenset(("mul", "neg", "add", "sub", "second", "dimshuffle"))
_DIVIDES = frozenset(("true_div", "reciprocal", "pow"))


def _may_divide(node, budget=32):
    """False only if nothing the collectors would read of `node` (its factors,
    a sum factor's terms and theirs) divides: then no term can cancel a
    factor. Looks at `budget` nodes at most (then it answers True)."""
    stack, seen = list(node.inputs), set()
    while stack:
        x = stack.pop()
        if x.op is None or id(x) in seen:
            continue
        name = x.op.name
        if name in _DIVIDES or len(seen) >= budget:
            return True
        seen.add(id(x))
        if name in _THROUGH:
            stack.extend(x.inputs)
    return False


# at most this many factors and terms for distribute_to_cancel (the result
# grows with their product)
MAX_DISTRIBUTE = 3


# ---- shape ops and casts ---------------------------------------------------------------
def dimshuffle_of_dimshuffle(node, inner, x, **_):
    """Two dimshuffles (transposes, expand_dims...) are one, or none."""
    p1, p2 = inner.attr("pattern"), node.attr("pattern")
    q = tuple("x" if b == "x" else p1[b] for b in p2)
    if q == tuple(range(x.ndim)):
        return x
    try:
        return sh.dimshuffle(x, pattern=q)
    except Exception:  # noqa: BLE001
        return None


def dimshuffle_noop(node, x, **_):
    return x if node.attr("pattern") == tuple(range(x.ndim)) else None


def reshape_of_reshape(node, inner, **_):
    """Only the last reshape matters."""
    return sh.reshape(inner.inputs[0], *node.inputs[1:], shape=node.attr("shape"))


def reshape_noop(node, ctx, **_):
    """reshape(x, x.shape): each size equal to x's, statically or as x.shape[i]."""
    x, dims = node.inputs[0], iter(node.inputs[1:])
    target = node.attr("shape")
    if len(target) != x.ndim or node.type != x.type:
        return None
    free = 0
    for axis, want in enumerate(target):
        have = x.type.shape[axis]
        if want is None:
            d = next(dims)
            if not (d.op is not None and d.op.name == "shape_i" and d.attr("axis") == axis
                    and ctx.shape_class(d.inputs[0])[d.attr("axis")] == ctx.shape_class(x)[axis]):
                return None
        elif want == -1:
            free += 1
        elif want != have:
            return None
    return x if free == 0 or (free == 1 and 0 not in x.type.shape) else None


def cast_noop(node, x, **_):
    return x if x.dtype == node.dtype else None


def cast_of_cast(node, inner, x, **_):
    """cast(cast(x, a), b) -> cast(x, b) when x -> a loses nothing."""
    if not np.can_cast(x.dtype, inner.dtype, "safe"):
        return None
    return x if x.dtype == node.dtype else ew.cast(x, dtype=node.dtype)


def static_shape(node, x, ctx, **_):
    """x.shape[i] is a constant where the static shape knows it, else the size
    of the simplest node known to have that size (an input's, mostly)."""
    axis = node.attr("axis")
    d = x.type.shape[axis]
    if d is not None:
        return constant(np.int64(d))
    c = ctx.shape_class(x)[axis]
    if c == 1:
        return constant(np.int64(1))
    root = ctx.dim_root(x, axis)
    if root is None or root[0] is x and root[1] == axis:
        return None
    return sh.shape_i(root[0], axis=root[1])


def second_noop(node, x, y, ctx, **_):
    """second(a, b) -> b where b already has a's shape."""
    return y if y.type == node.type and ctx.covers([y], x) else None


def sum_to_noop(node, x, y, ctx, **_):
    """sum_to(g, x) -> g where g provably has x's shape."""
    if x.type != node.type:
        return None
    if ctx.shape_class(x) == ctx.shape_class(y) or (
            None not in x.type.shape and x.type.shape == y.type.shape):
        return x
    return None


def where_same(node, z, x, ctx, **_):
    """where(c, x, x) -> x (broadcast against c if c could add to its shape)."""
    return canonical.with_sources(x, [x], [z], ctx) if x.dtype == node.dtype else None


# elementwise ops whose collector already moves `second` out of the way
_COLLECTED = ("add", "sub", "neg", "mul", "true_div", "reciprocal", "pow", "second")


@reads_uses
@_facts(lambda op: op.name not in _COLLECTED and not getattr(op, "indexed", False))
def sink_second(node, ctx, **_):
    """f(second(a, b), y) -> second(a, f(b, y)): compute f on the small operand,
    broadcast once at the end, and not at all where y already has a's shape."""
    op = node.op
    if not isinstance(op, Elementwise) or op.name in _COLLECTED \
            or getattr(op, "indexed", False):  # a draw's numbers depend on its own shape
        return None
    if not any(i.op is ew.second for i in node.inputs):
        return None
    inputs, sources = [], []
    for i in node.inputs:
        if i.op is ew.second and (isinstance(i.inputs[1], Constant) or ctx.single_use(i)):
            sources.append(i.inputs[0])
            inputs.append(i.inputs[1])
        else:
            inputs.append(i)
    if not sources:
        return None
    out = op(*inputs, **dict(node.attrs))
    if any(i.op is ew.second and not ctx.single_use(i) for i in node.inputs) and \
            not all(ctx.covers([out], s) for s in sources):
        return None  # a shared second(a, b) stays where it is unless it vanishes here
    return canonical.with_sources(out, [i for i in inputs if not isinstance(i, Constant)],
                                  sources, ctx)


# ---- reductions ------------------------------------------------------------------
def reduce_trivial(node, x, **_):
    """Reducing no axes, or only axes of length 1, moves no data."""
    axis = node.attr("axis")
    if node.op.name not in ("sum", "prod", "max", "min"):
        return None
    if any(x.type.shape[a] != 1 for a in axis):
        return None
    out = x if node.attr("keepdims") or not axis else api.drop_axes(x, axis)
    return api.cast(out, node.dtype)


def sum_of_sum(node, inner, x, **_):
    """sum(sum(x, a), b) -> sum(x, a ∪ b)."""
    a, k1 = inner.attr("axis"), inner.attr("keepdims")
    b, k2 = node.attr("axis"), node.attr("keepdims")
    if k1 != k2:
        return None
    if not k1:
        remaining = [ax for ax in range(x.ndim) if ax not in a]
        b = tuple(remaining[ax] for ax in b)
    return rd.sum_(x, axis=tuple(sorted(set(a) | set(b))), keepdims=k1)


def sum_of_broadcast(node, x, y, **_):
    """sum(second(a, b)) over every axis, b one value: b * (number of elements).
    Only where that number is static: a symbolic count takes more nodes."""
    bc = node.inputs[0]
    if len(node.attr("axis")) != bc.ndim or x.ndim < y.ndim \
            or any(d != 1 for d in y.type.shape) or None in x.type.shape:
        return None
    value = api.drop_axes(y, tuple(range(y.ndim)))
    total = api.cast(value, node.dtype) * api.cast(api.count(x, None), node.dtype)
    if node.attr("keepdims"):
        total = sh.dimshuffle(total, pattern=("x",) * bc.ndim) if bc.ndim else total
    return total


@reads_uses
def sum_of_scaled(node, x, ctx, **_):
    """sum(c * x) -> c * sum(x) for factors c that are scalars (0-d)."""
    if node.dtype != x.dtype or node.dtype[0] != "f" or x.op not in (ew.mul, ew.neg, ew.true_div) \
            or not ctx.single_use(x):
        return None
    try:
        coeff, arrays, bases, sources = canonical.product_parts(x, ctx)
    except canonical.NotCanonical:
        return None
    outer, inner = [], []
    for base, e, sym in bases.values():
        (outer if base.ndim == 0 else inner).append((base, e, sym))
    if not inner or (not outer and coeff == 1):
        return None
    factor = _power_product(outer, canonical.scalar(coeff, node.dtype))
    rest = _power_product(inner, None)
    for v, sign in arrays:
        k = canonical.typed(v, node.dtype)
        rest = rest * k if sign > 0 else rest / k
    rest = canonical.with_sources(rest, [b for b, _, _ in inner], sources, ctx)
    if rest.type != x.type:
        return None
    return factor * rd.sum_(rest, axis=node.attr("axis"), keepdims=node.attr("keepdims"))


def _power_product(bases, start):
    out = start
    for base, e, sym in bases:
        exponent = e
        for sign, s in sym:
            exponent = exponent + s if sign > 0 else exponent - s
        one = isinstance(exponent, (int, float)) and exponent == 1
        f = base if one else ew.power(base, exponent)
        out = f if out is None else out * f
    return out


FOLD = [
    (P(None), fold_constants),
]

CANONICAL = [
    (P("mul"), distribute_to_cancel),
    (P(canonical.SUM_OPS), canonical_sum),
    (P(("mul", "true_div", "reciprocal", "pow")), canonical_product),
]

IDENTITIES = [
    (P(None, X, C(name="e")), neutral_element),
    (P(None, C(name="e"), X), neutral_element_left),
    (P(None, X, C(name="a")), absorbing_element),
    (P(None, C(name="a"), X), absorbing_element_left),
    (P(None, P(None, X, name="inner")), unary_of_unary),
    (P(None, X, X), same_operands),
]

STRUCTURE = [
    (P("dimshuffle", P("dimshuffle", X, name="inner")), dimshuffle_of_dimshuffle),
    (P("dimshuffle", X), dimshuffle_noop),
    (P("reshape", P("reshape", name="inner")), reshape_of_reshape),
    (P("reshape"), reshape_noop),
    (P("cast", X), cast_noop),
    (P("cast", P("cast", X, name="inner")), cast_of_cast),
    (P("shape_i", X), static_shape),
    (P("second", X, Y), second_noop),
    (P("sum_to", X, Y), sum_to_noop),
    (P("where", Z, X, X), where_same),
    (P(None), sink_second),
]

REDUCTIONS = [
    (P(("sum", "prod", "max", "min"), X), reduce_trivial),
    (P("sum", P("sum", X, name="inner")), sum_of_sum),
    (P("sum", P("second", X, Y)), sum_of_broadcast),
    (P("sum", X), sum_of_scaled),
]

ALGEBRA = FOLD + CANONICAL + IDENTITIES + STRUCTURE + REDUCTIONS

# ops whose rules look at use counts (collectors flatten single-use operands
# only, and a few rules fire only where the node they replace dies)
CONTEXT_OPS = frozenset(canonical.SUM_OPS + canonical.PRODUCT_OPS + ("pow", "sum", "shape_i"))


def reads_context(node):
    """Whether a rule may decide differently at `node` depending on the graph
    around it (so the driver may not remember it as a fixed point)."""
    if node.op.name in CONTEXT_OPS:
        return True
    for i in node.inputs:
        if i.op is ew.second:
            return True
    return False
