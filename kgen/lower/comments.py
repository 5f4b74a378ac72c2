"""Comments for generated code: expressions printed on one line, bounded so
that commenting a large graph never costs more than the graph itself."""
from ..expr.graph import memo_postorder
from ..expr.printing import _fragments, leaf_text, pprint


def _one_line(expr, limit=300):
    """The expression in infix, as kg.pprint writes it, on one line of at most
    `limit` characters: a long one is folded, its deepest parts shown as
    `...`. Large graphs cost no more than the text shown."""
    if _graph_at_most(expr, 80):
        text = pprint(expr)
        if "\n" not in text and len(text) <= limit:
            return text.replace("*/", "* /")
    return folded(expr, limit).replace("*/", "* /")


def folded(expr, limit):
    """Infix text of `expr` to the greatest depth that fits in `limit`
    characters (shared subexpressions written out where they are used)."""
    if expr.op is None:
        return pprint(expr)
    fragments, best = {}, None
    for depth in range(1, 64):
        text, complete = _infix_to_depth(expr, depth, limit, fragments)
        if text is None:
            break
        best = text
        if complete:
            break
    return best if best is not None else f"{expr.op.name}(...)"


def _infix_to_depth(root, depth, limit, fragments):
    """(text, whether nothing was folded), or (None, False) past `limit`."""
    out, size, complete = [], 0, True
    stack = [(root, 0)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, str):
            piece = item
        elif item.op is None:
            piece = leaf_text(item)
        elif d >= depth:
            piece, complete = "...", False
        else:
            if id(item) not in fragments:
                fragments[id(item)] = _fragments(item, {})
            stack.extend((part, d + 1) for part in reversed(fragments[id(item)]))
            continue
        out.append(piece)
        size += len(piece)
        if size > limit:
            return None, False
    return "".join(out), complete


def _graph_at_most(expr, limit):
    """Whether `expr` has at most `limit` op nodes (stops counting early)."""
    seen, stack = set(), [expr]
    while stack:
        n = stack.pop()
        if n.op is None or id(n) in seen:
            continue
        seen.add(id(n))
        if len(seen) > limit:
            return False
        stack.extend(n.inputs)
    return True


class SmallGraphs:
    """Whether each node's graph has at most `limit` op nodes, for many nodes
    of one graph: a node's answer comes from its inputs' (the set of op
    nodes below it while that is small, None once it is not), so a long
    chain costs a step per node, not a walk of `limit` nodes each time."""

    def __init__(self, limit):
        self.limit, self.below = limit, {}  # id -> (node, frozenset of ids or None)

    def __call__(self, expr):
        below, limit = self.below, self.limit

        def visit(n):
            ids = {id(n)}
            for i in n.inputs:
                if i.op is None:
                    continue
                sub = below[id(i)][1]
                if sub is None:
                    ids = None
                    break
                ids |= sub
                if len(ids) > limit:
                    ids = None
                    break
            below[id(n)] = (n, None if ids is None else frozenset(ids))
        memo_postorder(expr, below, _op_inputs, visit)
        return below[id(expr)][1] is not None


def _op_inputs(n):
    return [i for i in n.inputs if i.op is not None]
