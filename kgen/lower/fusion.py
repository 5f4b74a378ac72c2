"""Scheduling and fusion: which nodes share a loop, and in what order loops run.

Fusion, decided here once for the whole graph:
  - map groups: elementwise nodes of one iteration shape join one loop, so a
    maximal elementwise subgraph is a single pass; members that something
    outside the loop reads are stored, the rest stay loop-local values;
  - private producers: an elementwise node whose only reader is a reduction
    (over the same shape) is computed inside that reduction's loop, so
    sum((x - y)**2) is one pass with no temporary;
  - recomputed nodes, the other way round: a cheap node of one array that
    is in memory anyway (1 - x) is computed again by each loop that reads
    it, instead of being stored and loaded (`recomputed`).
Everything else (reductions, GEMMs, gathers...) is a stage of its own. A node
joins the earliest map group of its shape that runs after all of its inputs
are available, which keeps the number of passes low without reordering
anything a later stage depends on.

An elementwise or view node whose value nothing reads (the condition of
where(c, x, x), which only lends its shape to second(c, x)) gets no stage:
such nodes cannot fail at run time, and their shape checks are in the shape
phase, which covers every node. Other nodes always run, since a gather may
still have an index to refuse.
"""
from dataclasses import dataclass, field

from ..expr.graph import value_reads
from ..expr.node import Constant
from ..expr.ops.elementwise import Elementwise
from ..expr.ops.reduce import Reduce

# scan_out: a scan writes each output's buffer itself (kgen/lower/scan.py)
VIEW_OPS = ("dimshuffle", "subtensor", "reshape", "split_part", "specify_shape", "scan_out")


def is_elementwise(node):
    return node.op is not None and isinstance(node.op, Elementwise)


def is_reduction(node):
    return node.op is not None and isinstance(node.op, Reduce)


@dataclass
class Stage:
    kind: str                       # "map" (a group of elementwise nodes) or "node"
    nodes: list = field(default_factory=list)
    key: tuple = None               # map: the iteration dims shared by every member


class Schedule:
    """stages in run order; where each node is computed."""

    def __init__(self, order, roots, dims_key, reads=value_reads):
        # `reads`: what a node needs computed before it runs (an ifelse reads
        # what its branches read: kgen/lower/branches.py); asked once a node
        known = {}

        def cached(node):
            r = known.get(id(node))
            if r is None:
                r = known[id(node)] = reads(node)
            return r
        self.reads = cached
        self.live = self._live(order, roots)
        self.users = {}
        for n in order:
            if id(n) not in self.live:
                continue
            for i in reads(n) if n.op is not None else ():
                self.users.setdefault(id(i), []).append(n)
        self.private = self._private_producers(order, roots, dims_key)
        self.stages, self.stage_of, self.views = [], {}, set()
        self.recomputed = set()  # ids of cheap nodes each reader computes anew (recomputed())
        for node in order:
            self._place(node, dims_key)

    def _live(self, order, roots):
        """ids of the nodes that run: roots, nodes that may fail at run time,
        and whatever a live node reads the value of."""
        readers = {}
        for n in order:
            for i in self.reads(n) if n.op is not None else ():
                readers.setdefault(id(i), []).append(n)
        live = set()
        for n in reversed(order):
            # arange cannot fail once the shape phase has checked its step: when
            # nothing reads it (alloc's and the random draws' shape models) it
            # need not run; nor matmul, whose shapes the shape phase checks
            # (a product that only lends its shape: a scan gradient's
            # subtensor_grad of a step's pre-activations)
            pure = n.op is None or is_elementwise(n) or \
                n.op.name in VIEW_OPS + ("arange", "matmul")
            if id(n) in roots or not pure or any(id(c) in live for c in readers.get(id(n), [])):
                live.add(id(n))
        return live

    def _private_producers(self, order, roots, dims_key):
        """id(node) -> the reduction node whose loop computes it."""
        private = {}
        for node in reversed(order):
            if not is_elementwise(node) or id(node) in roots \
                    or getattr(node.op, "indexed", False):  # map loops give draws their index
                continue
            owners = {}
            for c in self.users.get(id(node), []):
                owner = c if is_reduction(c) else private.get(id(c))
                owners[id(owner)] = owner
            if len(owners) == 1:
                (owner,) = owners.values()
                # same shape as the reduced input: never recompute a broadcast value
                if owner is not None and dims_key(owner.inputs[0]) == dims_key(node):
                    private[id(node)] = owner
        return private

    def available(self, node):
        """Index of the stage after which `node`'s value can be read (-1: always)."""
        if node.op is None or node.op.name == "shape_i":
            return -1
        if id(node) in self.views:
            return self.available(node.inputs[0])
        return self.stage_of.get(id(node), -1)  # -1: computed before (a branch's outer values)

    def _place(self, node, dims_key):
        if node.op is None or node.op.name == "shape_i" or id(node) in self.private \
                or id(node) not in self.live:
            return
        if node.op.name in VIEW_OPS and self._viewable(node):
            self.views.add(id(node))
            return
        if not is_elementwise(node):
            self.stage_of[id(node)] = len(self.stages)
            self.stages.append(Stage("node", [node]))
            return
        key = dims_key(node)
        lo = 0
        for i in self.reads(node):
            g = self.stage_of.get(id(i))
            if g is not None and id(i) not in self.views and self.stages[g].key == key:
                lo = max(lo, g)             # may share i's loop
            else:
                lo = max(lo, self.available(i) + 1)
        for g in range(lo, len(self.stages)):
            if self.stages[g].kind == "map" and self.stages[g].key == key:
                break
        else:
            g = len(self.stages)
            self.stages.append(Stage("map", [], key))
        self.stages[g].nodes.append(node)
        self.stage_of[id(node)] = g

    def _viewable(self, node):
        """Whether a view op can be strides over its source's storage."""
        if node.op.name != "reshape":
            return True
        return self._contiguous(node.inputs[0])

    def _contiguous(self, node):
        while id(node) in self.views:
            if node.op.name in ("reshape", "specify_shape"):
                pass
            elif node.op.name == "dimshuffle":
                kept = [p for p in node.attr("pattern") if p != "x"]
                if kept != sorted(kept):
                    return False
            else:
                return False
            node = node.inputs[0]
        return True

    def stage_index(self, node):
        """The stage that reads through `node` when it is a consumer."""
        if id(node) in self.private:
            return self.stage_of[id(self.private[id(node)])]
        return self.stage_of.get(id(node), -1)


