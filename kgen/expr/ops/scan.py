"""The loop primitive: `scan`, a closed inner graph run once per step.

A scan node's inputs are its outer values, in this order:
    n_steps (an int64 scalar), sequences, initial states, non-sequences
and its attributes describe the loop:
    inner_in    the placeholders the inner graph reads, in Theano's fn order:
                each sequence's taps, each state's taps, then the non-sequences
    inner_out   one expression per output (states first where they have taps:
                outputs are in outputs_info order), then the `until` condition
                when there is one (`has_until`)
    seq_taps    per sequence, its taps (sorted)
    out_taps    per output, its taps (sorted; () for an output that is not fed back)
    label       the scan's name (messages, comments)
    truncate    truncate_gradient (-1: the whole sequence)
One scan node computes every output, so its own value is a token (an int64
scalar nobody reads); `scan_out(node, part=k)` is output k: all its steps,
stacked along a new leading axis. The lowering (kgen/lower/scan.py) keeps only
the last steps of an output whose readers only read its last row.

The derivative (back-propagation through time) is a reverse scan built from
the same op: kgen/derive/scan_grad.py.
"""
import numpy as np

from ...errors import KgenTypeError, ShapeError
from ..node import Constant
from ..op import Op
from ..types import TensorType


def layout(attrs):
    """(sequences, initial states, non-sequences) counts of a scan's outer inputs."""
    nseq = len(attrs["seq_taps"])
    ninit = sum(1 for taps in attrs["out_taps"] if taps)
    nns = len(attrs["inner_in"]) - sum(map(len, attrs["seq_taps"])) \
        - sum(map(len, attrs["out_taps"]))
    return nseq, ninit, nns


def init_has_axis(taps):
    """A state fed back only as h[t-1] starts from a value of its own type;
    any other taps read rows of an initial value with a leading axis."""
    return tuple(taps) != (-1,)


class Scan(Op):
    """The loop: see the module docstring."""

    multi = True  # the value is one array per output (scan_out picks them)
    reads = None

    def infer(self, inputs, attrs):
        n = inputs[0]
        if n.ndim != 0 or n.dtype != "int64":
            raise KgenTypeError(f"scan {attrs['label']!r}: n_steps must be an int64 scalar")
        return TensorType("int64", ())

    def impl(self, arrays, attrs):
        from ..evaluate import evaluate
        return run_reference(evaluate, arrays, attrs)


def run_reference(evaluate, arrays, attrs):
    """The NumPy reference of a scan: a Python loop over the inner graph."""
    label = attrs["label"]
    nseq, ninit, _ = layout(attrs)
    n = int(arrays[0])
    seqs, inits = arrays[1:1 + nseq], arrays[1 + nseq:1 + nseq + ninit]
    nonseqs = list(arrays[1 + nseq + ninit:])
    if n <= 0:
        raise ShapeError(f"scan {label!r}: n_steps must be positive, got {n}")
    for k, (x, taps) in enumerate(zip(seqs, attrs["seq_taps"])):
        if np.shape(x)[0] < n + taps[-1] - taps[0]:
            raise ShapeError(f"scan {label!r}: sequence {k} is too short for n_steps: it has "
                             f"{np.shape(x)[0]} rows, {n} steps with taps {list(taps)} need "
                             f"{n + taps[-1] - taps[0]}")
    history, init_iter = [], iter(inits)
    for k, taps in enumerate(attrs["out_taps"]):
        if not taps:
            history.append([])
            continue
        init = np.asarray(next(init_iter))
        if init_has_axis(taps):
            if init.shape[0] < -taps[0]:
                raise ShapeError(f"scan {label!r}: output {k} reads {-taps[0]} steps back "
                                 f"but its initial value has {init.shape[0]} rows")
            history.append(list(init[init.shape[0] + taps[0]:]))
        else:
            history.append([init])
    outs = [[] for _ in attrs["out_taps"]]
    inner_out = list(attrs["inner_out"])
    for t in range(n):
        values = []
        for x, taps in zip(seqs, attrs["seq_taps"]):
            values += [x[t + k - taps[0]] for k in taps]
        for hist, taps in zip(history, attrs["out_taps"]):
            values += [hist[len(hist) + k] for k in taps]
        got = evaluate(inner_out, dict(zip(attrs["inner_in"], values + nonseqs)))
        for k, (value, taps) in enumerate(zip(got, attrs["out_taps"])):
            want = attrs["inner_out"][k]
            if taps and np.shape(value) != np.shape(history[k][-1]):
                raise ShapeError(f"scan {label!r}: output {k} has shape {np.shape(value)} at "
                                 f"step {t}, but its state has shape {np.shape(history[k][-1])}")
            outs[k].append(np.asarray(value, dtype=want.dtype))
            if taps:
                history[k] = history[k][1:] + [outs[k][-1]]
        if attrs["has_until"] and bool(got[-1]):
            break
    return tuple(np.stack(o) for o in outs)


def _pretty(node):
    return f"scan[{node.attr('label')}]" + "(" + ", ".join(
        "{%d}" % k for k in range(len(node.inputs))) + ")"


def _scan_grad(node, g):
    from ...derive.scan_grad import scan_vjp
    return scan_vjp(node, g)


scan = Scan("scan", vjp_rule=_scan_grad, pretty=_pretty)


class ScanOut(Op):
    """scan_out(node, part=k): output k of a scan, every step along axis 0."""

    def infer(self, inputs, attrs):
        (s,) = inputs
        if s.op is not scan:
            raise KgenTypeError("scan_out: the input must be a scan node")
        sattrs = dict(s.attrs)
        inner = sattrs["inner_out"][attrs["part"]]
        n = s.inputs[0]
        steps = int(n.value) if isinstance(n, Constant) and not sattrs["has_until"] else None
        return TensorType(inner.dtype, (steps,) + inner.type.shape)

    def impl(self, arrays, attrs):
        return arrays[0][attrs["part"]]


def _scan_out_grad(node, g):
    # the gradient of one output is handed to the scan node's rule, which
    # receives every output's gradient at once (kgen/derive/scan_grad.py)
    return [(node.attr("part"), g)]


scan_out = ScanOut("scan_out", vjp_rule=_scan_out_grad,
                   pretty=lambda n: "{0}" + f"[{n.attr('part')}]")
