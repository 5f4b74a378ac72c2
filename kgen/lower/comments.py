"""Comments for generated code: expressions printed on one line, bounded so
that commenting a large graph never costs more than the graph itself."""
from ..expr.printing import pprint


def _one_line(expr, limit=300):
    """pprint of an expression on one line, shortened for comments. Large
    graphs show their top two levels only: comments must stay cheap."""
    if not _graph_at_most(expr, 80):
        return _outline(expr)
    text = pprint(expr)
    if "\n" in text:  # shared subexpressions print as `t1 = ...` lines: too long here
        return _outline(expr)
    text = text.replace("*/", "* /")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _outline(expr):
    """`op(op(...), name)`: the top of a large expression."""
    def name(n):
        if n.op is None:
            return pprint(n)
        return f"{n.op.name}(...)"
    if expr.op is None:
        return pprint(expr)
    return f"{expr.op.name}({', '.join(name(i) for i in expr.inputs)})"


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
