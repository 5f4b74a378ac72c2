"""ifelse in the lowering: which nodes run inside a branch, and the branch Step.

A node belongs to a branch of an ifelse when everything that uses it is in
that branch, or is the ifelse itself at one of that branch's inputs (not the
condition, not the other branch, not an output of the kernel). Those nodes
are lowered into the branch's own step list, which runs only when the branch
is taken; the rest of the kernel sees the ifelse as one node that reads what
its branches read from outside (`reads`). Nested ifelses belong to the
innermost branch. The parts of one ifelse (a list of branch values) share a
Step, so a value both parts use is computed once.

Shape checks: every node's sizes are still computed in the shape phase (the
outputs and temporaries are sized before anything runs), but the statements
of a branch's nodes are *guarded*: the shape phase computes them quietly (a
failed check gives a harmless value: 0 for an index out of range or a size
that overflows, the first dim for a broadcast that does not fit), and the
branch repeats the checks that can fail at its start, once it is taken. So
an index out of range in the branch not taken is no error, and it is the
usual error, before any memory is touched, in the branch taken. The check
that both branches have the same shape stays in the shape phase (the
output's shape must be known before the run).
"""
from ..expr.graph import toposort
from .comments import _one_line
from .fusion import Schedule, value_reads
from .plan import Step, View

# shape-phase statements that cannot fail (a branch need not repeat them)
NEVER_FAIL = ("max", "min", "bstride", "slice_len", "slice_start")


def is_ifelse(node):
    return node.op is not None and node.op.name == "ifelse"


class Branch:
    """One side of an ifelse: its nodes (in order) and its (part, value) pairs."""

    def __init__(self, side, parts):
        self.side, self.members = side, []
        n = parts[0].attr("n")
        self.positions = {1 + side * n + k for k in range(n)}
        self.roots = [(p, p.inputs[1 + side * n + p.attr("part")]) for p in parts]

    def __repr__(self):  # statements print their guard
        return f"<branch {'then' if self.side == 0 else 'else'} of {self.roots[0][0].attr('n')}>"


class Group:
    """The parts of one ifelse (same condition, same branch values)."""

    def __init__(self, parts):
        self.parts = parts
        self.branches = (Branch(0, parts), Branch(1, parts))


class Branches:
    """Where each node of a kernel's graph runs: owner[id(node)] is its Branch."""

    def __init__(self, order, exprs):
        self.owner, self.groups, self._reads = {}, {}, {}
        for n in order:
            if is_ifelse(n):
                self.groups.setdefault(_key(n), []).append(n)
        if not self.groups:
            return
        users = {}
        for n in order:
            for pos, i in enumerate(n.inputs):
                users.setdefault(id(i), []).append((n, pos))
        outputs = {id(e) for e in exprs}
        self.groups = {k: Group(parts) for k, parts in self.groups.items()}
        # inner ifelses come first in `order`: each node gets its innermost branch
        for group in self.groups.values():
            for branch in group.branches:
                for n in self._private(branch, group, users, outputs):
                    self.owner.setdefault(id(n), branch)
        for n in order:
            b = self.owner.get(id(n))
            if b is not None:
                b.members.append(n)

    def _private(self, branch, group, users, outputs):
        """The nodes only `branch` uses; an ifelse's parts stay together
        (a part used elsewhere keeps its siblings out too)."""
        part_ids = {id(p) for p in group.parts}
        blocked = set()
        while True:
            inside = set()
            below = toposort([r for _, r in branch.roots])
            for n in reversed(below):
                if n.op is None or id(n) in outputs or id(n) in blocked:
                    continue
                if all(id(u) in inside or (id(u) in part_ids and pos in branch.positions)
                       for u, pos in users.get(id(n), ())):
                    inside.add(id(n))
            split = [p for other in self.groups.values() for p in other.parts
                     if id(p) not in inside and any(id(q) in inside for q in other.parts)]
            if not split:
                return [n for n in below if id(n) in inside]
            blocked.update(id(p) for p in split)

    def group(self, node):
        return self.groups[_key(node)]

    def reads(self, node):
        """What `node` needs computed before it runs: an ifelse part, its
        condition and whatever its branches read from outside them."""
        if not is_ifelse(node):
            return value_reads(node)
        key = _key(node)
        if key not in self._reads:
            group = self.groups[key]
            out = {id(node.inputs[0]): node.inputs[0]}
            for branch in group.branches:
                for _, root in branch.roots:
                    if self.owner.get(id(root)) is not branch:
                        out.setdefault(id(root), root)
                for m in branch.members:
                    for i in self.reads(m):
                        if self.owner.get(id(i)) is not branch:
                            out.setdefault(id(i), i)
            self._reads[key] = list(out.values())
        return self._reads[key]


