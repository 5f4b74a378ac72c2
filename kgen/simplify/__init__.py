"""The simplifier: rewrite rules as data, one fixpoint driver, one pipeline.

    kg.simplify(expr)            -> an equivalent, smaller, numerically safer expr
    kg.simplify([e1, e2])        -> a list (shared parts stay shared)
    kg.simplify(e, trace=True)   -> also print each rule as it fires (KGEN_DEBUG=1 too)

  pattern.py    the pattern language and rule tables ((pattern, function) pairs)
  driver.py     the one fixpoint driver: bottom-up, iterative, memoized
  shapes.py     run-time shape classes: which sizes are provably equal
  canonical.py  canonical sums and products (flatten, collect, fold, order)
  algebra.py    folding, identities from op facts, shape ops, reductions
  stability.py  log1p, expm1, softplus, log_softmax, logsumexp...

`pipeline` below is the whole recipe. Common subexpressions need no pass:
nodes are hash-consed, so rebuilding an expression on the same inputs gives
the same object, and every rewrite lands on the shared node.
"""
import gc
import weakref

from ..config import config
from ..expr.graph import graph_size
from ..expr.node import as_variable
from .algebra import ALGEBRA, reads_context
from .canonical import collected_ops
from .driver import Facts, Rewriter, _say
from .pattern import RuleTable
from .stability import STABILITY

# settle runs at most (a fixed number keeps the time linear; one run that
# fires nothing is the norm, deep chains of use-count changes may want more)
MAX_SETTLE = 4

# stability rules come first: where one and an algebra rule both match a node
# (log(1 - sigmoid(x)), exp(x) - 1), the stable form wins
RULES = RuleTable(STABILITY, ALGEBRA, reads_context=reads_context)


def pipeline(outputs, trace=False):
    """The passes, in order. Returns the new outputs and whether the last run
    fired nothing (the result is then a proven fixed point)."""
    # 1. rewrite: every rule, bottom-up, each node to a fixed point: constant
    #    folding, identities, canonical sums and products, shape no-ops, and
    #    stability rewrites matched on that canonical form.
    facts = Facts()  # what the passes learn about nodes, shared between them
    outputs, fired = run_pass("rewrite", outputs, trace, facts)
    # 2. settle: run again on the rewritten graph, whose use counts (which
    #    decide what a sum or product may absorb) have changed, until a run
    #    fires nothing. Usually one run, which rewrites nothing: a check that
    #    no rule fires (Rewriter.fires_nothing) stands for that run.
    for _ in range(MAX_SETTLE):
        if not fired:
            break
        if Rewriter("settle", RULES, collected_ops, False, facts).fires_nothing(outputs):
            if trace:
                _say("settle: no rule fires on the rewritten graph")
            return outputs, True
        outputs, fired = run_pass("settle", outputs, trace, facts)
    return outputs, not fired


def run_pass(name, outputs, trace, facts=None):
    rewriter = Rewriter(name, RULES, collected_ops, trace, facts)
    outputs = rewriter.run(outputs)
    if trace:
        _say(f"after {name}: {graph_size(outputs)} nodes, {rewriter.fired} rewrites")
        if graph_size(outputs) <= 60:
            from ..expr.printing import pprint
            _say("\n" + pprint(outputs))
    return outputs, rewriter.fired


# output node -> the results (tuples of output ids) it belongs to
_RESULTS = weakref.WeakKeyDictionary()


def simplify(expr_or_list, trace=False):
    """Equivalent expression(s) after the rewrite pipeline: constant folding,
    identities, canonical forms, CSE (by hash-consing), stability rewrites.

    Idempotent: simplify(simplify(e)) is simplify(e) (a result is normally a
    proven fixed point; results are also remembered, so this holds even for a
    graph that needed more than MAX_SETTLE runs). The same graph gives the same
    result in every process. With trace=True (or KGEN_DEBUG=1) each rule that
    fires is printed with where it fired, and the graph after each pass."""
    single = not isinstance(expr_or_list, (list, tuple))
    outputs = [as_variable(e) for e in ([expr_or_list] if single else expr_or_list)]
    trace = trace or config.debug
    key = tuple(map(id, outputs))
    if not (outputs and all(key in _RESULTS.get(o, ()) for o in outputs)):
        # the passes allocate many small, acyclic objects: the cycle collector
        # would rescan the growing heap for nothing (a third of the time at 100k)
        collecting = gc.isenabled()
        gc.disable()
        try:
            outputs, settled = pipeline(outputs, trace)
        finally:
            if collecting:
                gc.enable()
        if trace and not settled:
            _say(f"not settled after {MAX_SETTLE} settle runs (still equivalent)")
        key = tuple(map(id, outputs))
        for o in outputs:
            _RESULTS.setdefault(o, set()).add(key)
    return outputs[0] if single else list(outputs)
