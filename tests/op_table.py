"""The op table: every primitive of `kgen.expr.op.REGISTRY` and every public
composition, with a NumPy reference written here (independent of kgen's own
`impl`), domain-aware input samplers, the shapes to run over and the dtypes
that apply.

tests/test_ops.py runs each entry through `.eval()`; a backend test runs the
same entries through `kg.function`:

    for spec in SPECS:
        for dtype in spec.dtypes:
            for shapes in spec.shapes:
                xs = spec.inputs(dtype, shapes)             # symbolic inputs
                arrays = spec.sample(rng, dtype, shapes)    # NumPy inputs in the op's domain
                got = kg.function(xs, spec.build(*xs))(*arrays)
                want = spec.ref(*arrays)                    # same dtype and shape expected

`tests/test_ops.py::test_every_registered_op_has_an_entry` fails when a
primitive appears in no entry's graph, and
`test_every_public_function_has_an_entry` when a public function of
kgen.expr.ops.api has no entry (or is not listed as an internal helper).
"""
import itertools
import math
from dataclasses import dataclass

import numpy as np

import kgen as kg
from kgen.expr.op import REGISTRY

ALL_DTYPES = ("float32", "float64", "int32", "int64", "bool")
FLOATS = ("float32", "float64")
NUMERIC = ("float32", "float64", "int32", "int64")

# ---- samplers ---------------------------------------------------------------
# domain -> (float range, int range); a value is drawn uniformly from the range
RANGES = {
    "any": ((-3.0, 3.0), (-5, 5)),
    "positive": ((0.1, 3.0), (1, 5)),      # log, sqrt...
    "unit": ((-0.9, 0.9), (-1, 1)),        # arcsin, arccos: |x| < 1
    "nonzero": ((0.5, 3.0), (1, 5)),       # divisors; a random sign is applied
    "base": ((0.5, 2.0), (-3, 3)),         # pow's base
    "exponent": ((-2.0, 2.0), (0, 3)),     # pow's exponent: ints stay non-negative
    "prob": ((0.05, 0.95), (0, 1)),        # cross-entropy arguments
}


def sample(domain, rng, shape, dtype):
    """An array of `dtype` and `shape` drawn from `domain` (a name or a function)."""
    if callable(domain):
        return np.asarray(domain(rng, shape, dtype))
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        if domain in ("positive", "nonzero"):
            return np.ones(shape, bool)
        return np.asarray(rng.random(shape) < 0.5)
    frange, irange = RANGES[domain]
    if dtype.kind == "f":
        x = rng.uniform(*frange, size=shape)
    else:
        x = rng.integers(irange[0], irange[1], size=shape, endpoint=True)
    if domain == "nonzero":
        x = x * rng.choice([-1, 1], size=shape)
    return np.asarray(x).astype(dtype)


def index(n):
    """Valid (possibly negative) indices into an axis of length n."""
    return lambda rng, shape, dtype: rng.integers(-n, n, size=shape).astype(dtype)


def count(lo, hi):
    """Small ints in [lo, hi] (arange bounds)."""
    return lambda rng, shape, dtype: np.asarray(rng.integers(lo, hi, size=shape, endpoint=True),
                                                dtype)


# ---- the entry ----------------------------------------------------------------
@dataclass(frozen=True)
class OpSpec:
    name: str                    # unique; an op or function name plus its parameters
    api: str                     # the public function (or primitive) it exercises
    build: object                # symbolic inputs -> Variable
    ref: object                  # NumPy arrays -> array (dtype and shape as expected)
    arity: int
    shapes: tuple                # tuples of input shapes, one tuple per case
    dtypes: tuple = ALL_DTYPES   # dtypes that apply (all inputs alike unless arg_dtypes)
    rejects: tuple = ()          # dtypes kgen must refuse with a TypeError at construction
    domain: tuple = ()           # sampler per input ("any" if missing)
    arg_dtypes: tuple = ()       # fixed dtype per input (None: the case dtype)
    static_only: bool = False    # needs static input shapes (squeeze() of unknown axes)
    tol32: float = 1e-5          # rtol for float32 results (float64: 1e-11)
    kind: str = "other"          # elementwise, reduce, linalg, shape, nnet

    def input_dtypes(self, dtype):
        fixed = tuple(self.arg_dtypes) + (None,) * (self.arity - len(self.arg_dtypes))
        return [f or dtype for f in fixed]

    def inputs(self, dtype, shapes, static=False):
        """Symbolic inputs; with `static` their static shapes are the case's."""
        return [kg.tensor.tensor(f"x{i}", dt, shape=s if static else (None,) * len(s))
                for i, (dt, s) in enumerate(zip(self.input_dtypes(dtype), shapes))]

    def sample(self, rng, dtype, shapes):
        domains = tuple(self.domain) + ("any",) * (self.arity - len(self.domain))
        return [sample(d, rng, s, dt)
                for d, s, dt in zip(domains, shapes, self.input_dtypes(dtype))]


SPECS = []


def spec(name, build, ref, arity, shapes, api=None, **kw):
    s = OpSpec(name, api or name.split("(")[0].split("[")[0], build, ref, arity,
               tuple(shapes), **kw)
    assert s.name not in {t.name for t in SPECS}, s.name
    SPECS.append(s)
    return s


def numpy_dtypes(ref, arity, domain=(), exclude=()):
    """(dtypes, rejects): the dtypes (all inputs alike) for which the NumPy
    reference gives a dtype kgen supports, and the others, which kgen must refuse
    with a TypeError (NumPy has no loop, or it would give float16, int8...)."""
    rng = np.random.default_rng(0)
    out = []
    domains = tuple(domain) + ("any",) * (arity - len(domain))
    for dt in ALL_DTYPES:
        try:
            with np.errstate(all="ignore"):
                r = np.asarray(ref(*(sample(d, rng, (2,), dt) for d in domains)))
        except (TypeError, ValueError):
            continue
        if r.dtype.name in ALL_DTYPES and dt not in exclude:
            out.append(dt)
    return dict(dtypes=tuple(out), rejects=tuple(d for d in ALL_DTYPES if d not in out))


# ---- elementwise ------------------------------------------------------------------
UNARY_SHAPES = [((),), ((5,),), ((3, 4),), ((2, 3, 4),), ((0,),), ((0, 3),)]
BINARY_SHAPES = [((), ()), ((5,), (5,)), ((3, 4), (3, 4)), ((2, 3, 4), (2, 3, 4)),
                 ((3, 1), (1, 4)), ((5,), (2, 5)), ((), (2, 3)), ((2, 3, 4), (3, 1)),
                 ((0,), (0,)), ((0, 3), (1, 3)), ((2, 1), (2, 0))]
TERNARY_SHAPES = [((), (), ()), ((5,), (5,), (5,)), ((2, 3, 4),) * 3,
                  ((3, 1), (1, 4), ()), ((5,), (2, 5), (5,)), ((0, 3), (1, 3), (3,))]


def _float_like(ufunc):
    """A float function with the dtype rule of `ufunc` (sin, exp...): computed in
    float64 and cast to what the ufunc would return for this input."""
    def rule(fn):
        def ref(x):
            out_dtype = ufunc(np.zeros(0, np.asarray(x).dtype)).dtype
            return np.asarray(fn(np.asarray(x, np.float64))).astype(out_dtype)
        return ref
    return rule


