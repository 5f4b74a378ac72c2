"""Canonical sums and products: flatten, collect, fold, order, rebuild.

A sum (add, sub, neg) is read as `constant + Σ coefficient·term`, a product
(mul, true_div, reciprocal, pow, neg) as `coefficient · Π base**exponent`.
Like terms and like bases are collected (`x + x -> 2*x`, `x*x -> x**2`,
`x**a * x**b -> x**(a+b)`), constants folded in the node's dtype, and the
result rebuilt in one order that depends only on structure (terms sorted by
their structural key), so equal expressions meet as the same node:

    sum:      t1 + t2 + ... + c - t3 - ...    (c < 0 comes last, x - y - 1,
                                               or first if no term is positive, -1 - x)
    product:  c * ((b1 * b2 * ...) / (b3 * ...))    -1 shows as neg(...)

`second(a, b)` (b broadcast to a's shape) reads as b with a as a *shape
source*: its value drops out but its shape is kept, with one `second` at the
top, only where the remaining operands do not already have that shape. The
same keeps `x - x` shaped like x: `second(x, 0)`.

What is not rewritten, to keep results exact:
  - sums/products over bool, and any with operands of another dtype than the
    node (promotion inside the chain would change where rounding or integer
    wrap-around happens); constants that convert exactly are fine;
  - integer division, negative or symbolic exponents of integers;
  - a shared subexpression is a single term, not flattened into each user;
  - `x - stop_gradient(max)` stays a group (it is a shift for accuracy).
"""
import math

import numpy as np

from ..expr.node import Constant, constant, interned, make_apply
from ..expr.ops import elementwise as ew
from ..expr.types import TensorType, broadcast_shapes
from .pattern import is_constant_value

ARITH = ("int32", "int64", "float32", "float64")
SUM_OPS = ("add", "sub", "neg")
PRODUCT_OPS = ("mul", "true_div", "reciprocal")


def collected_ops(parent, child):
    """True when `parent`'s collector folds `child` into itself, so `child` need
    not be collected on its own (the driver defers it to its root)."""
    if parent.dtype != child.dtype or parent.dtype not in ARITH:
        return False
    p, c = parent.op.name, child.op.name
    if p in SUM_OPS:
        return c in SUM_OPS
    if p in PRODUCT_OPS:
        return c in PRODUCT_OPS and (c != "reciprocal" or parent.dtype[0] == "f")
    return False


class NotCanonical(Exception):
    """An operand makes the rewrite inexact (another dtype...): leave the node."""


def build(op, *inputs):
    """op(*inputs) for the arithmetic ops collectors emit, typed directly: every
    operand has the result's dtype or is a weak scalar that adopts it, so the
    type is that dtype and the broadcast shape (op's own type rule, which is
    general and slower, runs where that does not hold)."""
    known = interned((op.name, tuple(map(id, inputs)), ()))
    if known is not None:  # hash-consing: the node exists, no need to type it
        return known
    if op is ew.second:
        shape = broadcast_shapes("second", inputs[0].type.shape, inputs[1].type.shape)
        return make_apply(op, inputs, (), TensorType(inputs[1].dtype, shape))
    dtype, weak_float = None, False
    for i in inputs:
        if isinstance(i, Constant) and i.weak:
            weak_float = weak_float or i.dtype == "float64"
        elif dtype is None:
            dtype = i.dtype
        elif i.dtype != dtype:
            return op(*inputs)
    if dtype is None or dtype not in ARITH or (op is ew.true_div and dtype[0] != "f") or (
            weak_float and dtype[0] != "f"):
        return op(*inputs)
    shape = broadcast_shapes(op.name, *(i.type.shape for i in inputs))
    return make_apply(op, inputs, (), TensorType(dtype, shape))


ONE = {d: np.ones((), d) for d in ARITH}
for _one in ONE.values():
    _one.flags.writeable = False


# ---- constants in the node's dtype -------------------------------------------
def const_value(c, dtype):
    """A constant's value as a NumPy array of `dtype`, if that is exact."""
    if c.weak:
        return np.asarray(c.value.item(), dtype=dtype)
    if c.dtype != dtype and not np.can_cast(c.dtype, dtype, "safe"):
        raise NotCanonical
    return np.asarray(c.value, dtype=dtype)


