"""The lowering of a scan: one Step whose body is the inner graph, lowered
with the outer kernel's names and shape phase.

  - shape phase: the body's dims depend only on the outer dims, so the body's
    statements (and the checks that n_steps is positive, that the sequences
    are long enough and that each state keeps its shape) join the outer shape
    phase, before any memory is touched;
  - storage: each output is allocated once, at its full length; an output
    whose readers only read its last row (reduce, foldl, out[-1]) keeps a
    rolling buffer of as many rows as its taps need instead;
  - the body reads each per-step value through a pointer set at the top of
    each step (x[t], h[t-1], the non-sequences) and writes each output into
    its row of the outer buffer: no copies, no Python per step. Its
    temporaries are the kernel's, allocated once per call.
Rendered by templates/c/scan.c.jinja (a `for (t ...)` around the body's steps).
"""
import functools
from dataclasses import dataclass

from ..errors import KgenTypeError, ShapeError
from ..expr.graph import toposort
from ..expr.ops.scan import init_has_axis, layout
from .plan import Buffer, Param, Step, View


@dataclass
class _ScanInfo:
    inner: object                 # the body's lowering
    n: object                     # Int: the step count
    out_dims: list                # per output: [n] + its step's dims
    state_dims: list              # per output: its step's dims (None: not fed back)


