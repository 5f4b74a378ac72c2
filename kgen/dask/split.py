"""Where a graph splits when its inputs are chunked along their rows.

Some inputs arrive as Dask arrays chunked along axis 0 (their *rows*). Walking
the graph from them, every node is one of:

- row-aligned: one of its axes is the chunked one, so each chunk's part of
  the value is computed from the chunks' parts of the inputs alone;
- a combine point: a reduction over that axis (sum, prod, max, min; a
  `sum_to` that removes it; a matmul contracting over it, as `X.T @ delta`).
  Run on one chunk it gives a partial value; the partials of all chunks,
  combined by add, multiply, maximum or minimum, give the value itself;
- replicated: a value without the chunked axis (shared variables, NumPy
  arguments, combined values and whatever is computed from them only).

`x.shape[0]` of a row-aligned value is the data set's length (a replicated
int, known before anything runs), except as the stop of
`arange(0, x.shape[0])` indexing the rows of row-aligned values (the
`p[arange(n), y]` of a cross-entropy), where each chunk counts its own rows.

Values whose chunk kernel needs a combined value wait one *stage*: stage s
computes the partials whose operands need s combines before them. mean is
sum / length; var and std, x - mean(x) squared and summed, take two stages.
Anything else that reads along the chunked axis (sort, cumsum, reshape,
slicing, an arange used as values, random draws) is a KgenTypeError naming
the op and the axis.
"""
from ..errors import KgenTypeError
from ..expr.graph import toposort
from ..expr.node import Constant, Input, Shared
from ..expr.ops.elementwise import Elementwise
from ..expr.ops.random import RandomOp

# how each reduction's per-chunk partials combine (a NumPy ufunc's name)
COMBINE = {"sum": "add", "sum_to": "add", "matmul": "add", "prod": "multiply",
           "max": "maximum", "min": "minimum"}


class Unsplittable(KgenTypeError):
    """The graph reads along the chunked axis in a way chunks cannot share."""


class Split:
    """The analysis of one graph for a set of row-chunked inputs.

    row:      id(node) -> its chunked axis, for row-aligned nodes
    combines: the combine points, in topological order; kind[id] the ufunc
              combining their partials, stage[id] the stage computing them
    lengths:  the `x.shape[0]`-like nodes meaning the data set's length
    local:    id -> node of the `arange(0, x.shape[0])` row counters
    level:    id(node) -> the first stage whose chunk kernel can compute it
    """

    def __init__(self, exprs, row_inputs):
        self.row, self.level, self.kind, self.stage = {}, {}, {}, {}
        self.combines, self.lengths, self.local = [], [], {}
        for v in row_inputs:
            self.row[id(v)] = 0
        for node in toposort(exprs):
            self._visit(node)

    def rows(self, node):
        return self.row.get(id(node))

    def stages(self):
        """The number of chunk stages the combine points need."""
        return 1 + max((self.stage[id(c)] for c in self.combines), default=0)

    def _visit(self, node):
        ins = node.inputs
        self.level[id(node)] = max((self.level[id(i)] for i in ins), default=0)
        if node.op is None:
            return
        if node.op.name not in ("gather", "scatter_add") and any(id(i) in self.local for i in ins):
            raise Unsplittable(f"{node.op.name}: reads arange(0, x.shape[0]) along axis 0, the "
                               f"chunked axis, as values; only indexing the rows of chunked "
                               f"values with it can be split")
        counter = node.op.name == "arange" and any(n is node.inputs[1] for n in self.lengths)
        if not counter and all(id(i) not in self.row for i in ins):
            return
        if isinstance(node.op, RandomOp):
            raise Unsplittable(f"{node.op.name}: random draws along the chunked axis would "
                               f"repeat in every chunk; draw them outside the chunked data")
        rule = _RULES.get(node.op.name)
        if rule is None and isinstance(node.op, Elementwise):
            rule = _elementwise
        if rule is None:
            raise Unsplittable(f"{node.op.name} over a value chunked along axis "
                               f"{self.rows(_first_row(self, ins))} cannot be split into "
                               f"chunks; compute it on in-memory (NumPy) data")
        verdict = rule(self, node)
        if verdict == "length":
            self.lengths.append(node)
            self.level[id(node)] = 0
        elif verdict == "local":
            self.local[id(node)] = node
            self.row[id(node)] = 0
        elif verdict == "combine":
            self.kind[id(node)] = COMBINE[node.op.name]
            self.stage[id(node)] = self.level[id(node)]
            self.level[id(node)] += 1
            self.combines.append(node)
        elif verdict is not None:
            self.row[id(node)] = verdict


def _first_row(split, nodes):
    return next(n for n in nodes if split.rows(n) is not None)


def _along(node, axis, what=None):
    return Unsplittable(f"{node.op.name}: {what or 'reads'} along axis {axis}, the chunked "
                        f"axis, which cannot be split into chunks")


def _agree(node, axes):
    """The one output axis the operands' chunked axes map to."""
    axes = set(a for a in axes if a is not None)
    if len(axes) > 1:
        raise Unsplittable(f"{node.op.name}: operands chunked along different axes "
                           f"{sorted(axes)} of the result")
    return axes.pop() if axes else None


