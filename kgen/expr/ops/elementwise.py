"""Elementwise primitives: one declaration per op.

Each record carries its NumPy reference (`ufunc`), its type rule (NumPy's own
loop resolution, which gives NEP 50 promotion for weak Python scalars), its
derivative, its algebraic facts, and its scalar C expression. C templates use
`{0}`, `{1}`... for operands already cast to the loop dtype, `{f}` for the
float32 suffix of libm names (`expf`), `{t}` for the C type and `{s}` for the
dtype tag of `kg_*` helpers in templates/c/kg_ops.h. `cuda` overrides `c` only
where CUDA differs.
"""
import math

import numpy as np

from ...errors import KgenTypeError
from ..op import Op
from ..types import SUPPORTED_DTYPES, TensorType, broadcast_shapes, format_shape

LN2, LN10 = math.log(2.0), math.log(10.0)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


_LOOP_CACHE = {}


class Elementwise(Op):
    """f applied pointwise over broadcast inputs."""

    arity = 1
    ufunc = None          # NumPy reference (a ufunc, or a function if `resolve_with` is set)
    resolve_with = None   # ufunc whose dtype rule this op follows when `ufunc` is not one
    c = None
    cuda = None
    domain = "any"        # input sampler for tests: any, positive, unit, nonzero...
    # algebraic facts (commutative, identity, absorbing...): declared per op
    # below, defaults on the base Op (kgen/expr/op.py)
    int_ok = True         # accepts int/bool inputs
    # reads (operand positions the C expression reads): on the base Op
    c_by_literal = {}     # (operand position, literal value) -> C template, float loops only
    c_by_input = {}       # the (last) operand's dtype -> C template, where it differs

    def prepare(self, inputs, attrs):
        if len(inputs) != self.arity:
            raise KgenTypeError(f"{self.name} takes {self.arity} argument(s), got {len(inputs)}")
        return inputs, attrs

    def loop_dtypes(self, inputs):
        """(operand dtypes, result dtype) of the NumPy loop this op runs."""
        operands = tuple(getattr(x, "promote_as", None) or x.dtype for x in inputs)
        cached = _LOOP_CACHE.get((self.name, operands))
        if cached is None:  # NumPy's resolution is slow; graphs repeat few dtype combos
            cached = _LOOP_CACHE[(self.name, operands)] = self._resolve(inputs, operands)
        for x, dt in zip(inputs, cached[0]):
            if getattr(x, "weak", False) and x.dtype == "int64" and dt in ("int32", "int64"):
                info = np.iinfo(dt)
                if not info.min <= x.value.item() <= info.max:
                    raise KgenTypeError(f"{self.name}: Python integer {x.value.item()} does not "
                                        f"fit in {dt}, the other operand's dtype (NEP 50)")
        return cached

    def _resolve(self, inputs, operands):
        ufunc = self.resolve_with or self.ufunc
        operands = tuple(np.dtype(o) if isinstance(o, str) else o for o in operands)
        try:
            resolved = ufunc.resolve_dtypes(operands + (None,))
        except TypeError as exc:
            dts = ", ".join(x.dtype for x in inputs)
            raise KgenTypeError(f"{self.name}: not defined for dtype(s) {dts}: {exc}") from None
        names = [d.name for d in resolved]
        if names[-1] not in SUPPORTED_DTYPES:
            dts = ", ".join(x.dtype for x in inputs)
            raise KgenTypeError(
                f"{self.name} of {dts} would give {names[-1]}, which kgen does not support; "
                f"cast the input first")
        return tuple(names[:-1]), names[-1]

    def infer(self, inputs, attrs):
        if not self.int_ok:
            for x in inputs:
                if x.dtype not in ("float32", "float64"):
                    raise KgenTypeError(f"{self.name}: needs float input, got {x.dtype}")
        shape = broadcast_shapes(self.name, *(x.type.shape for x in inputs))
        _, out = self.loop_dtypes(inputs)
        return TensorType(out, shape)

    def impl(self, arrays, attrs):
        return self.ufunc(*arrays)


def unary(name, ufunc, c, vjp=None, **facts):
    return Elementwise(name, arity=1, ufunc=ufunc, c=c, vjp_rule=vjp, **facts)


def binary(name, ufunc, c, vjp=None, **facts):
    return Elementwise(name, arity=2, ufunc=ufunc, c=c, vjp_rule=vjp, **facts)


