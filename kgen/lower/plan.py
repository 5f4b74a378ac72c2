"""The lowered form of a kernel, shared by the C and CUDA backends.

A Plan is data, not text: the shape phase (integer statements that read the
input shapes, compute every node's run-time shape and check it), the buffers
(inputs, outputs, temporaries, constants) and the steps (fused loops, GEMMs,
gathers...). Templates turn it into source; the scalar printer turns each
loop-local node into an expression.
"""
from dataclasses import dataclass, field

# An Int is a Python int (known at generation time) or the name of an int64_t
# C variable computed in the shape phase.


@dataclass
class Stmt:
    """One shape-phase statement. kinds (rendered by macros.jinja):
    load   dst = <shape array>[k]        mul/add/sub/div  dst = a op b
    bcast  dst = broadcast(a, b) or fail  eq    fail unless a == b
    bstride dst = (dim == 1 ? 0 : stride)  slice dst/dst2 = length/start of a slice
    min/max dst = min/max(a, b)            nonneg fail unless a >= 0
    floordiv/mod dst = a // b, a % b (Python's rounding; fail if b == 0)
    nonzero fail unless a != 0 (a slice step)
    """
    kind: str
    dst: object = None
    args: tuple = ()
    msg: str = ""
    guard: object = None  # the ifelse Branch whose checks these are (kgen/lower/branches.py):
                          # quiet in the shape phase, repeated when the branch is taken


@dataclass
class Param:
    """A kernel argument: an input (read-only) or an output buffer."""
    name: str          # C identifier
    label: str         # what the user calls it (variable name) for messages
    dtype: str
    ndim: int
    static_shape: tuple
    dims: list         # Ints naming its run-time dims
    role: str          # input | shared | output | update | length
    var: object = None
    dim_args: list = None  # C argument names of its run-time dims (inputs)
    value_arg: str = None  # a 0-d int input whose value decides sizes: the int64_t
                           # argument carrying that value (to NAME_shapes and NAME)
    length: str = None     # an output whose length is known only after the run (a
                           # scan stopped by until()): the role-"length" Param, after
                           # the updates, into which NAME writes it


def trims(plan):
    """(output index, length index) for each output cut to a length NAME writes
    (core.Kernel's `trims`)."""
    lengths = [p.name for p in plan.params if p.role == "length"]
    outputs = [p for p in plan.params if p.role == "output"]
    return [(k, lengths.index(p.length)) for k, p in enumerate(outputs) if p.length]


@dataclass
class Buffer:
    """A temporary or an output written by a step."""
    name: str
    dtype: str
    size: object       # Int
    kind: str          # temp | output | const
    values: tuple = ()  # const only


@dataclass
class View:
    """Strided access to a buffer: element offset and per-dim strides."""
    buf: str
    dtype: str
    offset: object
    dims: list
    strides: list
    contiguous: bool   # dense row-major from offset 0 (enables the flat path)


@dataclass
class Leaf:
    """A value read inside a loop: a buffer element, a literal, or a shape int."""
    var: str
    dtype: str
    kind: str                 # buffer | literal | int
    view: View = None
    strides: list = None      # one per loop dim (0 where broadcast)
    value: object = None      # literal: numpy scalar; int: Int
    scalar: bool = False      # one element whatever the loop: loaded once, before it
    streamed: bool = False    # read per iteration


@dataclass
class Local:
    """One fused node inside a loop: var = op(operands)."""
    var: str
    node: object
    operands: list
    comment: str
    index: list = None        # indexed ops (random draws): per loop dim, the stride of
                              # the node's own row-major flat index (0 where it broadcasts)


@dataclass
class Loop:
    """A fused elementwise map, or a reduction with its fused producers."""
    kind: str                 # map | reduce | argreduce
    comment: str
    dims: list                # iteration dims (Ints); for reductions the input's
    leaves: list
    locals: list
    result: str               # var holding the value to store / accumulate
    out: View                 # where results go (contiguous, output shape)
    dtype: str
    size: object              # Int: product of dims
    flat_ok: object = None    # (leaf, size Int) pairs that must equal `size` for the flat path
    reduced: tuple = ()       # reduce: which loop dims are reduced
    red_op: object = None     # reduce: the Reduce op record
    out_strides: list = None  # reduce: out stride per loop dim (0 on reduced dims)
    outer: list = None        # reduce: indices of kept dims in loop order (outer)
    inner: list = None        # reduce: indices of reduced dims (inner)
    stores: list = None       # map: (value, View) written each iteration
    flat: bool = True         # map: a flat loop is possible (dense operands, maybe checked)
    nd: bool = True           # map: the strided N-d loop is needed too


@dataclass
class Step:
    """Any non-loop step: gemm, gather, scatter_add, copy, fill, arange."""
    kind: str
    comment: str
    args: dict = field(default_factory=dict)


@dataclass
class Plan:
    name: str                 # the kernel's C symbol (NAME, NAME_shapes): kgen.lower.names
    doc: list                 # comment lines: what the kernel computes
    params: list              # inputs then outputs (Param)
    stmts: list               # shape phase
    buffers: list             # temps and consts
    steps: list               # Loop | Step, in order
    int_vars: list            # every int64_t shape variable, declared up front
    features: set = field(default_factory=set)
    label: str = None         # what the user named the kernel: messages and comments
