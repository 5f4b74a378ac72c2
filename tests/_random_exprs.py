"""Seeded random expression generator for the simplifier's equivalence tests.

Expressions mix the ops the rules look at (sums, products, powers, negation,
identities, constants, exp/log pairs, sigmoid/softplus, reductions, shape ops,
zeros_like/ones_like) over inputs of different ranks and dtypes, so the rules
fire often and in combination. Constant arrays also come first in ops that are
not elementwise (dot, concatenate, stack, a constant table indexed by an int
expression), where the simplifier once crashed on facts those ops lacked.
And where(c, x, x), whose bool condition c (comparisons of other inputs, of
another shape) only lends its shape once simplified: the lowering once
crashed on such a map group, whose values nothing stores. Values are kept in a moderate range so that a
finite original stays finite under reassociation.
"""
import numpy as np

import kgen as kg
import kgen.tensor as T

FLOAT_UNARY = ["neg", "exp_small", "log_pos", "tanh", "sigmoid", "softplus", "sqrt_pos",
               "log1p_pos", "abs", "square", "expm1_small", "sin", "cos", "stopgrad"]
FLOAT_BINARY = ["add", "sub", "mul", "div", "add", "sub", "mul", "maximum", "minimum", "where"]
INT_UNARY = ["neg", "square", "abs"]
INT_BINARY = ["add", "sub", "mul", "add", "sub", "maximum"]