def scalar(value, dtype):
    """A 0-d constant of `dtype`, as a weak Python scalar where NEP 50 keeps the
    other operand's dtype (every use below has an operand of `dtype`)."""
    v = np.asarray(value, dtype=dtype).item()
    key = (dtype, v, math.copysign(1.0, v) if isinstance(v, float) else 0)
    c = _SCALARS.get(key)
    if c is None:
        c = constant(v) if dtype in ARITH else constant(np.asarray(value, dtype))
        if v == v and len(_SCALARS) < 4096:  # NaN is never found again
            _SCALARS[key] = c
    return c


_SCALARS = {}  # the few scalar constants collectors build, by value


def typed(value, dtype):
    """A constant of exactly `dtype` (for results that stand alone)."""
    return constant(np.asarray(value, dtype=dtype))


def shaped(value, node, sources, ctx):
    """`value` (a constant) broadcast to the shape of `sources`, typed as node."""
    out = typed(value, node.dtype) if not isinstance(value, Constant) else value
    return with_sources(out, [], sources, ctx)


def with_sources(result, atoms, sources, ctx):
    """Broadcast `result` against each shape source its `atoms` do not cover."""
    if not sources:
        return result
    seen = set()
    for s in sorted(sources, key=ctx.key):
        c = ctx.shape_class(s)
        if c in seen:
            continue
        seen.add(c)
        shapes = atoms + [result]
        if not ctx.covers(shapes, s):
            result = build(ew.second, s, result)
    return result


def is_negative(v):
    return v.ndim == 0 and bool(v < 0)


# ---- sums --------------------------------------------------------------------
def collect_sum(node, ctx):
    """node (an add/sub/neg) in canonical form, or None if it already is one."""
    return _collect(node, ctx, sum_parts, _build_sum)


def collect_product(node, ctx):
    """node (a mul/true_div/reciprocal/pow/neg product) in canonical form, or None."""
    return _collect(node, ctx, product_parts, _build_product)


def _collect(node, ctx, parts_of, build_from):
    # (the driver remembers a None with the answers to ctx's questions that
    # led to it: the same answers, later, skip the collector)
    if node.dtype not in ARITH or ctx.is_canonical(node) or ctx.is_deferred(node):
        return None
    try:
        out = build_from(node, *parts_of(node, ctx), ctx)
    except NotCanonical:
        return None
    return None if out is node else out


def sum_parts(node, ctx):
    dtype = node.dtype
    const, terms, sources = None, {}, []
    stack = [(node, 1)]
    while stack:
        x, sign = stack.pop()
        name = x.op.name if x.op is not None else None
        if name in SUM_OPS and x.dtype == dtype and (x is node or (
                ctx.single_use(x) and not shifted(x))):
            if name == "neg":
                stack.append((x.inputs[0], -sign))
            else:
                stack.append((x.inputs[1], -sign if name == "sub" else sign))
                stack.append((x.inputs[0], sign))
            continue
        if isinstance(x, Constant):
            v = const_value(x, dtype) * sign if sign < 0 else const_value(x, dtype)
            const = v if const is None else const + v
            continue
        coeff, term = split_coefficient(x, ctx, sources, node.ndim)
        if isinstance(term, Constant):  # second(a, c): a constant with a shape
            v = const_value(term, dtype) * coeff * sign
            const = v if const is None else const + v
            continue
        if term.dtype != dtype:
            raise NotCanonical
        entry = terms.get(id(term))
        c = coeff * sign
        if entry is None:
            terms[id(term)] = [term, c]
        else:
            entry[1] = entry[1] + c
    return const, terms, sources


def leading_axes_only(x, ndim):
    """x is dimshuffle(v, ('x', 'x', 0, 1...)): new leading axes, which
    broadcasting against an ndim-d result adds anyway."""
    pattern = x.attr("pattern")
    k = len(pattern) - x.inputs[0].ndim
    return k >= 0 and ndim >= len(pattern) and \
        pattern == ("x",) * k + tuple(range(len(pattern) - k))


def shifted(x):
    """x - stop_gradient(m): a deliberate shift (softmax, logsumexp) that is
    kept as a group, since it is what keeps the sum around it accurate."""
    return any(i.op is ew.stop_gradient for i in x.inputs)