def _erf_ref(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _sigmoid_ref(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus_ref(x):
    return np.log1p(np.exp(x))


UNARY = {  # name: (NumPy reference, domain, dtypes kgen rejects though NumPy has a loop)
    "neg": (np.negative, "any", ()),
    "abs": (np.abs, "any", ()),
    "sign": (np.sign, "any", ()),
    "reciprocal": (np.reciprocal, "nonzero", ()),
    "exp": (np.exp, "any", ()),
    "exp2": (np.exp2, "any", ()),
    "log": (np.log, "positive", ()),
    "log2": (np.log2, "positive", ()),
    "log10": (np.log10, "positive", ()),
    "log1p": (np.log1p, "positive", ()),
    "expm1": (np.expm1, "any", ()),
    "sqrt": (np.sqrt, "positive", ()),
    "sin": (np.sin, "any", ()),
    "cos": (np.cos, "any", ()),
    "tan": (np.tan, "unit", ()),
    "arcsin": (np.arcsin, "unit", ()),
    "arccos": (np.arccos, "unit", ()),
    "arctan": (np.arctan, "any", ()),
    "sinh": (np.sinh, "any", ()),
    "cosh": (np.cosh, "any", ()),
    "tanh": (np.tanh, "any", ()),
    "erf": (_float_like(np.sin)(_erf_ref), "any", ()),
    "sigmoid": (_float_like(np.exp)(_sigmoid_ref), "any", ()),
    "softplus": (_float_like(np.exp)(_softplus_ref), "any", ()),
    # relu(bool) is maximum(bool, 0) -> int64 in NumPy; kgen keeps relu's dtype
    "relu": (lambda x: np.maximum(x, np.zeros((), x.dtype)), "any", ("bool",)),
    "floor": (np.floor, "any", ()),
    "ceil": (np.ceil, "any", ()),
    "round": (np.rint, "any", ()),
    "invert": (np.invert, "any", ()),
    "isnan": (np.isnan, "any", ()),
    "isinf": (np.isinf, "any", ()),
    "stop_gradient": (lambda x: np.array(x, copy=True), "any", ()),
    # kgen's square is x * x, which keeps bool (np.square(bool) is int8)
    "square": (lambda x: x * x, "any", ()),
}

BINARY = {  # name: (NumPy reference, domain of each operand, kgen builder)
    "add": (np.add, ("any", "any"), lambda a, b: a + b),
    "sub": (np.subtract, ("any", "any"), lambda a, b: a - b),
    "mul": (np.multiply, ("any", "any"), lambda a, b: a * b),
    "true_div": (np.true_divide, ("any", "nonzero"), lambda a, b: a / b),
    "floor_div": (np.floor_divide, ("any", "nonzero"), lambda a, b: a // b),
    "mod": (np.remainder, ("any", "nonzero"), lambda a, b: a % b),
    "pow": (np.power, ("base", "exponent"), lambda a, b: a ** b),
    "maximum": (np.maximum, ("any", "any"), kg.maximum),
    "minimum": (np.minimum, ("any", "any"), kg.minimum),
    "arctan2": (np.arctan2, ("any", "nonzero"), kg.arctan2),
    "lt": (np.less, ("any", "any"), lambda a, b: a < b),
    "le": (np.less_equal, ("any", "any"), lambda a, b: a <= b),
    "gt": (np.greater, ("any", "any"), lambda a, b: a > b),
    "ge": (np.greater_equal, ("any", "any"), lambda a, b: a >= b),
    "eq": (np.equal, ("any", "any"), kg.eq),
    "neq": (np.not_equal, ("any", "any"), kg.neq),
    "and": (np.bitwise_and, ("any", "any"), lambda a, b: a & b),
    "or": (np.bitwise_or, ("any", "any"), lambda a, b: a | b),
    "second": (lambda a, b: np.broadcast_to(b, np.broadcast_shapes(np.shape(a), np.shape(b))),
               ("any", "any"), kg.second),
}

for _name, (_ref, _dom, _rejects) in UNARY.items():
    _fn = {"neg": lambda x: -x, "invert": lambda x: ~x}.get(_name) or getattr(kg, _name)
    spec(_name, _fn, _ref, 1, UNARY_SHAPES, kind="elementwise", domain=(_dom,),
         **numpy_dtypes(_ref, 1, (_dom,), _rejects))

for _name, (_ref, _dom, _fn) in BINARY.items():
    spec(_name, _fn, _ref, 2, BINARY_SHAPES, kind="elementwise", domain=_dom,
         **numpy_dtypes(_ref, 2, _dom))

spec("where", kg.where, np.where, 3, TERNARY_SHAPES, kind="elementwise", arg_dtypes=("bool",))
spec("clip(x, -1, 2)", lambda x: kg.clip(x, -1, 2), lambda x: np.clip(x, -1, 2), 1,
     UNARY_SHAPES, kind="elementwise")
spec("clip(x, lo, hi)", kg.clip, np.clip, 3, TERNARY_SHAPES, kind="elementwise")
spec("clip(x, None, 0.5)", lambda x: kg.clip(x, None, 0.5), lambda x: np.clip(x, None, 0.5), 1,
     UNARY_SHAPES, kind="elementwise")
for _to in ALL_DTYPES:
    spec(f"cast[{_to}]", lambda x, t=_to: kg.cast(x, t), lambda x, t=_to: x.astype(t), 1,
         UNARY_SHAPES, kind="elementwise")
    spec(f"astype[{_to}]", lambda x, t=_to: x.astype(t), lambda x, t=_to: x.astype(t), 1,
         UNARY_SHAPES[:3], kind="elementwise", api="cast")

# ---- reductions ----------------------------------------------------------------------
# (kwargs, shapes whose reduced axes are non-empty, shapes where they are empty)
REDUCE_VARIANTS = [
    ({}, [((),), ((5,),), ((3, 4),), ((2, 3, 4),)], [((0,),), ((2, 0),)]),
    ({"axis": 0}, [((5,),), ((3, 4),), ((2, 3, 4),), ((3, 0),)], [((0, 3),)]),
    ({"axis": -1, "keepdims": True}, [((5,),), ((3, 4),), ((2, 3, 4),), ((0, 3),)], [((3, 0),)]),
    ({"axis": (0, 2)}, [((2, 3, 4),), ((2, 0, 4),)], [((0, 3, 4),)]),
    ({"axis": (-1, 0), "keepdims": True}, [((3, 4),)], [((0, 4),)]),
    ({"axis": None, "keepdims": True}, [((3, 4),), ((),)], []),
]
ARG_VARIANTS = [
    ({}, [((),), ((5,),), ((3, 4),), ((2, 3, 4),)]),
    ({"axis": 0}, [((5,),), ((3, 4),), ((3, 0),)]),
    ({"axis": -1, "keepdims": True}, [((5,),), ((2, 3, 4),), ((0, 3),)]),
    ({"axis": None, "keepdims": True}, [((3, 4),)]),
]


def _label(name, kw):
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in kw.items())})"


