"""The NumPy reference evaluator: `expr.eval()` and the oracle for every backend."""
import numpy as np

from ..errors import KgenError, KgenTypeError, ShapeError
from .arguments import coerce_argument
from .graph import consumers, toposort
from .node import Constant, Input, Shared


def evaluate(outputs, values):
    """Evaluate `outputs` given `values` ({Input: array}); unused entries are ignored.

    On demand, from the outputs down, so a lazy op (ifelse: `op.taken`) has
    only the input it takes computed, after its condition. Each value is
    dropped once every use of it has been evaluated."""
    uses = consumers(toposort(outputs))
    for o in outputs:
        uses[id(o)] = uses.get(id(o), 0) + 1  # keep outputs alive
    env = {}
    stack = [(o, None) for o in reversed(outputs)]  # (node, inputs to read once computed)
    with np.errstate(all="ignore"):  # NumPy's corner values (x/0 -> inf, int//0 -> 0)
        while stack:
            node, needs = stack.pop()
            if id(node) in env:
                continue
            if node.op is None:
                env[id(node)] = _leaf_value(node, values)
                continue
            if needs is None:  # first visit: its inputs (a lazy op: its condition) first
                needs = (node.inputs[0],) if getattr(node.op, "lazy", False) else node.inputs
                stack.append((node, needs))
                stack.extend((i, None) for i in reversed(needs) if id(i) not in env)
                continue
            if getattr(node.op, "lazy", False) and len(needs) == 1:  # the condition is known
                needs = (needs[0], node.inputs[node.op.taken(node, env[id(needs[0])])])
                stack.append((node, needs))
                if id(needs[1]) not in env:
                    stack.append((needs[1], None))
                continue
            env[id(node)] = _apply(node, [env[id(i)] for i in needs])
            for i in needs:
                uses[id(i)] -= 1
                if uses[id(i)] == 0:
                    del env[id(i)]
    return [np.asarray(env[id(o)]) for o in outputs]


def _apply(node, args):
    """The node's value from its inputs' (a lazy op's: its condition and the taken input)."""
    if getattr(node.op, "lazy", False):
        return np.asarray(args[1], dtype=node.dtype)
    try:
        out = node.op.impl(args, dict(node.attrs))
    except (ValueError, IndexError) as exc:
        if isinstance(exc, KgenError):
            raise
        # NumPy's own message, with the op and the run-time shapes added
        shapes = " and ".join(str(np.shape(a)) for a in args)
        raise ShapeError(f"{node.op.name}: {exc} (input shapes {shapes})") from exc
    # a loop's value is one array per output (kgen/expr/ops/scan.py)
    return out if getattr(node.op, "multi", False) else np.asarray(out, dtype=node.dtype)


def _leaf_value(node, values):
    if isinstance(node, Constant):
        # weak Python scalars stay Python scalars so NumPy applies NEP 50 to them
        return node.value.item() if node.weak else node.value
    if isinstance(node, Shared):
        return node._value if node._device is None else node.get_value()
    if isinstance(node, Input):
        if node not in values:
            raise KgenTypeError(f"eval: no value given for input {node.name or node!r}")
        return coerce_argument(node, values[node], f"eval: input {node.name or ''}".rstrip())
    raise KgenTypeError(f"eval: unknown leaf {node!r}")
