"""Outlining long fused loops into part functions.

gcc's optimisers are superlinear in the size of one function: a 10,000-op
chain fused into one loop body spent minutes in gcc. A flat loop whose body
is longer than OUTLINE_MIN locals is therefore cut into parts of about
PART_SIZE locals, each its own `static KG_NOINLINE` function that computes
its share of one element. The kernel walks the elements (on the OpenMP team
when large) and calls the parts in order per element; a value one part
computes and a later one reads goes through a per-thread scratch array, one
entry per slot. Slots are reused once their last reader has run, so the
scratch holds only what is live across a cut, not the whole body.

Per element, not vectorized over a block: this is the compile-time side of
the trade. Parts that each loop over a block of 64 elements with
`omp simd` (tried on the 1000-op chain with its gradient, 1e5 float64, one
core) ran 3.0x faster (0.67 against 1.97 s) but took 5.6x the gcc CPU time
(13.1 against 2.3 s): gcc vectorizes every part for each SIMD width. Only
graphs this long are outlined, and for them the build is the cost users meet.

Only the layout is decided here (which locals go where, which slots carry
what); the C text lives in templates/c/outline.c.jinja.
"""
from dataclasses import dataclass, field

from .printer import TAGS

OUTLINE_MIN = 400   # locals; W1-W3 and typical models stay far below and are untouched
PART_SIZE = 200     # locals per part: gcc compiles a function this size in milliseconds


@dataclass
class Part:
    name: str                 # the C function (plan name, step and part numbers)
    locals: list              # the Locals it computes, in order
    loads: list               # streamed leaves it reads (loaded per element)
    scalars: list             # hoisted leaves it reads (passed by value)
    live_in: list             # (var, dtype, slot) read from the scratch
    live_out: list            # (var, dtype, slot) written to the scratch
    stores: list              # (value, View) written by this part
    buffers: list             # (buf, dtype, written): the pointer parameters
    scratch: list = field(default_factory=list)  # dtypes whose scratch it reads or writes


@dataclass
class Outline:
    parts: list
    slots: dict = field(default_factory=dict)   # dtype -> number of scratch slots


def _int_text(v):
    """An Int as macros.int spells it (to compare the loop size with operand sizes)."""
    if isinstance(v, int):
        return str(v) if -2147483648 < v < 2147483647 else "INT64_C(%d)" % v
    return str(v)


def outlinable(lp):
    """Whether a map loop is long, flat-only and free of per-element indices.

    A loop that may also need its strided variant (an operand whose size is
    only checked at run time), or that holds random draws (which read the
    element index and per-group blocks), keeps the inline form."""
    if lp.kind != "map" or not lp.flat or len(lp.locals) <= OUTLINE_MIN:
        return False
    n = _int_text(lp.size)
    checked = any(_int_text(sz) != n for _, sz in (lp.flat_ok or ()))
    if lp.nd and (checked or not lp.flat):
        return False
    return all(l.index is None for l in lp.locals)


def outline(lp, name):
    """The parts of loop `lp` (outlinable), named `name`_partK."""
    chunks = [lp.locals[k:k + PART_SIZE] for k in range(0, len(lp.locals), PART_SIZE)]
    where = {l.var: p for p, chunk in enumerate(chunks) for l in chunk}
    dtype = {l.var: l.node.dtype for l in lp.locals}
    leaves = {leaf.var: leaf for leaf in lp.leaves}
    last_use = {}
    for p, chunk in enumerate(chunks):
        for l in chunk:
            for o in l.operands:
                if isinstance(o, str) and o in where:
                    last_use[o] = p
    # a store is made by the part that computes its value (leaves and literals: the last)
    store_part = {}
    for k, (value, _) in enumerate(lp.stores):
        store_part[k] = where.get(value, len(chunks) - 1) if isinstance(value, str) else len(chunks) - 1
        if isinstance(value, str) and value in where:
            last_use[value] = max(last_use.get(value, 0), store_part[k])

    slots, free, assigned, counts = {}, {}, {}, {}
    parts = []
    for p, chunk in enumerate(chunks):
        # slots whose last reader ran before this part may take new values
        for var in [v for v in slots if last_use[v] < p]:
            free.setdefault(dtype[var], []).append(slots.pop(var))
        for pool in free.values():
            pool.sort(reverse=True)  # lowest slot first: deterministic, compact
        reads = set()
        for l in chunk:
            for o in l.operands:
                if isinstance(o, str):
                    reads.add(o)
        stores = [lp.stores[k] for k in range(len(lp.stores)) if store_part[k] == p]
        reads.update(v for v, _ in stores if isinstance(v, str))
        live_in = [(v, dtype[v], assigned[v]) for v in sorted(reads, key=_var_order)
                   if v in where and where[v] < p]
        live_out = []
        for l in chunk:
            if last_use.get(l.var, p) > p:
                pool, dt = free.get(l.node.dtype), l.node.dtype
                if pool:
                    slot = pool.pop()
                else:
                    slot = counts.get(dt, 0)
                    counts[dt] = slot + 1
                slots[l.var] = assigned[l.var] = slot
                live_out.append((l.var, l.node.dtype, slot))
        used = [leaves[v] for v in sorted(reads, key=_var_order) if v in leaves]
        loads = [leaf for leaf in used if leaf.kind == "buffer" and leaf.streamed]
        scalars = [leaf for leaf in used if not (leaf.kind == "buffer" and leaf.streamed)
                   and leaf.kind != "literal"]
        scratch = sorted({dt for _, dt, _ in live_in + live_out})
        parts.append(Part(f"{name}_part{p + 1}", chunk, loads, scalars, live_in, live_out,
                          stores, _buffers(loads, stores), scratch))
    return Outline(parts, dict(sorted(counts.items())))


