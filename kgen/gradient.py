"""`theano.gradient`: the same functions as `kg.grad`, `kg.jacobian`,
`kg.hessian`, `kg.Rop` and `kg.Lop` (Theano's tutorial calls
`theano.gradient.jacobian(y, x)` and `theano.gradient.hessian(cost, x)`;
kgen's need no scan: they unroll over the static size)."""
from .derive import Lop, Rop, grad, hessian, jacobian, jvp  # noqa: F401

__all__ = ["grad", "jacobian", "hessian", "Rop", "Lop", "jvp"]