def _elementwise(split, node):
    nd = node.ndim
    return _agree(node, [None if split.rows(i) is None else split.rows(i) + nd - i.ndim
                         for i in node.inputs])


def _reduce(split, node):
    r = split.rows(node.inputs[0])
    axes = node.attr("axis")
    if r in axes:
        return "combine" if node.op.name in COMBINE else _raise(_along(node, r, "reduces"))
    return r if node.attr("keepdims") else r - sum(1 for a in axes if a < r)


def _raise(exc):
    raise exc


def _dimshuffle(split, node):
    r = split.rows(node.inputs[0])
    pattern = node.attr("pattern")
    if r not in pattern:
        raise _along(node, r, "drops")
    return pattern.index(r)


def _shape_i(split, node):
    r = split.rows(node.inputs[0])
    return "length" if node.attr("axis") == r else None


def _arange(split, node):
    start, stop, step = node.inputs
    if (isinstance(start, Constant) and start.value == 0 and isinstance(step, Constant)
            and step.value == 1 and any(stop is n for n in split.lengths)):
        return "local"
    raise Unsplittable("arange: counts along axis 0, the chunked axis, as values; only "
                       "arange(0, x.shape[0]) indexing the rows of chunked values can be split")


def _matmul(split, node):
    a, b = node.inputs
    ra, rb = split.rows(a), split.rows(b)
    ka, kb = a.ndim - 1, (0 if b.ndim == 1 else b.ndim - 2)
    if ra == ka or rb == kb:
        if ra == ka and rb == kb:
            return "combine"
        raise _along(node, ra if ra == ka else rb, "contracts only one operand")
    nd = node.ndim
    batch = nd - (a.ndim >= 2) - (b.ndim >= 2)

    def out_axis(r, operand, free_axis, free_out):
        if r is None:
            return None
        if r == free_axis:
            return free_out
        return r + batch - (operand.ndim - 2)  # a batch axis

    return _agree(node, [out_axis(ra, a, a.ndim - 2, nd - 1 - (b.ndim >= 2)),
                         out_axis(rb, b, b.ndim - 1, nd - 1)])


def _sum_to(split, node):
    g, x = node.inputs
    rg, rx = split.rows(g), split.rows(x)
    target = rg - (g.ndim - x.ndim)
    if rx is not None and rx == target:
        return rx
    if rx is not None:
        raise _along(node, rx, "sums")
    return "combine"


def _gather(split, node):
    x, idx = node.inputs[0], node.inputs[1:]
    rx = split.rows(x)
    lead = node.ndim - (x.ndim - len(idx))
    index_rows = []
    for k, i in enumerate(idx):
        ri = split.rows(i)
        if k == rx and id(i) not in split.local:
            raise _along(node, rx, "indexes by values")
        index_rows.append(None if ri is None else ri + lead - i.ndim)
    if rx is not None and rx >= len(idx):
        index_rows.append(rx - len(idx) + lead)
    elif rx is not None and all(id(i) not in split.local for i in idx):
        raise _along(node, rx, "indexes")
    return _agree(node, index_rows)


def _scatter_add(split, node):
    x, g, idx = node.inputs[0], node.inputs[1], node.inputs[2:]
    rx = split.rows(x)
    if rx is None or rx >= len(idx) or id(idx[rx]) not in split.local:
        raise _along(node, 0 if rx is None else rx, "scatters")
    return rx


def _subtensor(split, node):
    """Basic indexing: a full slice keeps the chunked axis; ints, other slices and
    new axes elsewhere only move it."""
    r = split.rows(node.inputs[0])
    if any(split.rows(i) is not None for i in node.inputs[1:]):
        raise _along(node, r, "takes bounds from values")
    axis = out = 0
    for entry in node.attr("index"):
        if entry[0] == "n":
            out += 1
            continue
        if axis == r:
            if entry[:3] != ("s", None, None) or entry[3] not in (None, 1):
                raise _along(node, r, "slices or indexes")
            return out
        out += entry[0] == "s"
        axis += 1
    return out + r - axis


def _along_axis(split, node):
    r = split.rows(node.inputs[0])
    if node.attr("axis") == r:
        raise _along(node, r)
    return r


def _specify_shape(split, node):
    r = split.rows(node.inputs[0])
    shape = node.type.shape
    if shape[r] is not None:
        raise _along(node, r, "fixes the length")
    return r


def _concatenate(split, node):
    axis = node.attr("axis")
    r = _agree(node, [split.rows(i) for i in node.inputs])
    if axis == r or any(split.rows(i) is None for i in node.inputs):
        raise _along(node, r, "joins")
    return r


_RULES = {
    "sum": _reduce, "prod": _reduce, "max": _reduce, "min": _reduce,
    "argmax": _reduce, "argmin": _reduce,
    "dimshuffle": _dimshuffle, "shape_i": _shape_i, "arange": _arange,
    "subtensor": _subtensor, "matmul": _matmul, "sum_to": _sum_to, "gather": _gather, "scatter_add": _scatter_add,
    "cumsum": _along_axis, "cumprod": _along_axis, "sort": _along_axis,
    "argsort": _along_axis, "specify_shape": _specify_shape, "concatenate": _concatenate,
}


def leaves(exprs):
    """The Input and Shared leaves the expressions read."""
    return [n for n in toposort(exprs) if isinstance(n, (Input, Shared))]
