"""The lowering of the dedicated max-pooling ops (kgen/expr/ops/pool.py): shape
rules and the `pool` step (kgen/templates/c/pool.c.jinja, cuda/pool.cu.jinja).
One pass over the windows: the maximum, or the gradient routed to the tied
maxima, or the sum of a cotangent over them; no temporaries."""
from .comments import _one_line
from .plan import Step


class PoolRules:
    """Mixed into the lowering: `_dims_max_pool_2d*` and `_step_max_pool_2d*`."""

    def _dims_pool(self, node, dims):
        xd, (a, b) = dims[0], node.attr("ws")
        pooled = xd[:-2] + [self.ints.floordiv(xd[-2], a, "pool_r"),
                            self.ints.floordiv(xd[-1], b, "pool_c")]
        role = node.op.role
        if role != "forward":   # the other operand: pooled-shaped (grad) or x-shaped
            want = pooled if role == "grad" else xd
            for p, q in zip(dims[1], want):
                self.ints.require_eq(p, q, self._shape_msg(node.op.name, [dims[1], want]))
        return list(xd) if role == "grad" else pooled

    _dims_max_pool_2d = _dims_max_pool_2d_grad = _dims_max_pool_2d_gradgrad = _dims_pool

    def _step_pool(self, node, out):
        x = self._materialized(node.inputs[0])
        other = self._materialized(node.inputs[1]) if node.op.role != "forward" else None
        xd = self.dims[id(node.inputs[0])]
        pooled = self.dims[id(node)] if node.op.role != "grad" else self.dims[id(node.inputs[1])]
        self.steps.append(Step("pool", _one_line(node, 160), dict(
            role=node.op.role, x=x, other=other, out=out, ws=node.attr("ws"), xdims=xd,
            lead=xd[:-2], windows=self.ints.product(pooled, "pool_n"),
            size=self.ints.product(self.dims[id(node)], "pool_size"), pooled=pooled)))

    _step_max_pool_2d = _step_max_pool_2d_grad = _step_max_pool_2d_gradgrad = _step_pool
