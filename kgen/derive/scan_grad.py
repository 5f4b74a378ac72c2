"""Back-propagation through time: the derivative of a scan is a reverse scan.

Forward step t computes outs_t = F(x rows, h[t + tap] for each state tap,
non-sequences). Walking t from the last step to the first, the reverse scan
carries, per float state k with deepest tap -L, L gradients c_0..c_{L-1}:
c_j is what later steps have sent to h[t - j] so far. At step t
    ct_k = g_k[t] + c_0                     (h_t's whole gradient)
    d    = vjp of F at step t with cotangents ct (in kgen ops)
    c'_j = c_{j+1} + d[tap -(j+1)]          (c_L = 0)
    acc' = acc + d[non-sequence]            (their gradients, summed over steps)
and outputs d[sequence tap] per step, which are placed back into the
sequences' rows. After the first step the carries are the gradients of the
initial values. The reverse scan reads the forward outputs (all their steps)
and is built with kgen.scan itself, so it can be differentiated again.
`truncate_gradient` = k runs it over the last k steps only.
"""
from ..errors import KgenTypeError
from ..expr.clone import substitute
from ..expr.node import Input
from ..expr.ops import api
from ..expr.ops.everyday import inc_subtensor
from ..expr.graph import toposort, values_read
from ..expr.ops.scan import init_has_axis, layout, scan as scan_op, scan_out
from ..expr.types import is_float


