"""kgen kernels over Dask arrays (the `kgen[dask]` extra).

A function built by kg.function, called with Dask arrays chunked along axis 0,
comes here (kgen/runtime/c.py's CFunction.lazy_call imports this module only
then): its graph is split at the reductions over the chunked axis
(kgen/dask/split.py) into chunk kernels and a tail kernel, described as data
(kgen/dask/stages.py), each compiled on the client. The call itself, the Dask
graph, the shipping of the built modules to the workers (which need no
compiler) and the updates written once after every chunk succeeded, is
kgen/runtime/dask_exec.py: the same code runs a shipped package's kernels.
"""
from ..runtime import dask_exec

__all__ = ["call", "function", "is_dask"]

is_dask = dask_exec.is_dask


def function(*args, **kwargs):
    """kg.function itself: its functions take Dask arrays as they are."""
    from ..function import function as build
    return build(*args, **kwargs)


def call(fn, args, kwargs):
    """`fn(*args, **kwargs)` where some arguments are Dask arrays."""
    return dask_exec.call(fn, args, kwargs, lambda rows: _plan(fn, rows))


def _plan(fn, rows):
    """The plan for Dask arguments at `rows`, made once per function and row set."""
    plans = fn.__dict__.setdefault("_dask_plans", {})
    if rows not in plans:
        from .stages import function_plan
        plans[rows] = function_plan(fn, rows)
    return plans[rows]
