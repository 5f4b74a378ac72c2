"""The one fixpoint driver: apply a rule table to a graph until nothing fires.

The walk is bottom-up and iterative (no recursion limit): a node is visited
once its inputs are simplified, rebuilt on the simplified inputs (hash-consing
makes that a lookup when nothing changed), and offered to the rules for its op
in order. The first rule that returns a replacement wins; the replacement is
itself simplified before it stands for the node, so every node of the result
is a fixed point of the table. Every result is memoized by node, so each node
is rewritten once per pass; a node no rule changes, whose rules do not look at
use counts, is remembered as a fixed point of the table across passes.

A rule must keep the node's type: the same dtype and the same static shape.
The driver checks and refuses a replacement that does not (a bug in the rule,
reported in debug mode), so no rewrite can change what a graph computes into.

`Context` carries what rules need to know about the graph as a whole:
use counts (a shared subexpression is not flattened into each user, which
would duplicate its work), which sums and products wait to be collected at
their root (so a chain of n additions is collected once, in linear time),
stable structural sort keys, and which nodes provably have the same run-time
shape.
"""
import functools
import hashlib
import sys

import numpy as np

from ..errors import KgenError
from ..expr.graph import memo_postorder
from ..expr.node import Constant, Shared, make_apply
from .shapes import ShapeClasses


class Facts:
    """What one kg.simplify call learns about nodes, for all its passes. By
    id (a dict lookup, where weak dictionaries cost a weak reference each
    time); `alive` holds every node so named, so no id is reused meanwhile.

      keys      structural sort keys (Context.key)
      shapes    run-time shape classes (Context.shape_class)
      normal    nodes no rule changes, whatever the graph around them
      plain     nodes the rules that do not read uses leave as they are
      verdicts  {rule: answers}: the answers to the context's questions
                under which a rule that reads uses left the node as it is
                (the same answers give the same verdict, so a later pass
                need not run the rule again)
    """

    def __init__(self):
        self.keys, self.verdicts = {}, {}
        self.shapes = None  # the shape classes (kgen/simplify/shapes.py), made when asked
        self.normal, self.plain = set(), set()
        self.alive = []

# rule firings allowed per node of the input graph before the driver gives up
# on a pass (a safety net against two rules undoing each other forever)
MAX_FIRINGS_PER_NODE = 50