def scan_vjp(node, grads):
    """The scan node's rule: `grads` is [(part, gradient of that output)]."""
    from ..scan_module import scan
    from .reverse import vjp
    attrs = dict(node.attrs)
    label = attrs["label"]
    if attrs["has_until"]:  # as in Theano: the reverse loop would need the steps taken
        raise KgenTypeError(f"grad: scan {label!r} stops with until(), which has no gradient")
    nseq, ninit, nns = layout(attrs)
    seq_taps, out_taps = attrs["seq_taps"], attrs["out_taps"]
    nout = len(out_taps)
    inner_in, inner_out = list(attrs["inner_in"]), list(attrs["inner_out"][:nout])
    n = node.inputs[0]
    seqs = list(node.inputs[1:1 + nseq])
    inits = list(node.inputs[1 + nseq:1 + nseq + ninit])
    nonseqs = list(node.inputs[1 + nseq + ninit:])
    parts = [scan_out(node, part=k) for k in range(nout)]
    g_of = {}
    for k, g in grads:
        g_of[k] = g if k not in g_of else g_of[k] + g
    floats = [is_float(e.dtype) for e in inner_out]
    steps = n if attrs["truncate"] < 0 else api.minimum(n, attrs["truncate"])

    def rev(x, start):
        """Rows start .. start + n - 1 of x, last to first (the reverse scan's
        step s reads forward step n - 1 - s), cut to the steps walked."""
        return x[start:start + n][::-1][:steps]

    # the reverse scan's sequences: the forward per-step values, reversed
    r_seqs, holders = [], []      # outer sequence, the forward placeholder it feeds
    holder_iter = iter(inner_in)
    for x, taps in zip(seqs, seq_taps):
        for t in taps:
            r_seqs.append(rev(x, t - taps[0]))
            holders.append(next(holder_iter))
    init_iter = iter(inits)
    lags = []
    for k, taps in enumerate(out_taps):
        if not taps:
            lags.append(0)
            continue
        init = next(init_iter)
        depth = -taps[0]
        lags.append(depth if floats[k] else 0)
        head = init[init.shape[0] - depth:] if init_has_axis(taps) else api.expand_dims(init, 0)
        full = api.concatenate([head, parts[k]], axis=0)   # h[-depth] ... h[n-1]
        for t in taps:
            r_seqs.append(rev(full, depth + t))
            holders.append(next(holder_iter))
    ns_holders = list(holder_iter)
    g_holders = {}
    for k in range(nout):
        if floats[k] and k in g_of:
            r_seqs.append(rev(api.cast(g_of[k], inner_out[k].dtype), 0))
            g_holders[k] = Input(inner_out[k].type, f"g_{inner_out[k].name or k}")
    # carries: per float state, its L pending gradients; per float non-sequence, a sum
    carry_holders, carry_inits = [], []
    state_type = {}
    for k, e in enumerate(inner_out):
        for j in range(lags[k]):
            carry_holders.append(Input(e.type, f"c{j}_{e.name or k}"))
            state_type[(k, j)] = len(carry_holders) - 1
            carry_inits.append(_zeros_state(node, k, e))
    # the step's gradient, over the forward placeholders
    seeds = []
    for k, e in enumerate(inner_out):
        if not floats[k]:
            continue
        ct = g_holders.get(k)
        if lags[k]:
            c0 = carry_holders[state_type[(k, 0)]]
            ct = c0 if ct is None else ct + c0
        if ct is not None:
            seeds.append((e, ct))
    wrt = holders + ns_holders
    d = dict(zip(map(id, wrt), _grads(vjp, seeds, wrt)))
    # a non-sequence's step gradient P_t^T @ Q_t, P_t a row of a reverse
    # sequence: Q_t becomes an output, and the sum over the steps one GEMM of
    # the stacked rows after the loop (not a rank-B update per step); the
    # rest of its gradient is summed in the loop
    row_of = {id(h): r for h, r in zip(holders, r_seqs)}
    ns_float, after = [], {}   # accumulated in the loop; j -> [(P rows, k of Q output)]
    q_outs = []
    for j, v in enumerate(nonseqs):
        dj = d.get(id(ns_holders[j]))
        if dj is None or not is_float(v.dtype):
            continue
        rest = []
        for term in _terms(dj):
            p = _transposed_row(term, row_of)
            if p is None:
                rest.append(term)
            else:
                after.setdefault(j, []).append((row_of[id(p)], len(q_outs)))
                q_outs.append(term.inputs[1])
        if rest:
            d[id(ns_holders[j])] = _sum(rest, dj)
            ns_float.append(j)
    acc_holders = [Input(nonseqs[j].type, f"acc_{ns_holders[j].name or j}") for j in ns_float]
    step_outs = []
    h_iter = iter(holders[sum(map(len, seq_taps)):])
    for k, taps in enumerate(out_taps):  # new carries
        tap_holders = {t: next(h_iter) for t in taps}
        for j in range(lags[k]):
            nxt = carry_holders[state_type[(k, j + 1)]] if j + 1 < lags[k] else None
            dj = d.get(id(tap_holders.get(-(j + 1))))
            parts_ = [p for p in (nxt, dj) if p is not None]
            e = inner_out[k]
            step_outs.append(_sum(parts_, e))
    for h, j in zip(acc_holders, ns_float):
        step_outs.append(h + d[id(ns_holders[j])])
    seq_grads = []
    for h in holders[:sum(map(len, seq_taps))]:
        dj = d.get(id(h)) if is_float(h.dtype) else None
        seq_grads.append(dj)
        if dj is not None:
            step_outs.append(dj)
    step_outs += q_outs
    # the forward step's costly values the step gradient reads (gate
    # activations, products) are kept by the forward loop as extra outputs,
    # and read back here as sequences instead of being computed again
    kept, kept_holders, step_outs = _kept_values(step_outs, inner_out, inner_in)
    if kept:
        # a kept value that is an output already is read from that output
        part_of = {id(e): k for k, e in enumerate(inner_out)}
        extra = [n for n in kept if id(n) not in part_of]
        wide = _widened(node, extra) if extra else node
        moved = [(p, scan_out(wide, part=k)) for k, p in enumerate(parts)]
        r_seqs = substitute(r_seqs, moved) if r_seqs and extra else r_seqs
        carry_inits = substitute(carry_inits, moved) if carry_inits and extra else carry_inits
        after = {j: [(substitute([rows], moved)[0] if extra else rows, k) for rows, k in terms]
                 for j, terms in after.items()}
        where = {id(n): nout + k for k, n in enumerate(extra)}
        r_seqs += [rev(scan_out(wide, part=part_of.get(id(n), where.get(id(n)))), 0)
                   for n in kept]
    # the reverse scan: fn maps its placeholders onto the step graph's
    fn_inputs = holders + list(g_holders.values()) + kept_holders + carry_holders + \
        acc_holders + ns_holders

    def fn(*args):
        return substitute(step_outs, list(zip(fn_inputs, args)))

    infos = carry_inits + [api.zeros_like(nonseqs[j]) for j in ns_float] + \
        [None] * (sum(g is not None for g in seq_grads) + len(q_outs))
    outs, _ = scan(fn, sequences=r_seqs, outputs_info=infos, non_sequences=nonseqs, n_steps=steps,
                   name=f"grad_of_{label}", return_list=True)
    outs = iter(outs)
    carries = [next(outs) for _ in carry_holders]
    accs = [next(outs) for _ in acc_holders]
    # gradients per outer input: n_steps, sequences, initial values, non-sequences
    result = [None]
    pos = 0
    for x, taps in zip(seqs, seq_taps):
        gx = None
        for t in taps:
            if seq_grads[pos] is not None:
                rows = next(outs)[::-1]          # forward order, the last `steps` steps
                start = t - taps[0] + n - steps
                placed = inc_subtensor(api.zeros_like(x)[start:start + steps], rows)
                gx = placed if gx is None else gx + placed
            pos += 1
        result.append(gx)
    full_walk = None if attrs["truncate"] < 0 else api.cast(api.le(n, attrs["truncate"]), "int64")
    ci = iter(carries)
    for k, taps in enumerate(out_taps):
        if not taps:
            continue
        init = inits[len([1 for q in out_taps[:k] if q])]
        if not lags[k]:
            result.append(None)
            continue
        last = [next(ci)[-1] for _ in range(lags[k])]   # gradients of h[-1], h[-2], ...
        if init_has_axis(taps):
            rows = api.stack(last[::-1])
            gi = inc_subtensor(api.zeros_like(init)[init.shape[0] - lags[k]:], rows)
        else:
            gi = last[0]
        if full_walk is not None:
            gi = gi * api.cast(full_walk, gi.dtype)
        result.append(gi)
    qs = [next(outs) for _ in q_outs]
    ai = iter(accs)
    for j, v in enumerate(nonseqs):
        g = next(ai)[-1] if j in ns_float else None
        for rows, k in after.get(j, ()):
            term = api.cast(api.dot(api.transpose(_merge_steps(rows)), _merge_steps(qs[k])),
                            v.dtype)
            g = term if g is None else g + term
        result.append(g)
    return result