class Gen:
    def __init__(self, seed, dtype="float64", inputs=None):
        self.rng = np.random.default_rng(seed)
        # constant-first wrappers draw from their own stream, so the rest of
        # each seed's expression is what it was before they were added
        self.side = np.random.default_rng([seed, 1])
        self.dtype = dtype
        self.is_float = dtype.startswith("float")
        d = dtype
        # `inputs`: another Gen's, so several expressions share one function
        self.inputs = inputs or [T.tensor("a", d, ()), T.tensor("b", d, ()),
                                 T.tensor("u", d, (None,)), T.tensor("v", d, (None,)),
                                 T.tensor("M", d, (None, None))]
        self.shapes = {"a": (), "b": (), "u": (4,), "v": (4,), "M": (3, 4)}

    def values(self):
        out = {}
        for x in self.inputs:
            shape = self.shapes[x.name]
            if self.is_float:
                out[x] = self.rng.uniform(-2, 2, shape).astype(self.dtype)
            else:
                out[x] = self.rng.integers(-5, 6, shape).astype(self.dtype)
        return out

    def const(self):
        r = self.rng.random()
        if self.is_float:
            choices = [0, 1, -1, 2, 0.5, 3, 0.0, 1.0, -2.5]
        else:
            choices = [0, 1, -1, 2, 3, -3]
        c = choices[self.rng.integers(len(choices))]
        if r < 0.7:
            return kg.constant(c)  # weak
        return kg.constant(np.asarray(c, dtype=self.dtype))

    def leaf(self):
        if self.rng.random() < 0.25:
            return self.const()
        return self.inputs[self.rng.integers(len(self.inputs))]

    def expr(self, depth):
        if depth == 0 or self.rng.random() < 0.15:
            return self.leaf()
        r = self.rng.random()
        if r < 0.3:
            out = self.unary(self.expr(depth - 1))
        elif r < 0.85:
            out = self.binary(self.expr(depth - 1), self.expr(depth - 1))
        else:
            out = self.special(self.expr(depth - 1), depth)
        r = self.side.random()
        if r < 0.12:
            return self.constant_first(out)
        if r < 0.2:
            return self.shape_lender(out)
        return out

    def shape_lender(self, x):
        """where(c, x, x): c a bool expression of other inputs, broadcast with x."""
        terms = []
        for _ in range(self.side.integers(1, 4)):
            y = self.inputs[self.side.integers(len(self.inputs))]
            k = [0, 1, -1, 0.5][self.side.integers(4)] if self.is_float else \
                [0, 1, -1, 2][self.side.integers(4)]
            t = y > k if self.side.random() < 0.5 else y < k
            terms.append(~t if self.side.random() < 0.3 else t)
        c = terms[0]
        for t in terms[1:]:
            c = c & t if self.side.random() < 0.5 else c | t
        return kg.where(c, x, x)

    def unary(self, x):
        ops = FLOAT_UNARY if self.is_float else INT_UNARY
        op = ops[self.rng.integers(len(ops))]
        if op == "neg":
            return -x
        if op == "square":
            return x * x
        if op == "abs":
            return abs(x)
        if op == "exp_small":
            return kg.exp(kg.tanh(x))
        if op == "expm1_small":
            return kg.exp(kg.tanh(x)) - 1
        if op == "log_pos":
            return kg.log(x * x + 1)
        if op == "log1p_pos":
            return kg.log(1 + kg.sigmoid(x))
        if op == "sqrt_pos":
            return kg.sqrt(x * x + 0.5)
        if op == "stopgrad":
            return kg.stop_gradient(x)
        return getattr(kg, op)(x)

    def binary(self, x, y):
        ops = FLOAT_BINARY if self.is_float else INT_BINARY
        op = ops[self.rng.integers(len(ops))]
        if self.rng.random() < 0.15:
            y = x  # like terms and x - x
        if op == "add":
            return x + y
        if op == "sub":
            return x - y
        if op == "mul":
            return x * y
        if op == "div":
            return x / (y * y + 1)
        if op == "where":
            return kg.where(x > y, x, y * 2)
        return getattr(kg, op)(x, y)

    def const_array(self, shape):
        """A strong constant array of the gen's dtype, of a shape the inputs have."""
        if self.is_float:
            return kg.constant(self.side.uniform(-1, 1, shape).astype(self.dtype))
        return kg.constant(self.side.integers(-3, 4, shape).astype(self.dtype))

    def constant_first(self, x):
        """A non-elementwise op whose first operand is a constant array; the
        result has x's run-time shape (u, v: (4,), M: (3, 4)) or is 0-d."""
        r = self.side.integers(4)
        if x.ndim == 0:  # a constant table indexed by an int scalar
            return self.table_lookup(x)
        rows = 4 if x.ndim == 1 else 3
        if r == 0:
            return kg.dot(self.const_array((rows, rows)), x)
        if r == 1:
            return kg.stack([self.const_array((4,) if x.ndim == 1 else (3, 4)), x]).sum(axis=0)
        if r == 2:
            both = kg.concatenate([self.const_array((4,) if x.ndim == 1 else (3, 4)), x],
                                  axis=x.ndim - 1)
            return both[1:5] if x.ndim == 1 else both[:, 1:5]
        return self.table_lookup(x)

    def table_lookup(self, x):
        """table[index(x)]: a constant table gathered by an int expression of x."""
        table = self.const_array((5,))
        if self.is_float:
            index = kg.cast(x > 0, "int64") + 2 * kg.cast(x > 1, "int64")
        else:
            index = abs(x) % 5
        return table[index]

    def special(self, x, depth):
        r = self.rng.integers(14)
        if r >= 10 and x.ndim == 0:
            r = 0
        if r == 10:
            return kg.dot(x, x) if x.ndim == 1 else x[0]
        if r == 11:
            return x[0]
        if r == 12 and self.is_float:
            return kg.log(kg.softmax(x)) + kg.softmax(x)
        if r == 12 or r == 13:
            return kg.logsumexp(x, axis=0) if self.is_float else x.max(axis=0)
        if r == 0:
            return x.sum() if x.ndim else x
        if r == 1:
            return x.sum(axis=0) if x.ndim else x
        if r == 2:
            return kg.zeros_like(x) + self.expr(depth - 1)
        if r == 3:
            return kg.ones_like(x) * self.expr(depth - 1)
        if r == 4:
            return x.T.T if x.ndim else x
        if r == 5:
            return (x ** 2) * x if self.is_float else x * x * x
        if r == 6:
            return x * 0 + x * 1 - 0
        if r == 7:
            return kg.dimshuffle(x, ("x",) + tuple(range(x.ndim))) * self.expr(depth - 1)
        if r == 8 and self.is_float:
            return kg.log(kg.exp(kg.tanh(x))) + kg.exp(kg.log(x * x + 1))
        if r == 8:
            return x - x
        return (2 * x + 3 * x) - x