class Context:
    """Per-pass facts about the graph being rewritten (see module docstring)."""

    def __init__(self, outputs, collected_ops, facts=None):
        self.facts = Facts() if facts is None else facts
        self.uses, self.deferred, self.counted = {}, set(), set()
        self.canonical = set()  # nodes a collector built: already in canonical form
        self.consulted = None   # when a list: the questions below record their answers there
        self._alive = []        # nodes whose ids are used as keys above
        self._count_uses(outputs, collected_ops)

    # -- use counts and deferral ------------------------------------------
    def _count_uses(self, outputs, collected_ops):
        from ..expr.graph import toposort
        order = toposort(outputs)
        uses = self.uses
        for o in outputs:
            uses[id(o)] = uses.get(id(o), 0) + 2  # an output is never folded into a user
        parent, get = {}, uses.get
        for n in order:
            for i in n.inputs:
                k = id(i)
                uses[k] = get(k, 0) + 1
                parent[k] = n
        self.counted = set(map(id, order))
        for n in order:
            if n.op is not None and get(id(n)) == 1:
                p = parent.get(id(n))
                if p is not None and collected_ops(p, n):
                    self.deferred.add(id(n))
        self._alive.append(order)
        self.order = order  # the graph as it was given, inputs first

    def count_new(self, root):
        """The nodes a rule built are new users of their inputs."""
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in self.counted:
                continue
            self.counted.add(id(node))
            self._alive.append(node)
            for i in node.inputs:
                self.uses[id(i)] = self.uses.get(id(i), 0) + 1
                if id(i) not in self.counted:
                    stack.append(i)

    def release(self, node):
        """`node` was replaced: it no longer uses its inputs; those left with no
        user are released in turn (reference counting, so counts stay exact
        enough for `single_use` as rules rewrite the graph)."""
        stack = [node]
        while stack:
            n = stack.pop()
            for i in n.inputs:
                left = self.uses.get(id(i), 0) - 1
                self.uses[id(i)] = left
                if left == 0 and i.op is not None:
                    stack.append(i)

    # -- the questions a rule may ask about the graph around a node ----------
    # (each answer is recorded while a rule that reads uses runs: Facts.verdicts)
    def single_use(self, node):
        """At most one user: safe to fold into that user's canonical form."""
        one = self.uses.get(id(node), 0) <= 1
        if self.consulted is not None:
            self.consulted.append((SINGLE_USE, node, one))
        return one

    def is_deferred(self, node):
        """node is a single-use operand of a sum or product that its root collects."""
        yes = id(node) in self.deferred
        if self.consulted is not None:
            self.consulted.append((DEFERRED, node, yes))
        return yes

    def is_canonical(self, node):
        """A collector built node in this pass: it is in canonical form already."""
        yes = id(node) in self.canonical
        if self.consulted is not None:
            self.consulted.append((CANONICAL, node, yes))
        return yes

    def same_answers(self, consulted):
        """True if the questions recorded in `consulted` get the same answers now."""
        uses = self.uses
        for kind, n, answer in consulted:
            k = id(n)
            if kind is SINGLE_USE:
                now = uses.get(k, 0) <= 1
            else:
                now = k in (self.deferred if kind is DEFERRED else self.canonical)
            if now != answer:
                return False
        return True

    def inherit(self, old, new):
        """`new` replaces `old`: it takes over old's users (and deferral)."""
        if new is old:
            return
        self.uses[id(new)] = self.uses.get(id(new), 0) + self.uses.get(id(old), 0)
        self._alive.append(new)

    def mark_canonical(self, nodes):
        for n in nodes:
            self.canonical.add(id(n))
        self._alive.append(nodes)

    # -- structural keys ------------------------------------------------------
    def key(self, node):
        """A sort key that depends only on structure, so the same graph sorts
        the same way in every process: (kind, name or op, digest)."""
        return structural_key(self.facts, node)

    # -- run-time shape equality ---------------------------------------------
    def shape_class(self, node):
        """node's run-time shape class, axis by axis (kgen/simplify/shapes.py):
        equal classes, equal shapes."""
        return self._shapes().of(node)

    def dim_root(self, node, axis):
        """(node2, axis2) known to have node's size on `axis`, the simplest
        such, or None where that size is a broadcast of several or known."""
        c = self.shape_class(node)[axis]
        if isinstance(c, int) or len(c) != 1:
            return None
        atom = next(iter(c))
        return atom.node, atom.axis

    def covers(self, shapes_of, source):
        """True if broadcasting `source` against the nodes `shapes_of` provably
        adds nothing to their broadcast shape."""
        if self._shapes().covers(shapes_of, source):
            return True
        from ..expr.types import broadcast_shapes
        try:
            target = broadcast_shapes("covers", *(a.type.shape for a in shapes_of))
        except Exception:  # noqa: BLE001
            return False
        return broadcasts_into(source.type.shape, target)

    def _shapes(self):
        shapes = self.facts.shapes
        if shapes is None:
            shapes = self.facts.shapes = ShapeClasses(functools.partial(structural_key, self.facts))
        return shapes


def structural_key(facts, node):
    """Context.key, kept in `facts` (the shape classes sort by it too)."""
    keys = facts.keys
    k = keys.get(id(node))
    if k is not None:
        return k
    alive = facts.alive

    def visit(n):
        keys[id(n)] = _key_of(n, [keys[id(i)][2] for i in n.inputs])
        alive.append(n)
    memo_postorder(node, keys, _inputs, visit)
    return keys[id(node)]


SINGLE_USE, DEFERRED, CANONICAL = "single_use", "deferred", "canonical"


