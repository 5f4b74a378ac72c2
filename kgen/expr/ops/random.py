"""Random primitives: elementwise ops whose value at an element is a function
of the stream state (key, ctr) and the element's flat index k only.

Each is `op(model, key, ctr, *params)`: `model` lends the shape (its values are
never read, as second()'s first operand), `key` and `ctr` are int64 scalars read
from the stream's state (kgen/tensor/shared_randomstreams.py), the parameters
broadcast. The op's C expression gets the flat index as `{k}` (an "indexed"
elementwise op: the lowering supplies it, see kgen/lower/lower.py `_body`),
and calls the helpers of templates/c/kg_philox.h. The NumPy reference below
computes the same Philox4x32-10 blocks with uint32 arithmetic, so the C,
CUDA and reference values are bitwise equal (normal: up to libm's last bits).
"""
import numpy as np

from ...errors import KgenTypeError
from ..types import TensorType, broadcast_shapes, check_dtype
from .elementwise import Elementwise

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(counter, key):
    """Philox4x32-10 of `counter` (4 uint32 arrays) under `key` (2 uint32 arrays):
    the NumPy twin of kg_philox4x32_10 in kg_philox.h."""
    x0, x1, x2, x3 = (np.asarray(c, dtype=np.uint32) for c in counter)
    k0, k1 = (np.asarray(k, dtype=np.uint32) for k in key)
    with np.errstate(over="ignore"):
        for _ in range(10):
            p0 = M0 * x0.astype(np.uint64)
            p1 = M1 * x2.astype(np.uint64)
            y0 = (p1 >> np.uint64(32)).astype(np.uint32) ^ x1 ^ k0
            y2 = (p0 >> np.uint64(32)).astype(np.uint32) ^ x3 ^ k1
            x1, x3 = (p1 & MASK32).astype(np.uint32), (p0 & MASK32).astype(np.uint32)
            x0, x2 = y0, y2
            k0, k1 = k0 + W0, k1 + W1
    return x0, x1, x2, x3


def philox_block(key, ctr, g, j=0):
    """Sub-block j of the blocks g (an int array) of a draw with state (key, ctr)."""
    uk = np.asarray(g).astype(np.int64).view(np.uint64)
    uc = np.uint64(np.int64(ctr).view(np.uint64))
    ukey = np.uint64(np.int64(key).view(np.uint64))
    c = (uk & MASK32, uk >> np.uint64(32), np.full(uk.shape, uc & MASK32),
         np.full(uk.shape, ((uc >> np.uint64(32)) & np.uint64(0xFFFF)) | np.uint64(j << 16)))
    return philox4x32_10(c, (ukey & MASK32, ukey >> np.uint64(32)))