def _erf(x):
    # computed in float64 (otypes from an int input would truncate to 0); the
    # evaluator casts to the node's dtype
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _sigmoid(x):
    # exp of a non-positive argument only, so neither branch overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.result_type(x, np.float16))


def _softplus(x):
    return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(np.result_type(x, np.float16))


def _relu(x):
    return np.maximum(x, np.zeros((), x.dtype) if hasattr(x, "dtype") else 0)


def _norm2(y, x):
    return y * y + x * x


def _cast_impl(arrays, attrs):
    return np.asarray(arrays[0]).astype(attrs["dtype"])


# ---- arithmetic -------------------------------------------------------------
add = binary("add", np.add, "({0} + {1})", lambda n, g: [g, g],
             commutative=True, associative=True, identity=0, pretty="{0} + {1}", precedence=10)
sub = binary("sub", np.subtract, "({0} - {1})", lambda n, g: [g, -g],
             identity=0, pretty="{0} - {1}", precedence=10)
mul = binary("mul", np.multiply, "({0} * {1})",
             lambda n, g: [g * n.inputs[1], g * n.inputs[0]],
             commutative=True, associative=True, identity=1, absorbing=0,
             pretty="{0} * {1}", precedence=20)
true_div = binary("true_div", np.true_divide, "({0} / {1})",
                  lambda n, g: [g / n.inputs[1], -g * n / n.inputs[1]],
                  identity=1, pretty="{0} / {1}", precedence=20)
floor_div = binary("floor_div", np.floor_divide, "kg_floordiv_{s}({0}, {1})", "zero",
                   pretty="{0} // {1}", precedence=20, domain="nonzero")
mod = binary("mod", np.remainder, "kg_mod_{s}({0}, {1})",
             lambda n, g: [g, -g * floor_div(n.inputs[0], n.inputs[1])],
             pretty="{0} % {1}", precedence=20, domain="nonzero")
power = binary("pow", np.power, "kg_pow_{s}({0}, {1})",
               lambda n, g: [g * n.inputs[1] * n.inputs[0] ** (n.inputs[1] - 1),
                             g * n * log(n.inputs[0])],
               identity=1, pretty="{0} ** {1}", precedence=40, domain="pow",
               # small literal float exponents: a multiply or sqrt beats a pow call
               c_by_literal={(1, 2.0): "({0} * {0})", (1, 3.0): "({0} * {0} * {0})",
                             (1, 0.5): "sqrt{f}({0})", (1, -1.0): "(1 / {0})"})
neg = unary("neg", np.negative, "(-{0})", lambda n, g: [-g], involution=True, parity="odd",
            pretty="-{0}", precedence=30)
maximum = binary("maximum", np.maximum, "kg_max_{s}({0}, {1})",
                 # ties (and NaN in the second argument) send the whole gradient
                 # to the first argument, so clip passes it at its bounds (Theano)
                 lambda n, g: [where(n.inputs[0] >= n.inputs[1], g, 0),
                               where(n.inputs[0] >= n.inputs[1], 0, g)],
                 commutative=True, associative=True, idempotent=True)
minimum = binary("minimum", np.minimum, "kg_min_{s}({0}, {1})",
                 # ties send the whole gradient to the first argument, as maximum
                 lambda n, g: [where(n.inputs[0] <= n.inputs[1], g, 0),
                               where(n.inputs[0] <= n.inputs[1], 0, g)],
                 commutative=True, associative=True, idempotent=True)
abs_ = unary("abs", np.abs, "kg_abs_{s}({0})",
             # subgradient 0 at 0 (sign(0) = 0), as Theano and JAX
             lambda n, g: [g * sign(n.inputs[0])], idempotent=True, parity="even")
sign = unary("sign", np.sign, "kg_sign_{s}({0})", "zero", idempotent=True, parity="odd")
reciprocal = unary("reciprocal", np.reciprocal, "kg_recip_{s}({0})",
                   lambda n, g: [-g * n * n], domain="nonzero")

# ---- exponentials and logarithms -------------------------------------------
exp = unary("exp", np.exp, "exp{f}({0})", lambda n, g: [g * n], inverse="log")
exp2 = unary("exp2", np.exp2, "exp2{f}({0})", lambda n, g: [g * n * LN2], inverse="log2")
log = unary("log", np.log, "log{f}({0})", lambda n, g: [g / n.inputs[0]], domain="positive",
            inverse="exp")