def _lse_ref(x, axis=None, keepdims=False):
    x = x.astype(np.float32 if x.dtype == np.float32 else np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _float_of(x):
    return x.astype(np.float32 if x.dtype == np.float32 else np.float64)


def _softmax_ref(x, axis=-1):
    x = _float_of(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_ref(x, axis=-1):
    return _float_of(x) - _lse_ref(x, axis=axis, keepdims=True)


REDUCTIONS = {  # name: (kgen function, NumPy reference, empty reductions allowed)
    "sum": (kg.sum, np.sum, True),
    "prod": (kg.prod, np.prod, True),
    "max": (kg.max, np.max, False),
    "min": (kg.min, np.min, False),
    "mean": (kg.mean, np.mean, True),
    "var": (kg.var, np.var, True),
    "std": (kg.std, np.std, True),
    "logsumexp": (kg.logsumexp, _lse_ref, False),
}
for _name, (_fn, _ref, _empty_ok) in REDUCTIONS.items():
    for _kw, _shapes, _empty in REDUCE_VARIANTS:
        spec(_label(_name, _kw), lambda x, f=_fn, kw=_kw: f(x, **kw),
             lambda x, f=_ref, kw=_kw: f(x, **kw), 1, _shapes + (_empty if _empty_ok else []),
             kind="reduce", tol32=1e-4 if _name in ("var", "std") else 1e-5)
for _name, _fn, _ref in [("argmax", kg.argmax, np.argmax), ("argmin", kg.argmin, np.argmin)]:
    for _kw, _shapes in ARG_VARIANTS:
        spec(_label(_name, _kw), lambda x, f=_fn, kw=_kw: f(x, **kw),
             lambda x, f=_ref, kw=_kw: f(x, **kw), 1, _shapes, kind="reduce")
spec("std(axis=0, ddof=1)", lambda x: kg.std(x, axis=0, ddof=1),
     lambda x: np.std(x, axis=0, ddof=1), 1, [((5,),), ((3, 4),)], kind="reduce", tol32=1e-4)
spec("var(ddof=1)", lambda x: kg.var(x, ddof=1), lambda x: np.var(x, ddof=1), 1,
     [((5,),), ((2, 3, 4),)], kind="reduce", tol32=1e-4)
# method spellings
spec("x.sum(axis=1)", lambda x: x.sum(axis=1), lambda x: x.sum(axis=1), 1, [((3, 4),)],
     api="sum", kind="reduce")
spec("x.mean()", lambda x: x.mean(), lambda x: x.mean(), 1, [((3, 4),)], api="mean",
     kind="reduce")
spec("x.max(axis=0)", lambda x: x.max(axis=0), lambda x: x.max(axis=0), 1, [((3, 4),)],
     api="max", kind="reduce")
spec("x.argmax(axis=-1)", lambda x: x.argmax(axis=-1), lambda x: x.argmax(axis=-1), 1,
     [((3, 4),)], api="argmax", kind="reduce")

SOFTMAX_SHAPES = [((5,),), ((3, 4),), ((2, 3, 4),), ((0, 4),)]
for _name, _fn, _ref in [("softmax", kg.softmax, _softmax_ref),
                         ("log_softmax", kg.log_softmax, _log_softmax_ref)]:
    spec(f"{_name}(x)", _fn, _ref, 1, SOFTMAX_SHAPES, kind="nnet")
    spec(f"{_name}(axis=0)", lambda x, f=_fn: f(x, axis=0), lambda x, f=_ref: f(x, axis=0), 1,
         [((5,),), ((3, 4),), ((3, 0),)], kind="nnet")

# ---- linear algebra --------------------------------------------------------------------
MATMUL_SHAPES = [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2)), ((3, 4), (4, 2)),
                 ((2, 3, 4), (4, 2)), ((2, 3, 4), (1, 4, 5)), ((0, 4), (4, 2)),
                 ((3, 0), (0, 2)), ((0,), (0,))]
# bool matrix products are refused (NumPy's is a logical or-of-ands; cast first)
LINALG = dict(kind="linalg", dtypes=NUMERIC, rejects=("bool",))
spec("matmul", lambda a, b: a @ b, np.matmul, 2, MATMUL_SHAPES, **LINALG)
spec("kg.matmul", kg.matmul, np.matmul, 2, MATMUL_SHAPES[:4], api="matmul", **LINALG)
spec("dot", kg.dot, np.dot, 2, [s for s in MATMUL_SHAPES if len(s[0]) <= 2 and len(s[1]) <= 2],
     **LINALG)
spec("x.dot(y)", lambda a, b: a.dot(b), np.dot, 2, [((3, 4), (4, 2))], api="dot", **LINALG)
spec("dot(scalar)", kg.dot, np.dot, 2, [((), (3, 4)), ((3,), ()), ((), ())], kind="linalg",
     api="dot")
spec("outer", kg.outer, np.outer, 2, [((4,), (3,)), ((2, 2), (3,)), ((0,), (3,)), ((), (3,))],
     kind="linalg")

# ---- shape --------------------------------------------------------------------------------
ANY_SHAPES = UNARY_SHAPES


def shape_spec(name, build, ref, shapes, arity=1, **kw):
    return spec(name, build, ref, arity, shapes, kind="shape", **kw)


shape_spec("reshape(-1)", lambda x: x.reshape(-1), lambda x: x.reshape(-1), ANY_SHAPES)
shape_spec("reshape((2, -1))", lambda x: kg.reshape(x, (2, -1)), lambda x: x.reshape(2, -1),
           [((3, 4),), ((2, 3, 4),), ((2, 0),), ((6,),)])
shape_spec("reshape(4, 3)", lambda x: x.reshape(4, 3), lambda x: x.reshape(4, 3),
           [((3, 4),), ((12,),), ((2, 6),)])
shape_spec("reshape(())", lambda x: x.reshape(()), lambda x: x.reshape(()),
           [((),), ((1,),), ((1, 1),)])
shape_spec("reshape((x.shape[0], -1))", lambda x: x.reshape((x.shape[0], -1)),
           lambda x: x.reshape(x.shape[0], -1), [((3, 4),), ((2, 3, 4),), ((1, 0),)])
shape_spec("reshape(x.shape[::-1])", lambda x: x.reshape(x.shape[::-1]),
           lambda x: x.reshape(x.shape[::-1]), [((3, 4),), ((2, 3, 4),)])
shape_spec("x.T", lambda x: x.T, lambda x: x.T, ANY_SHAPES, api="transpose")
shape_spec("transpose(x, (1, 0, 2))", lambda x: kg.transpose(x, (1, 0, 2)),
           lambda x: np.transpose(x, (1, 0, 2)), [((2, 3, 4),), ((0, 3, 1),)])
shape_spec("x.transpose(2, 0, 1)", lambda x: x.transpose(2, 0, 1),
           lambda x: x.transpose(2, 0, 1), [((2, 3, 4),)], api="transpose")
shape_spec("transpose(x, (-1, 0))", lambda x: kg.transpose(x, (-1, 0)),
           lambda x: np.transpose(x, (-1, 0)), [((3, 4),)])
shape_spec("dimshuffle(1, 'x', 0)", lambda x: x.dimshuffle(1, "x", 0),
           lambda x: x.T[:, None, :], [((3, 4),), ((0, 3),)])
shape_spec("dimshuffle('x')", lambda x: x.dimshuffle("x"), lambda x: x[None], [((),)])
shape_spec("dimshuffle(0, 2)", lambda x: kg.dimshuffle(x, (0, 2)), lambda x: x[:, 0, :],
           [((3, 1, 4),)])