def _inputs(n):
    return n.inputs


def broadcasts_into(small, big):
    """`small` broadcast against `big` gives `big`, whatever the unknown sizes are."""
    if len(small) > len(big):
        return False
    for s, b in zip(reversed(small), reversed(big)):
        if s != 1 and (s is None or s != b):
            return False
    return True


def _key_of(node, child_digests):
    h = hashlib.blake2b(digest_size=12)
    if isinstance(node, Constant):
        v = node.value
        h.update(f"c|{v.dtype.name}|{v.shape}|{node.weak}|".encode())
        h.update(v.tobytes())
        return (2, "", h.digest())
    if node.op is None:
        kind = "s" if isinstance(node, Shared) else "i"
        # no creation counter: the key must not depend on what else a process
        # built first; equal keys keep their order (the sorts are stable)
        h.update(f"{kind}|{node.name}|{node.dtype}|{node.type.shape!r}".encode(
            "utf-8", "surrogatepass"))  # any str is a name, a lone surrogate too
        return (0, node.name or "", h.digest())
    h.update(f"{node.op.name}|{node.attrs!r}|{node.dtype}|{node.type.shape!r}|".encode())
    for d in child_digests:
        h.update(d)
    return (1, node.op.name, h.digest())


class Rewriter:
    """Runs one rule table over a graph to a fixed point (one pass)."""

    def __init__(self, name, table, collected_ops, trace=False, facts=None):
        self.name, self.table, self.collected_ops = name, table, collected_ops
        self.trace, self.fired = trace, 0
        self.facts = Facts() if facts is None else facts

    def run(self, outputs):
        self.ctx = ctx = Context(outputs, self.collected_ops, self.facts)
        self.memo, self.in_progress = {}, set()
        self.budget = MAX_FIRINGS_PER_NODE * (len(ctx.uses) + 100)
        with np.errstate(all="ignore"):  # folding NumPy's way, inf and NaN included
            results = [self._simplify(o) for o in outputs]
        self.memo = self.ctx = None
        return results

    def fires_nothing(self, outputs):
        """True if run(outputs) would fire no rule (and so return outputs as
        they are), found without its walk: each node of the graph as it is, in
        topological order, is offered the rules run would offer it, under the
        same context (a node's answers depend only on the graph and on marks
        that its users' collectors make, and users come later in both orders).
        Most settle passes are this check."""
        self.ctx = ctx = Context(outputs, self.collected_ops, self.facts)
        self.budget = MAX_FIRINGS_PER_NODE * (len(ctx.uses) + 100)
        facts, reads_context = self.facts, self.table.reads_context
        normal, plain, alive = facts.normal, facts.plain, facts.alive
        try:
            with np.errstate(all="ignore"):
                for m in ctx.order:
                    if m.op is None or id(m) in normal:
                        continue
                    if self._apply_rules(m, id(m) in plain) is not None:
                        return False
                    (plain if reads_context(m) else normal).add(id(m))
                    alive.append(m)
            return True
        finally:
            self.ctx = None

    def _simplify(self, root):
        memo, ctx, in_progress = self.memo, self.ctx, self.in_progress
        facts, reads_context = self.facts, self.table.reads_context
        normal, plain, alive = facts.normal, facts.plain, facts.alive
        stack = [root]
        while stack:
            item = stack[-1]
            if type(item) is tuple:  # a rule's replacement is simplified: link it
                stack.pop()
                n, m, r = item
                res = memo[id(r)][1]
                memo[id(m)] = (m, res)
                memo[id(n)] = (n, res)
                in_progress.discard(id(m))
                continue
            n = item
            if id(n) in memo:
                stack.pop()
                continue
            if n.op is None:
                stack.pop()
                memo[id(n)] = (n, n)
                continue
            # n on its simplified inputs (the same object if none changed)
            inputs, todo, changed = [], None, False
            for i in n.inputs:
                done = memo.get(id(i))
                if done is not None:
                    j = done[1]
                    changed = changed or j is not i
                    inputs.append(j)
                elif id(i) in in_progress:
                    inputs.append(i)
                elif todo is None:
                    todo = [i]
                else:
                    todo.append(i)
            if todo is not None:
                stack.extend(todo)
                continue
            stack.pop()
            m = self._rebuild(n, inputs) if changed else n
            done = memo.get(id(m))
            if done is not None:
                memo[id(n)] = (n, done[1])
                continue
            if id(m) in in_progress:  # a rule led back to a node being rewritten
                memo[id(n)] = (n, m)
                continue
            r = None if id(m) in normal else self._apply_rules(m, id(m) in plain)
            if r is None:
                memo[id(m)] = (m, m)
                if n is not m:
                    memo[id(n)] = (n, m)
                if self.budget > 0:
                    (plain if reads_context(m) else normal).add(id(m))
                    alive.append(m)
                continue
            ctx.inherit(m, r)
            ctx.count_new(r)  # before the release, so what r reuses stays alive
            ctx.release(m)
            in_progress.add(id(m))
            stack.append((n, m, r))
            stack.append(r)
        return memo[id(root)][1]

    def _rebuild(self, n, inputs):
        """n on the simplified `inputs` (some differ from n's)."""
        ctx = self.ctx
        m = make_apply(n.op, inputs, n.attrs, n.type)
        ctx.inherit(n, m)
        ctx.counted.add(id(m))  # its inputs inherited n's use of theirs
        if id(n) in ctx.deferred:
            ctx.deferred.add(id(m))
        return m

    def _apply_rules(self, node, plain=False):
        """The first rule's replacement for `node`, or None. plain: the node is
        known to be a fixed point of the rules that do not read uses."""
        if self.budget <= 0:
            return None
        ctx = self.ctx
        verdicts = None
        for pat, fn, uses in self.table.candidates(node, plain):
            caps = {}
            if pat is not None and not pat.match(node, caps):
                continue
            if uses:
                if verdicts is None:
                    verdicts = self.facts.verdicts.get(id(node))
                seen = verdicts.get(fn) if verdicts is not None else None
                if seen is not None and ctx.same_answers(seen):
                    continue
                ctx.consulted = consulted = []
            try:
                out = fn(node=node, ctx=ctx, **caps)
            except KgenError as exc:  # building the replacement failed its type rule
                if self.trace:
                    _say(f"{self.name}: rule {fn.__name__} failed at {brief(node)}: {exc}")
                continue
            finally:
                ctx.consulted = None
            if out is None or out is node:
                if uses:
                    if verdicts is None:
                        verdicts = self.facts.verdicts[id(node)] = {}
                        self.facts.alive.append(node)
                    verdicts[fn] = consulted
                continue
            if out.type != node.type:
                if self.trace:
                    _say(f"{self.name}: rule {fn.__name__} would change {node.type} "
                         f"into {out.type} at {brief(node)}; not applied")
                continue
            self.fired += 1
            self.budget -= 1
            if self.budget == 0:
                _say(f"kgen.simplify: pass {self.name} stopped after too many rewrites "
                     f"(rule {fn.__name__} at {brief(node)}); result is still correct")
            if self.trace:
                _say(f"{self.name}: {fn.__name__}: {brief(node)}  ->  {brief(out)}")
            return out
        return None


def _say(text):
    print(f"[kgen.simplify] {text}", file=sys.stderr)


def brief(node, depth=3, width=100):
    """Short one-line text of a node, at most `depth` levels deep."""
    from ..expr.printing import leaf_text
    if node.op is None:
        return leaf_text(node)
    if depth == 0:
        return "…"
    args = ", ".join(brief(i, depth - 1, width) for i in node.inputs)
    attrs = "".join(f", {k}={v!r}" for k, v in node.attrs)
    text = f"{node.op.name}({args}{attrs})"
    return text if len(text) <= width else text[:width - 1] + "…"
