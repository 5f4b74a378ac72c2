"""Reverse mode: `grad` and the walker under it (micrograd's backward pass).

Sort the graph once, seed the outputs, walk the nodes in reverse topological
order, and at each node hand the accumulated gradient to its op's `vjp_rule`,
which returns one gradient per input, written in kgen ops (so gradients can be
differentiated again). Every node is visited once and every rule adds a
constant number of nodes, so the gradient graph is linear in the forward
graph however much the forward graph reuses its values; the walk is a loop,
so depth is not limited by Python's recursion limit.

Only the part of the graph between `wrt` and the outputs is walked:
  - a node is *live* when it is float and depends on some `wrt` through
    differentiable ops; only live nodes receive gradients;
  - ints and bools are never live (integer-valued paths carry no gradient),
    nor are nodes of piecewise-constant ops (rule "zero": comparisons, floor,
    sign, argmax, stop_gradient...), nor anything above `consider_constant`;
  - a `wrt` that the outputs reach structurally but with no live path (say,
    only through `floor`) gets a zero gradient; one they do not reach at all
    (or only through `consider_constant`), or an int/bool `wrt`, is
    disconnected.
"""
import warnings

import numpy as np

from ..config import config
from ..errors import DisconnectedInputError, KgenTypeError
from ..expr.graph import toposort
from ..expr.node import Variable, as_variable, constant
from ..expr.ops import api
from ..expr.ops.elementwise import Elementwise
from ..expr.types import is_float
from .broadcast import unbroadcast


def grad(cost, wrt, consider_constant=None, disconnected_inputs="raise", known_grads=None,
         add_names=True, return_disconnected="zero", null_gradients="raise"):
    """d cost / d wrt for a 0-d float `cost`; `wrt` is a variable or a list.

    Returns one gradient (shaped and typed like its `wrt`), or a list when
    `wrt` is a list. See the module docstring for what counts as disconnected;
    `disconnected_inputs='ignore'` gives those a zero gradient instead of
    raising `DisconnectedInputError`. `known_grads` ({variable: gradient}, as
    Theano) seeds the walk with gradients already known for some variables,
    which then replace whatever flows into them from above; `cost` may be None
    when it is given. (add_names, return_disconnected='zero' and
    null_gradients are Theano's and accepted.)
    """
    from ..expr.graph import collector_paused
    with collector_paused():  # a large graph: see collector_paused
        return _grad(cost, wrt, consider_constant, disconnected_inputs, known_grads,
                     return_disconnected)


def _grad(cost, wrt, consider_constant, disconnected_inputs, known_grads, return_disconnected):
    if return_disconnected not in ("zero", "None", None):
        raise ValueError(f"grad: return_disconnected must be 'zero', got {return_disconnected!r}")
    seeds = []
    if cost is not None:
        cost = require_variable(cost, "grad: cost")
        if cost.ndim != 0 or not is_float(cost.dtype):
            raise KgenTypeError(f"grad: cost must be a 0-d float expression, got {cost.type} "
                                f"(reduce it with .sum() or .mean(), or cast it)")
        seeds.append((cost, constant(np.ones((), cost.dtype))))
    known = []
    for var, g in (known_grads or {}).items():
        var = require_variable(var, "grad: a known_grads key")
        g = as_variable(g)
        if g.ndim != var.ndim:
            raise KgenTypeError(f"grad: known_grads gives a {g.ndim}-d gradient for the "
                                f"{var.ndim}-d {_label(var)}")
        known.append((var, g))
    if not seeds and not known:
        raise KgenTypeError("grad: cost is None and no known_grads are given")
    return vjp(seeds + known, wrt, consider_constant, disconnected_inputs, "grad",
               fixed=[v for v, _ in known])


def vjp(seeds, wrt, consider_constant=None, disconnected_inputs="raise", who="vjp", fixed=()):
    """The sum over `seeds` (output, cotangent) of cotangent-weighted gradients
    of the outputs with respect to `wrt`: grad's engine, also used by jvp.

    Each cotangent has its output's shape. The outputs listed in `fixed` get
    their seed as their whole gradient (grad's known_grads). Returns like `grad`.
    """
    if disconnected_inputs not in ("raise", "ignore", "warn"):
        raise ValueError(f"{who}: disconnected_inputs must be 'raise', 'warn' or 'ignore', "
                         f"got {disconnected_inputs!r}")
    many = isinstance(wrt, (list, tuple))
    targets = [require_variable(w, f"{who}: wrt") for w in (wrt if many else [wrt])]
    cut = set(require_variable(v, f"{who}: consider_constant") for v in consider_constant or ())
    outputs = [out for out, _ in seeds]
    order = toposort(outputs)
    connected = check_connected(order, outputs, targets, cut,
                                "ignore" if disconnected_inputs == "warn" else disconnected_inputs,
                                who)
    if disconnected_inputs == "warn":
        for w, ok in zip(targets, connected):
            if not ok:
                warnings.warn(f"{who}: {_label(w)} is disconnected from the output; its "
                              f"gradient is zero", UserWarning, stacklevel=3)
    live = _live_nodes(order, set(targets), cut)
    grads = backward(order, seeds, live, cut, set(fixed), targets)
    results = []
    for w, ok in zip(targets, connected):
        if not ok:
            results.append(api.zeros_like(w, w.dtype if is_float(w.dtype) else config.floatX))
        elif w in grads:
            results.append(grads[w])
        else:  # reached only through piecewise-constant or integer ops
            results.append(api.zeros_like(w))
    return results if many else results[0]