shape_spec("dimshuffle(['x', 0, 'x'])", lambda x: x.dimshuffle(["x", 0, "x"]),
           lambda x: x[None, :, None], [((5,),)])
shape_spec("flatten()", lambda x: x.flatten(), lambda x: x.reshape(-1), ANY_SHAPES)
shape_spec("flatten(2)", lambda x: kg.flatten(x, 2), lambda x: x.reshape(x.shape[0], -1),
           [((3, 4),), ((2, 3, 4),), ((2, 0, 3),)])
for _ax in (0, -1, (0, 2)):
    shape_spec(f"expand_dims(axis={_ax})", lambda x, a=_ax: kg.expand_dims(x, a),
               lambda x, a=_ax: np.expand_dims(x, a), [((3, 4),), ((5,),), ((0, 2),)])
shape_spec("squeeze()", kg.squeeze, np.squeeze, [((1, 3, 1),), ((1,),), ((3, 4),)],
           api="squeeze", static_only=True)
shape_spec("squeeze(axis=1)", lambda x: kg.squeeze(x, 1), lambda x: np.squeeze(x, 1),
           [((3, 1, 4),), ((0, 1),)])
shape_spec("x.squeeze((0, -1))", lambda x: x.squeeze((0, -1)),
           lambda x: np.squeeze(x, (0, -1)), [((1, 3, 1),)], api="squeeze")
shape_spec("concatenate(axis=0)", lambda a, b: kg.concatenate([a, b]),
           lambda a, b: np.concatenate([a, b]),
           [((2, 3), (4, 3)), ((3,), (0,)), ((2, 3, 4), (1, 3, 4))], arity=2)
shape_spec("concatenate(axis=-1)", lambda a, b, c: kg.concatenate([a, b, c], axis=-1),
           lambda a, b, c: np.concatenate([a, b, c], axis=-1),
           [((3, 2), (3, 4), (3, 1)), ((2, 0), (2, 1), (2, 0))], arity=3)
shape_spec("stack(axis=0)", lambda a, b: kg.stack([a, b]), lambda a, b: np.stack([a, b]),
           [((), ()), ((3,), (3,)), ((2, 3), (2, 3)), ((0,), (0,))], arity=2)
shape_spec("stack(axis=-1)", lambda a, b: kg.stack([a, b], axis=-1),
           lambda a, b: np.stack([a, b], axis=-1), [((3,), (3,)), ((2, 3), (2, 3))], arity=2)
ARANGE = dict(dtypes=NUMERIC, rejects=("bool",))
shape_spec("arange(n)", kg.arange, np.arange, [((),)], domain=(count(0, 6),), **ARANGE)
shape_spec("arange(a, b, s)", kg.arange, np.arange, [((), (), ())], arity=3,
           domain=(count(-3, 3), count(0, 8), count(1, 3)), **ARANGE)
shape_spec("arange(b, a, -s)", lambda a, b, s: kg.arange(b, a, -s),
           lambda a, b, s: np.arange(b, a, -s), [((), (), ())], arity=3,
           domain=(count(-3, 3), count(0, 8), count(1, 3)), **ARANGE)
shape_spec("arange(x.shape[0])", lambda x: kg.arange(x.shape[0]),
           lambda x: np.arange(x.shape[0]), [((3, 4),), ((0,),)])
shape_spec("arange(5, dtype='int32')", lambda x: kg.arange(5, dtype="int32") + x,
           lambda x: np.arange(5, dtype="int32") + x, [((),), ((5,),)], api="arange")
shape_spec("zeros_like", kg.zeros_like, np.zeros_like, ANY_SHAPES)
shape_spec("ones_like", kg.ones_like, np.ones_like, ANY_SHAPES)
shape_spec("zeros_like(dtype='int32')", lambda x: kg.zeros_like(x, dtype="int32"),
           lambda x: np.zeros_like(x, dtype="int32"), ANY_SHAPES[:3])
shape_spec("ones_like(dtype='float32')", lambda x: kg.ones_like(x, dtype="float32"),
           lambda x: np.ones_like(x, dtype="float32"), ANY_SHAPES[:3])
shape_spec("x.shape[0]", lambda x: x.shape[0], lambda x: np.int64(x.shape[0]),
           [((3, 4),), ((0,),)], api="shape_i")
shape_spec("x.shape[-1] * x.shape[0]", lambda x: x.shape[-1] * x.shape[0],
           lambda x: np.int64(x.shape[-1] * x.shape[0]), [((3, 4),)], api="shape_i")
shape_spec("x.size", lambda x: x.size, lambda x: np.int64(x.size), ANY_SHAPES, api="size")
shape_spec("size(x)", kg.size, lambda x: np.int64(x.size), ANY_SHAPES[:2])

# basic indexing: (label, key, shapes)
INDEXES = [
    ("[1]", 1, [((3, 4),), ((5,),), ((2, 3, 4),)]),
    ("[-1]", -1, [((3, 4),), ((5,),)]),
    ("[1:3]", slice(1, 3), [((5,),), ((3, 4),), ((0,),)]),
    ("[::-1]", slice(None, None, -1), [((5,),), ((3, 4),), ((0, 2),)]),
    ("[-1:0:-2]", slice(-1, 0, -2), [((5,),), ((6, 2),)]),
    ("[None]", None, [((),), ((5,),), ((3, 4),)]),
    ("[:, 0]", (slice(None), 0), [((3, 4),), ((0, 2),)]),
    ("[1:, None, ::2]", (slice(1, None), None, slice(None, None, 2)), [((3, 4),), ((2, 3, 4),)]),
    ("[..., 1]", (Ellipsis, 1), [((3, 4),), ((2, 3, 4),)]),
    ("[1, ...]", (1, Ellipsis), [((3, 4),)]),
    ("[0, -1]", (0, -1), [((3, 4),)]),
    ("[5:]", slice(5, None), [((3, 4),)]),
    ("[:, :]", (slice(None), slice(None)), [((3, 4),)]),
]
for _label_, _key, _shapes in INDEXES:
    shape_spec(f"x{_label_}", lambda x, k=_key: x[k], lambda x, k=_key: x[k], _shapes,
               api="getitem")

# integer-array indexing (gather) along the leading axes
shape_spec("x[i]", lambda x, i: x[i], lambda x, i: x[i], [((3, 4), (5,)), ((3,), (2, 2)),
           ((3, 4), ()), ((3, 4), (0,))], arity=2, domain=("any", index(3)),
           arg_dtypes=(None, "int64"), api="getitem")
shape_spec("x[i32]", lambda x, i: x[i], lambda x, i: x[i], [((3, 4), (5,))], arity=2,
           domain=("any", index(3)), arg_dtypes=(None, "int32"), api="getitem")
shape_spec("p[kg.arange(n), y]", lambda p, y: p[kg.arange(p.shape[0]), y],
           lambda p, y: p[np.arange(p.shape[0]), y], [((4, 3), (4,)), ((0, 3), (0,))], arity=2,
           domain=("any", index(3)), arg_dtypes=(None, "int64"), api="getitem")
shape_spec("x[i, j]", lambda x, i, j: x[i, j], lambda x, i, j: x[i, j],
           [((3, 4, 2), (5,), (5,)), ((3, 3), (2, 1), (1, 3))], arity=3,
           domain=("any", index(3), index(3)), arg_dtypes=(None, "int64", "int64"),
           api="getitem")
