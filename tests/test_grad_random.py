"""Seeded random expressions, their gradients checked by finite differences.

The generator grows a DAG over a few inputs whose shapes broadcast together
((3, 4), (4,), (3, 1), (1, 4) and scalars), reusing earlier values freely, with
elementwise ops (inside their domains), reductions with and without keepdims,
matmul, softmax, reshapes, transposes, slicing, integer-array indexing with
repeated indices and concatenation, and those ops with a constant array
first (dot, concatenate, stack, a constant table indexed by an int
expression). Inputs are declared with their static shape or with every axis
unknown, so length-1 axes also broadcast at run time. Each gradient is
checked as built, simplified, and (every fourth seed) compiled.
"""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T

from _gradcheck import check_grad, check_second_order, sample

INPUT_SHAPES = [(3, 4), (4,), (3, 1), (1, 4), ()]

UNARY = [
    kg.sin, kg.cos, kg.tanh, kg.sigmoid, kg.softplus, kg.arctan, kg.erf, kg.square, kg.abs,
    kg.relu, lambda x: -x,
    lambda x: kg.exp(kg.tanh(x)),
    lambda x: kg.log1p(x * x),
    lambda x: kg.log(1.5 + kg.sin(x)),
    lambda x: kg.sqrt(1.0 + x * x),
    lambda x: kg.arcsin(0.9 * kg.tanh(x)),
    lambda x: 1.0 / (2.0 + kg.cos(x)),
    lambda x: kg.clip(x, -1.5, 1.5),
    lambda x: kg.where(x > 0, x * x, x),
]
BINARY = [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
    lambda a, b: a / (1.0 + b * b), kg.maximum, kg.minimum,
    lambda a, b: kg.arctan2(a, 2.0 + kg.sin(b)),
    lambda a, b: kg.sigmoid(a) ** (1.0 + kg.sigmoid(b)),
]
REDUCE = [kg.sum, kg.mean, kg.max, kg.min, kg.prod, kg.logsumexp, kg.var]