log2 = unary("log2", np.log2, "log2{f}({0})", lambda n, g: [g / (n.inputs[0] * LN2)], domain="positive",
             inverse="exp2")
log10 = unary("log10", np.log10, "log10{f}({0})", lambda n, g: [g / (n.inputs[0] * LN10)],
              domain="positive")
log1p = unary("log1p", np.log1p, "log1p{f}({0})", lambda n, g: [g / (1 + n.inputs[0])],
              domain="positive", inverse="expm1")
expm1 = unary("expm1", np.expm1, "expm1{f}({0})", lambda n, g: [g * (n + 1)], inverse="log1p")
sqrt = unary("sqrt", np.sqrt, "sqrt{f}({0})", lambda n, g: [g / (2 * n)], domain="positive")

# ---- trigonometric and hyperbolic -------------------------------------------
# kg_sin/kg_cos (kg_math.h): gcc must not merge the two into an unvectorizable sincos
sin = unary("sin", np.sin, "kg_sin{f}({0})", lambda n, g: [g * cos(n.inputs[0])], parity="odd")
cos = unary("cos", np.cos, "kg_cos{f}({0})", lambda n, g: [-g * sin(n.inputs[0])], parity="even")
tan = unary("tan", np.tan, "tan{f}({0})", lambda n, g: [g * (1 + n * n)], domain="unit")
arcsin = unary("arcsin", np.arcsin, "asin{f}({0})",
               lambda n, g: [g / sqrt(1 - n.inputs[0] * n.inputs[0])], domain="unit")
arccos = unary("arccos", np.arccos, "acos{f}({0})",
               lambda n, g: [-g / sqrt(1 - n.inputs[0] * n.inputs[0])], domain="unit")
arctan = unary("arctan", np.arctan, "atan{f}({0})",
               lambda n, g: [g / (1 + n.inputs[0] * n.inputs[0])])
arctan2 = binary("arctan2", np.arctan2, "atan2{f}({0}, {1})",
                 lambda n, g: [g * n.inputs[1] / _norm2(*n.inputs),
                               -g * n.inputs[0] / _norm2(*n.inputs)],
                 domain="nonzero")
sinh = unary("sinh", np.sinh, "sinh{f}({0})", lambda n, g: [g * cosh(n.inputs[0])], parity="odd")
cosh = unary("cosh", np.cosh, "cosh{f}({0})", lambda n, g: [g * sinh(n.inputs[0])], parity="even")
# C: kgen's own tanh (kg_math.h), which inlines and vectorizes; CUDA's is fast already
tanh = unary("tanh", np.tanh, "kg_tanh{f}({0})", lambda n, g: [g * (1 - n * n)], parity="odd",
             cuda="tanh{f}({0})")
erf = unary("erf", _erf, "erf{f}({0})",
            lambda n, g: [g * TWO_OVER_SQRT_PI * exp(-n.inputs[0] * n.inputs[0])],
            resolve_with=np.sin)

# ---- neural-net scalars: primitives for stability (and so the simplifier can
# ---- recognise log(sigmoid(x)) and friends) -----------------------------------
sigmoid = unary("sigmoid", _sigmoid, "kg_sigmoid_{s}({0})", lambda n, g: [g * n * (1 - n)],
                resolve_with=np.exp)
softplus = unary("softplus", _softplus, "kg_softplus_{s}({0})",
                 lambda n, g: [g * sigmoid(n.inputs[0])], resolve_with=np.exp)
relu = unary("relu", _relu, "kg_relu_{s}({0})",
             # subgradient 0 at 0, as Theano (and unlike maximum(x, 0), whose
             # tie goes to x)
             lambda n, g: [where(n.inputs[0] > 0, g, 0)], resolve_with=np.positive)

# ---- rounding ----------------------------------------------------------------
# (CUDA: C converts an int argument of floor() to double, but C++ would pick
# <cmath>'s host-only integer template, so CUDA calls kg_cuda.h's typed helpers)
floor = unary("floor", np.floor, "floor{f}({0})", "zero", idempotent=True,
              cuda="kg_floor_{s}({0})")
ceil = unary("ceil", np.ceil, "ceil{f}({0})", "zero", idempotent=True, cuda="kg_ceil_{s}({0})")
round_ = unary("round", np.rint, "rint{f}({0})", "zero",  # half to even, as NumPy
               cuda="kg_rint_{s}({0})")