def element_words(key, ctr, k, per, j=0):
    """The words of the elements k when one block serves `per` consecutive
    elements: element k reads 4 // per words of block k // per from word
    (k % per) * (4 // per) on (kg_philox.h's numbering)."""
    k = np.asarray(k, dtype=np.int64)
    w = np.stack(philox_block(key, ctr, k // per, j))   # (4, *k.shape)
    size = 4 // per
    first = (k % per) * size
    return [np.take_along_axis(w, (first + i)[None], 0)[0] for i in range(size)]


def bits53(hi, lo):
    """53 bits of (hi, lo) as float64 in [0, 1) (exact)."""
    v = (hi.astype(np.uint64) << np.uint64(21)) | (lo.astype(np.uint64) >> np.uint64(11))
    return v.astype(np.float64) * 2.0 ** -53


class RandomOp(Elementwise):
    """A draw: model, key, ctr, then the parameters (`params` names them)."""

    indexed = True        # the C expression reads the element's flat index {k}
    reads = None          # set per record: every operand but the model
    int_ok = True
    params = ()
    vjp_rule = "zero"     # draws are constants to grad
    per = 1               # consecutive elements one Philox block serves
    c_w = None            # per > 1: the value from the element's block {b}, first word {o}

    def per_block(self, dtype):
        return self.per

    def prepare(self, inputs, attrs):
        if len(inputs) != 3 + len(self.params):
            raise KgenTypeError(f"{self.name} takes model, key, ctr{''.join(', ' + p for p in self.params)}")
        return inputs, attrs

    def loop_dtypes(self, inputs):
        # the parameters are read as int64 / float64 (the helpers' types);
        # the result dtype is the node's (attr dtype), not a loop's
        return tuple(x.dtype for x in inputs[:3]) + tuple(self.param_dtypes), None

    def infer(self, inputs, attrs):
        for x in inputs[1:3]:
            if x.ndim != 0 or x.dtype != "int64":
                raise KgenTypeError(f"{self.name}: key and ctr must be int64 scalars")
        shape = broadcast_shapes(self.name, *(x.type.shape for x in inputs))
        return TensorType(check_dtype(attrs["dtype"], self.name), shape)

    def impl(self, arrays, attrs):
        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
        k = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
        key, ctr = int(np.asarray(arrays[1])), int(np.asarray(arrays[2]))
        params = [np.broadcast_to(np.asarray(a), shape) for a in arrays[3:]]
        return self.draw(key, ctr, k, *params, dtype=attrs["dtype"]).astype(attrs["dtype"])


class _Uniform(RandomOp):
    def per_block(self, dtype):
        return 4 if dtype == "float32" else 2

    def draw(self, key, ctr, k, dtype):
        if dtype == "float32":
            (w,) = element_words(key, ctr, k, 4)
            return (w >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
        return bits53(*element_words(key, ctr, k, 2))


class _Normal(RandomOp):
    def draw(self, key, ctr, k, dtype):
        w = philox_block(key, ctr, k)
        u1 = bits53(w[0], w[1]) + 2.0 ** -53
        u2 = bits53(w[2], w[3])
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(6.283185307179586 * u2)


class _Binomial(RandomOp):
    per = 2
    def draw(self, key, ctr, k, n, p, dtype):
        n, p = n.astype(np.int64), p.astype(np.float64)
        count = np.zeros(k.shape, np.int64)
        for t in range(int(n.max(initial=0))):
            count += (t < n) & (bits53(*element_words(key, ctr, k, 2, t)) < p)
        return count


class _Integers(RandomOp):
    per = 2
    def draw(self, key, ctr, k, low, high, dtype):
        w = element_words(key, ctr, k, 2)
        low, high = low.astype(np.int64).view(np.uint64), high.astype(np.int64).view(np.uint64)
        with np.errstate(over="ignore"):
            rng = high - low + np.uint64(1)
            bits = (w[0].astype(np.uint64) << np.uint64(32)) | w[1].astype(np.uint64)
            safe = np.where(rng == 0, np.uint64(1), rng)
            v = np.where(rng == 0, bits, bits % safe)
            return (low + v).view(np.int64)


def _record(cls, name, c, params=(), param_dtypes=(), c_w=None):
    return cls(name, arity=3 + len(params), c=c, params=params, param_dtypes=param_dtypes, c_w=c_w,
               reads=tuple(range(1, 3 + len(params))), pretty=None)


# {t}: the C type of the result (float/double); {1}, {2}: key, ctr; {k}: flat index
# (c_w: the same from the element's block {b} and first word {o}, kg_philox.h's _w helpers)
random_uniform = _record(_Uniform, "random_uniform", "kg_philox_uniform_{t}({1}, {2}, {k})",
                         c_w="kg_philox_uniform_{t}_w({b}, {o})")
random_normal = _record(_Normal, "random_normal",
                        "(({t})kg_philox_normal_double({1}, {2}, {k}))")
random_binomial = _record(_Binomial, "random_binomial",
                          "(({t})kg_philox_binomial({1}, {2}, {k}, {3}, {4}))",
                          ("n", "p"), ("int64", "float64"),
                          "(({t})kg_philox_binomial_w({b}, {o}, {1}, {2}, {k}, {3}, {4}))")
random_integers = _record(_Integers, "random_integers",
                          "(({t})kg_philox_integers({1}, {2}, {k}, {3}, {4}))",
                          ("low", "high"), ("int64", "int64"),
                          "(({t})kg_philox_integers_w({b}, {o}, {3}, {4}))")