def split_coefficient(x, ctx, sources, ndim):
    """x as (scalar coefficient, term): `2*t -> (2, t)`, `-t -> (-1, t)`,
    `second(a, t) -> (1, t)` with a recorded as a shape source, and
    `t[None, :] -> (1, t)` in a sum of ndim >= 2."""
    dtype = x.dtype
    coeff = ONE[dtype] if dtype in ARITH else 1
    while x.op is not None:
        name = x.op.name
        if name == "neg" and x.dtype == dtype and ctx.single_use(x):
            coeff, x = -coeff, x.inputs[0]
        elif (name == "mul" and x.dtype == dtype and isinstance(x.inputs[0], Constant)
              and x.inputs[0].ndim == 0 and x.inputs[1].dtype == dtype):
            coeff, x = coeff * const_value(x.inputs[0], dtype), x.inputs[1]
        elif (name == "true_div" and x.dtype == dtype and isinstance(x.inputs[0], Constant)
              and x.inputs[0].ndim == 0 and not is_constant_value(x.inputs[0], 1)):
            # c / t reads as c * (1 / t), so 2/t + 3/t collect
            coeff = coeff * const_value(x.inputs[0], dtype)
            x = build(ew.true_div, scalar(1, dtype), x.inputs[1])
        elif name == "dimshuffle" and leading_axes_only(x, ndim):
            x = x.inputs[0]
        elif name == "second" and x.dtype == dtype and (
                isinstance(x.inputs[1], Constant) or ctx.single_use(x)):
            sources.append(x.inputs[0])
            x = x.inputs[1]
        else:
            break
    return coeff, x


def _build_sum(node, const, terms, sources, ctx):
    dtype = node.dtype
    items = list(terms.values())
    if len(items) > 1:
        items.sort(key=lambda e: ctx.key(e[0]))
    plus, minus = [], []
    for term, c in items:
        if c == 0:
            sources.append(term)
        elif is_negative(c):
            minus.append((term, -c))
        else:
            plus.append((term, c))
    atoms = [t for t, _ in plus + minus]
    if const is not None and not np.any(const):
        # adding zero: drop it, unless it is an array that gives the result its shape
        if const.ndim == 0 or (atoms and ctx.covers(atoms, typed(const, dtype))):
            const = None
    if not atoms:
        return shaped(np.zeros((), dtype) if const is None else const, node, sources, ctx)

    def term_of(t, c):
        """c * t as the product collector writes it (c / x, not c * (1 / x))."""
        if c == 1:
            return t
        if t.op is ew.true_div and is_constant_value(t.inputs[0], 1):
            return build(ew.true_div, scalar(c, dtype), t.inputs[1])
        return build(ew.mul, scalar(c, dtype), t)

    spine, out = [], None
    for t, c in plus:
        out = term_of(t, c) if out is None else _made(spine, build(ew.add, out, term_of(t, c)))
    # a negative constant goes last (x - 1), unless nothing positive precedes
    # it: then it leads (-1 - x, one node, not -x - 1)
    const_neg = const is not None and is_negative(const) and out is not None
    if const is not None and not const_neg:
        k = scalar(const, dtype) if const.ndim == 0 else typed(const, dtype)
        out = k if out is None else _made(spine, build(ew.add, out, k))
    for t, c in minus:
        if out is None:
            out = build(ew.neg, t) if c == 1 else term_of(t, -c)
        else:
            out = _made(spine, build(ew.sub, out, term_of(t, c)))
    if const_neg:
        out = _made(spine, build(ew.sub, out, scalar(-const, dtype)))
    out = with_sources(out, atoms, sources, ctx)
    if out.type != node.type:
        return None
    ctx.mark_canonical(spine)
    return out


def _made(spine, node):
    spine.append(node)
    return node


# ---- products ------------------------------------------------------------------
_FLATTENED = ("mul", "true_div", "reciprocal", "neg")  # a product's own operations
_INT_FLATTENED = ("mul", "neg")                        # those exact on integers too