class ScanRules:
    """Mixed into the lowering: the scan's shape rule and step."""

    def _scan_infos(self):
        if not hasattr(self, "_scans"):
            self._scans = {}
        return self._scans

    def _dims_scan(self, node, dims):
        attrs = dict(node.attrs)
        label = attrs["label"]
        nseq, ninit, _ = layout(attrs)
        n = self._int_value(node.inputs[0])
        if isinstance(n, int):
            if n <= 0:
                raise ShapeError(f"scan {label!r}: n_steps must be positive, got {n}")
        else:
            self.ints.check("positive", n, msg=f"scan {label!r}: n_steps must be positive")
        inner = _Body(self, node)
        holders = iter(attrs["inner_in"])
        for k, (d, taps) in enumerate(zip(dims[1:1 + nseq], attrs["seq_taps"])):
            need = self.ints.add(n, taps[-1] - taps[0], "scan_need")
            spare = self.ints.sub(d[0], need, "scan_spare")
            msg = (f"scan {label!r}: sequence {k} is too short for n_steps (with taps "
                   f"{list(taps)}); rows to spare:")
            self._nonneg(spare, msg)
            for _ in taps:
                inner.bind(next(holders), d[1:])
        init_dims = iter(dims[1 + nseq:1 + nseq + ninit])
        state_dims = []
        for k, taps in enumerate(attrs["out_taps"]):
            if not taps:
                state_dims.append(None)
                continue
            d = next(init_dims)
            if init_has_axis(taps):
                self._nonneg(self.ints.sub(d[0], -taps[0], "scan_rows"),
                             f"scan {label!r}: output {k} reads {-taps[0]} steps back, but "
                             f"its initial value is too short; rows to spare:")
                d = d[1:]
            state_dims.append(d)
            for _ in taps:
                inner.bind(next(holders), d)
        for d in dims[1 + nseq + ninit:]:
            inner.bind(next(holders), d)
        inner.order = toposort(list(attrs["inner_out"]))
        inner._shape_pass(list(attrs["inner_out"]))
        out_dims = []
        for k, (e, sd) in enumerate(zip(attrs["inner_out"], state_dims + [None])):
            got = inner.dims[id(e)]
            if sd is not None:
                for a, b in zip(got, sd):
                    self.ints.require_eq(a, b, f"scan {label!r}: output {k} must keep its "
                                               f"state's shape at each step")
            out_dims.append([n] + list(got))
        self._scan_infos()[id(node)] = _ScanInfo(inner, n, out_dims, state_dims)
        return []

    def _dims_scan_out(self, node, dims):
        return list(self._scan_infos()[id(node.inputs[0])].out_dims[node.attr("part")])

    def _nonneg(self, value, msg):
        if isinstance(value, int):
            if value < 0:
                raise ShapeError(f"{msg} {value}")
        else:
            self.ints.check("nonneg", value, msg=msg)

    # ---- the step -----------------------------------------------------------------
    def _emit_multi(self, node, claimed):
        attrs = dict(node.attrs)
        info = self._scan_infos()[id(node)]
        inner, n, label = info.inner, info.n, attrs["label"]
        nseq, ninit, _ = layout(attrs)
        # with until(), the loop may stop early: steps_run counts the steps taken
        steps_run = self.names.fresh("scan_len") if attrs["has_until"] else None
        holders = iter(attrs["inner_in"])
        fixed, per_step = [], []   # pointers set once / at each step
        for x, taps in zip(node.inputs[1:1 + nseq], attrs["seq_taps"]):
            view = self._rows(x, label)
            for k in taps:
                per_step.append(dict(var=inner.ptr[id(next(holders))], dtype=x.dtype,
                                     kind="seq", base=view.buf, offset=view.offset,
                                     stride=view.strides[0], shift=k - taps[0]))
        parts = {p.attr("part"): p for p in self.sched.users.get(id(node), [])}
        outs, inits = [], iter(node.inputs[1 + nseq:1 + nseq + ninit])
        out_params = []
        for k, (e, taps) in enumerate(zip(attrs["inner_out"], attrs["out_taps"])):
            buf, rows, last = self._scan_output(node, k, parts.get(k), taps, claimed, info,
                                                steps_run)
            elem = self.ints.product(info.out_dims[k][1:], "scan_elem")
            if taps:
                init = next(inits)
                iview = self._rows(init, label) if init_has_axis(taps) else self._scan_dense(init, label)
                irows = self.dims[id(init)][0] if init_has_axis(taps) else 1
                for t in taps:
                    per_step.append(dict(var=inner.ptr[id(next(holders))], dtype=e.dtype,
                                         kind="tap", base=buf, offset=0, stride=elem, tap=t,
                                         rows=rows, init=iview.buf, init_offset=iview.offset,
                                         init_rows=irows))
            part = parts.get(k)
            var = self.names.user("leaf", part.name if part is not None and part.name
                                  else f"{label}_out{k}")
            outs.append(dict(var=var, dtype=e.dtype, base=buf, stride=elem, rows=rows, last=last))
            out_params.append(Param(var, f"output {k}", e.dtype, e.ndim, e.type.shape,
                                    info.state_dims[k] or info.out_dims[k][1:], "output"))
        for x in node.inputs[1 + nseq + ninit:]:
            view = self._scan_dense(x, label)
            fixed.append(dict(var=inner.ptr[id(next(holders))], dtype=x.dtype, base=view.buf,
                              offset=view.offset))
        stop = None
        if steps_run:  # the condition is written to a one-element temporary
            stop = Buffer(self.names.fresh("scan_stop"), "bool", 1, "temp")
            self.buffers.append(stop)
            out_params.append(Param(stop.name, "until", "bool", 0, (), [], "output"))
        inner.steps = []
        inner._step_pass(list(attrs["inner_out"]), out_params)
        self.steps.append(Step("scan", f"scan {label}", dict(
            label=label, n=n, fixed=fixed, per_step=per_step, outs=outs, steps=inner.steps,
            steps_run=steps_run, stop=stop and stop.name,
            lengths=[p.name for p, run in getattr(self, "length_params", []) if run == steps_run],
            doc=[f"{o['var']} = {line}" for o, line in
                 zip(outs, (_short(e) for e in attrs["inner_out"]))])))

    def _scan_output(self, node, k, part, taps, claimed, info, steps_run):
        """The buffer output k is written to, its row count when it is a
        rolling buffer (None: every step is kept), and whether the loop copies
        its last row into an extra row after the rolling ones, where x[-1]
        reads it (a loop with until() knows its length only once it has run)."""
        dims = info.out_dims[k]
        elem = self.ints.product(dims[1:], "scan_elem")
        target = claimed.pop(id(part), None) if part is not None else None
        rows = last = None
        if target is None and part is not None and self._last_row_only(part):
            rows = (-taps[0] if taps else 0) + 1
        elif steps_run and part is not None:
            if target is None or self.sched.users.get(id(part)) or hasattr(self, "outer"):
                raise KgenTypeError(
                    f"scan {dict(node.attrs)['label']!r}: with until(), compiled kernels can "
                    f"only read an output's last step (out[-1]) or return the output itself; "
                    f"its length is known only after the loop")
            # a function output, allocated at its longest: NAME writes the steps
            # taken into a length argument, and the runtime cuts the output to it
            target.length = self._scan_length(node, steps_run)
        if target is not None:
            target.var = part
            buf = target.name
        else:
            size = self.ints.mul(rows + bool(steps_run), elem, "scan_size") if rows else \
                self.ints.product(dims, "scan_size")
            b = Buffer(self.names.fresh(f"scan{len(self.buffers)}"), part.dtype if part is not None
                       else dict(node.attrs)["inner_out"][k].dtype, size, "temp")
            self.buffers.append(b)
            buf = b.name
            if part is not None:
                self._temps[id(part)] = (part, b)
        if part is not None:
            strides = self.ints.contiguous_strides(dims, "scan_s")
            offset = 0
            if rows:  # row n-1 lives in slot (n-1) % rows: shift the view to it
                end = self.ints.sub(info.n, 1, "scan_last")
                last = bool(steps_run)  # with until: copied to slot `rows` after the loop
                slot = rows if last else self.ints.mod(end, rows, "scan_slot")
                offset = self.ints.mul(self.ints.sub(slot, end, "scan_shift"), elem, "scan_off")
            self.value[id(part)] = View(buf, part.dtype, offset, dims, strides, rows is None)
        return buf, rows, last

    def _scan_length(self, node, steps_run):
        """The length Param of this scan's until-cut outputs (one per scan)."""
        lengths = self.__dict__.setdefault("length_params", [])
        for p, run in lengths:
            if run == steps_run:
                return p.name
        label = dict(node.attrs)["label"]
        p = Param(self.names.fresh(f"{steps_run}_out"), f"steps of scan {label}", "int64", 0, (),
                  [], "length")
        lengths.append((p, steps_run))
        return p.name

    def _last_row_only(self, part):
        """Whether every reader of `part` reads only its last row (x[-1]...)."""
        users = self.sched.users.get(id(part), [])
        return bool(users) and all(
            u.op.name == "subtensor" and u.attr("index")[0] == ("i", -1) for u in users)

    def _rows(self, x, label):
        """A View of `x` whose rows are dense (any offset and row stride),
        copying it into a temporary when they are not."""
        view = self._value_of(x)
        dims = self.dims[id(x)]
        if isinstance(view, View) and \
                list(view.strides[1:]) == self.ints.contiguous_strides(dims[1:], "scan_s"):
            return view
        return self._scan_copy(x, label)

    def _scan_dense(self, x, label):
        view = self._value_of(x)
        dims = self.dims[id(x)]
        if isinstance(view, View) and list(view.strides) == \
                self.ints.contiguous_strides(dims, "scan_s"):
            return view
        return self._scan_copy(x, label)

    def _scan_copy(self, x, label):
        dims = self.dims[id(x)]
        b = Buffer(self.names.fresh(f"scan_in{len(self.buffers)}"), x.dtype,
                   self.ints.product(dims, "scan_size"), "temp")
        self.buffers.append(b)
        view = View(b.name, x.dtype, 0, dims, self.ints.contiguous_strides(dims, "scan_s"), True)
        self.steps.append(self._copy_loop(x, view, f"scan {label}: a dense copy of an input"))
        return view


