"""Random streams: Philox4x32-10 against its known-answer vectors (in C and in
the NumPy reference), the compiled draws against the reference bit for bit,
their statistics, Theano's default updates, reproducibility across calls,
processes, thread counts, the CUDA source (through the emulator), and grad."""
import contextlib
import importlib.util
import io
import os
import platform
import subprocess
import sys
from pathlib import Path

import cffi
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.build import flags
from kgen.expr.ops.random import philox4x32_10, philox_block
from kgen.sandbox.rng_mrg import MRG_RandomStreams
from kgen.tensor.shared_randomstreams import RandomStreams

import _cuda_emu

REPO = Path(__file__).resolve().parent.parent

# Random123 1.x, examples/kat_vectors, the philox4x32 10-round lines:
# counter[4] key[2] -> expected[4] (hex uint32).
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff),
     (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


def test_kat_numpy_reference():
    for ctr, key, want in KAT:
        got = philox4x32_10([np.uint32(c) for c in ctr], [np.uint32(k) for k in key])
        assert tuple(int(g) for g in got) == want
    # vectorised: all three at once
    cs = [np.array([v[0][i] for v in KAT], np.uint32) for i in range(4)]
    ks = [np.array([v[1][i] for v in KAT], np.uint32) for i in range(2)]
    got = np.stack(philox4x32_10(cs, ks), axis=1)
    assert got.tolist() == [list(v[2]) for v in KAT]


_HARNESS = """
#include "kg_philox.h"
void h_philox(const uint32_t *ctr, const uint32_t *key, uint32_t *out)
{
    kg_u32x4 c;
    for (int i = 0; i < 4; i++) c.w[i] = ctr[i];
    kg_u32x4 r = kg_philox4x32_10(c, key[0], key[1]);
    for (int i = 0; i < 4; i++) out[i] = r.w[i];
}
/* the blocks g = 0 .. n-1 of (key, ctr) in a loop the compiler vectorizes, as
 * the generated kernels' loops are */
void h_blocks(int64_t n, int64_t key, int64_t ctr, uint32_t *out)
{
#pragma omp simd
    for (int64_t g = 0; g < n; g++) {
        const kg_u32x4 b = kg_philox_block(key, ctr, g, 0);
        out[4 * g] = b.w[0]; out[4 * g + 1] = b.w[1];
        out[4 * g + 2] = b.w[2]; out[4 * g + 3] = b.w[3];
    }
}
/* the blocks g0 .. g0+n-1 as the generated loops fill their buffers */
void h_fill(int64_t key, int64_t ctr, int64_t g0, int64_t n, uint32_t *out)
{
    kg_philox_fill(key, ctr, g0, n, out);
}
"""

# the three forms of the rounds, one set of numbers (kg_philox.h): the state's
# words in 32- or in 64-bit lanes of the compiler's vectors, or kg_philox_fill's
# AVX-512 intrinsics (where the target has AVX-512F; the 64-bit form elsewhere)
FORMS = {"32-bit": ["-DKG_PHILOX_WIDE_WORDS=0", "-DKG_PHILOX_NO_INTRINSICS"],
         "64-bit": ["-DKG_PHILOX_WIDE_WORDS=1", "-DKG_PHILOX_NO_INTRINSICS"],
         "intrinsics": []}


@pytest.mark.parametrize("words", list(FORMS))
def test_kat_c_header(tmp_path, words):
    wide = FORMS[words]
    native = ["-march=native"] if platform.machine().lower() in ("x86_64", "amd64") else []
    ffi = cffi.FFI()
    ffi.cdef("void h_philox(const uint32_t *ctr, const uint32_t *key, uint32_t *out);"
             "void h_blocks(int64_t n, int64_t key, int64_t ctr, uint32_t *out);"
             "void h_fill(int64_t key, int64_t ctr, int64_t g0, int64_t n, uint32_t *out);")
    name = "_kg_philox_kat_" + words.replace("-", "_")
    ffi.set_source(name, _HARNESS, include_dirs=[str(flags.TEMPLATE_C_DIR)],
                   extra_compile_args=[*flags.OPT_FLAGS, *flags.C_FLAGS, *native, *wide])
    with contextlib.redirect_stdout(io.StringIO()):
        so = ffi.compile(tmpdir=str(tmp_path), verbose=False)
    spec = importlib.util.spec_from_file_location(name, so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for ctr, key, want in KAT:
        out = ffi.new("uint32_t[4]")
        mod.lib.h_philox(ffi.new("uint32_t[4]", ctr), ffi.new("uint32_t[2]", key), out)
        assert tuple(out) == want
    # the vectorized loop (with the widest vectors here, tail iterations
    # included) against the NumPy reference, a key and call counter of all bits
    n, key, ctr = 1003, -0x5A5A5A5A12345679, 0x0000DEADBEEF0123
    got = np.zeros((n, 4), np.uint32)
    mod.lib.h_blocks(n, key, ctr, ffi.cast("uint32_t *", got.ctypes.data))
    want = np.stack(philox_block(key, ctr, np.arange(n)), axis=1)
    np.testing.assert_array_equal(got, want)
    # the chunk fill: whole groups of eight blocks and tails, g crossing 2^32
    for g0, n in [(0, 0), (0, 7), (5, 8), (3, 129), (2 ** 32 - 13, 40), (2 ** 40 + 1, 17)]:
        got = np.zeros((n + 1, 4), np.uint32)  # one block more: nothing written past n
        mod.lib.h_fill(key, ctr, g0, n, ffi.cast("uint32_t *", got.ctypes.data))
        want = np.stack(philox_block(key, ctr, np.arange(g0, g0 + n, dtype=np.int64)), axis=1)
        np.testing.assert_array_equal(got[:n], want.reshape(n, 4))
        assert not got[n].any()


# ---- compiled draws against the reference ---------------------------------------------
def _draws(rng, size=(40, 25)):
    return [rng.uniform(size, dtype="float32"), rng.uniform(size, dtype="float64"),
            rng.binomial(size, n=1, p=0.3), rng.binomial(size, n=7, p=0.6, dtype="float32"),
            rng.random_integers(size, low=-3, high=4)]


def test_compiled_matches_reference_bitwise():
    rng = RandomStreams(1234)
    draws = _draws(rng)
    f = kg.function([], draws, no_default_updates=True)
    for want, got in zip([d.eval() for d in draws], f()):
        assert want.dtype == got.dtype and want.shape == got.shape
        np.testing.assert_array_equal(got, want)
    # normal: Box-Muller through libm's log and cos; float32 rounds the same
    z = rng.normal((1000,), dtype="float64")
    np.testing.assert_allclose(kg.function([], z, no_default_updates=True)(), z.eval(),
                               rtol=1e-13, atol=1e-15)


def test_broadcast_and_strided_paths_give_the_same_numbers():
    # the same draw fused into a loop whose other operand broadcasts at run time:
    # the element index comes from the nd path, not the flat one
    rng = RandomStreams(5)
    x = kg.matrix("x")
    u = rng.uniform(size=(x.shape[0], 5), dtype="float64")
    f = kg.function([x], [u, u + x], no_default_updates=True)
    a, b = f(np.zeros((4, 1)))
    np.testing.assert_array_equal(a, u.eval({x: np.zeros((4, 1))}))
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(f(np.zeros((4, 5)))[0], a)


@pytest.mark.parametrize("rows, cols", [(3, 7), (5, 301), (2, 513), (40, 1000)])
def test_chunked_rows_of_broadcast_loops_match_reference(rows, cols):
    # fused with a row vector that broadcasts at run time, the draws take the
    # nd path: each row in chunks of KG_PHILOX_CHUNK elements whose blocks start
    # mid-block when the row length is odd (7, 301, 513); 40 x 1000: threaded
    rng = RandomStreams(17)
    x, b = kg.matrix("x"), kg.row("b")
    draws = _draws(rng, (x.shape[0], x.shape[1]))
    fused = [(d + b) for d in draws]
    f = kg.function([x, b], fused, no_default_updates=True)
    xv, bv = np.zeros((rows, cols)), np.linspace(-1, 1, cols)[None, :]
    for want, got in zip([d.eval({x: xv}) for d in draws], f(xv, bv)):
        np.testing.assert_array_equal(got, want + bv)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 9, 37, 40003])