def _var_order(var):
    """Locals (t1, t2...) by number, other names after them by text: a stable order."""
    digits = var[1:]
    return (0, int(digits), "") if var[:1] == "t" and digits.isdigit() else (1, 0, var)


def _buffers(loads, stores):
    """One pointer parameter per buffer name (never two restrict pointers to one
    buffer), writable when the part stores to it."""
    found = {}
    for leaf in loads:
        found.setdefault(leaf.view.buf, [leaf.dtype, False])
    for _, view in stores:
        found.setdefault(view.buf, [view.dtype, False])[1] = True
    return [(buf, dt, written) for buf, (dt, written) in sorted(found.items())]


def plan_outlines(plan):
    """One entry per top-level step of the plan: its Outline, or None (inline)."""
    return [outline(st, f"{plan.name}_s{k}") if outlinable(st) else None
            for k, st in enumerate(plan.steps)]


SPLIT_MIN_PARTS = 8   # below this, a second compiler process costs more than it saves


def kernel_units(plan, profile=False):
    """How many translation units a build compiles the plan's source as: 2
    (at once, one per core) when it has many outlined parts or step groups
    placed in the second unit (step_groups), else 1."""
    parts = sum(-(-len(st.locals) // PART_SIZE) for st in plan.steps if outlinable(st))
    if parts >= SPLIT_MIN_PARTS:
        return 2
    return 2 if any(unit for _, _, unit in step_groups(plan, profile)) else 1


STEPS_MIN = 48       # a kernel with more top-level steps has them outlined in groups
STEP_GROUP = 16      # steps per group function
# A kernel whose loops weigh this much (_step_weight: about 10 ms of gcc -O2
# each; the MLP training step weighs 81, 0.8 s) is cut into two step groups
# compiled as two units at once: on two free cores its compile then takes
# 0.45 s. Below it, the second compiler process and the headers it parses
# again save too little (and cost CPU where both cores are busy).
SPLIT_MIN_WEIGHT = 40


def _step_weight(st):
    """About how long gcc takes over one step, in loop bodies: a fused map
    emits up to four variants of its loop (flat parallel and serial, unit
    stride rows, strided), a reduction one or two; other steps (calls to
    kg_gemm, fills, gathers) are short."""
    if st.kind == "map":
        return (4 if st.nd else 2) * (1 + len(st.locals) // 4)
    if st.kind == "reduce":
        return 2
    return 1


def step_groups(plan, profile=False):
    """[(first, last + 1, unit)] ranges of top-level steps, each outlined into
    its own function (a long sequence of loops is as hard on gcc as one long
    loop) and compiled in translation unit `unit` of a split build (0: the
    kernel's own), or [] when the kernel keeps its steps inline.

    A heavy kernel (SPLIT_MIN_WEIGHT) of few steps becomes two groups: the
    first, of a little over half the weight, in unit 1, the rest beside the
    kernel and its shape phase in unit 0. A profile build keeps one unit
    (its timers are the kernel unit's statics)."""
    n = len(plan.steps)
    if n > STEPS_MIN:
        groups = [(k, min(k + STEP_GROUP, n)) for k in range(0, n, STEP_GROUP)]
        return [(a, b, 0 if profile else g % 2) for g, (a, b) in enumerate(groups)]
    if profile or n < 2:
        return []
    weights = [_step_weight(st) for st in plan.steps]
    total = sum(weights)
    if total < SPLIT_MIN_WEIGHT:
        return []
    cut, acc = 1, weights[0]
    while cut < n - 1 and acc + weights[cut] <= 0.55 * total:
        acc += weights[cut]
        cut += 1
    return [(0, cut, 1), (cut, n, 0)]


def state_fields(plan, outlines):
    """What outlined step groups read of the kernel's locals, as
    (kind, dtype, name): kind "const" (a read-only pointer), "ptr", "int64"
    (a shape-phase integer) or "int" (the team size). The kernel fills one
    such record and passes it to each group."""
    fields, seen = [], set()

    def add(kind, dtype, name):
        if name not in seen:
            seen.add(name)
            fields.append((kind, dtype, name))

    for p in plan.params:
        add("const" if p.role in ("input", "shared") else "ptr", p.dtype, p.name)
    for p in plan.params:
        for d in (p.dim_args or ()):
            add("int64", "int64", d)
        if p.value_arg:
            add("int64", "int64", p.value_arg)
    for v in plan.int_vars:
        add("int64", "int64", v)
    for b in plan.buffers:
        if b.kind == "temp":
            add("ptr", b.dtype, b.name)
    if any(outlines):
        add("int", "int32", "kg_nt")
        for k, ol in enumerate(outlines):
            for dt in (ol.slots if ol else ()):
                add("ptr", dt, f"kg_live{k}_{TAGS[dt]}")
    return fields
