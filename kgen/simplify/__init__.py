"""The simplifier: rewrite rules as data, one fixpoint driver, one pipeline.

    kg.simplify(expr)            -> an equivalent, smaller, numerically safer expr
    kg.simplify([e1, e2])        -> a list (shared parts stay shared)
    kg.simplify(e, trace=True)   -> also print each rule as it fires (KGEN_DEBUG=1 too)

  pattern.py    the pattern language and rule tables ((pattern, function) pairs)
  driver.py     the one fixpoint driver: bottom-up, iterative, memoized
  canonical.py  canonical sums and products (flatten, collect, fold, order)
  algebra.py    folding, identities from op facts, shape ops, reductions
  stability.py  log1p, expm1, softplus, log_softmax, logsumexp...

`pipeline` below is the whole recipe. Common subexpressions need no pass:
nodes are hash-consed, so rebuilding an expression on the same inputs gives
the same object, and every rewrite lands on the shared node.
"""
from ..config import config
from ..expr.graph import graph_size
from ..expr.node import as_variable
from .algebra import ALGEBRA, reads_context
from .canonical import collected_ops
from .driver import Rewriter, _say
from .pattern import RuleTable
from .stability import STABILITY

# runs of the last pass before giving up on reaching a fixed point (two is the
# norm: one that rewrites, one that confirms nothing is left to do)
MAX_ROUNDS = 6

# stability rules come first: where one and an algebra rule both match a node
# (1 - sigmoid(x), exp(x) - 1), the stable form wins
RULES = RuleTable(STABILITY, ALGEBRA, reads_context=reads_context)


def pipeline(outputs, trace=False):
    """The passes, in order."""
    # 1. rewrite: every rule, bottom-up, each node to a fixed point: constant
    #    folding, identities, canonical sums and products, shape no-ops, then
    #    stability rewrites matched on that canonical form.
    outputs, fired = run_pass("rewrite", outputs, trace)
    # 2. settle: run again with the use counts of the rewritten graph (which
    #    decide what is flattened) until a run fires nothing; that run proves
    #    the result a fixed point, which makes simplify idempotent. Usually one
    #    run, which rewrites nothing.
    for _ in range(MAX_ROUNDS):
        if not fired:
            break
        outputs, fired = run_pass("settle", outputs, trace)
    return outputs


def run_pass(name, outputs, trace):
    rewriter = Rewriter(name, RULES, collected_ops, trace)
    outputs = rewriter.run(outputs)
    if trace:
        _say(f"after {name}: {graph_size(outputs)} nodes, {rewriter.fired} rewrites")
        if graph_size(outputs) <= 60:
            from ..expr.printing import pprint
            _say("\n" + pprint(outputs))
    return outputs, rewriter.fired


def simplify(expr_or_list, trace=False):
    """Equivalent expression(s) after the rewrite pipeline, to a fixed point:
    simplify(simplify(e)) is simplify(e). The same graph gives the same result
    in every process. With trace=True (or KGEN_DEBUG=1) each rule that fires is
    printed with where it fired, and the graph after each pass."""
    single = not isinstance(expr_or_list, (list, tuple))
    outputs = [as_variable(e) for e in ([expr_or_list] if single else expr_or_list)]
    outputs = pipeline(outputs, trace or config.debug)
    return outputs[0] if single else list(outputs)
