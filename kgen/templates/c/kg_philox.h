/* kg_philox.h -- Philox4x32-10 and the per-element draws of kgen's random ops.
 *
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel Random Numbers: As
 * Easy as 1, 2, 3", SC11) is a keyed bijection of a 4 x 32-bit counter: ten
 * rounds, each two 32 x 32 -> 64-bit products, with a Weyl key schedule. It is
 * written here from the published algorithm; tests/test_random.py checks it
 * against Random123's known-answer vectors.
 *
 * A random op's element with flat index k (row-major in the op's own shape)
 * is a function of (key, ctr, k) only, so the numbers do not depend on the
 * thread count, the schedule, or the target. One block serves `per` consecutive
 * elements (per = 4 / the words an element takes): element k reads words
 * (k % per) * (4 / per) ... of block g = k / per, counter
 *   key words  = (low 32 bits of key, high 32 bits of key)
 *   counter    = (low 32 bits of g, high 32 bits of g, low 32 bits of ctr,
 *                 bits 32..47 of ctr | sub-block j << 16)
 * `ctr` is the stream's call counter (it advances by one per call), `j` the
 * block number within one element (binomial: trial j, n < 2^16).
 *
 * Conversions (all exact, no rounding anywhere):
 *   float32 uniform  per 4: (w >> 8) * 2^-24 in [0, 1), 24 bits of its word w
 *   float64 uniform  per 2: ((w0 << 21) | (w1 >> 11)) * 2^-53 in [0, 1), 53 bits
 *                    of its two words (w0, w1)
 *   normal           per 1: Box-Muller in double: u1 = (53 bits of w0, w1 + 1) * 2^-53
 *                    in (0, 1], u2 = 53 bits of w2, w3; sqrt(-2 log u1) cos(2 pi u2)
 *                    (libm/CUDA log and cos: the last bits may differ by target)
 *   binomial(n, p)   per 2: n trials, trial t compares the float64 uniform of
 *                    the element's two words of sub-block t with p
 *   integers         per 2: low + ((w0 << 32 | w1) mod (high - low + 1)), in uint64
 * The generated flat loops compute the blocks of a chunk of elements first,
 * into a buffer of words, then each element's value from its words (the
 * `_w` helpers: the value from a block and its first word `o`; kg_philox_at
 * makes the element's words a block).
 * Plain C99; under nvcc KG_FN (kg_ops.h) makes every helper host + device.
 */
#ifndef KG_PHILOX_H
#define KG_PHILOX_H
#include <stdint.h>

#ifndef KG_FN
#  ifdef __CUDACC__
#    define KG_FN inline __host__ __device__
#  else
#    define KG_FN static inline
#  endif
#endif

/* always inlined (GCC, clang): inside a large kernel the inliner's budget may
 * run out, and a call in the loop body stops its vectorization */
#if defined(__GNUC__) && !defined(__CUDACC__)
#  define KG_PHILOX_FN KG_FN __attribute__((always_inline))
#else
#  define KG_PHILOX_FN KG_FN
#endif

typedef struct { uint32_t w[4]; } kg_u32x4;

/* the multipliers and the key schedule's Weyl increments of the paper */
#define KG_PHILOX_M0 UINT32_C(0xD2511F53)
#define KG_PHILOX_M1 UINT32_C(0xCD9E8D57)
#define KG_PHILOX_W0 UINT32_C(0x9E3779B9)
#define KG_PHILOX_W1 UINT32_C(0xBB67AE85)

/* The type one 32-bit word of the state is kept in. The generated loops
 * vectorize this function over blocks. Where the vector unit multiplies 64-bit
 * lanes natively (AVX-512DQ's vpmullq), words held in 64-bit lanes (only the
 * low 32 bits meaningful: each product reads its factor's low half, each
 * output takes the low half) keep the whole body in one lane width, and gcc's
 * loop ran 1.7x faster than with 32-bit words, which it widens and narrows
 * around every product. Without vpmullq gcc emulates the 64-bit product and
 * the 32-bit form is the faster (2x at SSE2). The numbers are the same
 * (-DKG_PHILOX_WIDE_WORDS=1 or =0 picks a form anywhere: the tests do). */