shape_spec("x[i, 1:]", lambda x, i: x[i, 1:], lambda x, i: x[i, 1:], [((3, 4), (2,))], arity=2,
           domain=("any", index(3)), arg_dtypes=(None, "int64"), api="getitem")
shape_spec("x[[0, 2, 0]]", lambda x: x[[0, 2, 0]], lambda x: x[[0, 2, 0]], [((3, 4),)],
           api="getitem")

# primitives that gradients create (the backends compile them too)
shape_spec("sum_to", lambda g, x: REGISTRY["sum_to"](g, x),
           lambda g, x: _sum_to_ref(g, x.shape),
           [((3, 4), (1, 4)), ((2, 3, 4), (3, 1)), ((5,), ()), ((3, 4), (3, 4)), ((0, 4), (1, 4))],
           arity=2, dtypes=("float32", "float64", "int64"))  # gradients: float in practice
shape_spec("split_part", lambda g, a, b: REGISTRY["split_part"](g, a, b, axis=1, part=1),
           lambda g, a, b: g[:, a.shape[1]:], [((2, 5), (2, 2), (2, 3)), ((2, 1), (2, 1), (2, 0))],
           arity=3)
shape_spec("ifelse", lambda c, a, b: REGISTRY["ifelse"](c > 0, a, b, n=1, part=0),
           lambda c, a, b: a if c > 0 else b, [((), (3,), (3,)), ((), (2, 3), (2, 3))],
           arity=3, dtypes=("float32", "float64", "int64"))
shape_spec("subtensor_grad", lambda x, g: REGISTRY["subtensor_grad"](
           x, g, index=(("s", 1, 3, 1), ("i", -1))), lambda x, g: _subtensor_grad_ref(x, g),
           [((4, 3), (2,))], arity=2)
shape_spec("scatter_add", lambda x, g, i: REGISTRY["scatter_add"](x, g, i),
           lambda x, g, i: _scatter_add_ref(x, g, i), [((5, 3), (4, 3), (4,)), ((5,), (6,), (6,))],
           arity=3, domain=("any", "any", index(5)), arg_dtypes=(None, None, "int64"),
           dtypes=NUMERIC)


# the loop (tests/test_scan.py has the rest): a running sum, state fed back each step
spec("scan(running sum)", lambda x: kg.scan(lambda v, acc: acc + v, sequences=x,
                                            outputs_info=kg.zeros_like(x[0]))[0],
     lambda x: np.cumsum(x, 0, dtype=x.dtype), 1, [((4,),), ((3, 2),)],
     dtypes=("float32", "float64", "int32", "int64"), api="scan", kind="loop")


# random draws: model (lends the shape), key, ctr, parameters; the reference is
# Philox4x32-10 in NumPy uint32 arithmetic (tests/test_random.py checks it
# against Random123's known-answer vectors)
def _draw_ref(name, dtype, *params):
    op = REGISTRY[name]

    def ref(m, key, ctr, *ps):
        return op.impl([m, key, ctr, *ps], {"dtype": dtype})
    return ref


_KEY = count(-2 ** 62, 2 ** 62)
_RANDOM_SHAPES = [((3, 4), (), ()), ((5,), (), ()), ((), (), ()), ((0, 3), (), ())]
for _dt in FLOATS:
    shape_spec(f"random_uniform[{_dt}]",
               lambda m, k, c, _dt=_dt: REGISTRY["random_uniform"](m, k, c, dtype=_dt),
               _draw_ref("random_uniform", _dt), _RANDOM_SHAPES, arity=3,
               domain=("any", _KEY, _KEY), arg_dtypes=(None, "int64", "int64"),
               dtypes=("int64",), api="random_uniform")
    # Box-Muller calls log and cos: libm's last bits, not NumPy's
    shape_spec(f"random_normal[{_dt}]",
               lambda m, k, c, _dt=_dt: REGISTRY["random_normal"](m, k, c, dtype=_dt),
               _draw_ref("random_normal", _dt), _RANDOM_SHAPES, arity=3,
               domain=("any", _KEY, _KEY), arg_dtypes=(None, "int64", "int64"),
               dtypes=("int64",), api="random_normal")
shape_spec("random_binomial", lambda m, k, c, n, p: REGISTRY["random_binomial"](
           m, k, c, n, p, dtype="int64"), _draw_ref("random_binomial", "int64"),
           [((3, 4), (), (), (), ()), ((2, 3), (), (), (3,), (2, 1))], arity=5,
           domain=("any", _KEY, _KEY, count(0, 5), "prob"),
           arg_dtypes=(None, "int64", "int64", "int64", "float64"), dtypes=("int64",))
shape_spec("random_integers", lambda m, k, c, lo, hi: REGISTRY["random_integers"](
           m, k, c, lo, lo + hi, dtype="int64"),
           lambda m, k, c, lo, hi: _draw_ref("random_integers", "int64")(m, k, c, lo, lo + hi),
           [((3, 4), (), (), (), ()), ((7,), (), (), (7,), ())], arity=5,
           domain=("any", _KEY, _KEY, "any", count(0, 6)),
           arg_dtypes=(None, "int64", "int64", "int64", "int64"), dtypes=("int64",))


def _sum_to_ref(g, shape):
    out = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(a for a, d in enumerate(shape) if d == 1 and out.shape[a] != 1)
    return out.sum(axis=axes, keepdims=True) if axes else out


def _subtensor_grad_ref(x, g):
    out = np.zeros(x.shape, g.dtype)
    out[1:3, -1] = g
    return out


def _scatter_add_ref(x, g, i):
    out = x.copy()
    for k, row in zip(i, g):  # one at a time, so repeated indices accumulate
        out[k] = out[k] + row
    return out


# ---- nnet -------------------------------------------------------------------------------------
spec("categorical_crossentropy(p, y)", kg.categorical_crossentropy,
     lambda p, y: -np.log(p[np.arange(p.shape[0]), y]), 2, [((4, 3), (4,)), ((0, 3), (0,))],
     domain=("positive", count(0, 2)), arg_dtypes=(None, "int64"), dtypes=FLOATS, kind="nnet",
     rejects=("bool",))
spec("categorical_crossentropy(p, t)", kg.categorical_crossentropy,
     lambda p, t: -np.sum(t * np.log(p), axis=-1), 2, [((4, 3), (4, 3)), ((3,), (3,))],
     domain=("positive", "prob"), dtypes=FLOATS, kind="nnet")
spec("categorical_crossentropy(p, onehot)", kg.categorical_crossentropy,
     lambda p, t: -np.sum(t * np.log(p), axis=-1), 2, [((4, 3), (4, 3))],
     domain=("positive", count(0, 1)), arg_dtypes=(None, "int64"), dtypes=FLOATS, kind="nnet")
spec("binary_crossentropy", kg.binary_crossentropy,
     lambda o, t: -(t * np.log(o) + (1 - t) * np.log(1 - o)), 2,
     [((5,), (5,)), ((3, 4), (3, 4)), ((3, 1), (1, 4)), ((0,), (0,))],
     domain=("prob", "prob"), dtypes=FLOATS, kind="nnet")
for _name in ("sigmoid", "relu", "softplus", "categorical_crossentropy",
              "binary_crossentropy"):
    assert getattr(kg.tensor.nnet, _name) is getattr(kg, _name)
