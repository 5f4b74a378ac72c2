"""kg.pprint: readable infix text of a graph.

Nodes used more than once are printed once as a temporary (`t1 = ...`), so
gradient graphs with heavy reuse stay linear in size. Text is assembled from
per-node fragments and flattened with an explicit stack: no recursion, no
quadratic string copying on deep chains.
"""
import string

import numpy as np

from .graph import consumers, toposort
from .node import Constant, Shared

_formatter = string.Formatter()
# `**` groups to the right, and `a < b < c` is a chained comparison in Python
_NON_LEFT_ASSOCIATIVE = ("pow", "lt", "le", "gt", "ge")


def leaf_text(node):
    if isinstance(node, Constant):
        v = node.value
        if v.ndim == 0:
            item = v.item()
            return repr(item) if node.weak or v.dtype.name in ("float64", "int64", "bool") \
                else f"{v.dtype.name}({item!r})"
        body = np.array2string(v, threshold=6, separator=", ")
        return f"array({body})"
    if node.name:
        return node.name
    kind = "shared" if isinstance(node, Shared) else "input"
    return f"<{kind} {node.type}>"


def _call_format(node):
    args = ", ".join("{%d}" % i for i in range(len(node.inputs)))
    attrs = _escape(", ".join(f"{k}={v!r}" for k, v in node.attrs))
    return node.op.name + "(" + args + (", " if args and attrs else "") + attrs + ")"


def index_format(node):
    """`{0}[1:3, ::-1, None]` for subtensor, `{0}[{1}, {2}]` for gather."""
    if node.op.name == "gather":
        return "{0}[" + ", ".join("{%d}" % i for i in range(1, len(node.inputs))) + "]"
    items, syms = [], iter(range(1, len(node.inputs)))

    def part(p):  # a symbolic bound is the next input, inlined by the printer
        return "" if p is None else "{%d}" % next(syms) if p == "$" else str(p)

    for entry in node.attr("index"):
        if entry[0] == "n":
            items.append("None")
        elif entry[0] == "i":
            items.append(part(entry[1]))
        else:
            start, stop, step = (part(p) for p in entry[1:])
            items.append(f"{start}:{stop}" + ("" if step == "1" else f":{step}"))
    return "{0}[" + (", ".join(items) or "()") + "]"


def _escape(text):
    return text.replace("{", "{{").replace("}", "}}")


def _fragments(node, named):
    """The node's text as a list of strings and child nodes (inlined later)."""
    op = node.op
    fmt = op.pretty(node) if callable(op.pretty) else op.pretty or _call_format(node)
    parts = []
    for literal, field, _, _ in _formatter.parse(fmt):
        if literal:
            parts.append(literal)
        if field is None:
            continue
        pos = int(field)
        child = node.inputs[pos]
        wrap = False
        infix = op.pretty and op.precedence < 100
        if infix and child.op is not None and id(child) not in named and child.op.pretty:
            cp, pp = child.op.precedence, op.precedence
            # left operands of left-associative ops need no parens at equal precedence
            wrap = cp < pp or (cp == pp and (pos > 0 or op.name in _NON_LEFT_ASSOCIATIVE))
        elif infix and op.name == "pow" and pos == 0 and isinstance(child, Constant) \
                and leaf_text(child).startswith("-"):
            wrap = True  # (-2) ** x, not -(2 ** x)
        if wrap:
            parts.extend(["(", child, ")"])
        else:
            parts.append(child)
    return parts


def _flatten(root_parts, fragments, named):
    out, stack = [], list(reversed(root_parts))
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif id(item) in named:
            out.append(named[id(item)])
        elif item.op is None:
            out.append(leaf_text(item))
        else:
            stack.extend(reversed(fragments[id(item)]))
    return "".join(out)


def pprint(exprs):
    """Readable infix text of one expression or a list of them."""
    single = not isinstance(exprs, (list, tuple))
    outputs = [exprs] if single else list(exprs)
    order = toposort(outputs)
    uses = consumers(order)
    named = {}
    for node in order:
        if node.op is not None and uses.get(id(node), 0) > 1:
            named[id(node)] = f"t{len(named) + 1}"
    fragments = {id(n): _fragments(n, named) for n in order if n.op is not None}
    lines = []
    for node in order:
        if id(node) in named:
            lines.append(f"{named[id(node)]} = {_flatten(fragments[id(node)], fragments, named)}")
    for node in outputs:
        if node.op is None:
            text = leaf_text(node)
        elif id(node) in named:
            text = named[id(node)]
        else:
            text = _flatten(fragments[id(node)], fragments, named)
        lines.append(text)
    return "\n".join(lines)


def short_repr(node):
    if node.op is None:
        return leaf_text(node) if node.name or isinstance(node, Constant) \
            else f"<{type(node).__name__} {node.type}>"
    label = f" {node.name!r}" if node.name else ""
    return f"<kgen {node.op.name}{label} {node.type}>"