# ---- comparisons and logic (bool results, zero gradient) ---------------------
lt = binary("lt", np.less, "({0} < {1})", "zero", pretty="{0} < {1}", precedence=2)
le = binary("le", np.less_equal, "({0} <= {1})", "zero", pretty="{0} <= {1}", precedence=2)
gt = binary("gt", np.greater, "({0} > {1})", "zero", pretty="{0} > {1}", precedence=2)
ge = binary("ge", np.greater_equal, "({0} >= {1})", "zero", pretty="{0} >= {1}", precedence=2)
eq = binary("eq", np.equal, "({0} == {1})", "zero", commutative=True,
            pretty="eq({0}, {1})")
neq = binary("neq", np.not_equal, "({0} != {1})", "zero", commutative=True,
             pretty="neq({0}, {1})")
and_ = binary("and", np.bitwise_and, "({0} & {1})", "zero", commutative=True,
              associative=True, idempotent=True, pretty="{0} & {1}", precedence=4)
or_ = binary("or", np.bitwise_or, "({0} | {1})", "zero", commutative=True,
             associative=True, idempotent=True, pretty="{0} | {1}", precedence=3)
invert = unary("invert", np.invert, "kg_invert_{s}({0})", "zero", involution=True,
               pretty="~{0}", precedence=30)
isnan = unary("isnan", np.isnan, "kg_isnan_{s}({0})", "zero")
isinf = unary("isinf", np.isinf, "kg_isinf_{s}({0})", "zero")


class Where(Elementwise):
    """where(cond, a, b): the dtype is a and b's promotion; cond is any dtype."""

    def loop_dtypes(self, inputs):
        _, out = add.loop_dtypes(inputs[1:])
        return (inputs[0].dtype, out, out), out

    def impl(self, arrays, attrs):
        return np.where(arrays[0], arrays[1], arrays[2])


where = Where("where", arity=3, c="({0} ? {1} : {2})",
              vjp_rule=lambda n, g: [None, where(n.inputs[0], g, 0), where(n.inputs[0], 0, g)])


class Cast(Elementwise):
    """cast(x, dtype): NumPy's astype (unsafe, C-style truncation for float->int)."""

    def prepare(self, inputs, attrs):
        from ..types import check_dtype
        return inputs, {"dtype": check_dtype(attrs["dtype"], "cast")}

    def loop_dtypes(self, inputs):
        return (inputs[0].dtype,), None  # the result dtype is the node's attr

    def infer(self, inputs, attrs):
        return TensorType(attrs["dtype"], inputs[0].type.shape)

    def impl(self, arrays, attrs):
        return _cast_impl(arrays, attrs)


cast = Cast("cast", c="(({t}){0})",
            # from bool, a select: gcc 12 does not vectorize a loop that converts
            # a bool to a float (a draw compared with p, cast to float32)
            c_by_input={"bool": "({0} ? ({t})1 : ({t})0)"},
            # the walker casts g back to the input's dtype; int inputs get none
            vjp_rule=lambda n, g: [g if n.inputs[0].dtype in ("float32", "float64") else None])


class Second(Elementwise):
    """second(a, b) = b broadcast against a (Theano's `fill`): how zeros_like,
    ones_like and gradients of reductions get a runtime shape."""

    def loop_dtypes(self, inputs):
        return (inputs[0].dtype, inputs[1].dtype), inputs[1].dtype

    def impl(self, arrays, attrs):
        a, b = np.asarray(arrays[0]), np.asarray(arrays[1])
        return np.broadcast_to(b, np.broadcast_shapes(a.shape, b.shape)).copy()


second = Second("second", arity=2, c="{1}", vjp_rule=lambda n, g: [None, g],
                reads=(1,))  # operand 0 only lends its shape


class StopGradient(Elementwise):
    """Identity whose derivative is zero: marks a value as a constant for grad
    (used inside stable softmax/logsumexp, whose results do not depend on it)."""

    def loop_dtypes(self, inputs):
        return (inputs[0].dtype,), inputs[0].dtype

    def impl(self, arrays, attrs):
        return np.asarray(arrays[0]).copy()


stop_gradient = StopGradient("stop_gradient", c="{0}", vjp_rule="zero")


def check_float_only(name, x):
    if x.dtype not in ("float32", "float64"):
        raise KgenTypeError(f"{name}: needs a float input, got {x.dtype} {format_shape(x.type.shape)}")