def _key(node):
    return tuple(map(id, node.inputs))


class _Into:
    """A branch value's storage target: the ifelse part's buffer (as a Param would be)."""

    def __init__(self, name):
        self.name, self.var = name, None


class BranchRules:
    """Mixed into the lowering: the ifelse Step."""

    def _step_ifelse(self, node, out):
        group = self.branches.group(node)
        outs = {id(node): out}
        for p in group.parts:  # the group writes every part: give the others storage now
            if p is not node:
                outs[id(p)] = self._storage(p, self._claimed.pop(id(p), None))
        cond = self._value_of(node.inputs[0])
        args = dict(cond_view=cond if isinstance(cond, View) else None,
                    cond_int=cond[1] if isinstance(cond, tuple) and cond[0] == "int" else None,
                    cond_literal=bool(cond[1]) if isinstance(cond, tuple)
                    and cond[0] == "literal" else None)
        fails = False
        for branch, name in zip(group.branches, ("then", "else")):
            steps = self._branch_steps(branch, outs)
            checks = [s for s in self.ints.stmts
                      if s.guard is branch and s.kind not in NEVER_FAIL]
            args[f"{name}_steps"], args[f"{name}_checks"] = steps, checks
            fails = fails or bool(checks) or any(
                s.kind in ("gather", "scatter_add") or (s.kind == "ifelse" and s.args["fails"])
                for s in steps)
        args["fails"] = fails
        labels = ", ".join(_one_line(p, 60) for p in group.parts)
        self.steps.append(Step("ifelse", f"{labels}: only the branch taken runs", args))

    def _branch_steps(self, branch, outs):
        """The steps computing one branch's members, then its values into the parts."""
        for i in self.branches.reads(branch.roots[0][0]):
            if i.op is not None:  # outside values (views) resolved in the outer schedule
                self._value_of(i)
        saved = (self.sched, self.steps, self.exprs, self.ints.guard, self._claimed)
        member_ids = {id(m) for m in branch.members}
        roots = [r for _, r in branch.roots if id(r) in member_ids]
        self.sched = Schedule(branch.members, {id(r) for r in roots}, self._dims_key,
                              reads=self.branches.reads)
        self.steps, self.exprs, self.ints.guard = [], roots, branch
        claimed, targets = {}, []
        for part, root in branch.roots:
            target = _Into(outs[id(part)].buf)
            if id(root) in member_ids and id(root) not in claimed:
                claimed[id(root)] = target
            targets.append((part, root, target))
        before = set(self._temps)
        try:
            self._lower_stages(claimed, release=False)
            for part, root, target in targets:
                if target.var is not root:  # a leaf, an outer value, a view: copied
                    self.steps.append(self._copy_loop(root, outs[id(part)],
                                                      f"{_one_line(part, 80)} = {_one_line(root, 80)}"))
            steps = self.steps
        finally:
            self.sched, self.steps, self.exprs, self.ints.guard, self._claimed = saved
        # the branch's temporaries are dead once it has run (and the other
        # branch never runs with it): back to the pool
        for key in [k for k in self._temps if k not in before]:
            _, buf = self._temps.pop(key)
            self._free.setdefault(buf.dtype, []).append(buf)
        return steps