# one operation on one array and scalar constants: cheaper to compute again in
# each loop that reads it than to store and load (1 - x beside x)
CHEAP_OPS = ("add", "sub", "mul", "neg")


def recomputed(sched, order, roots, dims_key, outside=()):
    """ids of the nodes every reader computes again instead of loading.

    Such a node (CHEAP_OPS, of one array x of its own shape and scalar
    constants, read only by elementwise loops and reductions) saves a store
    and a load per element, and its buffer, where x is in memory anyway:
    an input, a value of a step of its own (GEMM, reduction...), or a map
    value stored for another reader. `outside`: ids of nodes lowered apart
    (ifelse branches), whose readers load what they read."""
    readers = sched.users  # the scheduled nodes' readers; a branch's own, below
    if outside:
        readers = {k: list(v) for k, v in readers.items()}
        for n in order:
            if id(n) in outside and n.op is not None:
                for i in value_reads(n):
                    readers.setdefault(id(i), []).append(n)

    def loop_reader(u):
        return id(u) not in outside and id(u) not in sched.views and (
            id(u) in sched.private or is_reduction(u)
            or is_elementwise(u) and sched.stage_of.get(id(u)) is not None
            and sched.stages[sched.stage_of[id(u)]].kind == "map")

    def candidate(c):
        if not is_elementwise(c) or c.op.name not in CHEAP_OPS or id(c) in roots \
                or id(c) in sched.private or id(c) in outside or getattr(c.op, "indexed", False):
            return None
        g = sched.stage_of.get(id(c))
        users = readers.get(id(c), [])
        # (the usual case first: read in its own loop only, so never stored anyway)
        if g is None or not users or all(sched.stage_index(u) == g for u in users) \
                or sched.stages[g].kind != "map":
            return None
        arrays = [i for i in c.inputs if not (i.op is None and i.ndim == 0 or
                                              _is_scalar_constant(i))]
        if len(arrays) != 1 or not all(loop_reader(u) for u in users) \
                or dims_key(arrays[0]) != dims_key(c):
            return None
        return arrays[0]

    candidates = {}
    for c in order:
        if c.op is None or c.op.name not in CHEAP_OPS:
            continue
        x = candidate(c)
        if x is not None:
            candidates[id(c)] = x
    out = set()
    for cid, x in candidates.items():
        if id(x) in candidates or id(x) in sched.views or id(x) in sched.private:
            continue
        if x.op is None or not is_elementwise(x):
            out.add(cid)  # an input, or a step's own result
            continue
        gx = sched.stage_of.get(id(x))
        if gx is None:
            continue
        # a map value: stored anyway if an output, or read outside its loop
        if id(x) in roots or any(
                id(u) not in candidates and (id(u) in outside or id(u) in sched.views
                                             or sched.stage_index(u) != gx)
                for u in readers.get(id(x), [])):
            out.add(cid)
    return out


def _is_scalar_constant(node):
    return isinstance(node, Constant) and all(d == 1 for d in node.type.shape)
