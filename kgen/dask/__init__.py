"""kgen kernels over Dask arrays (the `kgen[dask]` extra).

A function built by kg.function, called with Dask arrays chunked along axis 0,
comes here (kgen/runtime/core.py imports this module only then): its graph is
split at the reductions over the chunked axis (kgen/dask/split.py), each
piece is compiled on the client and shipped to the workers, which need no
compiler (kgen/dask/ship.py), and the call becomes a Dask graph
(kgen/dask/graph.py). Outputs are Dask arrays, lazy until `.compute()`;
a function with updates computes at once, and writes its updates on the
client after every chunk has succeeded, so a failed chunk changes nothing.
"""
import numpy as np

from ..errors import KgenTypeError, ShapeError
from ..runtime import core

__all__ = ["call", "function", "is_dask"]


def is_dask(value):
    return hasattr(value, "__dask_graph__")


def function(*args, **kwargs):
    """kg.function itself: its functions take Dask arrays as they are."""
    from ..function import function as build
    return build(*args, **kwargs)


def call(fn, args, kwargs):
    """`fn(*args, **kwargs)` where some arguments are Dask arrays."""
    import dask
    import dask.array as da
    from .graph import Call
    kernel = getattr(fn, "kernel", None)
    if kernel is None:
        raise KgenTypeError(
            f"{fn.name}: this package kernel has no graph for kgen.dask to split; build the "
            f"function with kg.function (kgen on the client) to call it with Dask arrays")
    values = fn.signature._order(args, kwargs)
    rows = tuple(k for k, v in enumerate(values) if is_dask(v) and getattr(v, "ndim", 0) >= 1)
    if not rows:
        values = [np.asarray(v.compute()) if is_dask(v) else v for v in values]
        return fn(*values)
    args = _arguments(fn, values, rows, da)
    plans = fn.__dict__.setdefault("_dask_plans", {})
    if rows not in plans:
        from .stages import StagePlan
        plans[rows] = StagePlan(fn, rows)
    plan = plans[rows]
    locks = core.lock_order(plan.shared)
    core.acquire(locks)
    try:
        shared_values = [core.host_value(s) for s in plan.shared]
    finally:
        core.release(locks)
    run = Call(plan, args, shared_values)
    outputs = run.outputs
    updated = [s for s, _ in kernel.updates]
    if updated:
        values = dask.compute(*outputs, *run.updates)
        outputs, new = list(values[:len(outputs)]), values[len(outputs):]
        _write(updated, new)
    return outputs[0] if kernel.single else list(outputs)


def _arguments(fn, values, rows, da):
    """Each argument checked as the kernel checks it: Dask arrays by dtype and ndim
    (cast lazily, rechunked to the first one's rows and one chunk across),
    the others bound as in any call."""
    sig = fn.signature
    out, first = [], None
    for k, v in enumerate(values):
        if k not in rows:
            out.append(np.asarray(v.compute()) if is_dask(v) else sig.coerce(k, v))
            continue
        label, dtype, shape = sig.labels[k], sig.dtypes[k], sig.shapes[k]
        if v.ndim != len(shape):
            raise KgenTypeError(f"{label}: expected a {len(shape)}-d array of {dtype.name}, "
                                f"got a {v.ndim}-d Dask array with shape {v.shape}")
        if v.dtype != dtype:
            if not np.can_cast(v.dtype, dtype, "safe"):
                raise KgenTypeError(f"{label}: expected dtype {dtype.name}, got {v.dtype} "
                                    f"(which does not cast safely; use .astype)")
            v = v.astype(dtype)
        if shape[0] is not None:
            raise KgenTypeError(f"{label}: its input has a static length {shape[0]} on axis 0, "
                                f"the chunked axis; declare it with an unknown length")
        for axis, (want, got) in enumerate(zip(shape[1:], v.shape[1:]), 1):
            if want is not None and want != got:
                raise ShapeError(f"{label}: expected shape {core.format_shape(shape)}, got "
                                 f"{v.shape} (axis {axis})")
        if first is None:
            first = v
        elif v.shape[0] != first.shape[0]:
            raise ShapeError(f"{label}: {v.shape[0]} rows, but {sig.labels[rows[0]]} has "
                             f"{first.shape[0]}: chunked inputs must have the same rows")
        out.append(v.rechunk((first.chunks[0],) + tuple(-1 for _ in v.shape[1:])))
    return out


def _write(updated, new):
    """The updates, written at once under the variables' locks."""
    stored = [core.stored_value(v, np.dtype(s.dtype), s.ndim, s.name or "shared", borrow=True)
              for s, v in zip(updated, new)]
    locks = core.lock_order(updated)
    core.acquire(locks)
    try:
        for s, v in zip(updated, stored):
            if s._device is not None:  # as Shared.set_value, without its lock (held)
                s._device.set_value(s, v)
            s._value = v
    finally:
        core.release(locks)
