"""Theano's `theano.printing`: `pp` (kg.pprint), `debugprint` and `pydotprint`.

debugprint draws Theano's indented tree, one node a line:

    add [id A] ''
     |exp [id B] 'e'
     | |x [id C]
     |x [id C]

An op node shows kgen's op name with its attributes in braces (Theano would
write `Elemwise{mul,no_inplace}`), an `[id X]` tag, its name in quotes, and
with print_type=True its type. A node met again shows only its first line. A
compiled function prints its compiled (simplified) outputs, then its updates,
each op node followed by its position in the topological order, as Theano's
does. The walk is iterative, so deep graphs print without recursion.
"""
import sys

from .expr.graph import toposort
from .expr.node import Variable
from .expr.printing import leaf_text, pprint

pp = pprint


def debugprint(obj, depth=-1, print_type=False, file=None, ids="CHAR", stop_on_name=False,
               done=None, print_storage=False, print_clients=False, used_ids=None):
    """Theano's tree view of a variable, a list of them, or a compiled function.

    Returns the text when `file='str'`; otherwise prints it to `file` (default
    sys.stdout) and returns that file, as Theano does.
    """
    roots, order = _roots(obj)
    if ids not in ("CHAR", "int", "id", ""):
        raise ValueError(f"debugprint: ids must be 'CHAR', 'int', 'id' or '', got {ids!r}")
    tags = {} if used_ids is None else used_ids
    lines = []
    seen = set() if done is None else done
    for root in roots:
        _tree(root, depth, print_type, ids, tags, seen, order, stop_on_name, lines)
    text = "\n".join(lines) + "\n"
    if file == "str":
        return text
    out = sys.stdout if file is None else file
    out.write(text)
    return out


def pydotprint(*args, **kwargs):
    """Theano's graph picture: needs pydot and graphviz, which kgen does not use."""
    raise RuntimeError("pydotprint is not available in kgen (it needs pydot and graphviz); "
                       "use kgen.printing.debugprint(...) or kg.pprint(...) for text")


def _roots(obj):
    """(expressions to print, {node: topological position} or None)."""
    if isinstance(obj, Variable):
        return [obj], None
    if isinstance(obj, (list, tuple)):
        roots = []
        for item in obj:
            if not isinstance(item, Variable):
                raise TypeError(f"debugprint: expected kgen variables, got {item!r}")
            roots.append(item)
        return roots, None
    kernel = getattr(obj, "kernel", None)
    if kernel is not None and hasattr(kernel, "graphs"):  # a compiled function
        outs, upds = kernel.graphs(getattr(obj, "_optimize", True))
        roots = outs + upds
        position = {}
        for node in toposort(roots):
            if node.op is not None:
                position[id(node)] = len(position)
        return roots, position
    if hasattr(obj, "graphs"):  # a kg.Kernel declaration
        outs, upds = obj.graphs(False)
        return outs + upds, None
    raise TypeError(f"debugprint: cannot print a {type(obj).__name__}; give a kgen variable, "
                    f"a list of them or a compiled function")


def _tag(node, ids, tags):
    if ids == "":
        return ""
    key = id(node)
    if key not in tags:
        tags[key] = _letters(len(tags)) if ids == "CHAR" else \
            str(len(tags)) if ids == "int" else str(key)
    return f" [id {tags[key]}]"


def _letters(n):
    """0 -> A, 25 -> Z, 26 -> BA: Theano's base-26 ids."""
    text = ""
    while True:
        text = chr(ord("A") + n % 26) + text
        n //= 26
        if n == 0:
            return text


def _label(node):
    if node.op is None:
        return leaf_text(node)
    attrs = ",".join(f"{k}={v!r}" for k, v in node.attrs)
    return node.op.name + (f"{{{attrs}}}" if attrs else "")


def _tree(root, depth, print_type, ids, tags, seen, order, stop_on_name, lines):
    # Theano's layout: a child's line starts with its parent's continuation plus
    # " |"; under the last child the bar is not continued
    stack = [(root, "", "", 0)]
    while stack:
        node, prefix, below, level = stack.pop()
        line = prefix + _label(node) + _tag(node, ids, tags)
        if print_type:
            line += f" <{node.type}>"
        if node.op is not None:
            line += f" '{node.name or ''}'"
            if order is not None:
                line += f"   {order[id(node)]}"
        lines.append(line)
        expand = node.op is not None and id(node) not in seen and (depth < 0 or level < depth)
        if stop_on_name and node.name and level > 0:
            expand = False
        if not expand:
            continue
        seen.add(id(node))
        last = len(node.inputs) - 1
        for k in range(last, -1, -1):
            stack.append((node.inputs[k], below + " |", below + ("  " if k == last else " |"),
                          level + 1))