# (T.nnet.softmax is Theano's: a vector gives a one-row matrix; tests/test_theano_names.py)

# ---- Theano's everyday names (kgen/expr/ops/everyday.py) ---------------------------------
T = kg.tensor
with_zeros = lambda rng, shape, dtype: np.where(rng.random(shape) < 0.3, 0,  # noqa: E731
                                                rng.uniform(0.1, 3.0, shape)).astype(dtype)
spec("add(a, b, c)", T.add, lambda a, b, c: a + b + c, 3, TERNARY_SHAPES, dtypes=NUMERIC)
spec("mul(a, b, c)", T.mul, lambda a, b, c: a * b * c, 3, TERNARY_SHAPES, dtypes=NUMERIC)
spec("add(a)", T.add, lambda a: a, 1, [((3,),)], api="add")
spec("sub(a, b)", T.sub, np.subtract, 2, BINARY_SHAPES[:3], dtypes=NUMERIC, api="sub")
spec("true_div(a, b)", T.true_div, np.true_divide, 2, BINARY_SHAPES[:3], dtypes=FLOATS,
     domain=("any", "nonzero"), api="true_div")
spec("int_div(a, b)", T.int_div, np.floor_divide, 2, BINARY_SHAPES[:3], dtypes=NUMERIC,
     domain=("any", "nonzero"), api="int_div")
spec("neg(a)", T.neg, np.negative, 1, UNARY_SHAPES[:3], dtypes=NUMERIC, api="neg")
spec("pow(a, b)", T.pow, np.power, 2, BINARY_SHAPES[:3], dtypes=FLOATS,
     domain=("base", "exponent"), api="pow")
spec("sqr", T.sqr, np.square, 1, UNARY_SHAPES, dtypes=NUMERIC)
spec("xlogx.xlogx", T.xlogx.xlogx,
     lambda x: np.where(x == 0, 0, x * np.log(np.where(x == 0, 1, x))), 1, UNARY_SHAPES[:4],
     dtypes=FLOATS, domain=(with_zeros,), api="xlogx")
spec("xlogx.xlogy0", T.xlogx.xlogy0,
     lambda x, y: np.where(x == 0, 0, x * np.log(np.where(x == 0, 1, y))), 2,
     [((5,), (5,)), ((3, 4), (4,))], dtypes=FLOATS, domain=(with_zeros, "positive"),
     api="xlogy0")
spec("zeros((x.shape[0], 3))", lambda x: T.zeros((x.shape[0], 3), x.dtype) + x[:, :1],
     lambda x: np.zeros((x.shape[0], 3), x.dtype) + x[:, :1], 1, [((2, 4),), ((0, 1),)],
     dtypes=FLOATS, api="zeros")
spec("zeros(3, dtype='int32')", lambda x: T.zeros(3, dtype="int32"),
     lambda x: np.zeros(3, "int32"), 1, [((),)], dtypes=("float64",), api="zeros")
spec("ones(x.shape)", lambda x: T.ones(x.shape, dtype=x.dtype),
     lambda x: np.ones(x.shape, x.dtype), 1, UNARY_SHAPES, api="ones")
spec("alloc(v, 2, v.shape[0])", lambda v: T.alloc(v, 2, v.shape[0]),
     lambda v: np.broadcast_to(v, (2, v.shape[0])).copy(), 1, [((3,),), ((0,),)], api="alloc")
spec("alloc(s, 2, 3)", lambda v: T.alloc(v, 2, 3), lambda v: np.broadcast_to(v, (2, 3)).copy(),
     1, [((),)], api="alloc")
spec("fill(x, v)", T.fill, lambda x, v: np.broadcast_to(v, np.broadcast_shapes(x.shape, v.shape))
     .copy(), 2, [((3, 4), ()), ((3, 4), (4,))], api="fill")
for _kw in ({}, {"axis": 1}, {"axis": -1, "keepdims": True}):
    for _name, _ref in (("any", np.any), ("all", np.all)):
        spec(_label(_name, _kw), lambda x, n=_name, kw=_kw: getattr(T, n)(x, **kw),
             lambda x, r=_ref, kw=_kw: r(x, **kw), 1,
             [((3, 4),), ((2, 3, 4),), ((0, 3),), ((3, 0),)] if _kw else UNARY_SHAPES,
             kind="reduce", domain=(count(0, 2),))
spec("sum(dtype='float64')", lambda x: T.sum(x, dtype="float64"),
     lambda x: np.sum(x, dtype="float64"), 1, [((3, 4),), ((0,),)], kind="reduce", api="sum")
spec("sum(axis=0, acc_dtype='float64')", lambda x: T.sum(x, axis=0, acc_dtype="float64"),
     lambda x: np.sum(x.astype("float64"), axis=0).astype(np.sum(x[:0]).dtype), 1,
     [((3, 4),), ((5,),)], kind="reduce", api="sum")
spec("sum(x, 1, 'int32')", lambda x: T.sum(x, 1, "int32"),
     lambda x: np.sum(x, 1, dtype="int32"), 1, [((3, 4),)], dtypes=("int32", "int64", "bool"),
     kind="reduce", api="sum")
spec("prod(dtype='float64')", lambda x: T.prod(x, dtype="float64"),
     lambda x: np.prod(x, dtype="float64"), 1, [((3, 4),), ((0,),)], kind="reduce", api="prod")
spec("mean(dtype='float32')", lambda x: T.mean(x, axis=0, dtype="float32"),
     lambda x: np.mean(x, axis=0, dtype="float32"), 1, [((3, 4),), ((5,),)], kind="reduce",
     api="mean")
spec("tile(x, (2, 3))", lambda x: T.tile(x, (2, 3)), lambda x: np.tile(x, (2, 3)), 1,
     [((3,),), ((2, 4),), ((0, 2),), ((),)], api="tile")
spec("tile(x, 2)", lambda x: T.tile(x, 2), lambda x: np.tile(x, 2), 1,
     [((3,),), ((2, 3, 2),)], api="tile")
spec("repeat(x, 2, axis=1)", lambda x: T.repeat(x, 2, axis=1), lambda x: np.repeat(x, 2, axis=1),
     1, [((2, 3),), ((2, 3, 4),), ((2, 0),)], api="repeat")
spec("repeat(x, 3)", lambda x: T.repeat(x, 3), lambda x: np.repeat(x, 3), 1,
     [((),), ((2, 3),), ((4,),)], api="repeat")
spec("join(0, a, b)", lambda a, b: T.join(0, a, b), lambda a, b: np.concatenate([a, b], 0), 2,
     [((2, 3), (1, 3)), ((3,), (0,))], api="join")
spec("join(-1, a, b, c)", lambda a, b, c: T.join(-1, a, b, c),
     lambda a, b, c: np.concatenate([a, b, c], -1), 3, [((2, 3), (2, 1), (2, 2))], api="join")
ND_DOT = [((2, 3, 4), (4, 5)), ((2, 3, 4), (4,)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (3, 4, 2)),
          ((4,), (2, 4, 3)), ((2, 0, 4), (4, 5))]
spec("dot(3-d, 2-d)", T.dot, np.dot, 2, ND_DOT, api="dot", **LINALG)
spec("tensordot(2)", lambda a, b: T.tensordot(a, b), lambda a, b: np.tensordot(a, b), 2,
     [((2, 3, 4), (3, 4, 5)), ((3, 4), (3, 4)), ((2, 3), (2, 3, 2))], api="tensordot", **LINALG)