def backward(order, seeds, live, cut=frozenset(), fixed=frozenset(), targets=()):
    """The reverse walk: {node: total gradient} for every live node reached
    (a node in `fixed` keeps its seed, whatever reaches it from above;
    `targets` must come out with their gradient, not inside an ifelse's)."""
    pending, seeded = {}, {}  # node -> gradients received so far; fixed node -> its seed
    for out, cotangent in seeds:
        if out in live:
            cotangent = api.cast(as_variable(cotangent), out.dtype)
            pending.setdefault(out, []).append(cotangent)
            if out in fixed:
                seeded[out] = cotangent
    done, memo = {}, {}
    users = None  # for ifelse regions: (user, position) pairs of each node
    for node in reversed(order):
        parts = pending.pop(node, None)
        if parts is None:
            continue
        g = seeded.get(node)
        if getattr(node.op, "multi", False):
            g = parts  # a scan: [(output, gradient)], for its own rule (derive/scan_grad.py)
        elif g is None:
            g = parts[0]
            for part in parts[1:]:
                g = g + part
        done[node] = g
        if node.op is None or node in cut:
            continue
        rule = node.op.vjp_rule
        if rule == "zero":  # only reachable when node is itself a wrt
            continue
        if rule is None:
            raise KgenTypeError(f"grad: op {node.op.name} has no derivative rule")
        if rule == "region":  # ifelse: gradients for the frontier of its branches
            if users is None:
                users = _users(order)
            region = _Region(node, users, live,
                             set(cut) | set(fixed) | set(targets) | {o for o, _ in seeds})
            for x, gx in node.op.vjp_region(node, g, region).items():
                pending.setdefault(x, []).append(api.cast(gx, x.dtype))
            continue
        input_grads = rule(node, g)
        for k, (x, gx) in enumerate(zip(node.inputs, input_grads)):
            if gx is None or x not in live:
                continue
            if getattr(x.op, "multi", False):  # one output's gradient, handed to its scan
                pending.setdefault(x, []).append(gx)
                continue
            if isinstance(node.op, Elementwise) and len(node.inputs) > 1:
                peers = node.inputs[:k] + node.inputs[k + 1:]
                gx = unbroadcast(gx, x, peers, memo)
            if gx.dtype != x.dtype:
                gx = api.cast(gx, x.dtype)
            pending.setdefault(x, []).append(gx)
    return done


def _users(order):
    """id(node) -> the (user, input position) pairs reading it within `order`."""
    users = {}
    for n in order:
        for pos, i in enumerate(n.inputs):
            users.setdefault(id(i), []).append((n, pos))
    return users


class _Region:
    """Differentiation through one branch of an ifelse part `node`: the nodes
    below its input `pos` that nothing else uses (not the condition, the other
    branch, another output...) are walked here, seeded with the part's
    gradient; the result is {frontier node: gradient}, the frontier being the
    live nodes the region reads. Written inside an ifelse by the op's rule,
    the region's gradient is then lazy as the region itself is."""

    def __init__(self, node, users, live, keep):
        self.node, self.users, self.live, self.keep = node, users, live, keep

    def __call__(self, pos, seed):
        root = self.node.inputs[pos]
        if root not in self.live:
            return {}
        below = toposort([root])
        inside = set()
        for n in reversed(below):  # users come after their inputs
            if n.op is None or n in self.keep:
                continue
            if all((u is self.node and p == pos) or id(u) in inside
                   for u, p in self.users.get(id(n), ())):
                inside.add(id(n))
        frontier = {root} if id(root) not in inside else set()
        for n in below:
            if id(n) in inside:
                frontier.update(i for i in n.inputs if id(i) not in inside and i in self.live)
        order = [n for n in below if id(n) in inside or n in frontier]
        done = backward(order, [(root, seed)], self.live, frozenset(frontier))
        return {v: done[v] for v in frontier if v in done}


def check_connected(order, outputs, targets, cut, disconnected_inputs, who):
    """For each target, whether it is connected to `outputs` (`order` is their
    toposort); raises DisconnectedInputError for one that is not, unless
    `disconnected_inputs` is 'ignore'."""
    reached = _reached(order, outputs, cut)
    connected = []
    for w in targets:
        ok = w in reached and is_float(w.dtype)
        if not ok and disconnected_inputs == "raise":
            why = ("it is not float (integer inputs carry no gradient)"
                   if w in reached else "the output does not depend on it")
            raise DisconnectedInputError(
                f"{who}: cannot differentiate with respect to {_label(w)}: {why}. "
                f"Pass disconnected_inputs='ignore' to get a zero gradient.")
        connected.append(ok)
    return connected


def _live_nodes(order, targets, cut):
    """Float nodes that depend on a target through differentiable ops."""
    live = set()
    for node in order:
        if not is_float(node.dtype) and not getattr(node.op, "multi", False):
            continue
        if node in targets:
            live.add(node)
        elif (node.op is not None and node not in cut and node.op.vjp_rule != "zero"
              and any(i in live for i in node.inputs)):
            live.add(node)
    return live


def _reached(order, outputs, cut):
    """Nodes the outputs depend on, not looking past `cut` nodes."""
    reached = set(outputs)
    for node in reversed(order):
        if node in reached and node not in cut:
            reached.update(node.inputs)
    return reached


def require_variable(v, what):
    """v itself, or a TypeError naming `what` when it is not a kgen variable."""
    if not isinstance(v, Variable):
        raise KgenTypeError(f"{what} must be a kgen variable, got {type(v).__name__}")
    return v


def _label(v):
    return repr(v.name) if v.name else repr(v)
