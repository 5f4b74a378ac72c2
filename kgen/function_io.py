"""Theano's function inputs: `In(x, value=..., name=...)`, input casting rules and
the unused-input check (`on_unused_input=`).

`function` unpacks its inputs into plain variables plus CallOptions (per-input
call names, defaults and cast rules), which it stores on the kg.Kernel it
builds; the runtimes' CallSignature reads them when binding a call.
"""
import warnings

import numpy as np

from .errors import KgenError, KgenTypeError
from .expr.node import Input, Variable
from .runtime import core

MISSING = core.MISSING  # "no default": an argument the call must give


class UnusedInputError(KgenError, ValueError):
    """An input that no output or update uses, with on_unused_input='raise'."""


class In:
    """Theano's input description: `In(x, value=1.0, name='rate')`.

    value:           a default; the call may then omit the argument
    name:            the keyword the call uses for it (default: the variable's name)
    strict:          True: the argument must already be an array of x's exact dtype
    allow_downcast:  True: cast the argument to x's dtype even when it loses
                     precision (None/False: only NumPy's 'safe' casts)
    mutable, borrow, autoname: accepted (kgen never writes its inputs)
    """

    def __init__(self, variable, name=None, value=None, update=None, mutable=False,
                 strict=False, allow_downcast=None, autoname=True, implicit=None,
                 borrow=None, shared=False):
        if not isinstance(variable, Input):
            raise KgenTypeError(f"In: expected a symbolic input variable, got {variable!r}")
        if update is not None or implicit or shared:
            raise KgenTypeError("In: update=, implicit= and shared= are not supported; use a "
                                "kg.shared variable and function(updates=...) instead")
        if name is not None and not isinstance(name, str):
            raise KgenTypeError(f"In: name must be a string, got {name!r}")
        self.variable, self.name, self.value = variable, name, value
        self.strict, self.allow_downcast = bool(strict), allow_downcast
        self.mutable, self.borrow, self.autoname = mutable, borrow, autoname

    def __repr__(self):
        return f"In({self.variable!r}, name={self.name!r}, value={self.value!r})"


class Param(In):
    """Theano's older name for In, with `default=` for `value=`
    (`theano.Param(corruption_level, default=0.2)`, as older tutorial copies
    write it). Deprecated in Theano, and here: it warns once."""

    def __init__(self, variable, default=None, name=None, mutable=False, strict=False,
                 allow_downcast=None, implicit=None, borrow=None):
        warnings.warn("Param is deprecated: write In(variable, value=default)",
                      DeprecationWarning, stacklevel=2)
        super().__init__(variable, name=name, value=default, mutable=mutable, strict=strict,
                         allow_downcast=allow_downcast, implicit=implicit, borrow=borrow)


class Out:
    """Theano's output description: `Out(expr, borrow=True)`. `borrow` is
    accepted and changes nothing: every call returns fresh arrays, which the
    caller owns (there is no buffer kept between calls to alias)."""

    def __init__(self, variable, borrow=False):
        if not isinstance(variable, Variable):
            raise KgenTypeError(f"Out: expected a symbolic variable, got {variable!r}")
        self.variable, self.borrow = variable, bool(borrow)

    def __repr__(self):
        return f"Out({self.variable!r}, borrow={self.borrow})"


def unwrap_outputs(outputs):
    """function's outputs with each Out replaced by its variable."""
    if isinstance(outputs, Out):
        return outputs.variable
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(o.variable if isinstance(o, Out) else o for o in outputs)
    return outputs


class CallOptions:
    """How a call binds arguments: `names` (one per input), `defaults` (an array
    or MISSING), `casts` ('safe', 'downcast' or 'strict')."""

    def __init__(self, names, defaults, casts):
        self.names, self.defaults, self.casts = list(names), list(defaults), list(casts)

    def __reduce__(self):  # MISSING is a module-level sentinel: pickle it by position
        return _options, (self.names, [d is MISSING for d in self.defaults],
                          [None if d is MISSING else d for d in self.defaults], self.casts)


def _options(names, missing, values, casts):
    return CallOptions(names, [MISSING if m else v for m, v in zip(missing, values)], casts)


def unpack_inputs(inputs, allow_input_downcast=None):
    """(variables, CallOptions) for function's `inputs` (variables or In)."""
    if isinstance(inputs, (Variable, In)):
        inputs = [inputs]
    items = list(inputs or [])
    variables, names, defaults, casts = [], [], [], []
    for item in items:
        spec = item if isinstance(item, In) else None
        var = spec.variable if spec else item
        variables.append(var)
        names.append(spec.name if spec and spec.name is not None else getattr(var, "name", None))
        downcast = allow_input_downcast
        if spec and spec.allow_downcast is not None:
            downcast = spec.allow_downcast
        casts.append("strict" if spec and spec.strict else "downcast" if downcast else "safe")
        defaults.append(MISSING)
        if spec is not None and spec.value is not None:
            defaults[-1] = _default_value(var, spec.value, casts[-1], names[-1])
    # a name given by In(name=...) must be unambiguous (two variables may share one)
    for k, item in enumerate(items):
        name = names[k]
        if isinstance(item, In) and item.name is not None and names.count(name) > 1:
            raise KgenTypeError(f"inputs: In(..., name={name!r}) is the name of another "
                                f"input too; give it another name")
    return variables, CallOptions(names, defaults, casts)


def _default_value(var, value, cast, name):
    label = f"In({name or var!r}, value=...)"
    if isinstance(value, Variable):
        raise KgenTypeError(f"{label}: the default must be a value, not a symbolic variable")
    return core.contiguous(coerce_argument(var, value, label, cast))


def coerce_argument(var, value, label, cast="safe"):
    """`value` as an array for input `var` under a cast rule (see CallOptions)."""
    dtype, shape = np.dtype(var.dtype), var.type.shape
    if cast == "strict":
        if not isinstance(value, np.ndarray) or value.dtype != dtype:
            got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise KgenTypeError(f"{label}: strict=True needs an array of dtype {dtype.name}, "
                                f"got {got}")
    elif cast == "downcast" and not isinstance(value, Variable):
        value = downcast(value, dtype, label)
    return core.coerce_value(dtype, shape, value, label)


def downcast(value, dtype, label):
    """Theano's allow_input_downcast=True: the value converted to `dtype` as NumPy's
    astype converts it (float64 data into a float32 input rounds; what is too large
    for float32 becomes inf, as in Theano)."""
    arr = core._as_array(value, dtype, label)
    if arr.dtype.kind not in "biuf":
        raise KgenTypeError(f"{label}: expected {dtype.name} data, got {arr.dtype}")
    if arr.dtype == dtype:
        return arr
    with np.errstate(all="ignore"):
        return arr.astype(dtype)


def check_unused(variables, outputs, updates, on_unused_input):
    """Theano's check: every input must be used by some output or update (before
    simplification). 'raise' (UnusedInputError), 'warn', or 'ignore'."""
    if on_unused_input not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', "
                         f"got {on_unused_input!r}")
    if on_unused_input == "ignore":
        return
    from .expr.graph import toposort
    used = {id(n) for n in toposort(list(outputs) + [e for _, e in updates])}
    for k, var in enumerate(variables):
        if id(var) in used:
            continue
        text = (f"function was asked to compute its outputs from input {k} "
                f"({var.name or var!r}), which no output or update uses. Pass "
                f"on_unused_input='warn' to make this a warning, or 'ignore' to allow it.")
        if on_unused_input == "raise":
            raise UnusedInputError(text)
        warnings.warn(text, UserWarning, stacklevel=3)