def test_grouped_loops_match_reference_for_every_tail(n):
    # flat loops run over chunks of elements, each chunk's blocks first (one
    # Philox block serves several elements); 40003: the threaded path
    rng = RandomStreams(99)
    x = kg.vector("x")
    draws = _draws(rng, (n,))
    fused = [draws[0] + x, draws[2] * x]      # draws fused with a streamed operand
    f = kg.function([x], draws + fused, no_default_updates=True)
    xv = np.linspace(-1, 1, n)
    got = f(xv)
    for want, g in zip([d.eval() for d in draws], got):
        np.testing.assert_array_equal(g, want)
    np.testing.assert_array_equal(got[5], got[0] + xv)
    np.testing.assert_array_equal(got[6], got[2] * xv)


def test_one_block_serves_several_elements():
    # kg_philox.h's numbering: float32 uniform takes word k % 4 of block k // 4,
    # float64 uniform words 2 (k % 2), 2 (k % 2) + 1 of block k // 2
    from kgen.expr.ops.random import philox_block
    rng = RandomStreams(3)
    u32, u64 = rng.uniform((8,), dtype="float32"), rng.uniform((4,), dtype="float64")
    a, b = kg.function([], [u32, u64], no_default_updates=True)()
    key, ctr = (int(v) for v in rng.state_updates[0][0].get_value())
    w = np.stack(philox_block(key, ctr, np.arange(2)), axis=1).ravel()   # blocks 0, 1
    np.testing.assert_array_equal(a, (w >> 8).astype(np.float32) * np.float32(2.0 ** -24))
    key, ctr = (int(v) for v in rng.state_updates[1][0].get_value())
    w = np.stack(philox_block(key, ctr, np.arange(2)), axis=1).ravel().astype(np.uint64)
    want = ((w[0::2] << np.uint64(21)) | (w[1::2] >> np.uint64(11))).astype(np.float64) * 2.0 ** -53
    np.testing.assert_array_equal(b, want)


