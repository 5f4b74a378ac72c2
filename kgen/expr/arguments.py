"""Turning call arguments into arrays of an input's dtype: NumPy's 'safe'
casting, with Python scalars weak as in NEP 50. The rules live in the runtime
(kgen/runtime/core.py, which packages carry verbatim); this is the entry point
for `.eval()`, which speaks in variables."""
import numpy as np

from ..runtime.core import coerce_value, weak_scalar  # noqa: F401  (weak_scalar re-exported)


def coerce_argument(var, value, label):
    """`value` as an array of `var`'s dtype and ndim, or a TypeError naming `label`."""
    return coerce_value(np.dtype(var.dtype), var.type.shape, value, label)
