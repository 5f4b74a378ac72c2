"""Graph walks: iterative (no recursion, so 100,000-deep chains are fine)."""
from ..errors import KgenError
from .node import Apply, Constant, Input, Shared, Variable
from .types import TensorType


class collector_paused:
    """Python's cyclic garbage collector off for a graph-sized piece of work.

    Building, simplifying and lowering a large graph allocates hundreds of
    thousands of nodes that all stay alive: each collection walks them all
    and frees nothing, and with the default thresholds that made building a
    10,000-op chain superlinear. The collector's previous state comes back
    on exit (nested uses keep it off until the outermost one ends)."""

    def __enter__(self):
        import gc
        self.was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc):
        if self.was_enabled:
            import gc
            gc.enable()


def toposort(outputs):
    """Every node reachable from `outputs`, inputs before their users."""
    order, seen = [], set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for child in reversed(node.inputs):
                if id(child) not in seen:
                    stack.append((child, False))
    return order


def memo_postorder(root, done, deps, visit):
    """visit(n) for `root` and each node below it through deps(n) whose id is
    not yet in `done`, inputs first; visit records n in `done`. Iterative, so
    deep chains need no recursion, and each node is visited once per table
    (the memo walks behind structural keys, shape classes, comment sizes)."""
    stack = [root]
    while stack:
        n = stack[-1]
        if id(n) in done:
            stack.pop()
            continue
        todo = [i for i in deps(n) if id(i) not in done]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        visit(n)


def graph_size(exprs):
    """Number of op (Apply) nodes in the graph of one expression or a list."""
    exprs = list(exprs) if isinstance(exprs, (list, tuple)) else [exprs]
    return sum(1 for n in toposort(exprs) if n.op is not None)


def graph_inputs(exprs):
    """The leaves (inputs, shared variables, constants) in topological order."""
    return [n for n in toposort(exprs) if n.op is None]


def consumers(order):
    """id(node) -> number of users within `order`."""
    uses = {}
    for n in order:
        for i in n.inputs:
            uses[id(i)] = uses.get(id(i), 0) + 1
    return uses


class GraphError(KgenError):
    pass


def check_graph(exprs):
    """The IR checker: each Apply node's stored type is what its op infers now,
    inputs are variables, and leaves are of a known kind. Raises GraphError."""
    exprs = list(exprs) if isinstance(exprs, (list, tuple)) else [exprs]
    for node in toposort(exprs):
        if not isinstance(node.type, TensorType):
            raise GraphError(f"{node!r}: type is {node.type!r}")
        if node.op is None:
            if not isinstance(node, (Input, Shared, Constant)):
                raise GraphError(f"leaf of unknown kind {type(node).__name__}")
            if isinstance(node, Constant) and node.value.shape != node.type.shape:
                raise GraphError("constant shape differs from its type")
            continue
        if not isinstance(node, Apply):
            raise GraphError(f"{node!r} has an op but is not an Apply node")
        if not all(isinstance(i, Variable) for i in node.inputs):
            raise GraphError(f"{node.op.name}: inputs must be variables")
        expected = node.op.infer(list(node.inputs), dict(node.attrs))
        if expected != node.type:
            raise GraphError(f"{node.op.name}: stored type {node.type} but the op infers {expected}")
    return True


def value_reads(node):
    """The inputs whose values `node` reads (second() only borrows a shape;
    an ifelse part reads its condition and its own pair: a method)."""
    reads = getattr(node.op, "reads", None)
    if callable(reads):
        reads = reads(node)
    return [i for k, i in enumerate(node.inputs) if reads is None or k in reads]


def values_read(exprs):
    """ids of the nodes whose values computing `exprs` reads (an operand
    that only lends its shape, as subtensor_grad's x, is not read: op.reads)."""
    seen, todo = set(), list(exprs)
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.op is not None:
            todo += value_reads(n)
    return seen