#ifndef KG_PHILOX_WIDE_WORDS
#  if defined(__AVX512DQ__) && !defined(__CUDACC__)
#    define KG_PHILOX_WIDE_WORDS 1
#  else
#    define KG_PHILOX_WIDE_WORDS 0
#  endif
#endif
#if KG_PHILOX_WIDE_WORDS
typedef uint64_t kg_philox_word;
#else
typedef uint32_t kg_philox_word;
#endif

/* Philox4x32 with 10 rounds of counter c under key (k0, k1). */
KG_PHILOX_FN kg_u32x4 kg_philox4x32_10(kg_u32x4 c, uint32_t k0, uint32_t k1)
{
    kg_philox_word x0 = c.w[0], x1 = c.w[1], x2 = c.w[2], x3 = c.w[3];
    /* unrolled: a straight-line body lets the compiler vectorize the element loop */
#if defined(__CUDACC__)
#  pragma unroll
#elif defined(__clang__)
#  pragma clang loop unroll(full)
#elif defined(__GNUC__)
#  pragma GCC unroll 10
#endif
    for (int r = 0; r < 10; r++) {
        const uint64_t p0 = (uint64_t)KG_PHILOX_M0 * (uint32_t)x0;
        const uint64_t p1 = (uint64_t)KG_PHILOX_M1 * (uint32_t)x2;
        const kg_philox_word y0 = (kg_philox_word)(p1 >> 32) ^ x1 ^ k0;
        const kg_philox_word y2 = (kg_philox_word)(p0 >> 32) ^ x3 ^ k1;
        x1 = (kg_philox_word)p1;
        x3 = (kg_philox_word)p0;
        x0 = y0;
        x2 = y2;
        k0 += KG_PHILOX_W0;
        k1 += KG_PHILOX_W1;
    }
    kg_u32x4 out;   /* (no brace initializers: this file is included by Jinja2) */
    out.w[0] = (uint32_t)x0; out.w[1] = (uint32_t)x1; out.w[2] = (uint32_t)x2; out.w[3] = (uint32_t)x3;
    return out;
}

/* sub-block j of block g of a draw with state (key, ctr) */
KG_PHILOX_FN kg_u32x4 kg_philox_block(int64_t key, int64_t ctr, int64_t g, uint32_t j)
{
    const uint64_t ug = (uint64_t)g, uc = (uint64_t)ctr, ukey = (uint64_t)key;
    kg_u32x4 c;
    c.w[0] = (uint32_t)ug;
    c.w[1] = (uint32_t)(ug >> 32);
    c.w[2] = (uint32_t)uc;
    c.w[3] = (uint32_t)((uc >> 32) & 0xFFFFu) | (j << 16);
    return kg_philox4x32_10(c, (uint32_t)ukey, (uint32_t)(ukey >> 32));
}

/* The words of blocks g0 .. g0 + nb - 1 (sub-block 0) of a draw, in order:
 * w[4 * q + i] is word i of block g0 + q. The flat loops fill their chunk's
 * buffer with it. With AVX-512 (not under nvcc) eight blocks at a time in
 * 64-bit lanes, each word in a lane's low half, as KG_PHILOX_WIDE_WORDS does,
 * but multiplied with vpmuludq (32 x 32 -> 64 bits, one uop), which gcc does
 * not pick for the plain loop: it takes vpmullq, three uops; the same numbers. */