def product_parts(node, ctx):
    dtype = node.dtype
    is_float = dtype[0] == "f"
    coeff = ONE[dtype]          # scalar constants, multiplied
    arrays = []                         # (array constant, exponent sign)
    bases, sources = {}, []
    stack = [(node, 1)]
    while stack:
        x, sign = stack.pop()
        if isinstance(x, Constant):
            v = const_value(x, dtype)
            if v.ndim:
                arrays.append((v, sign))
            elif sign > 0:
                coeff = coeff * v
            else:
                arrays.append((v, sign))
            continue
        if x.dtype != dtype:
            raise NotCanonical
        name = x.op.name if x.op is not None else None
        # flattened where it is node's own or a single-use operand (asked
        # only where the answer matters: each answer is recorded)
        if name in _FLATTENED and (is_float or name in _INT_FLATTENED) and (
                x is node or ctx.single_use(x)):
            if name == "mul":
                stack.append((x.inputs[1], sign))
                stack.append((x.inputs[0], sign))
            elif name == "true_div":
                stack.append((x.inputs[1], -sign))
                stack.append((x.inputs[0], sign))
            elif name == "reciprocal":
                stack.append((x.inputs[0], -sign))
            else:  # neg
                coeff = -coeff
                stack.append((x.inputs[0], sign))
            continue
        if name == "second" and (isinstance(x.inputs[1], Constant) or x is node
                                 or ctx.single_use(x)):
            sources.append(x.inputs[0])
            stack.append((x.inputs[1], sign))
            continue
        if name == "dimshuffle" and leading_axes_only(x, node.ndim):
            stack.append((x.inputs[0], sign))
            continue
        base, exponent = x, 1
        if name == "pow" and x.inputs[0].dtype == dtype:
            e = x.inputs[1]
            if isinstance(e, Constant) and e.ndim == 0 and (e.weak or e.dtype == dtype):
                ev = e.value.item()
                if is_float or (isinstance(ev, int) and ev >= 0):
                    base, exponent = x.inputs[0], ev
            elif is_float and e.dtype == dtype and ctx.covers([x.inputs[0]], e):
                base, exponent = x.inputs[0], e
        if sign < 0 and not is_float:
            raise NotCanonical
        entry = bases.get(id(base))
        if entry is None:
            entry = bases[id(base)] = [base, 0, []]
        if isinstance(exponent, (int, float)):
            entry[1] += sign * exponent
        else:
            entry[2].append((sign, exponent))
    return coeff, arrays, bases, sources


def _build_product(node, coeff, arrays, bases, sources, ctx):
    dtype = node.dtype
    is_float = dtype[0] == "f"
    # scalar denominators divide the coefficient; array constants fold into one
    den = ONE[dtype]
    array = None
    for v, sign in arrays:
        if v.ndim == 0:
            den = den * v
        elif sign > 0:
            array = v if array is None else array * v
        else:
            one = ONE[dtype]
            array = one / v if array is None else array / v
    if den != 1 and (coeff != 1 or array is not None) and den != 0:
        coeff, den = coeff / den, ONE[dtype]
    if array is not None:
        array, coeff = array * coeff, ONE[dtype]
    num, dens, atoms = [], [], []
    items = list(bases.values())
    if len(items) > 1:
        items.sort(key=lambda b: ctx.key(b[0]))
    for base, e, sym in items:
        if sym:
            exponent = _exponent_sum(e, sym, dtype)
            num.append(build(ew.power, base, exponent))
            atoms.append(base)
        elif e == 0:
            sources.append(base)
        elif e > 0:
            num.append(base if e == 1 else build(ew.power, base, _number(e, dtype)))
            atoms.append(base)
        else:
            dens.append(base if e == -1 else build(ew.power, base, _number(-e, dtype)))
            atoms.append(base)
    if coeff == 0 and array is None:   # x * 0 -> 0, whatever x holds (see IEEE notes)
        return shaped(np.zeros((), dtype), node, sources + atoms, ctx)
    if den != 1:
        dens.append(scalar(den, dtype))
    negative = is_negative(coeff)
    if negative:
        coeff = -coeff
    spine = []
    core = _chain_of(num, spine)
    if dens:
        bottom = _chain_of(dens, spine)
        if core is None and array is None:  # c / x: the coefficient is the numerator
            top, coeff, negative = scalar(-coeff if negative else coeff, dtype), 1, False
        else:
            top = scalar(1, dtype) if core is None else core
        core = _made(spine, build(ew.true_div, top, bottom))
    if array is not None:
        k = typed(array, dtype)
        out = k if core is None else build(ew.mul, k, core)
    elif core is None:
        out = typed(-coeff if negative else coeff, dtype)
        return shaped(out, node, sources, ctx)
    elif coeff != 1:
        out = build(ew.mul, scalar(-coeff if negative else coeff, dtype), core)
    else:
        out = build(ew.neg, core) if negative else core
    out = with_sources(out, atoms, sources, ctx)
    if out.type != node.type:
        return None
    ctx.mark_canonical(spine)
    return out


def _chain_of(items, spine):
    out = None
    for x in items:
        out = x if out is None else _made(spine, build(ew.mul, out, x))
    return out


def _number(e, dtype):
    """An exponent as a weak Python scalar: 2 prints as `x ** 2`."""
    return scalar(e, "int64" if float(e).is_integer() else "float64")


def _exponent_sum(e, sym, dtype):
    out = None
    for sign, x in sym:
        out = (x if sign > 0 else build(ew.neg, x)) if out is None else (
            build(ew.add, out, x) if sign > 0 else build(ew.sub, out, x))
    return out if e == 0 else build(ew.add, out, _number(e, dtype))