# forward values worth keeping rather than computing again in the reverse loop
KEPT_OPS = ("matmul", "tanh", "sigmoid", "exp", "log", "softplus", "erf")


def _kept_values(step_outs, inner_out, inner_in):
    """(kept, their placeholders, step_outs reading the placeholders): the
    forward body's per-step values of KEPT_OPS that the step gradient reads,
    latest first, each only while something still reads it."""
    fwd = toposort(list(inner_out))
    pos = {id(n): k for k, n in enumerate(fwd)}
    dep = {id(v) for v in inner_in}
    for n in fwd:
        if n.op is not None and any(id(i) in dep for i in n.inputs):
            dep.add(id(n))
    cands = [n for n in toposort(step_outs) if id(n) in pos and id(n) in dep and
             n.op is not None and n.op.name in KEPT_OPS and n.ndim >= 1]
    kept, holders = [], []
    for n in sorted(cands, key=lambda n: -pos[id(n)]):
        if id(n) in values_read(step_outs):
            h = Input(n.type, f"kept{len(kept)}")
            kept.append(n)
            holders.append(h)
            step_outs = substitute(step_outs, [(n, h)])
    return kept, holders, step_outs


def _widened(node, kept):
    """The forward scan with `kept` as extra per-step outputs (the lowering
    runs it in place of `node`: kgen/lower/scan_merge.py)."""
    attrs = dict(node.attrs)
    attrs["inner_out"] = tuple(attrs["inner_out"]) + tuple(kept)
    attrs["out_taps"] = tuple(attrs["out_taps"]) + ((),) * len(kept)
    return scan_op(*node.inputs, **attrs)


def _terms(e):
    """The terms of a sum (e itself when it is not an add)."""
    out, todo = [], [e]
    while todo:
        x = todo.pop()
        if x.op is not None and x.op.name == "add" and x.type.shape == e.type.shape and \
                all(i.type.shape == e.type.shape for i in x.inputs):
            todo += x.inputs[::-1]
        else:
            out.append(x)
    return out


def _transposed_row(term, row_of):
    """P when `term` is P^T @ Q with P a 2-d row of a reverse sequence, else None."""
    if term.op is None or term.op.name != "matmul" or term.inputs[1].ndim != 2:
        return None
    a = term.inputs[0]
    if a.op is None or a.op.name != "dimshuffle" or a.attr("pattern") != (1, 0):
        return None
    p = a.inputs[0]
    return p if id(p) in row_of and p.ndim == 2 and p.dtype == term.dtype else None


def _merge_steps(x):
    """(steps, rows, cols) -> (steps * rows, cols): every step's rows, stacked."""
    return api.reshape(x, (-1, x.shape[2]))


def _grads(vjp, seeds, wrt):
    """The step's gradients with respect to `wrt` (None where not float or
    not reached)."""
    if not seeds:
        return [None] * len(wrt)
    floats = [w for w in wrt if is_float(w.dtype)]
    got = vjp(seeds, floats, disconnected_inputs="ignore") if floats else []
    it = iter(got)
    return [next(it) if is_float(w.dtype) else None for w in wrt]


def _sum(parts, like):
    if not parts:
        return api.zeros_like(like)
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return api.cast(out, like.dtype)


def _zeros_state(node, k, e):
    """Zeros of output k's per-step shape, from the forward output itself."""
    return api.zeros_like(scan_out(node, part=k)[0], e.dtype)