# ---- statistics ------------------------------------------------------------------------
N = 10 ** 6


def _within(value, want, sd, k=5):
    assert abs(value - want) < k * sd, (value, want, sd)


def test_uniform_and_normal_moments():
    rng = RandomStreams(7)
    u32, u64 = rng.uniform((N,), dtype="float32"), rng.uniform((N,), low=-2.0, high=3.0,
                                                                 dtype="float64")
    z = rng.normal((N,), avg=1.5, std=2.0, dtype="float64")
    a, b, c = kg.function([], [u32, u64, z])()
    assert a.dtype == np.float32 and 0 <= a.min() and a.max() < 1
    _within(a.mean(), 0.5, np.sqrt(1 / 12 / N))
    _within(a.var(), 1 / 12, np.sqrt(1 / 180 / N))
    assert -2 <= b.min() and b.max() < 3
    _within(b.mean(), 0.5, 5 * np.sqrt(1 / 12 / N))
    _within(c.mean(), 1.5, 2 / np.sqrt(N))
    _within(c.var(), 4.0, 4 * np.sqrt(2 / N))
    _within(((c - 1.5) ** 3).mean() / 8, 0.0, np.sqrt(15 / N))   # skewness


def test_binomial_integers_and_multinomial():
    rng = MRG_RandomStreams(11)
    b = rng.binomial(size=(N,), p=0.3, n=5)
    r = rng.random_integers((N,), low=-2, high=3)
    pv = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    m = rng.multinomial(n=4, pvals=kg.constant(np.repeat(pv, 50000, axis=0)))
    bv, rv, mv = kg.function([], [b, r, m])()
    assert bv.dtype == np.int64 and set(np.unique(bv)) <= set(range(6))
    _within(bv.mean(), 1.5, np.sqrt(5 * 0.3 * 0.7 / N))
    _within(bv.var(), 1.05, 0.01)
    assert rv.min() == -2 and rv.max() == 3          # both bounds included
    freq = np.bincount(rv + 2) / N
    np.testing.assert_allclose(freq, 1 / 6, atol=5 * np.sqrt(1 / 6 * 5 / 6 / N))
    assert mv.shape == (100000, 3) and mv.dtype == np.int64
    assert (mv.sum(axis=1) == 4).all() and mv.min() >= 0
    for row, p in ((mv[:50000], pv[0]), (mv[50000:], pv[1])):
        np.testing.assert_allclose(row.mean(axis=0) / 4, p, atol=0.005)