def _short(e):
    from .comments import _one_line
    return _one_line(e, 120)


@functools.lru_cache(maxsize=None)
def _body_class():
    from .lower import _Lowering

    class Body(_Lowering):
        """The lowering of a scan's inner graph inside its kernel's."""

        def __init__(self, outer, node):
            self.outer, self.node = outer, node
            self.name, self.label, self.doc_exprs = outer.name, outer.label, None
            self.names, self.ints = outer.names, outer.ints
            self.small_graph = outer.small_graph
            self.buffers, self.features = outer.buffers, outer.features
            self.dims, self.value, self.params, self.steps = {}, {}, [], []
            self._slices, self._steps = {}, {}
            self.ptr = {}     # id(placeholder) -> the C pointer the body reads it through
            attrs = dict(node.attrs)
            nseq, ninit, _ = layout(attrs)
            nin = len(attrs["inner_in"])
            outer_ns = node.inputs[1 + nseq + ninit:]
            self._outer_of = dict(zip(map(id, attrs["inner_in"][nin - len(outer_ns):]), outer_ns))

        def bind(self, holder, dims):
            dims = list(dims)
            var = self.names.user("leaf", holder.name, len(self.ptr))
            self.ptr[id(holder)] = var
            self.dims[id(holder)] = dims
            self.value[id(holder)] = View(var, holder.dtype, 0, dims,
                                          self.ints.contiguous_strides(dims, "scan_s"), True)

        def _value_arg(self, var):
            # a size in the body read from a 0-d int non-sequence: the outer value's
            outer = self._outer_of.get(id(var))
            if outer is None:
                raise KgenTypeError(
                    f"scan {dict(self.node.attrs)['label']!r}: a size in the body depends on "
                    f"the value of {var.name or 'a per-step value'}; only non-sequences "
                    f"may decide sizes")
            return self.outer._int_value(outer)

    return Body


def _Body(outer, node):
    return _body_class()(outer, node)
