"""The primitive record: everything about one op lives on one object.

Each primitive is an `Op` instance registered by name. Its columns:
  - `infer(inputs, attrs)`  type rule: the output TensorType (raises on bad input)
  - `impl(arrays, attrs)`   NumPy reference implementation
  - `vjp(node, g)`          derivative rule, written in kgen ops (kgen.derive)
  - `c` / `cuda`            scalar expression templates for elementwise ops
  - facts                   algebraic facts the simplifier may use
Subclasses group ops that share a shape (elementwise, reductions...), so a
single op is one short declaration.
"""
from .node import make_apply, as_variable

REGISTRY = {}


def op_by_name(name):
    """The registered primitive called `name` (what an unpickled op becomes)."""
    from . import ops  # noqa: F401  (registers every primitive)
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"kgen has no primitive op named {name!r} (pickled by another "
                         f"kgen version?)") from None


class Op:
    """Base primitive. `name` is unique; instances are registered on creation."""

    name = None
    # derivative: a function (node, g) -> one gradient per input (None where an
    # input gets none), written in kgen ops so it can be differentiated again.
    # Elementwise rules may return gradients at the broadcast output shape: the
    # walker (kgen/derive) sums them back. None = not differentiable (an error),
    # "zero" = piecewise constant
    vjp_rule = None
    # how the printer shows the node: a format string with {0}, {1}..., a function
    # node -> such a string (indexing), or None for call syntax `name(args, attrs)`
    pretty = None
    precedence = 100  # binding strength for infix printing; 100 = atom/call
    # algebraic facts the simplifier (kgen/simplify/algebra.py) reads off any
    # node's op; every op has them, so a rule may ask any node. The defaults
    # claim nothing; op families and single ops declare what holds for them.
    commutative = associative = False
    identity = None       # neutral element of a binary op (right-hand only unless
                          # commutative); a reduction's: the value of an empty one
    absorbing = None      # x op a == a for every x (IEEE aside: x * 0 -> 0)
    involution = False    # f(f(x)) == x
    idempotent = False    # f(f(x)) == f(x) (unary), f(x, x) == x (binary)
    inverse = None        # name of g with f(g(x)) == x where g(x) is defined
    parity = None         # "even": f(-x) == f(x); "odd": f(-x) == -f(x)
    # for the lowering: operand positions whose values the op's code reads
    # (None: all). The others only lend their shape, or are sizes the shape
    # phase computes; a value that nothing reads is never computed.
    reads = None

    def __init__(self, name, **fields):
        self.name = name
        for key, value in fields.items():
            setattr(self, key, value)
        if name in REGISTRY:
            raise ValueError(f"op {name!r} registered twice")
        REGISTRY[name] = self

    def __repr__(self):
        return f"<op {self.name}>"

    def __reduce__(self):  # ops pickle by name (they are singletons)
        return (op_by_name, (self.name,))

    def __call__(self, *inputs, **attrs):
        inputs = [as_variable(x) for x in inputs]
        inputs, attrs = self.prepare(inputs, attrs)
        attrs = tuple(sorted(attrs.items()))
        type_ = self.infer(inputs, dict(attrs))
        return make_apply(self, inputs, attrs, type_)

    # -- columns, overridden per family --
    def prepare(self, inputs, attrs):
        """Normalise inputs/attrs before typing (e.g. axis -> tuple)."""
        return inputs, attrs

    def infer(self, inputs, attrs):
        raise NotImplementedError(self.name)

    def impl(self, arrays, attrs):
        raise NotImplementedError(self.name)
