"""Run-time shape classes: which nodes provably have equal sizes, axis by axis.

The simplifier may drop a `sum_to(g, x)` or a `second(a, b)` only where the
shapes involved are equal whatever the inputs turn out to be. Static shapes
rarely say so (most sizes are unknown until a call), so each axis of each node
gets a *dim class*:

  - an int, where the static shape knows the size;
  - else a frozenset of atoms, an atom being one axis of one node, (node, k).
    The size is the broadcast of the atoms' sizes: an elementwise node's axis
    is the union of its operands' (broadcasting is commutative and
    associative, so the union is exact), a sum_to has its target's classes,
    a dimshuffle or reduction moves or drops its input's, and any other node
    starts atoms of its own.

A matrix product's inner sizes must be equal for the call to run at all (the
shape phase checks it before any step), so the product joins the two atoms
(union-find). That is what proves the gradient of a cost like
`x * log(sigmoid(h @ W.T + b))` to have x's shape, not only a broadcast of it.

Equal classes mean equal run-time shapes; `covers` says when broadcasting one
node against others adds nothing.
"""
from ..expr.graph import memo_postorder
from ..expr.ops.elementwise import Elementwise

REDUCTIONS = ("sum", "prod", "max", "min")


class ShapeClasses:
    """The dim classes of one kg.simplify call (kept in its Facts)."""

    def __init__(self, key):
        self._key = key      # structural sort key of a node (Context.key): picks union roots
        self.raw = {}        # id(node) -> per-axis classes, atoms not yet resolved
        self.parent = {}     # atom -> atom: the union-find of joined atoms
        self.alive = []      # nodes whose ids are keys above

    # -- union-find over atoms ---------------------------------------------------
    def find(self, atom):
        parent = self.parent
        while atom in parent:
            atom = parent[atom]
        return atom

    def join(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        # the root is the structurally smaller atom, so every process picks the same
        if (self._key(rb.node), rb.axis) < (self._key(ra.node), ra.axis):
            ra, rb = rb, ra
        self.parent[rb] = ra

    def dim(self, c):
        """A raw dim class resolved: an int, or a frozenset of root atoms."""
        if isinstance(c, int) or not self.parent:
            return c
        return frozenset(self.find(a) for a in c)

    # -- classes -------------------------------------------------------------------
    def of(self, node):
        """node's shape class: a tuple of resolved dim classes."""
        return tuple(self.dim(c) for c in self.raw_of(node))

    def raw_of(self, node):
        raw = self.raw
        r = raw.get(id(node))
        if r is not None:
            return r
        memo_postorder(node, raw, _deps, self._record)
        return raw[id(node)]

    def _record(self, n):
        self.raw[id(n)] = self._classes(n)
        self.alive.append(n)

    def _own(self, n):
        return tuple(d if d is not None else frozenset([_Atom(n, k)])
                     for k, d in enumerate(n.type.shape))

    def _classes(self, n):
        op = n.op
        if op is None:
            return self._own(n)
        raw = self.raw
        if isinstance(op, Elementwise):
            out = []
            for k, d in enumerate(n.type.shape):
                if d is not None:
                    out.append(d)
                    continue
                atoms = set()
                for i in n.inputs:
                    j = k - (n.ndim - i.ndim)
                    if j < 0:
                        continue
                    c = raw[id(i)][j]
                    if isinstance(c, int):
                        if c != 1:  # a known size where the result's is unknown: no claim
                            atoms = None
                            break
                        continue
                    atoms |= c
                out.append(frozenset(atoms) if atoms else frozenset([_Atom(n, k)]))
            return tuple(out)
        name = op.name
        if name == "sum_to":
            return raw[id(n.inputs[1])]
        if name == "stop_gradient":
            return raw[id(n.inputs[0])]
        if name in REDUCTIONS:
            axis, src = n.attr("axis"), raw[id(n.inputs[0])]
            if n.attr("keepdims"):
                return tuple(1 if a in axis else c for a, c in enumerate(src))
            return tuple(c for a, c in enumerate(src) if a not in axis)
        if name == "dimshuffle":
            src = raw[id(n.inputs[0])]
            return tuple(1 if p == "x" else src[p] for p in n.attr("pattern"))
        if name == "matmul":
            a, b = (raw[id(i)] for i in n.inputs)
            ka, kb = a[-1], (b[0] if len(b) == 1 else b[-2])
            if not isinstance(ka, int) and not isinstance(kb, int) and len(ka) == 1 == len(kb):
                self.join(next(iter(ka)), next(iter(kb)))
            if len(a) == 2 and len(b) == 2:
                return tuple(s if s is not None else c
                             for s, c in zip(n.type.shape, (a[0], b[1])))
        return self._own(n)

    def covers(self, shapes_of, source):
        """True if broadcasting `source` against the nodes `shapes_of` provably
        adds nothing to their broadcast shape: on each axis, source is 1 or its
        atoms are among theirs."""
        src = self.of(source)
        targets = [self.of(a) for a in shapes_of]
        nd = max((len(t) for t in targets), default=0)
        if len(src) > nd:
            return False
        for k, s in enumerate(src):
            if s == 1:
                continue
            ax = k + nd - len(src)
            have = [t[ax - (nd - len(t))] for t in targets if ax - (nd - len(t)) >= 0]
            if isinstance(s, int):
                if s not in have:
                    return False
                continue
            atoms = frozenset().union(*(h for h in have if not isinstance(h, int)))
            if not s <= atoms or any(isinstance(h, int) and h != 1 for h in have):
                return False
        return True


class _Atom:
    """A root atom in a resolved class: equal when it is the same axis of the
    same node (nodes compare by identity)."""
    __slots__ = ("node", "axis")

    def __init__(self, node, axis):
        self.node, self.axis = node, axis

    def __eq__(self, other):
        return self.node is other.node and self.axis == other.axis

    def __hash__(self):
        return hash((id(self.node), self.axis))

    def __repr__(self):
        return f"<{self.node.name or self.node.op}[{self.axis}]>"


def _deps(n):
    if n.op is None:
        return ()
    if isinstance(n.op, Elementwise) or n.op.name in ("matmul", "dimshuffle"):
        return n.inputs
    if n.op.name == "sum_to":
        return n.inputs[1:]
    if n.op.name in REDUCTIONS or n.op.name == "stop_gradient":
        return n.inputs[:1]
    return ()