#if defined(__AVX512F__) && !defined(__CUDACC__) && !defined(KG_PHILOX_NO_INTRINSICS)
#  include <immintrin.h>
KG_PHILOX_FN void kg_philox_fill(int64_t key, int64_t ctr, int64_t g0, int64_t nb, uint32_t *w)
{
    const uint64_t uc = (uint64_t)ctr, ukey = (uint64_t)key;
    const __m512i m0 = _mm512_set1_epi64(KG_PHILOX_M0), m1 = _mm512_set1_epi64(KG_PHILOX_M1);
    const __m512i c2 = _mm512_set1_epi64((uint32_t)uc);
    const __m512i c3 = _mm512_set1_epi64((uint32_t)((uc >> 32) & 0xFFFFu));
    const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i first = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
    const __m512i second = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
    const __m512i low = _mm512_set1_epi64(0xFFFFFFFF);
    __m512i rk0[10], rk1[10];   /* the round keys, broadcast once per call */
    uint32_t k0 = (uint32_t)ukey, k1 = (uint32_t)(ukey >> 32);
    for (int r = 0; r < 10; r++, k0 += KG_PHILOX_W0, k1 += KG_PHILOX_W1) {
        rk0[r] = _mm512_set1_epi64(k0);
        rk1[r] = _mm512_set1_epi64(k1);
    }
    int64_t q = 0;
    for (; q + 8 <= nb; q += 8) {
        const __m512i g = _mm512_add_epi64(_mm512_set1_epi64(g0 + q), lanes);
        __m512i x0 = g, x1 = _mm512_srli_epi64(g, 32), x2 = c2, x3 = c3;
#  if defined(__clang__)
#    pragma clang loop unroll(full)
#  else
#    pragma GCC unroll 10
#  endif
        for (int r = 0; r < 10; r++) {
            const __m512i p0 = _mm512_mul_epu32(x0, m0), p1 = _mm512_mul_epu32(x2, m1);
            /* 0x96: a ^ b ^ c */
            x0 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), x1, rk0[r], 0x96);
            x2 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), x3, rk1[r], 0x96);
            x1 = p1;
            x3 = p0;
        }
        /* (word 0, word 1) and (word 2, word 3) of each block as 64-bit values,
         * then interleaved: blocks q .. q + 3, then q + 4 .. q + 7 */
        const __m512i w01 = _mm512_ternarylogic_epi64(x0, low, _mm512_slli_epi64(x1, 32), 0xEA);
        const __m512i w23 = _mm512_ternarylogic_epi64(x2, low, _mm512_slli_epi64(x3, 32), 0xEA);
        _mm512_storeu_si512((void *)(w + 4 * q), _mm512_permutex2var_epi64(w01, first, w23));
        _mm512_storeu_si512((void *)(w + 4 * q + 16), _mm512_permutex2var_epi64(w01, second, w23));
    }
    for (; q < nb; q++) {
        const kg_u32x4 b = kg_philox_block(key, ctr, g0 + q, 0);
        w[4 * q + 0] = b.w[0]; w[4 * q + 1] = b.w[1]; w[4 * q + 2] = b.w[2]; w[4 * q + 3] = b.w[3];
    }
}
#else
KG_PHILOX_FN void kg_philox_fill(int64_t key, int64_t ctr, int64_t g0, int64_t nb, uint32_t *w)
{
#  ifdef KG_OMP_SIMD
    KG_OMP_SIMD
#  endif
    for (int64_t q = 0; q < nb; q++) {
        const kg_u32x4 b = kg_philox_block(key, ctr, g0 + q, 0);
        w[4 * q + 0] = b.w[0]; w[4 * q + 1] = b.w[1]; w[4 * q + 2] = b.w[2]; w[4 * q + 3] = b.w[3];
    }
}
#endif

/* elements per chunk of a flat loop with draws (kernel.c.jinja): its blocks'
 * words are computed first, into a buffer on the stack, a multiple of 4 */
#ifndef KG_PHILOX_CHUNK
#  define KG_PHILOX_CHUNK 256
#endif

/* an element's first two words p[0], p[1] as words 0 and 1 of a block (the
 * _w helpers then read them with o = 0) */
