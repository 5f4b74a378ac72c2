"""One loop for a scan and its widened copy.

The gradient of a scan (kgen/derive/scan_grad.py) reads values the forward
step computes anyway (gate activations) from a copy of the forward scan that
also outputs them. Where a kernel computes both the scan and that copy (the
loss and its gradient), only the copy runs: the scan's outputs are its first
ones. Matched structurally (same outer inputs, same placeholders, the scan's
outputs a prefix of the copy's), so it holds for any pair built that way.
"""
from ..expr.clone import substitute
from ..expr.graph import toposort
from ..expr.ops.scan import scan, scan_out

_SAME = ("inner_in", "seq_taps", "has_until", "label", "truncate")


def merge_scans(exprs, order=None):
    """`exprs` with every scan that another scan of theirs widens read from that
    one (`order`: toposort(exprs), where the caller has it)."""
    order = toposort(list(exprs)) if order is None else order
    scans = [n for n in order if n.op is scan]
    if len(scans) < 2:
        return list(exprs)
    into = {}
    for a in scans:
        wider = [b for b in scans if b is not a and _widens(b, a)]
        if wider:
            into[id(a)] = max(wider, key=lambda b: len(b.attr("inner_out")))
    pairs = [(n, scan_out(into[id(n.inputs[0])], part=n.attr("part"))) for n in order
             if n.op is scan_out and id(n.inputs[0]) in into]
    return substitute(list(exprs), pairs) if pairs else list(exprs)


def _widens(b, a):
    """Whether scan b computes everything scan a does, a's outputs first."""
    if len(b.inputs) != len(a.inputs) or any(x is not y for x, y in zip(a.inputs, b.inputs)):
        return False
    if a.attr("has_until") or any(a.attr(k) != b.attr(k) for k in _SAME):
        return False
    ia, ib = a.attr("inner_out"), b.attr("inner_out")
    ta, tb = a.attr("out_taps"), b.attr("out_taps")
    return (len(ib) > len(ia) and all(x is y for x, y in zip(ia, ib))
            and tuple(tb[:len(ta)]) == tuple(ta))