def test_two_draws_in_one_graph_are_independent():
    rng = RandomStreams(3)
    a, b = rng.uniform((N,), dtype="float64"), rng.uniform((N,), dtype="float64")
    av, bv = kg.function([], [a, b])()
    assert abs(np.corrcoef(av, bv)[0, 1]) < 5 / np.sqrt(N)
    assert abs(np.corrcoef(av[:-1], av[1:])[0, 1]) < 5 / np.sqrt(N)   # neighbours too


# ---- state and default updates -----------------------------------------------------------
def test_calls_advance_the_state_and_never_repeat():
    rng = RandomStreams(9)
    u = rng.uniform((1000,), dtype="float64")
    f = kg.function([], u)
    first = u.eval()
    calls = [f() for _ in range(5)]
    np.testing.assert_array_equal(calls[0], first)      # the state before the call
    assert len({c.tobytes() for c in calls}) == 5
    assert not np.isin(calls[1], calls[0]).any()
    state = rng.state_updates[0][0]
    assert state.get_value()[1] == 5                    # one step per call


def test_no_default_updates_and_user_updates_win():
    rng = RandomStreams(9)
    u = rng.uniform((10,), dtype="float64")
    state = rng.state_updates[0][0]
    g = kg.function([], u, no_default_updates=True)
    np.testing.assert_array_equal(g(), g())
    h = kg.function([], u, no_default_updates=[state])
    np.testing.assert_array_equal(h(), h())
    # the user's update of the state replaces the default one
    jump = kg.function([], u, updates=[(state, state + np.array([0, 10]))])
    jump()
    assert state.get_value()[1] == 10
    plain = kg.function([], u)
    plain()
    assert state.get_value()[1] == 11


def test_same_seed_same_numbers_and_reseeding():
    def numbers(seed):
        rng = RandomStreams(seed)
        return kg.function([], _draws(rng))()
    a, b, c = numbers(21), numbers(21), numbers(22)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])
    rng = RandomStreams(22)
    draws = _draws(rng)
    f = kg.function([], draws)
    f()
    rng.seed(21)                                          # back to the start of seed 21
    for x, y in zip(a, f()):
        np.testing.assert_array_equal(x, y)


_SCRIPT = """
import hashlib, numpy as np, kgen as kg
rng = kg.RandomStreams(77)
x = kg.matrix('x')
u = rng.uniform(size=x.shape, dtype='float32')
z = rng.normal(size=(x.shape[0], 3), dtype='float64')
b = rng.binomial(size=x.shape, n=3, p=0.25)
f = kg.function([x], [u * x, z, b])
h = hashlib.sha256()
for _ in range(3):
    for o in f(np.ones((300, 700))):
        h.update(o.tobytes())
print(h.hexdigest())
"""


def test_same_numbers_in_a_fresh_process_on_any_thread_count(tmp_path):
    out = []
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, PYTHONPATH=str(REPO))
        proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        out.append(proc.stdout.strip())
    assert out[0] == out[1]


# ---- grad -------------------------------------------------------------------------------
def test_grad_through_a_dropout_mask_is_the_mask():
    rng = MRG_RandomStreams(4)
    x = kg.matrix("x")
    mask = rng.binomial(size=x.shape, p=0.5, dtype="float64")
    cost = (x * mask).sum()
    gx = kg.grad(cost, x)
    f = kg.function([x], [mask, gx])
    m, g = f(np.ones((6, 7)))
    np.testing.assert_array_equal(g, m)               # one draw, shared by both outputs
    assert 0 < m.sum() < m.size


def test_theano_names():
    assert kg.RandomStreams is RandomStreams
    import kgen.sandbox.rng_mrg as rng_mrg
    import kgen.tensor.shared_randomstreams as srs
    assert rng_mrg.MRG_RandomStreams and srs.RandomStreams
    rng = MRG_RandomStreams(seed=234)
    x = T.matrix("x")
    u = rng.uniform(size=x.shape)
    assert u.dtype == kg.config.floatX and u.ndim == 2
    with pytest.raises(kg.KgenTypeError):
        rng.uniform(size=(3,), ndim=2)
    assert rng.normal((2, 3), ndim=2).ndim == 2
    # a probability tensor broadcasts with size
    p = T.vector("p")
    b = rng.binomial(size=(4, 3), p=p)
    assert b.ndim == 2 and b.dtype == "int64"
    v = b.eval({p: np.array([0.0, 1.0, 1.0])})
    assert (v[:, 0] == 0).all() and (v[:, 1:] == 1).all()


