"""Input projections out of the loop: a scan's `x_t @ W` as one GEMM.

A body product of a sequence's row and a non-sequence (an LSTM's `x_t @ W`)
is the same GEMM at every step, with a few rows each. Computed once over all
the steps (`X @ W`, T*B rows at a time) before the loop, it runs at the
GEMM's full speed, and the body reads its row t as a new sequence. Its
gradient (BPTT) then follows: the reverse loop hands back the products'
per-step gradients as a sequence, and `X @ W`'s own rule turns them into one
GEMM for W (and one for X), after the loop.

Only products whose other operand does not depend on the step are hoisted
(a W computed from h_{t-1} stays in the body), and only in loops that run all
their steps (with until(), most rows could be wasted).
"""
from .expr.clone import substitute
from .expr.graph import toposort, values_read
from .expr.node import Input
from .expr.ops import api


def hoist_products(seqs, inner_in, inner_out, nonseq_holders):
    """(seqs, inner_in, inner_out) with each hoistable product read from a new
    sequence. `seqs` is [(outer sequence, taps)]; the first placeholders of
    `inner_in` are the sequences' rows, one per tap, in order;
    `nonseq_holders` maps id(placeholder) -> the outer non-sequence it stands for."""
    rows = _row_placeholders(seqs, inner_in)
    found = []   # (product node, outer sequence it reads)
    read = values_read(inner_out)   # (a product that only lends its shape is never computed)
    for n in toposort(inner_out):
        if n.op is None or n.op.name != "matmul" or id(n) not in read:
            continue
        a, b = n.inputs
        if id(a) in rows and id(b) in nonseq_holders and a.ndim in (1, 2) and b.ndim == 2:
            x = rows[id(a)]
            found.append((n, api.dot(x, nonseq_holders[id(b)])))
        elif id(b) in rows and id(a) in nonseq_holders and b.ndim == 1 and a.ndim == 2:
            # W @ x_t = x_t @ W.T, row by row
            x = rows[id(b)]
            found.append((n, api.dot(x, api.transpose(nonseq_holders[id(a)]))))
    if not found:
        return seqs, inner_in, inner_out
    holders = [Input(n.type, f"{n.inputs[0].name or 'x'}_{n.inputs[1].name or 'w'}")
               for n, _ in found]
    inner_out = substitute(inner_out, [(n, h) for (n, _), h in zip(found, holders)])
    nrows = sum(len(t) for _, t in seqs)
    seqs, inner_in = list(seqs), list(inner_in)
    seqs += [(y, [0]) for _, y in found]
    inner_in[nrows:nrows] = holders
    return _drop_unread(seqs, inner_in, inner_out)


def _row_placeholders(seqs, inner_in):
    """id(row placeholder) -> the outer rows it walks (x[t + tap - taps[0]] for
    t = 0, 1, ...: the sequence from row tap - taps[0] on)."""
    rows, k = {}, 0
    for x, taps in seqs:
        for t in taps:
            start = t - taps[0]
            rows[id(inner_in[k])] = x[start:] if start else x
            k += 1
    return rows


def _drop_unread(seqs, inner_in, inner_out):
    """Without the sequences the body no longer reads (their rows were only
    multiplied): the step count was taken from them already."""
    read = {id(n) for n in toposort(inner_out)}
    keep_seqs, keep_in, k = [], [], 0
    for x, taps in seqs:
        mine = inner_in[k:k + len(taps)]
        k += len(taps)
        if any(id(p) in read for p in mine):
            keep_seqs.append((x, taps))
            keep_in += mine
    return keep_seqs, keep_in + inner_in[k:], inner_out
