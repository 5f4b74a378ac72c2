"""The NumPy reference evaluator: `expr.eval()` and the oracle for every backend."""
import numpy as np

from ..errors import KgenError, KgenTypeError, ShapeError
from .arguments import coerce_argument
from .graph import consumers, toposort
from .node import Constant, Input, Shared


def evaluate(outputs, values):
    """Evaluate `outputs` given `values` ({Input: array}); unused entries are ignored."""
    order = toposort(outputs)
    uses = consumers(order)
    for o in outputs:
        uses[id(o)] = uses.get(id(o), 0) + 1  # keep outputs alive
    env = {}
    with np.errstate(all="ignore"):  # NumPy's corner values (x/0 -> inf, int//0 -> 0)
        for node in order:
            if node.op is None:
                env[id(node)] = _leaf_value(node, values)
                continue
            args = [env[id(i)] for i in node.inputs]
            try:
                out = node.op.impl(args, dict(node.attrs))
            except (ValueError, IndexError) as exc:
                if isinstance(exc, KgenError):
                    raise
                # NumPy's own message, with the op and the run-time shapes added
                shapes = " and ".join(str(np.shape(a)) for a in args)
                raise ShapeError(f"{node.op.name}: {exc} (input shapes {shapes})") from exc
            # a loop's value is one array per output (kgen/expr/ops/scan.py)
            env[id(node)] = out if getattr(node.op, "multi", False) \
                else np.asarray(out, dtype=node.dtype)
            for i in node.inputs:
                uses[id(i)] -= 1
                if uses[id(i)] == 0:
                    del env[id(i)]
    return [np.asarray(env[id(o)]) for o in outputs]


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
