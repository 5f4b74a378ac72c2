"""Patterns for rewrite rules: small trees of op names with named holes.

A rule is a pair `(pattern, function)`. The pattern says what a node must look
like; the function gets the node and the captured parts as keyword arguments
and returns the replacement, or None when the rule does not apply after all
(tinygrad's UPat / PatternMatcher, cut down to what kgen needs):

    P("log", P("exp", X))           log(exp(x)), capturing x
    P("sub", X, X)                  x - x (both holes must be the same node)
    P("log", P("add", X, C(1)))     log(x + 1), the 1 a constant of ones
    P(("exp", "log"), X)            exp(x) or log(x)

Rules are matched against nodes whose inputs are already simplified, so a
pattern is written against the canonical form (constants last in sums, first
in products; see canonical.py).
"""
import numpy as np

from ..expr.node import Constant


class P:
    """Match a node: `op` (a name, a tuple of names, or None for any node),
    then one sub-pattern per input (none given: inputs unchecked)."""

    __slots__ = ("ops", "src", "name")

    def __init__(self, op=None, *src, name=None):
        self.ops = (op,) if isinstance(op, str) else op
        self.src, self.name = src, name

    def match(self, node, caps):
        if self.ops is not None and (node.op is None or node.op.name not in self.ops):
            return False
        if self.src:
            if len(self.src) != len(node.inputs):
                return False
            for pat, child in zip(self.src, node.inputs):
                if not pat.match(child, caps):
                    return False
        return _capture(self.name, node, caps)

    def __repr__(self):
        ops = "|".join(self.ops) if self.ops else "*"
        inner = ", ".join(map(repr, self.src))
        return f"{ops}({inner})" + (f" as {self.name}" if self.name else "")


class Hole(P):
    """Any node, captured under `name`."""

    def __init__(self, name):
        super().__init__(None, name=name)

    def match(self, node, caps):
        return _capture(self.name, node, caps)

    def __repr__(self):
        return self.name


class C(P):
    """A Constant; with `value`, one whose every element equals it."""

    __slots__ = ("value",)

    def __init__(self, value=None, name=None):
        super().__init__(None, name=name)
        self.value = value

    def match(self, node, caps):
        if not isinstance(node, Constant):
            return False
        if self.value is not None and not is_constant_value(node, self.value):
            return False
        return _capture(self.name, node, caps)

    def __repr__(self):
        return "C" if self.value is None else repr(self.value)


def is_constant_value(node, value):
    """True if `node` is a Constant (of any shape) whose elements all equal `value`."""
    if not isinstance(node, Constant) or node.value.size == 0:
        return False
    v = node.value
    return bool(np.all(v == value)) if v.ndim else bool(v == value)


def _capture(name, node, caps):
    if name is None:
        return True
    seen = caps.get(name)
    if seen is None:
        caps[name] = node
        return True
    return seen is node


# the holes rules use most
X, Y, Z = Hole("x"), Hole("y"), Hole("z")


def only_for(test):
    """Declare the ops a rule can fire on at all: `test(op)` reads the op
    record's facts (identity, commutative...). The table never offers the
    rule a node whose op fails it, so a generic pattern such as P(None, X, C)
    costs nothing on the many nodes it could never rewrite."""
    def mark(fn):
        fn.only_for = test
        return fn
    return mark


def reads_uses(fn):
    """Mark a rule whose decision depends on the graph around the node (use
    counts, which nodes wait to be collected), not only on the node's own
    structure. The other rules are pure functions of the node: once they all
    leave a node alone, the table does not offer them that node again."""
    fn.reads_uses = True
    return fn


class RuleTable:
    """Rules indexed by the op at the pattern's root, in declaration order.
    Patterns with no root op are tried on every node, after the indexed ones."""

    def __init__(self, *groups, reads_context=None):
        self.rules = [rule for group in groups for rule in group]
        # reads_context(node): whether some rule's decision at node depends on
        # the graph around it (use counts); other nodes that no rule changes
        # are remembered as fixed points of this table (the driver's
        # Facts.normal). Nodes that only the rules marked reads_uses might
        # still change are Facts.plain: later visits offer them those only.
        self.reads_context = reads_context or (lambda node: True)
        self.by_op, self.generic = {}, []
        for pat, fn in self.rules:
            if pat.ops is None:
                self.generic.append((pat, fn))
            else:
                for op in pat.ops:
                    self.by_op.setdefault(op, []).append((pat, fn))
        self._cache = {}

    def candidates(self, node, plain=False):
        """The rules that may match `node`, as (pattern or None, function, reads_uses):
        its op's, then the generic ones whose pattern fits its number of inputs,
        less those whose `only_for` rules its op out; with plain=True, only the
        rules that read uses.
        (Op names are unique, so the lists are cached by name and arity.)"""
        key = (node.op.name, len(node.inputs), plain)
        rules = self._cache.get(key)
        if rules is None:
            op, arity = node.op, key[1]
            # (a pattern that matches every node of this op and captures
            # nothing, P(None) or P("mul"), is given as None)
            rules = [(None if type(pat) is P and not pat.src and pat.name is None
                      and (pat.ops is None or key[0] in pat.ops) else pat,
                      fn, getattr(fn, "reads_uses", False))
                     for pat, fn in self.by_op.get(key[0], []) + [
                         (pat, fn) for pat, fn in self.generic
                         if not pat.src or len(pat.src) == arity]
                     if getattr(fn, "only_for", None) is None or fn.only_for(op)]
            if plain:
                rules = [rule for rule in rules if rule[2]]
            self._cache[key] = rules
        return rules
