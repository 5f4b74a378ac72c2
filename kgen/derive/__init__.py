"""Symbolic differentiation: gradients are kgen expressions like any other.

  reverse.py    grad, and the walker that applies each op's `vjp_rule`
  broadcast.py  summing gradients back over broadcast axes
  forward.py    jvp, by transposing reverse mode
  matrices.py   jacobian and hessian, unrolled over a static size
  rop_lop.py    Theano's Rop (J v) and Lop (v J)
"""
from .forward import jvp  # noqa: F401
from .matrices import hessian, jacobian  # noqa: F401
from .reverse import grad, vjp  # noqa: F401
from .rop_lop import Lop, Rop  # noqa: F401
