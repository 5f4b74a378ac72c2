"""Theano's random streams: `RandomStreams(seed)`, drawn inside the kernel.

Each draw (`rng.uniform(...)`) gets its own state, a shared int64 vector
`[key, ctr]`: `key` is derived from the stream's seed and the draw's number,
`ctr` counts the calls that used it. The numbers are Philox4x32-10 of
(key, ctr, element index) (kgen/expr/ops/random.py, templates/c/kg_philox.h),
so the same seed gives the same numbers on any thread count, in packages,
and on CPU and CUDA.

As in Theano, the state has a `default_update` (ctr + 1): kg.function and
kg.kernel add it to the updates unless `no_default_updates=True` (or a list
naming the states to leave alone), or the user updates that state himself.
`expr.eval()` (the NumPy reference) reads the state and does not advance it.
"""
import itertools
import numbers

import numpy as np

from ..config import config
from ..errors import KgenTypeError
from ..expr.node import Constant, Shared, Variable, as_variable, constant
from ..expr.ops import api, everyday
from ..expr.ops import elementwise as ew
from ..expr.ops import random as rnd
from ..expr.ops.everyday import _model, _sizes
from ..expr.shape_vector import ShapeVector
from ..expr.types import check_dtype

_STEP = constant(np.array([0, 1], dtype="int64"))
_STREAMS = itertools.count()  # numbers the streams of a process: unique state names


def draw_key(seed, number):
    """The Philox key of draw `number` of a stream seeded with `seed` (an int64)."""
    s = np.uint64(int(seed) % 2 ** 64)
    w = rnd.philox4x32_10(
        [np.uint32(number % 2 ** 32), np.uint32((number >> 32) % 2 ** 32),
         np.uint32(0x6b67656e), np.uint32(0)],   # "kgen"
        [np.uint32(s & np.uint64(0xFFFFFFFF)), np.uint32(s >> np.uint64(32))])
    return int(np.uint64((int(w[1]) << 32) | int(w[0])).view(np.int64))


class RandomStreams:
    """A source of random variables (theano.tensor.shared_randomstreams)."""

    def __init__(self, seed=None):
        self.default_instance_seed = 12345 if seed is None else int(seed)
        self.state_updates = []   # (state shared variable, its default update), Theano's name
        self._count, self._id = 0, next(_STREAMS)

    # ---- state ---------------------------------------------------------------------
    def seed(self, seed=None):
        """Reseed every draw made so far (and the ones to come)."""
        if seed is None:
            seed = self.default_instance_seed
        self.default_instance_seed = int(seed)
        for number, (state, _) in enumerate(self.state_updates):
            state.set_value(np.array([draw_key(seed, number), 0], dtype="int64"))

    def updates(self):
        """The (state, update) pairs of every draw (Theano's RandomStreams.updates)."""
        return list(self.state_updates)

    def _state(self):
        number = self._count
        self._count += 1
        state = Shared(np.array([draw_key(self.default_instance_seed, number), 0], "int64"),
                       name=f"rng{self._id}_state{number}")
        state.default_update = state + _STEP
        self.state_updates.append((state, state.default_update))
        return state

    def _draw(self, op, shape, *params, dtype):
        state = self._state()
        return op(shape, state[0], state[1], *params, dtype=dtype)

    # ---- draws ---------------------------------------------------------------------
    def uniform(self, size=(), low=0.0, high=1.0, ndim=None, dtype=None, nstreams=None):
        """Uniform in [low, high) (float32: 24 random bits, float64: 53)."""
        dtype = _float_dtype(dtype, "uniform", low, high)
        u = self._draw(rnd.random_uniform, _shape(size, ndim, "uniform", low, high), dtype=dtype)
        if _is(low, 0) and _is(high, 1):
            return u
        return api.cast(u * (as_variable(high) - low) + low, dtype)

    def normal(self, size=(), avg=0.0, std=1.0, ndim=None, dtype=None, nstreams=None):
        """Normal (Box-Muller, one value per element)."""
        dtype = _float_dtype(dtype, "normal", avg, std)
        z = self._draw(rnd.random_normal, _shape(size, ndim, "normal", avg, std), dtype=dtype)
        if _is(avg, 0) and _is(std, 1):
            return z
        return api.cast(z * std + avg, dtype)

    def binomial(self, size=(), n=1, p=0.5, ndim=None, dtype="int64", prob=None, nstreams=None):
        """Successes in n trials of probability p (n trials per element)."""
        if prob is not None:
            p = prob
        dtype = check_dtype(dtype, "binomial")
        n, p = _int_param(n, "binomial: n"), as_variable(p)
        # trial t of an element reads Philox sub-block t, which has 16 bits
        if isinstance(n, Constant) and not 0 <= int(n.value) < 2 ** 16:
            raise KgenTypeError(f"binomial: n must be in [0, 65536), got {int(n.value)}")
        return self._draw(rnd.random_binomial, _shape(size, ndim, "binomial", n, p), n, p,
                          dtype=dtype)

    def random_integers(self, size=(), low=0, high=1, ndim=None, dtype="int64"):
        """Integers in [low, high], both included."""
        dtype = check_dtype(dtype, "random_integers")
        low, high = _int_param(low, "random_integers: low"), _int_param(high, "random_integers: high")
        if isinstance(low, Constant) and isinstance(high, Constant) and int(high.value) < int(low.value):
            raise KgenTypeError(f"random_integers: high ({int(high.value)}) < low ({int(low.value)})")
        return self._draw(rnd.random_integers, _shape(size, ndim, "random_integers", low, high),
                          low, high, dtype=dtype)

    def multinomial(self, size=None, n=1, pvals=None, ndim=None, dtype="int64", nstreams=None):
        """Counts of n draws from each distribution `pvals` (its last axis);
        `size` (if given) is the shape of the leading axes pvals broadcasts to."""
        if pvals is None:
            raise KgenTypeError("multinomial: pvals is required")
        pvals = as_variable(pvals)
        if pvals.ndim < 1:
            raise KgenTypeError("multinomial: pvals must have at least one axis")
        if size is not None and not (isinstance(size, tuple) and len(size) == 0):
            lead = _sizes(size, "multinomial")
            pvals = ew.second(_model(list(lead) + [pvals.shape[-1]]), pvals)
        n = _int_param(n, "multinomial: n")
        if not isinstance(n, Constant):
            raise KgenTypeError("multinomial: n must be a Python int")
        trials = int(n.value)
        cdf = everyday.cumsum(api.cast(pvals, "float64"), axis=-1)
        nd = pvals.ndim
        head = (slice(None),) * (nd - 1)
        zero = api.zeros_like(cdf[head + (slice(0, 1),)])
        # the categories tile [0, inf): [0, c0), [c0, c1), ..., [c_{k-2}, inf),
        # so every draw lands in exactly one and each row sums to n
        lower = api.concatenate([zero, cdf[head + (slice(None, -1),)]], axis=-1)
        upper = api.concatenate([cdf[head + (slice(None, -1),)], zero + np.inf], axis=-1)
        lead_shape = [pvals.shape[a] for a in range(nd - 1)]
        u = self.uniform(size=tuple([trials] + lead_shape + [1]), dtype="float64")
        hits = api.cast(ew.ge(u, lower), "int64") * api.cast(ew.lt(u, upper), "int64")
        return api.cast(api.sum(hits, axis=0), check_dtype(dtype, "multinomial"))