class RandomExpr:
    """Grows an expression DAG; `pool` holds (expr, run-time shape) pairs."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.inputs, self.values, self.pool = [], {}, []
        for k, shape in enumerate(INPUT_SHAPES):
            static = self.rng.random() < 0.5
            x = T.tensor(f"x{k}", "float64", shape if static else (None,) * len(shape))
            self.inputs.append(x)
            self.values[x] = sample(self.rng, "any", shape)
            self.pool.append((x, shape))

    def pick(self, want=None):
        """A random pool entry (recent ones more likely), optionally of a given shape."""
        pool = [p for p in self.pool if want is None or p[1] == want]
        if not pool:
            return None
        weights = np.arange(1, len(pool) + 1, dtype=float) + len(pool) / 2
        return pool[self.rng.choice(len(pool), p=weights / weights.sum())]

    def grow(self, steps):
        for _ in range(steps):
            made = getattr(self, "_" + self.rng.choice(
                ["unary"] * 3 + ["binary"] * 3 + ["reduce", "matmul", "softmax", "reshape",
                                                  "index", "gather", "concat",
                                                  "constant_first"]))()
            if made is not None:
                self.pool.append(made)
        # the result: the newest value times an older one, plus the two before
        (a, sa), (b, sb), (c, sc), (d, sd) = self.pool[-1], self.pick(), *self.pool[-3:-1]
        return a * kg.tanh(b) + c - d, np.broadcast_shapes(sa, sb, sc, sd)

    def _unary(self):
        x, s = self.pick()
        return UNARY[self.rng.integers(len(UNARY))](x), s

    def _binary(self):
        a, sa = self.pick()
        # often an input, so that most inputs end up in the expression
        b, sb = self.pool[self.rng.integers(len(INPUT_SHAPES))] if self.rng.random() < 0.4 \
            else self.pick()
        return BINARY[self.rng.integers(len(BINARY))](a, b), np.broadcast_shapes(sa, sb)

    def _reduce(self):
        x, s = self.pick()
        fn = REDUCE[self.rng.integers(len(REDUCE))]
        if len(s) < 2 or self.rng.random() < 0.2:
            return fn(x), ()
        axis = int(self.rng.integers(2))
        if axis == 0 and self.rng.random() < 0.5:
            return fn(x, axis=0), s[1:]  # (4,): still broadcasts
        kept = tuple(1 if a == axis else d for a, d in enumerate(s))
        return fn(x, axis=axis, keepdims=True), kept

    def _matmul(self):
        picked = [self.pick((3, 4)) for _ in range(3)]
        if None in picked:
            return None
        (a, _), (b, _), (c, _) = picked
        return kg.dot(kg.dot(a, b.T), c) * 0.1, (3, 4)

    def _softmax(self):
        entry = self.pick((3, 4))
        if entry is None:
            return None
        axis = int(self.rng.integers(2))
        if self.rng.random() < 0.5:
            return T.nnet.softmax(entry[0], axis=axis), (3, 4)
        return kg.log_softmax(entry[0], axis=axis), (3, 4)

    def _reshape(self):
        entry = self.pick((3, 4))
        if entry is None:
            return None
        x = entry[0]
        if self.rng.random() < 0.5:
            return kg.reshape(kg.sin(kg.reshape(x, (6, 2))), (3, 4)), (3, 4)
        return kg.transpose(kg.tanh(x.T)).dimshuffle(0, 1), (3, 4)

    def _index(self):
        entry = self.pick((3, 4))
        if entry is None:
            return None
        x = entry[0]
        choice = self.rng.integers(4)
        if choice == 0:
            return x[::-1, ::-1] + x[:, ::2].sum(axis=1, keepdims=True), (3, 4)
        if choice == 1:
            return x[:, 1:2], (3, 1)
        if choice == 2:
            return x[1:2], (1, 4)
        return x[1], (4,)

    def _gather(self):
        entry = self.pick((3, 4))
        if entry is None:
            return None
        rows = self.rng.integers(3, size=3)  # repeats are likely
        return entry[0][rows], (3, 4)

    def _concat(self):
        entry = self.pick((3, 4))
        if entry is None:
            return None
        x = entry[0]
        if self.rng.random() < 0.5:
            return kg.concatenate([x[:1] * 2.0, x[1:]], axis=0), (3, 4)
        return kg.stack([x[0], kg.sin(x[2]), x[1]]), (3, 4)

    def _constant_first(self):
        """A non-elementwise op with a constant array as its first operand."""
        entry = self.pick((3, 4))
        if entry is None:
            return None
        x = entry[0]
        k = kg.constant(self.rng.uniform(-1, 1, (3, 3)))
        choice = self.rng.integers(4)
        if choice == 0:
            return kg.dot(k, x) * 0.5, (3, 4)
        if choice == 1:
            return kg.concatenate([kg.constant(self.rng.uniform(-1, 1, (1, 4))), x[1:]]), (3, 4)
        if choice == 2:
            return kg.stack([kg.constant(self.rng.uniform(-1, 1, 4)), x[2], kg.sin(x[0])]), (3, 4)
        # a constant table gathered by an int expression of x (no gradient to x
        # through the index), times x so the value still depends on x smoothly
        table = kg.constant(self.rng.uniform(0.5, 1.5, (3, 4)))
        return table[kg.cast(x[:, 0] > 0, "int64") + 1] * x, (3, 4)


@pytest.mark.parametrize("seed", range(100))
def test_random_expression_gradient(seed):
    gen = RandomExpr(seed)
    expr, shape = gen.grow(steps=10)
    assert np.shape(expr.eval(gen.values)) == shape
    check_grad(expr, gen.values, gen.inputs, rtol=1e-4, atol=1e-6, rng=gen.rng,
               simplified=True, compiled=seed % 4 == 0)
    if seed % 5 == 0:
        check_second_order(expr, gen.values, gen.inputs[:2], rtol=1e-3, atol=1e-4, rng=gen.rng)