spec("tensordot(1)", lambda a, b: T.tensordot(a, b, 1), lambda a, b: np.tensordot(a, b, 1), 2,
     [((2, 3), (3, 4)), ((3,), (3,))], api="tensordot", **LINALG)
spec("tensordot([[0, 2], [2, 0]])", lambda a, b: T.tensordot(a, b, [[0, 2], [2, 0]]),
     lambda a, b: np.tensordot(a, b, [[0, 2], [2, 0]]), 2, [((2, 3, 4), (4, 5, 2))],
     api="tensordot", **LINALG)
spec("tensordot(0)", lambda a, b: T.tensordot(a, b, 0), lambda a, b: np.tensordot(a, b, 0), 2,
     [((2, 3), (4,)), ((), (3,))], api="tensordot", **LINALG)
spec("batched_dot", T.batched_dot,
     lambda a, b: np.stack([np.dot(x, y) for x, y in zip(a, b)]),  # dot of each pair
     2, [((2, 3, 4), (2, 4, 5)), ((2, 4), (2, 4)), ((2, 3, 4), (2, 4)), ((2, 4), (2, 4, 3)),
         ((2, 3, 2, 4), (2, 4, 5))], **LINALG)

spec("specify_shape(x, (3, None))", lambda x: T.specify_shape(x, (3, None)), lambda x: x, 1,
     [((3, 4),), ((3, 0),)], api="specify_shape")
spec("specify_shape(x, x.shape)", lambda x: T.specify_shape(x, (2,)) * 2, lambda x: x * 2, 1,
     [((2,),)], dtypes=NUMERIC, api="specify_shape")
AXIS_SHAPES = [((5,),), ((3, 4),), ((2, 3, 4),), ((0, 3),), ((3, 0),)]
for _name, _ref in (("cumsum", np.cumsum), ("cumprod", np.cumprod)):
    spec(f"{_name}(axis=None)", getattr(T, _name), _ref, 1, [((),), ((5,),), ((3, 4),), ((0,),)],
         api=_name, domain=("unit",) if _name == "cumprod" else ())
    for _ax in (0, -1, 1):
        spec(f"{_name}(axis={_ax})", lambda x, f=getattr(T, _name), a=_ax: f(x, axis=a),
             lambda x, r=_ref, a=_ax: r(x, axis=a), 1,
             [s for s in AXIS_SHAPES if len(s[0]) > (_ax if _ax >= 0 else 0)], api=_name,
             domain=("unit",) if _name == "cumprod" else ())
spec("cumsum(x.T, axis=0)", lambda x: T.cumsum(x.T, axis=0), lambda x: np.cumsum(x.T, axis=0), 1,
     [((3, 4),)], api="cumsum")
with_ties = lambda rng, shape, dtype: (rng.integers(-2, 3, shape) *  # noqa: E731
                                       (1 if np.dtype(dtype).kind != "f" else 0.5)).astype(dtype)
with_nans = lambda rng, shape, dtype: np.where(rng.random(shape) < 0.2, np.nan,  # noqa: E731
                                               rng.uniform(-3, 3, shape)).astype(dtype)
for _name, _ref in (("sort", np.sort), ("argsort", np.argsort)):
    for _kw in ({}, {"axis": 0}, {"axis": None}):
        spec(_label(_name, _kw), lambda x, f=getattr(T, _name), kw=_kw: f(x, **kw),
             lambda x, r=_ref, kw=_kw: r(x, kind="stable", **kw), 1,
             [((6,),), ((3, 4),), ((2, 3, 5),), ((0, 3),)] if _kw.get("axis", 1) is not None
             else [((),), ((3, 4),), ((0,),)], api=_name, domain=(with_ties,))
    spec(f"{_name}(nan)", getattr(T, _name), lambda x, r=_ref: r(x, kind="stable"), 1,
         [((7,),), ((3, 5),)], dtypes=FLOATS, api=_name, domain=(with_nans,))
spec("sort(x.T)", lambda x: T.sort(x.T), lambda x: np.sort(x.T), 1, [((3, 4),)], api="sort")


def _updated(x, key, y, how):
    out = x.copy()
    if how == "set":
        out[key] = y
    elif isinstance(key, np.ndarray) or isinstance(key[0], np.ndarray):
        np.add.at(out, key, y)  # repeated indices accumulate
    else:
        out[key] += y
    return out


spec("set_subtensor(x[1:3], y)", lambda x, y: T.set_subtensor(x[1:3], y),
     lambda x, y: _updated(x, slice(1, 3), y, "set"), 2, [((4, 3), (3,)), ((4, 3), (2, 3)),
                                                          ((5,), ())], api="set_subtensor")
spec("set_subtensor(x[:, 0], 0)", lambda x: T.set_subtensor(x[:, 0], 0),
     lambda x: _updated(x, (slice(None), 0), 0, "set"), 1, [((4, 3),), ((0, 2),)],
     api="set_subtensor")
spec("inc_subtensor(x[::-2, 1], y)", lambda x, y: T.inc_subtensor(x[::-2, 1], y),
     lambda x, y: _updated(x, (slice(None, None, -2), 1), y, "inc"), 2,
     [((5, 3), (3,)), ((4, 2), ())], dtypes=NUMERIC, api="inc_subtensor")
spec("inc_subtensor(x[i], y)", lambda x, i, y: T.inc_subtensor(x[i], y),
     lambda x, i, y: _updated(x, i, y, "inc"), 3, [((4, 3), (5,), (5, 3)), ((4, 3), (5,), (3,)),
                                                   ((4,), (6,), ())],
     domain=("any", lambda rng, shape, dtype: rng.integers(-2, 2, shape).astype(dtype)),
     arg_dtypes=(None, "int64"), dtypes=NUMERIC, api="inc_subtensor")
spec("set_subtensor(x[i], 7)", lambda x, i: T.set_subtensor(x[i], 7),
     lambda x, i: _updated(x, i, 7, "set"), 2, [((4, 3), (5,)), ((4,), (0,))],
     domain=("any", index(4)), arg_dtypes=(None, "int64"), dtypes=NUMERIC, api="set_subtensor")
spec("inc_subtensor(x[i, 1:], y)", lambda x, i, y: T.inc_subtensor(x[i, 1:], y),
     lambda x, i, y: _updated(x, (i, slice(1, None)), y, "inc"), 3,
     [((4, 3), (5,), (2,)), ((4, 3), (2,), (2, 2))], domain=("any", index(4)),
     arg_dtypes=(None, "int64"), dtypes=NUMERIC, api="inc_subtensor")
spec("set_subtensor(x[i, ::2], y)", lambda x, i, y: T.set_subtensor(x[i, ::2], y),
     lambda x, i, y: _updated(x, (i, slice(None, None, 2)), y, "set"), 3,
     [((5, 3), (3,), (3, 2)), ((5, 4), (2,), ())],
     domain=("any", lambda rng, shape, dtype: rng.permutation(5)[:shape[0]].astype(dtype)),
     arg_dtypes=(None, "int64"), dtypes=NUMERIC, api="set_subtensor")
