"""Which nodes get storage, and which are fused into their consumer's loop.

Walks consumers before producers. An elementwise node is fused (computed as a
local inside its consumers' loop) when every consumer is in the same loop and
none of them broadcasts it to a provably larger shape (recomputing it per
output element would cost more than one pass). Everything else - reductions,
GEMMs, gathers, outputs, values that several loops read - is materialized.
"""
from ..expr.ops.elementwise import Elementwise
from ..expr.ops.reduce import Reduce

VIEW_OPS = ("dimshuffle", "subtensor", "reshape", "split_part")


def is_elementwise(node):
    return node.op is not None and isinstance(node.op, Elementwise)


def is_reduction(node):
    return node.op is not None and isinstance(node.op, Reduce)


def _broadcasts(node, consumer):
    """True when `consumer` provably repeats `node` over more elements."""
    if node.ndim < consumer.ndim:
        return True
    tail = consumer.type.shape[consumer.ndim - node.ndim:]
    return any(a == 1 and b is not None and b != 1 for a, b in zip(node.type.shape, tail))


def plan_fusion(order, roots):
    """Map id(node) -> id(loop root) for fused nodes; roots map to themselves.

    `roots` are nodes that must be materialized (outputs, update values).
    """
    users = {}
    for n in order:
        for i in n.inputs:
            users.setdefault(id(i), []).append(n)
    loop_of = {}
    for node in reversed(order):
        if node.op is None:
            continue
        if not (is_elementwise(node) or is_reduction(node)):
            continue
        if is_reduction(node) or id(node) in roots:
            loop_of[id(node)] = id(node)
            continue
        cons = users.get(id(node), [])
        targets = set()
        for c in cons:
            if is_elementwise(c) and id(c) in loop_of and not _broadcasts(node, c):
                targets.add(loop_of[id(c)])
            elif is_reduction(c) and id(c) in loop_of:
                targets.add(loop_of[id(c)])
            else:
                targets.add(None)
        if len(targets) == 1 and None not in targets:
            loop_of[id(node)] = targets.pop()
        else:
            loop_of[id(node)] = id(node)
    return loop_of, users