KG_PHILOX_FN kg_u32x4 kg_philox_at(const uint32_t *p)
{
    kg_u32x4 out;
    out.w[0] = p[0]; out.w[1] = p[1]; out.w[2] = 0; out.w[3] = 0;
    return out;
}

/* 53 bits of (hi, lo) as a double in [0, 1) */
KG_PHILOX_FN double kg_philox_53(uint32_t hi, uint32_t lo)
{
    return (double)(((uint64_t)hi << 21) | (lo >> 11)) * 0x1p-53;
}

/* the value of an element from its block b and its first word o (0..3) */
KG_PHILOX_FN float kg_philox_uniform_float_w(kg_u32x4 b, int o)
{
    return (float)(b.w[o] >> 8) * 0x1p-24f;
}

KG_PHILOX_FN double kg_philox_uniform_double_w(kg_u32x4 b, int o)
{
    return kg_philox_53(b.w[o], b.w[o + 1]);
}

/* the number of successes in n trials of probability p (n < 2^16); b: trial
 * 0's block, read from word o; the later trials' blocks are computed here */
KG_PHILOX_FN int64_t kg_philox_binomial_w(kg_u32x4 b, int o, int64_t key, int64_t ctr, int64_t k,
                                   int64_t n, double p)
{
    const int ot = 2 * (int)(k & 1);   /* the element's words in the later blocks */
    int64_t count = n > 0 && kg_philox_53(b.w[o], b.w[o + 1]) < p;
    for (int64_t t = 1; t < n; t++) {
        const kg_u32x4 bt = kg_philox_block(key, ctr, k >> 1, (uint32_t)t);
        count += kg_philox_53(bt.w[ot], bt.w[ot + 1]) < p;
    }
    return count;
}

/* an integer in [low, high], both included (high >= low) */
KG_PHILOX_FN int64_t kg_philox_integers_w(kg_u32x4 b, int o, int64_t low, int64_t high)
{
    const uint64_t range = (uint64_t)high - (uint64_t)low + 1u;   /* 0: all of uint64 */
    const uint64_t bits = ((uint64_t)b.w[o] << 32) | b.w[o + 1];
    return (int64_t)((uint64_t)low + (range ? bits % range : bits));
}

/* the same from the element's flat index k alone */
KG_PHILOX_FN float kg_philox_uniform_float(int64_t key, int64_t ctr, int64_t k)
{
    return kg_philox_uniform_float_w(kg_philox_block(key, ctr, k >> 2, 0), (int)(k & 3));
}

KG_PHILOX_FN double kg_philox_uniform_double(int64_t key, int64_t ctr, int64_t k)
{
    return kg_philox_uniform_double_w(kg_philox_block(key, ctr, k >> 1, 0), 2 * (int)(k & 1));
}

KG_PHILOX_FN double kg_philox_normal_double(int64_t key, int64_t ctr, int64_t k)
{
    const kg_u32x4 b = kg_philox_block(key, ctr, k, 0);
    const double u1 = kg_philox_53(b.w[0], b.w[1]) + 0x1p-53;   /* (0, 1]: log finite */
    const double u2 = kg_philox_53(b.w[2], b.w[3]);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

KG_PHILOX_FN float kg_philox_normal_float(int64_t key, int64_t ctr, int64_t k)
{
    return (float)kg_philox_normal_double(key, ctr, k);
}

KG_PHILOX_FN int64_t kg_philox_binomial(int64_t key, int64_t ctr, int64_t k, int64_t n, double p)
{
    return kg_philox_binomial_w(kg_philox_block(key, ctr, k >> 1, 0), 2 * (int)(k & 1),
                                key, ctr, k, n, p);
}

KG_PHILOX_FN int64_t kg_philox_integers(int64_t key, int64_t ctr, int64_t k, int64_t low, int64_t high)
{
    return kg_philox_integers_w(kg_philox_block(key, ctr, k >> 1, 0), 2 * (int)(k & 1), low, high);
}

#endif /* KG_PHILOX_H */