spec("set_subtensor(x[i], y)", lambda x, i, y: T.set_subtensor(x[i], y),
     lambda x, i, y: _updated(x, i, y, "set"), 3, [((5, 3), (3,), (3, 3)), ((5,), (2,), (2,))],
     domain=("any", lambda rng, shape, dtype: rng.permutation(5)[:shape[0]].astype(dtype)),
     arg_dtypes=(None, "int64"), dtypes=NUMERIC, api="set_subtensor")

# ---- convolution and pooling (kgen.tensor.nnet, kgen.tensor.signal) ----------------------
def _conv_ref(x, w, pad=(0, 0), stride=(1, 1), flip=True):
    """sum over channels and taps of the zero-padded input's windows times the
    (flipped, for a true convolution) filters."""
    w = w[:, :, ::-1, ::-1] if flip else w
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1]]
    return np.einsum("bcijpq,ocpq->boij", win, w).astype(x.dtype)


def _pool_ref(x, ws, ignore_border, reduce):
    h, w = x.shape[-2:]
    oh, ow = (h // ws[0], w // ws[1]) if ignore_border else (-(-h // ws[0]), -(-w // ws[1]))
    out = np.zeros(x.shape[:-2] + (oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[..., i, j] = reduce(x[..., i * ws[0]:(i + 1) * ws[0], j * ws[1]:(j + 1) * ws[1]],
                                    axis=(-2, -1))
    return out


CONV = dict(kind="conv", dtypes=FLOATS, rejects=("int32", "int64"), tol32=1e-4)
spec("conv2d(valid)", lambda x, w: T.nnet.conv2d(x, w, filter_shape=(3, 2, 2, 3)), _conv_ref, 2,
     [((2, 2, 5, 6), (3, 2, 2, 3))], api="conv2d", **CONV)
spec("conv2d(full, subsample=(2, 1), filter_flip=False)",
     lambda x, w: T.nnet.conv2d(x, w, filter_shape=(2, 1, 3, 2), border_mode="full",
                                subsample=(2, 1), filter_flip=False),
     lambda x, w: _conv_ref(x, w, (2, 1), (2, 1), False), 2, [((1, 1, 4, 5), (2, 1, 3, 2))],
     api="conv2d", **CONV)
spec("pool_2d(max)", lambda x: T.signal.pool.pool_2d(x, (2, 2)),
     lambda x: _pool_ref(x, (2, 2), True, np.max), 1, [((2, 3, 5, 4),), ((4, 6),)],
     kind="conv", dtypes=NUMERIC, api="pool_2d")
spec("pool_2d(sum, ignore_border=False)",
     lambda x: T.signal.pool.pool_2d(x, (2, 3), ignore_border=False, mode="sum"),
     lambda x: _pool_ref(x, (2, 3), False, np.sum), 1, [((3, 5, 4),)], kind="conv",
     dtypes=NUMERIC, api="pool_2d")
spec("pool_2d(average_exc_pad)",
     lambda x: T.signal.pool.pool_2d(x, (2, 2), ignore_border=False, mode="average_exc_pad"),
     lambda x: _pool_ref(x, (2, 2), False, np.mean), 1, [((2, 5, 3),)], kind="conv",
     dtypes=FLOATS, rejects=("int32", "int64"), api="pool_2d")



# the gradient ops of conv2d and of non-overlapping max pooling (kgen/expr/ops/conv.py,
# pool.py), against adjoints written here as loops over the output positions
def _conv_grads_ref(x, w, g, pad, stride):
    """(dx, dw) of sum(g * correlation(x, w)) (filter_flip=False), tap by tap."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            r, c = i * stride[0], j * stride[1]
            win = xp[:, :, r:r + w.shape[2], c:c + w.shape[3]]
            dxp[:, :, r:r + w.shape[2], c:c + w.shape[3]] += np.einsum("bo,ocpq->bcpq",
                                                                     g[:, :, i, j], w)
            dw += np.einsum("bo,bcpq->ocpq", g[:, :, i, j], win)
    h, wd = x.shape[2:]
    return dxp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd].astype(x.dtype), dw.astype(x.dtype)


def _conv_grad(which):
    def build(x, w, g):
        y = T.nnet.conv2d(x, w, filter_shape=(3, 2, 2, 3), border_mode=1, subsample=(2, 1),
                          filter_flip=False)
        return kg.grad(kg.sum(y * g), [x, w][which])
    return build


for _k, _what in enumerate(("input", "filters")):
    spec(f"conv2d_grad_{_what}", _conv_grad(_k),
         lambda x, w, g, _k=_k: _conv_grads_ref(x, w, g, (1, 1), (2, 1))[_k], 3,
         [((2, 2, 5, 6), (3, 2, 2, 3), (2, 3, 3, 6))], **CONV)


def _max_pool_masks(x, ws):
    """Per whole window, where x equals the window's maximum."""
    r, c = x.shape[-2] // ws[0], x.shape[-1] // ws[1]
    win = x[..., :r * ws[0], :c * ws[1]].reshape(x.shape[:-2] + (r, ws[0], c, ws[1]))
    return win == win.max(axis=(-3, -1), keepdims=True), (r, c)


def _max_pool_grad_ref(x, g, ws=(2, 2)):
    tied, (r, c) = _max_pool_masks(x, ws)
    out = np.zeros_like(x)
    out[..., :r * ws[0], :c * ws[1]] = (tied * g[..., :, None, :, None]).reshape(
        x.shape[:-2] + (r * ws[0], c * ws[1]))
    return out


def _max_pool_gradgrad_ref(x, h, ws=(2, 2)):
    tied, (r, c) = _max_pool_masks(x, ws)
    hw = h[..., :r * ws[0], :c * ws[1]].reshape(tied.shape)
    return (tied * hw).sum(axis=(-3, -1)).astype(x.dtype)


spec("max_pool_2d_grad", lambda x, g: kg.grad(kg.sum(T.signal.pool.pool_2d(x, (2, 2)) * g), x),
     _max_pool_grad_ref, 2, [((2, 3, 5, 4), (2, 3, 2, 2)), ((4, 6), (2, 3))], kind="conv",
     dtypes=FLOATS)
spec("max_pool_2d_gradgrad", lambda x, h: REGISTRY["max_pool_2d_gradgrad"](x, h, ws=(2, 2)),
     _max_pool_gradgrad_ref, 2, [((2, 3, 5, 4), (2, 3, 5, 4))], kind="conv", dtypes=NUMERIC)

# public functions of kgen.expr.ops.api that are internal helpers, not user ops
HELPERS = {
    "as_variable": "wraps arguments; exercised by every weak-scalar test",
    "constant": "tested in test_ops (constants)",
    "count": "the element count used by mean/var",
    "drop_axes": "used by squeeze, logsumexp",
    "swap_last": "used by matmul's gradient",
    "expand_reduced": "used by reduction gradients",
    "broadcast_like": "used by reduction gradients",
    "switch": "an alias of where (checked in test_ops)",
    "arange_op": "an alias of the arange primitive",
}


def by_name(name):
    return next(s for s in SPECS if s.name == name)


def cases(specs=None):
    """(spec, dtype, shapes) for every case the table describes."""
    for s in specs or SPECS:
        yield from itertools.product([s], s.dtypes, s.shapes)


__all__ = ["ALL_DTYPES", "FLOATS", "NUMERIC", "HELPERS", "OpSpec", "SPECS", "by_name", "cases",
           "sample"]