def _is(value, number):
    return isinstance(value, numbers.Number) and not isinstance(value, bool) and value == number


def _float_dtype(dtype, what, *params):
    if dtype is None:
        dtype = config.floatX
        # tensor parameters of float64 ask for float64, as in Theano
        if any(isinstance(p, Variable) and p.dtype == "float64" for p in params):
            dtype = "float64"
    dtype = check_dtype(dtype, what)
    if dtype not in ("float32", "float64"):
        raise KgenTypeError(f"{what}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _int_param(value, what):
    v = as_variable(value)
    if v.dtype not in ("int32", "int64", "bool"):
        if isinstance(v, Constant) and float(v.value) == int(v.value):
            return constant(np.int64(int(v.value)))
        raise KgenTypeError(f"{what} must be an integer, got {v.dtype}")
    return v


def _shape_owner(size, sizes):
    """The variable v when the sizes are v.shape[0], ..., v.shape[-1], else None."""
    if isinstance(size, ShapeVector):
        return size.var
    owner = None
    for a, d in enumerate(sizes):
        if not (isinstance(d, Variable) and d.op is not None and d.op.name == "shape_i"
                and d.attr("axis") == a and (owner is None or d.inputs[0] is owner)):
            return None
        owner = d.inputs[0]
    return owner if owner is not None and owner.ndim == len(sizes) else None


def _shape(size, ndim, what, *params):
    """The draw's shape model: `size` (ints, int scalars, x.shape) broadcast
    with the tensor parameters, as Theano's draws broadcast them."""
    if size is None:
        size = ()
    if isinstance(size, Variable) and size.ndim == 1:
        raise KgenTypeError(f"{what}: size as a symbolic vector is not supported; pass a tuple "
                            f"(x.shape works)")
    sizes = _sizes(size, what)
    owner = _shape_owner(size, sizes)
    # size=x.shape: x itself lends the shape (its values are never read), so the
    # simplifier knows that the draw has x's shape (x * mask needs no sum_to in
    # its gradient); other sizes get alloc's model of aranges
    model = owner if owner is not None else _model(sizes) if sizes else constant(np.int64(0))
    for p in params:
        p = as_variable(p)
        if p.ndim:
            model = ew.second(p, model)
    if ndim is not None and model.ndim != ndim:
        raise KgenTypeError(f"{what}: ndim={ndim} but the size gives {model.ndim} dimensions")
    return model