# ---- CUDA source, through the CPU emulator -------------------------------------------------
@pytest.mark.skipif(not _cuda_emu.have_compiler(), reason="the CUDA emulator needs g++")
def test_cuda_source_gives_the_same_numbers(monkeypatch):
    _cuda_emu.emulate(monkeypatch)
    def numbers(target):
        rng = RandomStreams(99)
        x = kg.matrix("x")
        draws = [d * x for d in _draws(rng)[:2]] + _draws(rng, (37, 3))[2:]
        f = kg.function([x], draws, target=target)
        return [f(np.ones((40, 25))) for _ in range(2)]
    for cc, gg in zip(numbers("c"), numbers("cuda")):
        for c, g in zip(cc, gg):
            np.testing.assert_array_equal(np.asarray(g), c)


# ---- packages ------------------------------------------------------------------------------
_SPEC = '''
import kgen as kg
import kgen.tensor as T
rng = kg.RandomStreams(2024)
x = T.dmatrix("x")
mask = rng.binomial(size=x.shape, p=0.5, dtype="float64")
noise = kg.RandomStreams(7).normal(size=(x.shape[0],), dtype="float64")   # two streams
corrupt = kg.kernel("corrupt", [x], [x * mask, noise])
'''


def test_package_state_is_a_shared_variable_and_gives_the_same_numbers(tmp_path, spec_package):
    from kgen.package import load_spec
    pkg = spec_package(_SPEC, "rand_pkg")
    # the same spec, loaded again: fresh states with the same seed, through kg.function
    ref = load_spec(tmp_path / "rand_pkg_spec.py").kernels[0]
    f = kg.function(ref.inputs, ref.outputs, updates=ref.updates)
    x = np.ones((30, 20))
    for _ in range(3):
        for got, want in zip(pkg.corrupt(x), f(x)):
            np.testing.assert_allclose(got, want, rtol=1e-15)
    a, b = pkg.corrupt(x)[0], pkg.corrupt(x)[0]
    assert not np.array_equal(a, b)


def test_small_shapes_and_theano_forms():
    rng = RandomStreams(3)
    m = rng.multinomial(size=(5,), n=3, pvals=[0.2, 0.8])   # 1-d pvals broadcast to size
    s = rng.uniform()                                         # size=(): one number
    i = rng.random_integers(size=4, low=2, high=2)
    e = rng.uniform((0, 3), dtype="float64")                  # empty
    mv, sv, iv, ev = kg.function([], [m, s, i, e])()
    assert mv.shape == (5, 2) and (mv.sum(axis=1) == 3).all()
    assert sv.shape == () and 0 <= sv < 1
    assert (iv == 2).all() and ev.shape == (0, 3)
    with pytest.raises(kg.KgenTypeError):
        rng.random_integers((3,), low=4, high=1)
    import kgen.sandbox
    assert kgen.sandbox.rng_mrg.MRG_RandomStreams is MRG_RandomStreams
    assert T.shared_randomstreams.RandomStreams is RandomStreams


def test_debug_mode_checks_draws_without_advancing_the_stream_twice():
    """DebugMode's probe kernel reads the stream state; only the real call may
    advance it, so the compiled draws equal the reference and each call moves
    the state exactly as a FAST_RUN call does."""
    x = T.dmatrix('x')
    fast_rng, debug_rng = MRG_RandomStreams(99), MRG_RandomStreams(99)
    fast = kg.function([x], x * fast_rng.uniform(size=x.shape))
    debug = kg.function([x], x * debug_rng.uniform(size=x.shape), mode='DebugMode')
    data = np.arange(6.0).reshape(2, 3)
    for _ in range(3):
        np.testing.assert_array_equal(debug(data), fast(data))


def test_binomial_trials_beyond_the_counter_space_are_refused():
    rng = RandomStreams(3)
    with pytest.raises(TypeError, match=r"binomial: n must be in \[0, 65536\), got 65536"):
        rng.binomial((3,), n=2 ** 16, p=0.5)
    assert rng.binomial((3,), n=2 ** 16 - 1, p=0.5).ndim == 1
